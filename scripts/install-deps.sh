#!/usr/bin/env bash
# Installs what subctx needs to build, test and benchmark on Debian 12.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev          # libFuzzer target for the image reader
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  libxxhash-dev                     # xxh3 digests in the image format
  libsqlite3-dev liblua5.4-dev      # payloads used by tests and the demo
  libpython3.11-dev zlib1g-dev libzstd-dev libpcre2-dev   # the compatibility suite (tests/payloads)
  python3                           # bench/summarize.py, bench/payload_chart.py
  binutils                          # readelf, used by the format tests
  clang-format                      # the format_check test (.clang-format)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
