// Process lifecycle of the real cartwatch binary: a bad config or command line stops
// start-up with exit code 2 before anything is opened; --listen / --admin-listen /
// --data-dir and CARTWATCH_* variables override the file (flag > env > file); SIGTERM
// with keep-alive clients sending drains cleanly (complete answers, exit 0, nothing
// acknowledged lost or doubled after a restart); SIGINT stops too; /healthz and /readyz
// are served on the admin listener only. Loopback only, a few seconds per test.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  DEFAULT_SITE,
  basicAuth,
  cartwatchBin,
  configToml,
  fetchAllEvents,
  fetchEventsPage,
  freePort,
  request,
  runToExit,
  sleep,
  startCartwatch,
} from './lib/cartwatch.mjs';

// ---------------------------------------------------------------------------------------
// Helpers

// Runs cartwatch with `args` to its exit (SIGKILL after timeoutMs).
function runCartwatch(t, args, options) {
  return runToExit(t, cartwatchBin(), args, options);
}

// A temporary directory removed when the test ends.
async function tempDir(t) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cartwatch-e2e-life-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

async function exists(p) {
  try {
    await fs.stat(p);
    return true;
  } catch (err) {
    if (err.code === 'ENOENT') return false;
    throw err;
  }
}


// Resolves to 'open' when something accepts a TCP connection on host:port, else to the
// connection error's code (ECONNREFUSED).
function probePort(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.setTimeout(2_000, () =>
      socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })),
    );
    socket.on('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.on('error', (err) => resolve(err.code ?? err.message));
  });
}

// Asserts a run that must have been refused: exit code 2, no listening line, and a stderr
// line matching `line` (a RegExp, or a string that must appear verbatim).
function assertRefused(run, line, what) {
  const context =
    `${what}\n  stdout: ${JSON.stringify(run.stdout)}\n` +
    `  stderr: ${JSON.stringify(run.stderr)}`;
  assert.equal(run.signal, null, `killed instead of exiting: ${context}`);
  assert.equal(run.code, 2, `exit code: ${context}`);
  assert.doesNotMatch(run.stdout, /listening/, `it must not have started listening: ${context}`);
  const lines = run.stderr.split('\n');
  const ok = lines.some((l) => (line instanceof RegExp ? line.test(l) : l.includes(line)));
  const want = line instanceof RegExp ? line : JSON.stringify(line);
  assert.ok(ok, `no stderr line ${want}: ${context}`);
}

const regexpEscape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------
// 1. Bad config or command line: exit 2 before anything is opened.

test('bad config: exit 2 naming file, key and reason, before opening anything', async (t) => {
  const dir = await tempDir(t);
  const dataDir = path.join(dir, 'data');
  const good = configToml({ dataDir });

  // The config's own `[server]` / `[storage]` headers are where extra keys go.
  const cases = [
    {
      what: 'unknown key',
      toml: good.replace('[storage]\n', '[storage]\nfsyncc = true\n'),
      line: 'storage.fsyncc: unknown key',
    },
    {
      what: 'wrong type',
      toml: good.replace('fsync = false', 'fsync = "yes"'),
      line: 'storage.fsync: expected a boolean, got string',
    },
    {
      what: 'bad duration',
      toml: good.replace('[server]\n', '[server]\nread_timeout = "10 parsecs"\n'),
      line: 'server.read_timeout: bad duration "10 parsecs"',
    },
    {
      what: 'duplicate write key across two sites',
      toml: configToml({
        dataDir,
        sites: [
          { name: 'first', writeKey: 'same-wk', secretKey: 'sk1', allowedOrigins: [] },
          { name: 'second', writeKey: 'same-wk', secretKey: 'sk2', allowedOrigins: [] },
        ],
      }),
      line: 'sites[1].write_key: duplicate write key (also used by site "first")',
    },
  ];
  assert.notEqual(cases[0].toml, good);
  assert.notEqual(cases[2].toml, good);

  for (const [i, c] of cases.entries()) {
    const configPath = path.join(dir, `bad-${i}.toml`);
    await fs.writeFile(configPath, c.toml);
    const run = await runCartwatch(t, ['--config', configPath]);
    // "cartwatch: bad config: <file as given>: <key>: <reason>"
    assertRefused(
      run,
      new RegExp(`^cartwatch: bad config: ${regexpEscape(configPath)}: ${regexpEscape(c.line)}`),
      c.what,
    );
    assert.equal(await exists(dataDir), false, `${c.what}: the data dir was created`);
  }
});

