#!/usr/bin/env bash
# format_check: every C/C++ source under the tree's code folders is as
# .clang-format writes it.  Exit 77 (ctest: skipped) without clang-format 14.
set -uo pipefail
root=${1:?usage: check_format.sh SOURCE_DIR}
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
  echo "format_check: skipped: clang-format is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi
version=$("$cf" --version)
case "$version" in
  *"version 14."*) ;;
  *) echo "format_check: skipped: $version is not clang-format 14, whose output .clang-format was tuned for"; exit 77 ;;
esac
cd "$root" || exit 1
mapfile -t files < <(find src include tools tests bench examples -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.hpp' \) | sort)
bad=()
for f in "${files[@]}"; do
  "$cf" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format_check: ${#bad[@]} of ${#files[@]} files differ from .clang-format; run: $cf -i ${bad[*]}"
  exit 1
fi
echo "format_check: ${#files[@]} files as .clang-format writes them"
