// Smoke test of cartwatch-loadgen (CARTWATCH_LOADGEN) against the real collector
// (CARTWATCH_BIN): a closed-loop run, a batched run and an open-loop run of one second
// each; the --json report is well formed and only 2xx came back; and what the collector
// stored is what the load generator says it sent. Plus its exit codes: 2 for a bad
// argument, 1 when nothing listens. Asserts behaviour only, never speed.
//
//   CARTWATCH_BIN=build/debug/cartwatch CARTWATCH_LOADGEN=build/debug/cartwatch-loadgen \
//     node --test tests/bench/loadgen.test.mjs

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { fetchAllEvents, freePort, runToExit, startCartwatch } from '../e2e/lib/cartwatch.mjs';

// ---------------------------------------------------------------------------------------
// Helpers

function loadgenBin() {
  const bin = process.env.CARTWATCH_LOADGEN;
  if (!bin) {
    throw new Error(
      'CARTWATCH_LOADGEN is not set: point it at the cartwatch-loadgen binary, e.g. ' +
        'CARTWATCH_LOADGEN=build/debug/cartwatch-loadgen',
    );
  }
  return bin;
}

// Runs cartwatch-loadgen with `args` to its exit (SIGKILL after timeoutMs).
function runLoadgen(t, args, { timeoutMs = 60_000 } = {}) {
  return runToExit(t, loadgenBin(), args, { timeoutMs });
}

function describeRun(run) {
  return (
    `\n  command: ${run.command}\n  exit: code ${run.code}, signal ${run.signal}` +
    `\n  stdout: ${JSON.stringify(run.stdout)}\n  stderr: ${JSON.stringify(run.stderr)}`
  );
}


const isCount = (v) => Number.isSafeInteger(v) && v >= 0;

// Checks the shape of a --json report; `want` holds the run's settings.
function checkReport(report, want, context) {
  assert.equal(report.mode, want.rate > 0 ? 'open' : 'closed', `mode${context}`);
  assert.equal(report.connections, want.connections, `connections${context}`);
  assert.equal(report.threads, 1, `threads${context}`);
  assert.equal(report.batch, want.batch, `batch${context}`);
  assert.equal(report.rate, want.rate, `rate${context}`);
  for (const key of ['requests', 'messages', 'transport_errors']) {
    assert.ok(isCount(report[key]), `${key} is a count${context}`);
  }
  for (const key of ['duration_s', 'rps', 'mps']) {
    assert.equal(typeof report[key], 'number', `${key} is a number${context}`);
  }
  assert.ok(report.requests > 0, `requests > 0${context}`);
  assert.equal(report.transport_errors, 0, `transport_errors${context}`);

  // Only 2xx answers, and they add up to the requests.
  assert.equal(typeof report.status, 'object', `status${context}`);
  let answered = 0;
  for (const [code, count] of Object.entries(report.status)) {
    assert.match(code, /^2\d\d$/, `status ${code} is not 2xx${context}`);
    assert.ok(isCount(count) && count > 0, `status ${code}: ${count}${context}`);
    answered += count;
  }
  assert.equal(answered, report.requests, `status counts add up to requests${context}`);
  // Every answer was 2xx, so every request's messages count.
  assert.equal(report.messages, report.requests * want.batch, `messages${context}`);

  const lat = report.latency_us;
  assert.equal(typeof lat, 'object', `latency_us${context}`);
  const order = ['p50', 'p90', 'p99', 'p999', 'max'];
  for (const key of order) assert.ok(isCount(lat[key]), `latency_us.${key}${context}`);
  assert.ok(lat.p50 > 0, `latency_us.p50 > 0 with requests answered${context}`);
  for (let i = 1; i < order.length; i++) {
    assert.ok(
      lat[order[i - 1]] <= lat[order[i]],
      `latency_us.${order[i - 1]} <= latency_us.${order[i]}${context}`,
    );
  }
}

const MESSAGE_ID_RE = /^bm-([0-9a-f]{16})-(\d+)$/;

// Checks a site's stored events against the run that sent them. The report counts the
// messages of requests answered within the measured window; a connection's request still
// in flight when the window closes (and, at the boundary, the one it may send right after)
// is stored too but not counted. So the stored events are `messages` plus at most a few
// requests per connection, and per connection (one messageId stream, "bm-<stream>-<n>")
// they are exactly messages 0..k-1, whole requests only: nothing counted is missing,
// nothing is doubled, nothing skipped.
function checkStored(events, report, want, context) {
  const streams = new Map(); // stream -> counters
  const ids = new Set();
  for (const event of events) {
    const id = event.messageId;
    const m = MESSAGE_ID_RE.exec(id);
    assert.ok(m, `stored messageId ${JSON.stringify(id)} is not the workload's${context}`);
    assert.ok(!ids.has(id), `messageId ${id} stored twice${context}`);
    ids.add(id);
    assert.ok(['page', 'track', 'identify'].includes(event.type), `type ${event.type}${context}`);
    if (!streams.has(m[1])) streams.set(m[1], []);
    streams.get(m[1]).push(Number(m[2]));
  }
  assert.ok(
    streams.size >= 1 && streams.size <= want.connections,
    `${streams.size} messageId streams for ${want.connections} connections${context}`,
  );
  for (const [stream, counters] of streams) {
    counters.sort((a, b) => a - b);
    const gap = counters.findIndex((n, i) => n !== i);
    assert.equal(gap, -1, `stream ${stream}: not messages 0..${counters.length - 1}${context}`);
    assert.equal(counters.length % want.batch, 0, `stream ${stream}: a partial request${context}`);
  }
  const uncounted = events.length - report.messages;
  assert.ok(
    uncounted >= 0,
    `${events.length} events stored, fewer than the ${report.messages} acknowledged${context}`,
  );
  const inFlightBound = 3 * want.connections * want.batch;
  assert.ok(
    uncounted <= inFlightBound,
    `${events.length} events stored for ${report.messages} messages counted: ${uncounted} ` +
      `more than at most ${inFlightBound} in flight at the end${context}`,
  );
  return uncounted;
}