test('a missing or unreadable config file stops start-up with exit 2', async (t) => {
  const dir = await tempDir(t);
  const dataDir = path.join(dir, 'data');

  // Missing: the data dir comes from a flag, so that "not created" means something.
  const missing = path.join(dir, 'no-such.toml');
  let run = await runCartwatch(t, ['--config', missing, '--data-dir', dataDir]);
  assertRefused(
    run,
    `cartwatch: bad config: ${missing}: cannot read file: No such file or directory`,
    'missing file',
  );

  // A directory in place of the file (unreadable whatever the user, root included).
  const asDir = path.join(dir, 'dir.toml');
  await fs.mkdir(asDir);
  run = await runCartwatch(t, ['--config', asDir, '--data-dir', dataDir]);
  assertRefused(run, `cartwatch: bad config: ${asDir}: cannot read file: `, 'directory as file');

  // Mode 000 (only meaningful when not running as root, who may read it anyway).
  if (process.getuid?.() !== 0) {
    const locked = path.join(dir, 'locked.toml');
    await fs.writeFile(locked, configToml({ dataDir }));
    await fs.chmod(locked, 0o000);
    run = await runCartwatch(t, ['--config', locked]);
    assertRefused(
      run,
      `cartwatch: bad config: ${locked}: cannot read file: Permission denied`,
      'mode 000 file',
    );
  } else {
    t.diagnostic('running as root: the mode-000 case is skipped');
  }

  // The config path from $CARTWATCH_CONFIG.
  run = await runCartwatch(t, ['--data-dir', dataDir], { env: { CARTWATCH_CONFIG: missing } });
  assertRefused(run, `cartwatch: bad config: ${missing}: cannot read file:`, '$CARTWATCH_CONFIG');

  assert.equal(await exists(dataDir), false, 'the data dir was created');
});

test('bad environment variables and command lines exit 2', async (t) => {
  const dir = await tempDir(t);
  const dataDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'cartwatch.toml');
  await fs.writeFile(configPath, configToml({ dataDir }));

  let run = await runCartwatch(t, ['--config', configPath, '--bogus-flag']);
  assertRefused(run, 'cartwatch: unknown argument --bogus-flag', 'unknown flag');
  assert.match(run.stderr, /usage: cartwatch/, 'usage follows the error');

  run = await runCartwatch(t, ['--config', configPath, '--bogus-flag=1']);
  assertRefused(run, 'cartwatch: unknown argument --bogus-flag', 'unknown flag with =value');

  run = await runCartwatch(t, ['--config', configPath, '--listen']);
  assertRefused(run, 'cartwatch: --listen needs a value', 'flag without a value');

  run = await runCartwatch(t, ['--config', configPath, '--listen', '127.0.0.1:65536']);
  assertRefused(run, /^cartwatch: bad config: flag --listen: .*65536/, 'bad --listen');

  run = await runCartwatch(t, ['--config', configPath, '--data-dir=']);
  assertRefused(
    run,
    'cartwatch: bad config: flag --data-dir: must not be empty',
    'empty --data-dir',
  );

  run = await runCartwatch(t, ['--config', configPath], {
    env: { CARTWATCH_STORAGE_FSYNC: 'maybe' },
  });
  assertRefused(
    run,
    'cartwatch: bad config: environment CARTWATCH_STORAGE_FSYNC: ' +
      'expected true or false, got "maybe"',
    'bad env value',
  );

  run = await runCartwatch(t, ['--config', configPath], {
    env: { CARTWATCH_STORGE_FSYNC: 'true' },
  });
  assertRefused(
    run,
    'cartwatch: bad config: environment CARTWATCH_STORGE_FSYNC: unknown variable',
    'unknown env variable',
  );

  assert.equal(await exists(dataDir), false, 'the data dir was created');

  // --help is not an error.
  run = await runCartwatch(t, ['--help']);
  assert.equal(run.code, 0, `--help: ${JSON.stringify(run)}`);
  assert.match(run.stdout, /usage: cartwatch/);
});

