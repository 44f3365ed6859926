// The one table of published subcontext views (view.hpp).
#include <pthread.h>
#include <sched.h>

#include <mutex>

#include "fault/signal_context.h"
#include "fault/view.hpp"

namespace subctx::fault {

namespace {

// A slot: the view, and copies of what the lookups by thread pointer and by
// stack compare, under a sequence count (odd while normal code writes the
// slot).  Those lookups read nothing of a view but the one they return,
// which is the calling thread's own call's (only its thread runs on that
// thread pointer or gate stack) and cannot be withdrawn under the call: no
// reader count, no shared cache line written on every system call.
struct Slot {
  std::atomic<uint32_t> seq{0};
  std::atomic<SubcontextView*> view{nullptr};
  std::atomic<uint64_t> tcb{0}, stack_lo{0}, stack_top{0}, guard_lo{0};
};
Slot g_slots[kMaxViews];
std::atomic<int> g_views_used{0};  // slots ever used: a handler scans only these
// Handlers reading other subcontexts' views (their address maps): a view is
// withdrawn, or a map replaced, only once none does.
std::atomic<int> g_readers{0};
std::mutex g_views_mutex;  // normal code: publish, withdraw

// Normal code, after a view left the table or a map was replaced: a handler
// that found it before is done with it soon (a bounded scan, no client code).
void wait_for_readers() {
  while (g_readers.load(std::memory_order_seq_cst) != 0) sched_yield();
}

void write_slot(Slot& slot, SubcontextView* v) {  // mutex held
  slot.seq.fetch_add(1, std::memory_order_seq_cst);
  slot.view.store(v, std::memory_order_seq_cst);
  slot.tcb.store(v ? v->tcb : 0, std::memory_order_relaxed);
  slot.stack_lo.store(v ? v->stack_lo : 0, std::memory_order_relaxed);
  slot.stack_top.store(v ? v->stack_top : 0, std::memory_order_relaxed);
  slot.guard_lo.store(v ? v->stack_guard_lo : 0, std::memory_order_relaxed);
  slot.seq.fetch_add(1, std::memory_order_release);
}

// The view of slot i if match(tcb, stack_lo, stack_top, guard_lo) holds for
// a consistent reading of it, else null.
template <class Match>
SUBCTX_SIGNAL_INLINE inline SubcontextView* matching(int i, Match match) {
  Slot& slot = g_slots[i];
  const uint32_t before = slot.seq.load(std::memory_order_acquire);
  if (before & 1) return nullptr;  // being written: never the caller's own call's
  SubcontextView* const v = slot.view.load(std::memory_order_relaxed);
  const bool matched =
      v && match(slot.tcb.load(std::memory_order_relaxed), slot.stack_lo.load(std::memory_order_relaxed),
                 slot.stack_top.load(std::memory_order_relaxed), slot.guard_lo.load(std::memory_order_relaxed));
  std::atomic_thread_fence(std::memory_order_acquire);
  return matched && slot.seq.load(std::memory_order_relaxed) == before ? v : nullptr;
}

}  // namespace

SubcontextView::~SubcontextView() { delete address_map.load(std::memory_order_relaxed); }

SUBCTX_SIGNAL_CONTEXT ViewReader::ViewReader() { g_readers.fetch_add(1, std::memory_order_seq_cst); }
SUBCTX_SIGNAL_CONTEXT ViewReader::~ViewReader() { leave(); }
SUBCTX_SIGNAL_CONTEXT void ViewReader::leave() {
  if (reading_) g_readers.fetch_sub(1, std::memory_order_seq_cst);
  reading_ = false;
}
SUBCTX_SIGNAL_CONTEXT int views_used() { return g_views_used.load(std::memory_order_acquire); }
// seq_cst: against withdraw_view's store of null and its load of g_readers.
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_at(int i) { return g_slots[i].view.load(std::memory_order_seq_cst); }

SUBCTX_SIGNAL_CONTEXT SubcontextView* view_with_tcb(uint64_t tcb) {
  const int used = views_used();
  for (int i = 0; i < used; ++i)
    if (SubcontextView* v = matching(i, [tcb](uint64_t t, uint64_t, uint64_t, uint64_t) { return t == tcb; })) return v;
  return nullptr;
}

SUBCTX_SIGNAL_CONTEXT SubcontextView* view_on_stacks(uint64_t with_guard, uint64_t without_guard) {
  const int used = views_used();
  for (int i = 0; i < used; ++i)
    if (SubcontextView* v = matching(i, [=](uint64_t, uint64_t lo, uint64_t top, uint64_t guard_lo) {
          return (with_guard >= guard_lo && with_guard < top) || (without_guard >= lo && without_guard < top);
        }))
      return v;
  return nullptr;
}

void prepare_views() {
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    // The child has one thread: no handler of another is reading there.
    pthread_atfork([] { g_views_mutex.lock(); }, [] { g_views_mutex.unlock(); },
                   [] {
                     g_readers.store(0, std::memory_order_relaxed);
                     g_views_mutex.unlock();
                   });
  });
}

bool publish_view(SubcontextView& v) {
  std::lock_guard lock(g_views_mutex);
  for (int i = 0; i < kMaxViews; ++i) {
    if (g_slots[i].view.load(std::memory_order_relaxed)) continue;
    write_slot(g_slots[i], &v);
    if (g_views_used.load(std::memory_order_relaxed) <= i) g_views_used.store(i + 1, std::memory_order_release);
    return true;
  }
  return false;
}

void withdraw_view(SubcontextView& v) {
  {
    std::lock_guard lock(g_views_mutex);
    // Only the slots ever used: the rest of the table is pages a process
    // never touched (a page fault each, ~60 us in all on the 2-vCPU guest).
    const int used = g_views_used.load(std::memory_order_relaxed);
    for (int i = 0; i < used; ++i)
      if (g_slots[i].view.load(std::memory_order_relaxed) == &v) write_slot(g_slots[i], nullptr);
  }
  wait_for_readers();
}

void set_address_map(SubcontextView& v, std::unique_ptr<AddressMap> map) {
  std::unique_ptr<const AddressMap> old(v.address_map.exchange(map.release(), std::memory_order_seq_cst));
  if (old) wait_for_readers();
}

}  // namespace subctx::fault
