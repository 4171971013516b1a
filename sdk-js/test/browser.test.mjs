// The tracker in a real browser (Debian's chromium, driven by playwright-core) on the demo
// shop, against the real collector binary (CARTWATCH_BIN): a whole visit arrives in order
// under one anonymous id, also across page loads and when the tab is closed; events made
// while the collector is down arrive once it is back, also across a reload; after opt-out
// nothing arrives. The pages load the tracker that `npm run build` just made
// (dist/cartwatch.min.js, served by the demo server), so these tests check this tree's
// tracker whatever copy the collector serves; test/demo.test.mjs loads the collector's.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, browserSkip } from '../../tests/e2e/lib/browser.mjs';

import { DEFAULT_SITE, fetchAllEvents, freePort, sleep, startCartwatch } from '../../tests/e2e/lib/cartwatch.mjs';
import { startDemo } from '../demo/serve.mjs';

const skip = browserSkip;
const ARGS = CHROMIUM_ARGS;

async function setUp(t, tracker = {}) {
  const demoPort = await freePort();
  const collectorPort = await freePort();
  const origin = `http://127.0.0.1:${demoPort}`;
  const site = { ...DEFAULT_SITE, allowedOrigins: [origin] };
  const listen = ['--listen', `127.0.0.1:${collectorPort}`];
  const cw = await startCartwatch(t, { sites: [site], args: listen });
  const demo = await startDemo({
    port: demoPort,
    options: { writeKey: site.writeKey, host: `http://127.0.0.1:${collectorPort}`, ...tracker },
    secretKey: site.secretKey,
    trackerFromDemo: true,
  });
  t.after(() => demo.close());
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  t.after(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  const restart = () => startCartwatch(t, { dir: cw.dir, args: listen });
  return { cw, demo, browser, page, restart };
}

// The site's events once there are at least `n` (within `ms`).
async function eventsAtLeast(cw, n, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
    if (events.length >= n || Date.now() > until) return events;
    await sleep(100);
  }
}

const label = (e) => (e.type === 'track' ? e.event : e.type === 'page' ? `page ${e.name}` : e.type);

test('a visit arrives complete, in order, under one anonymous id, also when the tab is closed', { skip, timeout: 90_000 }, async (t) => {
  // Nothing leaves by timer or batch size: only page hides (beacons) and the next page's
  // resend of what it found queued.
  const { cw, demo, page } = await setUp(t, { flushInterval: 600_000, batchSize: 100 });
  await page.goto(`${demo.url}/index.html`);
  await page.click('#add-boot');
  await page.click('#view-sock');
  await page.waitForURL(/product\.html/);
  await page.click('#add');
  await page.click('#to-cart');
  await page.waitForURL(/cart\.html/);
  await page.click('#remove-boot');
  await page.click('#checkout');
  await page.waitForURL(/checkout\.html/);
  await page.fill('#email', 'ada@example.com');
  await page.fill('#name', 'Ada');
  await page.click('#continue');
  await page.fill('#address', '12 Analytical Row');
  await page.fill('#postcode', 'NW1 2AB');
  await page.fill('#city', 'London');
  await page.click('#place');
  await page.waitForSelector('#done:has-text("Thank you")');
  await page.close({ runBeforeUnload: true }); // the last events leave by sendBeacon

  const expected = [
    'page Home', 'Product Added',
    'page Product', 'Product Viewed', 'Product Added',
    'page Cart', 'Cart Updated', 'Product Removed',
    'page Checkout', 'identify', 'Checkout Started', 'Order Completed',
  ];
  const events = await eventsAtLeast(cw, expected.length);
  assert.deepEqual(events.map(label), expected);
  assert.equal(new Set(events.map((e) => e.messageId)).size, events.length); // none twice
  assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1);
  assert.match(events[0].anonymousId, /^[0-9a-f-]{36}$/);
  const identify = events[9];
  assert.match(identify.userId, /^u_[0-9a-f]{16}$/); // the shop's opaque id; the e-mail is a trait
  assert.deepEqual(identify.traits, { email: 'ada@example.com', firstName: 'Ada' });
  assert.equal(events[11].userId, identify.userId); // kept after identify
  assert.equal(events[11].properties.total, 4.5);
  assert.deepEqual(events[11].properties.products.map((p) => p.product_id), ['sock']);
  assert.equal(events[4].properties.product_id, 'sock');
  assert.equal(events[0].context.page.url, `${demo.url}/index.html`);
  assert.equal(events[0].context.library.name, 'cartwatch-sdk');
  assert.ok(events[0].context.userAgent.includes('Chrome'));

  // The collector has built the profile from them.
  const res = await fetch(`${cw.publicUrl}/v1/customers/${identify.userId}`, {
    headers: { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` },
  });
  assert.equal(res.status, 200);
  const customer = await res.json();
  assert.equal(customer.stats.orders, 1);
  assert.deepEqual(customer.anonymous_ids, [events[0].anonymousId]);
});

test('events made while the collector is down arrive once it is back, also across a reload', { skip, timeout: 90_000 }, async (t) => {
  const { cw, demo, page, restart } = await setUp(t, { batchSize: 1, retryDelay: 200 });
  await page.goto(`${demo.url}/index.html`);
  assert.deepEqual((await eventsAtLeast(cw, 1)).map(label), ['page Home']);

  await cw.stop();
  await page.click('#add-boot');
  await page.click('#add-sock');
  await page.reload(); // the queue is in localStorage
  await page.click('#add-hat');
  await sleep(1500); // a few failed attempts
  const back = await restart();
  // What a browser does when its connection comes back; without it the next retry comes
  // by itself, but later (the backoff has grown meanwhile).
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  const events = await eventsAtLeast(back, 5);
  assert.deepEqual(events.map(label), ['page Home', 'Product Added', 'Product Added', 'page Home', 'Product Added']);
  assert.deepEqual(
    events.filter((e) => e.event === 'Product Added').map((e) => e.properties.product_id),
    ['boot', 'sock', 'hat'],
  );
  assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1);
});

test('after opt-out nothing arrives, not even what was queued, on this page or the next', { skip, timeout: 90_000 }, async (t) => {
  // Nothing leaves by timer or batch size: what is queued at the opt-out would go by beacon.
  const { cw, demo, browser, page } = await setUp(t, { batchSize: 100, flushInterval: 600_000 });
  await page.goto(`${demo.url}/index.html`); // page Home: queued
  await page.click('#opt-out');
  await page.click('#add-boot');
  await page.click('#view-sock');
  await page.waitForURL(/product\.html/);
  await page.click('#add');
  await page.close({ runBeforeUnload: true });

  // The same steps in another browser profile without the opt-out do arrive.
  const control = await (await browser.newContext()).newPage();
  await control.goto(`${demo.url}/index.html`);
  await control.click('#add-boot');
  await control.close({ runBeforeUnload: true });
  const arrived = await eventsAtLeast(cw, 2);
  assert.deepEqual(arrived.map(label), ['page Home', 'Product Added']);
  await sleep(2000); // time for anything late from the opted-out profile
  const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  assert.equal(events.length, 2);
  assert.equal(new Set(events.map((e) => e.anonymousId)).size, 1);
});
