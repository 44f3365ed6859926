// System calls made by subcontext code (docs/containment.md), mediated with
// Syscall User Dispatch: a thread's first call turns it on for the thread,
// with the Matchmaker's allowed range (signal_entry.S) and a per-thread selector
// that the gate sets to "block" only while an export runs.  A blocked system
// call raises SIGSYS; the handler applies the subcontext's table, one action
// code (below) per number, which the Matchmaker built at map (its
// syscall_table.hpp).  What the defaults are, and why, is written once: the
// Matchmaker's syscall_defaults.cpp (kSyscallDefaults).
// Client code is never intercepted; a thread with dispatch on pays a small
// cost on each of its own system calls (measured in bench/, README).
#pragma once

#include <cstdint>
#include <string>

namespace subctx::fault {

// The action codes in SubcontextView::syscall_action (view.hpp; the
// defaults map onto them in the Matchmaker's syscall_table.cpp).
inline constexpr int16_t kAllow = 0;          // > 0: deny with that errno
inline constexpr int16_t kEndCallExit = -1;   // exit, exit_group
inline constexpr int16_t kTrackMemory = -2;   // mmap, munmap, mremap, mprotect
inline constexpr int16_t kSelfSignal = -3;    // tgkill, tkill, kill: its own pid (or the server's); others EPERM
inline constexpr int16_t kEndCall = -4;       // a rule's Fault
inline constexpr int16_t kSigreturn = -5;     // rt_sigreturn of a handler glibc installed
inline constexpr int16_t kDescriptors = -6;   // made in the subcontext's descriptor namespace (fd_syscalls.hpp)
inline constexpr int16_t kSignalAnyone = -7;  // kill allowed by a rule: other processes signalled as asked
inline constexpr int16_t kThreads = -8;       // clone, clone3, vfork: a thread, or a child process (fault/children.hpp)
inline constexpr int16_t kChildren = -9;      // wait4, waitid: its own children only (fault/children.hpp)
inline constexpr int16_t kClientProcess = -10;  // setuid, setrlimit, setsid, ...: EPERM but in a child (its own)
inline constexpr int16_t kThreadState = -11;    // sigaltstack, set_tid_address, ...: made on a subcontext thread

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
// Whether dispatch works here (probed once); *why says why not.  In
// syscall_dispatch.cpp, apart: the `subctx` tool (inspect) links it too.
bool syscall_dispatch_available(std::string* why = nullptr);

// Installs the SIGSYS handler (Matchmaker init).
void install_syscall_handler();

}  // namespace subctx::fault
