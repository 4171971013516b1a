// Webhook delivery through the real binary (docs/webhooks.md): the rule engine's actions
// posted to receivers that verify them with the `standardwebhooks` npm library, retried
// through failures, timeouts, an outage and a 410, over HTTPS with a test CA, and across a
// SIGKILL of Cartwatch.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Webhook } from 'standardwebhooks';

import { DEFAULT_SITE, postBatch, request, rng, sleep, startCartwatch } from './lib/cartwatch.mjs';
import { newSecret, startReceiver } from './lib/receiver.mjs';

let n = 0;
function message(type, fields) {
  return { type, messageId: `m-${process.pid}-${++n}`, timestamp: new Date().toISOString(), ...fields };
}
// A known customer with a cart: the cart_filled rule's task on the next tick.
function cartOf(user, price = 25) {
  return [
    message('identify', { anonymousId: `d-${user}`, userId: user, traits: { email: `${user}@example.com` } }),
    message('track', {
      userId: user,
      event: 'Product Added',
      properties: { product_id: `p-${user}`, name: `Product ${user}`, price, quantity: 1, currency: 'EUR' },
    }),
  ];
}

async function send(cw, messages) {
  const res = await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, messages);
  assert.equal(res.status, 200, res.body);
}

const auth = { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` };

async function deliveries(cw) {
  const all = [];
  let after = '';
  for (;;) {
    const res = await request('GET', `${cw.publicUrl}/v1/deliveries?limit=1000${after ? `&after=${after}` : ''}`, {
      headers: auth,
    });
    assert.equal(res.status, 200, res.body);
    const page = JSON.parse(res.body);
    all.push(...page.deliveries);
    if (page.deliveries.length === 0) return all;
    after = page.next_cursor;
  }
}

async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await sleep(200);
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms: ${JSON.stringify(last)?.slice(0, 2000)}`);
}

// The config of a test: the cart_filled rule (plus `rules`), the endpoints, and a fast
// timer tick and delivery schedule.
function setup(endpoints, { rules = '', schedule = ['1s', '1s', '1s'], tick = '100ms' } = {}) {
  const hooks = endpoints
    .map((e) =>
      [
        '[[webhooks]]',
        `name = "${e.name}"`,
        `url = "${e.url}"`,
        `secret = "${e.secret}"`,
        e.previous_secret ? `previous_secret = "${e.previous_secret}"` : '',
        e.events ? `events = [${e.events.map((x) => `"${x}"`).join(', ')}]` : '',
        `allow_private = ${e.allow_private ?? true}`,
        e.timeout ? `timeout = "${e.timeout}"` : '',
        e.max_in_flight ? `max_in_flight = ${e.max_in_flight}` : '',
        e.ca_file ? `ca_file = "${e.ca_file}"` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    )
    .join('\n\n');
  return {
    toml: `[[rules]]\nname = "cart_filled"\nkind = "cart_filled"\n${rules}\n${hooks}\n`,
    extra: {
      rule_engine: { timer_tick: tick },
      delivery: { tick: '100ms', retry_schedule: schedule, retry_jitter: 0 },
    },
  };
}

test('every action is posted once, signed with both secrets during a rotation, verifiable by standardwebhooks', async (t) => {
  const secret = newSecret();
  const previous = newSecret();
  const receiver = await startReceiver({ secrets: [secret, previous] });
  t.after(() => receiver.close());
  const cw = await startCartwatch(
    t,
    setup([{ name: 'crm', url: receiver.url('/hooks/cartwatch?source=cw'), secret, previous_secret: previous }]),
  );
  await send(cw, [...cartOf('ada'), ...cartOf('bob'), ...cartOf('cy')]);
  await waitFor('three deliveries', async () => receiver.deliveries.length >= 3 || receiver.deliveries.length);
  await waitFor('three delivered actions', async () => {
    const list = await deliveries(cw);
    return (list.length === 3 && list.every((d) => d.status === 'delivered')) || list.map((d) => d.status);
  });
  await sleep(500);
  assert.equal(receiver.deliveries.length, 3, 'each action is posted once');

  const list = await deliveries(cw);
  for (const d of receiver.deliveries) {
    assert.deepEqual(d.verified, [true, true], 'verified with the new and with the old secret');
    assert.equal(d.signature.split(' ').length, 2);
    assert.equal(d.path, '/hooks/cartwatch?source=cw');
    const action = list.find((a) => a.id === d.id);
    assert.ok(action, `the webhook-id ${d.id} is an action's id`);
    assert.equal(d.json.type, 'task.created');
    assert.equal(d.json.timestamp, action.created_at);
    assert.deepEqual(d.json.data, action.data);
    // What the library refuses: a changed body, a changed timestamp, a stale one.
    const wh = new Webhook(secret);
    assert.throws(() => wh.verify(d.body.replace('"task.created"', '"task.createX"'), d.headers));
    assert.throws(() => wh.verify(d.body, { ...d.headers, 'webhook-timestamp': String(Number(d.timestamp) + 1) }));
    assert.throws(() => new Webhook(newSecret()).verify(d.body, d.headers));
  }
  for (const a of list) {
    assert.equal(a.endpoints.length, 1);
    assert.equal(a.endpoints[0].endpoint, 'crm');
    assert.equal(a.endpoints[0].state, 'delivered');
    assert.equal(a.endpoints[0].attempts, 1);
    assert.equal(a.attempts.length, 1);
    assert.equal(a.attempts[0].status, 204);
    assert.equal(a.attempts[0].error, null);
  }
  // An attempt's timestamp is its own (Standard Webhooks receivers refuse old ones).
  const now = Math.floor(Date.now() / 1000);
  for (const d of receiver.deliveries) assert.ok(Math.abs(Number(d.timestamp) - now) < 60);
});

test('a private address is refused unless the endpoint allows it, with the reason in the attempt', async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const secret = newSecret();
  const cw = await startCartwatch(t, setup([{ name: 'guarded', url: receiver.url(), secret, allow_private: false }]));
  await send(cw, cartOf('dee'));
  await waitFor('a refused attempt', async () => {
    const list = await deliveries(cw);
    return (list.length === 1 && list[0].attempts.length >= 1) || list;
  });
  const [action] = await deliveries(cw);
  assert.equal(action.status, 'failed');
  assert.match(action.attempts[0].error, /^refused address 127\.0\.0\.1: loopback .*; the endpoint does not set allow_private$/);
  assert.equal(action.attempts[0].status, null);
  assert.equal(receiver.deliveries.length, 0, 'nothing reached the receiver');
});
