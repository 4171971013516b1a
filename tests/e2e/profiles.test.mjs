// A realistic shop day through the real binary and HTTP API: visitors browse, fill carts,
// identify mid-session, edit carts, order, and come back on another device; the query API
// then shows exactly the expected customer, cart and sessions, also after kill -9 and a
// restart. DELETE /v1/customers/{id} then erases her everywhere, and a later message starts
// a new profile.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_SITE, basicAuth, fetchAllEvents, request, sleep, startCartwatch } from './lib/cartwatch.mjs';

const MINUTE = 60_000;
// The day started six hours ago, on a whole minute: every time below is exact.
const START = Math.floor((Date.now() - 6 * 60 * MINUTE) / MINUTE) * MINUTE;
const at = (minutes) => new Date(START + minutes * MINUTE).toISOString();

let seq = 0;
function msg(type, who, minutes, fields = {}) {
  return { type, ...who, messageId: `day-${++seq}`, timestamp: at(minutes), ...fields };
}
const page = (who, minutes, url, title, extra = {}) =>
  msg('page', who, minutes, { context: { page: { url, title, ...extra } } });
const track = (who, minutes, event, properties) => msg('track', who, minutes, { event, properties });

const adaLaptop = { anonymousId: 'ada-laptop' };
const adaPhone = { anonymousId: 'ada-phone' };
const bob = { anonymousId: 'bob-tablet' };
const carl = { anonymousId: 'carl-pc' };
const boot = { product_id: 'boot', name: 'Tall Boot', category: 'Shoes', brand: 'Acme', price: 79.95, currency: 'EUR' };
const sock = { product_id: 'sock', name: 'Wool Sock', category: 'Socks', price: 4.5, currency: 'EUR' };

