// e2e_protection_client: the client's violation handler
// (test_protection_handler.cpp).
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "protection_client.hpp"

namespace prot_client {

// A violation handler that records and jumps out; the client goes on.
int handler_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  const uintptr_t data = reinterpret_cast<uintptr_t>(sc.call<void*()>("data_addr"));
  const uintptr_t code = export_address(sc, "pure_add");
  Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  struct Probe {
    const char* what;
    uintptr_t address;
    int op;  // 0 read, 1 write, 2 jump
  };
  const uintptr_t raw = reinterpret_cast<uintptr_t>(sc.raw<int64_t(int64_t)>("hits"));
  std::vector<Probe> probes = {
      {"read", data + 8, 0}, {"write", data + 16, 1}, {"read-code", code + 2, 0}, {"raw-read", raw, 0}};
  if (backend != "none") probes.push_back({"jump-data", data + 64, 2});
  for (const Probe& p : probes) {
    std::memset(&g_rec, 0, sizeof g_rec);
    std::printf("%s ", p.what);
    print_expectation(sc, p.address);
    int64_t value = 0;
    if (!try_access(p.op, p.address, &value)) print_record(p.what, p.address);
    else if (p.op == 1) say("%s: no violation\n", p.what);
    else say("%s: no violation, %s %" PRId64 "\n", p.what, p.op == 0 ? "value" : "result", value);
  }
  say("violations %d handle %d\n", g_violations.load(), sc.handle());
  // The subcontext is fine and its memory is still closed.
  const int64_t h = sc.call<int64_t(int64_t)>("hits", 1);
  const int64_t sum = sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3);
  const int64_t byte = sc.call<int64_t(int64_t)>("data_byte", 8);
  say("after: hits %" PRId64 " pure_add %" PRId64 " data_byte %" PRId64 "\n", h, sum, byte);
  return 0;
}

// A violation handler that returns: the process dies of SIGSEGV.
int handler_returns_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  const uintptr_t data = reinterpret_cast<uintptr_t>(sc.call<void*()>("data_addr"));
  sbc_set_violation_handler(returning_handler, nullptr);
  say("value %d\n", read_byte(data));
  return 0;
}

}  // namespace prot_client
