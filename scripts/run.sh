#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the tracker and the release
# binary that serves it, serves the demo shop on http://localhost:8000 and runs Cartwatch with the
# example config (config/cartwatch.toml) on an embedded RocksDB in ./data. Extra arguments
# go to cartwatch (e.g. --listen 127.0.0.1:8080). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --demo
# The tracker first: the build embeds it into the binary (GET /cartwatch.js).
npm ci --prefix sdk-js --no-audit --no-fund --loglevel=error
npm run --prefix sdk-js --silent build
cmake --workflow --preset release
node sdk-js/demo/serve.mjs --port 8000 --collector http://localhost:8080 --write-key demo-write-key &
demo=$!
trap 'kill "$demo" 2>/dev/null || true' EXIT
build/release/cartwatch --config config/cartwatch.toml "$@"
