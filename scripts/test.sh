#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and tests in four
# trees, in this order, and stops at the first failure with one summary line:
#   release        build/        Release, default options (+ -Werror): every CTest test
#   thread-safety  build-clang/  clang, -Werror=thread-safety: libraft and the example are
#                                built (not run) so every RAFT_GUARDED_BY/RAFT_REQUIRES is checked
#   asan+ubsan     build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer: every test
#   tsan           build-tsan/   ThreadSanitizer: the tests where threads meet (runtime_test,
#                                the kvserver unit tests, process_test, process_http_test,
#                                process_watch_test (watch streams) and process_ranges_test
#                                (ranges mode) with kvserver itself
#                                built under TSan). The pure core, codecs, storage and the
#                                simulator are single-threaded, so TSan would find nothing
#                                there and they are left out to keep CI short.
# Works from any directory.
#
#   scripts/test.sh                  all four stages (what CI does)
#   scripts/test.sh --fast           release only
#   scripts/test.sh --sanitize-only  asan+ubsan and tsan only
#   scripts/test.sh --stages=LIST    a comma-separated subset: release,thread-safety,asan,tsan
#   scripts/test.sh -- -R wire       extra arguments after -- go to ctest (every run)
#
# Environment (all optional):
#   RAFT_BUILD_DIR       release tree      (default: <repo>/build)
#   RAFT_CLANG_BUILD_DIR thread-safety tree (default: <repo>/build-clang)
#   RAFT_ASAN_BUILD_DIR  sanitizer tree    (default: <repo>/build-asan)
#   RAFT_TSAN_BUILD_DIR  TSan tree         (default: <repo>/build-tsan)
#   RAFT_JOBS            build/test jobs   (default: nproc)
#   RAFT_TEST_TIMEOUT    seconds per test  (default: 900; a test's own TIMEOUT wins)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# ccache hits across clones in other folders (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
BUILD_DIR="${RAFT_BUILD_DIR:-$ROOT/build}"
ASAN_BUILD_DIR="${RAFT_ASAN_BUILD_DIR:-$ROOT/build-asan}"
CLANG_BUILD_DIR="${RAFT_CLANG_BUILD_DIR:-$ROOT/build-clang}"
TSAN_BUILD_DIR="${RAFT_TSAN_BUILD_DIR:-$ROOT/build-tsan}"
JOBS="${RAFT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
TEST_TIMEOUT="${RAFT_TEST_TIMEOUT:-900}"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

stages="release,thread-safety,asan,tsan"
ctest_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) stages="release" ;;
    --sanitize-only) stages="asan,tsan" ;;
    --stages=*) stages="${1#*=}" ;;
    -h | --help) usage; exit 0 ;;
    --) shift; ctest_extra=("$@"); break ;;
    *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for st in ${stages//,/ }; do
  case "$st" in
    release | thread-safety | asan | tsan) ;;
    *) echo "test.sh: unknown stage '$st' (release, thread-safety, asan, tsan)" >&2; exit 2 ;;
  esac
done
want() { [[ ",$stages," == *",$1,"* ]]; }

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
# PHASE_TARGETS (space-separated) limits the build to those targets, PHASE_TESTS (a ctest
# -R regex) the tests; PHASE_TESTS=none builds without running anything.
phase() {
  local name=$1 dir=$2; shift 2
  local t0=$SECONDS log="$dir/test.sh-ctest.log"
  local targets=() select=()
  if [ -n "${PHASE_TARGETS:-}" ]; then
    # shellcheck disable=SC2206
    targets=(--target ${PHASE_TARGETS})
  fi
  if [ -n "${PHASE_TESTS:-}" ]; then select=(-R "$PHASE_TESTS"); fi
  echo "==== [$name] configure + build in $dir"
  if ! configure "$dir" "$@"; then
    summary+=("$name: configure FAILED")
    finish 1 "FAIL ($name: configure)"
  fi
  if ! cmake --build "$dir" -j "$JOBS" "${targets[@]}"; then
    summary+=("$name: build FAILED")
    finish 1 "FAIL ($name: build)"
  fi
  local built=$((SECONDS - t0))
  if [ "${PHASE_TESTS:-}" = none ]; then
    summary+=("$name: built ${PHASE_TARGETS:-all} [build $(elapsed "$built")]")
    return 0
  fi
  echo "==== [$name] ctest (-j$JOBS, timeout ${TEST_TIMEOUT}s per test)"
  local rc=0
  ctest --test-dir "$dir" -j "$JOBS" --output-on-failure --no-tests=error \
    --timeout "$TEST_TIMEOUT" "${select[@]}" "${ctest_extra[@]}" 2>&1 | tee "$log" || rc=$?
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

if want release; then
  # What a new user gets: Release with the default options (-Werror is on by default
  # only at top level; it is spelled out here so the stage means the same in any setup).
  phase release "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRAFT_WERROR=ON \
    -DRAFT_SANITIZE=OFF -DRAFT_TSAN=OFF -DRAFT_BUILD_TESTS=ON -DRAFT_BUILD_KVSERVER=ON
fi

if want thread-safety; then
  # Clang's -Wthread-safety (added by raft_warnings() for clang) as an error. Only the
  # library and the example: the analysis is per translation unit, and the annotated
  # mutexes all live in libraft.
  PHASE_TARGETS="raft counterd" PHASE_TESTS=none \
    phase thread-safety "$CLANG_BUILD_DIR" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Debug -DRAFT_WERROR=ON -DRAFT_BUILD_TESTS=OFF -DRAFT_BUILD_KVSERVER=OFF \
    -DRAFT_BUILD_EXAMPLES=ON "-DCMAKE_CXX_FLAGS=-Werror=thread-safety -Werror=thread-safety-beta"
fi

if want asan; then
  # halt_on_error: the first report fails the test; UBSan already has
  # -fno-sanitize-recover=all. Callers may override either variable.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:strict_init_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  phase asan+ubsan "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFT_WERROR=ON \
    -DRAFT_SANITIZE=ON -DRAFT_TSAN=OFF -DRAFT_BUILD_TESTS=ON -DRAFT_BUILD_KVSERVER=ON
fi

if want tsan; then
  # The multi-threaded tests only (see the top of this file). second_deadlock_stack
  # names both acquisitions of a lock-order inversion.
  # scripts/tsan.supp lists the only suppressions: races inside uninstrumented RocksDB.
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$ROOT/scripts/tsan.supp}"
  PHASE_TARGETS="runtime_test state_machine_test kvserver_unit_test process_test process_http_test process_watch_test process_ranges_test fuzz_http_replay kvserver kvctl" \
    PHASE_TESTS='^(runtime_test|state_machine_test|kvserver_unit_test|process_test|process_http_test|process_watch_test|process_ranges_test|fuzz_http_replay)$' \
    phase tsan "$TSAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFT_WERROR=ON \
    -DRAFT_SANITIZE=OFF -DRAFT_TSAN=ON -DRAFT_BUILD_TESTS=ON -DRAFT_BUILD_KVSERVER=ON
fi

finish 0 "PASS"
