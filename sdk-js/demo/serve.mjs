// Serves the demo shop: its pages with the async snippet (src/snippet.js) filled in for the
// given collector and write key, its scripts, styles and images, and a small proxy of the
// collector's query API for the shop's "Cartwatch live" panel (panel.js). The tracker itself
// comes from the collector (GET {collector}/cartwatch.js), as on a real shop; with
// --tracker-from-demo this server serves sdk-js/dist/cartwatch.min.js instead.
//
// The proxy: GET /api/visitors/:anonymousId and /api/customers/:userId are forwarded to the
// collector's /v1/visitors/... and /v1/customers/... with `Authorization: Bearer <secret
// key>`, so the secret key stays on the server. It answers only about the browser asking:
// the visitor of its cw_aid cookie (the tracker's first-party cookie) and the customer that
// visitor is linked to; anything else is 403, so a demo reachable by others does not hand
// out every shopper's profile.
//
// Run `node sdk-js/demo/serve.mjs --help` for the flags. Tests import startDemo() instead.
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const SRC_PLACEHOLDER = "'https://collect.example/cartwatch.js'";
const OPTIONS_PLACEHOLDER = "{ writeKey: 'YOUR_WRITE_KEY', host: 'https://collect.example' }";
const PROXY_TIMEOUT_MS = 5000;

export const USAGE = `Usage: node sdk-js/demo/serve.mjs [flags]

Serves the Cartwatch demo shop. Its pages load the tracker from the collector
(<collector>/cartwatch.js) and send to it; the "Cartwatch live" panel on each page
shows what the tracker sent and, through this server, what the collector knows
about the visitor and customer.

Flags:
  --port N              port to listen on (default 8000; 0 picks a free one)
  --host NAME           address to listen on (default localhost)
  --collector URL       the collector's public URL, for the browser and for the
                        query API proxy (default http://localhost:8080)
  --write-key KEY       the site's write key (default demo-write-key)
  --secret-key KEY      the site's secret key, used by the query API proxy only and
                        never sent to the browser (default demo-secret-key, as in
                        config/cartwatch.toml)
  --tracker-from-demo   serve the tracker from this server (sdk-js/dist/cartwatch.min.js,
                        built by \`npm run build\`) instead of loading <collector>/cartwatch.js
  -h, --help            print this and exit

The collector must list the shop's origin (e.g. http://localhost:8000) in the
site's allowed_origins.
`;

// A value for inline <script> text: JSON that cannot close the script element.
const scriptJson = (v) => JSON.stringify(v).replace(/</g, '\\u003c');

function fill(text, placeholder, value) {
  if (!text.includes(placeholder)) throw new Error(`src/snippet.js no longer contains ${placeholder}`);
  return text.replace(placeholder, value);
}

// The snippet for these tracker options (writeKey, host, ...), without the snippet's own
// page() call (each demo page makes its own, with its name). The script comes from
// `${options.host}/cartwatch.js`, or from `trackerSrc` when given.
export async function snippetFor(options, { trackerSrc } = {}) {
  const text = await fs.readFile(path.join(root, 'src/snippet.js'), 'utf8');
  const src = trackerSrc ?? `${String(options.host).replace(/\/+$/, '')}/cartwatch.js`;
  let code = text
    .split('\n')
    .filter((l) => !l.startsWith('//') && l.trim() !== 'cartwatch.page();')
    .join('\n');
  code = fill(code, SRC_PLACEHOLDER, scriptJson(src));
  code = fill(code, OPTIONS_PLACEHOLDER, scriptJson(options));
  return `<script>\n${code}</script>`;
}

function cookie(req, name) {
  const m = new RegExp(`(?:^|;\\s*)${name}=([^;]*)`).exec(req.headers.cookie ?? '');
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

function sendJson(res, status, doc) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(doc) + '\n');
}

const apiError = (res, status, code, message) => sendJson(res, status, { error: { code, message } });

// GET {queryUrl}/v1/{kind}/{id} with the secret key. Resolves to { status, body, type };
// rejects when the collector cannot be reached.
async function query(queryUrl, secretKey, kind, id) {
  const res = await fetch(`${queryUrl}/v1/${kind}/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${secretKey}` },
    signal: AbortSignal.timeout(PROXY_TIMEOUT_MS),
  });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? 'application/json' };
}

// /api/visitors/:id and /api/customers/:id (see the top of the file).
async function proxy(req, res, { queryUrl, secretKey }, kind, rawId) {
  if (req.method !== 'GET') {
    res.setHeader('Allow', 'GET');
    return apiError(res, 405, 'method_not_allowed', `use GET for /api/${kind}/...`);
  }
  let id;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    return apiError(res, 400, 'invalid_path', 'the id is not a valid percent-encoded string');
  }
  const mine = cookie(req, 'cw_aid');
  if (!mine) return apiError(res, 403, 'no_visitor', 'this browser has no cw_aid cookie: the tracker has not run here');
  try {
    if (kind === 'visitors' && id !== mine) {
      return apiError(res, 403, 'not_this_visitor', 'the demo shows only the visitor of this browser (its cw_aid cookie)');
    }
    if (kind === 'customers') {
      const visitor = await query(queryUrl, secretKey, 'visitors', mine);
      let linked = null;
      try {
        linked = visitor.status === 200 ? JSON.parse(visitor.body).user_id : null;
      } catch {}
      if (linked !== id) {
        return apiError(res, 403, 'not_linked', 'the collector has not linked this browser to that customer (yet)');
      }
    }
    const answer = await query(queryUrl, secretKey, kind, id);
    res.writeHead(answer.status, { 'Content-Type': answer.type, 'Cache-Control': 'no-store' });
    res.end(answer.body);
  } catch (err) {
    apiError(res, 502, 'collector_unreachable', `the collector at ${queryUrl} did not answer: ${err.message}`);
  }
}

