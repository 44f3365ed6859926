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
  // A child process's (children.hpp; 0 for a thread): long prepare(ThreadStart*),
  // called on the Matchmaker's stack before any code of the subcontext's
  // (non-zero: the child exits with 127); the parent's live stack, saved
  // before the clone and put back after it (the child runs on memory of
  // the subcontext's, where the parent's signal frame lies).
  uint64_t prepare = 0;
  uint64_t save_hi = 0, save_lo = 0, save_len = 0, save_buf = 0, save_cap = 0;
};
static_assert(
    offsetof(ThreadStart, regs) == SUBCTX_START_R8 && offsetof(ThreadStart, regs) + 8 * REG_RIP == SUBCTX_START_RIP &&
    offsetof(ThreadStart, regs) + 8 * REG_RSP == SUBCTX_START_RSP &&
    offsetof(ThreadStart, regs) + 8 * REG_R12 == SUBCTX_START_R12 && offsetof(ThreadStart, mask) == SUBCTX_START_MASK &&
    offsetof(ThreadStart, pkru) == SUBCTX_START_PKRU && offsetof(ThreadStart, mxcsr) == SUBCTX_START_MXCSR &&
    offsetof(ThreadStart, tid) == SUBCTX_START_TID && offsetof(ThreadStart, selector) == SUBCTX_START_SELECTOR &&
    offsetof(ThreadStart, ss_sp) == SUBCTX_START_ALTSTACK &&
    offsetof(ThreadStart, ss_size) == SUBCTX_START_ALTSTACK + 16 &&
    offsetof(ThreadStart, prepare) == SUBCTX_START_PREPARE && offsetof(ThreadStart, save_hi) == SUBCTX_START_SAVE_HI &&
    offsetof(ThreadStart, save_lo) == SUBCTX_START_SAVE_LO &&
    offsetof(ThreadStart, save_len) == SUBCTX_START_SAVE_LEN &&
    offsetof(ThreadStart, save_buf) == SUBCTX_START_SAVE_BUF &&
    offsetof(ThreadStart, save_cap) == SUBCTX_START_SAVE_CAP);

// Free -> Claimed (being filled) -> Starting (cloned or about to be) ->
// Running -> Exited (its exit made; the slot is free once the kernel let
// it go).
enum class ThreadState : uint32_t { Free = 0, Claimed = 1, Starting = 2, Running = 3, Exited = 4 };

// A slot's task: a thread of the subcontext, or a child process it started
// that has not yet made its exec (children.hpp).
enum class SlotKind : uint8_t { Thread = 0, Child = 1 };
struct ChildArea;

// One thread of one subcontext, in a process-wide table (kMaxThreadSlots).
struct SubcontextThread {
  ThreadStart start;
  SlotKind kind = SlotKind::Thread;
  ChildArea* child = nullptr;  // made on the slot's first child, kept
  std::atomic<ThreadState> state{ThreadState::Free};
  SubcontextView* view = nullptr;  // read and written through view_of / set_view
  std::atomic<int32_t> tid{0};     // the kernel's (the parent's clone result)
  // The parent is done with the slot (its clone returned): only then may an
  // Exited slot be freed (the parent still writes tid and state).
  std::atomic<bool> parent_done{false};
  uint64_t tls = 0;   // its thread pointer
  uint64_t ctid = 0;  // CLONE_CHILD_CLEARTID's address (glibc's join waits on it), or 0
  uint64_t mask = 0;  // the signal mask subcontext code set (emulated)
  // The alternate signal stack subcontext code set (emulated: the thread's
  // real one is the Matchmaker's, for faults; docs/threads.md).
  uint64_t alt_sp = 0, alt_size = 0;
  int32_t alt_flags = SS_DISABLE;
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
// The SIGSYS handler runs on a thread's own stack; its deepest path (poll's
// descriptor tables, 12 KiB, and its frames) and the thread's frames under
// it take this much.  A new thread needs this plus the kernel's signal
// frame for this CPU (AT_MINSIGSTKSZ) below its first stack pointer, in
// memory of the subcontext's, else clone is EINVAL: measured, a glibc
// thread with a 20 KiB stack overflowed inside the handler at its first
// poll() and the client died (2026-12-07, ThreadTest.AThreadStackTooSmall...).
inline constexpr uint64_t kThreadStackForHandler = 24 * 1024;
// The real signal mask of a subcontext thread: all but the Matchmaker's.
SUBCTX_SIGNAL_CONTEXT uint64_t thread_signal_mask();

// ---- signal context ------------------------------------------------------
// The calling thread, if it is a subcontext thread: by its thread id (a
// system call), never by registers its code controls (with FSGSBASE it can
// set its thread pointer to a call's; its stack pointer anywhere).
SUBCTX_SIGNAL_CONTEXT SubcontextThread* current_subcontext_thread();
// Whether subcontext threads may exist in the process (no system call).
SUBCTX_SIGNAL_CONTEXT bool any_subcontext_threads();
// Whether tid is a live thread of v that subcontext code started (not a
// child process).
SUBCTX_SIGNAL_CONTEXT bool is_thread_of(const SubcontextView& v, int32_t tid);
// clone/clone3 of subcontext code (g: its registers; parent_mask: its
// signal mask as subcontext code set it; deadline_ns: the call's deadline,
// 0 for none or a subcontext thread's clone): the new thread's id or -errno.
SUBCTX_SIGNAL_CONTEXT long start_thread(SubcontextView& v, long nr, const ucontext_t* uc, uint64_t parent_mask,
                                        uint64_t deadline_ns);
// rt_sigprocmask of a subcontext thread: emulated.
SUBCTX_SIGNAL_CONTEXT long thread_sigprocmask(SubcontextThread& th, const greg_t* g);
// sigaltstack of a subcontext thread: recorded and reported, not made (its
// real alternate stack runs the Matchmaker's fault handler: disabled, an
// overflow would end the client; in subcontext memory, its siblings could
// write the handler's frames).
SUBCTX_SIGNAL_CONTEXT long thread_sigaltstack(SubcontextThread& th, const greg_t* g);
// Ends the calling thread, a subcontext thread (exit status status).
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void end_thread(SubcontextThread& th, int status);
// Records why the calling subcontext thread fails (the first such record
// stands until a reset) and ends it.
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void thread_failed(SubcontextThread& th, const gate::AbortRecord& why);

// The slots, for children.cpp: a free one claimed (null: all in use); its
// fields for a new task from the clone's registers (stack: the task's stack
// pointer, tls its thread pointer or 0); one the parent gives back.
struct CloneRequest {
  uint64_t flags = 0, stack = 0, ptid = 0, ctid = 0, tls = 0;
  uint64_t exit_signal = 0;
  bool child = false;  // CLONE_VM | CLONE_VFORK without CLONE_THREAD: a process until its exec
};
SUBCTX_SIGNAL_CONTEXT SubcontextThread* claim_slot();
SUBCTX_SIGNAL_CONTEXT void prepare_start(SubcontextThread& th, const SubcontextView& v, const ucontext_t* uc,
                                         const CloneRequest& rq, uint64_t parent_mask);
SUBCTX_SIGNAL_CONTEXT void release_unstarted(SubcontextThread& th);

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
