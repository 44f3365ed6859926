// e2e_protection_client: rights with many threads
// (test_protection_threads.cpp).
#include <cinttypes>
#include <cstdio>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "protection_client.hpp"

namespace prot_client {

// Client threads call into two subcontexts while a prober thread reads
// their memory (a violation handler jumps it back out).  Prints counts.
int threads_mode(const std::string& backend, const std::string& basic, const std::string& prot) {
  Subcontext b = map(basic, backend);
  Subcontext p = map(prot, backend);
  const uintptr_t targets[2] = {export_address(b, "square"), reinterpret_cast<uintptr_t>(p.call<void*()>("data_addr"))};
  Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  // Per subcontext: calls started and finished.  A call's protection window
  // opens after `started` moves and closes before `finished` does.
  std::atomic<uint64_t> started[2] = {0, 0}, finished[2] = {0, 0};
  std::atomic<int> wrong{0}, callers_left{0};
  auto square = b.function<int64_t(int64_t)>("square");
  auto add = p.function<int64_t(int64_t, int64_t)>("pure_add");
  auto call = [&](int which, int64_t i) {
    started[which].fetch_add(1);
    const int64_t r = which == 0 ? square(i) : add(i, 7);
    finished[which].fetch_add(1);
    if (r != (which == 0 ? i * i : i + 7)) wrong.fetch_add(1);
  };
  // Callers make at least kCalls calls each and go on until the prober has
  // made kOverlap attempts; the prober goes on until every caller is done.
  // So the prober's first kOverlap reads all happen while every caller is
  // still calling.
  constexpr int kCalls = 4000;
  constexpr uint64_t kOverlap = 2000;
  std::atomic<uint64_t> attempts{0}, calls{0};
  std::vector<std::thread> callers;
  const int plan[] = {0, 0, 1, 1, 2};  // 2: both, alternating
  callers_left = static_cast<int>(std::size(plan));
  for (int which : plan)
    callers.emplace_back([&, which] {
      int64_t i = 0;
      for (; i < kCalls || attempts.load() < kOverlap; ++i) call(which == 2 ? static_cast<int>(i & 1) : which, i);
      calls.fetch_add(static_cast<uint64_t>(i));
      callers_left.fetch_sub(1);
    });
  // The prober.
  uint64_t faults = 0, reads = 0, quiet_reads = 0, in_flight = 0;
  std::thread prober([&] {
    while (callers_left.load() > 0 || attempts.load() < kOverlap) {
      const int which = static_cast<int>(attempts.load() & 1);
      attempts.fetch_add(1);
      const uint64_t s1 = started[which].load(), f1 = finished[which].load();
      if (s1 != f1) ++in_flight;  // a call of it was in flight as the read began
      if (try_access(0, targets[which], nullptr)) {
        const uint64_t s2 = started[which].load();
        ++reads;
        if (s1 == f1 && s2 == s1) ++quiet_reads;  // no call of it was in flight during the read
      } else {
        ++faults;
      }
    }
  });
  for (auto& t : callers) t.join();
  prober.join();
  // Everything joined: every read faults again.
  int after = 0;
  for (uintptr_t a : targets)
    if (!try_access(0, a, nullptr)) ++after;
  std::printf("calls>=%d %d wrong %d\n", static_cast<int>(std::size(plan)) * kCalls,
              calls.load() >= std::size(plan) * kCalls, wrong.load());
  std::printf("attempts>=%d %d faults+reads=attempts %d\n", static_cast<int>(kOverlap), attempts.load() >= kOverlap,
              faults + reads == attempts.load());
  std::printf("reads %s\n", reads == 0 ? "none" : "some");
  std::printf("quiet reads %" PRIu64 "\n", quiet_reads);
  std::printf("after join faults %d\n", after);
  // For a person reading the log (timing-dependent, not compared).
  std::fprintf(stderr,
               "calls %" PRIu64 " attempts %" PRIu64 " faults %" PRIu64 " reads %" PRIu64 " quiet reads %" PRIu64
               " begun with a call in flight %" PRIu64 "\n",
               calls.load(), attempts.load(), faults, reads, quiet_reads, in_flight);
  return 0;
}

}  // namespace prot_client
