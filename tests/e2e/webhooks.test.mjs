// Webhook delivery through the real binary (docs/webhooks.md): the rule engine's actions
// posted to receivers that verify them with the `standardwebhooks` npm library, retried
// through failures, timeouts, an outage and a 410, over HTTPS with a test CA, and across a
// SIGKILL of Cartwatch.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Webhook } from 'standardwebhooks';

import {
  DEFAULT_SITE,
  fetchAllDeliveries,
  postBatch,
  request,
  rng,
  scrapeMetrics,
  sleep,
  startCartwatch,
  waitFor,
} from './lib/cartwatch.mjs';
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

const deliveries = (cw) => fetchAllDeliveries(cw.publicUrl);

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

  // The Python example of docs/webhooks.md, as printed there, agrees (when there is a python3).
  const docs = fs.readFileSync(path.resolve(import.meta.dirname, '../../docs/webhooks.md'), 'utf8');
  const snippet = docs.match(/```python\n([\s\S]*?)```/)[1];
  const driver = `${snippet}
import json, sys
for case in json.load(sys.stdin):
    print(verify(case["secret"], case["headers"], case["body"].encode()))
`;
  const cases = receiver.deliveries.flatMap((d) => [
    { secret, headers: d.headers, body: d.body },
    { secret: previous, headers: d.headers, body: d.body },
    { secret, headers: d.headers, body: d.body.replace('"task.created"', '"task.createX"') },
    { secret: newSecret(), headers: d.headers, body: d.body },
  ]);
  const python = spawnSync('python3', ['-c', driver], { input: JSON.stringify(cases), encoding: 'utf8' });
  if (python.error?.code !== 'ENOENT') {
    assert.equal(python.status, 0, python.stderr);
    assert.deepEqual(
      python.stdout.trim().split('\n'),
      receiver.deliveries.flatMap(() => ['True', 'True', 'False', 'False']),
    );
  }

  // The metrics count them, clean under promtool.
  const metrics = await scrapeMetrics(cw);
  assert.match(metrics, /^cartwatch_webhook_attempts_total\{endpoint="crm",outcome="delivered"\} 3$/m);
  assert.match(metrics, /^cartwatch_webhook_attempts_total\{endpoint="crm",outcome="retrying"\} 0$/m);
  assert.match(metrics, /^cartwatch_webhook_connections_opened_total\{endpoint="crm"\} [1-3]$/m);
  assert.match(metrics, /^cartwatch_webhook_endpoint_disabled\{endpoint="crm"\} 0$/m);
  assert.match(metrics, /^cartwatch_webhook_in_flight\{endpoint="crm"\} 0$/m);
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

