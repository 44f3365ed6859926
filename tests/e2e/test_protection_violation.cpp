// Protection (docs/protection.md), 1. Violations, per backend: client reads,
// writes and jumps into subcontext memory and raw-call addresses, and their
// one-line diagnostic; a fault inside a call is an error at the call site;
// a readable map still refuses writes.
//
// Each access runs in e2e_protection_client (clients/protection_client/
// violations.cpp); helpers in support/protection.hpp.
#include "support/protection.hpp"

namespace e2e {
namespace {

class ProtectionViolation : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
  bool trusted() const { return GetParam() == "none"; }
  ProcessResult go(const std::string& mode) { return client({mode, GetParam(), protection_image()}); }
  // The words every diagnostic of an access at the helper's expected address has.
  std::vector<std::string> where(const Expectation& e) const {
    return {"in subcontext " + e.handle + " (" + protection_image() + ")",
            "nearest export \"" + e.nearest + "\" " + e.offset};
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionViolation, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionViolation, FaultInsideACallIsAnErrorAtTheCallSite) {
  // Not a violation (subcontext code faulted on its own): the call fails
  // with SubcontextFault (test_containment.cpp has the rest), the client
  // goes on with the subcontext reset.
  const ProcessResult r = go("inside-fault");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.find("value"), r.out.find("after value") + 6) << "the faulting call returned: " << r.out;
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
  expect_contains(r.out,
                  "caught SubcontextFault: export \"data_byte\" of subcontext 0 (" + protection_image() +
                      ") faulted: SIGSEGV (address not mapped) at 0x",
                  "stdout");
  expect_contains(r.out, "reset to its snapshot", "stdout");
  expect_contains(r.out, "after value 80", "stdout");
}

TEST_P(ProtectionViolation, ClientReadOfData) {
  const ProcessResult r = go("read-data");
  if (trusted()) {  // no protection: the read is made
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(field(r.out, "value"), "80") << r.out;  // 'P', as the server left it
    return;
  }
  const Expectation e = expectation(r.out);
  const std::string l = expect_violation_death(r, {"client read at " + e.address + " (pc 0x", " rw-"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
  EXPECT_EQ(r.out.find("value"), std::string::npos) << "the read was made: " << r.out;
}

TEST_P(ProtectionViolation, ClientReadOfCode) {
  const ProcessResult r = go("read-code");
  if (trusted()) {
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_NE(field(r.out, "value"), "") << r.out;
    return;
  }
  const Expectation e = expectation(r.out);
  EXPECT_EQ(e.nearest, "pure_add");
  EXPECT_EQ(e.offset, "+0x0");
  const std::string l = expect_violation_death(r, {"client read at " + e.address + " (pc 0x", " r-x"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
}

TEST_P(ProtectionViolation, ClientWriteOfData) {
  const ProcessResult r = go("write-data");
  if (trusted()) {  // made, and the subcontext sees it
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.out.substr(r.out.find("wrote")), "wrote; data_byte 87\n");  // 'W'
    return;
  }
  const Expectation e = expectation(r.out);
  const std::string l = expect_violation_death(r, {"client write at " + e.address + " (pc 0x", " rw-"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
  EXPECT_EQ(r.out.find("wrote"), std::string::npos) << r.out;
}

TEST_P(ProtectionViolation, ClientWriteOfCodeIsAViolationUnderEveryBackend) {
  // Code is never writable outside calls, not even under none (the page
  // is r-x): the Matchmaker reports the fault as what it is.
  const ProcessResult r = go("write-code");
  const Expectation e = expectation(r.out);
  EXPECT_EQ(e.nearest, "pure_add");
  const std::string l = expect_violation_death(r, {"client write at " + e.address + " (pc 0x"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
}

TEST_P(ProtectionViolation, JumpIntoCodeThatIsNoExport) {
  // protection_internal_helper(3): no export; it adds to a counter of the image.
  const ProcessResult r = go("jump-code");
  const Expectation e = expectation(r.out);
  if (trusted()) {  // runs, unmediated
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(field(r.out, "result"), "103");
    return;
  }
  if (GetParam() == "mprotect") {  // the fetch itself faults
    const std::string l = expect_violation_death(r, {"client jump to " + e.address + " (pc " + e.address + ")"});
    for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
  } else {  // pkey: fetches are allowed; its first access to the image's data faults
    // (The fault is at some pc inside the function: same nearest export,
    // same side of it, another offset.)
    expect_violation_death(r, {"client jump to 0x", "in subcontext " + e.handle + " (" + protection_image() + ")",
                               "nearest export \"" + e.nearest + "\" " + e.offset.substr(0, 3),
                               "subcontext code ran outside a call"});
  }
  EXPECT_EQ(r.out.find("result"), std::string::npos) << r.out;
}

TEST_P(ProtectionViolation, JumpIntoDataIsAViolationUnderEveryBackend) {
  const ProcessResult r = go("jump-data");
  const Expectation e = expectation(r.out);
  const std::string l = expect_violation_death(r, {"client jump to " + e.address + " (pc " + e.address + ")"});
  for (const auto& w : where(e)) expect_contains(l, w, "the diagnostic");
}

TEST_P(ProtectionViolation, CallOfAnExportsRealAddress) {
  // hits(5) through ExportInfo::address, as a plain function pointer.
  const ProcessResult r = go("call-export");
  const Expectation e = expectation(r.out);
  EXPECT_EQ(e.nearest, "hits");
  EXPECT_EQ(e.offset, "+0x0");
  if (GetParam() == "pkey") {  // runs on the client's rights: its first touch of the image faults
    expect_violation_death(r, {"client jump to 0x", "in subcontext " + e.handle + " (" + protection_image() + ")",
                               "subcontext code ran outside a call"});
    EXPECT_EQ(r.out.find("result"), std::string::npos) << r.out;
    return;
  }
  // mprotect: forwarded through the gate like a raw call; none: runs as is.
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("result 105\nthen 106\n"), std::string::npos) << r.out;
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionViolation, RawCallAddressReadAsData) {
  const ProcessResult r = go("raw-data");
  // Raw-call addresses are inaccessible under every backend.
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  const std::string handle = r.out.substr(r.out.find(raw) + raw.size() + 1, 1);
  expect_violation_death(r, {"client read at " + raw + " (pc 0x",
                             "in subcontext " + handle + " (" + protection_image() + ")", "raw-call addresses"});
  EXPECT_EQ(r.out.find("value"), std::string::npos) << r.out;
}

TEST_P(ProtectionViolation, RawCallAddressWrittenAsData) {
  const ProcessResult r = go("raw-write");
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_violation_death(r,
                         {"client write at " + raw + " (pc 0x", "(" + protection_image() + ")", "raw-call addresses"});
  EXPECT_EQ(r.out.find("wrote"), std::string::npos) << r.out;
}

TEST(ProtectionReadableMap, WriteIsStillAViolation) {
  // mprotect with readable: the client reads, but a write is stopped.
  ProcessResult r = client({"read-data", "mprotect-readable", protection_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(field(r.out, "value"), "80");
  r = client({"write-data", "mprotect-readable", protection_image()});
  const Expectation e = expectation(r.out);
  expect_violation_death(r, {"client write at " + e.address + " (pc 0x", "(" + protection_image() + ")",
                             "nearest export \"" + e.nearest + "\" " + e.offset});
  r = client({"jump-code", "mprotect-readable", protection_image()});
  const Expectation j = expectation(r.out);
  expect_violation_death(r, {"client jump to " + j.address});
}

}  // namespace
}  // namespace e2e
