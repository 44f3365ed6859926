#!/usr/bin/env bash
# usage: install_and_consume.sh BUILD_DIR CONSUMER_SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/subctx/subctx.h include/subctx/subctx.hpp include/subctx/server.hpp \
         lib/libsubctx_client.so lib/libsubctx_server.so lib/libsubctx_client.a lib/libsubctx_server.a \
         lib/pkgconfig/subctx-client.pc lib/pkgconfig/subctx-server.pc lib/cmake/subctx/subctxConfig.cmake; do
  [ -e "$prefix/$f" ] || { echo "missing installed file: $f"; exit 1; }
done

expect() {  # expect LABEL IMAGE CLIENT...
  local label=$1 image=$2; shift 2
  local out
  out=$("$@" "$image")
  [ "$out" = "add_base(234)=1234" ] || { echo "$label: unexpected output: $out"; exit 1; }
  echo "$label: ok"
}

# 1. CMake package, shared libraries.
cmake -S "$src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$prefix/lib" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/consumer_server" "$work/a.img"
expect "find_package" "$work/a.img" "$work/cmake-build/consumer_client"

# 2. pkg-config, shared and static.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
c++ -std=c++20 "$src/server.cpp" -o "$work/pc_server" $(pkg-config --cflags --libs subctx-server) -Wl,-rpath,"$prefix/lib"
cc "$src/client.c" -o "$work/pc_client" $(pkg-config --cflags --libs subctx-client) -Wl,-rpath,"$prefix/lib"
"$work/pc_server" "$work/b.img"
expect "pkg-config shared" "$work/b.img" "$work/pc_client"
c++ -std=c++20 "$src/server.cpp" -o "$work/st_server" $(pkg-config --cflags subctx-server) "$prefix/lib/libsubctx_server.a" -ldl
cc "$src/client.c" -o "$work/st_client" $(pkg-config --cflags subctx-client) "$prefix/lib/libsubctx_client.a" -lstdc++ -ldl
"$work/st_server" "$work/c.img"
expect "static" "$work/c.img" "$work/st_client"
