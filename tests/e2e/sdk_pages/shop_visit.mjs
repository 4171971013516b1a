// The shop visit every third-party SDK test makes (sdks_node.test.mjs, sdks_browser.test.mjs),
// and the checks on what the collector made of it: each message the SDK put on the wire is
// in GET /v1/events exactly once, as the SDK sent it and meaning what the calls said, and
// the customer's profile shows the identify's traits, the order and the alias.
//
//   const visit = shopVisit('legacy-node');        // the six calls, SDK-neutral
//   ... the SDK makes visit.calls, the test records the messages it sent (`wire`) ...
//   const events = await waitForMessages(cw, wire.map((m) => m.messageId));
//   checkStoredMessages(events, wire, visit);
//   await checkProfile(cw, visit, { anonymousIds: [...] });

import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';

import { DEFAULT_SITE, fetchAllEvents, request, sleep } from '../lib/cartwatch.mjs';

// The six calls of a visit: identify, page, two E-commerce tracks, alias, group. `tag` keeps
// the ids of one SDK's visit apart from another's. Each call is SDK-neutral: the test maps
// it onto the SDK's API (Node SDKs also get userId/anonymousId on every call, browser SDKs
// keep the identify's userId and make their own anonymousId).
export function shopVisit(tag) {
  const userId = `${tag}-user`;
  const product = {
    product_id: 'tea-pot',
    sku: 'TP-1',
    name: 'Tea pot',
    category: 'Kitchen',
    brand: 'Acme',
    price: 19.99,
    quantity: 2,
    currency: 'EUR',
  };
  const { currency, ...line } = product;
  const order = {
    order_id: `${tag}-order-1`,
    total: 39.98,
    revenue: 39.98,
    currency: 'EUR',
    products: [line],
  };
  return {
    tag,
    userId,
    anonymousId: `${tag}-anon`, // Node SDKs only; a browser SDK makes its own
    aliasPreviousId: `${tag}-other-device`,
    groupId: `${tag}-company`,
    order,
    calls: [
      {
        type: 'identify',
        traits: { email: `${tag}@example.com`, firstName: 'Ada', lastName: 'Lovelace', plan: 'pro' },
      },
      { type: 'page', category: 'Catalog', name: 'Tea pot', properties: { sku: 'TP-1', in_stock: true } },
      { type: 'track', event: 'Product Added', properties: product },
      { type: 'track', event: 'Order Completed', properties: order },
      { type: 'alias', previousId: `${tag}-other-device` },
      { type: 'group', groupId: `${tag}-company`, traits: { name: 'Acme Ltd', plan: 'enterprise' } },
    ],
  };
}

// `actual` has every key of `expected` with a deep-equal value (it may have more).
export function assertIncludes(actual, expected, what) {
  assert.ok(actual && typeof actual === 'object', `${what}: ${JSON.stringify(actual)} is not an object`);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(actual[k], v, `${what}: ${k}`);
  }
}

// The messages of one request body as an SDK sent it: a batch's `batch`, or the one message.
// `body` is a Buffer or a string; `encoding` the Content-Encoding header.
// A batch's messages remember the batch's sentAt here (for those without one of their own).
export function messagesOfBody(body, encoding) {
  let bytes = Buffer.isBuffer(body) ? body : Buffer.from(body ?? '', 'utf8');
  if (/gzip/i.test(encoding ?? '')) bytes = zlib.gunzipSync(bytes);
  const json = JSON.parse(bytes.toString('utf8'));
  if (!Array.isArray(json.batch)) return [json];
  for (const m of json.batch) if (json.sentAt !== undefined) batchSentAt.set(m, json.sentAt);
  return json.batch;
}
const batchSentAt = new WeakMap(); // message -> its batch's sentAt

