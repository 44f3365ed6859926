#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them: JSON per program
# (--benchmark_out) and each program's console output in the results folder,
# then a short table of ratios on stdout.  About 2-3 minutes on 2 vCPUs.
#
#   bench/run.sh [BUILD_DIR]          default BUILD_DIR: build-bench
#   BENCH_OUT=DIR    results folder   default: BUILD_DIR/bench-results
#   BENCH_CPU=LIST   run pinned with taskset -c LIST (servers inherit it)
#   BENCH_JOBS=N     parallel build jobs (default 2)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$root/build-bench}")
out=$(realpath -m "${BENCH_OUT:-$build/bench-results}")
programs=(call map snapshot warm protection containment)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "${BENCH_JOBS:-2}" --target "${programs[@]/#/bench_}" >/dev/null

# Images go to a private folder under /tmp, removed at the end even when a
# program dies; each program makes its own folder inside it (mkdtemp).
tmp=$(mktemp -d /tmp/subctx-bench-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export SUBCTX_BENCH_TMPDIR=$tmp
mkdir -p "$out"

pin=()
[ -n "${BENCH_CPU:-}" ] && pin=(taskset -c "$BENCH_CPU")

run() {
  local name=$1
  shift
  echo "running bench_$name ..." >&2
  if ! "${pin[@]}" "$build/bench/bench_$name" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
      "$@" >"$out/$name.txt" 2>&1; then
    tail -n 20 "$out/$name.txt" >&2
    echo "bench_$name failed; its output: $out/$name.txt" >&2
    exit 1
  fi
}

start=$SECONDS
run call --benchmark_repetitions=5 --benchmark_min_time=0.2
run map --benchmark_repetitions=3 --benchmark_min_time=0.1
run snapshot
run warm
run protection --benchmark_repetitions=5 --benchmark_min_time=0.1
run containment --benchmark_repetitions=3 --benchmark_min_time=0.1
echo "results: $out ($((SECONDS - start)) s)" >&2
echo
python3 "$root/bench/summarize.py" "$out"
