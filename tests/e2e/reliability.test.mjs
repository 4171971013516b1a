// What an unlucky operator or an attacker does to the real binary: a damaged write-ahead log
// after kill -9, a disk that fills up under ingest (a real tmpfs, when this machine lets the
// test mount one), more idle connections than file descriptors, and thousands of bodies
// that stall. Each must end without a crash, a silent loss or a stuck admin listener.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  DEFAULT_SITE,
  cartwatchBin,
  fetchAllEvents,
  postBatch,
  request,
  runToExit,
  scrapeMetrics,
  sleep,
  startCartwatch,
} from './lib/cartwatch.mjs';

function batch(prefix, n, padBytes = 0) {
  const now = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => ({
    type: 'track',
    event: 'Product Viewed',
    messageId: `${prefix}-${i}`,
    anonymousId: `anon-${prefix}`,
    timestamp: now,
    properties: { product_id: `sku-${i}`, pad: 'x'.repeat(padBytes) },
  }));
}

async function storedIds(cw) {
  const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  return events.map((e) => e.messageId);
}

async function readyz(cw) {
  const res = await request('GET', `${cw.adminUrl}/readyz`, { timeoutMs: 5_000 });
  return { status: res.status, json: JSON.parse(res.body) };
}

async function waitReadyz(cw, status, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await readyz(cw);
    if (last.status === status) return last;
    await sleep(100);
  }
  assert.fail(`/readyz did not answer ${status} within ${timeoutMs} ms: ${JSON.stringify(last)}`);
}

async function newestWal(dataDir) {
  const logs = (await fs.readdir(dataDir)).filter((f) => f.endsWith('.log')).sort();
  assert.ok(logs.length > 0, `no write-ahead log in ${dataDir}`);
  return path.join(dataDir, logs.at(-1));
}

// Sends `count` batches of 20 acknowledged messages; returns their ids in order.
async function sendAcknowledged(cw, prefix, count) {
  const ids = [];
  for (let b = 0; b < count; b++) {
    const messages = batch(`${prefix}-${b}`, 20, 200);
    const res = await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, messages);
    assert.equal(res.status, 200, res.body);
    ids.push(...messages.map((m) => m.messageId));
  }
  return ids;
}

