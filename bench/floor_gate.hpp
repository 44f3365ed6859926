// The floor of a gate, measured in the same run as the gate (bench_call,
// bench_icount): switch the stack and the thread pointer, call, switch back;
// with a WRPKRU pair for the pkey backend.  Without FSGSBASE the thread
// pointer is switched with arch_prctl, as the real gate must there.
#pragma once

#include <cstdint>
#include <string>

extern "C" {
using bench_floor_fn = int64_t (*)(int64_t);
int64_t bench_floor_fsgsbase(bench_floor_fn fn, int64_t x, void* stack_top, uint64_t thread_pointer);
int64_t bench_floor_fsgsbase_pkru(bench_floor_fn fn, int64_t x, void* stack_top, uint64_t thread_pointer);
int64_t bench_floor_arch_prctl(bench_floor_fn fn, int64_t x, void* stack_top, uint64_t thread_pointer);
}

namespace bench {

// What this machine offers a gate.
struct GateFeatures {
  bool fsgsbase = false;  // HWCAP2_FSGSBASE: wrfsbase from user space
  bool pkeys = false;     // a protection key can be allocated
};
const GateFeatures& gate_features();
// "fsgsbase pku", "no fsgsbase, no pku", ...: for labels and reports.
std::string describe(const GateFeatures& f);

// A floor gate: calls fn(x) on its own stack with the thread pointer switched
// (to this thread's own value, which costs the same) and back.
class FloorGate {
 public:
  // with_pkru: the pkey floor (a WRPKRU pair); needs gate_features().pkeys.
  explicit FloorGate(bool with_pkru);
  int64_t operator()(bench_floor_fn fn, int64_t x) const { return enter_(fn, x, stack_top_, tp_); }
  const char* name() const { return name_; }

 private:
  alignas(16) unsigned char stack_[64 * 1024];
  void* stack_top_;
  uint64_t tp_;
  decltype(&bench_floor_fsgsbase) enter_;
  const char* name_;
};

}  // namespace bench