// In the order the shop's visitors did it, interleaved, as batches of a few messages.
const DAY = [
  [
    page(adaLaptop, 0, 'https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=nov', 'Shop',
      { referrer: 'https://mail.example/' }),
    track(adaLaptop, 2, 'Product Viewed', boot),
    track(adaLaptop, 3, 'Product Added', { ...boot, quantity: 1 }),
  ],
  [
    track(adaLaptop, 4, 'Product Added', { ...sock, quantity: 3 }),
    page(carl, 60, 'https://shop.example/', 'Shop'),
    msg('identify', { ...adaLaptop, userId: 'ada' }, 5,
      { traits: { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace' } }),
  ],
  [
    track(adaLaptop, 6, 'Product Removed', { product_id: 'sock', quantity: 1 }),
    track(adaLaptop, 7, 'Checkout Started', {}),
    track({ ...adaLaptop, userId: 'ada' }, 8, 'Order Completed', {
      order_id: 'o-1', total: 88.95, currency: 'EUR',
      products: [{ ...boot, quantity: 1 }, { ...sock, quantity: 2 }],
    }),
    page(adaLaptop, 9, 'https://shop.example/thanks', 'Thanks'),
  ],
  [
    msg('identify', { ...carl, userId: 'carl' }, 61, { traits: { email: 'carl@example.com' } }),
    track({ userId: 'carl' }, 62, 'Order Completed', { order_id: 'o-2', total: 30, currency: 'EUR' }),
    page(bob, 180, 'https://shop.example/scarves', 'Scarves', { referrer: 'https://search.example/' }),
    track(bob, 181, 'Product Added', { product_id: 'scarf', name: 'Scarf', price: 15, quantity: 2, currency: 'EUR' }),
  ],
  [
    track(bob, 185, 'Cart Updated', {
      currency: 'EUR',
      products: [
        { product_id: 'scarf', name: 'Scarf', price: 15, quantity: 1 },
        { product_id: 'gloves', name: 'Gloves', price: 10, quantity: 1 },
      ],
    }),
    // Ada comes back in the evening on her phone: an anonymous cart, then she logs in.
    page(adaPhone, 300, 'https://shop.example/hats', 'Hats'),
    track(adaPhone, 301, 'Product Added', { product_id: 'hat', name: 'Hat', price: 20, quantity: 1, currency: 'EUR' }),
    msg('identify', { ...adaPhone, userId: 'ada' }, 302, {}),
    page(adaPhone, 303, 'https://shop.example/cart', 'Cart'),
  ],
];

// No sentAt: the timestamps are used as given, so every time below is exact.
async function post(cw, batch) {
  const res = await request('POST', `${cw.publicUrl}/v1/batch`, {
    headers: { 'Content-Type': 'application/json', Authorization: basicAuth(DEFAULT_SITE.writeKey) },
    body: JSON.stringify({ batch }),
  });
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(res.body), { success: true });
}

async function get(cw, path) {
  const res = await request('GET', `${cw.publicUrl}${path}`, {
    headers: { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` },
  });
  return { status: res.status, json: JSON.parse(res.body) };
}

// GET the customer once the thresholds, recomputed in the background, were computed after
// `since` (so that they include every order posted before it).
async function customerWithScores(cw, id, since) {
  for (let i = 0; i < 100; i++) {
    const res = await get(cw, `/v1/customers/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const rfm = res.json.stats.rfm;
    if (rfm !== null && Date.parse(rfm.thresholds_computed_at) >= since) return res.json;
    await sleep(100);
  }
  throw new Error(`GET /v1/customers/${id}: no RFM scores after 10 s`);
}

const line = (product_id, name, category, brand, quantity, price, updated) => ({
  product_id, sku: null, name, category, brand, quantity, price, currency: 'EUR',
  image_url: null, url: null, updated_at: at(updated),
});

const EXPECTED_ADA = {
  user_id: 'ada',
  traits: { email: 'ada@example.com', phone: null, first_name: 'Ada', last_name: 'Lovelace', name: null },
  anonymous_ids: ['ada-laptop', 'ada-phone'],
  merged_user_ids: [],
  first_seen: at(0),
  last_seen: at(303),
  cart: {
    lines: [line('hat', 'Hat', null, null, 1, 20, 301)],
    items: 1,
    value: 20,
    currency: 'EUR',
    value_by_currency: [{ currency: 'EUR', value: 20 }],
    stage: 'browsing',
    checkout_started_at: null,
    // laptop: boot, sock (2); merged into ada (3); sock removed (4); checkout (5); order
    // empties it (6); phone: hat (its own 1); merged again: max(6, 1) + 1.
    version: 7,
    updated_at: at(301),
  },
  recently_viewed: [
    { product_id: 'boot', name: 'Tall Boot', category: 'Shoes', brand: 'Acme', price: 79.95, currency: 'EUR',
      url: null, image_url: null, views: 1, viewed_at: at(2) },
  ],
  recent_orders: [{ order_id: 'o-1', at: at(8), revenue: 88.95, currency: 'EUR' }],
  // No [[rules]] in this test's config: the rule engine holds nothing for her.
  rules: { pending_timers: [], last_actions: [] },
};

const EXPECTED_ADA_STATS = {
  orders: 1,
  revenue: 88.95,
  currency: 'EUR',
  average_order_value: 88.95,
  revenue_by_currency: [{ currency: 'EUR', orders: 1, revenue: 88.95 }],
  first_order_at: at(8),
  last_order_at: at(8),
  mean_days_between_orders: null,
  favourite_categories: [{ name: 'Shoes', spend: 79.95 }, { name: 'Socks', spend: 9 }],
  favourite_brands: [{ name: 'Acme', spend: 79.95 }],
  last_seen: at(303),
  visits_last_30_days: 2,
  // Two customers with orders (ada 88.95, carl 30, both today): R 5 for both; F 1; M: ada
  // is above the lower cut points (3), carl at them (1). FM = (1 + 3 + 1) / 2 = 2.
  rfm: { recency_days: 0, frequency: 1, monetary: 88.95, r: 5, f: 1, m: 3, score: '513',
         segment: 'potential_loyalist' },
  // Ada alone is under 80% of 118.95: A; carl crosses 80% with her before him: A too.
  abc: 'A',
  orders_a_year: 1,
  ltv: 266.85, // 88.95 x 1 order a year x 3 years
  ltv_lifetime_years: 3,
};

function withoutComputedAt(customer) {
  const copy = structuredClone(customer);
  if (copy.stats.rfm) delete copy.stats.rfm.thresholds_computed_at;
  return copy;
}

function checkAda(ada) {
  const { stats, ...rest } = withoutComputedAt(ada);
  assert.deepEqual(rest, EXPECTED_ADA);
  assert.deepEqual(stats, EXPECTED_ADA_STATS);
}

const EXPECTED_LAPTOP = {
  anonymous_id: 'ada-laptop',
  user_id: 'ada',
  linked_at: at(5),
  first_seen: at(0),
  last_seen: at(9),
  page_views: 2,
  sessions: [
    {
      start: at(0),
      end: at(9),
      duration_seconds: 540,
      pages: 2,
      landing_page: { url: 'https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=nov', title: 'Shop' },
      exit_page: { url: 'https://shop.example/thanks', title: 'Thanks' },
      referrer: 'https://mail.example/',
      utm: { source: 'news', medium: 'email', name: 'nov', term: null, content: null },
    },
  ],
};

const EXPECTED_BOB = {
  anonymous_id: 'bob-tablet',
  user_id: null,
  linked_at: null,
  first_seen: at(180),
  last_seen: at(185),
  page_views: 1,
  cart: {
    lines: [line('scarf', 'Scarf', null, null, 1, 15, 185), line('gloves', 'Gloves', null, null, 1, 10, 185)],
    items: 2,
    value: 25,
    currency: 'EUR',
    value_by_currency: [{ currency: 'EUR', value: 25 }],
    stage: 'browsing',
    checkout_started_at: null,
    version: 2,
    updated_at: at(185),
  },
  recently_viewed: [],
  sessions: [
    {
      start: at(180),
      end: at(185),
      duration_seconds: 300,
      pages: 1,
      landing_page: { url: 'https://shop.example/scarves', title: 'Scarves' },
      exit_page: { url: 'https://shop.example/scarves', title: 'Scarves' },
      referrer: 'https://search.example/',
      utm: null,
    },
  ],
};

async function checkDay(cw, since) {
  checkAda(await customerWithScores(cw, 'ada', since));

  const laptop = await get(cw, '/v1/visitors/ada-laptop');
  assert.equal(laptop.status, 200);
  const { cart: laptopCart, recently_viewed: laptopViewed, ...laptopRest } = laptop.json;
  assert.deepEqual(laptopRest, EXPECTED_LAPTOP);
  // A linked visitor shows what the person has now, from every device.
  assert.deepEqual(laptopCart, EXPECTED_ADA.cart);
  assert.deepEqual(laptopViewed, EXPECTED_ADA.recently_viewed);

  const phone = await get(cw, '/v1/visitors/ada-phone');
  assert.equal(phone.status, 200);
  assert.equal(phone.json.linked_at, at(302));
  assert.equal(phone.json.sessions.length, 1);
  assert.equal(phone.json.sessions[0].pages, 2);
  assert.equal(phone.json.sessions[0].duration_seconds, 180);

  const bobDoc = await get(cw, '/v1/visitors/bob-tablet');
  assert.equal(bobDoc.status, 200);
  assert.deepEqual(bobDoc.json, EXPECTED_BOB);

  const carlDoc = await get(cw, '/v1/customers/carl');
  assert.equal(carlDoc.status, 200);
  assert.equal(carlDoc.json.stats.orders, 1);
  assert.equal(carlDoc.json.stats.revenue, 30);
  assert.deepEqual(carlDoc.json.stats.favourite_categories, []); // an order without products
  assert.equal(carlDoc.json.stats.rfm.segment, 'new');
  assert.equal(carlDoc.json.stats.abc, 'A');
  assert.equal(carlDoc.json.cart.lines.length, 0);
}

test('a shop day: the query API shows the exact profiles, also after kill -9', async (t) => {
  const env = { CARTWATCH_PROFILES_THRESHOLDS_INTERVAL: '200ms' };
  const cw = await startCartwatch(t, { env });
  for (const batch of DAY) await post(cw, batch);
  const posted = Date.now();
  await checkDay(cw, posted);

  await cw.kill('SIGKILL');
  const again = await startCartwatch(t, { dir: cw.dir, env });
  await checkDay(again, posted);
  // Sending the whole day again changes nothing: every messageId is known.
  for (const batch of DAY) await post(again, batch);
  await checkDay(again, posted);

  // GDPR: erase ada; every trace of her goes, bob and carl stay.
  const erase = await request('DELETE', `${again.publicUrl}/v1/customers/ada`, {
    headers: { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` },
  });
  assert.equal(erase.status, 202, erase.body);
  assert.deepEqual(JSON.parse(erase.body), { success: true, user_id: 'ada', found: true, visitors_erased: 2 });
  assert.equal((await get(again, '/v1/customers/ada')).status, 404);
  assert.equal((await get(again, '/v1/visitors/ada-laptop')).status, 404);
  assert.equal((await get(again, '/v1/visitors/ada-phone')).status, 404);
  assert.equal((await get(again, '/v1/visitors/bob-tablet')).status, 200);
  const mentionsAda = (e) => e.userId === 'ada' || String(e.anonymousId).startsWith('ada-');
  let events;
  for (let i = 0; i < 100; i++) {
    ({ events } = await fetchAllEvents(again.publicUrl, DEFAULT_SITE.secretKey));
    if (!events.some(mentionsAda)) break;
    await sleep(100);
  }
  assert.ok(!events.some(mentionsAda), 'the event log still mentions ada after 10 s');
  assert.equal(events.filter((e) => e.anonymousId === 'bob-tablet').length, 3);

  // After a restart the erase still holds; a new message for her starts a new profile.
  await again.stop();
  const third = await startCartwatch(t, { dir: cw.dir, env });
  assert.equal((await get(third, '/v1/customers/ada')).status, 404);
  await post(third, [page({ ...adaLaptop, userId: 'ada' }, 400, 'https://shop.example/', 'Shop')]);
  const fresh = await get(third, '/v1/customers/ada');
  assert.equal(fresh.status, 200);
  assert.equal(fresh.json.stats.orders, 0);
  assert.deepEqual(fresh.json.anonymous_ids, ['ada-laptop']);
  assert.equal(fresh.json.traits.email, null);
  assert.equal(fresh.json.cart.lines.length, 0);
});

test('records still unwritten at kill -9 are rebuilt from the event log', async (t) => {
  // Default write-behind (10 s) and no thresholds run: nothing of the day is written to the
  // visitor and customer records when the process dies; only the messages are durable.
  const cw = await startCartwatch(t);
  for (const batch of DAY) await post(cw, batch);
  const paths = ['/v1/customers/ada', '/v1/customers/carl', '/v1/visitors/ada-phone', '/v1/visitors/bob-tablet'];
  const before = [];
  for (const path of paths) {
    const doc = await get(cw, path);
    assert.equal(doc.status, 200, path);
    before.push(doc.json);
  }
  assert.equal(before[0].stats.orders, 1);
  assert.equal(before[3].cart.lines.length, 2);

  await cw.kill('SIGKILL');
  const again = await startCartwatch(t, { dir: cw.dir });
  assert.match(again.stderr(), /level=info msg="rebuilt the unwritten visitor and customer records from the event log" events=19 /);
  for (const [i, path] of paths.entries()) {
    const doc = await get(again, path);
    assert.equal(doc.status, 200, path);
    assert.deepEqual(doc.json, before[i], path);
  }
  // Written now: the next restart replays nothing.
  await again.kill('SIGKILL');
  const third = await startCartwatch(t, { dir: cw.dir });
  assert.doesNotMatch(third.stderr(), /rebuilt the unwritten/);
  assert.deepEqual((await get(third, paths[0])).json, before[0]);
});

// alias over HTTP (/v1/alias and analytics.js's /v1/a): an anonymous cart aliased to a
// customer shows on the customer; two customers aliased have one history, also after kill -9
// (the records rebuilt from the event log); an erase of the merged id leaves nothing of
// either.
test('alias links an anonymous cart and merges two customers, across kill -9 and erase', async (t) => {
  const cw = await startCartwatch(t);
  const zoeTablet = { anonymousId: 'zoe-tablet' };
  await post(cw, [
    page(zoeTablet, 0, 'https://shop.example/boots', 'Boots'),
    track(zoeTablet, 1, 'Product Added', { ...boot, quantity: 1 }),
    msg('identify', { anonymousId: 'zoe-laptop', userId: 'zoe-old' }, 2, { traits: { email: 'zoe@example.com' } }),
    track({ userId: 'zoe-old' }, 3, 'Order Completed', { order_id: 'z-1', total: 40, currency: 'EUR' }),
    track({ userId: 'zoe' }, 4, 'Order Completed', { order_id: 'z-2', total: 60, currency: 'EUR' }),
  ]);
  const alias = async (path, body) => {
    const res = await request('POST', `${cw.publicUrl}${path}`, {
      headers: { Authorization: basicAuth(DEFAULT_SITE.writeKey), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, res.body);
  };
  await alias('/v1/alias', { previousId: 'zoe-tablet', userId: 'zoe', messageId: 'alias-1', timestamp: at(5) });
  await alias('/v1/a', { type: 'alias', previousId: 'zoe-old', userId: 'zoe', messageId: 'alias-2', timestamp: at(6) });

  const check = async (instance) => {
    const zoe = await get(instance, '/v1/customers/zoe');
    assert.equal(zoe.status, 200);
    assert.deepEqual(zoe.json.cart.lines.map((l) => l.product_id), ['boot']);
    assert.equal(zoe.json.stats.orders, 2);
    assert.equal(zoe.json.stats.revenue, 100);
    assert.equal(zoe.json.stats.average_order_value, 50);
    assert.equal(zoe.json.traits.email, 'zoe@example.com');
    assert.deepEqual([...zoe.json.anonymous_ids].sort(), ['zoe-laptop', 'zoe-tablet']);
    assert.deepEqual(zoe.json.merged_user_ids, ['zoe-old']);
    const old = await get(instance, '/v1/customers/zoe-old');
    assert.deepEqual(old.json, zoe.json); // the merged id answers with the person it became
    assert.equal((await get(instance, '/v1/visitors/zoe-laptop')).json.user_id, 'zoe');
    return zoe.json;
  };
  const before = await check(cw);
  // A later order under the old id reaches the merged customer.
  await post(cw, [track({ userId: 'zoe-old' }, 7, 'Order Completed', { order_id: 'z-3', total: 20, currency: 'EUR' })]);
  assert.equal((await get(cw, '/v1/customers/zoe')).json.stats.orders, 3);

  await cw.kill('SIGKILL');
  const again = await startCartwatch(t, { dir: cw.dir });
  assert.equal((await get(again, '/v1/customers/zoe')).json.stats.orders, 3);
  assert.deepEqual((await get(again, '/v1/customers/zoe')).json.merged_user_ids, before.merged_user_ids);

  const erase = await request('DELETE', `${again.publicUrl}/v1/customers/zoe-old`, {
    headers: { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` },
  });
  assert.equal(erase.status, 202, erase.body);
  for (const path of ['/v1/customers/zoe', '/v1/customers/zoe-old', '/v1/visitors/zoe-laptop', '/v1/visitors/zoe-tablet']) {
    assert.equal((await get(again, path)).status, 404, path);
  }
  const mentionsZoe = (e) => [e.userId, e.anonymousId, e.previousId].some((id) => String(id).startsWith('zoe'));
  let events;
  for (let i = 0; i < 100; i++) {
    ({ events } = await fetchAllEvents(again.publicUrl, DEFAULT_SITE.secretKey));
    if (!events.some(mentionsZoe)) break;
    await sleep(100);
  }
  assert.deepEqual(events.filter(mentionsZoe), [], 'the event log still mentions zoe after 10 s');
});
