// Serves the demo shop: its pages with the async snippet (src/snippet.js) filled in for
// the given collector and write key, shop.js, and the tracker (dist/cartwatch.min.js).
//
//   node sdk-js/demo/serve.mjs [--port 8000] [--collector http://localhost:8080]
//                              [--write-key demo-write-key]
//
// Tests import startDemo() instead.
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

// The snippet for these tracker options, without the snippet's own page() call (each demo
// page makes its own, with its name).
export async function snippetFor(options) {
  const text = await fs.readFile(path.join(root, 'src/snippet.js'), 'utf8');
  const code = text
    .split('\n')
    .filter((l) => !l.startsWith('//') && l.trim() !== 'cartwatch.page();')
    .join('\n')
    .replace("{ writeKey: 'YOUR_WRITE_KEY', host: 'https://collect.example' }", JSON.stringify(options));
  return `<script>\n${code}</script>`;
}

// Resolves to { url, close() } once listening. `options` are the tracker's (writeKey, host,
// flushInterval, retryDelay, ...).
export async function startDemo({ port = 8000, host = '127.0.0.1', options }) {
  const snippet = await snippetFor(options);
  const server = http.createServer(async (req, res) => {
    try {
      let name = new URL(req.url, 'http://x').pathname.slice(1) || 'index.html';
      const file =
        name === 'cartwatch.min.js' ? path.join(root, 'dist/cartwatch.min.js') : path.join(here, path.basename(name));
      let body = await fs.readFile(file, 'utf8');
      if (file.endsWith('.html')) body = body.replace('<!-- cartwatch -->', snippet);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'text/plain', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: bound } = server.address();
  const close = () =>
    new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections(); // a browser's keep-alive connections would hold it open
    });
  return { url: `http://${host}:${bound}`, close };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const demo = await startDemo({
    port: Number(arg('--port', '8000')),
    host: arg('--host', 'localhost'),
    options: { writeKey: arg('--write-key', 'demo-write-key'), host: arg('--collector', 'http://localhost:8080'), flushInterval: 1000 },
  });
  console.log(`demo shop: ${demo.url}/ (sending to ${arg('--collector', 'http://localhost:8080')})`);
}
