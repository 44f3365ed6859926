// Snapshot throughput: a server with a 1 GiB heap, half of it data and half
// zero pages (64 KiB runs alternating), snapshots itself; the time is what
// the server measured around subctx::snapshot().  Zero pages either never
// touched (snapshot skips them by /proc/self/pagemap) or written with zeros
// (snapshot must read and compare them).  The floor, timed by the same
// server on the same heap: writing just the data runs to a sparse file.
// Also the image's size on disk (st_blocks * 512) against its file size.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <subctx/subctx.hpp>

#include "support.hpp"

namespace {

// The image must work, not just be written: map it and call into it.
void check_image(benchmark::State& state, const std::string& image) {
  auto& mm = subctx::Matchmaker::instance();
  try {
    subctx::Subcontext sc = mm.request_map(image);
    if (sc.call<int64_t(int64_t)>("add1", 1) != 2) state.SkipWithError("wrong result from add1");
    mm.unmap(sc);
  } catch (const subctx::AddressConflict&) {
    // The server's random layout collides with this client's: not a snapshot fault.
  }
}

void snapshot_1g_half_zero(benchmark::State& state, const char* zero_mode) {
  const std::string image = bench::temp_dir().file(std::string("snapshot_") + zero_mode + ".img");
  const std::vector<std::string> argv = {bench::sibling_program("bench_image_server"),
                                         image,
                                         "--heap-mb",
                                         "1024",
                                         "--fill-pct",
                                         "50",
                                         "--run-kb",
                                         "64",
                                         "--zero",
                                         zero_mode,
                                         "--floor"};
  double floor_s = 0, snapshot_s = 0, heap = 0, data = 0, file = 0, disk = 0;
  bool first = true;
  for (auto _ : state) {
    const bench::Report r = bench::run_server(argv);
    const double s = bench::report_value(r, "snapshot_s");
    state.SetIterationTime(s);
    snapshot_s += s;
    floor_s += bench::report_value(r, "floor_s");
    heap = bench::report_value(r, "heap_bytes");
    data = bench::report_value(r, "data_bytes");
    file = bench::report_value(r, "file_bytes");
    disk = bench::report_value(r, "disk_bytes");
    if (first) check_image(state, image);
    first = false;
    unlink(image.c_str());
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["heap_MB"] = heap / 1e6;
  state.counters["data_MB"] = data / 1e6;
  state.counters["heap_MB_per_s"] = heap / (snapshot_s / n) / 1e6;
  state.counters["floor_s"] = floor_s / n;
  state.counters["vs_floor"] = snapshot_s / floor_s;
  state.counters["file_MB"] = file / 1e6;
  state.counters["disk_MB"] = disk / 1e6;
  state.counters["disk_per_file"] = disk / file;
}

}  // namespace

BENCHMARK_CAPTURE(snapshot_1g_half_zero, untouched, "untouched")
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(snapshot_1g_half_zero, touched, "touched")
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
