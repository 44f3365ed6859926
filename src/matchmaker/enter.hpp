// Entering a subcontext for one gate entry, shared by calls (call.cpp) and
// callbacks (callback.cpp): the frame, the import slot, the gate, and the
// subcontext's output after it.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>

#include "fault/fault_handler.hpp"
#include "gate/gate.hpp"
#include "matchmaker/subcontext_state.hpp"

namespace subctx::detail {

// glibc's FILE keeps pending output between _IO_write_base and _IO_write_ptr.
inline bool has_pending_output(FILE* f) { return f && f->_IO_write_ptr > f->_IO_write_base; }

// A read of the subcontext's memory by the Matchmaker that faulted (a probe,
// fault_handler.hpp): the call fails as if the subcontext had faulted there
// (no pc: no frames).  A SIGBUS means the image file lost that page
// (truncated under the client); call_abandoned says the image changed.
void fault_reading(gate::Frame* f, fault::ProbeFault p, uint64_t address);

// strlen through probes, one per page: false when a page of the string
// cannot be read (*f says why).
bool probed_strlen(const char* s, size_t* len, gate::Frame* f);

// The frame of the call in progress, where the image's import stubs find it
// (docs/callbacks.md); out of line: only images with imports pay for it.
void publish_frame_for_imports(SubcontextState& s, gate::Frame* f);
// After a call from a callback: the waiting call's frame (published before)
// is the one the stubs find again.
inline void republish_frame_for_imports(SubcontextState& s, gate::Frame* outer) {
  if (s.import_slot) *reinterpret_cast<gate::Frame**>(s.import_slot) = outer;
}

// Returns false when a signal handler abandoned the call (f.abort says why).
// f.selector is the thread's, set once per call (around_call).  A call from
// a callback of this subcontext enters below the frames of the call waiting
// in it; when it returns, that call's frame is the current one again.
inline bool enter(SubcontextState& s, gate::Frame& f) {
  f.tcb = s.tcb;
  f.abort.kind = gate::AbortKind::None;
  gate::Frame* const outer = s.callbacks_out ? s.current_frame : nullptr;
  f.stack_top = s.callbacks_out ? (s.callback_sp & ~uint64_t{15}) : s.stack_top;
  f.stack_lo = s.stack_lo;
  s.current_frame = &f;
  if (s.import_slot) [[unlikely]]
    publish_frame_for_imports(s, &f);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // visible to a handler on this thread
  // Chosen once: the CPU and kernel do not change under a running process.
  static const gate::EnterFn enter_fn = gate::select_enter();
  enter_fn(&f);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (outer) [[unlikely]] {
    s.current_frame = outer;
    republish_frame_for_imports(s, outer);
  }
  if (f.abort.kind != gate::AbortKind::None) return false;  // the mask came back with the abandon
  // Subcontext code changed the thread's signal mask: the client's comes back.
  // (The kernel's 8-byte set, as the SIGSYS handler saved it; the same
  // mask as before the call, so the thread's noted mask stays right.)
  if (f.mask_changed) syscall(SYS_rt_sigprocmask, SIG_SETMASK, &f.client_mask, nullptr, 8);
  return true;
}

// Runs the subcontext's own fflush() on a stream with pending output (or
// reports the probe's fault), inside the subcontext; a fault there is the
// call's fault (*abandoned gets the record).
bool flush_pending(SubcontextState& s, FILE* stream, long pending, gate::Frame* abandoned);

// The subcontext's output reaches the client's stdout now, in order with
// the client's own.  Its memory open to this thread.
[[gnu::always_inline]] inline bool flush_subcontext_stream(SubcontextState& s, FILE* stream, gate::Frame* abandoned) {
  if (!s.fflush_fn || !stream) return true;
  // The FILE is image memory: read through a probe (a truncated image file
  // makes its page SIGBUS in the client's own code).
  const long pending = subctx_probe_pending(stream);
  return pending == 0 || flush_pending(s, stream, pending, abandoned);
}
[[gnu::always_inline]] inline bool flush_subcontext_output(SubcontextState& s, gate::Frame* abandoned) {
  return flush_subcontext_stream(s, s.sub_stdout, abandoned) && flush_subcontext_stream(s, s.sub_stderr, abandoned);
}

}  // namespace subctx::detail
