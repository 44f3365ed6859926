// Call deadlines (docs/containment.md): a per-thread POSIX timer sends
// SIGRTMAX to the calling thread when a call runs past its deadline; the
// handler abandons the call, which fails with Timeout.  The timer exists
// only on threads that made a call with a deadline; it is armed only while
// such a call runs.
#pragma once

#include <time.h>

#include <cstdint>

#include "gate/gate.hpp"

namespace subctx::fault {

// Arms this thread's timer for timeout_ms (0: does nothing) and writes the
// deadline into the call's frame; disarm() or the destructor stops it.
class CallDeadline {
 public:
  CallDeadline(uint32_t timeout_ms, gate::Frame& frame) {
    frame.deadline_ns = 0;
    frame.timeout_ms = timeout_ms;
    if (timeout_ms) [[unlikely]]
      arm(timeout_ms, frame);
  }
  ~CallDeadline() { disarm(); }
  CallDeadline(const CallDeadline&) = delete;
  CallDeadline& operator=(const CallDeadline&) = delete;
  void disarm() {
    if (armed_) disarm_slow();
  }

 private:
  void arm(uint32_t timeout_ms, gate::Frame& frame);
  void disarm_slow();
  bool armed_ = false;
  struct itimerspec previous_ {};
};

// The signal deadlines use; it also stops subcontext threads
// (fault/threads.hpp).
int deadline_signal();
// Its handler, installed once (the first deadline, the first stop of
// threads); idempotent.
void install_deadline_handler();

}  // namespace subctx::fault