// ---------------------------------------------------------------------------------------
// 2. Overrides: flag > environment > file.

// Which of the candidate data dirs exist, as names.
async function existingDirs(dirs) {
  const out = [];
  for (const [name, p] of Object.entries(dirs)) if (await exists(p)) out.push(name);
  return out;
}

// GET /v1/events on a public URL answers 200 (the site's query API works there).
async function assertPublicAnswers(url, what) {
  const page = await fetchEventsPage(url, DEFAULT_SITE.secretKey, { limit: 1 });
  assert.equal(page.status, 200, what);
}

test('--data-dir and CARTWATCH_STORAGE_DATA_DIR override the file, the flag winning', async (t) => {
  const scratch = await tempDir(t);
  const envDir = path.join(scratch, 'data-env');
  const flagDir = path.join(scratch, 'data-flag');

  // File only.
  let cw = await startCartwatch(t, { timeoutMs: 15_000 });
  let dirs = { file: cw.dataDir, env: envDir, flag: flagDir };
  assert.deepEqual(await existingDirs(dirs), ['file']);
  assert.equal((await cw.stop()).code, 0);

  // Environment beats the file.
  cw = await startCartwatch(t, { env: { CARTWATCH_STORAGE_DATA_DIR: envDir }, timeoutMs: 15_000 });
  dirs = { file: cw.dataDir, env: envDir, flag: flagDir };
  assert.deepEqual(await existingDirs(dirs), ['env']);
  assert.equal((await cw.stop()).code, 0);
  await fs.rm(envDir, { recursive: true, force: true });

  // The flag beats both (both forms of the flag).
  for (const args of [['--data-dir', flagDir], [`--data-dir=${flagDir}`]]) {
    cw = await startCartwatch(t, {
      args,
      env: { CARTWATCH_STORAGE_DATA_DIR: envDir },
      timeoutMs: 15_000,
    });
    dirs = { file: cw.dataDir, env: envDir, flag: flagDir };
    assert.deepEqual(await existingDirs(dirs), ['flag'], `args ${args.join(' ')}`);
    assert.equal((await cw.stop()).code, 0);
    await fs.rm(flagDir, { recursive: true, force: true });
  }
});

