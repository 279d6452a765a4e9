// A proxy that refuses WebSocket upgrades (400) and forwards everything else, streaming, as
// proxies that break WebSockets do: the HTTP fallback's tests here and in Chromium
// (tests/browser/fallback.test.mjs imports this file). cutStreams() ends every event stream
// it carries, as a proxy that limits long responses does; srv.refused counts the upgrades
// it refused.
import http from 'node:http';

export async function refusingProxy(target) {
  const streams = new Set();
  const srv = http.createServer((req, res) => {
    const up = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers, agent: false }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
      if (req.url.startsWith('/ws/events')) {
        streams.add(res);
        res.on('close', () => streams.delete(res));
      }
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.refused = 0;
  srv.on('upgrade', (req, socket) => {
    srv.refused += 1;
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${srv.address().port}`,
    srv,
    cutStreams() { for (const res of streams) res.destroy(); },
    close: () => new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(resolve); }),
  };
}
