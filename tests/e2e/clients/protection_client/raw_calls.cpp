// e2e_protection_client: raw calls through plain function pointers
// (test_protection_raw_call.cpp).
#include <cinttypes>
#include <string>
#include <thread>
#include <vector>

#include "protection_client.hpp"

namespace prot_client {

// Raw calls through plain function pointers (basic image).
int raw_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto* square = sc.raw<int64_t(int64_t)>("square");
  auto* bump = sc.raw<int64_t(int64_t)>("bump");
  auto* hyp = sc.raw<double(double, double)>("hyp");
  auto* talk = sc.raw<int32_t(const char*)>("say");
  say("raw is not the export address %d\n", reinterpret_cast<uintptr_t>(square) != export_address(sc, "square"));
  say("square %" PRId64 " %" PRId64 "\n", square(7), square(-12));
  const int64_t b1 = bump(1);
  const int64_t b2 = bump(10);
  say("bump %" PRId64 " %" PRId64 "\n", b1, b2);
  say("hyp %.3f %.3f\n", hyp(3.0, 4.0), hyp(0.5, 1.5));
  std::printf("before say\n");  // not flushed: the call must flush it first
  const int32_t n = talk("raw hello");
  std::printf("after say %d\n", n);
  void* p = nullptr;
  const int rc = sbc_lookup(sc.handle(), "square", &p);
  say("sbc_lookup %d same %d square %" PRId64 "\n", rc, p == reinterpret_cast<void*>(square),
      reinterpret_cast<int64_t (*)(int64_t)>(p)(-9));
  // One pointer, several threads at once.
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int64_t i = 0; i < 2000; ++i) {
        const int64_t x = t * 100000 + i;
        if (square(x) != x * x) wrong.fetch_add(1);
        if (hyp(static_cast<double>(t), 1.0) != t * t + 1.0) wrong.fetch_add(1);
      }
    });
  for (auto& th : threads) th.join();
  say("threads wrong %d\n", wrong.load());
  say("bump after %" PRId64 "\n", sc.call<int64_t(int64_t)>("bump", 0));
  return 0;
}

// A raw pointer of an export that the policy denies after the lookup.
int raw_denied_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto* open_door = sc.raw<int64_t(int64_t)>("open_door");
  say("first %" PRId64 "\n", open_door(1));
  say("raw 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(open_door), sc.handle());
  if (sbc_set_policy("allow map\ndeny call export=open_*\n") != 0) fail(sbc_last_error());
  say("second %" PRId64 "\n", open_door(1));
  return 0;
}

// A raw pointer used after its subcontext was unmapped.
int raw_stale_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto* square = sc.raw<int64_t(int64_t)>("square");
  say("first %" PRId64 "\n", square(3));
  say("raw 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(square));
  Matchmaker::instance().unmap(sc);
  say("second %" PRId64 "\n", square(3));
  return 0;
}

}  // namespace prot_client