test('--listen, --admin-listen and CARTWATCH_SERVER_* override the file', async (t) => {
  const [envPub, flagPub, envAdm, flagAdm] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  assert.equal(new Set([envPub, flagPub, envAdm, flagAdm]).size, 4, 'four distinct ports');

  // Environment beats the file (which says 127.0.0.1:0 for both).
  let cw = await startCartwatch(t, {
    env: {
      CARTWATCH_SERVER_LISTEN: `127.0.0.1:${envPub}`,
      CARTWATCH_SERVER_ADMIN_LISTEN: `127.0.0.1:${envAdm}`,
    },
    timeoutMs: 15_000,
  });
  assert.equal(cw.publicPort, envPub, 'public port from CARTWATCH_SERVER_LISTEN');
  assert.equal(cw.adminPort, envAdm, 'admin port from CARTWATCH_SERVER_ADMIN_LISTEN');
  await assertPublicAnswers(`http://127.0.0.1:${envPub}`, 'public listener on the env port');
  assert.equal((await request('GET', `http://127.0.0.1:${envAdm}/readyz`)).status, 200);
  assert.equal((await cw.stop()).code, 0);

  // Flags beat the environment; the env ports then answer nothing.
  for (const args of [
    ['--listen', `127.0.0.1:${flagPub}`, '--admin-listen', `127.0.0.1:${flagAdm}`],
    [`--listen=127.0.0.1:${flagPub}`, `--admin-listen=127.0.0.1:${flagAdm}`],
  ]) {
    cw = await startCartwatch(t, {
      args,
      env: {
        CARTWATCH_SERVER_LISTEN: `127.0.0.1:${envPub}`,
        CARTWATCH_SERVER_ADMIN_LISTEN: `127.0.0.1:${envAdm}`,
      },
      timeoutMs: 15_000,
    });
    const what = `args ${args.join(' ')}`;
    assert.equal(cw.publicPort, flagPub, `${what}: public port`);
    assert.equal(cw.adminPort, flagAdm, `${what}: admin port`);
    await assertPublicAnswers(`http://127.0.0.1:${flagPub}`, `${what}: public on the flag port`);
    assert.equal((await request('GET', `http://127.0.0.1:${flagAdm}/readyz`)).status, 200);
    assert.equal(await probePort(envPub), 'ECONNREFUSED', `${what}: env public port is unused`);
    assert.equal(await probePort(envAdm), 'ECONNREFUSED', `${what}: env admin port is unused`);
    assert.equal((await cw.stop()).code, 0);
  }

  // A flag alone beats the file.
  cw = await startCartwatch(t, { args: ['--listen', `127.0.0.1:${flagPub}`], timeoutMs: 15_000 });
  assert.equal(cw.publicPort, flagPub);
  await assertPublicAnswers(`http://127.0.0.1:${flagPub}`, 'public on the flag port');
  assert.equal((await cw.stop()).code, 0);
});

// ---------------------------------------------------------------------------------------
// 3. Graceful shutdown.

const SHUTDOWN_GRACE_MS = 5_000;
const CLIENTS = 8;
const BATCH = 10;
const MAX_REQUESTS_PER_CLIENT = 5_000; // a bound only; SIGTERM comes long before

// One POST /v1/batch that tells apart: a complete response; a response that started but
// was cut off ("torn"); no response at all ("none"); no answer in time ("timeout").
function postClassified(url, messages, agent) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const body = JSON.stringify({ batch: messages, sentAt: new Date().toISOString() });
    let responded = false;
    const req = http.request(
      `${url}/v1/batch`,
      {
        method: 'POST',
        agent,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Authorization: basicAuth(DEFAULT_SITE.writeKey),
        },
      },
      (res) => {
        responded = true;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (!res.complete) {
            finish({ kind: 'torn', status: res.statusCode, body: text, error: 'incomplete body' });
            return;
          }
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          finish({
            kind: 'complete',
            status: res.statusCode,
            headers: res.headers,
            body: text,
            json,
          });
        });
        res.on('aborted', () => finish({ kind: 'torn', status: res.statusCode, error: 'aborted' }));
        res.on('error', (err) =>
          finish({
            kind: 'torn',
            status: res.statusCode,
            error: `${err.code ?? ''} ${err.message}`,
          }),
        );
      },
    );
    req.setTimeout(15_000, () => {
      finish({ kind: 'timeout', error: 'no answer within 15 s' });
      req.destroy();
    });
    req.on('error', (err) =>
      finish({
        kind: responded ? 'torn' : 'none',
        error: `${err.code ?? ''} ${err.message}`,
        code: err.code,
      }),
    );
    req.end(body);
  });
}

