#!/usr/bin/env bash
# usage: exported_symbols.sh ALLOWLIST LIBRARY.so...
# The shared libraries export the public API and the interposed libc
# functions only: every symbol of `nm -D --defined-only LIBRARY`, demangled,
# must match a line of ALLOWLIST (tests/install/exported_symbols.allow, one
# grep -E pattern per line, matched against the whole name), and every line
# must match a symbol of at least one LIBRARY.
set -euo pipefail
allow=$1
shift
[ $# -gt 0 ] || { echo "usage: $0 ALLOWLIST LIBRARY.so..."; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The patterns alone: a blank line would match every name.
grep -Ev '^[[:space:]]*(#|$)' "$allow" >"$work/patterns" || true
[ -s "$work/patterns" ] || { echo "$allow holds no patterns"; exit 1; }

status=0
: >"$work/all"
for lib in "$@"; do
  name=$(basename "$lib")
  # "ADDRESS TYPE NAME"; a mangled name holds no spaces.
  nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$work/mangled"
  [ -s "$work/mangled" ] || { echo "$name: nm -D --defined-only lists nothing; is it a shared library?"; exit 1; }
  c++filt <"$work/mangled" >"$work/demangled"
  cat "$work/demangled" >>"$work/all"
  paste -d '\t' "$work/demangled" "$work/mangled" >"$work/both"
  # Names that match no pattern.
  if cut -f1 "$work/both" | grep -Evxn -f "$work/patterns" >"$work/unexpected"; then
    status=1
    echo "$name exports $(wc -l <"$work/unexpected") symbol(s) that $allow does not allow:"
    while IFS=: read -r line _; do
      printf '  %s\n      (%s)\n' "$(sed -n "${line}p" "$work/both" | cut -f1)" \
        "$(sed -n "${line}p" "$work/both" | cut -f2)"
    done <"$work/unexpected"
  else
    echo "$name: $(wc -l <"$work/mangled") exported symbols, all allowed"
  fi
done

if [ "$status" != 0 ]; then
  cat <<'EOF'

What to do:
  * An internal function or object: it must not be exported.  The
    libraries are built with -fvisibility=hidden, so it has default
    visibility from its declaration (SUBCTX_API or
    __attribute__((visibility("default"))): only the public declarations
    in include/subctx/ and the interposed libc functions in
    src/fault/signals.cpp carry it), or it is a template instantiation
    of the standard library (std::...): add its mangled prefix to the
    local: list of src/exports.map.
  * New public API (declared in include/subctx/*.h*, or a subctx::detail
    function that the public headers' inline code calls): add a pattern
    to tests/install/exported_symbols.allow, in the group it belongs to.
EOF
fi

# Lines that match nothing: left behind by a removed or renamed symbol.
stale=0
while IFS= read -r p; do
  if ! grep -Eqx -e "$p" "$work/all"; then
    [ "$stale" = 1 ] || echo "patterns of $allow that match no exported symbol (remove or fix them):"
    stale=1
    echo "  $p"
  fi
done <"$work/patterns"
[ "$stale" = 0 ] || status=1

exit "$status"
