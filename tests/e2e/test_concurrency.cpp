// Many clients, many threads: 8 client processes map one image at once; a
// 4-thread client; two subcontexts called in parallel; calls into one
// subcontext serialized.  The image file stays byte-identical and each
// client's writes stay private to it.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using Clock = std::chrono::steady_clock;

class Concurrency : public E2eTest {};

struct FileIdentity {
  uint64_t hash;
  timespec mtime;
  off_t size;
};
FileIdentity identity(const std::string& path) {
  struct stat st {};
  stat(path.c_str(), &st);
  return {file_hash(path), st.st_mtim, st.st_size};
}
void expect_same(const FileIdentity& a, const FileIdentity& b, const std::string& path) {
  EXPECT_EQ(a.hash, b.hash) << path << " changed";
  EXPECT_EQ(a.size, b.size) << path;
  EXPECT_EQ(a.mtime.tv_sec, b.mtime.tv_sec) << path;
  EXPECT_EQ(a.mtime.tv_nsec, b.mtime.tv_nsec) << path;
}

TEST_F(Concurrency, EightClientsMapOneImageAtOnce) {
  constexpr int kClients = 8, kCalls = 3000;
  const FileIdentity basic_before = identity(basic_image()), feature_before = identity(feature_image());
  std::vector<Child> clients;
  SpawnOptions o;
  o.stdin_pipe = true;
  for (int id = 0; id < kClients; ++id)
    clients.emplace_back(std::vector<std::string>{paths::kWorkerClient, "concurrent", std::to_string(id),
                                                  std::to_string(kCalls), basic_image(), feature_image()},
                         o);
  // Every client has both images mapped before any of them calls.
  for (int id = 0; id < kClients; ++id) {
    std::string line;
    ASSERT_TRUE(clients[id].read_line(&line, Millis(20000)))
        << "client " << id << " did not map: " << clients[id].finish(Millis(1000)).describe();
    EXPECT_EQ(line, "mapped " + std::to_string(id));
  }
  for (auto& c : clients) c.close_stdin();
  for (int id = 0; id < kClients; ++id) {
    ProcessResult r = clients[id].finish(Millis(40000));
    EXPECT_TRUE(r.ok()) << "client " << id << ": " << r.describe();
    // Each counter moved by this client's own bumps only.
    EXPECT_EQ(r.out, "mapped " + std::to_string(id) + "\nclient " + std::to_string(id) +
                         " ok counter=" + std::to_string(100 + (id + 1) * kCalls) + "\n");
  }
  expect_same(basic_before, identity(basic_image()), basic_image());
  expect_same(feature_before, identity(feature_image()), feature_image());
}

TEST_F(Concurrency, FourThreadsThousandsOfCallsIntoOneSubcontext) {
  constexpr int kThreads = 4, kCalls = 5000;
  subctx::Subcontext sc = mm().request_map(basic_image());
  std::vector<std::vector<int64_t>> seen(kThreads);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto square = sc.function<int64_t(int64_t)>("square");
      auto hyp = sc.function<double(double, double)>("hyp");
      for (int i = 0; i < kCalls; ++i) {
        const int64_t x = t * 100000 + i;
        if (square(x) != x * x) ++bad;
        if (hyp(t, i) != double(t) * t + double(i) * i) ++bad;
        seen[t].push_back(sc.call<int64_t(int64_t)>("bump", 1));
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  // counter += 1 is not atomic in the server: only serialized calls give
  // every value exactly once.
  std::vector<int64_t> all;
  for (const auto& s : seen) {
    for (size_t i = 1; i < s.size(); ++i) ASSERT_LT(s[i - 1], s[i]);
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), size_t{kThreads * kCalls});
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], 101 + static_cast<int64_t>(i));
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 0), 100 + kThreads * kCalls);
}

