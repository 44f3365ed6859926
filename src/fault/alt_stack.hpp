// An alternate signal stack for every thread that calls into a subcontext:
// a call that overflows the gate stack faults on its guard page with no
// stack left to run the fault handler on.
#pragma once

namespace subctx::fault {

// The alternate signal stack's size (without its guard page): the kernel's
// frame with xsave state, then the handlers.  Threads of subcontext code
// get one of the same size (fault/threads.cpp).
inline constexpr unsigned long kAltStackSize = 128 * 1024;
inline constexpr unsigned long kAltStackGuard = 4096;

// Gives this thread an alternate signal stack unless it has one (the
// client's own is kept).  Once per thread; the stack goes with the thread.
void ensure_alt_stack_slow();
inline void ensure_alt_stack() {
  extern __thread bool t_alt_stack_checked;
  if (__builtin_expect(!t_alt_stack_checked, 0)) ensure_alt_stack_slow();
}

}  // namespace subctx::fault
