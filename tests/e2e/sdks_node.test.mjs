// Third-party Node SDKs, installed from npm at pinned versions (package.json), work unchanged
// against the real collector: each makes the same shop visit (sdk_pages/shop_visit.mjs:
// identify, page, Product Added, Order Completed, alias, group), flushes, and every message
// it sent is in GET /v1/events exactly once, as sent, and the customer's profile shows it.
// A recording proxy between SDK and collector checks the path, Content-Type,
// Content-Encoding and write key of each request against docs/sdks.md.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import LegacyAnalytics from 'analytics-node';

import { DEFAULT_SITE, basicAuth, startCartwatch } from './lib/cartwatch.mjs';
import {
  checkProfile,
  checkStoredMessages,
  messagesOfBody,
  shopVisit,
  startRecordingProxy,
  waitForMessages,
} from './sdk_pages/shop_visit.mjs';

// The params of a Segment-style Node call (analytics-node and its forks share them).
function nodeParams(visit, call) {
  const ids = { userId: visit.userId, anonymousId: visit.anonymousId };
  switch (call.type) {
    case 'identify':
      return { ...ids, traits: call.traits };
    case 'page':
      return { ...ids, category: call.category, name: call.name, properties: call.properties };
    case 'track':
      return { ...ids, event: call.event, properties: call.properties };
    case 'alias':
      return { ...ids, previousId: call.previousId };
    case 'group':
      return { ...ids, groupId: call.groupId, traits: call.traits };
    default:
      throw new Error(`no Node call for ${call.type}`);
  }
}

// Makes every call of `visit` with `client` (method(params, callback)), then `flush()`, and
// resolves once each call's callback reported delivery.
async function makeVisit(client, visit, flush) {
  const delivered = visit.calls.map(
    (call) =>
      new Promise((resolve, reject) => {
        client[call.type](nodeParams(visit, call), (err) =>
          err ? reject(new Error(`${call.type} was not delivered: ${err.message ?? err}`)) : resolve(),
        );
      }),
  );
  await flush();
  await Promise.all(delivered);
}

// Runs one SDK's visit through a recording proxy and checks all of it. `make(url)` builds the
// client pointed at `url`; `flush(client)` sends what it queued; `expectRequest(req)` checks
// one recorded request's path and headers.
async function visitWith(t, tag, { make, flush, expectRequest }) {
  const cw = await startCartwatch(t);
  const proxy = await startRecordingProxy(t, cw.publicUrl);
  const visit = shopVisit(tag);
  const client = make(proxy.url);
  await makeVisit(client, visit, () => flush(client));

  assert.ok(proxy.requests.length >= 1, 'the SDK made no request');
  const wire = [];
  for (const req of proxy.requests) {
    assert.equal(req.status, 200, `${req.method} ${req.url} answered ${req.status}`);
    assert.equal(req.method, 'POST');
    expectRequest(req);
    wire.push(...messagesOfBody(req.body, req.headers['content-encoding']));
  }
  // In call order (the SDK may have split the calls over several requests).
  const order = (m) =>
    visit.calls.findIndex((c) => c.type === m.type && (c.event ?? null) === (m.event ?? null));
  wire.sort((a, b) => order(a) - order(b));

  const events = await waitForMessages(cw, wire.map((m) => m.messageId));
  checkStoredMessages(events, wire, visit, { anonymousId: visit.anonymousId });
  await checkProfile(cw, visit, { anonymousIds: [visit.anonymousId, visit.aliasPreviousId] });
}

const BASIC = basicAuth(DEFAULT_SITE.writeKey);
const SLOW = { timeout: 60_000 };

// Each SDK with its default options but the host: the visit leaves when flushed.

test('@segment/analytics-node 3.1.0: the visit arrives once, the profile shows it', SLOW, async (t) => {
  await visitWith(t, 'segment-node', {
    make: (url) => new SegmentAnalytics({ writeKey: DEFAULT_SITE.writeKey, host: url }),
    flush: (client) => client.closeAndFlush({ timeout: 20_000 }),
    expectRequest: (req) => {
      assert.equal(req.url, '/v1/batch');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers['content-encoding'], undefined);
      assert.equal(req.headers.authorization, BASIC);
    },
  });
});

test('analytics-node 6.2.0 (legacy): the visit arrives once, the profile shows it', SLOW, async (t) => {
  await visitWith(t, 'legacy-node', {
    // The first call goes at once on its own; flush() sends the rest in one batch.
    make: (url) => new LegacyAnalytics(DEFAULT_SITE.writeKey, { host: url }),
    flush: (client) => client.flush(),
    expectRequest: (req) => {
      assert.equal(req.url, '/v1/batch');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers['content-encoding'], undefined);
      assert.equal(req.headers.authorization, BASIC);
    },
  });
});

test('@rudderstack/rudder-sdk-node 3.1.1 (gzip): the visit arrives once, the profile shows it', SLOW, async (t) => {
  await visitWith(t, 'rudder-node', {
    // The first call goes at once on its own; flush() sends the rest in one batch.
    make: (url) => new RudderAnalytics(DEFAULT_SITE.writeKey, { dataPlaneUrl: url }),
    flush: (client) => client.flush(),
    expectRequest: (req) => {
      assert.equal(req.url, '/v1/batch');
      // axios's default type for a Buffer body; the body is JSON all the same.
      assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(req.headers['content-encoding'], 'gzip');
      assert.equal(req.headers.authorization, BASIC);
    },
  });
});
