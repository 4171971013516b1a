#!/usr/bin/env bash
# A/B of two cartwatch binaries under the same load, alternating, on the same machine in
# one run: did a change make ingest slower? (bench/compare.sh measures against nginx.)
#
#   bench/ab.sh BEFORE_BINARY AFTER_BINARY [--rounds N] [--duration S] [--batch N]
#               [--before-toml FILE] [--after-toml FILE] [--before-env VAR=VALUE]
#               [--after-env VAR=VALUE]
#
# --before-toml/--after-toml append a TOML file to that side's config: the same binary with
# and without something, e.g. the example rules (bench/rules.toml):
#   bench/ab.sh build/release/cartwatch build/release/cartwatch --after-toml bench/rules.toml
# --before-env/--after-env set a CARTWATCH_* variable for that side (docs/config.md), e.g.
# the metrics off: --before-env CARTWATCH_SERVER_METRICS=false.
#
# Each round runs, for each binary in turn (which goes first alternates by round), a fresh
# data dir: one message per request, then batches of --batch messages, both closed loop
# with 64 connections, the server pinned to core 0 and build/release/cartwatch-loadgen to
# core 1 (as compare.sh does). Prints every run and the median of each (scenario, binary)
# in messages/s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/bench/bench_config.sh"
[ $# -ge 2 ] || { sed -n '2,20p' "$0"; exit 2; }
BEFORE=$(realpath "$1") AFTER=$(realpath "$2")
shift 2
ROUNDS=3 DURATION=10 WARMUP=2 BATCH=50 BEFORE_TOML="" AFTER_TOML="" BEFORE_ENV="" AFTER_ENV=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --before-toml) BEFORE_TOML=$2; shift ;;
    --after-toml) AFTER_TOML=$2; shift ;;
    --before-env) BEFORE_ENV=$2; shift ;;
    --after-env) AFTER_ENV=$2; shift ;;
    *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
LOADGEN=$ROOT/build/release/cartwatch-loadgen
for b in "$BEFORE" "$AFTER" "$LOADGEN"; do [ -x "$b" ] || { echo "ab.sh: no $b" >&2; exit 1; }; done
WORK=$(mktemp -d)
SERVER_PID=""
trap '[ -z "$SERVER_PID" ] || kill -9 "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

run() {  # run NAME BINARY BATCH [TOML] [VAR=VALUE]: prints messages/s
  local name=$1 bin=$2 batch=$3 toml=${4:-} envvar=${5:-} dir port
  dir=$(mktemp -d "$WORK/$name.XXXX")
  port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  write_bench_config "$dir/cartwatch.toml" "$port" 127.0.0.1:0 "$dir/data"
  [ -z "$toml" ] || cat "$toml" >> "$dir/cartwatch.toml"
  env ${envvar:+"$envvar"} taskset -c 0 "$bin" --config "$dir/cartwatch.toml" > "$dir/out.log" 2> "$dir/err.log" &
  SERVER_PID=$!
  for ((i = 0; i < 100; i++)); do grep -q listening "$dir/out.log" && break; sleep 0.1; done
  taskset -c 1 "$LOADGEN" --host 127.0.0.1 --port "$port" --write-key bench-write-key \
    --connections 64 --threads 1 --duration "$DURATION" --warmup "$WARMUP" --batch "$batch" \
    --json 2> "$dir/loadgen.err" | grep '^{' | tail -n 1 > "$dir/loadgen.json"
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
           const v=j.mps;
           console.log(Math.round(v));' "$dir/loadgen.json" "$batch"
}

declare -A RESULTS
for ((r = 1; r <= ROUNDS; r++)); do
  for scenario in single batch; do
    batch=1; [ "$scenario" = batch ] && batch=$BATCH
    # Which binary runs first alternates by round: the run after another is measurably
    # slower or faster (writeback of the last run's files), which would bias one side.
    sides="before after"; ((r % 2 == 0)) && sides="after before"
    for side in $sides; do
      bin=$BEFORE toml=$BEFORE_TOML envvar=$BEFORE_ENV
      [ "$side" = after ] && bin=$AFTER toml=$AFTER_TOML envvar=$AFTER_ENV
      v=$(run "$scenario-$side-$r" "$bin" "$batch" "$toml" "$envvar")
      echo "round $r $scenario $side: $v msg/s"
      RESULTS[$scenario-$side]+="$v "
    done
  done
done
for scenario in single batch; do
  for side in before after; do
    median=$(echo ${RESULTS[$scenario-$side]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "median $scenario $side: $median msg/s"
  done
done
