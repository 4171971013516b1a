// The service log (docs/operations.md, "Logs"): every stderr line after the config is
// loaded is logfmt with ts, level and msg; the start says the effective config (no secret)
// and the listeners, the stop says so; refused requests are logged, accepted messages are
// not; `[log] level`, CARTWATCH_LOG_LEVEL and --log-level leave out the levels below.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  basicAuth,
  postBatch,
  request,
  sleep,
  startCartwatch,
} from './lib/cartwatch.mjs';

// One logfmt line as { key: value }: bare values end at a space, quoted ones are JSON-like
// strings (\" \\ \n \t \uXXXX). Throws on anything else, so a malformed line fails the test.
function parseLogfmt(line) {
  const out = {};
  let i = 0;
  while (i < line.length) {
    const eq = line.indexOf('=', i);
    if (eq <= i) throw new Error(`no key at ${i}: ${line}`);
    const key = line.slice(i, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) throw new Error(`bad key ${key}: ${line}`);
    let value;
    let j = eq + 1;
    if (line[j] === '"') {
      let k = j + 1;
      while (k < line.length && line[k] !== '"') k += line[k] === '\\' ? 2 : 1;
      if (k >= line.length) throw new Error(`unterminated value: ${line}`);
      value = JSON.parse(line.slice(j, k + 1));
      j = k + 1;
    } else {
      const end = line.indexOf(' ', j);
      value = line.slice(j, end < 0 ? line.length : end);
      if (value === '' || value.includes('"')) throw new Error(`bad bare value of ${key}: ${line}`);
      j = end < 0 ? line.length : end;
    }
    if (key in out) throw new Error(`${key} twice: ${line}`);
    out[key] = value;
    if (j < line.length && line[j] !== ' ') throw new Error(`no space after ${key}: ${line}`);
    i = j + 1;
  }
  return out;
}

