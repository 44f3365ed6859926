// Bench target of bench_external_snapshot: a plain program (no subctx code,
// not linked with it) that builds the heap bench_image_server builds
// (heap_layout.hpp), says "ready" on stdout and waits in pause() to be
// snapshotted from outside (`subctx snapshot --pid`, docs/external-snapshot.md).
//
//   bench_external_target [--heap-mb N] [--fill-pct P] [--run-kb K] [--zero untouched|touched]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "heap_layout.hpp"

// The export the bench calls in the image: a check that it works.
extern "C" __attribute__((noipa, used)) int64_t bench_add1(int64_t x) { return x + 1; }

int main(int argc, char** argv) {
  bench::HeapLayout heap;
  heap.bytes = uint64_t{1} << 20;
  heap.fill_pct = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const unsigned long long v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--heap-mb") heap.bytes = v << 20;
    else if (a == "--fill-pct") heap.fill_pct = static_cast<unsigned>(v);
    else if (a == "--run-kb") heap.run_bytes = v << 10;
    else if (a == "--zero") heap.touch_zero = std::string(argv[i + 1]) == "touched";
    else {
      std::fprintf(stderr, "bench_external_target: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    bench::build_heap(heap);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_external_target: %s\n", e.what());
    return 1;
  }
  // write(2), not stdio: a snapshot taken the moment the line arrives must
  // not find stdout's lock held.
  char line[64];
  const int n = std::snprintf(line, sizeof line, "ready %llu\n", static_cast<unsigned long long>(heap.data_bytes()));
  if (write(STDOUT_FILENO, line, static_cast<size_t>(n)) != n) return 1;
  for (;;) pause();
}
