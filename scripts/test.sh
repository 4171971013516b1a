#!/usr/bin/env bash
# The README's second command (and all that .ci/run does): installs what is missing,
# builds every target with the debug preset (asserts on) and runs every test: GoogleTest
# unit and HTTP integration tests, and the end-to-end tests against the real binary
# (@segment/analytics-node, kill -9 crash safety, start-up and shutdown), and the tracker's
# tests (sdk-js: unit tests in Node, and in Debian's chromium against the real binary); when
# CI is set, also the unit and integration tests under ASan + UBSan and a minute of each
# libFuzzer harness (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The metrics tests check /metrics with promtool, which install-deps put in build/tools.
export CARTWATCH_REQUIRE_PROMTOOL=1
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
npm ci --prefix sdk-js --no-audit --no-fund --loglevel=error
npm run --prefix sdk-js --silent build
cmake --workflow --preset debug
ctest --preset debug "$@"
# On CI also: the unit and HTTP integration tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer (preset asan), and fuzzing (tests/fuzz/README.md: the seed
# corpus and every past finding, then 60 s of each harness; its clang build also checks the
# thread-safety annotations).
if [[ -n "${CI:-}" ]]; then
  cmake --workflow --preset asan
  ctest --preset asan -LE "e2e|sdk"
  scripts/fuzz.sh 60
fi
