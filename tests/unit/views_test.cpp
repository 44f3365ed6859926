// The signal handlers' table of subcontext views (src/fault/views.cpp): one
// publish, one withdraw, lookups by thread pointer and stack, and nothing
// freed while a handler reads it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "fault/view.hpp"

namespace subctx::fault {
namespace {

bool in_table(const SubcontextView* v) {
  for (int i = 0; i < views_used(); ++i)
    if (view_at(i) == v) return true;
  return false;
}

// A handler on another thread reading other views (a ViewReader) for 100 ms.
struct HandlerReading {
  std::atomic<bool> reading{false}, left{false};
  std::thread thread{[this] {
    ViewReader r;
    reading = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    left = true;
  }};
  HandlerReading() {
    while (!reading) std::this_thread::yield();
  }
  ~HandlerReading() { thread.join(); }
};

// A published view, withdrawn at the end of the test if it still is.
struct Published {
  std::unique_ptr<SubcontextView> view = std::make_unique<SubcontextView>();
  explicit Published(uint64_t tcb = 0, uint64_t stack_lo = 0) {
    view->tcb = tcb;
    view->stack_lo = stack_lo;
    view->stack_top = stack_lo ? stack_lo + 0x10000 : 0;
    view->stack_guard_lo = stack_lo ? stack_lo - 0x1000 : 0;
    EXPECT_TRUE(publish_view(*view));
  }
  ~Published() {
    if (in_table(view.get())) withdraw_view(*view);
  }
};

TEST(Views, PublishedViewsAreFoundAndWithdrawnOnesAreNot) {
  Published a, b;
  EXPECT_TRUE(in_table(a.view.get()));
  EXPECT_TRUE(in_table(b.view.get()));
  withdraw_view(*a.view);
  EXPECT_FALSE(in_table(a.view.get()));
  EXPECT_TRUE(in_table(b.view.get()));
}

TEST(Views, FoundByThreadPointerAndByGateStack) {
  Published a(0x7000'0000'1000, 0x7100'0000'0000), b(0x7000'0000'2000, 0x7200'0000'0000);
  EXPECT_EQ(view_with_tcb(0x7000'0000'1000), a.view.get());
  EXPECT_EQ(view_with_tcb(0x7000'0000'2000), b.view.get());
  EXPECT_EQ(view_with_tcb(0x7000'0000'3000), nullptr);
  const uint64_t none = ~uint64_t{0};
  // On the stack (either pointer), or in the guard below it (the first only).
  EXPECT_EQ(view_on_stacks(none, 0x7100'0000'0800), a.view.get());
  EXPECT_EQ(view_on_stacks(0x7200'0000'0800, none), b.view.get());
  EXPECT_EQ(view_on_stacks(0x7100'0000'0000 - 8, none), a.view.get());
  EXPECT_EQ(view_on_stacks(none, 0x7100'0000'0000 - 8), nullptr);
  EXPECT_EQ(view_on_stacks(none, 0x7100'0001'0000), nullptr);  // the top is outside
  withdraw_view(*a.view);
  EXPECT_EQ(view_with_tcb(0x7000'0000'1000), nullptr);
  EXPECT_EQ(view_on_stacks(none, 0x7100'0000'0800), nullptr);
}

// A handler reading other views (a ViewReader) on another thread: withdraw
// returns only once it is done.
TEST(Views, WithdrawWaitsForAHandlerReading) {
  Published owner;
  HandlerReading handler;
  withdraw_view(*owner.view);
  EXPECT_TRUE(handler.left) << "withdraw_view returned while a handler was reading";
}

TEST(Views, AReaderThatLeavesEarlyCountsOnce) {
  {
    ViewReader reading;
    reading.leave();
    reading.leave();  // and again at destruction: still once
  }
  Published p;
  withdraw_view(*p.view);  // would wait for ever on a miscount
  EXPECT_FALSE(in_table(p.view.get()));
}

TEST(Views, AReplacedAddressMapIsFreedOnlyWhenNoHandlerReads) {
  Published p;
  auto first = std::make_unique<AddressMap>();
  first->handle = 7;
  const AddressMap* first_raw = first.get();
  set_address_map(*p.view, std::move(first));
  EXPECT_EQ(p.view->address_map.load(), first_raw);
  HandlerReading handler;
  set_address_map(*p.view, std::make_unique<AddressMap>());
  EXPECT_TRUE(handler.left) << "the old map was freed while a handler was reading";
  EXPECT_NE(p.view->address_map.load(), first_raw);
}

TEST(Views, TheTableHoldsKMaxViewsAndSaysWhenFull) {
  std::vector<std::unique_ptr<SubcontextView>> views;
  int published = 0;
  for (int i = 0; i < kMaxViews + 1; ++i) {
    views.push_back(std::make_unique<SubcontextView>());
    if (!publish_view(*views.back())) break;
    ++published;
  }
  EXPECT_EQ(published, kMaxViews);
  for (int i = 0; i < published; ++i) withdraw_view(*views[i]);
  for (int i = 0; i < published; ++i) EXPECT_FALSE(in_table(views[i].get()));
  // A slot freed is reused.
  Published again;
  EXPECT_TRUE(in_table(again.view.get()));
}

}  // namespace
}  // namespace subctx::fault