// The file under demo/ (or dist/) a path names, or null. Only the shop's own files: pages,
// scripts, styles and img/*.svg; never serve.mjs or anything outside.
function fileFor(pathname, trackerFromDemo) {
  if (pathname === '/') return path.join(here, 'index.html');
  if (pathname === '/layout.html') return null;  // parts of pages, not a page
  if (pathname === '/cartwatch.min.js') return trackerFromDemo ? path.join(root, 'dist/cartwatch.min.js') : null;
  const m = /^\/(img\/)?([A-Za-z0-9_-]+\.(html|js|css|svg))$/.exec(pathname);
  if (!m || (m[1] ? m[3] !== 'svg' : m[3] === 'svg')) return null;
  return path.join(here, m[1] ?? '', m[2]);
}

// The shared parts of the pages (layout.html), by name: { head, masthead, footer }.
async function layoutParts() {
  const text = await fs.readFile(path.join(here, 'layout.html'), 'utf8');
  const parts = {};
  const re = /<!-- layout:([a-z]+) -->\n/g;
  const marks = [...text.matchAll(re)];
  marks.forEach((m, i) => {
    const end = i + 1 < marks.length ? marks[i + 1].index : text.length;
    parts[m[1]] = text.slice(m.index + m[0].length, end).replace(/\n$/, '');
  });
  return parts;
}

// A page with its layout markers and the snippet filled in.
function renderPage(html, parts, snippet) {
  return html
    .replace(/<!-- layout:([a-z]+) -->/g, (marker, name) => parts[name] ?? marker)
    .replace('<!-- cartwatch -->', snippet);
}

// Resolves to { url, close() } once listening. `options` are the tracker's (writeKey, host,
// flushInterval, retryDelay, ...). `secretKey` is the site's, for the query API proxy;
// `queryUrl` where the proxy reaches the collector (default options.host). With
// `trackerFromDemo` the pages load /cartwatch.min.js from this server (the freshly built
// dist/) instead of {options.host}/cartwatch.js.
export async function startDemo({
  port = 8000,
  host = '127.0.0.1',
  options,
  secretKey = 'demo-secret-key',
  queryUrl = options.host,
  trackerFromDemo = false,
}) {
  const snippet = await snippetFor(options, trackerFromDemo ? { trackerSrc: '/cartwatch.min.js' } : {});
  const api = { queryUrl: String(queryUrl).replace(/\/+$/, ''), secretKey };
  const parts = await layoutParts();
  const server = http.createServer(async (req, res) => {
    let pathname;
    try {
      pathname = new URL(req.url, 'http://x').pathname;
    } catch {
      pathname = '';
    }
    const m = /^\/api\/(visitors|customers)\/([^/]+)$/.exec(pathname);
    if (m) return proxy(req, res, api, m[1], m[2]);
    const file = fileFor(pathname, trackerFromDemo);
    try {
      if (!file) throw new Error('no such file');
      let body = await fs.readFile(file, 'utf8');
      if (file.endsWith('.html')) body = renderPage(body, parts, snippet);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'text/plain', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
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
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${urlHost}:${bound}`, close };
}

// The command line: { port, host, collector, writeKey, secretKey, trackerFromDemo, help }.
// Throws with a sentence on an unknown flag or a bad value.
export function parseArgs(argv) {
  const out = {
    port: 8000,
    host: 'localhost',
    collector: 'http://localhost:8080',
    writeKey: 'demo-write-key',
    secretKey: 'demo-secret-key',
    trackerFromDemo: false,
    help: false,
  };
  const valued = { '--port': 'port', '--host': 'host', '--collector': 'collector', '--write-key': 'writeKey', '--secret-key': 'secretKey' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i]];
    if (flag === '-h' || flag === '--help') out.help = true;
    else if (flag === '--tracker-from-demo' && inline === undefined) out.trackerFromDemo = true;
    else if (valued[flag]) {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') throw new Error(`${flag} needs a value`);
      out[valued[flag]] = value;
    } else throw new Error(`unknown argument ${JSON.stringify(argv[i])}`);
  }
  const port = Number(out.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: ${JSON.stringify(out.port)} is not a port number`);
  out.port = port;
  let url;
  try {
    url = new URL(out.collector);
  } catch {
    throw new Error(`--collector: ${JSON.stringify(out.collector)} is not a URL`);
  }
  if (!/^https?:$/.test(url.protocol)) throw new Error('--collector: use an http:// or https:// URL');
  out.collector = out.collector.replace(/\/+$/, '');
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`serve.mjs: ${err.message} (--help lists the flags)\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  let demo;
  try {
    demo = await startDemo({
      port: args.port,
      host: args.host,
      options: { writeKey: args.writeKey, host: args.collector, flushInterval: 1000 },
      secretKey: args.secretKey,
      trackerFromDemo: args.trackerFromDemo,
    });
  } catch (err) {
    process.stderr.write(`serve.mjs: cannot serve on ${args.host}:${args.port}: ${err.message}\n`);
    process.exit(1);
  }
  const tracker = args.trackerFromDemo ? `${demo.url}/cartwatch.min.js` : `${args.collector}/cartwatch.js`;
  console.log(`demo shop: ${demo.url}/ (tracker from ${tracker}, sending to ${args.collector})`);
}
