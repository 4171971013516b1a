#!/usr/bin/env bash
# Memory under many visitors: Cartwatch as shipped (bench/rules.toml's rules, metrics on)
# under batches of 50 from --visitors distinct visitors, closed loop for --duration; prints
# the server's resident memory every 10 s and at the end, with the records cached and the
# dedup index's ids, the records' bytes and RocksDB's memtables and block cache (its
# /metrics). --order sequential (the default) sends each visitor one message before any a
# second (N messages touch min(N, V) visitors); random draws them uniformly (about
# V * (1 - e^(-N/V))). About 10% of the messages are Product Added (carts).
#
#   bench/rss.sh [--visitors 10000000] [--duration 240] [--batch 50] [--order sequential]
#
# Release build expected (build/release/cartwatch, cartwatch-loadgen). Server on core 0,
# load generator on core 1, a fresh data dir, fsync off (as compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/bench/bench_config.sh"
VISITORS=10000000 DURATION=240 BATCH=50 ORDER=sequential
while [ $# -gt 0 ]; do
  case "$1" in
    --visitors) VISITORS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --order) ORDER=$2; shift ;;
    *) echo "rss.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
BIN=$ROOT/build/release/cartwatch LOADGEN=$ROOT/build/release/cartwatch-loadgen
for b in "$BIN" "$LOADGEN"; do [ -x "$b" ] || { echo "rss.sh: no $b" >&2; exit 1; }; done
WORK=$(mktemp -d)
SERVER_PID=""
trap '[ -z "$SERVER_PID" ] || kill -9 "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port) admin=$(free_port)
write_bench_config "$WORK/cartwatch.toml" "$port" "127.0.0.1:$admin" "$WORK/data"
cat "$ROOT/bench/rules.toml" >> "$WORK/cartwatch.toml"
taskset -c 0 "$BIN" --config "$WORK/cartwatch.toml" > "$WORK/out.log" 2> "$WORK/err.log" &
SERVER_PID=$!
for ((i = 0; i < 100; i++)); do grep -q listening "$WORK/out.log" && break; sleep 0.1; done
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %d MiB  ", $1, $2 / 1024}' "/proc/$SERVER_PID/status"; }
taskset -c 1 "$LOADGEN" --host 127.0.0.1 --port "$port" --write-key bench-write-key \
  --connections 64 --threads 1 --duration "$DURATION" --warmup 0 --batch "$BATCH" \
  --visitors "$VISITORS" --visitor-order "$ORDER" --json 2> "$WORK/loadgen.err" | grep '^{' | tail -n 1 > "$WORK/loadgen.json" &
LOADGEN_PID=$!
start=$SECONDS
while kill -0 "$LOADGEN_PID" 2>/dev/null; do
  sleep 10
  echo "t=$((SECONDS - start))s $(rss)"
done
wait "$LOADGEN_PID" || true
metrics=$(curl -s "http://127.0.0.1:$admin/metrics")
echo "end: $(rss)"
# Resident memory by kind of mapping: malloc's main heap, anonymous (thread arenas, large
# allocations), files (the binary, libraries, RocksDB's mapped files).
awk '/^[0-9a-f]+-[0-9a-f]+ / {kind = ($6 == "[heap]") ? "heap" : ($6 == "" ? "anonymous" : "files")}
     /^Rss:/ {rss[kind] += $2}
     END {printf "resident: heap %d MiB, anonymous %d MiB, files %d MiB\n", rss["heap"] / 1024, rss["anonymous"] / 1024, rss["files"] / 1024}' \
  "/proc/$SERVER_PID/smaps"
echo "$metrics" | grep -E '^cartwatch_(records_cached|records_cached_bytes|records_unwritten|dedup_ids|rocksdb_block_cache_bytes) '
echo "$metrics" | awk '/^cartwatch_rocksdb_memtable_bytes/ {s += $2; if ($2 >= 1048576) {sub(/.*cf="/, "", $1); sub(/".*/, "", $1); parts = parts sprintf(" %s %d", $1, $2 / 1048576)}}
                     END {printf "RocksDB memtables %d MiB (MiB by family:%s)\n", s / 1048576, parts}'
node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
         const v=Number(process.argv[2]), n=j.messages;
         const touched=process.argv[3]==="sequential"?Math.min(n,v):Math.round(v*(1-Math.exp(-n/v)));
         console.log(`messages ${n} (${Math.round(j.mps)} msg/s), visitors touched about ${touched} of ${v}, Product Added about ${Math.round(n/10)}`);' \
  "$WORK/loadgen.json" "$VISITORS" "$ORDER"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
