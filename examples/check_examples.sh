#!/usr/bin/env bash
# ctest's check of the examples: each server writes its image, each client
# maps it and prints what the README shows; the lines are compared exactly.
#
#   check_examples.sh CITIES_SERVER CITIES_CLIENT PYEVAL_SERVER PYEVAL_CLIENT
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
# Servers start with descriptors 0-2 only (scripts/without-inherited-fds).
without_inherited_fds=$(dirname "$0")/../scripts/without-inherited-fds
expect() {  # expect OUTPUT_FILE LINE: LINE must be one whole line of the output
  grep -qxF -- "$2" "$1" || { echo "missing line: $2"; echo "--- output:"; cat "$1"; fail=1; }
}

"$without_inherited_fds" "$1" "$work/cities.img" > "$work/server.out"
"$2" "$work/cities.img" > "$work/cities.out"
expect "$work/cities.out" "client: city 1: Dubelten (Estria), population 3239312"
grep -q "^client: map .* ms + first call .* ms = .* ms; cities named Kalo\*: [1-9][0-9]*$" "$work/cities.out" ||
  { echo "no timing line"; cat "$work/cities.out"; fail=1; }
grep -q "^client: as expected, .*no_such_export" "$work/cities.out" || { echo "no refusal line"; fail=1; }

"$without_inherited_fds" "$3" "$work/pyeval.img" > "$work/pyserver.out"
grep -q "^server: started CPython 3.11 with [0-9]* modules" "$work/pyserver.out" ||
  { echo "server:"; cat "$work/pyserver.out"; fail=1; }
"$4" "$work/pyeval.img" "sum(range(101))" "Decimal('0.1') + Decimal('0.2')" "re.findall(r'\d+', 'a1b22c333')" \
  "Counter('abracadabra').most_common(2)" "1 / 0" > "$work/py.out"
expect "$work/py.out" "sum(range(101)) => 5050"
expect "$work/py.out" "Decimal('0.1') + Decimal('0.2') => \"0.3\""
expect "$work/py.out" "re.findall(r'\d+', 'a1b22c333') => [\"1\", \"22\", \"333\"]"
expect "$work/py.out" "Counter('abracadabra').most_common(2) => [[\"a\", 5], [\"b\", 2]]"
expect "$work/py.out" "1 / 0 => error: ZeroDivisionError: division by zero"
grep -q "^client: map .* ms + first evaluation .* ms$" "$work/py.out" || { echo "no timing line"; fail=1; }
exit $fail
