// The call lock of a subcontext: calls into it are serialized (it has one
// server thread), and reset, unmap and memory() wait for the call running.
//
// One word holds the holder's thread pointer, so an uncontended call takes
// the lock with one compare-and-swap and gives it back with one exchange,
// and a signal handler can tell that its own thread holds it (calling in
// again would wait for itself).  Thread pointers are 64-byte aligned (glibc
// TCBs), which leaves the low bits for flags.  Waiters sleep in a futex on
// the word's low half; the holder wakes one when the waiters bit is set.
#pragma once

#include <atomic>
#include <cstdint>

#include "gate/gate.hpp"

namespace subctx::detail {

class CallLock {
 public:
  // std::lock_guard / std::unique_lock: the holder is not inside a call.
  void lock() {
    if (!try_take(kHeld)) [[unlikely]]
      wait_and_take(kHeld);
  }
  bool try_lock() { return try_take(kHeld); }
  void unlock() {
    if (word_.exchange(0, std::memory_order_release) & kWaiters) wake();
  }
  // A call: the holder is inside the subcontext (fork() tells the two
  // apart).  False, without waiting, when this thread holds the lock
  // already (a signal handler that interrupted its holder).
  bool lock_for_call() {
    if (try_take(kHeld | kInCall)) [[likely]]
      return true;
    if (held_by_this_thread()) return false;
    wait_and_take(kHeld | kInCall);
    return true;
  }

  // This thread holds the lock (a signal handler that interrupted its holder).
  bool held_by_this_thread() const {
    return (word_.load(std::memory_order_relaxed) & ~kFlags) == gate::thread_pointer();
  }
  bool in_call() const { return word_.load(std::memory_order_relaxed) & kInCall; }
  // fork(): the child has only the forking thread; a lock held by another
  // thread is given up (its subcontext is poisoned by the caller).
  void forget() { word_.store(0, std::memory_order_relaxed); }

 private:
  static constexpr uint64_t kHeld = 1, kWaiters = 2, kInCall = 4, kFlags = 7;
  bool try_take(uint64_t flags) {
    uint64_t free = 0;
    return word_.compare_exchange_strong(free, gate::thread_pointer() | flags, std::memory_order_acquire);
  }
  void wait_and_take(uint64_t flags);
  void wake();

  std::atomic<uint64_t> word_{0};
};

}  // namespace subctx::detail
