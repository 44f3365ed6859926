// Child processes started by subcontext code (docs/threads.md, "Child
// processes").
//
// posix_spawn and vfork (a clone with CLONE_VM | CLONE_VFORK) start a
// process that shares the memory and runs the subcontext's code only until
// its exec or its exit, its parent waiting meanwhile.  The SIGSYS handler
// makes the clone itself (subctx_clone_thread, as for a thread): the
// child's first instructions are the Matchmaker's, which turn Syscall User
// Dispatch on for it and make the subcontext's view real in it -- only the
// subcontext's descriptors, at the subcontext's numbers, its working
// directory and umask (prepare_child) -- before any code of the
// subcontext's runs.  Its system calls are then mediated by a table of
// their own (child_syscall): descriptors are real now, signal dispositions
// and the mask are emulated, an exec puts them in place and is made.
//
// The parent's live stack is saved before the clone and put back after it:
// the child runs on memory of the subcontext's, where the parent's signal
// frame and the handler's own frames lie.
//
// Subcontext code waits for its own children only (wait_children), and may
// signal them.  Reset and unmap kill and reap the children still listed
// (stop_children).  (An exec makes any child's exit signal SIGCHLD: the
// client gets it, and a client that waits for any child may reap one.)
#pragma once

#include <ucontext.h>

#include <cstdint>

#include "fault/fd_table.hpp"
#include "fault/signal_context.h"
#include "fault/syscall_make.hpp"
#include "fault/threads.hpp"
#include "fault/view.hpp"

namespace subctx::fault {

// What the parent leaves its child before the clone (mmap'd per slot on
// its first child, kept; the Matchmaker's memory, not the subcontext's).
struct ChildArea {
  struct Fd {
    int32_t number, real;
    bool cloexec;
  };
  Fd fds[kMaxFds];  // the subcontext's descriptors when it cloned
  uint32_t n_fds = 0;
  bool translate = true;  // false: no namespace (unisolated): the numbers are the client's, kept
  int32_t cwd = -1;       // its working directory (real), -1: the client's
  uint32_t umask = 022;
  // Signal dispositions as the child's code sets them (emulated; an exec
  // puts SIG_IGN and SIG_DFL in place): handler[sig], SIG_DFL (0) at first
  // but for the signals the server ignored.
  uint64_t handler[65];
  int32_t scratch[kMaxFds + 1];  // prepare_child's sorted real descriptors
  int32_t pidfd = -1;            // the kernel's CLONE_PIDFD, made with the child: never its pid alone
  int32_t died_of = 0;           // a signal that would dump core ended it: recorded here, and it died of SIGKILL
  uint64_t deadline_ns = 0;      // the call's deadline (CLOCK_MONOTONIC), 0: none
  // The parent's stack while the child runs (save_buf).
  static constexpr uint64_t kSavedStack = 64 * 1024;
  alignas(64) uint8_t saved_stack[kSavedStack];
};

// ---- signal context ------------------------------------------------------
// clone/clone3/vfork of subcontext code asking for a child process (rq, as
// parsed by start_thread): the child's pid (after its exec or exit), or
// -errno (EPERM: the policy does not let this subcontext start programs).
// deadline_ns: the call's (0: none); the child dies of SIGKILL if it has not
// made its exec by then (its parent waits for that, signals held).
SUBCTX_SIGNAL_CONTEXT long start_child(SubcontextView& v, const CloneRequest& rq, const ucontext_t* uc,
                                       uint64_t parent_mask, uint64_t deadline_ns);
// A system call of a child's code (before its exec).
SUBCTX_SIGNAL_CONTEXT long child_syscall(SubcontextThread& th, SubcontextView& v, SyscallCall& c, long nr, greg_t* g);
// The child ends: with status, or as its failure (a fault: killed by that signal).
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void child_exits(int status);
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void child_failed(SubcontextThread& th, const gate::AbortRecord& why);
// wait4/waitid of subcontext code: its own children only (ECHILD when it
// has none; the client's stay invisible).
SUBCTX_SIGNAL_CONTEXT long wait_children(SubcontextView& v, SyscallCall& c, long nr, const greg_t* g);
// Whether pid is a child of v's not yet waited for; kill or
// rt_sigqueueinfo of one (by its pidfd: its pid may be another's by now).
SUBCTX_SIGNAL_CONTEXT bool is_child_of(SubcontextView& v, int pid);
SUBCTX_SIGNAL_CONTEXT long signal_child(SubcontextView& v, SyscallCall& c, long nr, const greg_t* g);

// ---- normal code ---------------------------------------------------------
// Kills and reaps v's children (reset, unmap): none is left to the client.
void stop_children(SubcontextView& v);
// After a fork of the client: the children are the parent's (fork handler).
void forget_children_in_child();

}  // namespace subctx::fault
