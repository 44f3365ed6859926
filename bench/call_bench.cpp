// Call overhead: add1() called directly in this binary (the baseline) vs the
// same function exported by a subcontext and called through the gate: by
// name, through a handle resolved once, and through the C API.  Each result
// feeds the next call, so calls cannot overlap; the count is checked.
#include <benchmark/benchmark.h>

#include <subctx/subctx.h>
#include <subctx/subctx.hpp>

#include "add1.hpp"
#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);

// An optimization barrier for one integer kept in a register.  Not
// benchmark::DoNotOptimize: its "+m,r" constraint (libbenchmark 1.7.1) made
// GCC 12 drop the store `x = ret` in the C API loop below.
template <class T>
inline __attribute__((always_inline)) void keep(T& value) {
  asm volatile("" : "+r"(value));
}

const subctx::Subcontext& subcontext() {
  static const subctx::Subcontext sc = [] {
    const std::string image = bench::temp_dir().file("call.img");
    bench::make_image(image, {bench::sibling_program("bench_image_server"), image, "--heap-mb", "1"});
    return subctx::Matchmaker::instance().request_map(image);
  }();
  return sc;
}

void check(benchmark::State& state, int64_t x) {
  if (!state.error_occurred() && x != static_cast<int64_t>(state.iterations()))
    state.SkipWithError("wrong result from add1");
}

void BM_direct(benchmark::State& state) {
  int64_t x = 0;
  for (auto _ : state) {
    x = add1(x);
    keep(x);
  }
  check(state, x);
}

void BM_gate_by_name(benchmark::State& state) {
  const subctx::Subcontext& sc = subcontext();
  int64_t x = 0;
  for (auto _ : state) {
    x = sc.call<Sig>("add1", x);
    keep(x);
  }
  check(state, x);
}

void BM_gate_handle(benchmark::State& state) {
  const auto fn = subcontext().function<Sig>("add1");
  int64_t x = 0;
  for (auto _ : state) {
    x = fn(x);
    keep(x);
  }
  check(state, x);
}

void BM_gate_c_api(benchmark::State& state) {
  const int sc = subcontext().handle();
  uint64_t x = 0;
  for (auto _ : state) {
    uint64_t ret;
    if (sbc_request_call(sc, "add1", &x, 1, &ret) != 0) {
      state.SkipWithError(sbc_last_error());
      break;
    }
    x = ret;
    keep(x);
  }
  check(state, static_cast<int64_t>(x));
}

}  // namespace

BENCHMARK(BM_direct);
BENCHMARK(BM_gate_by_name);
BENCHMARK(BM_gate_handle);
BENCHMARK(BM_gate_c_api);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
