#!/usr/bin/env bash
# usage: install_prefix.sh BUILD_DIR PREFIX
# `cmake --install BUILD_DIR --prefix PREFIX` into a fresh PREFIX (the
# fixture of the other install tests), then checks the installed files.
set -euo pipefail
build=$1
prefix=$2
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/subctx \
         include/subctx/subctx.h include/subctx/subctx.hpp include/subctx/server.hpp \
         lib/libsubctx_client.so lib/libsubctx_server.so lib/libsubctx_client.a lib/libsubctx_server.a \
         lib/pkgconfig/subctx-client.pc lib/pkgconfig/subctx-server.pc lib/cmake/subctx/subctxConfig.cmake; do
  [ -e "$prefix/$f" ] || { echo "missing installed file: $f"; exit 1; }
done
echo "installed into $prefix"
