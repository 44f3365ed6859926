// Protection (docs/protection.md), 4. Chaining to the client's own SIGSEGV /
// SIGBUS handlers: installed before or after the Matchmaker, SA_RESETHAND,
// the default action.
//
// The helper's modes are in clients/protection_client/chaining.cpp;
// helpers in support/protection.hpp.
#include <csignal>

#include "support/protection.hpp"

namespace e2e {
namespace {

class ProtectionChaining : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
  void expect_chained(const ProcessResult& r) {
    const std::string common =
        "installed 1 sigaction says mine: SIGSEGV 1 SIGBUS 1\n"
        "caught SIGSEGV at (nil)\n"
        "caught SIGBUS at offset 0\n"
        "caught SIGSEGV at (nil)\n"
        "client handler runs 3\n"
        "square 25\n";
    EXPECT_EQ(r.out.substr(0, common.size()), common) << r.describe();
    EXPECT_EQ(r.out.find("the client's handler got"), std::string::npos) << "a violation reached the client: " << r.out;
    if (GetParam() == "none") {  // the read of square's code is made
      EXPECT_TRUE(r.ok()) << r.describe();
      expect_contains(r.out, "value ", "stdout");
      return;
    }
    const Expectation e = expectation(r.out);
    expect_violation_death(r, {"client read at " + e.address, "nearest export \"square\" +0x0"});
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionChaining, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionChaining, HandlersInstalledBeforeTheMatchmaker) {
  expect_chained(client({"chain-early", GetParam(), basic_image()}, {"E2E_PROT_EARLY=1"}));
}

TEST_P(ProtectionChaining, HandlersInstalledAfterTheMatchmaker) {
  expect_chained(client({"chain-late", GetParam(), basic_image()}));
}

TEST_P(ProtectionChaining, ResetHandRunsTheHandlerOnceThenTheDefault) {
  const ProcessResult r = client({"resethand", GetParam(), basic_image()});
  EXPECT_EQ(r.out,
            "mine 1\n"
            "caught SIGSEGV at (nil)\n"
            "default after the first 1\n"
            "square 36\n")
      << r.describe();
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_EQ(r.err.find("subctx:"), std::string::npos) << "a client fault is not the Matchmaker's: " << r.err;
}

TEST_P(ProtectionChaining, DefaultActionIsAPlainSigsegv) {
  const ProcessResult r = client({"dfl", GetParam(), basic_image()});
  EXPECT_EQ(r.out, "default 1 square 16\n") << r.describe();
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_EQ(r.err, "") << "a client fault is not the Matchmaker's";
}

}  // namespace
}  // namespace e2e
