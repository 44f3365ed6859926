#include "fault/alt_stack.hpp"

#include <signal.h>
#include <sys/mman.h>

#include "fault/signals.hpp"
#include "sys/mapping.hpp"

namespace subctx::fault {

__thread bool t_alt_stack_checked = false;

namespace {

constexpr size_t kGuard = kAltStackGuard;
constexpr size_t kSize = kAltStackSize;

struct ThreadAltStack {
  sys::Mapping memory;  // guard page, then the stack
  ~ThreadAltStack() {
    if (!memory) return;
    stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && current.ss_sp == memory.bytes() + kGuard) {
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      sigaltstack(&off, nullptr);
    }
  }
};
thread_local ThreadAltStack t_alt_stack;

}  // namespace

void ensure_alt_stack_slow() {
  t_alt_stack_checked = true;
  note_thread_signal_mask();  // the thread's first call: also what it blocks
  stack_t current{};
  if (sigaltstack(nullptr, &current) != 0 || !(current.ss_flags & SS_DISABLE))
    return;  // the client's, or none possible
  sys::Mapping m =
      sys::map_memory(nullptr, kGuard + kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (!m || mprotect(m.get(), kGuard, PROT_NONE) != 0) return;  // a stack overflow then ends the process
  stack_t ss{};
  ss.ss_sp = m.bytes() + kGuard;
  ss.ss_size = kSize;
  if (sigaltstack(&ss, nullptr) == 0) t_alt_stack.memory = std::move(m);
}

}  // namespace subctx::fault
