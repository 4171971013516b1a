// Helpers for the end-to-end tests: run the real `cartwatch` binary (CARTWATCH_BIN) on a
// temporary config and data dir, talk HTTP to it on loopback, page through its event log,
// and make sure no child outlives the test.
//
//   const cw = await startCartwatch(t);          // t: the node:test context (cleans up after)
//   await postBatch(cw.publicUrl, 'wk', [msg]);   // POST /v1/batch
//   const events = await fetchAllEvents(cw.publicUrl, 'sk');
//   await cw.kill('SIGKILL');
//   const again = await startCartwatch(t, { dir: cw.dir });   // same config and data dir

import { spawn, spawnSync } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const DEFAULT_SITE = Object.freeze({
  name: 't',
  writeKey: 'wk',
  secretKey: 'sk',
  allowedOrigins: [],
});

const LISTENING_RE =
  /^cartwatch: listening on (\S+):(\d+) \(public\), (\S+):(\d+) \(admin\)$/;

// Every child started here, so that none survives the test process even when a test forgets
// (or fails before) its cleanup.
const children = new Set();
const instancesByDir = new Map(); // temp dir -> instances started on it
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// The test process's environment without its CARTWATCH_* variables, plus `extra`:
// cartwatch reads CARTWATCH_<SECTION>_<KEY> variables as config and refuses unknown ones,
// so a child gets none of ours (CARTWATCH_BIN, CARTWATCH_E2E_SEED, ...), only `extra`.
export function childEnv(extra = {}) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('CARTWATCH_')),
  );
  return { ...env, ...extra };
}

// Runs `bin` with `args` to its exit (SIGKILL after timeoutMs, and when the test ends).
// Resolves to { code, signal, stdout, stderr, command }.
export function runToExit(t, bin, args, { env = {}, timeoutMs = 10_000 } = {}) {
  const command = `${bin} ${args.join(' ')}`;
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(env) });
  children.add(child);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, command });
    });
  });
}

// A loopback TCP port that was free a moment ago.
// A loopback TCP port that is free now, for a server that must keep its port across a
// restart. Chosen below the kernel's ephemeral range (32768-60999 on Linux): a port from
// that range can be handed to any other process's port-0 bind (parallel tests start
// collectors that way) between this check and the test's own listen. Random, so that
// parallel callers rarely try the same one; each candidate is checked by binding it.
export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-31999 on 127.0.0.1');
}

// The binary under test: $CARTWATCH_BIN (CTest sets it to $<TARGET_FILE:cartwatch>).
export function cartwatchBin() {
  const bin = process.env.CARTWATCH_BIN;
  if (!bin) {
    throw new Error(
      'CARTWATCH_BIN is not set: point it at the cartwatch binary, e.g. ' +
        'CARTWATCH_BIN=build/debug/cartwatch node --test tests/e2e/',
    );
  }
  return bin;
}

function tomlString(s) {
  return JSON.stringify(String(s)); // a JSON string is a valid TOML basic string
}

// A TOML value: strings quoted, arrays of them bracketed, numbers and booleans as they are.
function tomlValue(v) {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  return typeof v === 'string' ? tomlString(v) : String(v);
}

// The TOML text of a config with the given sites, listening on free loopback ports.
// `extra` adds keys to sections: { server: {max_connections: 10}, limits: {...}, ... };
// `toml` is appended as it is (arrays of tables such as [[rules]]).
export function configToml({ dataDir, sites = [DEFAULT_SITE], fsync = false, extra = {}, toml = '' } = {}) {
  const keys = (section) =>
    Object.entries(extra[section] ?? {}).map(([k, v]) => `${k} = ${tomlValue(v)}`);
  const lines = [
    '[server]',
    'listen = "127.0.0.1:0"',
    'admin_listen = "127.0.0.1:0"',
    ...keys('server'),
    '',
    '[storage]',
    `data_dir = ${tomlString(dataDir)}`,
    `fsync = ${fsync ? 'true' : 'false'}`,
    ...keys('storage'),
  ];
  for (const section of Object.keys(extra)) {
    if (section === 'server' || section === 'storage') continue;
    lines.push('', `[${section}]`, ...keys(section));
  }
  for (const site of sites) {
    lines.push(
      '',
      '[[sites]]',
      `name = ${tomlString(site.name)}`,
      `write_key = ${tomlString(site.writeKey)}`,
      `secret_key = ${tomlString(site.secretKey)}`,
      `allowed_origins = [${(site.allowedOrigins ?? []).map(tomlString).join(', ')}]`,
    );
  }
  return lines.join('\n') + '\n' + (toml ? `\n${toml}\n` : '');
}

