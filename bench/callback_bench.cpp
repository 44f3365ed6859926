// Callback round trip (docs/callbacks.md) per protection backend: an export
// whose only work is to call an import bound to add1 (one callback per
// call), beside the call of add1 exported as is and a direct call of add1,
// all timed in the same row.
//
// Counters: call_ns (the plain call), callback_ns (the call through the
// import less the plain call: one export -> import -> back round trip),
// x_call (callback_ns / call_ns; the goal is <= 1.5), direct_ns,
// and the same split in instructions (single-stepped, exact on every
// machine: on one without FSGSBASE each switch of the thread pointer is an
// arch_prctl system call, which dominates the times).
#include <benchmark/benchmark.h>

#include <chrono>
#include <subctx/subctx.hpp>

#include "add1_chain.hpp"
#include "floor_gate.hpp"
#include "instruction_count.hpp"
#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);
using bench::keep;

const std::string& image() {
  static const std::string path = [] {
    const std::string image = bench::temp_dir().file("callback.img");
    bench::make_image(image, {bench::sibling_program("bench_callback_server"), image});
    return image;
  }();
  return path;
}

// ns per fn(x) call, chained, over `calls` calls.
template <class F>
double chain_ns(F&& fn, int calls) {
  int64_t x = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    x = fn(x);
    keep(x);
  }
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return x == calls ? took.count() / calls : -1;
}

struct Op {
  subctx::Function<Sig> fn;
  int64_t x = 0;
};
void op_call(void* p) {
  Op& o = *static_cast<Op*>(p);
  o.x = o.fn(o.x);
}

uint64_t instructions_of(const subctx::Function<Sig>& fn) {
  Op op{fn};
  return bench::count_instructions(op_call, op_call, &op).instructions;
}

void BM_callback(benchmark::State& state, subctx::Protection protection) {
  subctx::MapOptions options;
  options.protection = protection;
  subctx::Subcontext sc = bench::map_or_skip(state, image(), options);
  if (!sc.valid()) return;
  sc.bind("host_add1", &add1);
  const auto plain = sc.function<Sig>("add1");
  const auto via_import = sc.function<Sig>("add1_via_import");
  constexpr int kCalls = 20000;
  double call_ns = 0, through_ns = 0;
  for (auto _ : state) {
    call_ns = chain_ns(plain, kCalls);
    through_ns = chain_ns(via_import, kCalls);
    if (call_ns < 0 || through_ns < 0) state.SkipWithError("wrong result from add1");
  }
  const double direct_ns = chain_ns(add1, kCalls * 10);
  const uint64_t call_instr = instructions_of(plain), through_instr = instructions_of(via_import);
  subctx::Matchmaker::instance().unmap(sc);
  state.counters["call_ns"] = call_ns;
  state.counters["callback_ns"] = through_ns - call_ns;
  state.counters["x_call"] = (through_ns - call_ns) / call_ns;
  state.counters["direct_ns"] = direct_ns;
  state.counters["call_instructions"] = static_cast<double>(call_instr);
  state.counters["callback_instructions"] = static_cast<double>(through_instr - call_instr);
  state.SetLabel(bench::describe(bench::gate_features()));
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<subctx::Protection, const char*> backends[] = {{subctx::Protection::None, "none"},
                                                                 {subctx::Protection::Pkey, "pkey"},
                                                                 {subctx::Protection::Mprotect, "mprotect"}};
  for (auto [protection, name] : backends)
    benchmark::RegisterBenchmark((std::string("callback/") + name).c_str(), BM_callback, protection)
        ->Iterations(5)
        ->Unit(benchmark::kMicrosecond);
  return bench::benchmark_main(argc, argv);
}
