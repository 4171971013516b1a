// Third-party browser SDKs, installed from npm at pinned versions (package.json), work
// unchanged against the real collector in Debian's chromium (driven by playwright-core):
// @segment/analytics-next (analytics.js 2.0) with its default per-event delivery and with
// batching, and @rudderstack/analytics-js over XHR (per event and batched) and with
// useBeacon. Each is bundled with esbuild into a page served by a static server on another
// origin than the collector (CORS, allowed_origins), makes the shop visit of
// sdk_pages/shop_visit.mjs, and every message it sent is in GET /v1/events exactly once, as
// sent, and the customer's profile shows it. The browser's own record of each request checks
// the path, Content-Type and write key against docs/sdks.md.

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, browserSkip } from './lib/browser.mjs';

import { DEFAULT_SITE, basicAuth, fetchAllEvents, sleep, startCartwatch } from './lib/cartwatch.mjs';
import {
  checkProfile,
  checkStoredMessages,
  messagesOfBody,
  shopVisit,
  waitForMessages,
} from './sdk_pages/shop_visit.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const skip = browserSkip;
const ARGS = CHROMIUM_ARGS;

// The page scripts, bundled once for the whole file: name -> JavaScript text.
async function bundlePages() {
  const pages = { 'analytics-next': 'analytics_next.js', rudderstack: 'rudderstack.js' };
  const out = {};
  await Promise.all(
    Object.entries(pages).map(async ([name, entry]) => {
      const result = await build({
        entryPoints: [path.join(HERE, 'sdk_pages', entry)],
        bundle: true,
        format: 'iife',
        platform: 'browser',
        target: 'chrome110',
        define: { 'process.env.NODE_ENV': '"production"' },
        write: false,
        logLevel: 'silent',
      });
      out[name] = result.outputFiles[0].text;
    }),
  );
  return out;
}

