#!/usr/bin/env bash
# The main demo: builds subctx, runs the example server (expensive start-up,
# then snapshot) and the example client (map + first call), and prints both
# times side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target cities_server cities_client pyeval_server pyeval_client subctx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Servers start with descriptors 0-2 only (scripts/without-inherited-fds).
without_inherited_fds=./scripts/without-inherited-fds
echo
"$without_inherited_fds" ./build/examples/cities_server "$work/cities.img"
./build/tools/subctx inspect "$work/cities.img" | sed -n -e '/^exports/,/^$/p' -e '/^totals/,$p'
echo
./build/examples/cities_client "$work/cities.img"
# sed reads the whole output (head would end the pipe early: SIGPIPE, and pipefail).
./build/examples/cities_client "$work/cities.img" | sed -n '1s/^client:/client (page cache warm):/p'
echo
# The same with an interpreter: CPython started once, then evaluated by a client.
"$without_inherited_fds" ./build/examples/pyeval_server "$work/pyeval.img"
./build/examples/pyeval_client "$work/pyeval.img" "statistics.mean([3, 1, 4, 1, 5])" \
  "re.findall(r'[a-z]+@[a-z.]+', 'ana@example.org, bo@test.io')" "Decimal(1) / 7" "1 / 0"
