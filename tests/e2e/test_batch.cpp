// Batches (docs/protection.md, "Batches"): Function::call_each and
// sbc_request_call_batch call an export many times in a row under one
// policy check and one protection window, entering the subcontext once per
// chunk of calls.  Results equal one-by-one calls, in order, across chunk
// boundaries; a failing call ends the batch and says which it was, with the
// results before it stored; the timeout covers the whole batch; the policy
// decides before any call; memory is closed again afterwards; signals and
// threads during batches.
//
// This process is the client: it survives every fault below.
#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>
#include <tuple>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using subctx::Protection;

const std::string& basic_image() {  // square bump hyp say; counter starts at 100
  static const std::string path = build_image(paths::kBasicServer, "basic.img");
  return path;
}

const std::string& c_image() {  // set_counter (void) get_counter ...
  static const std::string path = build_image(paths::kCServer, "c.img");
  return path;
}

const std::string& fault_image() {  // bump divide spin heap_name ...
  static const std::string path = build_image(paths::kFaultServer, "fault.img");
  return path;
}

class BatchTest : public E2eTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    const std::string b = GetParam();
    if (b == "pkey" && !pkeys_work()) GTEST_SKIP() << "no protection keys here";
    backend_ = subctx::testing::protection_named(b);
  }
  subctx::Subcontext map(const std::string& image, bool readable = false) {
    subctx::MapOptions o;
    o.protection = backend_;
    o.readable = readable;
    return mm().request_map(image, o);
  }
  Protection backend_ = Protection::None;
};

// The permissions /proc/self/maps gives the page holding address a ("" when unmapped).
std::string permissions_at(uint64_t a) {
  std::istringstream maps(read_self_maps());
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "";
}

TEST_P(BatchTest, ResultsEqualOneByOneCallsAcrossChunks) {
  subctx::Subcontext sc = map(basic_image());
  auto square = sc.function<int64_t(int64_t)>("square");
  // 2500 calls: two chunks of 1024 and a partial one.
  std::vector<int64_t> in(2500), out(2500, -1);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int64_t>(i) * 37 - 5000;
  square.call_each(in, out);
  for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] * in[i]) << "call " << i;

  // Two f64 arguments as tuples; the result comes back in xmm0.
  auto hyp = sc.function<double(double, double)>("hyp");
  std::vector<std::tuple<double, double>> pairs;
  for (int i = 0; i < 300; ++i) pairs.emplace_back(i * 0.5, 3.0 - i);
  std::vector<double> h(pairs.size());
  hyp.call_each(pairs, std::span<double>(h));
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [a, b] = pairs[i];
    ASSERT_EQ(h[i], a * a + b * b) << "call " << i;
  }
}

TEST_P(BatchTest, CallsRunInOrderAndTheirStateStays) {
  subctx::Subcontext sc = map(basic_image());
  auto bump = sc.function<int64_t(int64_t)>("bump");
  // bump(by) adds to a counter that starts at 100 and returns it: the
  // results are running sums, so any reordering, repeat or skipped call
  // shows, chunk boundaries (1024, 2048) included.
  std::vector<int64_t> by(2100), sums(2100);
  for (size_t i = 0; i < by.size(); ++i) by[i] = static_cast<int64_t>(i) + 1;
  bump.call_each(by, sums);
  int64_t expect = 100;
  for (size_t i = 0; i < by.size(); ++i) {
    expect += by[i];
    ASSERT_EQ(sums[i], expect) << "call " << i;
  }
  EXPECT_EQ(bump(0), expect);  // the batch's writes stay for the next call
}

