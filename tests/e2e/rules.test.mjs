// The rule engine through the real binary and its HTTP API, with idle times of a few
// seconds: what a storefront's visitors do becomes manager tasks and e-mails in
// GET /v1/deliveries, each exactly once, also when the process is killed with SIGKILL
// again and again while timers are firing.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DEFAULT_SITE,
  TEMPLATES_DIR,
  fetchAllDeliveries,
  postBatch,
  rng,
  sleep,
  startCartwatch,
  waitFor,
} from './lib/cartwatch.mjs';

const RULES = `
[[rules]]
name = "cart_filled"
kind = "cart_filled"

[[rules]]
name = "abandoned_cart"
kind = "abandoned_cart"
stages = [{ after = "3s", actions = ["task", "email"], template = "abandoned_cart" }]
`;

function setup(tick = '200ms') {
  return {
    toml: RULES,
    extra: { templates: { dir: TEMPLATES_DIR }, rule_engine: { timer_tick: tick } },
  };
}

let n = 0;
function message(type, fields) {
  return { type, messageId: `m-${process.pid}-${++n}`, timestamp: new Date().toISOString(), ...fields };
}
const identify = (anonymousId, userId, email) =>
  message('identify', { anonymousId, userId, traits: { email, first_name: userId } });
const add = (who, productId, price) =>
  message('track', {
    ...who,
    event: 'Product Added',
    properties: { product_id: productId, name: `Product ${productId}`, price, quantity: 1, currency: 'EUR' },
  });
const order = (who, total) =>
  message('track', {
    ...who,
    event: 'Order Completed',
    properties: { order_id: `o-${++n}`, total, currency: 'EUR', products: [{ product_id: 'p', price: total, quantity: 1 }] },
  });

async function send(cw, messages) {
  const res = await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, messages);
  assert.equal(res.status, 200, res.body);
}

const deliveries = (cw) => fetchAllDeliveries(cw.publicUrl);

// "<user> <type> <rule>/<stage> <status>" of each action, sorted.
function summary(list) {
  return list
    .map((d) => {
      const action = d.type === 'email.triggered' ? d.data.action : d.data;
      return `${action.customer.user_id} ${d.type} ${d.rule}/${d.stage} ${d.status}`;
    })
    .sort();
}

test('a known visitor who leaves a cart gets one task at once, then one task and one e-mail', async (t) => {
  const cw = await startCartwatch(t, setup());
  await send(cw, [identify('d-anna', 'anna', 'anna@example.com'), add({ userId: 'anna' }, 'boots', 80)]);
  // A second visitor who orders a little later: only the cart_filled task (fired on the
  // next tick; a cart emptied by an order before then would make it pointless).
  await send(cw, [identify('d-bob', 'bob', 'bob@example.com'), add({ userId: 'bob' }, 'hat', 20)]);
  await waitFor('bob\'s cart_filled task', async () =>
    summary(await deliveries(cw)).includes('bob task.created cart_filled/0 pending'));
  await send(cw, [order({ userId: 'bob' }, 20)]);
  // An anonymous visitor builds a cart and never says who they are: nothing.
  await send(cw, [add({ anonymousId: 'd-carol' }, 'scarf', 30)]);

  const expected = [
    'anna email.triggered abandoned_cart/0 pending',
    'anna task.created abandoned_cart/0 pending',
    'anna task.created cart_filled/0 pending',
    'bob task.created cart_filled/0 pending',
  ];
  await waitFor('the abandoned-cart actions', async () => {
    const got = summary(await deliveries(cw));
    return JSON.stringify(got) === JSON.stringify(expected) || got;
  });
  // Nothing more comes: each stage once.
  await sleep(4_000);
  assert.deepEqual(summary(await deliveries(cw)), expected);

  const list = await deliveries(cw);
  const email = list.find((d) => d.type === 'email.triggered');
  assert.equal(email.data.to, 'anna@example.com');
  assert.match(email.data.subject, /anna, your cart is waiting/);
  assert.match(email.data.html, /Product boots/);
  assert.match(email.data.html, /80\.00 EUR/);
  const task = list.find((d) => d.rule === 'abandoned_cart' && d.type === 'task.created');
  assert.match(task.data.summary, /left a cart of 1 item \(80\.00 EUR\)/);
  assert.equal(task.data.cart.lines[0].name, 'Product boots');

  // Carol identifies: the cart she built anonymously counts now.
  await send(cw, [identify('d-carol', 'carol', 'carol@example.com')]);
  await waitFor('carol\'s actions', async () => {
    const got = summary(await deliveries(cw)).filter((s) => s.startsWith('carol'));
    return got.length === 3 || got;
  });
  assert.deepEqual(summary(await deliveries(cw)).filter((s) => s.startsWith('carol')), [
    'carol email.triggered abandoned_cart/0 pending',
    'carol task.created abandoned_cart/0 pending',
    'carol task.created cart_filled/0 pending',
  ]);
});

test('SIGKILL while timers fire, again and again: every due action exists exactly once', async (t) => {
  const random = rng(20261207);
  let cw = await startCartwatch(t, { ...setup('100ms'), keepDir: true });
  const dir = cw.dir;
  t.after(async () => {
    await cw.kill('SIGKILL');
    const fs = await import('node:fs/promises');
    await fs.rm(dir, { recursive: true, force: true });
  });
  const people = 200;
  for (let start = 0; start < people; start += 50) {
    const batch = [];
    for (let i = start; i < start + 50; i++) {
      batch.push(identify(`d-${i}`, `u-${i}`, `u-${i}@example.com`), add({ userId: `u-${i}` }, `p-${i}`, 10 + i));
    }
    await send(cw, batch);
  }
  // The 3-second stage falls due while the process is killed at random moments.
  for (let round = 0; round < 6; round++) {
    await sleep(300 + Math.floor(random() * 1200));
    await cw.kill('SIGKILL');
    cw = await startCartwatch(t, { dir, keepDir: true });
  }
  const expected = [];
  for (let i = 0; i < people; i++) {
    expected.push(
      `u-${i} email.triggered abandoned_cart/0 pending`,
      `u-${i} task.created abandoned_cart/0 pending`,
      `u-${i} task.created cart_filled/0 pending`,
    );
  }
  expected.sort();
  await waitFor('every due action', async () => {
    const got = summary(await deliveries(cw));
    return got.length >= expected.length || got.length;
  });
  await sleep(1_000);
  const got = summary(await deliveries(cw));
  assert.equal(got.length, expected.length, 'an action is missing or doubled');
  assert.deepEqual(got, expected);
  // Ids are unique: what a webhook receiver deduplicates on.
  const ids = new Set((await deliveries(cw)).map((d) => d.id));
  assert.equal(ids.size, expected.length);
});
