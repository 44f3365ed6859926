// System calls made by subcontext code (docs/containment.md), mediated with
// Syscall User Dispatch: a thread's first call turns it on for the thread,
// with the Matchmaker's allowed range (gate.S) and a per-thread selector
// that the gate sets to "block" only while an export runs.  A blocked system
// call raises SIGSYS; the handler applies the subcontext's table:
//   exit, exit_group          the call ends with SubcontextFault (exit status)
//   brk                       ENOMEM (malloc uses mmap, never the client's heap)
//   clone, clone3, fork, vfork, execve, execveat   EPERM
//   rt_sigaction              EPERM (the process's dispositions are the client's)
//   tgkill, tkill, kill(own pid)  act on the calling thread: a signal that
//                             would end a process ends the call instead
//   mmap, munmap, mremap, mprotect   made, and tracked for reset and quota
//   descriptors and relative paths   made in the subcontext's own namespace
//                             (fd_syscalls.hpp, docs/identity.md)
//   timers, namespaces, other processes, wait   refused
//   anything else             made as asked (getpid/gettid are the caller's)
// default_syscall_policy() below is the full table.
// Client code is never intercepted; a thread with dispatch on pays a small
// cost on each of its own system calls (measured in bench/, README).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "subctx/subctx.hpp"

namespace subctx::detail {
struct SubcontextState;
}

namespace subctx::fault {

// The action codes in SubcontextState::syscall_action.
inline constexpr int16_t kAllow = 0;        // > 0: deny with that errno
inline constexpr int16_t kEndCallExit = -1; // exit, exit_group
inline constexpr int16_t kTrackMemory = -2; // mmap, munmap, mremap, mprotect
inline constexpr int16_t kSelfSignal = -3;  // tgkill, tkill, kill: its own pid (or the server's); others EPERM
inline constexpr int16_t kEndCall = -4;     // a rule's Fault
inline constexpr int16_t kSigreturn = -5;   // rt_sigreturn of a handler glibc installed
inline constexpr int16_t kDescriptors = -6; // made in the subcontext's descriptor namespace (fd_syscalls.hpp)
inline constexpr int16_t kSignalAnyone = -7; // kill allowed by a rule: other processes signalled as asked

// Fills the table: the defaults, then the image's rules (BadImage when one
// is unusable), then the client's (InvalidArgument for an unknown system
// call or a bad errno).
void build_syscall_table(detail::SubcontextState& s, const std::vector<SyscallRule>& client_rules);

// This thread's selector when dispatch is on (turned on here at the
// thread's first call), or null: off by SUBCTX_SYSCALLS=off, or the kernel
// cannot (then subcontext code's system calls go straight to the kernel).
volatile uint8_t* syscall_selector_slow();
// 0 allowed, 1 blocked: written by the gate, read by the kernel.  __thread,
// not thread_local: trivial, so no TLS wrapper call on the call path.
extern __thread uint8_t t_selector;
extern __thread int8_t t_dispatch;  // 0 not yet, 1 on, -1 off
inline volatile uint8_t* syscall_selector() {
  if (t_dispatch > 0) [[likely]]
    return &t_selector;
  return syscall_selector_slow();
}
// Whether dispatch works here (probed once); *why says why not.  This and
// default_syscall_policy() are in syscall_policy.cpp (the tool links it).
bool syscall_dispatch_available(std::string* why = nullptr);

// Installs the SIGSYS handler (Matchmaker init).
void install_syscall_handler();


// The default table, for docs and `subctx inspect`: (name, what happens).
std::vector<std::pair<std::string, std::string>> default_syscall_policy();

}  // namespace subctx::fault
