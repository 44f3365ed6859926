// Map latency: request_map + unmap per iteration, for images whose heap holds
// 1 MB, 100 MB and 1 GB of data, and for 10, 100 and 1000 extra segments;
// also map + first call + unmap.  The floor: the same segments mapped with
// plain mmap(MAP_FIXED_NOREPLACE) and unmapped (raw_mmap).  Images are hot
// in the page cache (just written), as for a client started after a server.
#include <benchmark/benchmark.h>

#include <map>
#include <subctx/subctx.hpp>

#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);

struct ImageSpec {
  std::string name;                    // benchmark argument, e.g. "heap_mb:100"
  std::vector<std::string> arguments;  // for bench_image_server
};

const std::string& image_for(const ImageSpec& spec) {
  static std::map<std::string, std::string> made;
  auto it = made.find(spec.name);
  if (it != made.end()) return it->second;
  std::string file = spec.name;
  for (char& c : file)
    if (c == ':') c = '_';
  const std::string image = bench::temp_dir().file(file + ".img");
  std::vector<std::string> argv = {bench::sibling_program("bench_image_server"), image};
  argv.insert(argv.end(), spec.arguments.begin(), spec.arguments.end());
  bench::make_image(image, argv);
  return made.emplace(spec.name, image).first->second;
}

void describe(benchmark::State& state, const std::string& image) {
  const bench::ImageStats s = bench::image_stats(image);
  state.counters["segments"] = s.segments;
  state.counters["file_MB"] = static_cast<double>(s.file_bytes) / 1e6;
  state.counters["virtual_MB"] = static_cast<double>(s.virtual_bytes) / 1e6;
}

void map_unmap(benchmark::State& state, const ImageSpec* spec) {
  const std::string& image = image_for(*spec);
  auto& mm = subctx::Matchmaker::instance();
  for (auto _ : state) mm.unmap(mm.request_map(image));
  describe(state, image);
}

void map_first_call(benchmark::State& state, const ImageSpec* spec) {
  const std::string& image = image_for(*spec);
  auto& mm = subctx::Matchmaker::instance();
  for (auto _ : state) {
    subctx::Subcontext sc = mm.request_map(image);
    if (sc.call<Sig>("add1", 41) != 42) state.SkipWithError("wrong result from add1");
    mm.unmap(sc);
  }
  describe(state, image);
}

void raw_mmap(benchmark::State& state, const ImageSpec* spec) {
  const std::string& image = image_for(*spec);
  bench::RawImageMap raw(image);
  for (auto _ : state) {
    raw.map();
    raw.unmap();
  }
  describe(state, image);
}

const std::vector<ImageSpec>& specs() {
  static const std::vector<ImageSpec> all = {
      {"heap_mb:1", {"--heap-mb", "1"}},
      {"heap_mb:100", {"--heap-mb", "100"}},
      {"heap_mb:1024", {"--heap-mb", "1024"}},
      {"extra_segments:10", {"--heap-mb", "1", "--segments", "10"}},
      {"extra_segments:100", {"--heap-mb", "1", "--segments", "100"}},
      {"extra_segments:1000", {"--heap-mb", "1", "--segments", "1000"}},
  };
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  for (const ImageSpec& spec : specs()) {
    benchmark::RegisterBenchmark(("map/" + spec.name).c_str(), map_unmap, &spec)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("map_first_call/" + spec.name).c_str(), map_first_call, &spec)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("raw_mmap/" + spec.name).c_str(), raw_mmap, &spec)->Unit(benchmark::kMicrosecond);
  }
  return bench::benchmark_main(argc, argv);
}