// The stderr lines of `cw` as parsed records; every line must be logfmt with ts, level, msg.
function records(cw) {
  const lines = cw.stderr().split('\n').filter((l) => l !== '');
  return lines.map((line) => {
    const r = parseLogfmt(line);
    assert.match(r.ts ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
    assert.match(r.level ?? '', /^(debug|info|warn|error)$/, line);
    assert.ok(typeof r.msg === 'string' && r.msg.length > 0, line);
    assert.deepEqual(Object.keys(r).slice(0, 3), ['ts', 'level', 'msg'], line);
    return r;
  });
}

const track = (i) => ({
  type: 'track',
  event: 'Product Viewed',
  anonymousId: `anon-${i}`,
  messageId: `log-${i}-${Date.now()}`,
  properties: { product_id: `p${i}` },
});

// Keys that must never reach the log.
const SITE = { name: 'shop', writeKey: 'wk-NEVER-LOGGED-1', secretKey: 'sk-NEVER-LOGGED-2', allowedOrigins: [] };

test('a run logs its start, effective config, listeners, refusals and stop in logfmt; accepted messages are not logged', async (t) => {
  const cw = await startCartwatch(t, { sites: [SITE] });
  const accepted = await postBatch(cw.publicUrl, SITE.writeKey, [track(1), track(2)]);
  assert.equal(accepted.status, 200, accepted.body);
  const linesBefore = records(cw).length;
  for (let i = 0; i < 20; ++i) {
    const ok = await postBatch(cw.publicUrl, SITE.writeKey, [track(100 + i)]);
    assert.equal(ok.status, 200, ok.body);
  }
  assert.equal(records(cw).length, linesBefore, `accepted messages logged:\n${cw.stderr()}`);

  const refused = await request('POST', `${cw.publicUrl}/v1/batch`, {
    headers: { 'Content-Type': 'application/json', Authorization: basicAuth(SITE.writeKey) },
    body: '{"batch": [',
  });
  assert.equal(refused.status, 400, refused.body);
  const partly = await postBatch(cw.publicUrl, SITE.writeKey, [
    track(3),
    { type: 'track', anonymousId: 'a', messageId: `no-event-${Date.now()}` },
  ]);
  assert.equal(partly.status, 200, partly.body);
  assert.equal(partly.json.rejected?.length, 1, partly.body);
  const stop = await cw.stop();
  assert.deepEqual(stop, { code: 0, signal: null }, cw.stderr());

  const log = records(cw);
  const byMsg = (msg) => log.filter((r) => r.msg === msg);
  const [starting] = byMsg('starting');
  assert.ok(starting, cw.stderr());
  assert.equal(starting.level, 'info');
  assert.equal(starting.config, cw.configPath);
  assert.equal(Number(starting.pid), cw.pid);

  const [config] = byMsg('effective config');
  assert.ok(config, cw.stderr());
  assert.equal(config['storage.data_dir'], cw.dataDir);
  assert.equal(config['server.admin_listen'], '127.0.0.1:0');
  assert.equal(config['log.level'], 'info');
  assert.equal(config['storage.fsync'], 'false');
  assert.equal(config.sites, SITE.name);
  assert.doesNotMatch(cw.stderr(), /NEVER-LOGGED/, 'a key in the log');

  const [listening] = byMsg('listening');
  assert.ok(listening, cw.stderr());
  assert.equal(listening.public, `127.0.0.1:${cw.publicPort}`);
  assert.equal(listening.admin, `127.0.0.1:${cw.adminPort}`);

  const [requestRefused] = byMsg('request refused');
  assert.ok(requestRefused, cw.stderr());
  assert.equal(requestRefused.level, 'warn');
  assert.equal(requestRefused.status, '400');
  assert.equal(requestRefused.reason, 'malformed_json');
  assert.equal(requestRefused.route, 'batch');
  assert.equal(requestRefused.site, SITE.name);
  assert.equal(requestRefused.client, '127.0.0.1');

  const [rejected] = byMsg('messages rejected');
  assert.ok(rejected, cw.stderr());
  assert.equal(rejected.reason, 'missing_event');
  assert.equal(rejected.index, '1');
  assert.equal(rejected.rejected, '1');

  const [shutting] = byMsg('shutting down');
  assert.equal(shutting?.signal, 'Terminated', cw.stderr());
  assert.equal(byMsg('stopped').length, 1, cw.stderr());
  assert.equal(log.at(-1).msg, 'stopped', 'the last line');
  assert.deepEqual(log.map((r) => r.level).filter((l) => l !== 'info' && l !== 'warn'), [], cw.stderr());
});

test('the level leaves out the lines below it: file, environment and flag', async (t) => {
  const refuse = async (cw) => {
    const res = await request('POST', `${cw.publicUrl}/v1/batch`, {
      headers: { 'Content-Type': 'application/json', Authorization: basicAuth('nobody') },
      body: JSON.stringify({ batch: [track(1)] }),
    });
    assert.equal(res.status, 401, res.body);
  };

  // [log] level = "warn": the refusal (a warning) only.
  const warn = await startCartwatch(t, { toml: '[log]\nlevel = "warn"\n' });
  await refuse(warn);
  await sleep(100);
  await warn.stop();
  let log = records(warn);
  assert.deepEqual(log.map((r) => r.msg), ['request refused'], warn.stderr());
  assert.equal(log[0].reason, 'unknown_write_key');

  // CARTWATCH_LOG_LEVEL=error over the file: nothing here is an error.
  const error = await startCartwatch(t, { toml: '[log]\nlevel = "debug"\n', env: { CARTWATCH_LOG_LEVEL: 'error' } });
  await refuse(error);
  await error.stop();
  assert.equal(error.stderr(), '');

  // --log-level over both.
  const info = await startCartwatch(t, {
    toml: '[log]\nlevel = "error"\n',
    env: { CARTWATCH_LOG_LEVEL: 'error' },
    args: ['--log-level', 'info'],
  });
  await refuse(info);
  await info.stop();
  log = records(info);
  assert.deepEqual(
    log.map((r) => r.msg),
    ['starting', 'effective config', 'listening', 'request refused', 'shutting down', 'stopped'],
    info.stderr(),
  );
  assert.equal(log[1]['log.level'], 'info');
});
