// An abandoned call becomes an error at the call site (call_fault.cpp):
// the fault policy is applied (reset, poison, keep), then SubcontextFault,
// Timeout or QuotaExceeded is thrown with the subcontext's frames.
#pragma once

#include <vector>

#include "gate/gate.hpp"
#include "matchmaker/subcontext_state.hpp"

namespace subctx::matchmaker {

// The subcontext's frames at the fault: call while its memory is still as
// the fault left it and open to this thread (call mutex held: the
// symbol tables are read at the first fault and kept).
std::vector<FaultFrame> fault_frames(detail::SubcontextState& s, const gate::AbortRecord& why);

// Where a batch (Function::call_each, sbc_request_call_batch) stopped:
// `call` calls of `total` had returned.
struct BatchPlace {
  uint64_t call = 0;
  uint64_t total = 0;
};

// Call mutex held, protection window closed.  Never returns.  batch: null
// for a single call.
[[noreturn]] void call_abandoned(detail::SubcontextState& s, uint32_t index, const gate::AbortRecord& why,
                                 std::vector<FaultFrame> frames, const BatchPlace* batch = nullptr);

// A thread subcontext code started failed (fault/threads.hpp: a fault, a
// signal that ends a process, exit_group, a rule's fault, the quota): the
// next call, export index, is not made; the fault policy applies (a
// poisoned subcontext's threads are stopped) and SubcontextFault says what
// the thread did.  Call mutex held.  Never returns.
[[noreturn]] void thread_failed(detail::SubcontextState& s, uint32_t index);

// After a call, with a dirty-page quota set: over it, the call fails as
// call_abandoned() with QuotaExceeded.
void check_dirty_quota(detail::SubcontextState& s, uint32_t index, const BatchPlace* batch = nullptr);

}  // namespace subctx::matchmaker
