// The call path's own structures: the export name index and the call lock.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "matchmaker/call_lock.hpp"
#include "matchmaker/export_index.hpp"

namespace {

using subctx::detail::CallLock;
using subctx::detail::ExportIndex;

TEST(ExportIndex, FindsEveryNameAndNothingElse) {
  ExportIndex index;
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back((i % 3 ? "export_" : "x") + std::to_string(i));
  names.push_back("");
  names.push_back("a_name_longer_than_sixteen_bytes");
  names.push_back("a_name_longer_than_sixteen_bytez");  // same length, first and last 8 bytes differ
  // The hash reads the first and last 8 bytes only: these all collide.
  for (int i = 0; i < 50; ++i) names.push_back("prefix__" + std::to_string(100 + i) + "__suffix");
  for (uint32_t i = 0; i < names.size(); ++i) index.add(names[i], i * 7);
  ASSERT_EQ(index.size(), names.size());
  for (uint32_t i = 0; i < names.size(); ++i) EXPECT_EQ(index.find(names[i]), i * 7) << names[i];
  EXPECT_EQ(index.find("export_1001"), ExportIndex::kNone);
  EXPECT_EQ(index.find("export_"), ExportIndex::kNone);
  EXPECT_EQ(index.find("a_name_longer_than_sixteen_bytes_"), ExportIndex::kNone);
  EXPECT_EQ(index.find(std::string_view("x0\0", 3)), ExportIndex::kNone);
  EXPECT_EQ(index.find("prefix__099__suffix"), ExportIndex::kNone);
}

TEST(ExportIndex, EmptyFindsNothing) {
  ExportIndex index;
  EXPECT_EQ(index.find("add1"), ExportIndex::kNone);
  EXPECT_EQ(index.find(""), ExportIndex::kNone);
}

TEST(CallLock, TellsItsHolderAndACall) {
  CallLock lock;
  EXPECT_FALSE(lock.held_by_this_thread());
  ASSERT_TRUE(lock.lock_for_call());
  EXPECT_TRUE(lock.held_by_this_thread());
  EXPECT_TRUE(lock.in_call());
  EXPECT_FALSE(lock.try_lock());
  EXPECT_FALSE(lock.lock_for_call()) << "a second call on the holder's thread must not wait for itself";
  std::thread([&] {
    EXPECT_FALSE(lock.held_by_this_thread());
    EXPECT_FALSE(lock.try_lock());
  }).join();
  lock.unlock();
  EXPECT_FALSE(lock.held_by_this_thread());
  {
    std::lock_guard guard(lock);
    EXPECT_TRUE(lock.held_by_this_thread());
    EXPECT_FALSE(lock.in_call());
  }
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(CallLock, ExcludesAndWakesWaiters) {
  CallLock lock;
  constexpr int kThreads = 4, kRounds = 20000;
  long counter = 0;  // not atomic: the lock alone keeps it exact
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if ((i + t) % 2) {
          ASSERT_TRUE(lock.lock_for_call());
        } else {
          lock.lock();
        }
        ++counter;
        if (i % 1000 == 0) std::this_thread::yield();  // let others queue up and sleep
        lock.unlock();
      }
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter, long{kThreads} * kRounds);
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(CallLock, ForgetGivesUpAHolderThatIsGone) {
  CallLock lock;
  std::thread([&] { lock.lock(); }).join();  // held by a thread that is gone (as after fork())
  EXPECT_FALSE(lock.try_lock());
  lock.forget();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

}  // namespace
