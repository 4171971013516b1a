// Unit tests of the tracker (dist/cartwatch.mjs, built by `npm run build`) in a fake window:
// payload shape, batching, the persistent queue, backoff and retry rules, beacons on page
// hide, chunking, consent, and never throwing into the page.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createTracker } from '../dist/cartwatch.mjs';
import { FakeStorage, FakeWindow, messages, response, settle } from './fake_window.mjs';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const options = { writeKey: 'wk', host: 'https://collect.example/', batchSize: 3, flushInterval: 5000 };

test('messages have the Segment shape and the batch carries writeKey and sentAt', async () => {
  const w = new FakeWindow();
  const t = createTracker(options, w);
  t.page('Home');
  t.identify('ada', { email: 'ada@example.com' });
  t.productAdded({ product_id: 'sock', price: 4.5, quantity: 2 });
  await settle();
  assert.equal(w.requests.length, 1);
  const { url, init, body } = w.requests[0];
  assert.equal(url, 'https://collect.example/v1/batch');
  assert.equal(init.method, 'POST');
  assert.equal(init.keepalive, true);
  assert.equal(init.headers['Content-Type'], 'text/plain'); // no CORS preflight
  assert.equal(body.writeKey, 'wk');
  assert.match(body.sentAt, ISO);
  const [page, identify, added] = body.batch;
  assert.equal(page.type, 'page');
  assert.equal(page.name, 'Home');
  assert.match(page.messageId, UUID);
  assert.match(page.anonymousId, UUID);
  assert.match(page.timestamp, ISO);
  assert.equal(page.userId, undefined);
  assert.deepEqual(page.properties, {
    url: 'https://shop.example/p?utm_source=news&utm_campaign=nov',
    path: '/p',
    search: '?utm_source=news&utm_campaign=nov',
    title: 'Shop',
    referrer: 'https://mail.example/',
  });
  assert.deepEqual(page.context.page, page.properties);
  assert.deepEqual(page.context.campaign, { source: 'news', name: 'nov' });
  assert.equal(page.context.userAgent, 'FakeBrowser/1.0');
  assert.equal(page.context.locale, 'de-DE');
  assert.deepEqual(page.context.screen, { width: 1280, height: 800 });
  assert.equal(page.context.library.name, 'cartwatch-sdk');
  assert.equal(identify.type, 'identify');
  assert.equal(identify.userId, 'ada');
  assert.deepEqual(identify.traits, { email: 'ada@example.com' });
  assert.equal(added.type, 'track');
  assert.equal(added.event, 'Product Added');
  assert.equal(added.userId, 'ada'); // kept after identify
  assert.deepEqual(added.properties, { product_id: 'sock', price: 4.5, quantity: 2 });
  assert.equal(new Set(body.batch.map((m) => m.anonymousId)).size, 1);
  assert.equal(new Set(body.batch.map((m) => m.messageId)).size, 3);
});

test('e-commerce helpers send the E-commerce Spec v2 events', async () => {
  const w = new FakeWindow();
  const t = createTracker({ ...options, batchSize: 100 }, w);
  t.productViewed({ product_id: 'p1' });
  t.productRemoved({ product_id: 'p1', quantity: 1 });
  t.cartUpdated([{ product_id: 'p2', quantity: 2 }], { currency: 'EUR' });
  t.checkoutStarted({ value: 10 });
  t.orderCompleted({ order_id: 'o1', total: 10, products: [{ product_id: 'p2' }] });
  t.track('Coupon Entered', { coupon_id: 'X' });
  await t.flush();
  const sent = messages(w);
  assert.deepEqual(
    sent.map((m) => m.event),
    ['Product Viewed', 'Product Removed', 'Cart Updated', 'Checkout Started', 'Order Completed', 'Coupon Entered'],
  );
  assert.deepEqual(sent[2].properties, { currency: 'EUR', products: [{ product_id: 'p2', quantity: 2 }] });
  assert.equal(sent[4].properties.order_id, 'o1');
});

