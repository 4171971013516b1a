#!/usr/bin/env bash
# Installs the Debian packages Cartwatch builds and tests with. Idempotent: a package that
# is already installed is left alone, and apt is not touched when nothing is missing.
# Usage: scripts/install-deps.sh [--demo | --test]
#   --demo adds Node.js and npm (the demo shop and the tracker's build);
#   --test adds those, Debian's chromium (the tracker's browser tests), clang with its
#   sanitizer and libFuzzer runtimes (scripts/fuzz.sh, run by scripts/test.sh when CI is set),
#   the openssl command (test certificates), and promtool and the prometheus server (the
#   metrics tests' checker and scraper) in build/tools.
set -euo pipefail

pkgs=(cmake ninja-build g++ pkg-config
      libboost1.81-dev libboost-json1.81-dev
      librocksdb-dev libsimdjson-dev libtomlplusplus-dev libkainjow-mustache-dev
      libssl-dev zlib1g-dev libgtest-dev libbenchmark-dev prometheus-cpp-dev
      tzdata)  # the time zones of quiet hours (rules/timezone.h)
want_node=0 want_browser=0
[[ "${1:-}" == "--demo" ]] && want_node=1
# openssl: the webhook tests make a test CA and certificates with it.
[[ "${1:-}" == "--test" ]] && want_node=1 want_browser=1 && pkgs+=(clang libclang-rt-14-dev openssl)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere on the machine; only install Debian's when there is none.
if ((want_node)); then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if ((want_browser)); then
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# promtool (Prometheus's own checker of /metrics and of alerting rules) and the prometheus
# server (the metrics test scrapes Cartwatch with it), from Debian's prometheus package:
# unpacked into build/tools rather than installed, since installing the package would also
# start a Prometheus server.
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
if ((want_browser)) && { [[ ! -x "$root_dir/build/tools/promtool" ]] ||
                         [[ ! -x "$root_dir/build/tools/prometheus" ]]; }; then
  echo "install-deps: unpacking promtool and prometheus from Debian's prometheus package into build/tools"
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  if ! (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null); then
    "${as_root[@]}" apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus)
  fi
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool ./usr/bin/prometheus
  mkdir -p "$root_dir/build/tools"
  mv "$tmp/usr/bin/promtool" "$root_dir/build/tools/promtool"
  mv "$tmp/usr/bin/prometheus" "$root_dir/build/tools/prometheus"
fi
