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
// Not wrapped: SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT (faults: later work).
#pragma once

#include <signal.h>

#include <cstdint>

namespace subctx::detail {
struct SubcontextState;
}

namespace subctx::fault {

// Wraps the handlers already installed; idempotent.
void install_signal_forwarding();

// Which subcontext a thread is inside is found by its thread pointer.
// Returns false when the table (kMaxActive entries) is full.
inline constexpr int kMaxActive = 1024;
bool register_active(uint64_t tcb, detail::SubcontextState* state);
void unregister_active(uint64_t tcb);

// Signal-safe: the subcontext this thread is inside a call of, or null.
detail::SubcontextState* state_of_current_thread();

// Installs handler for sig and keeps the action it replaces as the
// client's; later sigaction() calls on sig change only the client's action.
void take_over_signal(int sig, void (*handler)(int, siginfo_t*, void*));

// Signal-safe: runs the client's own action for sig as the kernel would
// have (its handler with its mask; SIG_DFL and, for faults, SIG_IGN end the
// process).
// pkru: the value for client code (gate::kNoPkru: leave PKRU alone).
void chain_to_client(int sig, siginfo_t* info, void* uc, uint32_t pkru);

}  // namespace subctx::fault
