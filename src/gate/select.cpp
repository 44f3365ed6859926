#include <sys/auxv.h>

#include "gate/gate.hpp"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

namespace subctx::gate {

namespace {
bool have_fsgsbase() { return getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE; }
}  // namespace

EnterFn select_enter() { return have_fsgsbase() ? subctx_gate_enter_fsgsbase : subctx_gate_enter_syscall; }

uint64_t select_callback_entry() {
  return reinterpret_cast<uint64_t>(have_fsgsbase() ? &subctx_callback_entry_fsgsbase : &subctx_callback_entry_syscall);
}

}  // namespace subctx::gate