test('a flaky endpoint, an outage, a 410 and a dead endpoint: delivered at least once, same ids, dead ones listed', async (t) => {
  const random = rng(418);
  const secret = newSecret();
  const seen = new Map();  // webhook-id -> attempts that reached the flaky receiver
  let outage = null;
  // Each action's first attempt gets one of these, in turn from a random start; later
  // attempts succeed.
  const firsts = [{ status: 500 }, { status: 503, headers: { 'Retry-After': '1' } }, { hang: true }, { status: 200 }];
  let next = Math.floor(random() * firsts.length);
  const flaky = await startReceiver({
    secrets: [secret],
    behave: (req, d) => {
      const attempt = (seen.get(d.id) ?? 0) + 1;
      seen.set(d.id, attempt);
      if (attempt > 1) return { status: 200 };
      return firsts[next++ % firsts.length];
    },
  });
  let goneAnswered = false;
  const gone = await startReceiver({
    secrets: [secret],
    behave: () => {
      if (goneAnswered) return { status: 200 };
      goneAnswered = true;
      return { status: 410 };
    },
  });
  const dead = await startReceiver({ secrets: [secret], behave: () => ({ status: 500 }) });
  t.after(async () => {
    clearTimeout(outage);
    await Promise.all([flaky.close(), gone.close(), dead.close()]);
  });
  const cw = await startCartwatch(t, {
    ...setup(
      [
        { name: 'flaky', url: flaky.url(), secret, events: ['task.created'], timeout: '1s' },
        { name: 'gone', url: gone.url(), secret, events: ['task.created'], max_in_flight: 1 },
        { name: 'dead', url: dead.url(), secret, events: ['email.triggered'] },
      ],
      {
        rules: `[[rules]]\nname = "abandoned"\nkind = "abandoned_cart"\nstages = [{ after = "1s", actions = ["email"], template = "abandoned_cart" }]\n`,
        schedule: ['1s', '2s', '4s', '8s', '16s', '16s'],
      },
    ),
    extra: {
      templates: { dir: path.resolve(import.meta.dirname, '../../config/templates') },
      rule_engine: { timer_tick: '100ms' },
      delivery: { tick: '100ms', retry_schedule: ['1s', '2s', '4s', '8s', '16s', '16s'], retry_jitter: 0 },
    },
  });
  const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8'];
  await send(cw, users.flatMap((u) => cartOf(u)));
  const flakyDone = async (ids) => {
    const list = (await deliveries(cw)).filter((d) => d.type === 'task.created' && ids.includes(d.data.customer.user_id));
    const states = list.map((d) => d.endpoints.find((e) => e.endpoint === 'flaky').state);
    return (list.length === ids.length && states.every((s) => s === 'delivered')) || states;
  };
  await waitFor('the first tasks delivered to the flaky endpoint', () => flakyDone(users));

  // Then it goes away for 30 s, while more carts are left.
  await flaky.close();
  outage = setTimeout(() => flaky.reopen(), 30_000);
  const later = ['u9', 'u10', 'u11', 'u12'];
  users.push(...later);
  await send(cw, later.flatMap((u) => cartOf(u)));

  // The 410 disabled "gone": its deliveries wait, shown as such.
  await waitFor('the endpoint disabled', async () => {
    const tasks = (await deliveries(cw)).filter((d) => d.type === 'task.created');
    const states = tasks.map((d) => d.endpoints.find((e) => e.endpoint === 'gone').state);
    return (tasks.length === users.length && states.every((s) => s === 'waiting')) || states;
  });
  assert.equal(gone.deliveries.length, 1, 'nothing more is sent to a disabled endpoint');
  // Scraped before the enable below: the dispatcher's next tick shows the enable (0).
  assert.match(await scrapeMetrics(cw), /^cartwatch_webhook_endpoint_disabled\{endpoint="gone"\} 1$/m);
  const unknown = await request('POST', `${cw.publicUrl}/v1/endpoints/nope/enable`, { headers: auth });
  assert.equal(unknown.status, 404);
  assert.equal(JSON.parse(unknown.body).error.code, 'endpoint_not_found');
  const enabled = await request('POST', `${cw.publicUrl}/v1/endpoints/gone/enable`, { headers: auth });
  assert.equal(enabled.status, 200, enabled.body);
  assert.deepEqual(JSON.parse(enabled.body), { success: true, endpoint: 'gone', was_disabled: true });

  // Every task reaches both task endpoints (flaky after its outage); the e-mails die.
  await waitFor(
    'every action settled',
    async () => {
      const list = await deliveries(cw);
      const open = list.filter((d) => !(d.type === 'task.created' ? d.status === 'delivered' : d.status === 'dead'));
      return (list.length === 2 * users.length && open.length === 0) || open.map((d) => `${d.type} ${d.status}`);
    },
    90_000,
  );
  const list = await deliveries(cw);
  for (const task of list.filter((d) => d.type === 'task.created')) {
    const got = flaky.deliveries.filter((d) => d.id === task.id);
    assert.ok(got.some((d) => d.status === 200), `${task.id} reached the flaky receiver`);
    assert.equal(new Set(got.map((d) => d.body)).size, 1, 'every attempt posts the same body');
    assert.ok(got.every((d) => d.verified[0]), 'every attempt is signed');
    assert.ok(gone.deliveries.some((d) => d.id === task.id && d.status === 200));
    const e = task.endpoints.find((x) => x.endpoint === 'flaky');
    assert.equal(e.state, 'delivered');
    assert.equal(e.last_error, null);
  }
  const failures = list.flatMap((d) => d.attempts).filter((a) => a.endpoint === 'flaky' && a.status !== 200);
  assert.ok(failures.some((a) => a.status === 500), 'a 500 was retried');
  assert.ok(failures.some((a) => /timed out reading the response \(1s\)/.test(a.error ?? '')), 'a timeout was retried');
  assert.ok(failures.some((a) => /connect 127\.0\.0\.1: Connection refused/.test(a.error ?? '')), 'the outage was retried');

  const metrics = await scrapeMetrics(cw);
  assert.match(metrics, new RegExp(`^cartwatch_webhook_attempts_total\\{endpoint="dead",outcome="dead"\\} ${users.length}$`, 'm'));
  assert.match(metrics, /^cartwatch_webhook_attempts_total\{endpoint="gone",outcome="gone"\} 1$/m);
  assert.match(metrics, /^cartwatch_webhook_endpoint_disabled\{endpoint="gone"\} 0$/m);
  // The dead ones now, counted each tick; and one log line each.
  await waitFor('the dead deliveries counted', async () =>
    new RegExp(`^cartwatch_webhook_dead\\{endpoint="dead"\\} ${users.length}$`, 'm').test(await scrapeMetrics(cw)));
  assert.match(await scrapeMetrics(cw), /^cartwatch_webhook_dead\{endpoint="flaky"\} 0$/m);
  const deadLines = cw.stderr().split('\n').filter((l) =>
    /^ts=\S+ level=warn msg="delivery dead: its retry schedule is spent" endpoint=dead$/.test(l));
  assert.equal(deadLines.length, users.length, cw.stderr());
  assert.match(cw.stderr(), /^ts=\S+ level=warn msg="endpoint disabled: [^"]*" endpoint=gone$/m);
  assert.match(cw.stderr(), /^ts=\S+ level=warn msg="delivery attempt failed" endpoint=flaky id=act_[0-9a-f]{16} attempt=\d+ error="HTTP 500"$/m);
  const deadList = JSON.parse((await request('GET', `${cw.publicUrl}/v1/deliveries?status=dead`, { headers: auth })).body).deliveries;
  assert.equal(deadList.length, users.length);
  for (const d of deadList) {
    assert.equal(d.type, 'email.triggered');
    assert.deepEqual(d.endpoints.map((e) => [e.endpoint, e.state, e.attempts, e.last_error]), [['dead', 'dead', 7, 'HTTP 500']]);
    assert.equal(d.attempts.length, 7);
  }
  // A dead one retried by hand gets one more attempt.
  const before = dead.deliveries.filter((d) => d.id === deadList[0].id).length;
  const retried = await request('POST', `${cw.publicUrl}/v1/deliveries/${deadList[0].id}/retry`, { headers: auth });
  assert.equal(retried.status, 202, retried.body);
  assert.deepEqual(JSON.parse(retried.body), { success: true, id: deadList[0].id, retried: 1 });
  await waitFor('the retry', async () => dead.deliveries.filter((d) => d.id === deadList[0].id).length === before + 1);
  await waitFor('dead again', async () => {
    const d = (await deliveries(cw)).find((x) => x.id === deadList[0].id);
    return (d.status === 'dead' && d.endpoints[0].attempts === 8) || d.endpoints[0];
  });
  const again = await request('POST', `${cw.publicUrl}/v1/deliveries/${list.find((d) => d.status === 'delivered').id}/retry`, { headers: auth });
  assert.equal(again.status, 409);
  assert.equal(JSON.parse(again.body).error.code, 'not_retryable');
  const missing = await request('POST', `${cw.publicUrl}/v1/deliveries/act_00000000000fffff/retry`, { headers: auth });
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body).error.code, 'delivery_not_found');
});

