// Bench server: builds a heap and extra segments as told, snapshots itself
// into IMAGE and prints what it measured as "key value" lines on stdout.
//
//   bench_image_server IMAGE [--heap-mb N] [--fill-pct P] [--run-kb K]
//                            [--zero untouched|touched] [--segments N] [--floor]
//
// --floor also times the floor for the snapshot on the same heap, just before
// it: dump_floor writes the heap's data runs to a sparse file.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <subctx/server.hpp>

#include "add1.hpp"
#include "clock.hpp"
#include "heap_layout.hpp"

SUBCTX_EXPORT(add1);

namespace {

struct Options {
  std::string image;
  bench::HeapLayout heap;
  size_t segments = 0;
  bool floor = false;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_image_server IMAGE [--heap-mb N] [--fill-pct P] [--run-kb K] "
               "[--zero untouched|touched] [--segments N] [--floor]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  o.heap.bytes = uint64_t{1} << 20;
  if (argc < 2) usage();
  o.image = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : (usage(), 0ull); };
    if (a == "--heap-mb") o.heap.bytes = value() << 20;
    else if (a == "--fill-pct") o.heap.fill_pct = static_cast<unsigned>(value());
    else if (a == "--run-kb") o.heap.run_bytes = value() << 10;
    else if (a == "--segments") o.segments = value();
    else if (a == "--floor") o.floor = true;
    else if (a == "--zero") {
      const std::string mode = i + 1 < argc ? argv[++i] : "";
      if (mode != "touched" && mode != "untouched") usage();
      o.heap.touch_zero = mode == "touched";
    } else {
      usage();
    }
  }
  if (o.heap.fill_pct > 100) usage();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    const double t0 = bench::now_seconds();
    bench::build_heap(o.heap);
    bench::make_extra_segments(o.segments);
    const double built = bench::now_seconds() - t0;
    // The floor first: its file is removed before the snapshot, so both
    // write into page cache made of pages that were just freed.
    double floor_s = 0;
    if (o.floor) {
      bench::prewarm_memory(o.heap.data_bytes() + (o.heap.data_bytes() >> 1) + (64 << 20));
      floor_s = bench::dump_floor(o.heap, o.image + ".floor");
    }

    const double t1 = bench::now_seconds();
    subctx::snapshot(o.image);
    const double snapshot_s = bench::now_seconds() - t1;

    struct stat st;
    if (stat(o.image.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + o.image);
    std::printf("build_s %.9f\nsnapshot_s %.9f\nheap_bytes %llu\ndata_bytes %llu\nfile_bytes %lld\ndisk_bytes %lld\n",
                built, snapshot_s, static_cast<unsigned long long>(o.heap.bytes),
                static_cast<unsigned long long>(o.heap.data_bytes()), static_cast<long long>(st.st_size),
                static_cast<long long>(st.st_blocks) * 512);
    if (o.floor) std::printf("floor_s %.9f\n", floor_s);
    std::fflush(stdout);
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_image_server: %s\n", e.what());
    return 1;
  }
}
