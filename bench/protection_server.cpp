// Bench server for bench_protection: the SQLite + Lua workload
// (sqlite_lua.hpp) plus an array of PAGES pages, then the snapshot.
// Exports add1 (the trivial call), lookup (a SQLite point query), lua_score
// (a Lua call) and touch_pages (writes one byte in each of the first n pages
// of the array: n pages of the subcontext become present in the client).
// Prints "key value" lines: init_s, snapshot_s, rows, array_pages.
//
//   bench_protection_server IMAGE [--rows N] [--array-pages P]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <subctx/server.hpp>

#include "add1.hpp"
#include "clock.hpp"
#include "sqlite_lua.hpp"

namespace {

constexpr int64_t kPage = 4096;
uint8_t* array_base;
int64_t array_pages;

}  // namespace

int64_t lookup(int64_t k) { return bench::sqlite_lua::lookup(k); }
int64_t lua_score(int64_t x) { return bench::sqlite_lua::lua_score(x); }

// Adds 1 to the first byte of each of the first n pages; returns their sum.
int64_t touch_pages(int64_t n) {
  if (n < 0 || n > array_pages) return -1;
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += ++array_base[i * kPage];
  return sum;
}

SUBCTX_EXPORT(add1);
SUBCTX_EXPORT(lookup);
SUBCTX_EXPORT(lua_score);
SUBCTX_EXPORT(touch_pages);

int main(int argc, char** argv) {
  int64_t rows = 50000;
  array_pages = 1024;
  bool ok = argc >= 2;
  for (int i = 2; ok && i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rows") && i + 1 < argc) rows = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--array-pages") && i + 1 < argc) array_pages = std::atoll(argv[++i]);
    else ok = false;
  }
  if (!ok || rows < 1 || array_pages < 1) {
    std::fprintf(stderr, "usage: bench_protection_server IMAGE [--rows N] [--array-pages P]\n");
    return 2;
  }
  try {
    const double t0 = bench::now_seconds();
    bench::sqlite_lua::init(rows);
    // Data in every page (stored in the image, not a hole): a client's
    // touch_pages() copies file pages, like a real heap's.
    array_base = static_cast<uint8_t*>(std::aligned_alloc(kPage, static_cast<size_t>(array_pages * kPage)));
    if (!array_base) throw std::runtime_error("cannot allocate the array");
    for (int64_t i = 0; i < array_pages * kPage; ++i) array_base[i] = static_cast<uint8_t>(i * 31 + 7);
    const double init_s = bench::now_seconds() - t0;
    if (lookup(rows / 2) < 0 || lua_score(3) < 0 || touch_pages(1) < 0)
      throw std::runtime_error("a workload export failed before the snapshot");
    const double t1 = bench::now_seconds();
    subctx::snapshot(argv[1]);
    const double snapshot_s = bench::now_seconds() - t1;
    std::printf("init_s %.9f\nsnapshot_s %.9f\nrows %lld\narray_pages %lld\n", init_s, snapshot_s,
                static_cast<long long>(rows), static_cast<long long>(array_pages));
    std::fflush(stdout);
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_protection_server: %s\n", e.what());
    return 1;
  }
}
