#!/usr/bin/env bash
# The install-and-consume test (CTest: install_consume). Installs the current build
# tree into a scratch prefix, then, using nothing but that prefix and the system:
#   1. configures, builds and runs consumer/, an outside project that uses only
#      find_package(libraft) and raft::raft (RawNode, MemoryStorage);
#   2. compiles and links consumer/main.cc again with `pkg-config --cflags --libs libraft`
#      (libraft.pc) and runs it;
#   3. builds examples/counter (raft::Node) the same way as 1 and runs its smoke test
#      (three counterd processes on loopback) against that build.
# Works for a static and a shared (BUILD_SHARED_LIBS=ON) libraft. Exit 0 = pass.
#
# Arguments (all --name=value; CMake passes them, see CMakeLists.txt):
#   --cmake       cmake binary          --build-tree  the tree to install
#   --consumer    consumer source dir   --work        scratch dir (wiped first)
#   --counter     examples/counter source dir (optional: step 3 is skipped without it)
#   --generator   CMake generator       --cxx         C++ compiler
#   --cxx-flags   extra compile/link flags (the sanitizer flags of a sanitized tree)
#   --config      build configuration (may be empty)
set -euo pipefail

cmake_bin=cmake build_tree="" consumer="" counter="" work="" generator="" cxx="" cxx_flags="" config=""
for arg in "$@"; do
  case "$arg" in
    --cmake=*) cmake_bin=${arg#*=} ;;
    --build-tree=*) build_tree=${arg#*=} ;;
    --consumer=*) consumer=${arg#*=} ;;
    --counter=*) counter=${arg#*=} ;;
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
rm -rf "$work"
mkdir -p "$work"

step() { echo "---- install_consume: $*"; }

step "install $build_tree -> $prefix"
install_args=(--install "$build_tree" --prefix "$prefix")
if [ -n "$config" ]; then install_args+=(--config "$config"); fi
"$cmake_bin" "${install_args[@]}"

# The package must be self-contained: headers, library and CMake files, and nothing
# from src/ (internal headers stay private).
for f in include/raft/raw_node.h include/raft/storage.h include/raft/export.h; do
  [ -f "$prefix/$f" ] || { echo "install_consume: missing $prefix/$f" >&2; exit 1; }
done
config_file=$(find "$prefix" -name libraftConfig.cmake -print -quit)
[ -n "$config_file" ] || { echo "install_consume: no libraftConfig.cmake under $prefix" >&2; exit 1; }
if find "$prefix/include" -path '*/core/*' -o -path '*/src/*' | grep -q .; then
  echo "install_consume: internal headers were installed:" >&2
  find "$prefix/include" -path '*/core/*' -o -path '*/src/*' >&2
  exit 1
fi
# A shared libraft exports the RAFT_EXPORT API of include/raft/ and hides src/.
shared_lib=$(find "$prefix" -name 'libraft.so.*' -print -quit)
if [ -n "$shared_lib" ]; then
  step "symbols exported by $shared_lib"
  symbols=$(nm -DC --defined-only "$shared_lib")
  for want in 'raft::RawNode::Create' 'raft::Node::Start' 'raft::DiskStorage::Open'; do
    grep -qF "$want" <<<"$symbols" || { echo "install_consume: $want not exported" >&2; exit 1; }
  done
  if grep -E 'raft::(RaftCore|base|mutation|runtime|storage|wire|[A-Za-z]+::Impl)::' <<<"$symbols"; then
    echo "install_consume: internal symbols (above) exported from $shared_lib" >&2
    exit 1
  fi
fi
# Installed programs (kvserver, kvctl) find their libraries, libraft.so included.
for exe in "$prefix"/bin/*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  if ldd "$exe" | grep 'not found'; then
    echo "install_consume: $exe: libraries not found (above)" >&2
    exit 1
  fi
done

# cmake_consumer NAME SOURCE_DIR: configures and builds an outside CMake project in
# $work/NAME-build against the scratch prefix; prints nothing else on success.
cmake_consumer() {
  local name=$1 src=$2
  local bdir="$work/$name-build"
  step "configure $name against $prefix"
  local configure_args=(-S "$src" -B "$bdir" -DCMAKE_PREFIX_PATH="$prefix"
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

  # It must have found the installed package, not something else.
  local found
  found=$(sed -n 's/^libraft_DIR:PATH=//p' "$bdir/CMakeCache.txt")
  case "$found" in
    "$prefix"/*) ;;
    *) echo "install_consume: $name found libraft at '$found', not under $prefix" >&2; exit 1 ;;
  esac

  step "build $name"
  "$cmake_bin" --build "$bdir"
}

# 1. CMake: find_package(libraft), raft::raft.
cmake_consumer consumer "$consumer"
step "run consumer"
"$work/consumer-build/app"

# 2. pkg-config: libraft.pc, with fmt.pc from the system.
pc_file=$(find "$prefix" -name libraft.pc -print -quit)
[ -n "$pc_file" ] || { echo "install_consume: no libraft.pc under $prefix" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc_file")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_flags=$(pkg-config --cflags --libs libraft)
pc_libdir=$(pkg-config --variable=libdir libraft)
step "pkg-config --cflags --libs libraft: $pc_flags"
case "$pc_libdir" in
  "$prefix"/*) ;;
  *) echo "install_consume: libraft.pc names libdir '$pc_libdir', not under $prefix" >&2; exit 1 ;;
esac
# The .pc file does not carry -std (the compiler picks); libraft's headers need C++20.
# The rpath finds libraft.so in a shared build (harmless for libraft.a).
# shellcheck disable=SC2086  # pc_flags and cxx_flags are lists of flags
"${cxx:-c++}" -std=c++20 $cxx_flags -o "$work/app-pkgconfig" "$consumer/main.cc" $pc_flags \
  -Wl,-rpath,"$pc_libdir"
step "run the pkg-config build"
"$work/app-pkgconfig"

# 3. examples/counter: raft::Node (threads, TCP, DiskStorage) from the installed package.
if [ -n "$counter" ]; then
  cmake_consumer counter "$counter"
  step "counter smoke test"
  bash "$counter/smoke_test.sh" "$work/counter-build/counterd"
fi
step "PASS"