test('a partial batch waits for flushInterval, a full one goes at once', async () => {
  const w = new FakeWindow();
  const t = createTracker(options, w);
  t.track('A');
  t.track('B');
  await settle();
  assert.equal(w.requests.length, 0);
  assert.equal(w.pendingDelay(), 5000);
  await w.advance(4999);
  assert.equal(w.requests.length, 0);
  await w.advance(1);
  assert.deepEqual(messages(w).map((m) => m.event), ['A', 'B']);
  t.track('C');
  t.track('D');
  t.track('E');
  await settle();
  assert.equal(w.requests.length, 2);
  assert.deepEqual(w.requests[1].body.batch.map((m) => m.event), ['C', 'D', 'E']);
});

test('the anonymous id lives in a first-party cookie and localStorage; reset starts a new one', async () => {
  const storage = new FakeStorage();
  const w = new FakeWindow({ storage });
  const t = createTracker(options, w);
  const aid = t.anonymousId;
  assert.match(aid, UUID);
  assert.equal(w.cookies.get('cw_aid'), aid);
  assert.equal(storage.getItem('cw_aid'), aid);
  // Next page: the same visitor, from the cookie even when localStorage was cleared.
  storage.map.delete('cw_aid');
  const w2 = new FakeWindow({ storage });
  w2.cookies = w.cookies;
  assert.equal(createTracker(options, w2).anonymousId, aid);
  // Or from localStorage when cookies were cleared.
  const w3 = new FakeWindow({ storage });
  assert.equal(createTracker(options, w3).anonymousId, aid);

  t.identify('ada');
  t.reset();
  assert.notEqual(t.anonymousId, aid);
  t.track('After');
  await t.flush();
  const after = messages(w).at(-1);
  assert.equal(after.userId, undefined);
  assert.equal(after.anonymousId, t.anonymousId);
});

test('undelivered messages survive a reload and are sent by the next page', async () => {
  const storage = new FakeStorage();
  const w = new FakeWindow({ storage });
  w.answer = () => Promise.reject(new TypeError('Failed to fetch')); // offline
  const t = createTracker(options, w);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  assert.equal(w.requests.length, 1);
  assert.equal(JSON.parse(storage.getItem('cw_q')).length, 3);

  const next = new FakeWindow({ storage }); // the reload, back online
  createTracker(options, next);
  await next.advance(0);
  assert.deepEqual(messages(next).map((m) => m.event), ['A', 'B', 'C']);
  assert.equal(storage.getItem('cw_q'), null); // nothing left
});

test('network errors, 429 and 5xx retry with backoff; Retry-After is honoured', async () => {
  const w = new FakeWindow();
  const answers = [
    () => Promise.reject(new TypeError('Failed to fetch')),
    () => Promise.resolve(response(503)),
    () => Promise.resolve(response(429, { 'Retry-After': '7' })),
    () => Promise.resolve(response(200)),
  ];
  w.answer = () => answers.shift()();
  const t = createTracker({ ...options, retryDelay: 1000 }, w);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  assert.equal(w.requests.length, 1);
  const first = w.pendingDelay();
  assert.ok(first >= 500 && first <= 1000, `first retry after ${first} ms`);
  t.track('D'); // queued behind the retry, not sent on its own
  await settle();
  assert.equal(w.requests.length, 1);
  await w.advance(first);
  assert.equal(w.requests.length, 2);
  const second = w.pendingDelay();
  assert.ok(second >= 1000 && second <= 2000, `second retry after ${second} ms`);
  await w.advance(second);
  assert.equal(w.requests.length, 3);
  assert.equal(w.pendingDelay(), 7000); // Retry-After: 7
  await w.advance(7000);
  assert.equal(w.requests.length, 4);
  assert.deepEqual(w.requests[3].body.batch.map((m) => m.event), ['A', 'B', 'C', 'D']);
  // Every attempt carried the same messageIds.
  assert.deepEqual(
    w.requests[0].body.batch.map((m) => m.messageId),
    w.requests[3].body.batch.slice(0, 3).map((m) => m.messageId),
  );
  assert.equal(w.pendingDelay(), undefined); // delivered: nothing more to do
});

test('other 4xx answers are not retried', async () => {
  for (const status of [400, 401, 403, 413]) {
    const w = new FakeWindow();
    w.answer = () => Promise.resolve(response(status));
    const t = createTracker(options, w);
    t.track('A');
    t.track('B');
    t.track('C');
    await w.advance(600_000);
    assert.equal(w.requests.length, 1, `status ${status}`);
    assert.equal(w.localStorage.getItem('cw_q'), null);
  }
});