// A POST /v1/batch over a raw socket that sends the headers and half the body now; the
// returned send() sends the rest and resolves to the parsed response once the server closes
// the connection: { status, headers, body, complete } (complete: the body is as long as
// Content-Length says), or { error } when the connection failed.
async function halfSentBatch(publicUrl, messages) {
  const { hostname, port } = new URL(publicUrl);
  const body = Buffer.from(JSON.stringify({ batch: messages }));
  const head =
    `POST /v1/batch HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
    `Content-Type: application/json\r\nAuthorization: ${basicAuth(DEFAULT_SITE.writeKey)}\r\n` +
    `Content-Length: ${body.length}\r\n\r\n`;
  const socket = net.connect({ host: hostname, port: Number(port) });
  const chunks = [];
  const closed = new Promise((resolve) => {
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => resolve({ error: `${err.code ?? ''} ${err.message}` }));
    socket.on('close', () => resolve({}));
  });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const half = Math.floor(body.length / 2);
  const first = Buffer.concat([Buffer.from(head), body.subarray(0, half)]);
  await new Promise((resolve) => socket.write(first, resolve));
  return {
    async send() {
      socket.end(body.subarray(half));
      const timer = setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000);
      const { error } = await closed;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      if (split < 0) {
        return { error: error ?? 'closed without a complete response head', raw: raw.toString() };
      }
      const [statusLine, ...headerLines] = raw.subarray(0, split).toString().split('\r\n');
      const headers = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = raw.subarray(split + 4);
      const length = Number(headers['content-length']);
      return {
        status: Number(statusLine.split(' ')[1]),
        headers,
        body: rest.subarray(0, length).toString(),
        complete: rest.length >= length,
        error,
      };
    },
  };
}

function countBy(items) {
  const out = {};
  for (const x of items) out[x] = (out[x] ?? 0) + 1;
  return out;
}

function makeBatch(client, seq) {
  const now = new Date().toISOString();
  const out = [];
  for (let i = 0; i < BATCH; i++) {
    out.push({
      type: 'track',
      messageId: `life-c${client}-r${seq}-m${i}`,
      anonymousId: `anon-${client}`,
      event: 'Product Viewed',
      properties: { product_id: `sku-${seq}-${i}` },
      timestamp: now,
    });
  }
  return out;
}

test('SIGTERM with keep-alive clients sending: complete answers, exit 0, no loss', async (t) => {
  let cw = await startCartwatch(t, {
    env: { CARTWATCH_SERVER_SHUTDOWN_GRACE: `${SHUTDOWN_GRACE_MS}ms` },
    timeoutMs: 15_000,
  });

  const state = { signalled: false, exited: false, inFlight: 0 };
  const attempted = new Set();
  const acked = []; // batches answered 200 {"success":true}
  const refused503 = []; // batches answered 503 shutting_down
  const unanswered = []; // batches with no response at all: { batch, error, afterSignal }
  const bad = []; // anything else: torn, timeout, other status

  cw.exited.then(() => {
    state.exited = true;
  });

  async function client(id) {
    // One connection per client, kept alive across requests.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let seq = 0; seq < MAX_REQUESTS_PER_CLIENT; seq++) {
        if (state.exited) break;
        const batch = makeBatch(id, seq);
        for (const m of batch) attempted.add(m.messageId);
        const sentAfterSignal = state.signalled;
        state.inFlight++;
        const r = await postClassified(cw.publicUrl, batch, agent);
        state.inFlight--;
        if (r.kind === 'complete' && r.status === 200 && r.json?.success === true) {
          acked.push(batch);
        } else if (
          r.kind === 'complete' &&
          r.status === 503 &&
          r.json?.error?.code === 'shutting_down'
        ) {
          refused503.push(batch);
        } else if (r.kind === 'none') {
          unanswered.push({ batch, error: r.error, sentAfterSignal });
          if (!state.signalled) {
            bad.push(`client ${id} request ${seq}: no response before SIGTERM: ${r.error}`);
          }
          // After SIGTERM: the listener is closed, so a refused connection ends this client.
          if (state.signalled && r.code === 'ECONNREFUSED') break;
        } else {
          bad.push(
            `client ${id} request ${seq} (${sentAfterSignal ? 'after' : 'before'} SIGTERM): ` +
              `${r.kind} ${r.status ?? ''} ${r.error ?? ''} ${(r.body ?? '').slice(0, 200)}`,
          );
        }
        if (state.signalled && state.exited) break;
      }
    } finally {
      agent.destroy();
    }
  }

  const clients = [];
  for (let c = 0; c < CLIENTS; c++) clients.push(client(c));

  await sleep(1_000);
  // A request half received at SIGTERM: the rest arrives during the grace period.
  const slowBatch = makeBatch(100, 0);
  for (const m of slowBatch) attempted.add(m.messageId);
  const slow = await halfSentBatch(cw.publicUrl, slowBatch);
  await sleep(50); // let the server start reading it
  const ackedBeforeSignal = acked.length;
  const inFlightAtSignal = state.inFlight;
  const signalledAt = Date.now();
  state.signalled = true;
  cw.child.kill('SIGTERM');

  await sleep(200);
  const slowAnswer = slow.send();

  // Exit within the grace period (SIGKILL as a backstop well after it).
  const backstop = setTimeout(() => cw.child.kill('SIGKILL'), SHUTDOWN_GRACE_MS + 5_000);
  const exit = await cw.exited;
  clearTimeout(backstop);
  const exitMs = Date.now() - signalledAt;
  await Promise.all(clients);

  const stderr = cw.stderr();
  t.diagnostic(
    `SIGTERM after ${ackedBeforeSignal} acknowledged batches with ${inFlightAtSignal} in flight; ` +
      `exit ${JSON.stringify(exit)} after ${exitMs} ms; ${acked.length} acknowledged, ` +
      `${refused503.length} answered 503, ${unanswered.length} unanswered ` +
      `(${unanswered.filter((u) => !u.sentAfterSignal).length} sent before SIGTERM; ` +
      `${JSON.stringify(countBy(unanswered.map((u) => u.error)))})`,
  );
  assert.deepEqual(bad.slice(0, 20), [], `${bad.length} requests got a torn or wrong answer`);
  assert.deepEqual(exit, { code: 0, signal: null }, `exit status; stderr:\n${stderr}`);
  assert.ok(
    exitMs < SHUTDOWN_GRACE_MS,
    `exited ${exitMs} ms after SIGTERM (grace ${SHUTDOWN_GRACE_MS} ms)`,
  );
  assert.match(stderr, /^ts=\S+ level=info msg="shutting down" signal=Terminated$/m, `stderr:\n${stderr}`);
  assert.match(stderr, /^ts=\S+ level=info msg=stopped duration_ms=\d+$/m, `stderr:\n${stderr}`);
  assert.ok(ackedBeforeSignal > 0, 'some batches were acknowledged before SIGTERM');
  const sr = await slowAnswer;
  assert.equal(sr.status, 200, `half-sent request at SIGTERM: ${JSON.stringify(sr)}`);
  assert.ok(sr.complete, `half-sent request at SIGTERM: torn response ${JSON.stringify(sr)}`);
  assert.equal(JSON.parse(sr.body).success, true, sr.body);
  assert.equal(sr.headers.connection, 'close', 'answered with Connection: close while draining');
  acked.push(slowBatch);

  // Restart on the same data dir: every acknowledged messageId exactly once.
  cw = await startCartwatch(t, { dir: cw.dir, timeoutMs: 15_000 });
  const { events } = await fetchAllEvents(cw.publicUrl, DEFAULT_SITE.secretKey);
  const counts = new Map();
  for (const e of events) counts.set(e.messageId, (counts.get(e.messageId) ?? 0) + 1);
  const ackedIds = acked.flat().map((m) => m.messageId);
  const missing = ackedIds.filter((id) => !counts.has(id));
  const doubled = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  const unknown = [...counts.keys()].filter((id) => !attempted.has(id));
  t.diagnostic(`after restart: ${events.length} events, ${ackedIds.length} acknowledged ids`);
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged messages lost`);
  assert.deepEqual(doubled.slice(0, 20), [], `${doubled.length} messageIds stored more than once`);
  assert.deepEqual(unknown.slice(0, 20), [], `${unknown.length} events nobody sent`);

  // A batch refused with 503 was not stored, and a batch with no response was not received:
  // a stored message whose request got no answer means a received request's response was
  // dropped.
  const storedOf = (batch) => batch.filter((m) => counts.has(m.messageId)).length;
  const stored503 = refused503.filter((b) => storedOf(b) > 0).map((b) => b[0].messageId);
  assert.deepEqual(stored503, [], 'batches answered 503 shutting_down were stored');
  const storedUnanswered = unanswered
    .filter((u) => storedOf(u.batch) > 0)
    .map(
      (u) =>
        `${u.batch[0].messageId} (${storedOf(u.batch)}/${u.batch.length} stored; ${u.error})`,
    );
  assert.deepEqual(
    storedUnanswered,
    [],
    'requests that the collector received and stored got no response',
  );

  // And the restarted instance takes new batches.
  const r = await postClassified(cw.publicUrl, makeBatch(99, 0), undefined);
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal((await cw.stop()).code, 0);
});

