#!/usr/bin/env bash
# Installs the Debian packages Cartwatch builds and tests with. Idempotent: a package
# already installed is left alone, and apt is not touched when nothing is missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail

pkgs=(cmake ninja-build g++ pkg-config
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
      librocksdb-dev libsimdjson-dev libtomlplusplus-dev libkainjow-mustache-dev
      libssl-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(nodejs curl)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" == "--test" ]] && ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: installing npm"
  "${sudo_cmd[@]:-}" apt-get install -y -qq --no-install-recommends npm
fi
