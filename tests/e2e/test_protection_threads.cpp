// Protection (docs/protection.md), 5. Rights with many threads: one thread
// reads subcontext memory while others call.
//
// The helper's mode is in clients/protection_client/threads.cpp; helpers in
// support/protection.hpp.
#include "support/protection.hpp"

namespace e2e {
namespace {

class ProtectionThreads : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionThreads, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionThreads, ReadsFromAnotherThreadWhileCallsRun) {
  // Five threads call into two subcontexts (basic: square; protection:
  // pure_add) while a sixth keeps reading their memory, a violation handler
  // jumping it back out; its first 2000 reads are made while every caller
  // is still calling.  The helper counts, per read of a subcontext, whether
  // a call of that subcontext could have been in flight.
  const ProcessResult r = client({"threads", GetParam(), basic_image(), protection_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_contains(r.out, "calls>=20000 1 wrong 0\n", "stdout");
  expect_contains(r.out, "attempts>=2000 1 faults+reads=attempts 1\n", "stdout");
  if (GetParam() == "pkey") {
    // Rights are per thread: every read faults, calls in flight or not.
    expect_contains(r.out, "reads none\n", "stdout");
    expect_contains(r.out, "after join faults 2\n", "stdout");
  } else if (GetParam() == "mprotect") {
    // During a call the memory is open to the whole process (the
    // backend's documented window), so reads that overlap a call may
    // succeed; a read while no call of that subcontext was in flight must
    // fault.
    expect_contains(r.out, "quiet reads 0\n", "stdout");
    expect_contains(r.out, "after join faults 2\n", "stdout");
  } else {  // none: nothing faults
    expect_contains(r.out, "after join faults 0\n", "stdout");
  }
}

}  // namespace
}  // namespace e2e