test('SIGINT stops cleanly with exit 0', async (t) => {
  const cw = await startCartwatch(t, { timeoutMs: 15_000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  // Leaves an idle keep-alive connection open.
  const r = await postClassified(cw.publicUrl, makeBatch(0, 0), agent);
  assert.equal(r.status, 200, JSON.stringify(r));

  const sentAt = Date.now();
  cw.child.kill('SIGINT');
  const backstop = setTimeout(() => cw.child.kill('SIGKILL'), 15_000);
  const exit = await cw.exited;
  clearTimeout(backstop);
  const stderr = cw.stderr();
  assert.deepEqual(exit, { code: 0, signal: null }, `stderr:\n${stderr}`);
  assert.ok(Date.now() - sentAt < 5_000, `SIGINT took ${Date.now() - sentAt} ms`);
  assert.match(stderr, /^ts=\S+ level=info msg="shutting down" signal=Interrupt$/m, `stderr:\n${stderr}`);
  assert.match(stderr, /^ts=\S+ level=info msg=stopped duration_ms=\d+$/m, `stderr:\n${stderr}`);
});

// ---------------------------------------------------------------------------------------
// 4. Admin listener.

test('/healthz and /readyz answer 200 JSON on the admin port only', async (t) => {
  const cw = await startCartwatch(t, { timeoutMs: 15_000 });
  assert.notEqual(cw.adminPort, cw.publicPort);

  for (const [p, status] of [
    ['/healthz', 'ok'],
    ['/readyz', 'ready'],
  ]) {
    const res = await request('GET', `${cw.adminUrl}${p}`);
    assert.equal(res.status, 200, `admin ${p}: ${res.body}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/, `admin ${p} type`);
    assert.deepEqual(JSON.parse(res.body), { status }, `admin ${p}`);

    const pub = await request('GET', `${cw.publicUrl}${p}`);
    assert.equal(pub.status, 404, `public ${p}: ${pub.status} ${pub.body}`);
    assert.match(pub.headers['content-type'] ?? '', /^application\/json/, `public ${p} type`);
    assert.equal(JSON.parse(pub.body).error?.code, 'not_found', `public ${p}: ${pub.body}`);
  }

  // The admin port serves nothing else: not the ingest or query API.
  const events = await request('GET', `${cw.adminUrl}/v1/events`, {
    headers: { Authorization: `Bearer ${DEFAULT_SITE.secretKey}` },
  });
  assert.equal(events.status, 404, `admin /v1/events: ${events.body}`);
  const batch = await request('POST', `${cw.adminUrl}/v1/batch`, {
    headers: {
      'Content-Type': 'application/json',
      Authorization: basicAuth(DEFAULT_SITE.writeKey),
    },
    body: JSON.stringify({ batch: makeBatch(0, 0) }),
  });
  assert.equal(batch.status, 404, `admin /v1/batch: ${batch.body}`);

  assert.equal((await cw.stop()).code, 0);
});
