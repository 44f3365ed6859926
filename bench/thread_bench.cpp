// Threads of subcontext code (docs/threads.md) against the same work done
// natively in this process, in one run, per protection backend that allows
// threads (none, pkey; mprotect refuses them):
//   BM_thread_create  a thread started and joined (pthread_create inside a
//                     call: the clone made by the SIGSYS handler, the child's
//                     start-up, its mediated system calls) -- sub_ns per
//                     thread, native_ns, x_native.
//   BM_pool_call      a call whose 4-thread pool (started by the first call,
//                     kept) sums 0..n-1: the call, the pool's futex wake-ups
//                     and waits, all mediated -- sub_us per call, native_us
//                     for the same pool natively, x_native.
#include <benchmark/benchmark.h>

#include <chrono>
#include <subctx/subctx.hpp>

#include "support.hpp"
#include "thread_work.hpp"

namespace {

const std::string& image() {
  static const std::string path = [] {
    const std::string image = bench::temp_dir().file("thread.img");
    bench::make_image(image, {bench::sibling_program("bench_thread_server"), image});
    return image;
  }();
  return path;
}

template <class F>
double ns_per(F&& fn, int times) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < times; ++i) fn();
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / times;
}

void BM_thread_create(benchmark::State& state, subctx::Protection protection) {
  subctx::MapOptions options;
  options.protection = protection;
  subctx::Subcontext sc = bench::map_or_skip(state, image(), options);
  if (!sc.valid()) return;
  const auto spawn = sc.function<int64_t(int64_t)>("spawn_join");
  constexpr int kThreads = 200;
  double sub_ns = 0, native_ns = 0;
  for (auto _ : state) {
    sub_ns = ns_per([&] { benchmark::DoNotOptimize(spawn(kThreads)); }, 5) / kThreads;
    native_ns = ns_per([&] { benchmark::DoNotOptimize(thread_work::spawn_join(kThreads)); }, 5) / kThreads;
  }
  if (spawn(1) != 1) state.SkipWithError("spawn_join failed inside (threads refused?)");
  state.counters["sub_ns"] = sub_ns;
  state.counters["native_ns"] = native_ns;
  state.counters["x_native"] = sub_ns / native_ns;
  subctx::Matchmaker::instance().unmap(sc);
}

void BM_pool_call(benchmark::State& state, subctx::Protection protection) {
  subctx::MapOptions options;
  options.protection = protection;
  subctx::Subcontext sc = bench::map_or_skip(state, image(), options);
  if (!sc.valid()) return;
  const auto pool_sum = sc.function<int64_t(int64_t, int64_t)>("pool_sum");
  static thread_work::Pool native_pool;
  constexpr int64_t kN = 400000, kWorkers = 4;
  const int64_t want = kN * (kN - 1) / 2;
  if (pool_sum(kN, kWorkers) != want || thread_work::pool_sum(native_pool, kN, kWorkers) != want) {
    state.SkipWithError("wrong sum");
    return;
  }
  double sub_ns = 0, native_ns = 0;
  for (auto _ : state) {
    sub_ns = ns_per([&] { benchmark::DoNotOptimize(pool_sum(kN, kWorkers)); }, 200);
    native_ns = ns_per([&] { benchmark::DoNotOptimize(thread_work::pool_sum(native_pool, kN, kWorkers)); }, 200);
  }
  state.counters["sub_us"] = sub_ns / 1000;
  state.counters["native_us"] = native_ns / 1000;
  state.counters["x_native"] = sub_ns / native_ns;
  subctx::Matchmaker::instance().unmap(sc);
}

BENCHMARK_CAPTURE(BM_thread_create, none, subctx::Protection::None)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_thread_create, pkey, subctx::Protection::Pkey)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_pool_call, none, subctx::Protection::None)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_pool_call, pkey, subctx::Protection::Pkey)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
