// Protection (docs/protection.md), 2. Raw calls: plain function pointers
// (results, arguments, output order, threads), a raw pointer a policy denies
// after the lookup or of an unmapped subcontext, and sbc_lookup's and
// Subcontext::raw's refusals.
//
// The helper's modes are in clients/protection_client/raw_calls.cpp;
// helpers in support/protection.hpp.
#include "support/protection.hpp"

namespace e2e {
namespace {

using subctx::Errc;

class ProtectionRawCall : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionRawCall, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionRawCall, ResultsArgumentsOutputOrderAndThreads) {
  const ProcessResult r = client({"raw", GetParam(), basic_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "raw is not the export address 1\n"
            "square 49 144\n"
            "bump 101 111\n"
            "hyp 25.000 2.500\n"
            "before say\n"              // the client's, flushed before the call
            "server says: raw hello\n"  // the subcontext's, by the time the call returned
            "after say 23\n"
            "sbc_lookup 0 same 1 square 81\n"
            "threads wrong 0\n"
            "bump after 111\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(ProtectionRawCall, DeniedByAPolicySetAfterTheLookupIsAViolation) {
  const ProcessResult r = client({"raw-denied", GetParam(), policy_image()});
  EXPECT_EQ(r.out.substr(0, 8), "first 1\n") << r.describe();
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_violation_death(r, {"client denied raw call to " + raw, "in subcontext 0 (" + policy_image() + ")",
                             "nearest export \"open_door\" +0x0", "deny call export=open_*"});
  EXPECT_EQ(r.out.find("second"), std::string::npos) << r.out;
}

TEST_P(ProtectionRawCall, PointerOfAnUnmappedSubcontextIsAViolation) {
  const ProcessResult r = client({"raw-stale", GetParam(), basic_image()});
  EXPECT_EQ(r.out.substr(0, 8), "first 9\n") << r.describe();
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_violation_death(r, {"client raw call of an unmapped subcontext to " + raw + " (pc " + raw + ")",
                             "unmapped subcontext"});
  EXPECT_EQ(r.out.find("second"), std::string::npos) << r.out;
}

TEST_F(ProtectionApi, LookupRefusesDeniedMissingAndMistypedExports) {
  subctx::Subcontext sc = mm().request_map(policy_image());
  void* fn = nullptr;
  EXPECT_EQ(sbc_lookup(sc.handle(), "admin_reset", &fn), -SBC_E_POLICY);  // restricted: needs a grant
  expect_contains(sbc_last_error(), "restricted", "sbc_last_error()");
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(sbc_lookup(sc.handle(), "no_such_export", &fn), -SBC_E_NO_EXPORT);
  expect_contains(sbc_last_error(), "no_such_export", "sbc_last_error()");
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(sbc_lookup(sc.handle(), nullptr, &fn), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_lookup(sc.handle(), "open_door", nullptr), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_lookup(sc.handle() + 1000, "open_door", &fn), -SBC_E_NO_SUBCONTEXT);
  EXPECT_EQ(sbc_lookup(sc.handle(), "open_door", &fn), 0) << sbc_last_error();
  EXPECT_NE(fn, nullptr);
  // The raw-call address is neither the export nor anything in the image.
  EXPECT_NE(reinterpret_cast<uint64_t>(fn), export_address(sc, "open_door"));
  EXPECT_FALSE(inside_image(policy_image(), reinterpret_cast<uint64_t>(fn)));
  EXPECT_EQ(maps_line_at(reinterpret_cast<uint64_t>(fn)).find("---p") != std::string::npos, true)
      << maps_line_at(reinterpret_cast<uint64_t>(fn));

  expect_error([&] { sc.raw<int64_t()>("admin_reset"); }, Errc::Policy, {"admin_reset"});
  expect_error([&] { sc.raw<int32_t(int64_t)>("open_door"); }, Errc::Signature, {"i64(i64)", "i32(i64)"});
  expect_error([&] { sc.raw<int64_t(int64_t)>("nope"); }, Errc::NoExport, {"nope"});
  expect_error([&] { subctx::Subcontext().raw<int64_t(int64_t)>("open_door"); }, Errc::NoSubcontext, {});

  mm().set_policy("allow map\ndeny call export=open_*\n");
  EXPECT_EQ(sbc_lookup(sc.handle(), "open_door", &fn), -SBC_E_POLICY);
  expect_contains(sbc_last_error(), "deny call export=open_*", "sbc_last_error()");
  expect_error([&] { sc.raw<int64_t(int64_t)>("open_door"); }, Errc::Policy, {"deny call export=open_*"});
}

}  // namespace
}  // namespace e2e
