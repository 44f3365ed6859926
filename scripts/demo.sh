#!/usr/bin/env bash
# The main demo: builds subctx, runs the example server (expensive start-up,
# then snapshot) and the example client (map + first call), and prints both
# times side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target cities_server cities_client subctx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo
./build/examples/cities_server "$work/cities.img"
./build/tools/subctx inspect "$work/cities.img" | sed -n -e '/^exports/,/^$/p' -e '/^totals/,$p'
echo
./build/examples/cities_client "$work/cities.img"
./build/examples/cities_client "$work/cities.img" | head -n 1 | sed 's/^client:/client (page cache warm):/'
