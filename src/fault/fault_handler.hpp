// The Matchmaker's SIGSEGV/SIGBUS handler (docs/protection.md):
//  - a raw call (a fetch from a raw-call address, or from an export's own
//    address) is forwarded: the handler points the thread at the raw-call
//    entry, which calls the export through the gate and returns to the
//    caller with the result;
//  - any other client access to a subcontext's memory is a violation: the
//    client's violation handler runs, or a one-line diagnostic is written,
//    and the process dies of SIGSEGV;
//  - a fault inside a call abandons it (abandon_call, signals.hpp): the
//    Matchmaker reports it at the call site and applies the fault policy;
//  - everything else goes to the client's own handler (chaining).
// What it reads of a subcontext is its view (fault/view.hpp): ranges and
// exports in the view's address map.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fault/signal_context.h"
#include "subctx/subctx.h"

namespace subctx::fault {

// When the Matchmaker is installed: the fork handlers of the view table's
// lock and the raw-call range's, registered before the registry's (a fork
// takes the registry's lock first).  Idempotent.
void prepare_fault_handler();
// At the first map: reserves the raw-call range and installs the handler
// for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGABRT (idempotent).
// The client's handlers, before or after, are kept and chained to
// (fault/signals.cpp).
void install_fault_handler();

// Raw-call addresses for n exports, from a reserved inaccessible range that
// is never reused (a stale pointer must never reach another subcontext).
// Throws LimitExceeded when the range is used up.
uint64_t allocate_raw_call_addresses(size_t n);

void set_violation_handler(sbc_violation_handler handler, void* user);

// Reports a violation found by normal code (a raw call refused after the
// fault was forwarded) and ends the process as the signal handler would.
[[noreturn]] void violation_from_normal_code(sbc_violation v);

// Signal-safe: whether a is inside a mapped subcontext's ranges.
SUBCTX_SIGNAL_CONTEXT bool address_in_subcontext(uint64_t a);

// Reads normal code makes of a subcontext's memory after a call (the stdio
// check, a str result): a page of the image file can be gone (the file was
// truncated: SIGBUS) or unmapped by subcontext code (SIGSEGV).  The probes
// below are loads the fault handler recognizes: a fault in one makes it
// return the negated ProbeFault value instead of ending the process.
struct ProbeFault {
  int signal = 0, code = 0;
};
inline ProbeFault probe_fault(long r) { return {static_cast<int>((-r) & 0xff), static_cast<int>((-r) >> 8)}; }

}  // namespace subctx::fault

extern "C" {
// 1 when glibc's FILE at `file` has pending output (_IO_write_ptr >
// _IO_write_base), 0 when not; -(signal | si_code << 8) when reading it faulted.
__attribute__((visibility("hidden"))) long subctx_probe_pending(const void* file) noexcept;
// The byte at p (0..255), or -(signal | si_code << 8).
__attribute__((visibility("hidden"))) long subctx_probe_byte(const void* p) noexcept;
}

extern "C" {
struct subctx_raw_result {
  uint64_t rax;
  double xmm0;
};
// The raw-call entry (gate.S) and what it calls with the argument registers.
__attribute__((visibility("hidden"))) void subctx_raw_entry();
// regs: rdi rsi rdx rcx r8 r9, then xmm0..xmm7 (as bits).
__attribute__((visibility("hidden"))) subctx_raw_result subctx_raw_dispatch(uint64_t key,
                                                                            const uint64_t* regs) noexcept;
}
