#include <sys/auxv.h>

#include "gate/gate.hpp"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

namespace subctx::gate {

EnterFn select_enter() {
  return (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) ? subctx_gate_enter_fsgsbase : subctx_gate_enter_syscall;
}

}  // namespace subctx::gate
