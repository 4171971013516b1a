// What ops get (docs/operations.md): the shipped alerting rules checked and unit-tested by
// promtool, the shipped Grafana dashboard's queries checked against a live /metrics, and a
// real Prometheus server (Debian's) scraping Cartwatch's admin listener and answering a
// query with the number of messages the test sent.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  DEFAULT_SITE,
  findPrometheus,
  findPromtool,
  freePort,
  postBatch,
  request,
  scrapeMetrics,
  startCartwatch,
  waitFor,
} from './lib/cartwatch.mjs';
import { newSecret, startReceiver } from './lib/receiver.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ALERTS_DIR = path.join(ROOT, 'config/prometheus');
const DASHBOARD = path.join(ROOT, 'config/grafana/cartwatch.json');

let n = 0;
function message(type, fields) {
  return { type, messageId: `p-${process.pid}-${++n}`, timestamp: new Date().toISOString(), ...fields };
}

// An instance with a rule and a webhook endpoint, after traffic of every kind: `accepted`
// messages stored, one rejected, one request refused; an action delivered.
async function busyInstance(t) {
  const secret = newSecret();
  const receiver = await startReceiver({ secrets: [secret] });
  t.after(() => receiver.close());
  const cw = await startCartwatch(t, {
    toml: `[[rules]]\nname = "cart_filled"\nkind = "cart_filled"\n\n[[webhooks]]\nname = "crm"\nurl = "${receiver.url()}"\nsecret = "${secret}"\nallow_private = true\n`,
    extra: { rule_engine: { timer_tick: '100ms' }, delivery: { tick: '100ms' } },
  });
  const good = [
    message('identify', { userId: 'ops', anonymousId: 'd-ops', traits: { email: 'ops@example.com' } }),
    message('track', {
      userId: 'ops',
      event: 'Product Added',
      properties: { product_id: 'p1', name: 'Boots', price: 80, quantity: 1 },
    }),
    message('page', { userId: 'ops', name: 'Home' }),
  ];
  const res = await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, [...good, { type: 'track', userId: 'ops' }]);
  assert.equal(res.status, 200, res.body);
  assert.equal((await postBatch(cw.publicUrl, 'wrong-key', good)).status, 401);
  await waitFor('the delivery', async () => receiver.deliveries.length === 1 || receiver.deliveries.length);
  return { cw, accepted: good.length };
}

test('the shipped alerting rules pass promtool check rules and their unit tests', (t) => {
  const promtool = findPromtool();
  if (!promtool) return t.skip('no promtool (scripts/install-deps.sh --test)');
  const check = spawnSync(promtool, ['check', 'rules', 'alerts.yml'], { cwd: ALERTS_DIR, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: 10 rules found/);
  const unit = spawnSync(promtool, ['test', 'rules', 'alerts_test.yml'], { cwd: ALERTS_DIR, encoding: 'utf8' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
});

test('every metric the alerts and the Grafana dashboard query is one /metrics exposes', async (t) => {
  const { cw } = await busyInstance(t);
  const exposition = await scrapeMetrics(cw);  // clean under promtool check metrics
  const series = new Set(
    exposition
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/)[0]),
  );
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  assert.equal(dashboard.uid, 'cartwatch');
  assert.deepEqual(dashboard.__inputs.map((i) => i.pluginId), ['prometheus']);
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((target) => target.expr));
  assert.ok(exprs.length >= 30);
  exprs.push(...[...fs.readFileSync(path.join(ALERTS_DIR, 'alerts.yml'), 'utf8').matchAll(/^\s+expr: (.*)$/gm)].map((m) => m[1]));
  exprs.push(fs.readFileSync(path.join(ALERTS_DIR, 'alerts.yml'), 'utf8'));
  const named = new Set();
  for (const expr of exprs) {
    for (const [name] of expr.matchAll(/\b(?:cartwatch|process)_[a-z0-9_]+/g)) named.add(name);
  }
  assert.ok(named.size >= 30, [...named].join(' '));
  const missing = [...named].filter((name) => !series.has(name));
  assert.deepEqual(missing, [], `queried but not exposed: ${missing.join(', ')}`);
});

test('a real Prometheus scrapes the admin listener and counts the messages sent', async (t) => {
  const prometheus = findPrometheus();
  if (!prometheus) return t.skip('no prometheus (scripts/install-deps.sh --test)');
  const { cw, accepted } = await busyInstance(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cartwatch-prometheus-'));
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - ${path.join(ALERTS_DIR, 'alerts.yml')}\n` +
      `scrape_configs:\n  - job_name: cartwatch\n    static_configs:\n      - targets: ['127.0.0.1:${cw.adminPort}']\n`,
  );
  const server = spawn(
    prometheus,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  t.after(() => {
    server.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const query = async (q) => {
    const res = await request('GET', `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
    if (res.status !== 200) return null;
    const body = JSON.parse(res.body);
    return body.data.result;
  };
  await waitFor(
    'Prometheus to scrape Cartwatch',
    async () => {
      try {
        const result = await query('sum(cartwatch_messages_accepted_total{job="cartwatch"})');
        return (result?.length === 1 && Number(result[0].value[1]) === accepted) || result;
      } catch (e) {
        return String(e);
      }
    },
    60_000,
  ).catch((e) => {
    throw new Error(`${e.message}\nprometheus log:\n${log.slice(-3000)}`);
  });
  const up = await query('up{job="cartwatch"}');
  assert.equal(up[0].value[1], '1');
  const refused = await query('sum(cartwatch_http_requests_total{job="cartwatch",code="401"})');
  assert.equal(refused[0].value[1], '1');
  const delivered = await query('cartwatch_webhook_attempts_total{job="cartwatch",outcome="delivered"}');
  assert.equal(delivered[0].metric.endpoint, 'crm');
  assert.equal(delivered[0].value[1], '1');
  // The rules load, and none of them fires on a healthy instance.
  const rules = JSON.parse((await request('GET', `http://127.0.0.1:${port}/api/v1/rules`)).body);
  assert.equal(rules.data.groups[0].rules.length, 10);
  const alerts = JSON.parse((await request('GET', `http://127.0.0.1:${port}/api/v1/alerts`)).body);
  assert.deepEqual(alerts.data.alerts.filter((a) => a.state === 'firing'), []);
});
