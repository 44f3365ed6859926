// Client signal handlers during calls.  A signal that interrupts a thread
// inside a subcontext is delivered with the subcontext's thread pointer and on
// the gate stack; the client's handler must run with the client's.  The
// client library interposes sigaction() and signal(): each client handler is
// installed behind a trampoline that, when the interrupted thread is inside a
// subcontext, switches to the client's thread pointer and stack, runs the
// handler, and switches back so the call completes.  Handlers installed
// before the Matchmaker are wrapped when it is installed.
//
// Not wrapped (left to the fault handling of later issues): SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT.
#pragma once

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

}  // namespace subctx::fault
