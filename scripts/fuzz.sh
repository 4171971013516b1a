#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, preset fuzz: clang, ASan + UBSan) and runs
# each of them; tests/fuzz/README.md describes the harnesses.
#
#   scripts/fuzz.sh [SECONDS]        each harness: its seed corpus and regression inputs once,
#                                    then SECONDS (default 60) of fuzzing from a temporary copy
#                                    of the seed corpus (the repository is never written)
#   scripts/fuzz.sh --replay         only the first part: seeds and regressions once (fast)
#   scripts/fuzz.sh ... --no-build   use build/fuzz as it is
#   scripts/fuzz.sh ... HARNESS...   only these (fuzz_http fuzz_query fuzz_ingest fuzz_gzip
#                                    fuzz_config)
#
# Exits 1 when a harness crashes, leaks, hangs or trips a sanitizer or an invariant; the
# inputs that did so are listed (and kept, with the logs, in the temporary directory it
# prints). Save a minimised one under tests/fuzz/regressions/<harness>/ (README.md, "When a
# harness finds something").
# CARTWATCH_FUZZ_JOBS: parallel compile jobs (default 2). The build runs under `nice`.
# CARTWATCH_FUZZ_KEEP=1: keep the temporary directory (logs, grown corpora) after a clean run.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(fuzz_http fuzz_query fuzz_ingest fuzz_gzip fuzz_config)
declare -A DICT=([fuzz_http]=http [fuzz_query]=query [fuzz_ingest]=json [fuzz_config]=toml)

seconds=60
replay=0
build=1
harnesses=()
for arg in "$@"; do
  case "$arg" in
    --replay) replay=1 ;;
    --no-build) build=0 ;;
    fuzz_*) harnesses+=("$arg") ;;
    ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS|--replay] [--no-build] [HARNESS...]" >&2; exit 2 ;;
    *) seconds="$arg" ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${ALL[@]}")

if [ "$build" = 1 ]; then
  if ! command -v clang++ >/dev/null; then
    echo "fuzz: clang++ is missing (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
  fi
  start=$(date +%s)
  nice -n 19 cmake --preset fuzz >/dev/null
  nice -n 19 cmake --build --preset fuzz --parallel "${CARTWATCH_FUZZ_JOBS:-2}" \
    --target "${harnesses[@]}"
  echo "fuzz: build took $(( $(date +%s) - start )) s"
fi

bin=build/fuzz/tests/fuzz
src=tests/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/cartwatch-fuzz.XXXXXX")
failed=()

for name in "${harnesses[@]}"; do
  log="$work/$name.log"
  flags=(-timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$name-")
  [ -n "${DICT[$name]:-}" ] && flags+=(-dict="$src/dict/${DICT[$name]}.dict")

  # 1. Every seed and every past finding, once each (--replay stops here).
  mapfile -t files < <(find "$src/corpus/$name" "$src/regressions/$name" -type f 2>/dev/null | sort)
  if [ ${#files[@]} -gt 0 ]; then
    if "$bin/$name" "${flags[@]}" "${files[@]}" >"$work/$name.replay.log" 2>&1; then
      echo "fuzz: $name: ${#files[@]} seed and regression inputs replayed, ok"
    else
      # libFuzzer stops at the first input that fails: try each, to list them all.
      echo "fuzz: $name: FAILED on seed or regression inputs:"
      for f in "${files[@]}"; do
        "$bin/$name" "$f" >"$work/one.log" 2>&1 && continue
        flog="$work/$name.replay-$(basename "$f").log"
        mv "$work/one.log" "$flog"
        echo "  $f:"
        grep -aE "runtime error|ERROR: (Address|Leak)|\*\*\* fuzz invariant|\*\*\* detail" "$flog" |
          head -3 | cut -c1-240 | sed 's/^/    /'
      done
      failed+=("$name")
    fi
  fi
  [ "$replay" = 1 ] && continue

  # 2. Fuzzing, from a copy of the seed corpus (the regressions were just replayed).
  corpus="$work/corpus-$name"
  mkdir -p "$corpus"
  cp "$src/corpus/$name/"* "$corpus/"
  status=0
  "$bin/$name" "${flags[@]}" -max_total_time="$seconds" "$corpus" >"$log" 2>&1 || status=$?
  # libFuzzer's last status line ("#N DONE cov: C ft: F corp: K/S lim: L exec/s: E rss: R")
  # and its average speed.
  last=$(grep -aE "^#[0-9]+[[:space:]]+[A-Z]+ +cov:" "$log" | tail -1 | tr -s ' \t' ' ' | sed "s/ L: .*//" || true)
  speed=$(grep -aoE "stat::average_exec_per_sec: +[0-9]+" "$log" | grep -oE "[0-9]+$" || true)
  echo "fuzz: $name: ${seconds} s: ${last:-no stats}${speed:+ (average $speed exec/s)}"
  grep -aE "^NOTE \(UTF-8" "$log" | grep -aE "JSON bodies" | sed 's/^/  /' || true
  artifacts=$(ls "$work/$name-"* 2>/dev/null || true)
  if [ "$status" != 0 ] || [ -n "$artifacts" ]; then
    echo "fuzz: $name: FOUND SOMETHING (exit $status; log $log)"
    grep -aE "runtime error|ERROR: |\*\*\* fuzz invariant|\*\*\* detail|SUMMARY: |^    #[0-9] " \
      "$log" | head -20 | cut -c1-300 | sed 's/^/  /'
    for a in $artifacts; do echo "  input: $a ($(stat -c %s "$a") bytes)"; done
    [[ " ${failed[*]} " == *" $name "* ]] || failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs in $work)"
  exit 1
fi
if [ -n "${CARTWATCH_FUZZ_KEEP:-}" ]; then
  echo "fuzz: ok (logs and grown corpora in $work)"
else
  rm -rf "$work"
  echo "fuzz: ok"
fi
