// Timing a chain of add1 calls: each result feeds the next call, so calls
// cannot overlap, and the count is checked afterwards.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

#include "add1.hpp"

namespace bench {

// An optimization barrier for one integer kept in a register.  Not
// benchmark::DoNotOptimize: its "+m,r" constraint (libbenchmark 1.7.1) made
// GCC 12 drop the store `x = ret` in bench_call's C API loop.
template <class T>
inline __attribute__((always_inline)) void keep(T& value) {
  asm volatile("" : "+r"(value));
}

// x must have been incremented once per iteration.
inline void check_add1_count(benchmark::State& state, int64_t x) {
  if (!state.error_occurred() && x != static_cast<int64_t>(state.iterations()))
    state.SkipWithError("wrong result from add1");
}

// Calls x = fn(x) once per iteration from x = 0.
template <class F>
void time_add1_chain(benchmark::State& state, F&& fn) {
  int64_t x = 0;
  for (auto _ : state) {
    x = fn(x);
    keep(x);
  }
  check_add1_count(state, x);
}

}  // namespace bench
