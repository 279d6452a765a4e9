// A WebSocket client on a raw socket, for the tests that must set frame bits by hand
// (permessage-deflate's RSV1) or keep sending after the server decided to close, as a real
// client that has not yet read the close frame does: RFC 6455 frames, written and read here.
import crypto from 'node:crypto';
import net from 'node:net';

// A masked client frame (RFC 6455 5.2). rsv1: permessage-deflate's "compressed" bit.
export function clientFrame(opcode, payload, { fin = true, rsv1 = false } = {}) {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + n);
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(n, 2); } else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(n), 2); }
  const mask = crypto.randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < n; i += 1) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

// Opens /ws on a raw socket, with `headers` added to the upgrade request. Resolves once
// upgraded with { sock, head (the response head), write(buf), closing, closed } where
// closed settles when the socket ends: with the code and reason of the server's close frame
// (answered as a client does), or 1006 if none came. Every other frame goes to
// onFrame({ fin, rsv1, opcode, payload }).
export function rawWs(server, { headers = {}, onFrame = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let info = null;
    let settle;
    const closed = new Promise((r) => { settle = r; });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no upgrade within 5 s')); }, 5000);
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        const b0 = buf[0];
        let n = buf[1] & 0x7f;
        let at = 2;
        if (n === 126) { if (buf.length < 4) return; n = buf.readUInt16BE(2); at = 4; } else if (n === 127) { if (buf.length < 10) return; n = Number(buf.readBigUInt64BE(2)); at = 10; }
        if (buf.length < at + n) return;
        const payload = buf.subarray(at, at + n);
        buf = buf.subarray(at + n);
        const opcode = b0 & 0x0f;
        if (opcode === 8) {
          if (!info) {
            info = n >= 2 ? { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString() } : { code: 1005, reason: '' };
            try { sock.write(clientFrame(8, payload.subarray(0, 2))); } catch { /* gone */ }
          }
          continue;
        }
        onFrame({ fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, rsv23: b0 & 0x30, opcode, payload });
      }
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        buf = buf.subarray(end + 4);
        clearTimeout(timer);
        if (!/^HTTP\/1\.1 101/.test(head)) { sock.destroy(); reject(new Error(head)); return; }
        upgraded = true;
        resolve({
          sock,
          head,
          closed,
          get closing() { return info !== null || sock.destroyed; },
          closeInfo: () => info,
          write: (b) => { if (!sock.destroyed && info === null) sock.write(b, () => {}); },
        });
      }
      parse();
    });
    sock.on('error', () => {});  // ECONNRESET: counted as 1006 unless the close frame came
    sock.on('close', () => settle(info ?? { code: 1006, reason: '' }));
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
  });
}
