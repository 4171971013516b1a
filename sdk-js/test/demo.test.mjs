// The demo shop in a real browser (Debian's chromium, driven by playwright-core) against the
// real collector (CARTWATCH_BIN), with the tracker loaded from the collector's /cartwatch.js
// as a shop would: a shopper browses, views a product, adds two products, looks at the cart,
// signs in, checks out and double-clicks "Place order". The collector must then know one
// customer under an opaque userId (never the e-mail) with exactly one order of the cart's
// total and an empty cart, and the page's "Cartwatch live" panel must show what the tracker
// sent and the visitor and customer documents. Screenshots of the cart and of the placed
// order are saved in $CARTWATCH_ARTEFACTS (default sdk-js/test/artefacts/); their paths are
// printed.
//
// CARTWATCH_DEMO_TRACKER=demo loads the tracker from the demo server (dist/cartwatch.min.js)
// instead, for a collector that does not serve /cartwatch.js.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, browserSkip } from '../../tests/e2e/lib/browser.mjs';

import { DEFAULT_SITE, fetchAllEvents, freePort, startCartwatch } from '../../tests/e2e/lib/cartwatch.mjs';
import { startDemo } from '../demo/serve.mjs';

const skip = browserSkip;
const ARGS = CHROMIUM_ARGS;

const ARTEFACTS = process.env.CARTWATCH_ARTEFACTS ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'artefacts');
const EMAIL = 'ada@example.com';
// A secret key that no page text could contain by chance: the test checks that no page does.
const SECRET = 'demo-test-secret-7f3a9c';

const label = (e) => (e.type === 'track' ? e.event : e.type === 'page' ? `page ${e.name}` : e.type);

