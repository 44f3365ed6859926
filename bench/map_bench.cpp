// Map latency: request_map + unmap per iteration, for images whose heap holds
// 1 MB, 100 MB and 1 GB of data, and for 10, 100 and 1000 extra segments;
// also map + first call + unmap.  The floor: the same segments mapped with
// plain mmap(MAP_FIXED_NOREPLACE) and unmapped (raw_mmap).  Images are hot
// in the page cache (just written), as for a client started after a server.
//
// Counters: syscalls_map, syscalls_unmap (raw_mmap: syscalls), counted once
// per row in a forked child (syscall_count.hpp).  The phases/ rows are map/
// again with the library's phase clock on (src/matchmaker/map_phases.hpp;
// this program links the static library to reach it): µs per iteration of
// each phase, "publish" the rest of request_map (fault view, signal
// forwarding table, registry) and "unmap_other" the rest of unmap; their
// label lists the system calls of one map and one unmap by name.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <subctx/subctx.hpp>

#include "matchmaker/map_phases.hpp"
#include "support.hpp"
#include "syscall_count.hpp"

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

subctx::MapOptions with(subctx::Protection p) {
  subctx::MapOptions o;
  o.protection = p;
  return o;
}

// The system calls of one request_map and of one unmap (once per image and
// backend: they do not change between runs).
struct MapSyscalls {
  bench::SyscallCount map, unmap;
};
const MapSyscalls& map_syscalls(const std::string& image, subctx::Protection p) {
  static std::map<std::pair<std::string, int>, MapSyscalls> counted;
  auto key = std::make_pair(image, static_cast<int>(p));
  auto it = counted.find(key);
  if (it != counted.end()) return it->second;
  auto& mm = subctx::Matchmaker::instance();
  MapSyscalls c;
  // The child maps and unmaps once first: what a first map in a process
  // (or in a child) does once is not counted.
  auto warm = [&] { mm.unmap(mm.request_map(image, with(p))); };
  c.map = bench::count_syscalls(warm, [&] { mm.request_map(image, with(p)); });
  subctx::Subcontext sc;
  c.unmap = bench::count_syscalls(
      [&] {
        warm();
        sc = mm.request_map(image, with(p));
      },
      [&] { mm.unmap(sc); });
  return counted.emplace(key, std::move(c)).first->second;
}

void syscall_counters(benchmark::State& state, const std::string& image, subctx::Protection p) {
  const MapSyscalls& c = map_syscalls(image, p);
  if (!c.map.error.empty() || !c.unmap.error.empty()) {
    state.SkipWithError(("counting system calls: " + c.map.error + c.unmap.error).c_str());
    return;
  }
  state.counters["syscalls_map"] = static_cast<double>(c.map.total);
  state.counters["syscalls_unmap"] = static_cast<double>(c.unmap.total);
}

void map_unmap(benchmark::State& state, const ImageSpec* spec) {
  const std::string& image = image_for(*spec);
  auto& mm = subctx::Matchmaker::instance();
  for (auto _ : state) mm.unmap(mm.request_map(image));
  describe(state, image);
  syscall_counters(state, image, subctx::Protection::Auto);
}

// map/ with the phase clock on (see the top of the file).
void map_phases(benchmark::State& state, const ImageSpec* spec, subctx::Protection p) {
  using subctx::matchmaker::MapPhase;
  const std::string& image = image_for(*spec);
  auto& mm = subctx::Matchmaker::instance();
  const subctx::MapOptions options = with(p);
  subctx::matchmaker::MapPhaseTimes t;
  using Clock = std::chrono::steady_clock;
  Clock::duration map_time{}, unmap_time{};
  subctx::matchmaker::map_phase_sink = &t;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    subctx::Subcontext sc = mm.request_map(image, options);
    const auto t1 = Clock::now();
    mm.unmap(sc);
    map_time += t1 - t0;
    unmap_time += Clock::now() - t1;
  }
  subctx::matchmaker::map_phase_sink = nullptr;
  auto us = [](double ns) { return benchmark::Counter(ns * 1e-3, benchmark::Counter::kAvgIterations); };
  double map_phases_ns = 0, unmap_phases_ns = 0;
  for (size_t i = 0; i < static_cast<size_t>(MapPhase::Count); ++i) {
    const double ns = static_cast<double>(t.ns[i]);
    state.counters[subctx::matchmaker::kMapPhaseNames[i]] = us(ns);
    (i < static_cast<size_t>(MapPhase::UnmapLayout) ? map_phases_ns : unmap_phases_ns) += ns;
  }
  const auto ns_of = [](Clock::duration d) { return static_cast<double>(std::chrono::nanoseconds(d).count()); };
  state.counters["publish"] = us(ns_of(map_time) - map_phases_ns);
  state.counters["unmap_other"] = us(ns_of(unmap_time) - unmap_phases_ns);
  syscall_counters(state, image, p);
  const MapSyscalls& c = map_syscalls(image, p);
  state.SetLabel("map: " + c.map.list() + "; unmap: " + c.unmap.list());
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
  const bench::SyscallCount c = bench::count_syscalls([] {},
                                                      [&] {
                                                        raw.map();
                                                        raw.unmap();
                                                      });
  state.counters["syscalls"] = static_cast<double>(c.total);
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
  const ImageSpec* small = &specs().front();
  for (subctx::Protection p : {subctx::Protection::Auto, subctx::Protection::None, subctx::Protection::Mprotect})
    benchmark::RegisterBenchmark(("phases/" + small->name + "/" + subctx::protection_name(p)).c_str(), map_phases,
                                 small, p)
        ->Unit(benchmark::kMicrosecond);
  return bench::benchmark_main(argc, argv);
}