test('a damaged write-ahead log after kill -9 is never silent', async (t) => {
  // fsync = true: wal_recovery "auto" is strict. The log is overwritten in its middle.
  const cw = await startCartwatch(t, { fsync: true });
  const acknowledged = await sendAcknowledged(cw, 'strict', 30);
  await cw.kill('SIGKILL');
  const wal = await newestWal(cw.dataDir);
  const { size } = await fs.stat(wal);
  const file = await fs.open(wal, 'r+');
  await file.write(Buffer.alloc(64, 0x5a), 0, 64, Math.floor(size / 2));
  await file.close();

  const refused = await runToExit(t, cartwatchBin(), ['--config', cw.configPath]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /write-ahead log .* is damaged/);
  assert.match(refused.stderr, /--wal-recovery point_in_time/);
  assert.equal((await fs.stat(wal)).size, size, 'the refusal must not touch the log');

  // The operator accepts the loss for one start.
  const accepted = await startCartwatch(t, { dir: cw.dir, args: ['--wal-recovery', 'point_in_time'] });
  assert.match(accepted.stderr(), /level=error msg="the write-ahead log was damaged/);
  const health = await readyz(accepted);
  assert.equal(health.status, 200);
  assert.match(health.json.wal_recovery, /may be lost/);
  // Counted for Prometheus, so that an alert can page on it.
  assert.match(await scrapeMetrics(accepted), /^cartwatch_storage_wal_damage_recoveries_total 1$/m);
  const kept = await storedIds(accepted);
  assert.ok(kept.length > 0 && kept.length < acknowledged.length, `${kept.length} kept`);
  assert.deepEqual(kept, acknowledged.slice(0, kept.length), 'what is kept is what came before the damage');
  await accepted.stop();

  // fsync = false: point-in-time recovery at once, loudly. The log is cut inside a record.
  const loose = await startCartwatch(t, { fsync: false });
  const looseAcked = await sendAcknowledged(loose, 'loose', 30);
  await loose.kill('SIGKILL');
  const looseWal = await newestWal(loose.dataDir);
  await fs.truncate(looseWal, Math.floor((await fs.stat(looseWal)).size / 2) + 7);
  const restarted = await startCartwatch(t, { dir: loose.dir });
  assert.match(restarted.stderr(), /level=error msg="the write-ahead log was damaged .*truncated/);
  assert.match((await readyz(restarted)).json.wal_recovery, /damaged/);
  assert.match(await scrapeMetrics(restarted), /^cartwatch_storage_wal_damage_recoveries_total 1$/m);
  const looseKept = await storedIds(restarted);
  assert.deepEqual(looseKept, looseAcked.slice(0, looseKept.length));
  assert.ok(looseKept.length < looseAcked.length);
});

// Mounts a tmpfs of `mb` MiB on a new directory; null when this machine does not allow it.
async function mountTmpfs(t, mb) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cartwatch-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs here (${String(err.stderr || err.message).trim()})` };
  }
  t.after(async () => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {}
    await fs.rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    resize(newMb) {
      execFileSync('mount', ['-o', `remount,size=${newMb}m`, dir], { stdio: 'pipe' });
    },
  };
}

// Posts 50 KB batches until one is refused; returns the acknowledged ids and that answer.
async function fillDisk(cw, prefix) {
  const acknowledged = [];
  for (let b = 0; b < 2_000; b++) {
    const messages = batch(`${prefix}-${b}`, 50, 1000);
    const res = await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, messages);
    if (res.status !== 200) return { acknowledged, refusal: res };
    acknowledged.push(...messages.map((m) => m.messageId));
  }
  assert.fail('the disk never filled');
}

test('a disk that fills under ingest: 503, not ready, no crash, and back by itself', async (t) => {
  const disk = await mountTmpfs(t, 24);
  if (disk.skip) return t.skip(disk.skip);
  // min_free_mb = 0: RocksDB itself runs out of space in the middle of a write.
  const cw = await startCartwatch(t, {
    dataDir: path.join(disk.dir, 'data'),
    extra: { storage: { min_free_mb: 0 } },
  });
  const { acknowledged, refusal } = await fillDisk(cw, 'full');
  assert.ok(acknowledged.length > 1000, `${acknowledged.length} acknowledged`);
  assert.equal(refusal.status, 503, refusal.body);
  assert.equal(refusal.json.error.code, 'storage_full');
  assert.equal(refusal.headers['retry-after'], '30');
  const health = await readyz(cw);
  assert.equal(health.status, 503);
  assert.match(health.json.write_failure, /[Nn]o space/);
  assert.equal((await request('GET', `${cw.adminUrl}/healthz`)).status, 200);
  for (let i = 0; i < 5; i++) {
    const again = await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, batch(`refused-${i}`, 5));
    assert.equal(again.status, 503);
  }

  disk.resize(96);  // space is freed
  await waitReadyz(cw, 200);
  acknowledged.push(...(await sendAcknowledged(cw, 'after', 5)));
  const stopped = await cw.stop();
  assert.equal(stopped.code, 0, cw.stderr());
  assert.doesNotMatch(cw.stderr(), /Assertion|Aborted/);

  const restarted = await startCartwatch(t, { dir: cw.dir });
  const stored = await storedIds(restarted);
  const counts = new Map();
  for (const id of stored) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const id of acknowledged) assert.equal(counts.get(id), 1, `${id} stored ${counts.get(id) ?? 0} times`);
  for (const [id, n] of counts) assert.equal(n, 1, `${id} stored ${n} times`);
});

test('a disk that fills with storage.min_free_mb: refused before RocksDB runs out', async (t) => {
  const disk = await mountTmpfs(t, 24);
  if (disk.skip) return t.skip(disk.skip);
  const cw = await startCartwatch(t, {
    dataDir: path.join(disk.dir, 'data'),
    extra: { storage: { min_free_mb: 6 } },
  });
  const { refusal } = await fillDisk(cw, 'guard');
  assert.equal(refusal.status, 503, refusal.body);
  assert.equal(refusal.json.error.code, 'storage_full');
  assert.match((await readyz(cw)).json.write_failure, /below storage\.min_free_bytes/);
  assert.doesNotMatch(cw.stderr(), /storage write failed/, 'RocksDB itself never saw a full disk');
  disk.resize(96);
  await waitReadyz(cw, 200);
  assert.equal((await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, batch('guard-after', 5))).status, 200);
  assert.equal((await cw.stop()).code, 0);
});

// Opens `n` connections and keeps them idle; resolves once each is connected or closed.
async function openIdle(port, n) {
  const sockets = [];
  await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.closedByServer = false;
      s.on('connect', resolve);
      s.on('error', resolve);
      s.on('end', () => (s.closedByServer = true));
      s.on('close', () => {
        s.closedByServer = true;
        resolve();
      });
      sockets.push(s);
    })),
  );
  return sockets;
}

test('more idle connections than file descriptors: capped, and the admin listener answers', async (t) => {
  // 512 descriptors: the public listener keeps at most 3/4 of them less 128, i.e. 256.
  const cw = await startCartwatch(t, { wrapper: ['prlimit', '--nofile=512:512', '--'] });
  assert.match(cw.stderr(), /level=warn msg="server.max_connections lowered: [^"]*" from=10000 to=256 /);
  const sockets = await openIdle(cw.publicPort, 420);
  t.after(() => sockets.forEach((s) => s.destroy()));
  await sleep(500);
  const closed = sockets.filter((s) => s.closedByServer).length;
  assert.ok(closed >= 420 - 256 && closed <= 420 - 250, `${closed} of 420 closed at once`);
  assert.equal((await readyz(cw)).status, 200);
  // An open one is served.
  const open = sockets.find((s) => !s.closedByServer);
  const answer = new Promise((resolve) => open.once('data', (d) => resolve(String(d))));
  open.write('GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(await answer, /^HTTP\/1\.1 404/);
  // Once they go, new clients are served again, and nothing was logged in a loop.
  sockets.forEach((s) => s.destroy());
  await sleep(300);
  assert.equal((await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, batch('after-cap', 3))).status, 200);
  const warnings = cw.stderr().split('\n').filter((l) => /closed at once/.test(l)).length;
  assert.ok(warnings <= 2, `${warnings} warnings`);
  assert.doesNotMatch(cw.stderr(), /accept failed/);
});

function rssBytes(pid) {
  const status = execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' });
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

test('bodies that stall share a budget: memory stays bounded, others are served', async (t) => {
  const cw = await startCartwatch(t, { extra: { limits: { max_receiving_mb: 8 }, server: { read_timeout: '20s' } } });
  const before = rssBytes(cw.pid);
  const chunk = Buffer.alloc(300 * 1024, 0x20);
  const answers = [];
  const sockets = [];
  await Promise.all(
    Array.from({ length: 300 }, () => new Promise((resolve) => {
      const s = net.connect(cw.publicPort, '127.0.0.1', () => {
        // No key in a header: it could be in the body, so the body must be read to know.
        s.write('POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
                'Content-Length: 500000\r\n\r\n');
        s.write(chunk, resolve);
      });
      s.on('data', (d) => answers.push(String(d)));
      s.on('error', resolve);
      sockets.push(s);
    })),
  );
  t.after(() => sockets.forEach((s) => s.destroy()));
  await sleep(1_000);
  const grown = rssBytes(cw.pid) - before;
  const overloaded = answers.filter((a) => /^HTTP\/1\.1 503/.test(a) && /"overloaded"/.test(a)).length;
  // 8 MiB of budget holds 16 of the 500,000-byte bodies; the rest are refused unread.
  assert.ok(overloaded >= 300 - 17, `${overloaded} answered 503`);
  assert.ok(grown < 48 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MiB`);
  // A client with a small batch is served meanwhile.
  assert.equal((await postBatch(cw.publicUrl, DEFAULT_SITE.writeKey, batch('beside', 3))).status, 200);
});
