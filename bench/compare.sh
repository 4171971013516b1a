#!/usr/bin/env bash
# Side-by-side ingest benchmark: Cartwatch against two nginx baselines, on loopback, each
# server pinned to one core and the load generator to another. Writes bench/RESULTS.md.
#
#   bench/compare.sh                 # full run: 3 rounds of 10 s (+2 s warm-up) per run
#   bench/compare.sh --quick         # smoke test: 1 round of 3 s (+1 s warm-up)
#   bench/compare.sh --help          # every option
#
# Servers (bench/nginx/*.conf are the nginx configs; bench/README.md explains the choice):
#   nginx-204      answers 204 without reading the body: the ceiling of a minimal responder
#   nginx-logging  reads each body and appends it to a buffered access log, then 204: the
#                  classic pixel collector
#   cartwatch      build/release/cartwatch, one I/O thread, a fresh data dir, fsync = false
#
# Runs, servers alternating within each round, median over rounds:
#   1. one message per request, closed loop            (all three servers)
#   2. batches of --batch messages, closed loop         (cartwatch, nginx-logging)
#   3. one message per request, open loop at half of that server's own median rate of 1.
#      and nginx-logging at Cartwatch's rate of 3. too, the reference for its p99 target
#   Each run also records the server's CPU time (% of its core, and per message).
#
# Needs: Debian (installs nginx-light and libnginx-mod-http-echo with apt-get when missing,
# through sudo when not root), cmake and the build dependencies of the project, node. The
# system nginx service is never started, stopped or reconfigured: every nginx here is a
# private process (-p <temp dir> -c <generated config>) killed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START_DIR=$PWD
cd "$ROOT"

COMMAND_LINE="bench/compare.sh"
for arg in "$@"; do COMMAND_LINE+=" $(printf '%q' "$arg")"; done

usage() {
  cat <<'EOF'
Usage: bench/compare.sh [options]

  --quick            smoke test: 1 round, 3 s runs, 1 s warm-up (explicit options still win)
  --rounds N         rounds; each reported number is the median over them (default 3)
  --duration S       measured seconds of each run (default 10)
  --warmup S         seconds of load before measuring, each run (default 2)
  --connections N    keep-alive connections of the load generator (default 64)
  --batch N          messages per request in the batch runs (default 50)
  --visitors N       distinct visitors in the workload (default 100000)
  --seed N           workload seed (default 42)
  --server-cpu C     core the server is pinned to (default 0)
  --client-cpu C     core the load generator is pinned to (default 1)
  --out FILE         where to write the report (default bench/RESULTS.md)
  --loadgen PATH     load generator (default build/release/cartwatch-loadgen)
  --no-build         do not run `cmake --workflow --preset release` first
  --keep             keep the temp dir (configs, logs, loadgen output) for inspection
  -h, --help         this text
EOF
}

QUICK=0 BUILD=1 KEEP=0
ROUNDS="" DURATION="" WARMUP=""
CONNECTIONS=64 BATCH=50 VISITORS=100000 SEED=42 SERVER_CPU=0 CLIENT_CPU=1
OUT="bench/RESULTS.md"
LOADGEN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --warmup) WARMUP=${2:?--warmup needs a value}; shift ;;
    --connections) CONNECTIONS=${2:?--connections needs a value}; shift ;;
    --batch) BATCH=${2:?--batch needs a value}; shift ;;
    --visitors) VISITORS=${2:?--visitors needs a value}; shift ;;
    --seed) SEED=${2:?--seed needs a value}; shift ;;
    --server-cpu) SERVER_CPU=${2:?--server-cpu needs a value}; shift ;;
    --client-cpu) CLIENT_CPU=${2:?--client-cpu needs a value}; shift ;;
    --out) OUT=${2:?--out needs a value}; shift ;;
    --loadgen) LOADGEN=${2:?--loadgen needs a value}; shift ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$START_DIR/$1" ;; esac; }
[ "$OUT" = bench/RESULTS.md ] || OUT=$(abspath "$OUT")
[ -z "$LOADGEN" ] || LOADGEN=$(abspath "$LOADGEN")
if [ "$QUICK" = 1 ]; then
  : "${ROUNDS:=1}" "${DURATION:=3}" "${WARMUP:=1}"
else
  : "${ROUNDS:=3}" "${DURATION:=10}" "${WARMUP:=2}"