async function screenshot(t, page, name) {
  mkdirSync(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${file}`);
  console.log(`screenshot: ${file}`);
}

async function query(cw, route) {
  const res = await fetch(`${cw.publicUrl}${route}`, { headers: { Authorization: `Bearer ${SECRET}` } });
  return { status: res.status, doc: await res.json() };
}

test('a shopper signs in and orders once, under an opaque id, and the panel shows what Cartwatch knows', { skip, timeout: 60_000 }, async (t) => {
  const demoPort = await freePort();
  const origin = `http://127.0.0.1:${demoPort}`;
  const site = { ...DEFAULT_SITE, secretKey: SECRET, allowedOrigins: [origin] };
  const cw = await startCartwatch(t, { sites: [site] });
  const trackerFromDemo = process.env.CARTWATCH_DEMO_TRACKER === 'demo';
  if (!trackerFromDemo) {
    const res = await fetch(`${cw.publicUrl}/cartwatch.js`);
    assert.equal(res.status, 200, `the collector does not serve the tracker: GET /cartwatch.js answered ${res.status} ` +
      '(CARTWATCH_DEMO_TRACKER=demo loads it from the demo server instead)');
  }
  const demo = await startDemo({
    port: demoPort,
    options: { writeKey: site.writeKey, host: cw.publicUrl, flushInterval: 200 },
    secretKey: SECRET,
    trackerFromDemo,
  });
  t.after(() => demo.close());
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  t.after(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const failures = [];
  page.on('pageerror', (err) => failures.push(err.message));

  // Browse: a catalog with prices and pictures, all local.
  await page.goto(`${demo.url}/index.html`);
  assert.equal(await page.locator('#products .card').count(), 6);
  await page.waitForFunction(() => [...document.images].every((i) => i.complete));
  assert.ok(await page.evaluate(() => [...document.images].every((i) => i.naturalWidth > 0)), 'a product picture did not load');
  assert.match(await page.locator('#products .card').first().innerText(), /Tall Boot[\s\S]*€79\.95/);

  // A product page; two of them into the cart; then a second product from the list.
  await page.click('#view-sock');
  await page.waitForURL(/product\.html\?id=sock/);
  assert.equal(await page.textContent('#title'), 'Wool Sock');
  assert.equal(await page.textContent('#price'), '€4.50');
  await page.fill('#qty', '2');
  await page.click('#add');
  await page.click('#home');
  await page.waitForURL(/index\.html/);
  await page.click('#add-boot');
  assert.equal(await page.textContent('#count'), '3');

  // The cart: line totals and the total.
  await page.click('#to-cart');
  await page.waitForURL(/cart\.html/);
  assert.equal(await page.textContent('#line-total-sock'), '€9.00');
  assert.equal(await page.textContent('#line-total-boot'), '€79.95');
  assert.equal(await page.textContent('#total'), '€88.95');
  await screenshot(t, page, 'demo-cart.png');

  // Sign in, and back to the cart.
  await page.click('#login');
  await page.waitForURL(/login\.html/);
  await page.fill('#login-email', EMAIL);
  await page.fill('#login-name', 'Ada');
  await page.fill('#login-password', 'correct horse');
  await page.click('#login-submit');
  await page.waitForURL(/cart\.html/);
  assert.match(await page.textContent('#account'), /Hi, Ada/);

  // Checkout, and an impatient double click on "Place order".
  await page.click('#checkout');
  await page.waitForURL(/checkout\.html/);
  await page.waitForSelector('#delivery-step:not([hidden])');
  assert.match(await page.textContent('#who'), /Ada \(ada@example\.com\)/);
  await page.fill('#address', '12 Analytical Row');
  await page.fill('#postcode', 'NW1 2AB');
  await page.fill('#city', 'London');
  await page.dblclick('#place');
  await page.waitForSelector('#done:has-text("Thank you, Ada")');
  assert.ok(await page.isDisabled('#place'));
  assert.match(await page.textContent('#done'), /Order ORD-[0-9A-F]{8} \(€88\.95\) is placed/);
  assert.equal(await page.textContent('#count'), '0');

  // The panel shows the customer with her one order (it refreshes after each batch).
  await page.waitForFunction(
    () => document.getElementById('cw-customer')?.dataset.state === 'known' &&
      /^1 order$/.test(document.getElementById('cw-orders')?.textContent ?? ''),
    null,
    { timeout: 15_000 },
  );
  await screenshot(t, page, 'demo-order.png');
  // Even with the button enabled again, the cart is empty: nothing more is ordered.
  await page.evaluate(() => (document.getElementById('place').disabled = false));
  await page.click('#place');
  await page.evaluate(() => window.cartwatch.flush());

  // What the collector stored.
  const { events } = await fetchAllEvents(cw.publicUrl, SECRET);
  const orders = events.filter((e) => e.event === 'Order Completed');
  assert.equal(orders.length, 1, `orders recorded: ${JSON.stringify(orders.map((e) => e.properties))}`);
  const identify = events.find((e) => e.type === 'identify');
  const userId = identify.userId;
  assert.match(userId, /^u_[0-9a-f]{16}$/);
  assert.deepEqual(identify.traits, { email: EMAIL, firstName: 'Ada' });
  assert.equal(orders[0].userId, userId);
  assert.equal(orders[0].properties.total, 88.95);
  assert.deepEqual(orders[0].properties.products.map((p) => [p.product_id, p.quantity, p.price]), [['sock', 2, 4.5], ['boot', 1, 79.95]]);
  assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1);
  for (const e of events) assert.ok(!String(e.userId ?? '').includes('@') && !String(e.anonymousId).includes('@'));
  assert.deepEqual(
    events.map(label).filter((l) => !l.startsWith('page')),
    ['Product Viewed', 'Product Added', 'Product Added', 'Cart Updated', 'identify', 'Cart Updated', 'Checkout Started', 'Order Completed'],
  );

  // What the query API says: one order of 88.95, an empty cart, the opaque id.
  const customer = await query(cw, `/v1/customers/${userId}`);
  assert.equal(customer.status, 200);
  assert.equal(customer.doc.user_id, userId);
  assert.equal(customer.doc.traits.email, EMAIL);
  assert.equal(customer.doc.stats.orders, 1);
  assert.equal(customer.doc.stats.revenue, 88.95);
  assert.deepEqual(customer.doc.recent_orders.map((o) => [o.order_id, o.revenue]), [[orders[0].properties.order_id, 88.95]]);
  assert.deepEqual(customer.doc.cart.lines, []);
  assert.equal(customer.doc.cart.value, 0);
  assert.deepEqual(customer.doc.anonymous_ids, [identify.anonymousId]);
  assert.equal((await query(cw, `/v1/customers/${encodeURIComponent(EMAIL)}`)).status, 404);
  const visitor = await query(cw, `/v1/visitors/${identify.anonymousId}`);
  assert.equal(visitor.doc.user_id, userId);

  // The panel: what the tracker sent, and the same documents.
  const panelVisitor = JSON.parse(await page.textContent('#cw-visitor-json'));
  assert.equal(panelVisitor.anonymous_id, identify.anonymousId);
  assert.equal(panelVisitor.user_id, userId);
  const panelCustomer = JSON.parse(await page.textContent('#cw-customer-json'));
  assert.equal(panelCustomer.user_id, userId);
  assert.equal(panelCustomer.stats.orders, 1);
  assert.deepEqual(panelCustomer.cart.lines, []);
  assert.match(await page.innerText('#cw-customer'), /1 order, €88\.95 revenue/);
  assert.equal(await page.locator('#cw-sent details[data-label="Order Completed"]').count(), 1);
  assert.ok(await page.locator('#cw-sent details[data-label="identify"]').count() >= 1);

  // The proxy answers only about this browser, and the secret key never reaches it.
  assert.equal(await page.evaluate(() => fetch('/api/visitors/someone-else').then((r) => r.status)), 403);
  assert.equal(await page.evaluate(() => fetch('/api/customers/u_0000000000000000').then((r) => r.status)), 403);
  assert.equal((await fetch(`${demo.url}/api/visitors/${identify.anonymousId}`)).status, 403); // no cookie
  assert.ok(!(await page.content()).includes(SECRET));

  // No request went elsewhere, the tracker came from the collector, and no URL named the e-mail.
  const allowed = [demo.url, cw.publicUrl, 'data:'];
  assert.deepEqual(requests.filter((u) => !allowed.some((a) => u.startsWith(a))), []);
  if (!trackerFromDemo) assert.ok(requests.includes(`${cw.publicUrl}/cartwatch.js`), 'the tracker was not loaded from the collector');
  assert.deepEqual(requests.filter((u) => /ada(@|%40)example/i.test(u)), []);
  assert.deepEqual(failures, []);
});
