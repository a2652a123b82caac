// The bare Node proxy of bench:router's "bare proxy" column: node:http server + one undici Pool to the
// upstream, request and response bodies streamed through untouched. The floor a Node proxy can reach on
// these cores; no routing, auth or metrics. Usage: PORT=… UPSTREAM=http://127.0.0.1:… node bare-proxy.mjs
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host']);
const upstream = new Pool(process.env.UPSTREAM, { connections: 128, keepAliveTimeout: 60_000 });
const forwardable = (headers) => Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP.has(name)));

const server = http.createServer(async (req, res) => {
  try {
    const { statusCode, headers, body } = await upstream.request({ path: req.url, method: req.method, headers: forwardable(req.headers), body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req });
    res.writeHead(statusCode, forwardable(headers));
    await pipeline(body, res);
  } catch (error) {
    if (res.headersSent) return void res.destroy();
    res.writeHead(502, { 'content-type': 'text/plain' }).end(`bad gateway: ${error.message}`);
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
process.once('SIGTERM', () => server.close(() => upstream.close().then(() => process.exit(0))) && server.closeAllConnections());