// The e-mail templates Cartwatch ships (config/templates), for configs with [[rules]].
export const TEMPLATES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../config/templates');

// Makes a temporary directory holding cartwatch.toml and data/. Returns
// { dir, configPath, dataDir }.
export async function makeTempSetup({ sites, fsync, extra, toml, dataDir: givenDataDir } = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cartwatch-e2e-'));
  const dataDir = givenDataDir ?? path.join(dir, 'data');
  const configPath = path.join(dir, 'cartwatch.toml');
  await fs.writeFile(configPath, configToml({ dataDir, sites, fsync, extra, toml }));
  return { dir, configPath, dataDir };
}

// Starts cartwatch and resolves once it has printed its listening line and /readyz answers
// 200. `t` is the node:test context: the process is killed and (unless keepDir) the
// temporary directory removed when that test ends. Options:
//   dir:       reuse the config and data dir of an earlier instance (cw.dir) instead of
//              making new ones (a restart on the same data);
//   sites, fsync, extra, toml, dataDir: config of a new setup (configToml; dataDir:
//              elsewhere than <dir>/data);
//   wrapper:   a command and arguments to run the binary under, e.g. ['prlimit', '--nofile=512'];
//   args:      extra command-line arguments;
//   env:       extra environment variables (e.g. CARTWATCH_STORAGE_FSYNC); the test
//              process's own CARTWATCH_* variables are not passed on;
//   timeoutMs: how long to wait for the listening line and readiness (default 60 s).
// Resolves to an instance:
//   { child, pid, dir, configPath, dataDir, publicUrl, adminUrl, publicPort, adminPort,
//     stderr() -> text so far, exited -> Promise<{code, signal}>, kill(signal), stop() }
export async function startCartwatch(t, opts = {}) {
  const { timeoutMs = 60_000, args = [] } = opts;
  let setup;
  if (opts.dir) {
    setup = {
      dir: opts.dir,
      configPath: path.join(opts.dir, 'cartwatch.toml'),
      dataDir: path.join(opts.dir, 'data'),
    };
  } else {
    setup = await makeTempSetup(opts);
    if (t && !opts.keepDir) {
      const dir = setup.dir;
      t.after(async () => {
        // Every instance that ran on this dir is gone before the dir is.
        await Promise.all([...(instancesByDir.get(dir) ?? [])].map((i) => i.kill('SIGKILL')));
        instancesByDir.delete(dir);
        await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
      });
    }
  }

  const bin = cartwatchBin();
  const [exe, ...pre] = opts.wrapper ?? [bin];
  const child = spawn(exe, [...(opts.wrapper ? [...pre, bin] : pre), '--config', setup.configPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(opts.env),
  });
  children.add(child);

  let stderrText = '';
  const STDERR_KEEP = 64 * 1024;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderrText += chunk;
    if (stderrText.length > 2 * STDERR_KEEP) stderrText = stderrText.slice(-STDERR_KEEP);
  });
  const stdoutLines = [];

  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  const spawnError = new Promise((_, reject) => {
    child.on('error', (err) => reject(new Error(`cannot run ${bin}: ${err.message}`)));
  });
  spawnError.catch(() => {}); // observed below

  const instance = {
    child,
    pid: child.pid,
    ...setup,
    stdoutLines,
    stderr: () => stderrText,
    exited,
    // Sends `signal` (default SIGKILL) and resolves to {code, signal} once it has exited.
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    // SIGTERM, then SIGKILL when it is still running after `graceMs`.
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  if (t) t.after(() => instance.kill('SIGKILL'));
  if (!instancesByDir.has(setup.dir)) instancesByDir.set(setup.dir, new Set());
  instancesByDir.get(setup.dir).add(instance);

  const describe = () =>
    `${bin} --config ${setup.configPath}${args.length ? ' ' + args.join(' ') : ''}`;
  const failure = (why) =>
    new Error(
      `cartwatch ${why}\n  command: ${describe()}\n  stdout: ${JSON.stringify(
        stdoutLines,
      )}\n  stderr:\n${indent(stderrText || '(empty)')}`,
    );

  const listening = new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      stdoutLines.push(line);
      const m = LISTENING_RE.exec(line);
      if (m && !instance.publicUrl) {
        resolve({ pubHost: m[1], pubPort: Number(m[2]), admHost: m[3], admPort: Number(m[4]) });
      }
    });
    exited.then(({ code, signal }) =>
      reject(failure(`exited (code ${code}, signal ${signal}) before it was listening`)),
    );
  });

  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(failure(`printed no listening line within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const l = await Promise.race([listening, spawnError, timeout]);
    instance.publicPort = l.pubPort;
    instance.adminPort = l.admPort;
    instance.publicUrl = `http://${hostForUrl(l.pubHost)}:${l.pubPort}`;
    instance.adminUrl = `http://${hostForUrl(l.admHost)}:${l.admPort}`;
    await Promise.race([waitReady(instance.adminUrl, failure, exited), spawnError, timeout]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  // Drain stdout from now on so that the child never blocks on a full pipe.
  child.stdout.resume();
  return instance;
}

// Polls GET /readyz on the admin listener until it answers 200.
async function waitReady(adminUrl, failure, exited) {
  let gone = false;
  exited.then(() => {
    gone = true;
  });
  let last = 'no answer';
  for (;;) {
    if (gone) throw failure(`exited while waiting for ${adminUrl}/readyz (last: ${last})`);
    try {
      const res = await request('GET', `${adminUrl}/readyz`, { timeoutMs: 2_000 });
      if (res.status === 200) return;
      last = `${res.status} ${res.body.slice(0, 200)}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(50);
  }
}

function hostForUrl(host) {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function indent(text) {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => '    ' + l)
    .join('\n');
}

// Deterministic pseudo-random numbers in [0, 1) from `seed` (mulberry32), so that a failing
// run can be repeated with the same choices.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// One HTTP request with node:http. Resolves to { status, headers, body } (body as text);
// rejects on a connection error or after timeoutMs. Options: headers, body (string or
// Buffer), agent (e.g. a keep-alive http.Agent; default: a new connection), timeoutMs.
export function request(method, url, { headers = {}, body, agent, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const hdrs = { ...headers };
    if (body !== undefined) hdrs['Content-Length'] = Buffer.byteLength(body);
    const req = http.request(url, { method, headers: hdrs, agent: agent ?? false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`${method} ${url}: response aborted`)));
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(body);
  });
}

// HTTP Basic credentials of the Tracking API: user = write key, empty password.
export function basicAuth(writeKey) {
  return 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64');
}

// POST /v1/batch with `messages`. Resolves to { status, headers, body, json } (json: the
// parsed body, or undefined when it is not JSON).
export async function postBatch(publicUrl, writeKey, messages, { agent, timeoutMs } = {}) {
  const res = await request('POST', `${publicUrl}/v1/batch`, {
    headers: { 'Content-Type': 'application/json', Authorization: basicAuth(writeKey) },
    body: JSON.stringify({ batch: messages, sentAt: new Date().toISOString() }),
    agent,
    timeoutMs,
  });
  try {
    res.json = JSON.parse(res.body);
  } catch {
    res.json = undefined;
  }
  return res;
}

// One page of GET /v1/events. Resolves to { events, cursor, status, body }.
export async function fetchEventsPage(publicUrl, secretKey, { after, limit, agent } = {}) {
  const params = new URLSearchParams();
  if (after !== undefined) params.set('after', after);
  if (limit !== undefined) params.set('limit', String(limit));
  const qs = params.toString();
  const url = `${publicUrl}/v1/events${qs ? '?' + qs : ''}`;
  const res = await request('GET', url, {
    headers: { Authorization: `Bearer ${secretKey}` },
    agent,
  });
  if (res.status !== 200) {
    throw new Error(`GET ${url}: ${res.status} ${res.body.slice(0, 500)}`);
  }
  const cursor = res.headers['cartwatch-cursor'];
  if (cursor === undefined) {
    throw new Error(`GET ${url}: 200 without a Cartwatch-Cursor header`);
  }
  const events = [];
  const lines = res.body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line === '') continue;
    try {
      events.push(JSON.parse(line));
    } catch (err) {
      throw new Error(
        `GET ${url}: line ${i + 1} of the NDJSON body is not JSON (${err.message}): ` +
          line.slice(0, 300),
      );
    }
  }
  return { events, cursor, status: res.status, body: res.body };
}

// Every event of the site, oldest first, following Cartwatch-Cursor until an empty page.
// Resolves to { events, cursor, pages } where cursor is the one to resume from.
export async function fetchAllEvents(publicUrl, secretKey, { limit = 10_000, maxPages = 10_000 } = {}) {
  const all = [];
  let after;
  for (let pages = 1; pages <= maxPages; pages++) {
    const page = await fetchEventsPage(publicUrl, secretKey, { after, limit });
    if (page.events.length === 0) {
      if (after !== undefined && page.cursor !== after) {
        throw new Error(
          `GET /v1/events: an empty page moved the cursor from ${JSON.stringify(after)} to ` +
            `${JSON.stringify(page.cursor)}`,
        );
      }
      return { events: all, cursor: page.cursor, pages };
    }
    if (page.events.length > limit) {
      throw new Error(`GET /v1/events: ${page.events.length} events for limit=${limit}`);
    }
    if (after !== undefined && page.cursor === after) {
      throw new Error(
        `GET /v1/events: a page of ${page.events.length} events left the cursor at ` +
          `${JSON.stringify(after)}`,
      );
    }
    all.push(...page.events);
    after = page.cursor;
  }
  throw new Error(`GET /v1/events: still not done after ${maxPages} pages`);
}

// A tool of Debian's prometheus package: $ENV_NAME, else build/tools/<name>
// (scripts/install-deps.sh --test extracts them there), else <name> on the PATH; null when
// there is none (CARTWATCH_REQUIRE_PROMTOOL makes that an error).
function findPrometheusTool(name, envName) {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const candidates = [process.env[envName], path.join(here, '../../../build/tools', name)];
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(path.join(dir, name));
  for (const c of candidates) {
    if (!c) continue;
    try {
      fsSync.accessSync(c, fsSync.constants.X_OK);
      return c;
    } catch {}
  }
  if (process.env.CARTWATCH_REQUIRE_PROMTOOL) {
    throw new Error(`no ${name}: scripts/install-deps.sh --test puts it in build/tools/${name}`);
  }
  return null;
}

// Prometheus's own checker of /metrics and of alerting rules (PROMTOOL overrides).
export const findPromtool = () => findPrometheusTool('promtool', 'PROMTOOL');

// The Prometheus server (PROMETHEUS overrides).
export const findPrometheus = () => findPrometheusTool('prometheus', 'PROMETHEUS');

// GET /metrics of an instance, checked by `promtool check metrics` when there is one (the
// exposition must be clean: no lint problem at all). Resolves to the text.
export async function scrapeMetrics(instance) {
  const res = await request('GET', `${instance.adminUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  const promtool = findPromtool();
  if (promtool) {
    const checked = spawnSync(promtool, ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
    if (checked.status !== 0) {
      throw new Error(`promtool check metrics failed:\n${checked.stdout}${checked.stderr}`);
    }
  }
  return res.body;
}

// Every entry of the site's outbox (GET /v1/deliveries, `secretKey`), page after page.
export async function fetchAllDeliveries(publicUrl, secretKey = DEFAULT_SITE.secretKey) {
  const all = [];
  let after = '';
  for (;;) {
    const res = await request('GET', `${publicUrl}/v1/deliveries?limit=1000${after ? `&after=${after}` : ''}`, {
      headers: { Authorization: `Bearer ${secretKey}` },
    });
    if (res.status !== 200) throw new Error(`GET /v1/deliveries answered ${res.status}: ${res.body}`);
    const page = JSON.parse(res.body);
    all.push(...page.deliveries);
    if (page.deliveries.length === 0) return all;
    after = page.next_cursor;
  }
}

// Calls `check` every 200 ms until it resolves to true; fails after `timeoutMs` naming
// `what` and the last thing `check` resolved to.
export async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await sleep(200);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms: ${JSON.stringify(last)?.slice(0, 2000)}`);
}
