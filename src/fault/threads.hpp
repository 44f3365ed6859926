// Threads started by subcontext code (docs/threads.md).
//
// glibc's pthread_create in the subcontext's own libc makes a clone (or
// clone3) system call, which Syscall User Dispatch brings to the SIGSYS
// handler.  The handler makes the clone itself (subctx_clone_thread,
// signal_entry.S): the new thread's first instructions are the Matchmaker's,
// which turn Syscall User Dispatch on for it with its own selector (so no
// system call of its reaches the kernel unmediated), set its signal mask
// and PKRU, and only then load the registers subcontext code had at the
// clone and continue where glibc expects the child.
//
// A subcontext thread is found by its thread id (never by its registers,
// which its code controls).  It has no client side: its real signal mask blocks everything
// but the signals the Matchmaker handles (faults, SIGSYS, the deadline
// signal, which also stops it), and the mask subcontext code sets is
// emulated.  Its fault, or its exit_group, is recorded in the view
// (ThreadFault) and ends the thread; the next call reports it.  Reset and
// unmap stop every thread first (stop_threads).
#pragma once

#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cstdint>

#include "fault/signal_context.h"
#include "fault/thread_abi.h"
#include "fault/view.hpp"
#include "gate/gate.hpp"

namespace subctx::fault {

// Read by the new thread's first instructions (thread_abi.h).
struct ThreadStart {
  uint64_t regs[17] = {};  // REG_R8 .. REG_RIP of the clone, rax 0, rsp its stack
  uint64_t mask = 0;       // its real signal mask
  uint32_t pkru = 0;       // gate::kNoPkru: left as inherited
  uint32_t mxcsr = 0;
  int32_t tid = 0;                // written by the thread itself, first thing
  volatile uint8_t selector = 1;  // its Syscall User Dispatch selector: 1 blocks
  // Its alternate signal stack (a stack_t; ss_sp 0: none): a fault of a
  // thread that overflowed its stack needs one to be handled at all.  Made
  // once per slot, kept for the next thread in it.
  uint64_t ss_sp = 0;
  int32_t ss_flags = 0;
  int32_t ss_pad = 0;
  uint64_t ss_size = 0;
};
static_assert(offsetof(ThreadStart, regs) == SUBCTX_START_R8 &&
              offsetof(ThreadStart, regs) + 8 * REG_RIP == SUBCTX_START_RIP &&
              offsetof(ThreadStart, regs) + 8 * REG_RSP == SUBCTX_START_RSP &&
              offsetof(ThreadStart, regs) + 8 * REG_R12 == SUBCTX_START_R12 &&
              offsetof(ThreadStart, mask) == SUBCTX_START_MASK && offsetof(ThreadStart, pkru) == SUBCTX_START_PKRU &&
              offsetof(ThreadStart, mxcsr) == SUBCTX_START_MXCSR && offsetof(ThreadStart, tid) == SUBCTX_START_TID &&
              offsetof(ThreadStart, selector) == SUBCTX_START_SELECTOR &&
              offsetof(ThreadStart, ss_sp) == SUBCTX_START_ALTSTACK &&
              offsetof(ThreadStart, ss_size) == SUBCTX_START_ALTSTACK + 16);

// Free -> Claimed (being filled) -> Starting (cloned or about to be) ->
// Running -> Exited (its exit made; the slot is free once the kernel let
// it go).
enum class ThreadState : uint32_t { Free = 0, Claimed = 1, Starting = 2, Running = 3, Exited = 4 };

// One thread of one subcontext, in a process-wide table (kMaxThreadSlots).
struct SubcontextThread {
  ThreadStart start;
  std::atomic<ThreadState> state{ThreadState::Free};
  SubcontextView* view = nullptr;  // read and written through view_of / set_view
  std::atomic<int32_t> tid{0};     // the kernel's (the parent's clone result)
  // The parent is done with the slot (its clone returned): only then may an
  // Exited slot be freed (the parent still writes tid and state).
  std::atomic<bool> parent_done{false};
  uint64_t tls = 0;   // its thread pointer
  uint64_t ctid = 0;  // CLONE_CHILD_CLEARTID's address (glibc's join waits on it), or 0
  uint64_t mask = 0;  // the signal mask subcontext code set (emulated)
  std::atomic<bool> stop{false};
  gate::Frame frame{};  // what handler code reads of "the call": its selector
};

// The thread's subcontext (atomic builtins: std::atomic<T*>'s members are
// not always inlined in unoptimized builds, and signal context calls no
// library code).
SUBCTX_SIGNAL_INLINE inline SubcontextView* view_of(const SubcontextThread& th) {
  return __atomic_load_n(&th.view, __ATOMIC_ACQUIRE);
}
SUBCTX_SIGNAL_INLINE inline void set_view(SubcontextThread& th, SubcontextView* v) {
  __atomic_store_n(&th.view, v, __ATOMIC_RELEASE);
}

// Subcontext threads of all subcontexts at once, at most.
inline constexpr int kMaxThreadSlots = 1024;
// The real signal mask of a subcontext thread: all but the Matchmaker's.
SUBCTX_SIGNAL_CONTEXT uint64_t thread_signal_mask();

// ---- signal context ------------------------------------------------------
// The calling thread, if it is a subcontext thread: by its thread id (a
// system call), never by registers its code controls (with FSGSBASE it can
// set its thread pointer to a call's; its stack pointer anywhere).
SUBCTX_SIGNAL_CONTEXT SubcontextThread* current_subcontext_thread();
// Whether subcontext threads may exist in the process (no system call).
SUBCTX_SIGNAL_CONTEXT bool any_subcontext_threads();
// clone/clone3 of subcontext code (g: its registers; parent_mask: its
// signal mask as subcontext code set it): the new thread's id or -errno.
SUBCTX_SIGNAL_CONTEXT long start_thread(SubcontextView& v, long nr, const ucontext_t* uc, uint64_t parent_mask);
// rt_sigprocmask of a subcontext thread: emulated.
SUBCTX_SIGNAL_CONTEXT long thread_sigprocmask(SubcontextThread& th, const greg_t* g);
// Ends the calling thread, a subcontext thread (exit status status).
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void end_thread(SubcontextThread& th, int status);
// Records why the calling subcontext thread fails (the first such record
// stands until a reset) and ends it.
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void thread_failed(SubcontextThread& th, const gate::AbortRecord& why);

// ---- normal code ---------------------------------------------------------
// Stops every thread of v and waits until none runs (reset, unmap, a
// thread's failure); the descriptor table is single-threaded again.
void stop_threads(SubcontextView& v);
// Live threads of v.
uint32_t thread_count(const SubcontextView& v);
// When a subcontext that may start threads is mapped: the fork handler
// that forgets them in a child process (it has none of them).  Idempotent.
void prepare_threads();

}  // namespace subctx::fault