test('SIGKILL during deliveries: after the restart every action arrives, twice only if it was in flight', async (t) => {
  const secret = newSecret();
  const receiver = await startReceiver({
    secrets: [secret],
    behave: () => ({ status: 200, delayMs: 200 }),
  });
  t.after(() => receiver.close());
  let cw = await startCartwatch(t, {
    ...setup([{ name: 'slow', url: receiver.url(), secret, max_in_flight: 4 }]),
    keepDir: true,
  });
  const dir = cw.dir;
  t.after(async () => {
    await cw.kill('SIGKILL');
    await fs.promises.rm(dir, { recursive: true, force: true });
  });
  const users = Array.from({ length: 40 }, (_, i) => `k${i}`);
  await send(cw, users.flatMap((u) => cartOf(u)));
  await waitFor('some deliveries', async () => receiver.deliveries.length >= 10 || receiver.deliveries.length);
  await cw.kill('SIGKILL');
  cw = await startCartwatch(t, { dir, keepDir: true });
  await waitFor('every action delivered', async () => {
    const list = await deliveries(cw);
    return (list.length === users.length && list.every((d) => d.status === 'delivered')) || list.filter((d) => d.status !== 'delivered').length;
  });
  const counts = new Map();
  for (const d of receiver.deliveries) counts.set(d.id, (counts.get(d.id) ?? 0) + 1);
  assert.equal(counts.size, users.length, 'every action arrived');
  const twice = [...counts.values()].filter((c) => c > 1).length;
  assert.ok(twice <= 4, `${twice} actions arrived twice; at most max_in_flight (4) were in flight`);
  assert.ok([...counts.values()].every((c) => c <= 2));
});

