// Call overhead per protection backend: add1() called directly in this
// binary, the floor of a gate (floor_gate.hpp: stack and thread pointer
// switched and back, plus a WRPKRU pair for pkey), and the same function
// exported by a subcontext and called through the gate: by name, through a
// handle resolved once, and through the C API.  Each result feeds the next
// call, so calls cannot overlap; the count is checked.
//
// Counters of every gate row: floor_ns (the floor for its backend, timed in
// this run just before the row), x_floor (the row's time over it), and
// instructions / floor_instructions: user-space instructions of one call
// and of one floor call, single-stepped (instruction_count.hpp).  They are
// exact where timings are not comparable: on a machine without FSGSBASE the
// floor itself is two arch_prctl system calls (the label says so).
#include <benchmark/benchmark.h>

#include <subctx/subctx.h>
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
    const std::string image = bench::temp_dir().file("call.img");
    bench::make_image(image, {bench::sibling_program("bench_image_server"), image, "--heap-mb", "1"});
    return image;
  }();
  return path;
}

// ns per floor call, timed now (the row's own machine state).
double floor_ns(const bench::FloorGate& floor) {
  constexpr int kCalls = 200000;
  int64_t x = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    x = floor(add1, x);
    keep(x);
  }
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / kCalls;
}

enum class Way { ByName, Handle, CApi };

// One call of add1(x) the chosen way; false (and sbc_last_error()) when the
// C API refused it.
inline bool call_way(Way way, const subctx::Subcontext& sc, const subctx::Function<Sig>& fn, int64_t& x) {
  switch (way) {
    case Way::ByName: x = sc.call<Sig>("add1", x); return true;
    case Way::Handle: x = fn(x); return true;
    case Way::CApi: {
      uint64_t arg = static_cast<uint64_t>(x), ret = 0;
      if (sbc_request_call(sc.handle(), "add1", &arg, 1, &ret) != 0) return false;
      x = static_cast<int64_t>(ret);
      return true;
    }
  }
  return false;
}

struct Op {  // one call, for the instruction count
  Way way;
  const subctx::Subcontext* sc;
  subctx::Function<Sig> fn;
  const bench::FloorGate* floor;
  int64_t x = 0;
};

void op_call(void* p) {
  Op& o = *static_cast<Op*>(p);
  call_way(o.way, *o.sc, o.fn, o.x);
}
void op_floor(void* p) {
  Op& o = *static_cast<Op*>(p);
  o.x = (*o.floor)(add1, o.x);
}
void op_prepare(void* p) {
  op_call(p);
  op_floor(p);
}

void BM_direct(benchmark::State& state) { bench::time_add1_chain(state, add1); }

void BM_floor(benchmark::State& state, bool pkey) {
  if (pkey && !bench::gate_features().pkeys) {
    state.SkipWithError("no protection keys on this machine");
    return;
  }
  const bench::FloorGate floor(pkey);
  bench::time_add1_chain(state, [&](int64_t x) { return floor(add1, x); });
  state.SetLabel(floor.name() + std::string(" (") + bench::describe(bench::gate_features()) + ")");
}

void BM_gate(benchmark::State& state, subctx::Protection protection, Way way) {
  subctx::MapOptions options;
  options.protection = protection;
  subctx::Subcontext sc = bench::map_or_skip(state, image(), options);
  if (!sc.valid()) return;
  const bench::FloorGate floor(protection == subctx::Protection::Pkey);
  const double floor_time = floor_ns(floor);
  subctx::Function<Sig> fn = sc.function<Sig>("add1");
  const auto start = std::chrono::steady_clock::now();
  int64_t x = 0;
  for (auto _ : state) {
    if (!call_way(way, sc, fn, x)) {
      state.SkipWithError(sbc_last_error());
      return;
    }
    keep(x);
  }
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  bench::check_add1_count(state, x);
  Op op{way, &sc, fn, &floor};
  const bench::InstructionCount call = bench::count_instructions(op_prepare, op_call, &op);
  const bench::InstructionCount floor_count = bench::count_instructions(op_prepare, op_floor, &op);
  subctx::Matchmaker::instance().unmap(sc);
  state.counters["floor_ns"] = floor_time;
  state.counters["x_floor"] = took.count() / static_cast<double>(state.iterations()) / floor_time;
  state.counters["instructions"] = static_cast<double>(call.instructions);
  state.counters["floor_instructions"] = static_cast<double>(floor_count.instructions);
  state.counters["syscalls"] = static_cast<double>(call.syscalls);
  state.SetLabel(std::string(floor.name()) + " (" + bench::describe(bench::gate_features()) + ")" +
                 (call.error.empty() ? "" : "; no instruction count: " + call.error));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("direct", BM_direct);
  benchmark::RegisterBenchmark("floor/none", BM_floor, false);
  benchmark::RegisterBenchmark("floor/pkey", BM_floor, true);
  const std::pair<subctx::Protection, const char*> backends[] = {{subctx::Protection::None, "none"},
                                                                 {subctx::Protection::Pkey, "pkey"},
                                                                 {subctx::Protection::Mprotect, "mprotect"}};
  const std::pair<Way, const char*> ways[] = {{Way::Handle, "handle"}, {Way::ByName, "by_name"}, {Way::CApi, "c_api"}};
  for (auto [protection, backend] : backends)
    for (auto [way, name] : ways)
      benchmark::RegisterBenchmark((std::string("gate/") + backend + "/" + name).c_str(), BM_gate, protection, way);
  return bench::benchmark_main(argc, argv);
}
