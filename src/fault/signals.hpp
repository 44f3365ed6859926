// Client signal handlers during calls.  A signal that interrupts a thread
// inside a subcontext is delivered with the subcontext's thread pointer and on
// the gate stack; the client's handler must run with the client's.  The
// client library interposes sigaction() and signal(): each client handler is
// installed behind a trampoline that, when the interrupted thread is inside a
// subcontext, switches to the client's thread pointer and stack, runs the
// handler, and switches back so the call completes.  Handlers installed
// before the Matchmaker are wrapped when it is installed.
//
// SIGSEGV and SIGBUS belong to the Matchmaker's fault handler
// (fault_handler.hpp): once it is installed, the client's sigaction() on them
// only records the client's action, which the fault handler chains to.
// SIGFPE, SIGILL, SIGTRAP, SIGABRT and SIGSYS are taken over the same way:
// inside a call they are the subcontext's faults (or its system calls).
#pragma once

#include <signal.h>

#include <cstdint>

#include "fault/signal_context.h"
#include "fault/view.hpp"
#include "gate/gate.hpp"

namespace subctx::fault {

// Before main (the library constructor): the fork handler of sigaction()'s
// lock (the interposed sigaction() takes it from the start) and the CPU's
// FSGSBASE bit; cheap, no system call.  Idempotent.
void prepare_signal_forwarding();
// At the first map: wraps the handlers already installed (one query per
// signal); idempotent.  Handlers installed later through sigaction() and
// signal() are wrapped as they come.
void install_signal_forwarding();

// The signals a call needs unblocked: the faults that end it, SIGSYS
// (Syscall User Dispatch: blocked, the kernel kills the process instead)
// and the deadline signal.  Bit sig-1, as in a kernel sigset.
inline constexpr uint64_t kCallSignals = (uint64_t{1} << (SIGSEGV - 1)) | (uint64_t{1} << (SIGBUS - 1)) |
                                         (uint64_t{1} << (SIGFPE - 1)) | (uint64_t{1} << (SIGILL - 1)) |
                                         (uint64_t{1} << (SIGTRAP - 1)) | (uint64_t{1} << (SIGABRT - 1)) |
                                         (uint64_t{1} << (SIGSYS - 1)) | (uint64_t{1} << (64 - 1)) /* SIGRTMAX */;

// RAII around a call: unblocks kCallSignals for it when this thread blocks
// any of them (known from the interposed sigprocmask/pthread_sigmask and one
// look at the thread's first call; free otherwise), and restores the mask.
class CallSignalsUnblocked {
 public:
  CallSignalsUnblocked() {
    extern __thread bool t_blocks_call_signals;
    if (__builtin_expect(t_blocks_call_signals, 0)) unblock();
  }
  ~CallSignalsUnblocked() {
    if (restore_) restore();
  }
  CallSignalsUnblocked(const CallSignalsUnblocked&) = delete;
  CallSignalsUnblocked& operator=(const CallSignalsUnblocked&) = delete;

 private:
  void unblock();
  void restore();
  bool restore_ = false;
  uint64_t saved_ = 0;
};
// At a thread's first call: reads its mask (inherited masks are not seen
// by the interposed functions).
void note_thread_signal_mask();

// The functions below that signal handlers call are hidden (the library's
// default visibility): a call through the PLT would bind lazily on first use, and the dynamic linker's resolver
// reads and writes the TCB -- the subcontext's, inside a call.
//
// Signal-safe: the view of the subcontext this thread is inside a call of,
// or null (found by its gate stack, else its thread pointer).
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_of_current_thread();

// Signal-safe, no system call: the subcontext the interrupted thread (ucv:
// its ucontext) is inside a call of, where that is certain: always with
// FSGSBASE (the register); else when the interrupted or the handler's own
// stack pointer is on a gate stack or its guard below (only the thread in
// that subcontext's call runs there).  *sure is false when it is not known
// (then view_of_current_thread() tells, with a system call).
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_from_stacks(const void* ucv, bool* sure);

// Signal-safe: this thread's %fs base, read from the register (rdfsbase, or
// arch_prctl(ARCH_GET_FS) from the always-allowed range), never from the
// TCB's first word: inside a call that word is image memory, which a
// truncated image file turns into SIGBUS and a hostile image into anything.
SUBCTX_SIGNAL_CONTEXT uint64_t current_thread_pointer();

// Signal context, inside a call: lets this thread's system calls through
// (Syscall User Dispatch) while a handler runs, and restores the selector
// when it returns into the subcontext.  Construct it before any system call.
class AllowSyscalls {
 public:
  SUBCTX_SIGNAL_INLINE explicit AllowSyscalls(gate::Frame* f)
      : selector_(f ? f->selector : nullptr), saved_(selector_ ? *selector_ : 0) {
    if (selector_) *selector_ = 0;
  }
  SUBCTX_SIGNAL_INLINE ~AllowSyscalls() {
    if (selector_) *selector_ = saved_;
  }
  AllowSyscalls(const AllowSyscalls&) = delete;
  AllowSyscalls& operator=(const AllowSyscalls&) = delete;
  // The handler leaves the subcontext (abandon_call): system calls stay allowed.
  SUBCTX_SIGNAL_INLINE void keep_allowed() { selector_ = nullptr; }

 private:
  volatile uint8_t* selector_;
  uint8_t saved_;
};

// Signal context, inside a call: abandons it.  The reason goes into the
// call's frame; when the handler returns, the thread continues in
// subctx_gate_abort on the client's stack and thread pointer, and the
// Matchmaker turns the record into an error at the call site.
SUBCTX_SIGNAL_CONTEXT void abandon_call(SubcontextView& s, void* uc, const gate::AbortRecord& why);

// Installs handler for sig and keeps the action it replaces as the
// client's; later sigaction() calls on sig change only the client's action.
// on_alt_stack: the handler runs on the thread's alternate signal stack
// (SA_ONSTACK; fault/alt_stack.hpp) -- for faults, which may be stack overflows.
void take_over_signal(int sig, void (*handler)(int, siginfo_t*, void*), bool on_alt_stack = false);

// Signal-safe: runs the client's own action for sig as the kernel would
// have (its handler with its mask; SIG_DFL and, for faults, SIG_IGN end the
// process).
// pkru: the value for client code (gate::kNoPkru: leave PKRU alone).
SUBCTX_SIGNAL_CONTEXT void chain_to_client(int sig, siginfo_t* info, void* uc, uint32_t pkru);

}  // namespace subctx::fault
