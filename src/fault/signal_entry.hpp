// The signal side's assembly (signal_entry.S).
#pragma once

#include <signal.h>

#include <cstdint>

// The restorer of every handler the Matchmaker installs: rt_sigreturn from
// inside the system calls Syscall User Dispatch always allows.
extern "C" void subctx_sigreturn();
// The range Syscall User Dispatch always allows.
extern "C" const char subctx_allowed_begin[], subctx_allowed_end[];
// A system call from the allowed range (signal handlers during a call).
extern "C" long subctx_allowed_syscall(long nr, long a, long b, long c, long d, long e, long f);
// Signal handler entries: they call the C handler of the same purpose with
// a fourth argument, the PKRU value the kernel gave the handler, or
// gate::kNoPkru.  Under the pkey backend the kernel runs a handler with its
// default PKRU, which denies every subcontext's key; an entry opens them
// before touching the stack (gate::subctx_pkeys_in_use says whether any is
// used).
extern "C" void subctx_signal_entry(int, siginfo_t*, void*);
extern "C" void subctx_fault_entry(int, siginfo_t*, void*);
extern "C" void subctx_deadline_entry(int, siginfo_t*, void*);
extern "C" void subctx_syscall_entry(int, siginfo_t*, void*);
// Calls fn(a, b, c) with %rsp = stack (16-byte aligned), then switches back:
// a client's signal handler runs on the client's stack, not the gate stack
// it interrupted.
// clone(flags, stack, ptid, ctid, tls) from the SIGSYS handler for
// subcontext code; the child starts from start (a fault::ThreadStart,
// thread_abi.h).  Returns the child's id, or -errno.
extern "C" long subctx_clone_thread(uint64_t flags, uint64_t stack, uint64_t ptid, uint64_t ctid, uint64_t tls,
                                    void* start) noexcept;
// Clears the thread id at ctid (0: none), wakes its joiner, exits the thread.
extern "C" [[noreturn]] void subctx_thread_exit(uint64_t ctid, int status) noexcept;
extern "C" void subctx_call_on_stack(void* fn, uint64_t a, uint64_t b, uint64_t c, uint64_t stack) noexcept;
