// Protection (docs/protection.md), 8. During a long call: client signal
// handlers, memory the call frees.
//
// Regressions.  The helper's long calls (rendezvous, release_and_wait)
// return only when the client side says so, and give up after 20 s; the
// helper runs under a 40 s timeout, so a hang is a failure, never a stuck
// test.  Only the protected backends: they are what the fixes were about.
//
// The helper's modes are in clients/protection_client/during_call.cpp and
// freed_memory.cpp; helpers in support/protection.hpp.
#include <csignal>

#include "support/protection.hpp"

namespace e2e {
namespace {

class ProtectionDuringCall : public E2eTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
  ProcessResult go(const std::string& mode) {
    ProcessResult r = client({mode, GetParam(), protection_image()});
    EXPECT_FALSE(r.timed_out) << "the helper hung: " << r.describe();
    return r;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionDuringCall, ::testing::Values("mprotect", "pkey"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionDuringCall, SignalHandlerCallingTheSubcontextItInterruptedGetsAnError) {
  // SIGALRM while the main thread is inside rendezvous; its handler calls
  // pure_add of the same subcontext through call<> and a Function handle.
  // It used to wait forever for the call it interrupted.
  const ProcessResult r = go("reenter-call");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.substr(r.out.find('\n') + 1),
            "handler runs 1\n"
            "call: tried 1 threw 1 InvalidArgument 1 \"signal handler\" 1 \"would wait for itself\" 1\n"
            "function: tried 1 threw 1 InvalidArgument 1 \"signal handler\" 1 \"would wait for itself\" 1\n"
            "result 4242\n"  // the interrupted call, completed
            "after: call 5 function 50 raw 9\n")
      << r.describe();
  expect_contains(r.err, protection_image(), "the error message");
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionDuringCall, SignalHandlerRawCallOfTheSubcontextItInterruptedIsAViolation) {
  // The same through a raw pointer: no error can reach a plain function
  // pointer, so it is a refused raw call (it used to hang too).
  const ProcessResult r = go("reenter-raw");
  const std::string raw = field(r.out, "raw");
  ASSERT_NE(raw, "") << r.describe();
  expect_contains(r.out, "handler makes the raw call\n", "stdout");
  expect_violation_death(r, {"client denied raw call to " + raw, "in subcontext 0 (" + protection_image() + ")",
                             "nearest export \"pure_add\" +0x0", "signal handler", "would wait for itself"});
  EXPECT_EQ(r.out.find("result"), std::string::npos) << r.out;
}

TEST_P(ProtectionDuringCall, SignalHandlerRawCallRefusalReachesTheViolationHandler) {
  // A violation handler jumps back into the signal handler; the
  // interrupted call then completes.
  const ProcessResult r = go("reenter-raw-handler");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
  expect_contains(r.out, "handler makes the raw call\nhandler runs 1\nraw returned 0\n", "stdout");
  expect_contains(r.out,
                  "raw: kind " + std::to_string(SBC_VIOLATION_DENIED_CALL) +
                      " signal 11 subcontext 0 address-match 1 pc-set 1 path " + protection_image() + " region ",
                  "stdout");
  expect_contains(r.out, " export pure_add offset +0x0\n", "stdout");
  const size_t detail = r.out.find("raw detail: ");
  ASSERT_NE(detail, std::string::npos) << r.out;
  const std::string d = r.out.substr(detail, r.out.find('\n', detail) - detail);
  expect_contains(d, "signal handler", "the violation's detail");
  expect_contains(d, "would wait for itself", "the violation's detail");
  EXPECT_EQ(r.out.substr(r.out.find("result")), "result 4242\nafter: call 5 function 50 raw 9\n") << r.out;
}

TEST_P(ProtectionDuringCall, SigsegvSentToAThreadInsideACallRunsTheClientsHandlerInTheClientsContext) {
  // pthread_kill(SIGSEGV), not a fault: the client's SA_SIGINFO handler
  // runs with the client's thread pointer and stack and the call goes on.
  // It used to run on the subcontext's TLS (mprotect) or kill the process
  // without a word (pkey).
  const ProcessResult r = go("sent-segv");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "handler runs 1 client thread pointer 1 client stack 1 si_signo 1 SI_TKILL 1\n"
            "result 4242\n"
            "after 5\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(ProtectionDuringCall, SiginfoHandlerReadsItsSiginfoAndUcontext) {
  // SIGUSR1 then SIGALRM from another thread; the handler reads si_signo,
  // uc_sigmask (SIGUSR2 was blocked at the interruption) and the FPU state
  // through uc_mcontext.fpregs (MXCSR: the default control bits).  It used
  // to die of a violation on the gate stack (pkey).
  const ProcessResult r = go("signal-context");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "SIGUSR1: runs 1 client thread pointer 1 client stack 1 si_signo 1 SI_TKILL 1 fpregs 1 mxcsr-default 1 "
            "uc_sigmask 1\n"
            "SIGALRM: runs 1 client thread pointer 1 client stack 1 si_signo 1 SI_TKILL 1 fpregs 1 mxcsr-default 1 "
            "uc_sigmask 1\n"
            "result 4242\n"
            "after 5\n")
      << r.err;
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionDuringCall, ClientPageMappedInARangeTheCallFreedStaysTheClients) {
  // release_and_wait frees (munmaps) a 4 MiB block of the image; during the
  // call another client thread maps a page of its own inside the freed
  // range.  mprotect's repair at close used to take that page for the
  // subcontext's and close it with it.
  const ProcessResult r = go("freed-page");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "result 4242 client page mapped during the call: yes\n"
            "after the call: rw-p key none\n"
            "intact 1\n"
            "client write made 1\n"  // no violation
            "calls: pure_add 5 hits 101 data_byte 80\n"
            "after more calls: rw-p key none\n"
            "intact 1\n"
            "client write made 1\n"
            "after unmap: rw-p key none\n"  // unmap leaves it alone
            "intact 1\n"
            "violations 0\n");
  EXPECT_TRUE(violation_lines(r.err).empty()) << r.err;
}

TEST_P(ProtectionDuringCall, ExitWithTheSubcontextMappedAfterACallThatFreedMemory) {
  // The Matchmaker unmaps it at exit, after the repair of the call above:
  // a clean exit, nothing on stderr.
  const ProcessResult r = go("freed-exit");
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "result 4242 client page mapped during the call: yes\n"
            "pure_add 5; exiting with the subcontext mapped\n");
  EXPECT_EQ(r.err, "");
}

TEST_P(ProtectionDuringCall, ClientAccessToTheRestOfARangeTheCallFreedIsAnOrdinarySegfault) {
  // After the call, the freed range (away from the client's page) is
  // nobody's: reading it is a plain SIGSEGV of the client, not a
  // subcontext violation.
  const std::string common =
      "result 4242 client page mapped during the call: yes\n"
      "freed range at the target: none\n";
  const ProcessResult r = go("freed-rest");
  EXPECT_EQ(r.out, common) << r.describe();
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  EXPECT_TRUE(violation_lines(r.err).empty()) << "reported as a violation:\n" << r.err;
  EXPECT_EQ(r.err, "");

  // With a SIGSEGV handler of its own, the client gets the fault.
  const ProcessResult h = go("freed-rest-handler");
  ASSERT_TRUE(h.ok()) << h.describe();
  EXPECT_EQ(h.out, common +
                       "the client's handler got SIGSEGV address-match 1\n"
                       "after: pure_add 5 page rw-p\n")
      << h.describe();
  EXPECT_TRUE(violation_lines(h.err).empty()) << h.err;
}

}  // namespace
}  // namespace e2e
