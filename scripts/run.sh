#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the release binary and
# runs Cartwatch with the example config (config/cartwatch.toml) on an embedded RocksDB in
# ./data. Extra arguments go to cartwatch (e.g. --listen 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset release
exec build/release/cartwatch --config config/cartwatch.toml "$@"