TEST_P(BatchTest, EveryArgumentRegisterOfEveryCall) {
  subctx::Subcontext sc = map(fault_image());
  using Sig = double(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, double, double, double, double, double,
                     double, double, double);
  auto f = sc.function<Sig>("all_registers");
  using Row = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, double, double, double, double, double,
                         double, double, double>;
  std::vector<Row> rows;
  std::vector<double> expect;
  for (int r = 0; r < 1100; ++r) {
    const int64_t x = r;
    const double y = r * 0.5;
    rows.emplace_back(x, -x, x + 1, 2 * x, 3, -7, y, y + 1, -y, 0.25, y * 2, 1.5, -2.0, y + 0.75);
    expect.push_back(static_cast<double>(x - 2 * x + 3 * (x + 1) + 4 * (2 * x) + 15 - 42) + 7 * y + 8 * (y + 1) -
                     9 * y + 2.5 + 11 * (y * 2) + 18 - 26 + 14 * (y + 0.75));
  }
  std::vector<double> out(rows.size());
  f.call_each(rows, std::span<double>(out));
  for (size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(out[i], expect[i]) << "call " << i;
}

TEST_P(BatchTest, ExportsWithoutAResult) {
  subctx::Subcontext sc = map(c_image());
  auto set = sc.function<void(int64_t)>("set_counter");
  auto get = sc.function<int64_t()>("get_counter");
  std::vector<int64_t> values{5, 6, 77};
  set.call_each(values);
  EXPECT_EQ(get(), 77);
  std::vector<std::tuple<>> twice(2);
  std::vector<int64_t> got(2);
  get.call_each(twice, got);
  EXPECT_EQ(got, (std::vector<int64_t>{77, 77}));
}

TEST_P(BatchTest, AnEmptyBatchCallsNothing) {
  subctx::Subcontext sc = map(basic_image());
  auto bump = sc.function<int64_t(int64_t)>("bump");
  std::vector<int64_t> none, out;
  bump.call_each(none, out);
  EXPECT_EQ(bump(0), 100);
}

TEST_P(BatchTest, ResultRoomMustMatchTheArguments) {
  subctx::Subcontext sc = map(basic_image());
  auto bump = sc.function<int64_t(int64_t)>("bump");
  std::vector<int64_t> in{1, 2, 3}, out(2);
  expect_error([&] { bump.call_each(in, out); }, Errc::InvalidArgument,
               {"call_each", "3 arguments", "room for 2 results"});
  EXPECT_EQ(bump(0), 100) << "a refused batch called nothing";
}

TEST_P(BatchTest, AFaultEndsTheBatchAndSaysWhichCall) {
  subctx::Subcontext sc = map(fault_image());
  auto divide = sc.function<int64_t(int64_t, int64_t)>("divide");
  std::vector<std::tuple<int64_t, int64_t>> in;
  // The zero divisor sits in the second chunk of 1024 calls.
  for (int i = 0; i < 1500; ++i) in.emplace_back(1000 + i, i == 1200 ? 0 : 7);
  std::vector<int64_t> out(in.size(), -1);
  try {
    divide.call_each(in, out);
    FAIL() << "no fault";
  } catch (const subctx::SubcontextFault& e) {
    EXPECT_EQ(e.signal(), SIGFPE) << e.what();
    EXPECT_EQ(e.completed(), 1200u) << e.what();
    EXPECT_EQ(e.export_name(), "divide");
    EXPECT_NE(
        std::string(e.what()).find("in call 1201 of a batch of 1500 (the results of the 1200 before it are stored)"),
        std::string::npos)
        << e.what();
  }
  for (int i = 0; i < 1200; ++i) ASSERT_EQ(out[i], (1000 + i) / 7) << "call " << i;
  for (size_t i = 1200; i < out.size(); ++i) ASSERT_EQ(out[i], -1) << "slot " << i << " was written";
  // The subcontext goes on (reset after the fault, the default).
  EXPECT_EQ(divide(84, 2), 42);
}

// Short calls over many chunks under a short deadline: wherever the
// deadline lands (between chunks included), completed() calls have their
// results stored and no other slot, nor anything after the results, is
// written.
TEST_P(BatchTest, ATimeoutAnywhereInAManyChunkBatchLeavesExactlyTheCompletedResults) {
  subctx::Subcontext sc = map(basic_image());
  auto square = sc.function<int64_t(int64_t)>("square");
  constexpr size_t kCount = 2000000, kGuard = 4096;
  std::vector<int64_t> in(kCount);
  for (size_t i = 0; i < kCount; ++i) in[i] = static_cast<int64_t>(i % 1000003);
  std::vector<int64_t> out(kCount + kGuard);
  int timeouts = 0;
  for (int rep = 0; rep < 20; ++rep) {
    std::fill(out.begin(), out.end(), -1);
    sc.set_call_timeout(2);
    try {
      square.call_each(in, std::span<int64_t>(out.data(), kCount));
      for (size_t i = 0; i < kCount; ++i) ASSERT_EQ(out[i], in[i] * in[i]) << "rep " << rep << " call " << i;
    } catch (const subctx::Timeout& e) {
      ++timeouts;
      const uint64_t done = e.completed();
      ASSERT_LT(done, kCount) << e.what();
      for (size_t i = 0; i < done; ++i) ASSERT_EQ(out[i], in[i] * in[i]) << "rep " << rep << " call " << i;
      for (size_t i = done; i < out.size(); ++i) ASSERT_EQ(out[i], -1) << "rep " << rep << " slot " << i << " written";
    }
  }
  sc.set_call_timeout(0);
  EXPECT_GT(timeouts, 0) << "two million calls all ran within 2 ms 20 times";
}

TEST_P(BatchTest, ExitInsideABatchEndsItAtThatCall) {
  subctx::Subcontext sc = map(fault_image());
  auto do_exit = sc.function<int64_t(int64_t)>("do_exit");
  std::vector<int64_t> status{5, 6}, out(2, -1);
  try {
    do_exit.call_each(status, out);
    FAIL() << "no fault";
  } catch (const subctx::SubcontextFault& e) {
    EXPECT_EQ(e.exit_status(), 5) << e.what();
    EXPECT_EQ(e.completed(), 0u);
    EXPECT_NE(std::string(e.what()).find("in call 1 of a batch of 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(out, (std::vector<int64_t>{-1, -1}));
}

TEST_P(BatchTest, AFaultPoisonsAsItsPolicySays) {
  subctx::MapOptions o;
  o.protection = backend_;
  o.on_fault = subctx::OnFault::Poison;
  subctx::Subcontext sc = mm().request_map(fault_image(), o);
  auto divide = sc.function<int64_t(int64_t, int64_t)>("divide");
  std::vector<std::tuple<int64_t, int64_t>> in{{10, 2}, {10, 5}, {1, 0}, {9, 3}};
  std::vector<int64_t> out(4, -1);
  expect_error([&] { divide.call_each(in, out); }, Errc::Fault, {"SIGFPE", "in call 3 of a batch of 4", "poisoned"});
  EXPECT_EQ(out, (std::vector<int64_t>{5, 2, -1, -1}));
  expect_error([&] { divide(8, 2); }, Errc::Poisoned, {"poisoned"});
  std::vector<std::tuple<int64_t, int64_t>> none;
  std::vector<int64_t> none_out;
  expect_error([&] { divide.call_each(none, none_out); }, Errc::Poisoned, {"poisoned"});
  sc.reset();
  EXPECT_EQ(divide(8, 2), 4);
}

TEST_P(BatchTest, QuotasEndABatch) {
  subctx::Subcontext sc = map(fault_image());
  // Mapped bytes are counted as subcontext code maps: the call over the
  // quota fails, the one before it returned.
  sc.set_quota({0, 2 << 20});
  auto map_bytes = sc.function<int64_t(int64_t)>("map_bytes");
  std::vector<int64_t> sizes{1 << 20, 4 << 20, 1 << 20}, addresses(3, -1);
  try {
    map_bytes.call_each(sizes, addresses);
    FAIL() << "no quota error";
  } catch (const subctx::QuotaExceeded& e) {
    EXPECT_EQ(e.completed(), 1u) << e.what();
    EXPECT_GT(addresses[0], 0);
    EXPECT_EQ(addresses[1], -1);
  }
  // Dirty pages are counted after the call: after the whole batch.
  sc.set_quota({50, 0});
  auto dirty = sc.function<int64_t(int64_t)>("dirty");
  std::vector<int64_t> pages{10, 100, 200}, got(3, -1);
  try {
    dirty.call_each(pages, got);
    FAIL() << "no quota error";
  } catch (const subctx::QuotaExceeded& e) {
    EXPECT_EQ(e.completed(), 3u) << e.what();
    EXPECT_NE(std::string(e.what()).find("after all 3 calls of the batch returned"), std::string::npos) << e.what();
    EXPECT_EQ(got, pages);
  }
}

TEST_P(BatchTest, TheTimeoutCoversTheWholeBatch) {
  subctx::Subcontext sc = map(fault_image());
  sc.set_call_timeout(250);
  auto spin = sc.function<int64_t(int64_t)>("spin");
  // Every call fits the timeout; together they do not.
  std::vector<int64_t> ms(10, 100), out(10, -1);
  try {
    spin.call_each(ms, out);
    FAIL() << "no timeout";
  } catch (const subctx::Timeout& e) {
    EXPECT_LE(e.completed(), 2u) << e.what();  // each call spins at least 100 ms
    EXPECT_NE(std::string(e.what()).find("of a batch of 10"), std::string::npos) << e.what();
    for (size_t i = 0; i < e.completed(); ++i) EXPECT_EQ(out[i], 100);
    for (size_t i = e.completed(); i < out.size(); ++i) EXPECT_EQ(out[i], -1);
  }
  EXPECT_EQ(spin(1), 1);
}

TEST_P(BatchTest, ThePolicyDecidesBeforeAnyCall) {
  subctx::Subcontext sc = map(basic_image());
  auto bump = sc.function<int64_t(int64_t)>("bump");
  std::vector<int64_t> in(50, 1), out(50, -1);
  mm().set_policy("allow map path=*\ndeny call export=bump\n");
  expect_error([&] { bump.call_each(in, out); }, Errc::Policy, {"bump", "deny call export=bump"});
  std::vector<int64_t> none, none_out;
  expect_error([&] { bump.call_each(none, none_out); }, Errc::Policy, {"bump"});
  mm().clear_policy();
  for (int64_t v : out) ASSERT_EQ(v, -1);
  EXPECT_EQ(bump(0), 100) << "no call of the denied batch ran";
}

TEST_P(BatchTest, StringResultsNeedReadableMemory) {
  subctx::Subcontext sc = map(fault_image());
  auto name = sc.function<const char*()>("heap_name");
  std::vector<std::tuple<>> three(3);
  std::vector<const char*> out(3, nullptr);
  if (backend_ == Protection::None) {
    name.call_each(three, out);
    for (const char* s : out) EXPECT_STREQ(s, name());
  } else {
    expect_error([&] { name.call_each(three, out); }, Errc::InvalidArgument,
                 {"heap_name", "returns a string", "call it one by one"});
    EXPECT_STREQ(name(), "table") << "one by one, the string is copied out";
    mm().unmap(sc);
    if (backend_ == Protection::Pkey) {
      // No readable map under pkey (a key's rights are per thread): the
      // refusal above is the whole answer there.
      expect_error([&] { map(fault_image(), true); }, Errc::Unsupported,
                   {fault_image(), "readable", "pkey backend", "mprotect"});
      return;
    }
    subctx::Subcontext readable = map(fault_image(), true);
    auto readable_name = readable.function<const char*()>("heap_name");
    readable_name.call_each(three, out);
    for (const char* s : out) EXPECT_STREQ(s, readable_name());
  }
}

TEST_P(BatchTest, MemoryIsClosedAgainAfterTheBatch) {
  if (backend_ != Protection::Mprotect) GTEST_SKIP() << "page permissions change only under mprotect";
  subctx::Subcontext sc = map(basic_image());
  auto square = sc.function<int64_t(int64_t)>("square");
  std::vector<int64_t> in(500, 3), out(500);
  square.call_each(in, out);
  EXPECT_EQ(out.back(), 9);
  EXPECT_EQ(permissions_at(square.address()), "---p") << "the export's code page is open after the batch";
}

std::atomic<int> g_alarms{0};
void on_alarm(int) { g_alarms.fetch_add(1, std::memory_order_relaxed); }

TEST_P(BatchTest, SignalsDuringABatchReachTheClientAndTheBatchCompletes) {
  subctx::Subcontext sc = map(fault_image());
  auto spin = sc.function<int64_t(int64_t)>("spin");
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
  g_alarms = 0;
  itimerval t{{0, 1000}, {0, 1000}};  // every millisecond
  ASSERT_EQ(setitimer(ITIMER_REAL, &t, nullptr), 0);
  std::vector<int64_t> ms(300, 1), out(300, -1);
  spin.call_each(ms, out);  // about 300 ms inside the subcontext
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  ASSERT_EQ(sigaction(SIGALRM, &old, nullptr), 0);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], 1) << "call " << i;
  EXPECT_GT(g_alarms.load(), 10) << "the client's handler ran during the batch";
}

TEST_P(BatchTest, ThreadsBatchTheSameSubcontextAtOnce) {
  subctx::Subcontext sc = map(basic_image());
  auto bump = sc.function<int64_t(int64_t)>("bump");
  constexpr int kThreads = 4, kCalls = 2000;
  std::vector<std::vector<int64_t>> seen(kThreads, std::vector<int64_t>(kCalls));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<int64_t> ones(kCalls, 1);
      bump.call_each(ones, seen[t]);
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bump(0), 100 + kThreads * kCalls);
  // A batch is one call: no other thread's call runs inside it, so each
  // thread's sums rise by one from start to end.
  for (int t = 0; t < kThreads; ++t)
    for (int i = 1; i < kCalls; ++i) ASSERT_EQ(seen[t][i], seen[t][i - 1] + 1) << "thread " << t << " call " << i;
}

TEST_P(BatchTest, TheCApiBatches) {
  subctx::MapOptions o;
  o.protection = backend_;
  const int sc = mm().request_map(basic_image(), o).handle();
  ASSERT_GE(sc, 0);
  // hyp(a, b): rows of two f64 bit patterns.
  std::vector<uint64_t> rows;
  for (int i = 0; i < 200; ++i) {
    double a = i, b = 0.25 * i;
    uint64_t bits[2];
    std::memcpy(&bits[0], &a, 8);
    std::memcpy(&bits[1], &b, 8);
    rows.insert(rows.end(), bits, bits + 2);
  }
  std::vector<uint64_t> rets(200);
  size_t completed = 99;
  ASSERT_EQ(sbc_request_call_batch(sc, "hyp", rows.data(), 2, 200, rets.data(), &completed), 0) << sbc_last_error();
  EXPECT_EQ(completed, 200u);
  for (int i = 0; i < 200; ++i) {
    double h;
    std::memcpy(&h, &rets[i], 8);
    ASSERT_EQ(h, i * double(i) + (0.25 * i) * (0.25 * i)) << "call " << i;
  }
  // Results may be dropped; the state still changes.
  const uint64_t ones[5] = {1, 1, 1, 1, 1};
  ASSERT_EQ(sbc_request_call_batch(sc, "bump", ones, 1, 5, nullptr, nullptr), 0) << sbc_last_error();
  uint64_t now = 0;
  const uint64_t zero = 0;
  ASSERT_EQ(sbc_request_call(sc, "bump", &zero, 1, &now), 0);
  EXPECT_EQ(now, 105u);
  // A wrong argument count is refused before any call.
  completed = 99;
  EXPECT_EQ(sbc_request_call_batch(sc, "bump", ones, 2, 2, nullptr, &completed), -SBC_E_SIGNATURE);
  EXPECT_NE(std::string(sbc_last_error()).find("called with 2"), std::string::npos) << sbc_last_error();
  EXPECT_EQ(completed, 0u);
  EXPECT_EQ(sbc_request_call_batch(sc, "bump", nullptr, 1, 3, nullptr, nullptr), -SBC_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sbc_last_error()).find("args is NULL"), std::string::npos) << sbc_last_error();
  EXPECT_EQ(sbc_request_call_batch(sc, "no_such", ones, 1, 1, nullptr, nullptr), -SBC_E_NO_EXPORT);
  EXPECT_EQ(sbc_unmap(sc), 0);
}

