// The tracker as the collector serves it (GET /cartwatch.js), in Debian's chromium, on a page
// whose Content-Security-Policy allows the collector's origin and nothing else beyond the
// nonce of the inline snippet (sdk-js/README.md): it loads, sends, and breaks no rule of the
// policy. The same page under a policy that leaves the collector out loads nothing: the
// policy is really enforced, so the first case proves the documented one is enough.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, browserSkip } from '../../tests/e2e/lib/browser.mjs';

import { DEFAULT_SITE, fetchAllEvents, freePort, sleep, startCartwatch } from '../../tests/e2e/lib/cartwatch.mjs';
import { snippetFor } from '../demo/serve.mjs';

const skip = browserSkip;
const ARGS = CHROMIUM_ARGS;
const NONCE = 'c2hvcC1ub25jZS0x';

// One page: the snippet (with the nonce), a page view and an Product Added, and a record of
// every CSP violation the browser reports.
async function startShop(collector, policy) {
  const snippet = (await snippetFor({ writeKey: DEFAULT_SITE.writeKey, host: collector, flushInterval: 50 }))
    .replace('<script>', `<script nonce="${NONCE}">`);
  const html = `<!doctype html><html><head><title>CSP shop</title>
<script nonce="${NONCE}">window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));</script>
${snippet}
<script nonce="${NONCE}">cartwatch.page('CSP'); cartwatch.productAdded({ product_id: 'csp-sock', price: 5, quantity: 1 });</script>
</head><body>shop</body></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': policy });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => { server.close(resolve); server.closeAllConnections(); }),
  };
}

async function setUp(t) {
  const collectorPort = await freePort();
  const collector = `http://127.0.0.1:${collectorPort}`;
  // The shop's origin is known only once it listens: every loopback origin is allowed here.
  const site = { ...DEFAULT_SITE, allowedOrigins: ['*'] };
  const cw = await startCartwatch(t, { sites: [site], args: ['--listen', `127.0.0.1:${collectorPort}`] });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  t.after(() => browser.close());
  return { cw, collector, browser };
}

test('the collector-served tracker runs under a CSP that allows only the collector', { skip, timeout: 60_000 }, async (t) => {
  const { cw, collector, browser } = await setUp(t);
  const shop = await startShop(collector,
    `default-src 'none'; script-src 'nonce-${NONCE}' ${collector}; connect-src ${collector}`);
  t.after(() => shop.close());
  const page = await browser.newPage();
  const scripts = [];
  page.on('response', (r) => { if (r.url().endsWith('/cartwatch.js')) scripts.push(r.status()); });
  await page.goto(shop.url);

  let events = [];
  for (const until = Date.now() + 15_000; events.length < 2 && Date.now() < until; await sleep(100)) {
    ({ events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey));
  }
  assert.deepEqual(events.map((e) => e.type === 'track' ? e.event : e.type), ['page', 'Product Added']);
  assert.equal(events[1].properties.product_id, 'csp-sock');
  assert.deepEqual(scripts, [200]);
  assert.deepEqual(await page.evaluate(() => window.violations), []);
});

test('a CSP without the collector blocks the tracker (the policy is enforced)', { skip, timeout: 60_000 }, async (t) => {
  const { cw, collector, browser } = await setUp(t);
  const shop = await startShop(collector, `default-src 'none'; script-src 'nonce-${NONCE}'`);
  t.after(() => shop.close());
  const page = await browser.newPage();
  await page.goto(shop.url);
  const until = Date.now() + 10_000;
  let violations = [];
  while (violations.length === 0 && Date.now() < until) {
    await sleep(100);
    violations = await page.evaluate(() => window.violations);
  }
  assert.ok(violations.some((v) => v.startsWith('script-src') && v.includes('/cartwatch.js')), violations.join('; '));
  const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  assert.equal(events.length, 0);
});
