#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole test
# suite twice: in a RelWithDebInfo tree (build/) and in an AddressSanitizer +
# UndefinedBehaviorSanitizer tree (build-asan/). Exits non-zero on any failure and
# ends with one summary line. Works from any directory.
#
#   scripts/test.sh                  both runs (what CI does)
#   scripts/test.sh --fast           RelWithDebInfo run only
#   scripts/test.sh --sanitize-only  sanitizer run only
#   scripts/test.sh -- -R wire       extra arguments after -- go to ctest (both runs)
#
# Environment (all optional):
#   RAFT_BUILD_DIR       release tree      (default: <repo>/build)
#   RAFT_ASAN_BUILD_DIR  sanitizer tree    (default: <repo>/build-asan)
#   RAFT_JOBS            build/test jobs   (default: nproc)
#   RAFT_TEST_TIMEOUT    seconds per test  (default: 900; a test's own TIMEOUT wins)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# ccache hits across clones in other folders (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
BUILD_DIR="${RAFT_BUILD_DIR:-$ROOT/build}"
ASAN_BUILD_DIR="${RAFT_ASAN_BUILD_DIR:-$ROOT/build-asan}"
JOBS="${RAFT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
TEST_TIMEOUT="${RAFT_TEST_TIMEOUT:-900}"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

run_release=1
run_asan=1
ctest_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) run_asan=0 ;;
    --sanitize-only) run_release=0 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; ctest_extra=("$@"); break ;;
    *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$run_release" -eq 0 ] && [ "$run_asan" -eq 0 ]; then
  echo "test.sh: --fast and --sanitize-only together leave nothing to run" >&2
  exit 2
fi

start_all=$SECONDS
summary=()

elapsed() {  # seconds -> "3m07s"
  printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

finish() {  # status message
  local status=$1 msg=$2
  local total
  total=$(elapsed $((SECONDS - start_all)))
  echo
  for line in "${summary[@]}"; do echo "  $line"; done
  echo "test.sh: $msg (total $total)"
  exit "$status"
}

# configure <dir> <cmake args...>: the first configure picks Ninja when available; later
# runs reuse the tree's generator (CMake refuses to switch generators in a tree).
configure() {
  local dir=$1; shift
  local gen=()
  if [ ! -f "$dir/CMakeCache.txt" ] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
  cmake -S "$ROOT" -B "$dir" "${gen[@]}" "$@"
}

# phase <name> <build dir> <cmake args...>: configure, build, run ctest.
phase() {
  local name=$1 dir=$2; shift 2
  local t0=$SECONDS log="$dir/test.sh-ctest.log"
  echo "==== [$name] configure + build in $dir"
  if ! configure "$dir" "$@"; then
    summary+=("$name: configure FAILED")
    finish 1 "FAIL ($name: configure)"
  fi
  if ! cmake --build "$dir" -j "$JOBS"; then
    summary+=("$name: build FAILED")
    finish 1 "FAIL ($name: build)"
  fi
  local built=$((SECONDS - t0))
  echo "==== [$name] ctest (-j$JOBS, timeout ${TEST_TIMEOUT}s per test)"
  local rc=0
  ctest --test-dir "$dir" -j "$JOBS" --output-on-failure --no-tests=error \
    --timeout "$TEST_TIMEOUT" "${ctest_extra[@]}" 2>&1 | tee "$log" || rc=$?
  local result
  result=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1 || true)
  [ -n "$result" ] || result="no ctest summary (exit $rc)"
  summary+=("$name: $result [build $(elapsed "$built"), tests $(elapsed $((SECONDS - t0 - built)))]")
  if [ "$rc" -ne 0 ]; then finish 1 "FAIL ($name: tests)"; fi
}

echo "==== dependencies"
if ! "$ROOT/scripts/install-deps.sh"; then
  summary+=("dependencies: scripts/install-deps.sh FAILED")
  finish 1 "FAIL (dependencies)"
fi

if [ "$run_release" -eq 1 ]; then
  phase release "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFT_SANITIZE=OFF \
    -DRAFT_BUILD_TESTS=ON -DRAFT_BUILD_KVSERVER=ON -DRAFT_WERROR=ON
fi

if [ "$run_asan" -eq 1 ]; then
  # halt_on_error: the first report fails the test; UBSan already has
  # -fno-sanitize-recover=all. Callers may override either variable.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:strict_init_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  phase asan+ubsan "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFT_SANITIZE=ON \
    -DRAFT_BUILD_TESTS=ON -DRAFT_BUILD_KVSERVER=ON -DRAFT_WERROR=ON
fi

finish 0 "PASS"
