#!/usr/bin/env bash
# Formats the project's C++ sources with the checked-in .clang-format.
#
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  change nothing; fail (exit 1) and list the files that
#                              would change. The CTest test `format` runs this.
#
# Sources: *.h *.hh *.hpp *.cc *.cpp *.cxx under the repository, except the top-level
# .git/, .cache/, data/, build*/ and any directory holding a CMakeCache.txt (a build tree).
# CLANG_FORMAT picks the binary (default: clang-format-14, else clang-format). The
# style is pinned to clang-format 14, Debian 12's version: others may format differently.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "format.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

CF="${CLANG_FORMAT:-}"
if [ -z "$CF" ]; then
  for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null; then CF=$c; break; fi
  done
fi
if [ -z "$CF" ] || ! command -v "$CF" >/dev/null; then
  echo "format.sh: clang-format not found (Debian 12: apt-get install clang-format)" >&2
  exit 2
fi
version=$("$CF" --version)
case "$version" in
  *"version 14."*) ;;
  *) echo "format.sh: warning: expected clang-format 14, got: $version" >&2 ;;
esac

cd "$ROOT"
files=()
while IFS= read -r -d '' f; do files+=("${f#./}"); done < <(
  find . \( -path ./.git -o -path ./data -o -path './build*' -o -path ./.cache \) -prune -o \
    -type d -exec test -e '{}/CMakeCache.txt' \; -prune -o \
    -type f \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' -o -name '*.cc' -o -name '*.cpp' \
    -o -name '*.cxx' \) -print0 | sort -z)

if [ ${#files[@]} -eq 0 ]; then
  echo "format.sh: no C++ sources found under $ROOT" >&2
  exit 2
fi

if [ "$check" -eq 0 ]; then
  printf '%s\0' "${files[@]}" | xargs -0 "$CF" -i --style=file
  echo "format.sh: formatted ${#files[@]} files"
  exit 0
fi

# --dry-run -Werror: one "file:line:col: error: code should be clang-formatted" per
# offending spot, and a non-zero exit if there is any.
out=$(printf '%s\0' "${files[@]}" | xargs -0 "$CF" --dry-run -Werror --style=file 2>&1) && rc=0 || rc=$?
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
  echo "format.sh: ${#files[@]} files checked, all formatted"
  exit 0
fi
bad=$(printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' |
  sort -u)
if [ -z "$bad" ]; then  # clang-format failed for another reason: show why
  printf '%s\n' "$out" >&2
  echo "format.sh: $CF failed (exit $rc)" >&2
  exit 2
fi
echo "format.sh: these files are not formatted (fix: scripts/format.sh):"
printf '%s\n' "$bad" | sed 's/^/  /'
echo "first differences:"
printf '%s\n' "$out" | head -n 40
exit 1