// A test CA and two server certificates (one for localhost, one for another name), made
// with the openssl command.
function makeCertificates() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cartwatch-tls-'));
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Cartwatch Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  for (const [name, host] of [['good', 'localhost'], ['wrong', 'other.example']]) {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${host}`);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=DNS:${host}\n`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
  const read = (f) => fs.readFileSync(path.join(dir, f));
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    good: { key: read('good.key'), cert: read('good.pem') },
    wrong: { key: read('wrong.key'), cert: read('wrong.pem') },
  };
}

test('HTTPS with a test CA: verified; a wrong host name or an untrusted certificate fails with the reason', async (t) => {
  const certs = makeCertificates();
  const secret = newSecret();
  const good = await startReceiver({ secrets: [secret], tls: certs.good });
  const wrong = await startReceiver({ secrets: [secret], tls: certs.wrong });
  t.after(async () => {
    await Promise.all([good.close(), wrong.close()]);
    fs.rmSync(certs.dir, { recursive: true, force: true });
  });
  const cw = await startCartwatch(
    t,
    setup([
      { name: 'verified', url: `https://localhost:${good.port}/hooks`, secret, ca_file: certs.ca },
      { name: 'wrong-host', url: `https://localhost:${wrong.port}/hooks`, secret, ca_file: certs.ca },
      { name: 'untrusted', url: `https://localhost:${good.port}/other`, secret },
    ]),
  );
  await send(cw, cartOf('tess'));
  await waitFor('three endpoints attempted', async () => {
    const [d] = await deliveries(cw);
    return (d && d.endpoints.every((e) => e.attempts >= 1)) || d?.endpoints;
  });
  const [d] = await deliveries(cw);
  const byName = Object.fromEntries(d.endpoints.map((e) => [e.endpoint, e]));
  assert.equal(byName.verified.state, 'delivered');
  assert.equal(good.deliveries.filter((x) => x.path === '/hooks').length, 1);
  assert.ok(good.deliveries[0].verified[0]);
  assert.equal(byName['wrong-host'].state, 'pending');
  assert.equal(byName['wrong-host'].last_error, 'TLS: certificate verify failed: hostname mismatch');
  assert.equal(byName.untrusted.state, 'pending');
  assert.match(byName.untrusted.last_error, /^TLS: certificate verify failed: unable to get local issuer certificate$/);
  assert.equal(wrong.deliveries.length, 0);
  assert.equal(good.deliveries.filter((x) => x.path === '/other').length, 0);
});