// The site's events once every id of `messageIds` is there (polling GET /v1/events until
// `ms` have passed; the assertion is the caller's).
export async function waitForMessages(cw, messageIds, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
    const stored = new Set(events.map((e) => e.messageId));
    if (messageIds.every((id) => stored.has(id)) || Date.now() > until) return events;
    await sleep(100);
  }
}

// The traits a message carries: `traits` (Segment), else `context.traits` (RudderStack's
// browser SDK puts an identify's traits only there).
const traitsOf = (m) => m.traits ?? m.context?.traits;

// `events` (all of the site's, from GET /v1/events) hold each message of `wire` exactly once
// and nothing else; each is stored as the SDK sent it (but for the fields the collector
// rewrites) and says what `visit.calls[i]` asked for. `wire` is in call order.
// `anonymousId`: the visitor id every message must carry.
export function checkStoredMessages(events, wire, visit, { anonymousId }) {
  const sentIds = wire.map((m) => m.messageId);
  assert.equal(wire.length, visit.calls.length, 'one message a call went over the wire');
  assert.equal(new Set(sentIds).size, sentIds.length, 'the SDK gave each message its own id');
  assert.deepEqual(
    events.map((e) => e.messageId).sort(),
    [...sentIds].sort(),
    'GET /v1/events holds exactly the messages sent, each once',
  );
  const byId = new Map(events.map((e) => [e.messageId, e]));

  visit.calls.forEach((call, i) => {
    const sent = wire[i];
    const got = byId.get(sent.messageId);
    const what = `${call.type}${call.event ? ` "${call.event}"` : ''} (${sent.messageId})`;

    // What the call said.
    assert.equal(got.type, call.type, `${what}: type`);
    // An alias names its ids itself: some SDKs (@segment/analytics-node) send no anonymousId.
    if (call.type !== 'alias' || sent.anonymousId !== undefined) {
      assert.equal(got.anonymousId, anonymousId, `${what}: anonymousId`);
    }
    assert.equal(got.userId, visit.userId, `${what}: userId`);
    switch (call.type) {
      case 'identify':
        assertIncludes(traitsOf(got), call.traits, `${what}: traits`);
        break;
      case 'page':
        assert.equal(got.name, call.name, `${what}: name`);
        assertIncludes(got.properties, call.properties, `${what}: properties`);
        break;
      case 'track':
        assert.equal(got.event, call.event, `${what}: event`);
        assert.deepEqual(got.properties, call.properties, `${what}: properties`);
        break;
      case 'alias':
        assert.equal(got.previousId, call.previousId, `${what}: previousId`);
        break;
      case 'group':
        assert.equal(got.groupId, call.groupId, `${what}: groupId`);
        assertIncludes(got.traits, call.traits, `${what}: traits`);
        break;
      default:
        assert.fail(`${what}: no check for this type`);
    }

    // As the SDK sent it, but for what the collector rewrites (docs/api.md).
    for (const [key, value] of Object.entries(sent)) {
      if (key === 'timestamp' || key === 'sentAt' || key === 'writeKey') continue;
      assert.deepEqual(got[key], value, `${what}: field ${key} as the SDK sent it`);
    }
    assert.equal(got.writeKey, undefined, `${what}: writeKey is not stored`);
    if (sent.timestamp !== undefined) {
      const original = new Date(sent.timestamp).toISOString();
      assert.equal(got.originalTimestamp, original, `${what}: originalTimestamp`);
    }
    // The event time: a valid time near the client's (the SDK and the collector share a
    // clock here), not after receivedAt.
    const clientTime = Date.parse(sent.timestamp ?? sent.originalTimestamp);
    assert.ok(Number.isFinite(clientTime), `${what}: the SDK sent no client time`);
    for (const key of ['receivedAt', 'timestamp']) {
      const ms = Date.parse(got[key]);
      assert.ok(Number.isFinite(ms), `${what}: ${key} ${got[key]} is not a time`);
      assert.ok(Math.abs(ms - clientTime) < 60_000, `${what}: ${key} ${got[key]} is far from the client time`);
    }
    assert.ok(Date.parse(got.timestamp) <= Date.parse(got.receivedAt) + 1, `${what}: timestamp > receivedAt`);
    // Skew correction (SPEC 1): timestamp = receivedAt - (sentAt - the client's time), where
    // the client's time is `timestamp` (Segment) or, when there is none, `originalTimestamp`
    // (RudderStack's SDKs send only that, as RudderStack's own server expects).
    const sentAt = sent.sentAt ?? batchSentAt.get(sent);
    assert.equal(got.sentAt, sentAt && new Date(sentAt).toISOString(), `${what}: sentAt as sent`);
    const corrected =
      sentAt === undefined ? clientTime : Date.parse(got.receivedAt) - (Date.parse(sentAt) - clientTime);
    assert.ok(
      Math.abs(Date.parse(got.timestamp) - corrected) <= 1,
      `${what}: timestamp ${got.timestamp} is not receivedAt ${got.receivedAt} - ` +
        `(sentAt ${got.sentAt} - client time ${new Date(clientTime).toISOString()}) = ` +
        new Date(corrected).toISOString(),
    );
  });
}

