// Segment's own Node SDK (@segment/analytics-node) sends to cartwatch as if it were
// api.segment.io; every message comes back from GET /v1/events as sent.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Analytics } from '@segment/analytics-node';

import { DEFAULT_SITE, fetchAllEvents, startCartwatch } from './lib/cartwatch.mjs';

// Resolves to the SDK's context once the message was delivered (or rejects with the SDK's
// delivery error).
function send(analytics, method, params) {
  return new Promise((resolve, reject) => {
    analytics[method](params, (err, ctx) => {
      if (err) reject(new Error(`${method} was not delivered: ${err?.message ?? err}`));
      else resolve(ctx);
    });
  });
}

test('@segment/analytics-node: identify, page and track come back from /v1/events', async (t) => {
  const cw = await startCartwatch(t);

  const analytics = new Analytics({
    writeKey: DEFAULT_SITE.writeKey,
    host: cw.publicUrl,
    flushAt: 3, // several batches, not one
    flushInterval: 50,
    maxRetries: 2,
    httpRequestTimeout: 10_000,
  });

  // What went over the wire, and what came back.
  const sentBatches = [];
  const responses = [];
  const errors = [];
  analytics.on('http_request', (req) => sentBatches.push(req));
  analytics.on('http_response', (res) => responses.push(res));
  analytics.on('error', (err) => errors.push(err));

  const userId = 'user-42';
  const anonymousId = 'anon-7d1c9a52';
  const explicitMessageId = 'e2e-explicit-message-id-0001';

  // [method, params] in the order they are sent.
  const calls = [
    [
      'identify',
      {
        userId,
        traits: { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro', orders: 3 },
      },
    ],
    ['identify', { anonymousId, traits: { locale: 'en-GB', newsletter: false } }],
    [
      'page',
      {
        userId,
        category: 'Catalog',
        name: 'Product',
        properties: { path: '/p/tea-pot', url: 'https://shop.example/p/tea-pot', title: 'Tea pot' },
      },
    ],
    ['page', { anonymousId, name: 'Home', properties: { path: '/', referrer: '' } }],
    [
      'track',
      {
        userId,
        event: 'Product Added',
        properties: {
          cart_id: 'cart-1',
          product_id: 'sku-123',
          sku: 'TP-123',
          name: 'Tea pot',
          price: 19.99,
          quantity: 2,
          currency: 'USD',
          tags: ['kitchen', 'ceramic'],
        },
      },
    ],
    [
      'track',
      {
        anonymousId,
        event: 'Product Viewed',
        properties: { product_id: 'sku-9', price: 5, nested: { a: { b: [1, 2, { c: null }] } } },
      },
    ],
    [
      'track',
      {
        userId,
        anonymousId,
        event: 'Checkout Started',
        messageId: explicitMessageId,
        properties: {
          order_id: 'o-1',
          value: 39.98,
          revenue: 39.98,
          currency: 'USD',
          products: [{ product_id: 'sku-123', quantity: 2, price: 19.99 }],
        },
        context: { ip: '203.0.113.9', userAgent: 'e2e-test/1.0' },
      },
    ],
  ];

  const delivered = calls.map(([method, params]) => send(analytics, method, params));
  await analytics.closeAndFlush({ timeout: 30_000 });
  const contexts = await Promise.all(delivered);

  assert.deepEqual(errors, [], 'the SDK reported errors');
  assert.ok(responses.length >= 3, `expected several batches, got ${responses.length}`);
  for (const res of responses) {
    assert.equal(res.status, 200, `POST ${res.url} answered ${res.status}: ${res.body}`);
  }

  // The messages exactly as the SDK serialised them, by messageId.
  const wire = new Map();
  for (const req of sentBatches) {
    assert.match(req.url, /\/v1\/batch$/);
    for (const msg of JSON.parse(req.body).batch) wire.set(msg.messageId, msg);
  }

  const sentIds = contexts.map((ctx) => ctx.event.messageId);
  assert.equal(new Set(sentIds).size, calls.length, 'the SDK gave each message its own id');
  assert.equal(sentIds[6], explicitMessageId, 'an explicit messageId is kept by the SDK');
  for (const id of sentIds) assert.ok(wire.has(id), `messageId ${id} never went over the wire`);

  const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  const storedIds = events.map((e) => e.messageId);
  assert.deepEqual(
    [...storedIds].sort(),
    [...sentIds].sort(),
    'GET /v1/events returns exactly the messages sent, each once',
  );
  // Arrival order: the SDK may have several batches in flight at once, so only the order
  // within one batch is defined.
  for (const req of sentBatches) {
    const ids = JSON.parse(req.body).batch.map((m) => m.messageId);
    const positions = ids.map((id) => storedIds.indexOf(id));
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
      `messages of one batch are stored in the batch's order: ${ids.join(', ')}`,
    );
  }
  const byId = new Map(events.map((e) => [e.messageId, e]));

  for (let i = 0; i < calls.length; i++) {
    const [method, params] = calls[i];
    const got = byId.get(sentIds[i]);
    const sent = wire.get(sentIds[i]);
    const what = `${method} #${i} (${sentIds[i]})`;

    assert.equal(got.type, method, `${what}: type`);
    assert.equal(got.userId, params.userId, `${what}: userId`);
    assert.equal(got.anonymousId, sent.anonymousId, `${what}: anonymousId`);
    if (params.anonymousId) assert.equal(got.anonymousId, params.anonymousId, `${what}: anonymousId`);
    if (method === 'track') assert.equal(got.event, params.event, `${what}: event`);
    if (method === 'page') {
      assert.equal(got.name, params.name, `${what}: name`);
      assert.deepEqual(
        got.properties,
        { ...params.properties, ...(params.category ? { category: params.category } : {}) },
        `${what}: properties`,
      );
    }
    if (method === 'track') assert.deepEqual(got.properties, params.properties, `${what}: properties`);
    if (method === 'identify') assert.deepEqual(got.traits, params.traits, `${what}: traits`);
    if (params.context) {
      for (const [k, v] of Object.entries(params.context)) {
        assert.deepEqual(got.context?.[k], v, `${what}: context.${k}`);
      }
    }

    // Everything the SDK sent is kept as sent, except the fields the collector rewrites.
    for (const [key, value] of Object.entries(sent)) {
      if (key === 'timestamp' || key === 'sentAt') continue;
      assert.deepEqual(got[key], value, `${what}: field ${key} as the SDK sent it`);
    }
    assert.equal(got.originalTimestamp, sent.timestamp, `${what}: originalTimestamp`);

    // receivedAt and the skew-corrected timestamp: valid ISO times close to now (the SDK
    // and the collector share a clock here).
    for (const key of ['receivedAt', 'timestamp']) {
      assert.equal(typeof got[key], 'string', `${what}: ${key} is a string`);
      const ms = Date.parse(got[key]);
      assert.ok(Number.isFinite(ms), `${what}: ${key} ${got[key]} is not a date`);
      assert.ok(
        Math.abs(ms - Date.parse(sent.timestamp)) < 60_000,
        `${what}: ${key} ${got[key]} is far from the sent timestamp ${sent.timestamp}`,
      );
    }
    assert.ok(
      Date.parse(got.timestamp) <= Date.parse(got.receivedAt) + 1,
      `${what}: corrected timestamp ${got.timestamp} after receivedAt ${got.receivedAt}`,
    );
    assert.equal(got.writeKey, undefined, `${what}: writeKey must not be stored`);
  }
});

test('@segment/analytics-node: a wrong write key is not stored', async (t) => {
  const cw = await startCartwatch(t);
  const analytics = new Analytics({
    writeKey: 'not-a-write-key',
    host: cw.publicUrl,
    flushAt: 1,
    flushInterval: 50,
    maxRetries: 0,
  });
  const responses = [];
  analytics.on('http_response', (res) => responses.push(res));
  analytics.on('error', () => {}); // the delivery failure is expected
  const failed = new Promise((resolve) => {
    analytics.track({ userId: 'u1', event: 'Product Added' }, (err) => resolve(err));
  });
  await analytics.closeAndFlush({ timeout: 30_000 });
  const err = await failed;
  assert.ok(err, 'the SDK reports the message as not delivered');
  assert.equal(responses.length, 1);
  assert.equal(responses[0].status, 401, `answered ${responses[0].status}: ${responses[0].body}`);
  const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  assert.deepEqual(events, []);
});