test('coming back online sends at once', async () => {
  const w = new FakeWindow();
  let online = false;
  w.answer = () => (online ? Promise.resolve(response(200)) : Promise.reject(new TypeError('offline')));
  const t = createTracker({ ...options, retryDelay: 60_000 }, w);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  online = true;
  w.dispatch('online');
  await settle();
  assert.equal(w.requests.length, 2);
  assert.equal(w.requests[1].body.batch.length, 3);
});

test('the queue is bounded: the oldest messages go first', async () => {
  const w = new FakeWindow();
  w.answer = () => Promise.reject(new TypeError('offline'));
  const t = createTracker({ ...options, batchSize: 100, maxQueue: 5 }, w);
  for (let i = 0; i < 8; i++) t.track(`E${i}`);
  const stored = JSON.parse(w.localStorage.getItem('cw_q'));
  assert.deepEqual(stored.map((m) => m.properties && m.event), ['E3', 'E4', 'E5', 'E6', 'E7']);
});

test('on page hide the queue goes by sendBeacon, text/plain with the write key, and stays queued until acknowledged', async () => {
  const storage = new FakeStorage();
  const w = new FakeWindow({ storage });
  const t = createTracker({ ...options, batchSize: 100 }, w);
  t.page();
  t.productAdded({ product_id: 'sock' });
  w.dispatch('pagehide');
  assert.equal(w.beacons.length, 1);
  assert.equal(w.beacons[0].url, 'https://collect.example/v1/batch');
  assert.equal(w.beacons[0].body.writeKey, 'wk');
  assert.deepEqual(w.beacons[0].body.batch.map((m) => m.type), ['page', 'track']);
  assert.equal(w.requests.length, 0);
  // A beacon has no answer: the next page sends the same messages again (the collector
  // drops duplicates by messageId).
  const next = new FakeWindow({ storage });
  createTracker(options, next);
  await next.advance(0);
  assert.deepEqual(
    messages(next).map((m) => m.messageId),
    w.beacons[0].body.batch.map((m) => m.messageId),
  );

  const hidden = new FakeWindow();
  const t2 = createTracker({ ...options, batchSize: 100 }, hidden);
  t2.track('X');
  hidden.document.visibilityState = 'hidden';
  hidden.dispatch('visibilitychange');
  assert.equal(hidden.beacons.length, 1);
});

test('requests stay under 64 KB: a big queue is sent in chunks, in order', async () => {
  const w = new FakeWindow();
  const t = createTracker({ ...options, batchSize: 1000 }, w);
  const blob = 'x'.repeat(2000);
  for (let i = 0; i < 80; i++) t.track(`E${i}`, { blob });
  await t.flush();
  await settle();
  assert.ok(w.requests.length >= 3, `${w.requests.length} requests`);
  for (const r of w.requests) assert.ok(r.init.body.length < 64 * 1024, `${r.init.body.length} bytes`);
  assert.deepEqual(
    messages(w).map((m) => m.event),
    Array.from({ length: 80 }, (_, i) => `E${i}`),
  );
});

test('the 64 KB limit counts UTF-8 bytes; a message over 32 KB is dropped', async () => {
  const w = new FakeWindow();
  const t = createTracker({ ...options, batchSize: 1000 }, w);
  const name = '靴'.repeat(2000) + '👢'.repeat(500); // 6,000 + 2,000 bytes, 3,000 UTF-16 units
  for (let i = 0; i < 30; i++) t.track(`E${i}`, { name });
  t.track('Huge', { blob: 'x'.repeat(33_000) });
  t.track('Last');
  await t.flush();
  await settle();
  assert.ok(w.requests.length >= 4, `${w.requests.length} requests`);
  for (const r of w.requests) {
    const size = Buffer.byteLength(r.init.body, 'utf8');
    assert.ok(size < 64 * 1024, `a request of ${size} bytes`);
  }
  assert.deepEqual(
    messages(w).map((m) => m.event),
    [...Array.from({ length: 30 }, (_, i) => `E${i}`), 'Last'],
  );
  assert.equal(messages(w)[0].properties.name, name);
});