TEST_P(BatchTest, TheCApiSaysHowManyCallsReturnedBeforeAFault) {
  subctx::MapOptions o;
  o.protection = backend_;
  const int sc = mm().request_map(fault_image(), o).handle();
  std::vector<uint64_t> rows;
  for (int i = 0; i < 40; ++i) rows.insert(rows.end(), {uint64_t(100 + i), uint64_t(i == 30 ? 0 : 10)});
  std::vector<uint64_t> rets(40, 7);
  size_t completed = 0;
  EXPECT_EQ(sbc_request_call_batch(sc, "divide", rows.data(), 2, 40, rets.data(), &completed), -SBC_E_FAULT);
  EXPECT_EQ(completed, 30u);
  EXPECT_NE(std::string(sbc_last_error()).find("in call 31 of a batch of 40"), std::string::npos) << sbc_last_error();
  for (int i = 0; i < 30; ++i) ASSERT_EQ(rets[i], uint64_t((100 + i) / 10));
  for (int i = 30; i < 40; ++i) ASSERT_EQ(rets[i], 7u);
  // A str result: refused where the client cannot read the subcontext.
  uint64_t names[2];
  const int rc = sbc_request_call_batch(sc, "heap_name", nullptr, 0, 2, names, &completed);
  if (backend_ == Protection::None) {
    EXPECT_EQ(rc, 0) << sbc_last_error();
    EXPECT_EQ(completed, 2u);
  } else {
    EXPECT_EQ(rc, -SBC_E_INVALID_ARGUMENT);
    EXPECT_NE(std::string(sbc_last_error()).find("returns a string"), std::string::npos) << sbc_last_error();
    EXPECT_EQ(completed, 0u);
  }
  EXPECT_EQ(sbc_unmap(sc), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, BatchTest, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace e2e
