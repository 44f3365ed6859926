// The one table of published subcontext views (view.hpp).
#include <pthread.h>

#include <mutex>
#include <vector>

#include "fault/signal_context.h"
#include "fault/view.hpp"

namespace subctx::fault {

namespace {

std::atomic<SubcontextView*> g_views[kMaxViews];
std::atomic<int> g_views_used{0};  // slots ever used: a handler scans only these
// Handlers that may be reading views; what was withdrawn or replaced is
// released once it is 0.
std::atomic<int> g_readers{0};
std::mutex g_views_mutex;  // normal code: publish, withdraw, the retired lists

// Released when no handler reads: withdrawn views' owners, replaced maps.
// Never destroyed: the Matchmaker's own destructor withdraws views at exit,
// after static objects like these would be gone.
struct Retired {
  std::vector<std::shared_ptr<const void>> owners;
  std::vector<std::unique_ptr<const AddressMap>> maps;
};
Retired& retired() {
  static auto* r = new Retired;
  return *r;
}

// Mutex held: takes what may be freed now; the caller destroys it after
// unlocking (a subcontext's state is a large destructor).
Retired take_releasable() {
  Retired out;
  if (g_readers.load(std::memory_order_seq_cst) == 0) std::swap(out, retired());
  return out;
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
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_at(int i) { return g_views[i].load(std::memory_order_acquire); }

void prepare_views() {
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    pthread_atfork([] { g_views_mutex.lock(); }, [] { g_views_mutex.unlock(); }, [] { g_views_mutex.unlock(); });
  });
}

bool publish_view(SubcontextView& v) {
  Retired release;
  std::lock_guard lock(g_views_mutex);
  release = take_releasable();
  for (int i = 0; i < kMaxViews; ++i) {
    if (g_views[i].load(std::memory_order_relaxed)) continue;
    g_views[i].store(&v, std::memory_order_release);
    if (g_views_used.load(std::memory_order_relaxed) <= i) g_views_used.store(i + 1, std::memory_order_release);
    return true;
  }
  return false;
}

void withdraw_view(SubcontextView& v, std::shared_ptr<const void> keep_alive) {
  Retired release;
  std::lock_guard lock(g_views_mutex);
  for (auto& slot : g_views)
    if (slot.load(std::memory_order_relaxed) == &v) slot.store(nullptr, std::memory_order_seq_cst);
  retired().owners.push_back(std::move(keep_alive));
  release = take_releasable();
}

void set_address_map(SubcontextView& v, std::unique_ptr<AddressMap> map) {
  Retired release;
  std::lock_guard lock(g_views_mutex);
  const AddressMap* old = v.address_map.exchange(map.release(), std::memory_order_seq_cst);
  if (old) retired().maps.emplace_back(old);
  release = take_releasable();
}

}  // namespace subctx::fault