test('Retry-After as an HTTP date is honoured, and any Retry-After is capped at an hour', async () => {
  const w = new FakeWindow();
  const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
  const answers = [
    () => Promise.resolve(response(503, { 'Retry-After': inTenSeconds })),
    () => Promise.resolve(response(429, { 'Retry-After': '86400' })),
    () => Promise.resolve(response(200)),
  ];
  w.answer = () => answers.shift()();
  const t = createTracker(options, w);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  const first = w.pendingDelay();
  assert.ok(first > 8_000 && first <= 10_000, `retry after ${first} ms`);
  await w.advance(first);
  assert.equal(w.pendingDelay(), 3_600_000);
  await w.advance(3_600_000);
  assert.equal(w.requests.length, 3);
});

test('opting out while a retry is pending, then in again, sends new messages', async () => {
  const w = new FakeWindow();
  let online = false;
  w.answer = () => (online ? Promise.resolve(response(200)) : Promise.reject(new TypeError('offline')));
  const t = createTracker(options, w);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  assert.notEqual(w.pendingDelay(), undefined); // a retry is scheduled
  t.optOut();
  assert.equal(w.pendingDelay(), undefined);
  online = true;
  await w.advance(600_000);
  assert.equal(w.requests.length, 1); // the retry never went
  t.optIn();
  t.track('D');
  t.track('E');
  t.track('F');
  await settle();
  assert.deepEqual(w.requests.at(-1).body.batch.map((m) => m.event), ['D', 'E', 'F']);
});

test('hiding then unloading the page beacons once, within the 64 KB budget', async () => {
  const w = new FakeWindow();
  const t = createTracker({ ...options, batchSize: 1000, flushInterval: 600_000 }, w);
  const blob = 'x'.repeat(20_000);
  for (let i = 0; i < 5; i++) t.track(`E${i}`, { blob }); // about 100 KB: more than one beacon can carry
  w.document.visibilityState = 'hidden';
  w.dispatch('visibilitychange');
  w.dispatch('pagehide');
  const sent = w.beacons.flatMap((b) => b.body.batch.map((m) => m.event));
  assert.ok(w.beacons.length >= 1);
  assert.equal(new Set(sent).size, sent.length, `beaconed twice: ${sent}`);
  const total = w.beacons.reduce((n, b) => n + Buffer.byteLength(JSON.stringify(b.body)), 0);
  assert.ok(total <= 64_000, `${total} bytes in beacons`);
  assert.deepEqual(sent, ['E0', 'E1']); // in order; the rest waits in the queue
  assert.equal(JSON.parse(w.localStorage.getItem('cw_q')).length, 5);

  // A browser that refuses (its budget is spent) ends the loop.
  const refusing = new FakeWindow();
  let calls = 0;
  refusing.navigator.sendBeacon = () => (calls++, false);
  const t2 = createTracker({ ...options, batchSize: 1000 }, refusing);
  for (let i = 0; i < 5; i++) t2.track(`E${i}`, { blob });
  refusing.dispatch('pagehide');
  assert.equal(calls, 1);
});

test('two tabs share one queue, in time order, and a reload sends it all', async () => {
  const storage = new FakeStorage();
  const a = new FakeWindow({ storage });
  const b = new FakeWindow({ storage });
  a.answer = b.answer = () => Promise.reject(new TypeError('offline'));
  const ta = createTracker({ ...options, batchSize: 100 }, a);
  const tb = createTracker({ ...options, batchSize: 100 }, b);
  assert.equal(ta.anonymousId, tb.anonymousId); // one visitor
  ta.track('A1');
  await new Promise((r) => setTimeout(r, 2));
  tb.track('B1');
  await new Promise((r) => setTimeout(r, 2));
  ta.track('A2');
  assert.deepEqual(JSON.parse(storage.getItem('cw_q')).map((m) => m.event), ['A1', 'B1', 'A2']);
  const next = new FakeWindow({ storage });
  createTracker(options, next);
  await next.advance(0);
  assert.deepEqual(messages(next).map((m) => m.event), ['A1', 'B1', 'A2']);
});

