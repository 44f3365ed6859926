#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them: JSON per program
# (--benchmark_out) and each program's console output in the results folder,
# then a short table of ratios on stdout.  About 4-5 minutes on 2 vCPUs
# (the payload set, issue 5: about 1 minute of it, plus the build of the
# payloads' libraries).  The payload chart goes to the results folder
# (bench/payload_chart.py RESULTS_DIR updates docs/payloads.svg).
#
#   bench/run.sh [BUILD_DIR]          default BUILD_DIR: build-bench
#   BENCH_OUT=DIR    results folder   default: BUILD_DIR/bench-results
#   BENCH_CPU=LIST   run pinned with taskset -c LIST (servers inherit it)
#   BENCH_JOBS=N     parallel build jobs (default 2)
#   BENCH_SET=SET    all (default), core (without the payloads), payloads
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$root/build-bench}")
out=$(realpath -m "${BENCH_OUT:-$build/bench-results}")
set_=${BENCH_SET:-all}
programs=()
[ "$set_" != payloads ] && programs+=(call callback map snapshot external_snapshot thread warm protection containment identity start icount)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# The payloads whose targets this configuration has (tests/payloads/<name>
# complete, tests built): bench_payload_<name> each, and bench_payload_pss.
payloads=()
if [ "$set_" != core ]; then
  mapfile -t payloads < <(cmake --build "$build" --target help | grep -o 'bench_payload_[a-z0-9]*' |
    grep -v -e '^bench_payload_pss$' -e '^bench_payload_holder$' | sort -u | sed 's/^bench_payload_//')
  for p in "${payloads[@]}"; do programs+=("payload_$p"); done
  [ ${#payloads[@]} -gt 0 ] && programs+=(payload_pss)
  # Batches on PCRE2 (bench_pcre2_batch), where the payload is built.
  for p in "${payloads[@]}"; do
    if [ "$p" = pcre2 ]; then programs+=(pcre2_batch); fi
  done
fi
[ ${#programs[@]} -gt 0 ] || { echo "nothing to run (BENCH_SET=$set_)" >&2; exit 1; }
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
if [ "$set_" != payloads ]; then
  run call --benchmark_repetitions=5 --benchmark_min_time=0.2
  run map --benchmark_repetitions=3 --benchmark_min_time=0.1
  run snapshot
  run external_snapshot
  run thread --benchmark_repetitions=3
  run warm
  run protection --benchmark_repetitions=5 --benchmark_min_time=0.1
  run containment --benchmark_repetitions=3 --benchmark_min_time=0.1
  run identity --benchmark_repetitions=3 --benchmark_min_time=0.1
  run start
  echo "running bench_icount ..." >&2
  "${pin[@]}" "$build/bench/bench_icount" --json "$out/icount.json" >"$out/icount.txt" 2>&1 ||
    { cat "$out/icount.txt" >&2; echo "bench_icount failed" >&2; exit 1; }
fi
# Payloads: cold/warm start rows for at least 0.3 s each, steady state
# about 0.5 s per side (--payload_steady_s); then 20 clients of one image.
for p in "${payloads[@]}"; do
  run "payload_$p" --benchmark_min_time=0.3
done
if [ ${#payloads[@]} -gt 0 ]; then
  run payload_pss --clients=20
  for p in "${payloads[@]}"; do
    if [ "$p" = pcre2 ]; then run pcre2_batch --benchmark_repetitions=3 --benchmark_min_time=0.3; fi
  done
  python3 "$root/bench/payload_chart.py" "$out" --svg "$out/payloads.svg" >/dev/null
fi
echo "results: $out ($((SECONDS - start)) s)" >&2
echo
python3 "$root/bench/summarize.py" "$out"
