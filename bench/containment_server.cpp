// Bench server for bench_containment: exports that fault (null pointer,
// division by zero, abort), write pages of a big zero-initialized array (for
// reset), make system calls, and add1; optionally FILL MiB of heap data
// (stored in the image) so that images of different sizes can be reset.
// Prints "key value" lines: init_s, snapshot_s, dirty_pages, fill_mb.
//
//   bench_containment_server IMAGE [--fill-mb FILL]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <subctx/server.hpp>

#include "add1.hpp"
#include "clock.hpp"
#include "getppid_loop.hpp"

namespace {

constexpr int64_t kPage = 4096;
uint8_t* fill_base;
int64_t fill_bytes;

}  // namespace

// Zero at the snapshot (bss): a call's write makes an anonymous page of the
// subcontext that reset() drops.  Not static, written through a volatile
// pointer: the writes stay.
constexpr int64_t kDirtyPages = 10240;
uint8_t g_dirty_array[kDirtyPages * kPage];

// Writes one byte in each of the first n pages of the array; returns n.
int64_t dirty(int64_t n) {
  if (n < 0 || n > kDirtyPages) return -1;
  volatile uint8_t* p = g_dirty_array;
  for (int64_t i = 0; i < n; ++i) p[i * kPage] = 1;
  return n;
}

// Reads one byte of each page of the heap data (makes them present in the
// client, clean); returns their sum.
int64_t read_fill() {
  int64_t sum = 0;
  const volatile uint8_t* p = fill_base;
  for (int64_t i = 0; i < fill_bytes; i += kPage) sum += p[i];
  return sum;
}

extern "C" __attribute__((noinline)) int64_t crash_null(int64_t offset) {
  return *reinterpret_cast<volatile int64_t*>(offset);
}
int64_t divide(int64_t a, int64_t b) {
  volatile int64_t x = a, y = b;
  return x / y;
}
int64_t do_abort() { abort(); }

SUBCTX_EXPORT(add1);
SUBCTX_EXPORT(dirty);
SUBCTX_EXPORT(read_fill);
SUBCTX_EXPORT(crash_null);
SUBCTX_EXPORT(divide);
SUBCTX_EXPORT(do_abort);
SUBCTX_EXPORT(getppid_loop);

int main(int argc, char** argv) {
  int64_t fill_mb = 0;
  bool ok = argc >= 2;
  for (int i = 2; ok && i < argc; ++i) {
    if (!std::strcmp(argv[i], "--fill-mb") && i + 1 < argc) fill_mb = std::atoll(argv[++i]);
    else ok = false;
  }
  if (!ok || fill_mb < 0) {
    std::fprintf(stderr, "usage: bench_containment_server IMAGE [--fill-mb FILL]\n");
    return 2;
  }
  try {
    const double t0 = bench::now_seconds();
    fill_bytes = fill_mb << 20;
    if (fill_bytes) {
      // Data in every page (stored in the image, not a hole).
      fill_base = static_cast<uint8_t*>(std::aligned_alloc(kPage, static_cast<size_t>(fill_bytes)));
      if (!fill_base) throw std::runtime_error("cannot allocate the heap data");
      for (int64_t i = 0; i < fill_bytes; ++i) fill_base[i] = static_cast<uint8_t>(i * 31 + 7);
    }
    // Every export once before the snapshot that can run here (resolves
    // their PLT slots in this process too).
    if (dirty(0) != 0 || read_fill() < 0 || add1(1) != 2 || getppid_loop(1) <= 0)
      throw std::runtime_error("an export failed before the snapshot");
    const double init_s = bench::now_seconds() - t0;
    const double t1 = bench::now_seconds();
    subctx::snapshot(argv[1]);
    const double snapshot_s = bench::now_seconds() - t1;
    std::printf("init_s %.9f\nsnapshot_s %.9f\ndirty_pages %lld\nfill_mb %lld\n", init_s, snapshot_s,
                static_cast<long long>(kDirtyPages), static_cast<long long>(fill_mb));
    std::fflush(stdout);
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_containment_server: %s\n", e.what());
    return 1;
  }
}