test('after opt-out nothing leaves the browser; GPC counts as opt-out when asked to', async () => {
  const w = new FakeWindow();
  const t = createTracker({ ...options, batchSize: 100 }, w);
  t.track('Before');
  t.optOut();
  t.track('After');
  t.page();
  await t.flush();
  w.dispatch('pagehide');
  await w.advance(600_000);
  assert.equal(w.requests.length, 0);
  assert.equal(w.beacons.length, 0);
  assert.equal(w.localStorage.getItem('cw_q'), null);
  // It holds for the next page too, until optIn.
  const next = new FakeWindow({ storage: w.localStorage });
  const t2 = createTracker(options, next);
  t2.track('A');
  t2.track('B');
  t2.track('C');
  await next.advance(600_000);
  assert.equal(next.requests.length, 0);
  t2.optIn();
  t2.track('D');
  t2.track('E');
  t2.track('F');
  await settle();
  assert.deepEqual(messages(next).map((m) => m.event), ['D', 'E', 'F']);

  const gpc = new FakeWindow();
  gpc.navigator.globalPrivacyControl = true;
  const t3 = createTracker({ ...options, respectGpc: true }, gpc);
  t3.track('A');
  t3.track('B');
  t3.track('C');
  await gpc.advance(600_000);
  assert.equal(gpc.requests.length, 0);
  const ignored = new FakeWindow();
  ignored.navigator.globalPrivacyControl = true;
  const t4 = createTracker(options, ignored); // respectGpc not set
  t4.track('A');
  t4.track('B');
  t4.track('C');
  await settle();
  assert.equal(ignored.requests.length, 1);
});

test('never throws into the page: no storage, no cookies, no fetch, bad arguments', async () => {
  const storage = new FakeStorage();
  storage.broken = true;
  const w = new FakeWindow({ storage });
  w.cookiesBroken = true;
  w.fetch = undefined;
  w.navigator.sendBeacon = () => {
    throw new Error('no beacons');
  };
  const t = createTracker(options, w);
  assert.match(t.anonymousId, UUID); // kept in memory for this page
  t.page();
  t.track('A', null);
  t.identify(undefined);
  t.cartUpdated(null);
  t.productAdded(undefined);
  t.orderCompleted({ total: 1n }); // a BigInt cannot be serialised
  w.dispatch('pagehide');
  await t.flush();
  await w.advance(600_000);
  t.reset();
  t.optOut();
  t.optIn();
});

test('a message that cannot be serialised is dropped and the rest still goes, without unhandled rejections', async () => {
  const rejections = [];
  const onRejection = (e) => rejections.push(e);
  process.on('unhandledRejection', onRejection);
  try {
    const w = new FakeWindow();
    w.answer = () => Promise.reject(new TypeError('offline')); // a retry timer will be pending
    const t = createTracker(options, w);
    const cyclic = {};
    cyclic.self = cyclic;
    t.track('Bad', { total: 1n });
    t.track('Cyclic', cyclic);
    t.track('Getter', { get boom() { throw new Error('boom'); } });
    t.track('A');
    t.track('B');
    t.track('C');
    await w.advance(60_000);
    w.answer = () => Promise.resolve(response(200));
    await w.advance(600_000);
    assert.deepEqual(w.requests.at(-1).body.batch.map((m) => m.event), ['A', 'B', 'C']);
    await settle();
    assert.deepEqual(rejections, []);
  } finally {
    process.off('unhandledRejection', onRejection);
  }
});

test('a browser that blocks site data (localStorage getter throws) still tracks, in memory', async () => {
  const w = new FakeWindow();
  Object.defineProperty(w, 'localStorage', { get() { throw new Error('SecurityError'); } });
  w.cookiesBroken = true;
  const t = createTracker(options, w);
  assert.match(t.anonymousId, UUID);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  assert.equal(w.requests.length, 1);
});

test('works without cookies, from localStorage alone, and without either', async () => {
  const w = new FakeWindow();
  w.cookiesBroken = true;
  const t = createTracker(options, w);
  t.track('A');
  t.track('B');
  t.track('C');
  await settle();
  assert.equal(w.requests.length, 1);
  assert.equal(createTracker(options, new FakeWindow({ storage: w.localStorage })).anonymousId, t.anonymousId);
});