// GET /v1/customers/{visit.userId} once it shows the order (polling until `ms` have passed),
// then checks that it reflects the visit: the identify's traits, the visitor ids linked by
// identify and alias, the order, and the cart it emptied.
export async function checkProfile(cw, visit, { anonymousIds, ms = 20_000 }) {
  const url = `${cw.publicUrl}/v1/customers/${encodeURIComponent(visit.userId)}`;
  const headers = { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` };
  const until = Date.now() + ms;
  let res;
  let customer;
  for (;;) {
    res = await request('GET', url, { headers });
    customer = res.status === 200 ? JSON.parse(res.body) : undefined;
    if (customer?.stats?.orders >= 1 || Date.now() > until) break;
    await sleep(100);
  }
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${res.body}`);
  const traits = visit.calls[0].traits;
  assertIncludes(
    customer.traits,
    { email: traits.email, first_name: traits.firstName, last_name: traits.lastName },
    'profile traits',
  );
  for (const id of anonymousIds) {
    assert.ok(
      customer.anonymous_ids.includes(id),
      `profile anonymous_ids ${JSON.stringify(customer.anonymous_ids)} lacks ${id}`,
    );
  }
  const { order } = visit;
  const { revenue, currency } = order;
  assertIncludes(customer.stats, { orders: 1, revenue, currency }, 'profile stats');
  assert.equal(customer.recent_orders.length, 1, `recent_orders: ${JSON.stringify(customer.recent_orders)}`);
  assertIncludes(customer.recent_orders[0], { order_id: order.order_id, revenue, currency }, 'recent_orders[0]');
  const [line] = order.products;
  assert.deepEqual(
    customer.stats.favourite_categories.map((c) => c.name),
    [line.category],
    'favourite categories: those of the order',
  );
  assert.deepEqual(customer.stats.favourite_brands.map((b) => b.name), [line.brand], 'favourite brands');
  assert.deepEqual(customer.cart.lines, [], 'the order emptied the cart that Product Added filled');
  assert.equal(customer.cart.items, 0, 'cart items');
  return customer;
}

// A plain HTTP proxy in front of `target` (the collector) that records each request as the
// SDK made it: { method, url, headers, body (Buffer), status }. For the Node SDKs, whose
// requests no browser shows.
export async function startRecordingProxy(t, target) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record = { method: req.method, url: req.url, headers: req.headers, body };
      requests.push(record);
      const upstream = http.request(
        new URL(req.url, target),
        { method: req.method, headers: { ...req.headers, host: new URL(target).host }, agent: false },
        (up) => {
          record.status = up.statusCode;
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', (err) => {
        record.status = 502;
        res.writeHead(502).end(String(err));
      });
      upstream.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}
