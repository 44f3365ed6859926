// How the SIGSYS handler makes a system call for subcontext code (signal
// context: no libc, no TLS; fault/syscalls.cpp).
#pragma once

#include <sys/syscall.h>
#include <ucontext.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fault/signal_context.h"
#include "gate/gate.hpp"

namespace subctx::fault {

// One mediated system call in progress.
struct SyscallCall {
  const ucontext_t* uc = nullptr;  // the interrupted context: its signal mask
  gate::Frame* frame = nullptr;    // the call's (held_signals)
  // SIGPIPE or SIGXFSZ the kernel raised for it (consumed: the caller applies
  // the server's disposition), or 0.
  int raised = 0;
};

// A system call from the Matchmaker's allowed range, as asked.
SUBCTX_SIGNAL_CONTEXT long sys6(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0);

// A spin lock held for its scope (null: none), for the tables several
// subcontext threads' handlers update (fault/threads.hpp); held only around
// updates, never across a system call that may block.
class SpinGuard {
 public:
  SUBCTX_SIGNAL_INLINE explicit SpinGuard(std::atomic<int>* lock) : lock_(lock) {
    if (lock_)
      while (lock_->exchange(1, std::memory_order_acquire)) sys6(SYS_sched_yield);
  }
  SUBCTX_SIGNAL_INLINE ~SpinGuard() {
    if (lock_) lock_->store(0, std::memory_order_release);
  }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  std::atomic<int>* lock_;
};

// The system call subcontext code asked for: blocking ones with the
// interrupted signal mask (a deadline or a client timer may interrupt
// them), SIGPIPE and SIGXFSZ held back and noted in c.raised.
SUBCTX_SIGNAL_CONTEXT long make_syscall(SyscallCall& c, long nr, long a, long b, long d, long r10, long r8, long r9);

SUBCTX_SIGNAL_INLINE inline bool is_syscall_error(long r) { return r < 0 && r > -4096; }

// The arguments of arch_prctl and prctl the DenyByArgument rows refuse
// (EPERM), for a call, a thread and a child alike.
SUBCTX_SIGNAL_CONTEXT bool refused_by_argument(long nr, const greg_t* g);

// The ClientProcess rows (setuid, setrlimit, ...): whether these
// arguments would change the client process's state; reading it
// (prlimit64 without a new limit, personality's query) is made.
SUBCTX_SIGNAL_CONTEXT bool changes_client_process(long nr, const greg_t* g);

// Whether signal sig, sent to a process that does not handle it, ends it.
SUBCTX_SIGNAL_CONTEXT bool ends_a_process(long sig);

// Copies between the handler's memory and subcontext memory named by a
// system call argument, through the kernel (process_vm_readv/writev): a bad
// pointer is EFAULT, as for the real call, never a fault in the handler.
SUBCTX_SIGNAL_CONTEXT bool copy_in(void* dst, uint64_t src, size_t n);
SUBCTX_SIGNAL_CONTEXT bool copy_out(uint64_t dst, const void* src, size_t n);
// A NUL-terminated path at src into buf (cap bytes): its length, -EFAULT or
// -ENAMETOOLONG.
SUBCTX_SIGNAL_CONTEXT long copy_in_path(char* buf, size_t cap, uint64_t src);

}  // namespace subctx::fault