fi
for v in ROUNDS DURATION CONNECTIONS BATCH VISITORS SEED SERVER_CPU CLIENT_CPU; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "compare.sh: ${v,,} must be a whole number" >&2; exit 2; }
done
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "compare.sh: warmup must be a whole number" >&2; exit 2; }
[ "$ROUNDS" -ge 1 ] && [ "$DURATION" -ge 1 ] || { echo "compare.sh: rounds and duration must be >= 1" >&2; exit 2; }

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------------------------------
# 1. Tools: nginx with the echo module, node, curl.

NGINX_ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
APT_UPDATED=0

has_candidate() {  # has_candidate PKG: apt knows an installable version of PKG
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [ -n "$c" ] && [ "$c" != "(none)" ]
}

apt_install() {  # apt_install PKG...: apt-get update once when a package is unknown
  local p
  for p in "$@"; do
    if ! has_candidate "$p" && [ "$APT_UPDATED" = 0 ]; then
      log "apt-get update"
      as_root apt-get update -qq
      APT_UPDATED=1
    fi
  done
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_tools() {
  local want=()
  if ! command -v nginx >/dev/null 2>&1; then
    if ! has_candidate nginx-light && [ "$APT_UPDATED" = 0 ]; then
      log "apt-get update"
      as_root apt-get update -qq
      APT_UPDATED=1
    fi
    if has_candidate nginx-light; then want+=(nginx-light); else want+=(nginx); fi
  fi
  [ -f "$NGINX_ECHO_MODULE" ] || want+=(libnginx-mod-http-echo)
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v curl >/dev/null 2>&1 || want+=(curl)
  command -v taskset >/dev/null 2>&1 || want+=(util-linux)
  if [ ${#want[@]} -gt 0 ]; then apt_install "${want[@]}"; fi
  command -v nginx >/dev/null 2>&1 || die "nginx is not installed"
  [ -f "$NGINX_ECHO_MODULE" ] || die "the nginx echo module ($NGINX_ECHO_MODULE) is not installed"
}

ensure_tools

NPROC=$(nproc)
[ "$SERVER_CPU" -lt "$NPROC" ] && [ "$CLIENT_CPU" -lt "$NPROC" ] ||
  die "cores $SERVER_CPU and $CLIENT_CPU must exist (this machine has $NPROC)"
[ "$SERVER_CPU" != "$CLIENT_CPU" ] || log "warning: server and load generator share core $SERVER_CPU"

# ---------------------------------------------------------------------------------------
# 2. Build.

if [ "$BUILD" = 1 ]; then
  log "cmake --workflow --preset release"
  cmake --workflow --preset release >&2
fi
CARTWATCH=$ROOT/build/release/cartwatch
: "${LOADGEN:=$ROOT/build/release/cartwatch-loadgen}"
[ -x "$CARTWATCH" ] || die "$CARTWATCH is missing (build with: cmake --workflow --preset release)"
[ -x "$LOADGEN" ] || die "$LOADGEN is missing (build with: cmake --workflow --preset release)"

# ---------------------------------------------------------------------------------------
# 3. Servers. One at a time; SERVER_PID is the one running.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cartwatch-compare.XXXXXX")
RAW=$WORK/raw.jsonl
: > "$RAW"
SERVER_PID="" LOADGEN_PID=""

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid=$SERVER_PID i
  SERVER_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "server $pid did not stop in 15 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  if [ -n "$LOADGEN_PID" ]; then kill -TERM "$LOADGEN_PID" 2>/dev/null || true; wait "$LOADGEN_PID" 2>/dev/null || true; fi
  stop_server
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)
core_ticks() {  # busy ticks of the server's core: user, nice, system, irq, softirq (the
  # kernel charges the softirq work of a task's packets to that task too)
  awk -v c="cpu$SERVER_CPU" '$1 == c {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}
server_ticks() {  # user + system ticks of the server process and its children (nginx worker)
  local p t=0 v
  for p in "$SERVER_PID" $(pgrep -P "$SERVER_PID" || true); do
    v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

free_port() {
  node -e 'const s = require("net").createServer();
           s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_http PORT: until the server answers a POST with 2xx (10 s at most).
wait_http() {
  local port=$1 i code
  for ((i = 0; i < 100; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -u bench-write-key: \
      -H 'Content-Type: application/json' \
      -d '{"type":"track","event":"Ready Check","anonymousId":"compare-sh"}' \
      "http://127.0.0.1:$port/v1/track" || true)
    [[ $code == 2* ]] && return 0
    sleep 0.1
  done
  return 1
}

start_nginx() {  # start_nginx NAME DIR PORT
  local name=$1 dir=$2 port=$3
  sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" "$ROOT/bench/nginx/$name.conf" > "$dir/nginx.conf"
  taskset -c "$SERVER_CPU" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
    > "$dir/stdout.log" 2>&1 &
  SERVER_PID=$!
  if ! wait_http "$port"; then
    cat "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null || true
    die "$name did not start on port $port"
  fi
}

start_cartwatch() {  # start_cartwatch DIR PORT
  local dir=$1 port=$2 i
  cat > "$dir/cartwatch.toml" <<EOF
# Generated by bench/compare.sh
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:0"
io_threads = 1
shutdown_grace = "1s"

[storage]
data_dir = "$dir/data"
fsync = false

[[sites]]
name = "bench"
write_key = "bench-write-key"
secret_key = "bench-secret-key"
rate_limit = 0

[templates]
dir = "$ROOT/config/templates"
EOF
  # As shipped: the example config's rules arm their timers with the messages (firing is
  # measured apart, bench/rules.md), the metrics are on.
  cat "$ROOT/bench/rules.toml" >> "$dir/cartwatch.toml"
  taskset -c "$SERVER_CPU" "$CARTWATCH" --config "$dir/cartwatch.toml" \
    > "$dir/stdout.log" 2> "$dir/stderr.log" &
  SERVER_PID=$!
  for ((i = 0; i < 300; i++)); do
    grep -q 'listening' "$dir/stdout.log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'listening' "$dir/stdout.log" 2>/dev/null || ! wait_http "$port"; then
    cat "$dir/stdout.log" "$dir/stderr.log" >&2 2>/dev/null || true
    die "cartwatch did not start on port $port"
  fi
}

# one_run SERVER SCENARIO ROUND BATCH RATE: start SERVER, load it, stop it, append one line
# {"scenario","server","round",...,"loadgen":<the loadgen's JSON>} to $RAW.
one_run() {
  local server=$1 scenario=$2 round=$3 batch=$4 rate=$5
  local dir port json logged=null
  dir=$(mktemp -d "$WORK/$scenario-$server-r$round.XXXX")
  port=$(free_port)
  case "$server" in
    cartwatch) start_cartwatch "$dir" "$port" ;;
    *) start_nginx "$server" "$dir" "$port" ;;
  esac
  local ticks0 srv0 t0 ticks1 srv1 t1 other
  ticks0=$(core_ticks) srv0=$(server_ticks) t0=$(date +%s%N)
  taskset -c "$CLIENT_CPU" "$LOADGEN" --host 127.0.0.1 --port "$port" \
    --write-key bench-write-key --connections "$CONNECTIONS" --threads 1 \
    --duration "$DURATION" --warmup "$WARMUP" --rate "$rate" --batch "$batch" \
    --visitors "$VISITORS" --seed "$SEED" --json > "$dir/loadgen.out" 2> "$dir/loadgen.err" &
  LOADGEN_PID=$!
  local rc=0
  wait "$LOADGEN_PID" || rc=$?
  LOADGEN_PID=""
  ticks1=$(core_ticks) srv1=$(server_ticks) t1=$(date +%s%N)
  # CPU time spent on the server's core by anything but the server (a build, another
  # benchmark), in % of that core over the run: it should be ~0. Approximate (ticks).
  other=$(( ((ticks1 - ticks0) - (srv1 - srv0)) * 100 * 1000000000 / (CLK_TCK * (t1 - t0)) ))
  [ "$other" -ge 0 ] || other=0
  # The server's own CPU time, % of one core over the run (warm-up included).
  local busy=$(( (srv1 - srv0) * 100 * 1000000000 / (CLK_TCK * (t1 - t0)) ))
  stop_server
  json=$(grep '^{' "$dir/loadgen.out" | tail -n 1 || true)
  if [ -z "$json" ]; then
    cat "$dir/loadgen.out" "$dir/loadgen.err" >&2 || true
    die "cartwatch-loadgen printed no JSON line against $server (exit $rc)"
  fi
  [ "$rc" = 0 ] || log "warning: cartwatch-loadgen exited $rc against $server: $(tail -n 3 "$dir/loadgen.err" | tr '\n' ' ')"
  if [ "$server" = nginx-logging ]; then
    # Proof that nginx-logging really read and kept the bodies: one JSON body per line.
    logged=$(wc -l < "$dir/body.log")
    head -c 1 "$dir/body.log" | grep -q '{' || die "nginx-logging: body.log does not hold JSON bodies"
  fi
  node -e '
    const [scenario, server, round, batch, rate, logged, other, busy, json] = process.argv.slice(1);
    const loadgen = JSON.parse(json);
    console.log(JSON.stringify({scenario, server, round: +round, batch: +batch,
      rate: +rate, logged_bodies: logged === "null" ? null : +logged,
      other_cpu_pct: +other, server_cpu_pct: +busy, loadgen}));' \
    "$scenario" "$server" "$round" "$batch" "$rate" "$logged" "$other" "$busy" "$json" >> "$RAW"
  node -e '
    const r = JSON.parse(process.argv[1]);
    const non2xx = Object.entries(r.status || {}).filter(([k]) => !k.startsWith("2"))
      .reduce((a, [, v]) => a + v, 0) + (r.transport_errors || 0);
    console.error(`    ${Math.round(r.rps)} req/s, ${Math.round(r.mps)} msg/s, ` +
      `p50 ${r.latency_us.p50} us, p99 ${r.latency_us.p99} us, non-2xx ${non2xx}` +
      (process.argv[2] !== "null" ? `, body.log lines ${process.argv[2]}` : "") +
      `, server CPU ${process.argv[4]}% of its core, other CPU on it ${process.argv[3]}%`);' \
    "$json" "$logged" "$other" "$busy"
  [ "$other" -le 5 ] || log "warning: something else used ${other}% of core $SERVER_CPU during this run"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

# ---------------------------------------------------------------------------------------
# 4. The runs.

# cpu_busy: percent of all cores busy over one second (other work on the machine skews
# every number; it is recorded in the report).
cpu_busy() {
  local a b
  a=$(head -n 1 /proc/stat); sleep 1; b=$(head -n 1 /proc/stat)
  node -e '
    const f = s => s.trim().split(/\s+/).slice(1).map(Number);
    const [a, b] = [f(process.argv[1]), f(process.argv[2])];
    const d = b.map((x, i) => x - a[i]), total = d.reduce((x, y) => x + y, 0);
    console.log(Math.round(100 * (1 - (d[3] + d[4]) / Math.max(1, total))));' "$a" "$b"
}
BINARIES_BEFORE=$(sha256sum "$CARTWATCH" "$LOADGEN")
START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_BEFORE=$(cpu_busy)
if [ "$BUSY_BEFORE" -gt 10 ]; then
  log "warning: the machine is already ${BUSY_BEFORE}% busy before the benchmark; the numbers will be skewed"
  ps -eo pcpu,pid,comm --sort=-pcpu | head -n 6 >&2 || true
fi
SERVERS=(nginx-204 nginx-logging cartwatch)
BATCH_SERVERS=(nginx-logging cartwatch)
EST=$(( ROUNDS * 9 * (DURATION + WARMUP + 2) ))
log "work dir $WORK; about $((EST / 60)) min $((EST % 60)) s of runs"

for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${SERVERS[@]}"; do
    log "single, closed loop: $s (round $r/$ROUNDS)"
    one_run "$s" single "$r" 1 0
  done
done
for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${BATCH_SERVERS[@]}"; do
    log "batch of $BATCH, closed loop: $s (round $r/$ROUNDS)"
    one_run "$s" batch "$r" "$BATCH" 0
  done
done
declare -A HALF_RATE
for s in "${SERVERS[@]}"; do
  HALF_RATE[$s]=$(node -e '
    const fs = require("fs");
    const [raw, server] = process.argv.slice(1);
    const v = fs.readFileSync(raw, "utf8").split("\n").filter(Boolean).map(JSON.parse)
      .filter(x => x.scenario === "single" && x.server === server).map(x => x.loadgen.rps)
      .sort((a, b) => a - b);
    const m = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    console.log(Math.max(1, Math.round(m / 2)));' "$RAW" "$s")
done
for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${SERVERS[@]}"; do
    log "single, open loop at ${HALF_RATE[$s]} req/s (half of max): $s (round $r/$ROUNDS)"
    one_run "$s" open "$r" 1 "${HALF_RATE[$s]}"
  done
  # The same offered rate as Cartwatch's half load: what the machine and the load
  # generator alone give a server at that rate (the reference for the p99 target).
  log "single, open loop at ${HALF_RATE[cartwatch]} req/s (Cartwatch's half of max): nginx-logging (round $r/$ROUNDS)"
  one_run nginx-logging open-same "$r" 1 "${HALF_RATE[cartwatch]}"
done

# ---------------------------------------------------------------------------------------
# 5. The report.

LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
BINARIES_NOTE=""
if [ "$(sha256sum "$CARTWATCH" "$LOADGEN")" != "$BINARIES_BEFORE" ]; then
  BINARIES_NOTE="**Warning: build/release/cartwatch or cartwatch-loadgen was rebuilt while the benchmark ran; these results mix two builds.**"
  log "warning: the binaries changed during the run"
fi
CPU_MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
MEMORY=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
OS=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")
[ -f /etc/debian_version ] && OS="$OS ($(cat /etc/debian_version))"
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //')
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || COMMIT="$COMMIT (working tree with uncommitted changes)"

TABLES=$(node - "$RAW" "$ROUNDS" "$DURATION" "$WARMUP" "$CONNECTIONS" "$BATCH" <<'EOF'
const fs = require("fs");
const [raw, rounds, duration, warmup, connections, batch] = process.argv.slice(2);
const runs = fs.readFileSync(raw, "utf8").split("\n").filter(Boolean).map(JSON.parse);
const median = v => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const non2xx = l => Object.entries(l.status || {}).filter(([k]) => !k.startsWith("2"))
  .reduce((a, [, v]) => a + v, 0) + (l.transport_errors || 0);
const int = x => Math.round(x).toLocaleString("en-US");
const ms = us => (us / 1000).toFixed(2);
function stats(scenario, server) {
  const rs = runs.filter(r => r.scenario === scenario && r.server === server);
  if (!rs.length) return null;
  const m = f => median(rs.map(r => f(r.loadgen)));
  return {
    n: rs.length, rate: median(rs.map(r => r.rate)),
    rps: m(l => l.rps), mps: m(l => l.mps),
    p50: m(l => l.latency_us.p50), p99: m(l => l.latency_us.p99),
    p999: m(l => l.latency_us.p999), non2xx: rs.reduce((a, r) => a + non2xx(r.loadgen), 0),
    cpu: median(rs.map(r => r.server_cpu_pct ?? NaN)),
  };
}
const out = [];
// rows: [server, scenario] pairs. Server CPU: % of its core over the run; us/msg: that
// CPU time per message answered.
function table(title, rows, offered) {
  out.push(`### ${title}`, "");
  out.push(`| server |${offered ? " offered req/s |" : ""} req/s | msg/s | p50 ms | p99 ms | p99.9 ms | non-2xx | server CPU % | CPU us/msg |`);
  out.push(`| --- |${offered ? " ---: |" : ""} ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const [s, scenario] of rows) {
    const st = stats(scenario, s);
    if (!st) continue;
    const perMsg = Number.isFinite(st.cpu) && st.mps > 0 ? (st.cpu * 1e4 / st.mps).toFixed(1) : "-";
    out.push(`| ${s} |${offered ? ` ${int(st.rate)} |` : ""} ${int(st.rps)} | ${int(st.mps)} | ` +
      `${ms(st.p50)} | ${ms(st.p99)} | ${ms(st.p999)} | ${st.non2xx} | ` +
      `${Number.isFinite(st.cpu) ? Math.round(st.cpu) : "-"} | ${perMsg} |`);
  }
  out.push("");
}
const all = ["nginx-204", "nginx-logging", "cartwatch"];
const each = `${connections} connections, ${duration} s after ${warmup} s warm-up, median of ${rounds}`;
table(`One message per request, closed loop (${each})`, all.map(s => [s, "single"]), false);
table(`Batches of ${batch} messages, closed loop (${each})`,
      ["nginx-logging", "cartwatch"].map(s => [s, "batch"]), false);
table(`One message per request, open loop at half of each server's max req/s (${each})`,
      all.map(s => [s, "open"]), true);
table(`One message per request, open loop at Cartwatch's half of max req/s (${each})`,
      [["nginx-logging", "open-same"], ["cartwatch", "open"]], true);

const cs = stats("single", "cartwatch"), ns = stats("single", "nginx-logging");
const cb = stats("batch", "cartwatch"), co = stats("open", "cartwatch");
const ratio = cs && ns ? cs.rps / ns.rps : NaN;
out.push(`Cartwatch / nginx-logging, one message per request: **${ratio.toFixed(2)}**` +
  ` (${int(cs.rps)} / ${int(ns.rps)} req/s)`, "");
const verdict = (ok, st) => st.non2xx > 0 ? `FAIL (${st.non2xx} non-2xx)` : ok ? "PASS" : "FAIL";
out.push("### Targets (Cartwatch)", "", "| target | measured | result |", "| --- | --- | --- |");
out.push(`| one message per request: req/s >= 0.8 x nginx-logging | ${ratio.toFixed(2)} x | ${verdict(ratio >= 0.8, cs)} |`);
out.push(`| batches of ${batch}: msg/s >= 400,000 | ${int(cb.mps)} msg/s | ${verdict(cb.mps >= 400000, cb)} |`);
out.push(`| p99 at half of max req/s <= 2 ms | ${ms(co.p99)} ms at ${int(co.rate)} req/s | ${verdict(co.p99 <= 2000, co)} |`);
out.push("");
const logged = runs.filter(r => r.server === "nginx-logging");
const short = logged.filter(r => r.logged_bodies < r.loadgen.requests);
out.push(`nginx-logging body.log check: ${logged.length} runs, ` +
  (short.length ? `**${short.length} logged fewer bodies than requests answered**`
                : "each logged at least as many JSON bodies as requests measured (warm-up included)") + ".");
const others = runs.map(r => r.other_cpu_pct || 0), disturbed = others.filter(x => x > 5).length;
out.push("", `Other work on the server's core (CPU time not spent by the server, % of the core): ` +
  `at most ${Math.max(...others)}% in a run` + (disturbed
    ? `; **${disturbed} run(s) over 5 %: something else ran during the benchmark, run it again on an idle machine**.`
    : "; the machine was otherwise idle."));
console.log(out.join("\n"));
EOF
)

mkdir -p "$(dirname "$OUT")"
{
  echo "# Ingest benchmark: Cartwatch vs nginx"
  echo
  echo "Written by \`bench/compare.sh\`; \`bench/README.md\` says what is measured and how to read it."
  echo
  echo "- Machine: $CPU_MODEL, $NPROC cores, $MEMORY memory, kernel $(uname -r), $OS"
  echo "- Date: $START_DATE; CPU busy in the second before the first run: ${BUSY_BEFORE}% (load average $LOADAVG at the start, $LOADAVG_END at the end)"
  echo "- Commit: $COMMIT"
  echo "- Command: \`$COMMAND_LINE\`"
  echo "- Servers pinned to core $SERVER_CPU (\`taskset -c $SERVER_CPU\`, one worker / I/O thread), load generator to core $CLIENT_CPU (one thread); loopback; $NGINX_VERSION; Cartwatch with fsync = false, the example config's rules (bench/rules.toml), metrics on and a fresh data dir each run"
  echo "- Each number is the median over $ROUNDS round(s) (non-2xx: the total); servers alternate within a round and each run starts its server afresh"
  echo
  echo "## Results"
  echo
  [ -z "$BINARIES_NOTE" ] || { echo "$BINARIES_NOTE"; echo; }
  echo "$TABLES"
  echo
  # The hand-written analysis of what limits Cartwatch now (profiles, figures), kept in
  # its own file so that every run carries it next to the numbers it explains.
  if [ -f bench/limits.md ]; then
    cat bench/limits.md
    echo
  fi
  # The rule engine's figures (measured by hand with cartwatch-timer-bench and ab.sh).
  if [ -f bench/rules.md ]; then
    cat bench/rules.md
    echo
  fi
  # Webhook delivery's and the metrics' figures (cartwatch-delivery-bench and ab.sh, by hand),
  # and round 2 of the ingest work (bench/round2.md).
  for part in bench/deliveries.md bench/metrics.md bench/round2.md; do
    if [ -f "$part" ]; then
      cat "$part"
      echo
    fi
  done
  echo "## Raw results"
  echo
  echo "<details><summary>One JSON line per run (the load generator's output in \`loadgen\`)</summary>"
  echo
  echo '```json'
  cat "$RAW"
  echo '```'
  echo
  echo "</details>"
} > "$OUT"

echo
echo "$TABLES"
echo
log "wrote $OUT"
