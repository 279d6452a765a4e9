// The HTTP fallback (docs/protocol.md "HTTP fallback") behind the WebSocket interface the
// client uses: the server's frames from GET /ws/events (a Server-Sent Events stream read
// with fetch, which browsers and Node 18 both have), requests by POST /ws/send?stream=ID.
// Only what client.js calls is here: send, close, readyState, protocol and the on* handlers.

// ws(s)://host/PATH?query -> http(s)://host/PATH/events?query (PATH is /ws by default).
export function eventsUrl(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = `${u.pathname.replace(/\/$/, '')}/events`;
  return u.href;
}

export class HttpSocket {
  #fetch;
  #abort = new AbortController();
  #sendUrl = null; // from the stream's first event
  #queue = []; // lines waiting for the stream id, or for the POST before them
  #posting = false;
  #closed = false;

  constructor(url, protocols, { fetch: fetchImpl } = {}) {
    this.url = url;
    this.protocol = '';
    this.binaryType = 'arraybuffer';
    this.readyState = 0; // CONNECTING
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    // Bound: a browser's fetch called as a method of something else throws "Illegal invocation".
    this.#fetch = fetchImpl ?? (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : null);
    if (typeof this.#fetch !== 'function') {
      setTimeout(() => this.#end(1006, 'no fetch for the HTTP fallback'), 0);
      return;
    }
    this.#read(eventsUrl(url));
  }

  async #read(url) {
    let res;
    try {
      res = await this.#fetch(url, { signal: this.#abort.signal, headers: { accept: 'text/event-stream' },
        cache: 'no-store' });
    } catch (err) {
      this.#end(1006, `the event stream failed: ${err.message}`);
      return;
    }
    if (!res.ok || !res.body) {
      this.#end(1006, `the event stream was refused: HTTP ${res.status}`);
      return;
    }
    this.readyState = 1; // OPEN
    this.onopen?.({});
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.#event(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
      this.#end(1006, 'the event stream ended');
    } catch (err) {
      this.#end(1006, `the event stream broke: ${err.message}`);
    }
  }

  // One SSE event: `event: stream` says where to POST; a `data:` line is one frame.
  #event(block) {
    let event = 'message';
    let data = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data === null || this.#closed) return;
    if (event === 'stream') {
      try {
        this.#sendUrl = new URL(JSON.parse(data).send, this.url.replace(/^ws/, 'http')).href;
      } catch {
        this.#end(1006, 'the event stream did not say where to send');
        return;
      }
      this.#flush();
      return;
    }
    this.onmessage?.({ data });
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('the HTTP fallback is not open');
    this.#queue.push(typeof text === 'string' ? text : new TextDecoder().decode(text));
    this.#flush();
  }

  // One POST at a time, carrying every line queued meanwhile: requests keep their order.
  async #flush() {
    if (this.#posting || !this.#sendUrl || this.#queue.length === 0 || this.#closed) return;
    this.#posting = true;
    const body = this.#queue.join('\n');
    this.#queue = [];
    try {
      const res = await this.#fetch(this.#sendUrl, { method: 'POST', body,
        headers: { 'content-type': 'text/plain' } });
      if (res.status === 404) this.#end(1006, 'the server no longer has this stream');
      await res.text().catch(() => {});
    } catch (err) {
      this.#end(1006, `a send failed: ${err.message}`);
    }
    this.#posting = false;
    this.#flush();
  }

  // A close the client asks for: 1000 tells the server to end the connection cleanly (its
  // rooms' onLeave at once, as a WebSocket's 1000 does); any other code is a drop.
  close(code = 1000, reason = '') {
    if (this.#closed || this.readyState === 2) return;
    if (code === 1000 && this.#sendUrl) {
      // The server ends the stream itself once it has let the connection go; the stream is
      // only cut here when that does not come.
      this.readyState = 2; // CLOSING
      const cut = setTimeout(() => this.#end(code, reason), 1000);
      this.#fetch(`${this.#sendUrl}&close=1`, { method: 'POST', body: '' })
        .then((r) => r.text(), () => {})
        .finally(() => {
          clearTimeout(cut);
          this.#end(code, reason);
        });
      return;
    }
    this.#end(code, reason);
  }

  #end(code, reason) {
    if (this.#closed) return;
    this.#closed = true;
    this.readyState = 3; // CLOSED
    this.#abort.abort();
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
}