// ---------------------------------------------------------------------------------------
// Tests

// One site per run, so that each run's events can be read back on their own; distinct
// seeds as well (connection c of a run uses seed + c).
const RUNS = [
  { name: 'closed', seed: 1000, batch: 1, rate: 0, extra: [] },
  { name: 'closed-batch', seed: 2000, batch: 10, rate: 0, extra: ['--batch', '10'] },
  { name: 'open', seed: 3000, batch: 1, rate: 200, extra: ['--rate', '200'] },
].map((run) => ({
  ...run,
  connections: 4,
  site: {
    name: `bench-${run.name}`,
    writeKey: `bench-write-key-${run.name}`,
    secretKey: `bench-secret-${run.name}`,
    allowedOrigins: [],
  },
}));

test('closed loop, batches and open loop: 2xx only, and every counted message stored', async (t) => {
  const cw = await startCartwatch(t, { sites: RUNS.map((r) => r.site) });
  const scratch = mkdtempSync(join(tmpdir(), 'cartwatch-loadgen-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const timeline = join(scratch, 'timeline.tsv');

  const reports = [];
  for (const run of RUNS) {
    const result = await runLoadgen(t, [
      '--port', String(cw.publicPort),
      '--write-key', run.site.writeKey,
      '--connections', String(run.connections),
      '--duration', '1s',
      '--warmup', '0s',
      '--seed', String(run.seed),
      '--json',
      ...run.extra,
      ...(run.rate > 0 ? ['--timeline', timeline] : []),
    ]);
    const context = ` (${run.name})${describeRun(result)}`;
    assert.equal(result.signal, null, `killed${context}`);
    assert.equal(result.code, 0, `exit code${context}`);
    const lines = result.stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, `one line of JSON on stdout${context}`);
    let report;
    assert.doesNotThrow(() => (report = JSON.parse(lines[0])), `stdout is JSON${context}`);
    checkReport(report, run, context);
    if (run.rate > 0) {
      // Open loop sends on its schedule: never more than rate x duration requests.
      assert.ok(report.requests <= run.rate * 1, `open loop over its schedule${context}`);
      // --timeline: a comment with the window's start, a header, then the window's 100-ms
      // slices (and one past its end), which hold every answer counted.
      const lines = readFileSync(timeline, 'utf8').split('\n').filter((l) => l !== '');
      assert.match(lines[0], /^# window start: unix \d+ us, monotonic \d+ us$/, `timeline${context}`);
      assert.equal(lines[1], 't_s\tanswers\tover_1ms\tover_10ms\tmax_us', `timeline${context}`);
      const slices = lines.slice(2).map((l) => l.split('\t').map(Number));
      assert.equal(slices.length, 11, `timeline slices${context}`);
      assert.deepEqual(slices.map((r) => r[0]), [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
      assert.equal(slices.reduce((n, r) => n + r[1], 0), report.requests, `timeline answers${context}`);
      for (const [, answers, over1, over10, max] of slices) {
        assert.ok(over10 <= over1 && over1 <= answers, `timeline counts${context}`);
        assert.ok(answers > 0 || max === 0, `timeline max${context}`);
      }
    }
    reports.push(report);
  }

  for (const [i, run] of RUNS.entries()) {
    const { events } = await fetchAllEvents(cw.publicUrl, run.site.secretKey);
    const context = ` (${run.name}: report ${JSON.stringify(reports[i])})`;
    const uncounted = checkStored(events, reports[i], run, context);
    t.diagnostic(
      `${run.name}: ${reports[i].requests} requests, ${reports[i].messages} messages counted, ` +
        `${events.length} stored (${uncounted} in flight at the end)`,
    );
  }
});

test('a bad argument exits 2 with the usage, before connecting', async (t) => {
  // Port 1 is never listened on here: a run that got as far as connecting would exit 1.
  for (const args of [
    ['--connections', 'abc'],
    ['--connections', '0'],
    ['--duration', '0s'],
    ['--rate', '-5'],
    ['--port', '70000'],
    ['--no-such-option', '1'],
    ['--seed'], // no value
  ]) {
    const run = await runLoadgen(t, ['--port', '1', ...args], { timeoutMs: 20_000 });
    const context = describeRun(run);
    assert.equal(run.signal, null, `killed${context}`);
    assert.equal(run.code, 2, `exit code${context}`);
    assert.equal(run.stdout, '', `nothing on stdout${context}`);
    assert.match(run.stderr, /^cartwatch-loadgen: /, `an error line${context}`);
    assert.match(run.stderr, /usage: cartwatch-loadgen/, `the usage${context}`);
  }
  const run = await runLoadgen(t, ['--connections', 'abc']);
  assert.match(run.stderr, /bad value for --connections: 'abc'/, describeRun(run));
});

test('nothing listening on the port: exit 1', async (t) => {
  const port = await freePort();
  const run = await runLoadgen(
    t,
    ['--port', String(port), '--connections', '2', '--duration', '1s', '--warmup', '0s', '--json'],
    { timeoutMs: 20_000 },
  );
  const context = describeRun(run);
  assert.equal(run.signal, null, `killed${context}`);
  assert.equal(run.code, 1, `exit code${context}`);
  assert.equal(run.stdout, '', `no report${context}`);
  assert.match(run.stderr, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}`), context);
});
