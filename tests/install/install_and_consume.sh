#!/usr/bin/env bash
# usage: install_and_consume.sh MODE PREFIX SOURCE_DIR WORK_DIR
# Builds programs against the package installed in PREFIX, the way a user
# does, and runs them on an image written by a server built the same way:
#   cmake       find_package(subctx) in a project that sets no C++ standard
#               (consumer/): C++ server, C and C++ clients, shared and static
#   cmake-c     find_package(subctx) in a C-only project (consumer_c/)
#   pkg-config  no CMake: c++ -std=c++20 / cc with pkg-config's flags, shared
#               and static libraries
set -euo pipefail
mode=$1
prefix=$2
src=$3
work=$4
# Servers start with descriptors 0-2 only: this script runs again through
# scripts/without-inherited-fds (docs/identity.md).
[ -n "${SUBCTX_FDS_CLOSED:-}" ] || SUBCTX_FDS_CLOSED=1 exec "$(dirname "$0")/../../scripts/without-inherited-fds" bash "$0" "$@"
rm -rf "$work"
mkdir -p "$work"

expect() {  # expect LABEL IMAGE CLIENT...
  local label=$1 image=$2; shift 2
  local out
  out=$("$@" "$image")
  [ "$out" = "add_base(234)=1234" ] || { echo "$label: unexpected output: $out"; exit 1; }
  echo "$label: ok"
}

case $mode in
  cmake)
    cmake -S "$src/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$prefix/lib" >/dev/null
    cmake --build "$work/build"
    "$work/build/consumer_server" "$work/a.img"
    expect "find_package, C client" "$work/a.img" "$work/build/consumer_client"
    expect "find_package, C++ client" "$work/a.img" "$work/build/consumer_client_cxx"
    expect "find_package, C++ client, static" "$work/a.img" "$work/build/consumer_client_cxx_static"
    ;;
  cmake-c)
    # The server is C++; the image comes from the pkg-config build of it.
    c++ -std=c++20 "$src/consumer/server.cpp" -o "$work/server" \
        $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs subctx-server) -Wl,-rpath,"$prefix/lib"
    "$work/server" "$work/a.img"
    cmake -S "$src/consumer_c" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$prefix/lib" >/dev/null
    cmake --build "$work/build"
    expect "find_package, C-only project" "$work/a.img" "$work/build/consumer_c_client"
    ;;
  pkg-config)
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    c=$src/consumer
    c++ -std=c++20 "$c/server.cpp" -o "$work/pc_server" $(pkg-config --cflags --libs subctx-server) -Wl,-rpath,"$prefix/lib"
    cc "$c/client.c" -o "$work/pc_client" $(pkg-config --cflags --libs subctx-client) -Wl,-rpath,"$prefix/lib"
    c++ -std=c++20 "$c/client.cpp" -o "$work/pc_client_cxx" $(pkg-config --cflags --libs subctx-client) -Wl,-rpath,"$prefix/lib"
    "$work/pc_server" "$work/b.img"
    expect "pkg-config shared, C client" "$work/b.img" "$work/pc_client"
    expect "pkg-config shared, C++ client" "$work/b.img" "$work/pc_client_cxx"
    c++ -std=c++20 "$c/server.cpp" -o "$work/st_server" $(pkg-config --cflags subctx-server) "$prefix/lib/libsubctx_server.a" -ldl
    cc "$c/client.c" -o "$work/st_client" $(pkg-config --cflags subctx-client) "$prefix/lib/libsubctx_client.a" -lstdc++ -ldl
    "$work/st_server" "$work/c.img"
    expect "static" "$work/c.img" "$work/st_client"
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
