#include "matchmaker/call_lock.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace subctx::detail {

namespace {
// The futex is the word's low half (x86-64 is little-endian): it changes
// whenever the holder or the flags do.
uint32_t* low_half(std::atomic<uint64_t>& word) { return reinterpret_cast<uint32_t*>(&word); }
}  // namespace

// Taken with the waiters bit set: other threads may sleep behind this one,
// so its unlock wakes one (at worst a wake-up for nobody).
void CallLock::wait_and_take(uint64_t flags) {
  const uint64_t me = gate::thread_pointer();
  for (;;) {
    uint64_t seen = word_.load(std::memory_order_relaxed);
    if (seen == 0) {
      if (word_.compare_exchange_weak(seen, me | flags | kWaiters, std::memory_order_acquire)) return;
      continue;
    }
    if (!(seen & kWaiters) && !word_.compare_exchange_weak(seen, seen | kWaiters, std::memory_order_relaxed)) continue;
    syscall(SYS_futex, low_half(word_), FUTEX_WAIT_PRIVATE, static_cast<uint32_t>(seen | kWaiters), nullptr, nullptr,
            0);
  }
}

void CallLock::wake() { syscall(SYS_futex, low_half(word_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0); }

}  // namespace subctx::detail
