// Protection (docs/protection.md), 3. The client's violation handler: it
// records the violation and jumps out, and the client goes on; a handler
// that returns ends the process with SIGSEGV.
//
// The helper's modes are in clients/protection_client/handler.cpp;
// helpers in support/protection.hpp.
#include <csignal>

#include "support/protection.hpp"

namespace e2e {
namespace {

class ProtectionHandler : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionHandler, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionHandler, RecordsTheViolationJumpsOutAndTheClientGoesOn) {
  const ProcessResult r = client({"handler", GetParam(), protection_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(violation_lines(r.err).empty()) << "a handler is installed: no diagnostic\n" << r.err;
  const bool trusted = GetParam() == "none";
  // One record: "WHAT: kind K signal 11 subcontext H address-match 1 pc-set 1
  // path P region R export E offset O", checked against the expectation.
  auto check = [&](const std::string& what, int kind, const std::string& region_word, bool with_export) {
    SCOPED_TRACE(what);
    const Expectation e = expectation(r.out, what + " ");
    const std::string prefix = what + ": kind " + std::to_string(kind) + " signal 11 subcontext " + e.handle +
                               " address-match 1 pc-set 1 path " + protection_image() + " region ";
    const size_t at = r.out.find("\n" + what + ": ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string line = r.out.substr(at + 1, r.out.find('\n', at + 1) - at - 1);
    EXPECT_EQ(line.rfind(prefix, 0), 0u) << line;
    expect_contains(line, region_word, what);
    if (with_export) expect_contains(line, " export " + e.nearest + " offset " + e.offset, what);
  };
  if (trusted) {
    expect_contains(r.out, "read: no violation, value 80\n", "stdout");
    expect_contains(r.out, "write: no violation\n", "stdout");
    expect_contains(r.out, "read-code: no violation, value ", "stdout");
    check("raw-read", SBC_VIOLATION_READ, "raw-call addresses", false);
    expect_contains(r.out, "violations 1 handle 0\n", "stdout");
  } else {
    check("read", SBC_VIOLATION_READ, " rw-", true);
    check("write", SBC_VIOLATION_WRITE, " rw-", true);
    check("read-code", SBC_VIOLATION_READ, " r-x", true);
    check("raw-read", SBC_VIOLATION_READ, "raw-call addresses", false);
    check("jump-data", SBC_VIOLATION_EXEC, " rw-", true);
    expect_contains(r.out, "violations 5 handle 0\n", "stdout");
  }
  // Afterwards: calls work, and the write was not made (or, under none,
  // wrote 'P' over 'P').
  EXPECT_EQ(r.out.substr(r.out.rfind("after:")), "after: hits 101 pure_add 5 data_byte 80\n") << r.out;
}

TEST_P(ProtectionHandler, AHandlerThatReturnsEndsTheProcessWithSigsegv) {
  const ProcessResult r = client({"handler-returns", GetParam(), protection_image()});
  if (GetParam() == "none") {  // nothing to report
    ASSERT_TRUE(r.ok()) << r.describe();
    return;
  }
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_EQ(r.err, "violation handler ran and returns\n");  // its own line, no diagnostic
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace e2e
