// The signal handlers' table of subcontext views (src/fault/views.cpp): one
// publish, one withdraw, and nothing freed while a handler may be reading.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "fault/view.hpp"

namespace subctx::fault {
namespace {

struct Owned : SubcontextView {};

bool in_table(const SubcontextView* v) {
  for (int i = 0; i < views_used(); ++i)
    if (view_at(i) == v) return true;
  return false;
}

// A published view, withdrawn at the end of the test if it still is.
struct Published {
  std::shared_ptr<Owned> view = std::make_shared<Owned>();
  Published() { EXPECT_TRUE(publish_view(*view)); }
  ~Published() {
    if (view && in_table(view.get())) withdraw_view(*view, view);
  }
};

TEST(Views, PublishedViewsAreFoundAndWithdrawnOnesAreNot) {
  Published a, b;
  a.view->tcb = 0x1000;
  EXPECT_TRUE(in_table(a.view.get()));
  EXPECT_TRUE(in_table(b.view.get()));
  withdraw_view(*a.view, a.view);
  EXPECT_FALSE(in_table(a.view.get()));
  EXPECT_TRUE(in_table(b.view.get()));
}

TEST(Views, AWithdrawnViewLivesWhileAHandlerReads) {
  std::weak_ptr<Owned> watch;
  {
    auto owner = std::make_shared<Owned>();
    watch = owner;
    ASSERT_TRUE(publish_view(*owner));
    ViewReader reading;
    withdraw_view(*owner, owner);
    owner.reset();
    EXPECT_FALSE(watch.expired()) << "freed while a handler may still read it";
  }
  // Released at the next publish or withdraw once no handler reads.
  Published next;
  EXPECT_TRUE(watch.expired());
}

TEST(Views, AReaderThatLeavesEarlyCountsOnce) {
  std::weak_ptr<Owned> watch;
  {
    ViewReader reading;
    reading.leave();
    reading.leave();  // and again at destruction: still one
    auto owner = std::make_shared<Owned>();
    watch = owner;
    ASSERT_TRUE(publish_view(*owner));
    withdraw_view(*owner, owner);
  }
  EXPECT_TRUE(watch.expired());
}

TEST(Views, AReplacedAddressMapIsFreedOnlyWhenNoHandlerReads) {
  Published p;
  auto first = std::make_unique<AddressMap>();
  first->handle = 7;
  const AddressMap* first_raw = first.get();
  set_address_map(*p.view, std::move(first));
  EXPECT_EQ(p.view->address_map.load(), first_raw);
  {
    ViewReader reading;
    set_address_map(*p.view, std::make_unique<AddressMap>());
    // Still readable: a handler may hold the old pointer.
    EXPECT_EQ(first_raw->handle, 7);
  }
  EXPECT_NE(p.view->address_map.load(), first_raw);
}

TEST(Views, TheTableHoldsKMaxViewsAndSaysWhenFull) {
  std::vector<std::shared_ptr<Owned>> views;
  int published = 0;
  for (int i = 0; i < kMaxViews + 1; ++i) {
    views.push_back(std::make_shared<Owned>());
    if (!publish_view(*views.back())) break;
    ++published;
  }
  EXPECT_EQ(published, kMaxViews);
  for (int i = 0; i < published; ++i) withdraw_view(*views[i], views[i]);
  for (int i = 0; i < published; ++i) EXPECT_FALSE(in_table(views[i].get()));
  // A slot freed is reused.
  Published again;
  EXPECT_TRUE(in_table(again.view.get()));
}

}  // namespace
}  // namespace subctx::fault