// Serves /<name>.html (an empty page loading /<name>.js) and /<name>.js for each bundle, on
// an origin of its own (loopback, another port than the collector's). Resolves to
// { origin, close() }.
async function startShop(bundles) {
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    if (pathname === '/favicon.ico') return res.writeHead(204).end();
    const m = /^\/([a-z-]+)\.(html|js)$/.exec(pathname);
    if (!m || !(m[1] in bundles)) return res.writeHead(404).end();
    if (m[2] === 'js') {
      return res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundles[m[1]]);
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Tea pot</title><script src="/${m[1]}.js"></script><h1>Tea pot</h1>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
const pathAndQuery = (url) => {
  const u = new URL(url);
  return u.pathname + u.search;
};

// Resolves once `condition()` holds, or after `ms` (the caller asserts what it needs).
async function until(condition, ms) {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await sleep(50);
}

let shop;
let browser;
before(async () => {
  if (skip) return;
  shop = await startShop(await bundlePages());
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});
after(async () => {
  await browser?.close();
  await shop?.close();
});

// Runs one SDK's visit in a fresh browser profile against a fresh collector that allows the
// shop's origin, and checks all of it. `pageName`: the bundle; `options`: for runVisit beside
// writeKey, userId and calls (collector URL from `cw`); `expectRequest(req)`: checks one
// recorded request ({ method, url (path and query), headers, body }).
async function visitWith(t, tag, { pageName, options, expectRequest, minRequests = 1 }) {
  const site = { ...DEFAULT_SITE, allowedOrigins: [shop.origin] };
  const cw = await startCartwatch(t, { sites: [site] });
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()} (${msg.location().url})`);
  });

  // Every request to the collector, as the browser sent it, with its answer's status.
  const requests = [];
  const recordOf = new Map();
  const elsewhere = []; // requests to neither the shop nor the collector (a CDN, say)
  page.on('request', (req) => {
    if (!req.url().startsWith(cw.publicUrl)) {
      if (!req.url().startsWith(`${shop.origin}/`)) elsewhere.push(req.url());
      return;
    }
    const record = {
      method: req.method(),
      url: pathAndQuery(req.url()),
      headers: req.headers(),
      body: req.postDataBuffer(),
    };
    requests.push(record);
    recordOf.set(req, record);
  });
  page.on('response', (res) => {
    const record = recordOf.get(res.request());
    if (record) record.status = res.status();
  });
  page.on('requestfailed', (req) => {
    const record = recordOf.get(req);
    if (record) record.status = `failed: ${req.failure()?.errorText}`;
  });

  // For pages that pace their calls by what the collector has stored (sdk_pages/rudderstack.js).
  await page.exposeFunction('cartwatchStored', async (id) => {
    const stored = await waitForMessages(cw, [id]);
    if (!stored.some((e) => e.messageId === id)) throw new Error(`${id} was not stored`);
  });

  const visit = shopVisit(tag);
  await page.goto(`${shop.origin}/${pageName}.html`);
  const queued = await page.evaluate(
    (o) => window.runVisit(o),
    { writeKey: site.writeKey, userId: visit.userId, calls: visit.calls, ...options(cw) },
  );
  assert.equal(queued.length, visit.calls.length, 'the SDK made one event a call');
  const ids = queued.map((e) => e.messageId);
  const events = await waitForMessages(cw, ids);
  // The bodies of the page's beacons (sdk_pages/rudderstack.js records them; the browser's
  // record of a beacon has no body), in the order they were sent.
  const beacons = await page.evaluate(() => Promise.all(window.sentBeacons ?? []));
  // Nothing may be left queued in the page: what its unload would send goes now (and must
  // not arrive twice); then every request made has its answer.
  const closed = new Promise((resolve) => page.once('close', resolve));
  await page.close({ runBeforeUnload: true });
  await closed;
  await until(() => requests.every((r) => r.status !== undefined), 10_000);
  assert.deepEqual(pageErrors, [], 'errors in the page (the SDKs log failed deliveries there)');
  assert.deepEqual(elsewhere, [], 'the SDK fetched nothing from elsewhere (settings, plugins, telemetry)');

  assert.ok(requests.length >= minRequests, `the SDK made ${requests.length} requests to the collector`);
  const wire = [];
  for (const r of requests) {
    if (r.body === null) {
      const beacon = beacons.shift();
      assert.equal(beacon && pathAndQuery(beacon.url), r.url, 'a request without a body is a beacon');
      r.body = Buffer.from(beacon.text);
    }
    assert.equal(r.status, 200, `${r.method} ${r.url} answered ${r.status}`);
    assert.equal(r.method, 'POST');
    expectRequest(r);
    wire.push(...messagesOfBody(r.body, r.headers['content-encoding']));
  }
  // In call order: the SDK's own record of the events gives it.
  const byId = new Map(wire.map((m) => [m.messageId, m]));
  assert.equal(byId.size, wire.length, 'the SDK sent no message twice');
  const inOrder = ids.map((id) => byId.get(id) ?? assert.fail(`${id} never went over the wire`));

  const anonymousId = queued[0].anonymousId;
  assert.ok(anonymousId, 'the SDK made an anonymous id');
  const { events: afterClose } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  assert.equal(afterClose.length, events.length, 'nothing arrived after the page was closed');
  checkStoredMessages(afterClose, inOrder, visit, { anonymousId });
  await checkProfile(cw, visit, { anonymousIds: [anonymousId, visit.aliasPreviousId] });
}

const BASIC = basicAuth(DEFAULT_SITE.writeKey);
const opts = { skip, timeout: 60_000 };

// analytics.js 2.0: `apiHost` is the collector's host and path prefix, without the scheme.
const segmentio = (batching) => (cw) => ({ apiHost: `${new URL(cw.publicUrl).host}/v1`, batching });

// What analytics.js 2.0 sends with each request: text/plain, and the write key twice.
function expectAnalyticsJs(r) {
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers.authorization, BASIC);
  assert.equal(JSON.parse(r.body).writeKey, DEFAULT_SITE.writeKey, 'writeKey in the body too');
}

// What RudderStack's XHR delivery sends with each request: JSON, Basic, and the visitor id
// (base64) and sentAt in headers of their own.
function expectRudderXhr(r) {
  assert.equal(r.headers['content-type'], 'application/json;charset=UTF-8');
  assert.equal(r.headers.authorization, BASIC);
  const body = JSON.parse(r.body);
  const first = body.batch?.[0] ?? body;
  assert.equal(Buffer.from(r.headers.anonymousid, 'base64').toString(), first.anonymousId);
  assert.equal(r.headers.sentat, body.sentAt);
}

test('@segment/analytics-next 1.84.3, default delivery: /v1/i, /v1/p, /v1/t, /v1/a, /v1/g', opts, async (t) => {
  const paths = [];
  await visitWith(t, 'ajs-standard', {
    pageName: 'analytics-next',
    options: segmentio(false),
    minRequests: 6,
    expectRequest: (r) => {
      paths.push(r.url);
      expectAnalyticsJs(r);
    },
  });
  assert.deepEqual(paths, ['/v1/i', '/v1/p', '/v1/t', '/v1/t', '/v1/a', '/v1/g']);
});

test('@segment/analytics-next 1.84.3, deliveryStrategy batching: /v1/b', opts, async (t) => {
  const paths = [];
  await visitWith(t, 'ajs-batching', {
    pageName: 'analytics-next',
    options: segmentio(true),
    expectRequest: (r) => {
      paths.push(r.url);
      expectAnalyticsJs(r);
    },
  });
  assert.deepEqual(paths, ['/v1/b']);
});

test('@rudderstack/analytics-js 3.34.1, XHR delivery: /v1/identify, /v1/page, ...', opts, async (t) => {
  const paths = [];
  await visitWith(t, 'rudder-xhr', {
    pageName: 'rudderstack',
    options: (cw) => ({ dataPlaneUrl: cw.publicUrl, transport: 'xhr' }),
    minRequests: 6,
    expectRequest: (r) => {
      paths.push(r.url);
      expectRudderXhr(r);
    },
  });
  assert.deepEqual(paths, ['/v1/identify', '/v1/page', '/v1/track', '/v1/track', '/v1/alias', '/v1/group']);
});

test('@rudderstack/analytics-js 3.34.1, batched XHR: /v1/batch', opts, async (t) => {
  await visitWith(t, 'rudder-xhr-batch', {
    pageName: 'rudderstack',
    options: (cw) => ({ dataPlaneUrl: cw.publicUrl, transport: 'xhr-batch' }),
    expectRequest: (r) => {
      assert.equal(r.url, '/v1/batch');
      expectRudderXhr(r);
    },
  });
});

test('@rudderstack/analytics-js 3.34.1, useBeacon: /beacon/v1/batch?writeKey=', opts, async (t) => {
  await visitWith(t, 'rudder-beacon', {
    pageName: 'rudderstack',
    options: (cw) => ({ dataPlaneUrl: cw.publicUrl, transport: 'beacon' }),
    expectRequest: (r) => {
      assert.equal(r.url, `/beacon/v1/batch?writeKey=${DEFAULT_SITE.writeKey}`);
      assert.equal(r.headers['content-type'], 'text/plain'); // the Blob's type
      assert.equal(r.headers.authorization, undefined, 'sendBeacon sends no credentials header');
    },
  });
});
