// A crash loop under continuous load: six senders post batches without a break (each as
// fast as it is answered, up to 400 requests a second) while the collector is killed with
// SIGKILL every 2-5 s for a minute and restarted on the same data dir and ports each time. Each restart must be ready (admin GET /readyz answers 200) within 5 s of
// the spawn; after a final clean stop and restart, every acknowledged messageId is stored
// exactly once (also those acknowledged batches sent again after a restart, and those sent
// again after getting no answer), and nothing is stored twice. Loopback only, bounded in
// time (about 60 s of kills) and in requests.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';

import { DEFAULT_SITE, fetchEventsPage, freePort, postBatch, rng, sleep, startCartwatch } from './lib/cartwatch.mjs';

const CHAOS_MS = 60_000; // kills land within this long after the first spawn
const UP_MIN_MS = 2_000; // each instance runs this long ...
const UP_MAX_MS = 5_000; // ... to this long after it is ready, then gets SIGKILL
const MAX_CYCLES = 40; // a bound only; the minute ends first
const READY_LIMIT_MS = 5_000; // spawn -> GET /readyz 200, for every restart
const SENDERS = 6;
const MAX_BATCH = 20;
// Each sender posts as fast as it is answered, up to this many requests a second (a Debug
// build on two cores answers fewer; the cap keeps a fast build's minute, and so the event
// log read back at the end, to about 1.7 million messages).
const MAX_RATE_PER_SENDER = 400;
const MAX_REQUESTS = 250_000; // all senders together; a bound only, the minute ends first
const POST_TIMEOUT_MS = 10_000;
const RETRY_SHARE = 0.5; // share of unanswered batches a sender sends again (the rest it drops)
const RESEND_RECENT = 6; // batches acknowledged by the instance just killed, sent again twice
const RESEND_OLDER = 2; // batches acknowledged by earlier instances, sent again twice
const OLDER_KEEP = 200; // acknowledged batches kept for RESEND_OLDER

// Seeded pseudo-random numbers (lib rng), so that a failing run can be repeated
// with the same batch sizes, up times and resend choices (timing still varies).
const SEED = Number(process.env.CARTWATCH_E2E_SEED ?? 20240917);
const random = rng(SEED); // the main loop's: up times and resend choices
const randInt = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));

function makeBatch(r, sender, seq) {
  const n = randInt(r, 1, MAX_BATCH);
  const now = new Date().toISOString();
  const visitor = seq % 40;
  const messages = [];
  for (let i = 0; i < n; i++) {
    const messageId = `crashloop-s${sender}-r${seq}-m${i}`;
    const kind = (seq + i) % 3;
    messages.push(
      kind === 0
        ? {
            type: 'track',
            messageId,
            anonymousId: `anon-${sender}-${visitor}`,
            event: 'Product Added',
            properties: { product_id: `sku-${seq % 17}`, price: 9.5, quantity: 1 + (i % 4) },
            timestamp: now,
          }
        : kind === 1
          ? {
              type: 'page',
              messageId,
              anonymousId: `anon-${sender}-${visitor}`,
              name: 'Product',
              properties: { path: `/p/${seq % 17}` },
              timestamp: now,
            }
          : {
              type: 'identify',
              messageId,
              anonymousId: `anon-${sender}-${visitor}`,
              userId: `user-${sender}-${visitor % 10}`,
              traits: { email: `user-${sender}-${visitor % 10}@example.com` },
              timestamp: now,
            },
    );
  }
  return messages;
}

