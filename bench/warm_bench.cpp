// Warm start: what a server pays at every start (build an in-memory SQLite
// table of 200k rows with an index; timed inside the server, process start
// not included) vs what a client pays to use the snapshot of that state:
// request_map + first query + unmap.  Also map alone and a query in a
// subcontext that stays mapped.
#include <benchmark/benchmark.h>

#include <subctx/subctx.hpp>

#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);
constexpr int64_t kRows = 200000;

std::vector<std::string> server_argv(const std::string& image) {
  return {bench::sibling_program("bench_sqlite_server"), image, "--rows", std::to_string(kRows)};
}

const std::string& image() {
  static const std::string path = [] {
    const std::string p = bench::temp_dir().file("sqlite.img");
    bench::make_image(p, server_argv(p));
    return p;
  }();
  return path;
}

// Rows in a scattered order, so the first calls touch different pages.
int64_t row(uint64_t i) { return static_cast<int64_t>((i * 7919) % kRows); }

void server_init(benchmark::State& state) {
  std::vector<std::string> argv = server_argv(bench::temp_dir().file("unused.img"));
  argv.push_back("--init-only");
  for (auto _ : state) state.SetIterationTime(bench::report_value(bench::run_server(argv), "init_s"));
  state.counters["rows"] = kRows;
}

void map_first_call(benchmark::State& state) {
  const std::string& path = image();
  auto& mm = subctx::Matchmaker::instance();
  uint64_t i = 0;
  for (auto _ : state) {
    subctx::Subcontext sc = mm.request_map(path);
    if (sc.call<Sig>("lookup", row(i++)) < 0) state.SkipWithError("lookup found no row");
    mm.unmap(sc);
  }
  const bench::ImageStats s = bench::image_stats(path);
  state.counters["file_MB"] = static_cast<double>(s.file_bytes) / 1e6;
  state.counters["disk_MB"] = static_cast<double>(s.disk_bytes) / 1e6;
  state.counters["segments"] = s.segments;
}

void map_only(benchmark::State& state) {
  const std::string& path = image();
  auto& mm = subctx::Matchmaker::instance();
  for (auto _ : state) mm.unmap(mm.request_map(path));
}

void warm_call(benchmark::State& state) {
  auto& mm = subctx::Matchmaker::instance();
  subctx::Subcontext sc = mm.request_map(image());
  auto lookup = sc.function<Sig>("lookup");
  uint64_t i = 0;
  for (auto _ : state)
    if (lookup(row(i++)) < 0) state.SkipWithError("lookup found no row");
  mm.unmap(sc);
}

}  // namespace

BENCHMARK(server_init)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(map_first_call)->Unit(benchmark::kMicrosecond);
BENCHMARK(map_only)->Unit(benchmark::kMicrosecond);
BENCHMARK(warm_call)->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
