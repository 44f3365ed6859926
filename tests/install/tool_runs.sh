#!/usr/bin/env bash
# usage: tool_runs.sh PREFIX CONSUMER_SOURCE_DIR WORK_DIR
# The installed `subctx` command runs from PREFIX/bin with LD_LIBRARY_PATH
# empty: it finds libsubctx_client in PREFIX/lib through its RPATH
# ($ORIGIN/../lib), not in the build tree or a system directory.
set -euo pipefail
prefix=$1
src=$2
work=$3
# Servers start with descriptors 0-2 only: this script runs again through
# scripts/without-inherited-fds (docs/identity.md).
[ -n "${SUBCTX_FDS_CLOSED:-}" ] || SUBCTX_FDS_CLOSED=1 exec "$(dirname "$0")/../../scripts/without-inherited-fds" bash "$0" "$@"
rm -rf "$work"
mkdir -p "$work"
tool=$prefix/bin/subctx

# An image to look at, from a server built against the installed package.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
c++ -std=c++20 "$src/server.cpp" -o "$work/server" $(pkg-config --cflags --libs subctx-server) -Wl,-rpath,"$prefix/lib"
"$work/server" "$work/a.img"

bare() { env -u LD_PRELOAD LD_LIBRARY_PATH= "$@"; }

# Which libsubctx_client the dynamic loader picks for the installed tool.
resolved=$(bare ldd "$tool" | awk '$1 ~ /^libsubctx_client\.so/ {print $3}')
[ -e "$resolved" ] && [ "$(realpath "$resolved")" = "$(realpath "$prefix/lib/libsubctx_client.so.0")" ] ||
  { echo "the installed subctx loads libsubctx_client from '$resolved', not $prefix/lib:"; bare ldd "$tool"; exit 1; }

check() {  # check LABEL WANTED_STATUS LINE_PATTERN COMMAND...  (grep -E)
  local label=$1 want=$2 text=$3; shift 3
  local out status=0
  out=$(bare "$@" 2>&1) || status=$?
  [ "$status" = "$want" ] || { echo "$label: exit status $status, expected $want; output:"; echo "$out"; exit 1; }
  grep -qE -- "$text" <<<"$out" || { echo "$label: no output line matches \"$text\":"; echo "$out"; exit 1; }
  echo "$label: ok"
}
check "no command (usage, status 2)" 2 "^usage: subctx COMMAND" "$tool"
check "--help" 0 "^usage: subctx COMMAND" "$tool" --help
check "inspect" 0 "add_base" "$tool" inspect "$work/a.img"
check "verify" 0 "" "$tool" verify "$work/a.img"
check "call" 0 "^1234$" "$tool" call "$work/a.img" add_base 234