// Two distinct loopback ports that were free a moment ago, below the kernel's ephemeral
// range where it can: the senders connect to the public port while nothing listens on it,
// and a connect() whose ephemeral local port happened to be that same port would connect
// to itself and hold the port that the restart must bind.
async function fixedPorts() {
  let lowEphemeral = 0;
  try {
    const text = await fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    lowEphemeral = Number(text.trim().split(/\s+/)[0]) || 0;
  } catch {
    // not Linux: fall back to ports the kernel picks
  }
  const ports = [];
  if (lowEphemeral > 11_024) {
    for (let tries = 0; tries < 200 && ports.length < 2; tries++) {
      // Math.random, not the seeded rng: two runs with one seed must not pick the same ports.
      const port = lowEphemeral - 10_000 + Math.floor(Math.random() * 10_000);
      if (!ports.includes(port) && (await canListen(port))) ports.push(port);
    }
  }
  while (ports.length < 2) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// Posts batches on one keep-alive connection until `run.stopping`, at most
// MAX_RATE_PER_SENDER a second. A batch answered 200
// {"success":true} is acknowledged; any other answer is recorded as bad. A connection error
// (the collector is down or was killed mid-request) makes the sender pause 50-150 ms and go
// on, with the same batch again (RETRY_SHARE) or a new one.
async function sender(id, run) {
  const r = rng(SEED + 0x9e3779b1 * (id + 1));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let retry = null;
  let paceStart = performance.now();
  let paced = 0;
  try {
    for (let seq = 0; !run.stopping && run.requests < MAX_REQUESTS; ) {
      const ahead = paceStart + (++paced * 1000) / MAX_RATE_PER_SENDER - performance.now();
      if (ahead > 20) await sleep(ahead);
      else if (ahead < -1000) paceStart -= ahead + 1000; // makes up at most 1 s after a pause
      let batch = retry;
      retry = null;
      if (!batch) {
        batch = makeBatch(r, id, seq++);
        for (const m of batch) run.attempted.add(m.messageId);
      }
      const generation = run.generation;
      const startedUp = run.up;
      run.requests++;
      let res;
      try {
        res = await postBatch(run.publicUrl, DEFAULT_SITE.writeKey, batch, {
          agent,
          timeoutMs: POST_TIMEOUT_MS,
        });
      } catch (err) {
        run.connectionErrors++;
        // Started and failed while one instance was ready and not yet killed.
        if (startedUp && run.up && run.generation === generation) {
          run.errorsWhileUp.push(`generation ${generation}: ${err.code ?? ''} ${err.message}`);
        }
        if (r() < RETRY_SHARE) retry = batch;
        await sleep(50 + Math.floor(r() * 100));
        continue;
      }
      if (res.status === 200 && res.json?.success === true) {
        for (const m of batch) run.acked.add(m.messageId);
        run.ackedBatches++;
        run.ackedByGeneration[generation] = (run.ackedByGeneration[generation] ?? 0) + 1;
        run.recentAcked.push(batch);
      } else {
        run.badAnswers.push(`${res.status} ${res.body.slice(0, 300)}`);
      }
    }
  } finally {
    agent.destroy();
  }
}

// Sends each batch twice at once; every one of them was acknowledged before, so a 200 leaves
// the store as it was. A connection error (the next kill came first) is only counted.
async function resend(batches, run) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    for (const batch of batches) {
      const answers = await Promise.allSettled([
        postBatch(run.publicUrl, DEFAULT_SITE.writeKey, batch, { agent, timeoutMs: POST_TIMEOUT_MS }),
        postBatch(run.publicUrl, DEFAULT_SITE.writeKey, batch, { agent, timeoutMs: POST_TIMEOUT_MS }),
      ]);
      for (const a of answers) {
        if (a.status === 'rejected') run.resendErrors++;
        else if (a.value.status === 200 && a.value.json?.success === true) run.resentAcked++;
        else run.badAnswers.push(`resend: ${a.value.status} ${a.value.body.slice(0, 300)}`);
      }
    }
  } finally {
    agent.destroy();
  }
}

// The "rebuilt ... from N events in M ms" line of an instance's start-up, if it printed one.
function replayNote(cw) {
  const m = /rebuilt the unwritten visitor and customer records from (\d+) events in (\d+) ms/.exec(
    cw.stderr(),
  );
  return m ? `replayed ${m[1]} events in ${m[2]} ms` : 'no replay';
}

