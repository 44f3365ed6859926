// e2e_protection_client: client accesses of subcontext memory
// (test_protection_violation.cpp), a fault inside a call.
#include <cinttypes>
#include <string>

#include "protection_client.hpp"

namespace prot_client {

// One access the Matchmaker must stop (mprotect, pkey) or allow (none).
int violation_mode(const std::string& mode, const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  const uintptr_t data = reinterpret_cast<uintptr_t>(sc.call<void*()>("data_addr"));
  const uintptr_t helper = reinterpret_cast<uintptr_t>(sc.call<void*()>("helper_addr"));
  if (mode == "read-data") {
    print_expectation(sc, data + 100);
    say("value %d\n", read_byte(data + 100));
  } else if (mode == "read-code") {
    const uintptr_t a = export_address(sc, "pure_add");
    print_expectation(sc, a);
    say("value %d\n", read_byte(a));
  } else if (mode == "write-data") {
    print_expectation(sc, data + 200);
    write_byte(data + 200, 'W');
    say("wrote; data_byte %" PRId64 "\n", sc.call<int64_t(int64_t)>("data_byte", 200));
  } else if (mode == "write-code") {
    const uintptr_t a = export_address(sc, "pure_add");
    print_expectation(sc, a);
    write_byte(a, 0xcc);
    say("wrote\n");
  } else if (mode == "jump-code") {  // a function of the image that is no export
    print_expectation(sc, helper);
    say("result %" PRId64 "\n", call_at(helper, 3));
  } else if (mode == "jump-data") {
    print_expectation(sc, data + 64);
    say("result %" PRId64 "\n", call_at(data + 64, 3));
  } else if (mode == "call-export") {  // the export's real address, as a plain pointer
    const uintptr_t a = export_address(sc, "hits");
    print_expectation(sc, a);
    say("result %" PRId64 "\n", call_at(a, 5));
    say("then %" PRId64 "\n", sc.call<int64_t(int64_t)>("hits", 1));
  } else if (mode == "raw-data") {  // a raw-call address read as data
    const uintptr_t a = reinterpret_cast<uintptr_t>(sc.raw<int64_t(int64_t)>("hits"));
    say("raw 0x%" PRIxPTR " %d\n", a, sc.handle());
    say("value %d\n", read_byte(a));
  } else if (mode == "raw-write") {
    const uintptr_t a = reinterpret_cast<uintptr_t>(sc.raw<int64_t(int64_t)>("hits"));
    say("raw 0x%" PRIxPTR " %d\n", a, sc.handle());
    write_byte(a, 0xc3);
    say("wrote\n");
  } else {
    fail("unknown mode " + mode);
  }
  return 0;
}

// Subcontext code reads far past its array: an error at the call site.
int inside_fault_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  say("data at %p\n", sc.call<void*()>("data_addr"));
  try {
    say("value %" PRId64 "\n", sc.call<int64_t(int64_t)>("data_byte", int64_t{1} << 44));
  } catch (const subctx::SubcontextFault& f) {
    say("caught SubcontextFault: %s\n", f.what());
  }
  say("after value %" PRId64 "\n", sc.call<int64_t(int64_t)>("data_byte", 0));
  return 0;
}

}  // namespace prot_client
