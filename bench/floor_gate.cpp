#include "floor_gate.hpp"

#include <sys/auxv.h>
#include <sys/mman.h>

namespace bench {

namespace {
constexpr unsigned long kHwcap2Fsgsbase = 1ul << 1;  // HWCAP2_FSGSBASE (asm/hwcap2.h)

uint64_t thread_pointer() {
  uint64_t v;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
  return v;
}
}  // namespace

const GateFeatures& gate_features() {
  static const GateFeatures f = [] {
    GateFeatures g;
    g.fsgsbase = (getauxval(AT_HWCAP2) & kHwcap2Fsgsbase) != 0;
    const int key = pkey_alloc(0, 0);
    g.pkeys = key >= 0;
    if (key >= 0) pkey_free(key);
    return g;
  }();
  return f;
}

std::string describe(const GateFeatures& f) {
  return std::string(f.fsgsbase ? "fsgsbase" : "no fsgsbase") + (f.pkeys ? ", pku" : ", no pku");
}

FloorGate::FloorGate(bool with_pkru) : stack_top_(stack_ + sizeof stack_), tp_(thread_pointer()) {
  const GateFeatures& f = gate_features();
  if (!f.fsgsbase) {
    enter_ = bench_floor_arch_prctl;
    name_ = "stack + arch_prctl pair";
  } else if (with_pkru && f.pkeys) {
    enter_ = bench_floor_fsgsbase_pkru;
    name_ = "stack + wrfsbase + WRPKRU pairs";
  } else {
    enter_ = bench_floor_fsgsbase;
    name_ = "stack + wrfsbase pair";
  }
}

}  // namespace bench
