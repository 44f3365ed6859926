// Warm start: what a server pays at every start (build an in-memory SQLite
// table of 200k rows with an index; timed inside the server, process start
// not included) vs what a client pays to use the snapshot of that state:
// request_map + first query + unmap.  Also map alone and a query in a
// subcontext that stays mapped.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

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

// A copy of the image trained on eight lookups (`subctx train`: its
// hot-pages note, docs/prefetch.md).  The timed rows look up other rows:
// the recorded pages are the query's code and the B-tree's upper levels,
// not the leaf each row lives in (one or two pages a cold call still reads).
const std::string& trained_image() {
  static const std::string path = [] {
    const std::string p = bench::temp_dir().file("sqlite-hot.img");
    const bench::Spawned cp = bench::spawn({"/bin/cp", "--sparse=always", image(), p});
    if (cp.status != 0) throw std::runtime_error("cannot copy " + image() + " to " + p);
    std::vector<std::string> argv = {BENCH_SUBCTX_TOOL, "train", p};
    for (int64_t r : {1, 7919, 15838, 50000, 100000, 123457, 150000, 199999}) {
      argv.push_back("--call");
      argv.push_back("lookup:" + std::to_string(r));
    }
    const bench::Spawned train = bench::spawn(argv);
    if (train.status != 0) throw std::runtime_error("subctx train " + p + " failed");
    std::fprintf(stderr, "%s", train.out.c_str());
    return p;
  }();
  return path;
}

// Drops the image's pages from the page cache (not mapped anywhere, and
// clean: written back first), as after a reboot or under memory pressure.
void evict(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

// request_map + first lookup + unmap of `path`, the page cache warm or
// evicted before each: map and first call timed apart, page faults counted.
void first_call(benchmark::State& state, const std::string& path, bool cold) {
  auto& mm = subctx::Matchmaker::instance();
  using Clock = std::chrono::steady_clock;
  double map_s = 0, call_s = 0, map_minflt = 0, call_minflt = 0, map_majflt = 0, call_majflt = 0;
  auto faults = [](const rusage& a, const rusage& b, double* minflt, double* majflt) {
    *minflt += static_cast<double>(b.ru_minflt - a.ru_minflt);
    *majflt += static_cast<double>(b.ru_majflt - a.ru_majflt);
  };
  uint64_t i = 1000;
  for (auto _ : state) {
    if (cold) evict(path);
    rusage r0, r1, r2;
    getrusage(RUSAGE_SELF, &r0);
    const auto t0 = Clock::now();
    subctx::Subcontext sc = mm.request_map(path);
    const auto t1 = Clock::now();
    getrusage(RUSAGE_SELF, &r1);
    if (sc.call<Sig>("lookup", row(i++)) < 0) state.SkipWithError("lookup found no row");
    const auto t2 = Clock::now();
    getrusage(RUSAGE_SELF, &r2);
    mm.unmap(sc);
    state.SetIterationTime(std::chrono::duration<double>((t2 - t1) + (t1 - t0)).count());
    map_s += std::chrono::duration<double>(t1 - t0).count();
    call_s += std::chrono::duration<double>(t2 - t1).count();
    // Populating counts as faults too (MADV_POPULATE_READ faults the pages in).
    faults(r0, r1, &map_minflt, &map_majflt);
    faults(r1, r2, &call_minflt, &call_majflt);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["map_us"] = map_s / n * 1e6;
  state.counters["call_us"] = call_s / n * 1e6;
  state.counters["map_minflt"] = map_minflt / n;
  state.counters["map_majflt"] = map_majflt / n;
  state.counters["call_minflt"] = call_minflt / n;
  state.counters["call_majflt"] = call_majflt / n;
}

// SUBCTX_PREFETCH=mode for one row: the Matchmaker reads it when installed.
class PrefetchMode {
 public:
  explicit PrefetchMode(const char* mode) { reinstall(mode); }
  ~PrefetchMode() { reinstall(nullptr); }
  PrefetchMode(const PrefetchMode&) = delete;
  PrefetchMode& operator=(const PrefetchMode&) = delete;

 private:
  static void reinstall(const char* mode) {
    subctx::Matchmaker::instance().finalize();
    if (mode) setenv("SUBCTX_PREFETCH", mode, 1);
    else unsetenv("SUBCTX_PREFETCH");
    subctx::Matchmaker::instance().init();
  }
};

void first_call_plain_warm(benchmark::State& state) { first_call(state, image(), false); }
// The default (SUBCTX_PREFETCH=on) does nothing while the page cache holds
// the image; `always` populates the hot pages then too.
void first_call_hot_warm(benchmark::State& state) { first_call(state, trained_image(), false); }
void first_call_hot_warm_always(benchmark::State& state) {
  const std::string& path = trained_image();
  PrefetchMode always("always");
  first_call(state, path, false);
}
void first_call_plain_cold(benchmark::State& state) { first_call(state, image(), true); }
void first_call_hot_cold(benchmark::State& state) { first_call(state, trained_image(), true); }

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
// The first call, with and without the hot-pages note, warm and evicted
// (docs/prefetch.md); the plain warm row is the others' baseline.
BENCHMARK(first_call_plain_warm)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(first_call_hot_warm)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(first_call_hot_warm_always)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(first_call_plain_cold)->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
BENCHMARK(first_call_hot_cold)->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);
BENCHMARK(warm_call)->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
