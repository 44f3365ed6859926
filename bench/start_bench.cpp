// Process start (issue 15): what linking libsubctx_client adds to the start
// of a new process, and what a fresh C client pays to map an image and make
// one call.  Each iteration starts a small C program with posix_spawn
// (descriptors from 3 closed, stdout read through a pipe: bench::spawn) and
// waits for it to exit.  A row with a baseline starts the baseline program
// in the same iteration, just before its own, so that both see the same
// machine; its counters: base_ms (the baseline's mean over those
// iterations), added_ms (this row's mean - base_ms) and ratio.
//
//   start/hello            bench_start_hello: a C hello world, nothing else linked
//   start/hello_stdcxx     the same linked with libstdc++ only (the C++ runtime's share)
//   start/hello_gcc_s      the same linked with libgcc_s only (the unwinder, which
//                          libsubctx_client loads: its own copy of the C++ runtime
//                          uses the process's one, src/CMakeLists.txt)
//   start/hello_linked     the same linked with libsubctx_client, nothing of it used
//   start/stdcxx_linked    linked with libstdc++ and libsubctx_client, nothing of it
//                          used; baseline start/hello_stdcxx: what the library adds
//                          to a C++ program
//   start/client_map_call  bench_start_client IMAGE: sbc_request_map of a 1 MB
//                          bench_image_server image, one sbc_request_call of add1, exit
#include <benchmark/benchmark.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// One start of argv, waited for: seconds, or -1 after SkipWithError when
// it did not print `expected` and exit with status 0.  Exit status 3 of
// bench_start_client (its addresses collided with the image's) counts in
// *conflicts and is started again, untimed.
double start_once(benchmark::State& state, const std::vector<std::string>& argv, const std::string& expected,
                  int* conflicts = nullptr) {
  for (int attempt = 0;; ++attempt) {
    const auto t0 = Clock::now();
    const bench::Spawned r = bench::spawn(argv, /*quiet=*/true);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.out == expected) return s;
    if (conflicts && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3 && attempt < 20) {
      ++*conflicts;
      continue;
    }
    state.SkipWithError(
        (argv[0] + " failed (wait status " + std::to_string(r.status) + ", output \"" + r.out + "\")").c_str());
    return -1;
  }
}

std::vector<std::string> hello(const char* variant = "") {
  return {bench::sibling_program(std::string("bench_start_hello") + variant)};
}

void BM_hello(benchmark::State& state) {
  const auto argv = hello();
  for (auto _ : state) {
    const double s = start_once(state, argv, "hello\n");
    if (s < 0) break;
    state.SetIterationTime(s);
  }
}

// Starts the baseline, then argv, per iteration; the iteration's time is argv's.
void with_baseline(benchmark::State& state, const std::vector<std::string>& argv, const std::string& expected,
                   int* conflicts = nullptr, const std::vector<std::string>& base = hello()) {
  double base_s = 0, own_s = 0;
  int64_t n = 0;
  for (auto _ : state) {
    const double b = start_once(state, base, "hello\n");
    const double s = b < 0 ? -1 : start_once(state, argv, expected, conflicts);
    if (s < 0) break;
    state.SetIterationTime(s);
    base_s += b;
    own_s += s;
    ++n;
  }
  if (n == 0) return;
  state.counters["base_ms"] = base_s / static_cast<double>(n) * 1e3;
  state.counters["added_ms"] = (own_s - base_s) / static_cast<double>(n) * 1e3;
  state.counters["ratio"] = own_s / base_s;
}

void BM_hello_stdcxx(benchmark::State& state) { with_baseline(state, hello("_stdcxx"), "hello\n"); }
void BM_hello_gcc_s(benchmark::State& state) { with_baseline(state, hello("_gcc_s"), "hello\n"); }
void BM_hello_linked(benchmark::State& state) { with_baseline(state, hello("_linked"), "hello\n"); }
void BM_stdcxx_linked(benchmark::State& state) {
  with_baseline(state, hello("_stdcxx_linked"), "hello\n", nullptr, hello("_stdcxx"));
}

const std::string& image() {
  static const std::string path = [] {
    const std::string p = bench::temp_dir().file("start.img");
    bench::make_image(p, {bench::sibling_program("bench_image_server"), p});
    return p;
  }();
  return path;
}

void BM_client_map_call(benchmark::State& state) {
  int conflicts = 0;
  with_baseline(state, {bench::sibling_program("bench_start_client"), image()}, "42\n", &conflicts);
  state.counters["conflicts"] = conflicts;
}

}  // namespace

// 300 starts per row, as the issue measured them.
BENCHMARK(BM_hello)->Name("start/hello")->UseManualTime()->Iterations(300)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_hello_stdcxx)->Name("start/hello_stdcxx")->UseManualTime()->Iterations(300)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_hello_gcc_s)->Name("start/hello_gcc_s")->UseManualTime()->Iterations(300)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_hello_linked)->Name("start/hello_linked")->UseManualTime()->Iterations(300)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stdcxx_linked)
    ->Name("start/stdcxx_linked")
    ->UseManualTime()
    ->Iterations(300)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_client_map_call)
    ->Name("start/client_map_call")
    ->UseManualTime()
    ->Iterations(300)
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