test(
  'a minute of kill -9 every 2-5 s under load: ready within 5 s each time, every acknowledged message stored once',
  { timeout: 240_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (set CARTWATCH_E2E_SEED to repeat)`);
    const [publicPort, adminPort] = await fixedPorts();
    const args = ['--listen', `127.0.0.1:${publicPort}`, '--admin-listen', `127.0.0.1:${adminPort}`];

    const run = {
      publicUrl: `http://127.0.0.1:${publicPort}`,
      generation: 0, // one per instance
      up: false, // the current instance is ready and not yet killed
      stopping: false,
      requests: 0,
      attempted: new Set(), // every messageId sent
      acked: new Set(), // every messageId answered 200
      ackedBatches: 0,
      ackedByGeneration: [],
      recentAcked: [], // batches acknowledged since the last kill
      badAnswers: [],
      errorsWhileUp: [],
      connectionErrors: 0,
      resentAcked: 0,
      resendErrors: 0,
    };

    const t0 = performance.now();
    let cw = await startCartwatch(t, { args, timeoutMs: 30_000 });
    const dir = cw.dir;
    t.diagnostic(`first start ready in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(cw.publicPort, publicPort, 'listens on the public port it was given');
    run.up = true;

    const senders = [];
    for (let s = 0; s < SENDERS; s++) senders.push(sender(s, run));
    const resends = [];
    const older = []; // acknowledged batches of earlier instances, for RESEND_OLDER
    const cycles = []; // { upMs, readyMs, acked, replay }
    let sendersDone = false;
    let loadMs = 0;
    try {
      while (cycles.length < MAX_CYCLES) {
        const upMs = randInt(random, UP_MIN_MS, UP_MAX_MS);
        await sleep(upMs);
        // Past the minute, the instance that is up is stopped cleanly instead.
        if (performance.now() - t0 > CHAOS_MS) break;

        const gone = cw.child.exitCode !== null || cw.child.signalCode !== null;
        assert.ok(
          !gone,
          `cartwatch exited by itself (${cw.child.exitCode} ${cw.child.signalCode}) ` +
            `under load:\n${cw.stderr()}`,
        );
        run.up = false;
        const exit = await cw.kill('SIGKILL');
        assert.equal(exit.signal, 'SIGKILL', `cartwatch exited by itself: ${JSON.stringify(exit)}`);
        const acked = run.ackedByGeneration[run.generation] ?? 0;
        const justKilled = run.recentAcked;
        run.recentAcked = [];
        run.generation++;

        // Same config, data dir and ports; the senders keep posting all the while.
        const spawnedAt = performance.now();
        cw = await startCartwatch(t, { dir, args, timeoutMs: 30_000 });
        const readyMs = Math.round(performance.now() - spawnedAt);
        run.up = true;
        cycles.push({ upMs, readyMs, acked, replay: replayNote(cw) });
        t.diagnostic(
          `cycle ${cycles.length}: killed after ${upMs} ms up (${acked} batches acknowledged), ` +
            `ready again in ${readyMs} ms (${cycles.at(-1).replay}); ` +
            `${run.acked.size} messages acknowledged so far`,
        );

        // Some acknowledged batches again: the last few before the kill, a spread of that
        // instance's others, and some of earlier instances'.
        const tail = justKilled.slice(-Math.ceil(RESEND_RECENT / 2));
        const head = justKilled.slice(0, justKilled.length - tail.length);
        const recent = [...tail];
        for (let i = 0; i < RESEND_RECENT - tail.length && head.length > 0; i++) {
          recent.push(head[Math.floor(random() * head.length)]);
        }
        const picked = [...recent];
        for (let i = 0; i < RESEND_OLDER && older.length > 0; i++) {
          picked.push(older[Math.floor(random() * older.length)]);
        }
        older.push(...recent);
        if (older.length > OLDER_KEEP) older.splice(0, older.length - OLDER_KEEP);
        resends.push(resend(picked, run));
      }

      // Stop the load, then stop cleanly and start once more on the same data.
      loadMs = performance.now() - t0;
      run.stopping = true;
      await Promise.all(senders);
      await Promise.all(resends);
      sendersDone = true;
    } finally {
      run.stopping = true;
      if (!sendersDone) {
        await cw.kill('SIGKILL');
        await Promise.allSettled([...senders, ...resends]);
      }
    }
    const lastAcked = run.ackedByGeneration[run.generation] ?? 0;
    run.up = false;
    const stopExit = await cw.stop();
    assert.deepEqual(stopExit, { code: 0, signal: null }, `SIGTERM: ${cw.stderr()}`);
    const spawnedAt = performance.now();
    cw = await startCartwatch(t, { dir, args, timeoutMs: 30_000 });
    const finalReadyMs = Math.round(performance.now() - spawnedAt);
    t.diagnostic(
      `after ${cycles.length} cycles: last instance acknowledged ${lastAcked} batches, ` +
        `stopped with SIGTERM; clean restart ready in ${finalReadyMs} ms (${replayNote(cw)})`,
    );

    // The whole event log, page by page, keeping only each messageId's count.
    const fetchStarted = performance.now();
    const seen = new Map();
    const duplicates = [];
    const unknown = [];
    let stored = 0;
    let pages = 0;
    for (let after; ; ) {
      const page = await fetchEventsPage(run.publicUrl, DEFAULT_SITE.secretKey, {
        after,
        limit: 10_000,
      });
      pages++;
      if (page.events.length === 0) break;
      assert.notEqual(page.cursor, after, `a page of ${page.events.length} events kept the cursor`);
      assert.ok(pages < 10_000, 'the event log ends');
      for (const e of page.events) {
        stored++;
        const count = (seen.get(e.messageId) ?? 0) + 1;
        seen.set(e.messageId, count);
        if (count === 2) duplicates.push(e.messageId);
        if (!run.attempted.has(e.messageId)) unknown.push(e.messageId);
      }
      after = page.cursor;
    }
    const fetchMs = Math.round(performance.now() - fetchStarted);
    await cw.stop();
    const missing = [...run.acked].filter((id) => !seen.has(id));
    const readyTimes = cycles.map((c) => c.readyMs);
    const maxReadyMs = Math.max(...readyTimes);
    t.diagnostic(
      `summary: ${cycles.length} kill -9 cycles in ${Math.round(loadMs / 1000)} s of load; ` +
        `${run.requests} requests, ${run.ackedBatches} batches / ${run.acked.size} messages ` +
        `acknowledged (${run.attempted.size} sent, ${run.connectionErrors} connection errors); ` +
        `${run.resentAcked} acknowledged re-sends (${run.resendErrors} unanswered); ` +
        `${stored} events stored, read in ${pages} pages in ${fetchMs} ms; ` +
        `ready after kill -9 and restart: max ${maxReadyMs} ` +
        `ms, all [${readyTimes.join(', ')}] ms`,
    );

    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged messages lost`);
    assert.deepEqual(duplicates.slice(0, 20), [], `${duplicates.length} messageIds stored twice`);
    assert.deepEqual(unknown.slice(0, 20), [], `${unknown.length} events nobody sent`);
    assert.deepEqual(run.badAnswers.slice(0, 10), [], 'every answer is 200 {"success":true}');
    assert.deepEqual(
      run.errorsWhileUp.slice(0, 10),
      [],
      'no request to a ready instance fails before that instance is killed',
    );
    const slow = cycles
      .map((c, i) => ({ cycle: i + 1, readyMs: c.readyMs, replay: c.replay }))
      .filter((c) => c.readyMs > READY_LIMIT_MS);
    assert.deepEqual(slow, [], `ready within ${READY_LIMIT_MS} ms of every restart after kill -9`);
    assert.ok(
      finalReadyMs <= READY_LIMIT_MS,
      `ready within ${READY_LIMIT_MS} ms of the clean restart (${finalReadyMs} ms)`,
    );
    // Up at most 5 s and ready within 5 s of each restart: a minute holds at least 6 kills.
    assert.ok(cycles.length >= 6, `${cycles.length} kill -9 cycles in a minute`);
    const idle = cycles.map((c, i) => ({ cycle: i + 1, acked: c.acked })).filter((c) => c.acked === 0);
    assert.deepEqual(idle, [], 'every instance acknowledged batches before its kill');
    assert.ok(lastAcked > 0, 'the last instance acknowledged batches before its clean stop');
    assert.ok(run.resentAcked > 0, 'some re-sent batches were acknowledged');
  },
);
