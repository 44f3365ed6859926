// Call overhead: add1() called directly in this binary (the baseline) vs the
// same function exported by a subcontext and called through the gate: by
// name, through a handle resolved once, and through the C API.  Each result
// feeds the next call, so calls cannot overlap; the count is checked.
#include <benchmark/benchmark.h>

#include <subctx/subctx.h>
#include <subctx/subctx.hpp>

#include "add1_chain.hpp"
#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);

const subctx::Subcontext& subcontext() {
  static const subctx::Subcontext sc = [] {
    const std::string image = bench::temp_dir().file("call.img");
    bench::make_image(image, {bench::sibling_program("bench_image_server"), image, "--heap-mb", "1"});
    return subctx::Matchmaker::instance().request_map(image);
  }();
  return sc;
}

using bench::keep;

void BM_direct(benchmark::State& state) { bench::time_add1_chain(state, add1); }

void BM_gate_by_name(benchmark::State& state) {
  const subctx::Subcontext& sc = subcontext();
  bench::time_add1_chain(state, [&](int64_t x) { return sc.call<Sig>("add1", x); });
}

void BM_gate_handle(benchmark::State& state) { bench::time_add1_chain(state, subcontext().function<Sig>("add1")); }

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
  bench::check_add1_count(state, static_cast<int64_t>(x));
}

}  // namespace

BENCHMARK(BM_direct);
BENCHMARK(BM_gate_by_name);
BENCHMARK(BM_gate_handle);
BENCHMARK(BM_gate_c_api);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
