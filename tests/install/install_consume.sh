#!/usr/bin/env bash
# The install-and-consume test (CTest: install_consume). Installs the current build
# tree into a scratch prefix, then configures, builds and runs consumer/, an outside
# project that uses only find_package(libraft) and raft::raft. Exit 0 = pass.
#
# Arguments (all --name=value; CMake passes them, see CMakeLists.txt):
#   --cmake       cmake binary          --build-tree  the tree to install
#   --consumer    consumer source dir   --work        scratch dir (wiped first)
#   --generator   CMake generator       --cxx         C++ compiler
#   --cxx-flags   extra compile/link flags (the sanitizer flags of a sanitized tree)
#   --config      build configuration (may be empty)
set -euo pipefail

cmake_bin=cmake build_tree="" consumer="" work="" generator="" cxx="" cxx_flags="" config=""
for arg in "$@"; do
  case "$arg" in
    --cmake=*) cmake_bin=${arg#*=} ;;
    --build-tree=*) build_tree=${arg#*=} ;;
    --consumer=*) consumer=${arg#*=} ;;
    --work=*) work=${arg#*=} ;;
    --generator=*) generator=${arg#*=} ;;
    --cxx=*) cxx=${arg#*=} ;;
    --cxx-flags=*) cxx_flags=${arg#*=} ;;
    --config=*) config=${arg#*=} ;;
    *) echo "install_consume: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
for v in build_tree consumer work; do
  if [ -z "${!v}" ]; then echo "install_consume: --${v//_/-} is required" >&2; exit 2; fi
done

prefix="$work/prefix"
cbuild="$work/consumer-build"
rm -rf "$work"
mkdir -p "$work"

step() { echo "---- install_consume: $*"; }

step "install $build_tree -> $prefix"
install_args=(--install "$build_tree" --prefix "$prefix")
if [ -n "$config" ]; then install_args+=(--config "$config"); fi
"$cmake_bin" "${install_args[@]}"

# The package must be self-contained: headers, library and CMake files, and nothing
# from src/ (internal headers stay private).
for f in include/raft/raw_node.h include/raft/storage.h; do
  [ -f "$prefix/$f" ] || { echo "install_consume: missing $prefix/$f" >&2; exit 1; }
done
config_file=$(find "$prefix" -name libraftConfig.cmake -print -quit)
[ -n "$config_file" ] || { echo "install_consume: no libraftConfig.cmake under $prefix" >&2; exit 1; }
if find "$prefix/include" -path '*/core/*' -o -path '*/src/*' | grep -q .; then
  echo "install_consume: internal headers were installed:" >&2
  find "$prefix/include" -path '*/core/*' -o -path '*/src/*' >&2
  exit 1
fi

step "configure consumer against $prefix"
configure_args=(-S "$consumer" -B "$cbuild" -DCMAKE_PREFIX_PATH="$prefix"
  # Only the scratch prefix and the system may satisfy find_package(libraft): never
  # the build tree through CMake's package registry.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if [ -n "$generator" ]; then configure_args+=(-G "$generator"); fi
if [ -n "$cxx" ]; then configure_args+=(-DCMAKE_CXX_COMPILER="$cxx"); fi
if [ -n "$config" ]; then configure_args+=(-DCMAKE_BUILD_TYPE="$config"); fi
if [ -n "$cxx_flags" ]; then
  configure_args+=(-DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$cxx_flags")
fi
"$cmake_bin" "${configure_args[@]}"

# The consumer must have found the installed package, not something else.
found=$(sed -n 's/^libraft_DIR:PATH=//p' "$cbuild/CMakeCache.txt")
case "$found" in
  "$prefix"/*) ;;
  *) echo "install_consume: libraft found at '$found', not under $prefix" >&2; exit 1 ;;
esac

step "build consumer"
"$cmake_bin" --build "$cbuild"

step "run consumer"
"$cbuild/app"
step "PASS"