TEST_F(Concurrency, TwoSubcontextsCalledInParallel) {
  // Two images of the same server (two runs): independent state.
  const std::string second = build_image(paths::kBasicServer, "basic-2.img");
  subctx::Subcontext a = mm().request_map(basic_image());
  subctx::Subcontext b = mm().request_map(second);
  constexpr int kCalls = 4000;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const subctx::Subcontext& sc = (t % 2) ? b : a;
      auto square = sc.function<int64_t(int64_t)>("square");
      auto bump = sc.function<int64_t(int64_t)>("bump");
      for (int i = 0; i < kCalls; ++i) {
        if (square(i + t) != int64_t{i + t} * (i + t)) ++bad;
        bump(t + 1);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(a.call<int64_t(int64_t)>("bump", 0), 100 + (1 + 3) * kCalls);
  EXPECT_EQ(b.call<int64_t(int64_t)>("bump", 0), 100 + (2 + 4) * kCalls);
}

// Two threads each call sleep_ms(kSleep): on two subcontexts they overlap,
// on one they take turns.
TEST_F(Concurrency, DifferentSubcontextsRunInParallelOneSubcontextSerializes) {
  constexpr int64_t kSleep = 300;
  const std::string second = build_image(paths::kFeatureServer, "feature-2.img");
  subctx::Subcontext a = mm().request_map(feature_image());
  subctx::Subcontext b = mm().request_map(second);
  auto timed = [&](const subctx::Subcontext& x, const subctx::Subcontext& y) {
    auto start = Clock::now();
    std::thread t1([&] { EXPECT_EQ(x.call<int64_t(int64_t)>("sleep_ms", kSleep), kSleep); });
    std::thread t2([&] { EXPECT_EQ(y.call<int64_t(int64_t)>("sleep_ms", kSleep), kSleep); });
    t1.join();
    t2.join();
    return std::chrono::duration_cast<Millis>(Clock::now() - start).count();
  };
  const auto parallel = timed(a, b);
  const auto serial = timed(a, a);
  EXPECT_LT(parallel, 2 * kSleep - 50) << "two subcontexts did not run in parallel";
  EXPECT_GE(serial, 2 * kSleep) << "calls into one subcontext overlapped";
}

TEST_F(Concurrency, ImageFileIsByteIdenticalAfterManyCallsFromManyClients) {
  const FileIdentity basic_before = identity(basic_image()), feature_before = identity(feature_image());
  {
    subctx::Subcontext b = mm().request_map(basic_image());
    subctx::Subcontext f = mm().request_map(feature_image());
    for (int i = 0; i < 2000; ++i) b.call<int64_t(int64_t)>("bump", i);
    f.call<int64_t(const char*)>("sql_exec", "DELETE FROM t");
    f.call<int64_t(const char*)>("lua_int", "(function() names = nil; fib = nil; return 0 end)()");
    f.call<int64_t(int64_t, int64_t)>("alloc_many", 10000, 1000);
    for (int i = 0; i < 300; ++i) f.call<int64_t(const char*, int64_t)>("map_put", std::to_string(i).c_str(), i);
    mm().unmap(b);
    mm().unmap(f);
  }
  for (int round = 0; round < 3; ++round) {
    ProcessResult r = run({paths::kWorkerClient, "peek", basic_image(), feature_image()});
    ASSERT_TRUE(r.ok()) << r.describe();
  }
  expect_same(basic_before, identity(basic_image()), basic_image());
  expect_same(feature_before, identity(feature_image()), feature_image());
}

TEST_F(Concurrency, EachClientsWritesStayPrivate) {
  const char kPristine[] = "counter=100 map_size=1000 rows=10000\nafter: counter=107 map_size=1001 rows=5000\n";
  subctx::Subcontext b = mm().request_map(basic_image());
  subctx::Subcontext f = mm().request_map(feature_image());
  // Client A (this process) changes its subcontexts...
  EXPECT_EQ(b.call<int64_t(int64_t)>("bump", 5), 105);
  EXPECT_EQ(f.call<int64_t(const char*, int64_t)>("map_put", "mine", 1), 1001);
  EXPECT_EQ(f.call<int64_t(const char*)>("sql_exec", "DELETE FROM t WHERE a > 100"), 9900);
  // ...client B sees the snapshot's state, and changes its own...
  ProcessResult r = run({paths::kWorkerClient, "peek", basic_image(), feature_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, kPristine);
  // ...which A does not see.
  EXPECT_EQ(b.call<int64_t(int64_t)>("bump", 0), 105);
  EXPECT_EQ(f.call<int64_t()>("map_size"), 1001);
  EXPECT_EQ(f.call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM t"), 100);
  // A third client still starts from the snapshot.
  ProcessResult r2 = run({paths::kWorkerClient, "peek", basic_image(), feature_image()});
  ASSERT_TRUE(r2.ok()) << r2.describe();
  EXPECT_EQ(r2.out, kPristine);
}

TEST(Signals, ClientHandlersDuringCallsRunAsTheClientAndCallsComplete) {
  // Twelve long calls under a 1 ms SIGALRM timer and SIGUSR1 from another
  // thread every 0.7 ms: each handler must see the client's thread pointer
  // (a thread_local marker) and stack, and each call must return the right
  // result.  Three runs: signals land at different points of the gate.
  for (int run_no = 0; run_no < 3; ++run_no) {
    ProcessResult r = run({paths::kSignalClient, feature_image()}, {}, Millis(60000));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.out, "calls 12 wrong 0 bad 0 alrm>0 1 usr1>0 1\n") << "run " << run_no << ": " << r.err;
  }
}

}  // namespace
}  // namespace e2e
