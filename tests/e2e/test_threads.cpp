// Threads started by subcontext code (docs/threads.md): a real image whose
// exports call pthread_create in the subcontext's own libc -- threads that
// compute and are joined, a pool that outlives the calls, threads blocked or
// spinning when the subcontext is reset or unmapped, a thread's fault and
// exit_group, the limit, and descriptors used by several threads at once;
// per backend (mprotect refuses threads).
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using I64 = int64_t(int64_t);
using I64x2 = int64_t(int64_t, int64_t);

const std::string& thread_image() {
  static const std::string path = build_image(paths::kThreadServer, "thread.img");
  return path;
}

int64_t sum_below(int64_t n) { return n * (n - 1) / 2; }

// Threads of this process (the kernel's count).
int process_threads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

// The kernel's count once it has let ended threads go: a stopped thread is
// done with the subcontext at its exit system call (docs/threads.md), and
// the kernel reaps it a moment later.  Waits up to 2 s for `want`.
int process_threads_settled(int want) {
  int n = process_threads();
  for (int i = 0; i < 200 && n != want; ++i) {
    usleep(10000);
    n = process_threads();
  }
  return n;
}

class ThreadTest : public E2eTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "pkey" && !pkeys_work()) GTEST_SKIP() << "no protection keys here";
    backend_ = subctx::testing::protection_named(GetParam());
  }
  subctx::Subcontext map(subctx::OnFault on_fault = subctx::OnFault::Reset) {
    subctx::MapOptions o;
    o.protection = backend_;
    o.on_fault = on_fault;
    return mm().request_map(thread_image(), o);
  }
  bool threads_allowed() const { return backend_ != subctx::Protection::Mprotect; }
  subctx::Protection backend_ = subctx::Protection::None;
};

TEST_P(ThreadTest, EightThreadsComputeAndAreJoinedAThousandTimes) {
  subctx::Subcontext sc = map();
  auto parallel_sum = sc.function<I64>("parallel_sum");
  if (!threads_allowed()) {
    EXPECT_EQ(parallel_sum(1000), -EPERM);  // pthread_create's error: clone refused
    return;
  }
  const int before = process_threads();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(parallel_sum(10000 + i), sum_below(10000 + i)) << "call " << i;
  EXPECT_EQ(sc.memory().threads, 0u);
  // Joined threads are gone from the process too (the kernel let them go).
  EXPECT_EQ(process_threads_settled(before), before);
}

TEST_P(ThreadTest, APoolStartedInTheFirstCallServesLaterCalls) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  auto pool_sum = sc.function<I64x2>("pool_sum");
  EXPECT_EQ(pool_sum(1000, 4), sum_below(1000));
  EXPECT_EQ(sc.call<int64_t()>("pool_size"), 4);
  EXPECT_EQ(sc.memory().threads, 4u);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(pool_sum(5000 + i, 4), sum_below(5000 + i));
  EXPECT_EQ(sc.call<int64_t()>("pool_size"), 4);  // the same threads
  // Other calls run while the pool waits.
  EXPECT_EQ(sc.call<I64>("plus_one", 41), 42);
}

TEST_P(ThreadTest, ResetStopsBlockedAndSpinningThreads) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  const int before = process_threads();
  EXPECT_EQ(sc.call<I64>("block_threads", 3), 3);
  EXPECT_EQ(sc.call<I64>("spin_threads", 2), 2);
  EXPECT_EQ(sc.call<I64x2>("pool_sum", 100, 2), sum_below(100));
  EXPECT_EQ(sc.memory().threads, 7u);
  EXPECT_EQ(process_threads(), before + 7);
  sc.reset();
  EXPECT_EQ(sc.memory().threads, 0u);
  EXPECT_EQ(process_threads_settled(before), before);
  // The image's state again: no pool; a new one starts.
  EXPECT_EQ(sc.call<int64_t()>("pool_size"), 0);
  EXPECT_EQ(sc.call<I64x2>("pool_sum", 1000, 3), sum_below(1000));
  EXPECT_EQ(sc.call<I64>("parallel_sum", 800), sum_below(800));
}

TEST_P(ThreadTest, ResetAndUnmapStopAThreadThatKeepsStartingThreads) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  const int before = process_threads();
  subctx::Subcontext sc = map();
  for (int round = 0; round < 20; ++round) {
    ASSERT_EQ(sc.call<int64_t()>("start_spawner"), 1);
    usleep(2000);
    sc.reset();
    ASSERT_EQ(sc.memory().threads, 0u) << "round " << round;
    ASSERT_EQ(process_threads_settled(before), before) << "round " << round;
  }
  ASSERT_EQ(sc.call<int64_t()>("start_spawner"), 1);
  usleep(2000);
  mm().unmap(sc);
  EXPECT_EQ(process_threads_settled(before), before);
}

TEST_P(ThreadTest, ResetStopsThreadsThatWaitWithEverySignalBlocked) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  const int before = process_threads();
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<int64_t()>("start_waiters"), 3);  // sigsuspend, sigwait, ppoll: all signals
  usleep(5000);
  sc.reset();
  EXPECT_EQ(sc.memory().threads, 0u);
  EXPECT_EQ(process_threads_settled(before), before);
}

TEST_P(ThreadTest, ClonesThatAreNotThreadsAreRefused) {
  subctx::Subcontext sc = map();
  // Without CLONE_FILES: EPERM (it would have a descriptor table of its
  // own); a fork: EPERM (docs/threads.md); clone3's unknown fields set: E2BIG.
  EXPECT_EQ(sc.call<int64_t()>("odd_clones"), E2BIG * 1000000 + EPERM * 1000 + EPERM);
  EXPECT_EQ(sc.memory().threads, 0u);
}

// The SIGSYS handler runs on the thread's own stack (docs/threads.md): a
// stack too small for it is refused at pthread_create (EINVAL), never a
// thread that would overflow inside the handler and end the client.
TEST_P(ThreadTest, AThreadStackTooSmallForTheHandlerIsRefused) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<I64>("thread_with_stack", 16), -EINVAL);  // PTHREAD_STACK_MIN
  EXPECT_EQ(sc.call<I64>("thread_with_stack", 24), -EINVAL);
  // The least docs/threads.md advises, through the handler's deepest path:
  // 512 bytes of /proc/self/status read after a poll.
  EXPECT_EQ(sc.call<I64>("thread_with_stack", 32), 512);
  EXPECT_EQ(sc.call<I64>("thread_with_stack", 64), 512);
  EXPECT_EQ(sc.call<I64>("thread_with_stack", 1024), 512);
  EXPECT_EQ(sc.call<I64>("parallel_sum", 100), sum_below(100));
}

TEST_P(ThreadTest, UnmapStopsThreads) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  const int before = process_threads();
  {
    subctx::Subcontext sc = map();
    EXPECT_EQ(sc.call<I64>("spin_threads", 2), 2);
    EXPECT_EQ(sc.call<I64>("block_threads", 2), 2);
    EXPECT_EQ(process_threads(), before + 4);
    mm().unmap(sc);
  }
  EXPECT_EQ(process_threads_settled(before), before);
  subctx::Subcontext again = map();  // the same addresses, free again
  EXPECT_EQ(again.call<I64>("parallel_sum", 100), sum_below(100));
}

TEST_P(ThreadTest, AThreadsFaultIsReportedByTheNextCallAndTheClientGoesOn) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map(subctx::OnFault::Reset);
  EXPECT_EQ(sc.call<int64_t()>("fault_in_thread"), 1);  // its own call completes
  expect_fault([&] { sc.call<I64>("plus_one", 1); }, Errc::Fault,
               {"a thread", "thread id", "SIGSEGV", "at 0x10", "export \"plus_one\" was not called",
                "reset to its snapshot"});
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);  // reset: usable again
  EXPECT_EQ(sc.memory().faults, 1u);
}

TEST_P(ThreadTest, AThreadThatOverflowsItsStackFailsAloneOnItsAlternateStack) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<int64_t()>("overflow_in_thread"), 1);
  expect_fault([&] { sc.call<I64>("plus_one", 1); }, Errc::Fault, {"a thread", "SIGSEGV", "deeper"});
  EXPECT_EQ(sc.call<I64>("parallel_sum", 100), sum_below(100));
}

TEST_P(ThreadTest, AThreadsFaultPoisonsUnderThePoisonPolicy) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map(subctx::OnFault::Poison);
  EXPECT_EQ(sc.call<I64>("spin_threads", 1), 1);
  EXPECT_EQ(sc.call<int64_t()>("fault_in_thread"), 1);
  expect_fault([&] { sc.call<I64>("plus_one", 1); }, Errc::Fault, {"SIGSEGV", "poisoned"});
  EXPECT_EQ(sc.memory().threads, 0u);  // the spinning one was stopped with it
  expect_error([&] { sc.call<I64>("plus_one", 1); }, Errc::Poisoned, {"poisoned"});
  sc.reset();
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);
}

TEST_P(ThreadTest, ACallsFaultUnderPoisonStopsTheThreads) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map(subctx::OnFault::Poison);
  const int before = process_threads();
  EXPECT_EQ(sc.call<I64>("spin_threads", 2), 2);
  expect_fault([&] { sc.call<int64_t()>("crash_in_call"); }, Errc::Fault, {"SIGSEGV", "poisoned"});
  EXPECT_EQ(sc.memory().threads, 0u);
  EXPECT_EQ(process_threads_settled(before), before);
}

TEST_P(ThreadTest, ExitGroupInAThreadIsItsFailureNotTheClients) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<int64_t()>("exit_in_thread"), 1);
  const subctx::SubcontextFault f =
      expect_fault([&] { sc.call<I64>("plus_one", 1); }, Errc::Fault, {"a thread", "called exit_group(3)"});
  EXPECT_EQ(f.exit_status(), 3);
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);
}

TEST_P(ThreadTest, AnImportCalledFromAThreadIsItsFailureNotAClientCallback) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  int calls = 0;
  sc.bind<I64>("host_add", [&calls](int64_t x) {
    ++calls;
    return x + 100;
  });
  EXPECT_EQ(sc.call<I64>("add_in_call", 1), 101);  // on the call's thread: the callback runs
  EXPECT_EQ(sc.call<int64_t()>("import_in_thread"), -1);
  EXPECT_EQ(calls, 1) << "the client's callback ran on a subcontext thread";
  expect_fault([&] { sc.call<I64>("plus_one", 1); }, Errc::Fault,
               {"a thread", "import \"host_add\"", "imports run only on the thread of a call"});
  EXPECT_EQ(sc.call<I64>("add_in_call", 2), 102);
}

TEST_P(ThreadTest, AForkedClientGetsAPoisonedSubcontextWithoutItsThreads) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<I64x2>("pool_sum", 1000, 2), sum_below(1000));
  const pid_t child = fork();
  if (child == 0) {
    int code = 0;
    if (sc.memory().threads != 0) code |= 1;
    try {
      sc.call<I64x2>("pool_sum", 1000, 2);  // would wait for a pool that is not here
      code |= 2;
    } catch (const subctx::Error& e) {
      if (std::string(e.what()).find("threads its code started do not exist here") == std::string::npos) code |= 4;
    }
    sc.reset();  // the image's state: no pool; a new one starts here
    if (sc.call<I64x2>("pool_sum", 1000, 2) != sum_below(1000)) code |= 8;
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "bits: 1 threads counted, 2 not poisoned, 4 message, 8 after reset";
  EXPECT_EQ(sc.call<I64x2>("pool_sum", 2000, 2), sum_below(2000));  // the parent's pool goes on
}

TEST_P(ThreadTest, AThreadOverTheMappedBytesQuotaFailsAndTheNextCallSaysSo) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  sc.set_quota({0, 64u << 20});
  EXPECT_EQ(sc.call<I64>("map_in_thread", 1 << 20), 0);  // within it
  sc.call<I64>("map_in_thread", int64_t{256} << 20);     // the thread ends at its mmap
  expect_fault([&] { sc.call<I64>("plus_one", 1); }, Errc::Fault,
               {"a thread", "over the memory quota", "bytes mapped"});
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);
}

// A thread of the subcontext sets its own alternate signal stack and
// affinity (the client's thread in a call may not: docs/containment.md);
// glibc's thread start made its set_robust_list and rseq already.  The
// call's thread may set its threads' affinity.
TEST_P(ThreadTest, AThreadChangesItsOwnKernelState) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<int64_t()>("thread_state_in_thread"), 0);
  // The call's thread sets a new thread's affinity (pthread_create's
  // attribute): a thread of the subcontext, named by its tid.
  EXPECT_EQ(sc.call<int64_t()>("thread_with_affinity"), 0);
}

TEST_P(ThreadTest, ACallDeadlineStopsTheCallNotItsPool) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map(subctx::OnFault::Keep);
  EXPECT_EQ(sc.call<I64x2>("pool_sum", 1000, 2), sum_below(1000));
  EXPECT_EQ(sc.call<I64>("block_threads", 1), 1);  // a thread that never wakes on its own
  sc.set_call_timeout(100);
  // parallel_sum of a huge n runs past the deadline on its 8 threads; the
  // call is stopped, the threads it started finish or are stopped later.
  expect_error([&] { sc.call<I64>("parallel_sum", int64_t{1} << 40); }, Errc::Timeout, {"deadline of 100 ms"});
  sc.set_call_timeout(0);
  sc.reset();  // stops whatever still runs
  EXPECT_EQ(sc.memory().threads, 0u);
  EXPECT_EQ(sc.call<I64x2>("pool_sum", 1000, 2), sum_below(1000));
}

TEST_P(ThreadTest, TheThreadLimitHoldsAndItsNameIsInTheDocs) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  LimitsGuard guard;
  subctx::Limits l = mm().limits();
  l.threads = 3;
  mm().set_limits(l);
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<I64>("threads_at_once", 10), 3);  // the fourth: EAGAIN
  EXPECT_EQ(sc.memory().threads, 3u);
  sc.reset();
  EXPECT_EQ(sc.call<I64>("threads_at_once", 2), 2);  // stopped threads no longer count
  l.threads = 5000;
  expect_error([&] { mm().set_limits(l); }, Errc::InvalidArgument, {"Limits::threads is 5000", "at most 1024"});
}

TEST_P(ThreadTest, ThreadsShareTheDescriptorNamespaceSafely) {
  if (!threads_allowed()) GTEST_SKIP() << "the mprotect backend refuses threads (docs/threads.md)";
  subctx::Subcontext sc = map();
  // A client file open throughout: no write of the subcontext's reaches it.
  char path[] = "/tmp/subctx-threads-XXXXXX";
  const int mine = mkstemp(path);
  ASSERT_GE(mine, 0);
  unlink(path);
  // The client opens and closes files meanwhile (the numbers a stale
  // translation of the subcontext's could reach): none gets a byte.
  std::atomic<bool> done{false};
  std::atomic<int> written{0};
  std::thread opener([&] {
    while (!done) {
      char p2[] = "/tmp/subctx-threads-XXXXXX";
      const int f = mkstemp(p2);
      if (f < 0) continue;
      unlink(p2);
      usleep(50);
      if (lseek(f, 0, SEEK_END) != 0) ++written;
      close(f);
    }
  });
  EXPECT_EQ(sc.call<I64>("pipes_in_threads", 500), 4 * 500);
  EXPECT_EQ(sc.call<I64>("pipes_in_threads", 500), 4 * 500);
  done = true;
  opener.join();
  EXPECT_EQ(written.load(), 0) << "a subcontext write reached a client file";
  EXPECT_EQ(lseek(mine, 0, SEEK_END), 0) << "a subcontext write reached the client's file";
  EXPECT_EQ(sc.memory().open_fds, 0u);
  close(mine);
  // The descriptors kept while threads ran are closed by the reset.
  const subctx::ResetInfo r = sc.reset();
  (void)r;
  EXPECT_EQ(sc.call<I64>("pipes_in_threads", 10), 40);
}

TEST(ThreadLimitEnvironment, SubctxMaxThreadsZeroRefusesThreads) {
  // A client process of its own reads the variable at start (the tool is one).
  SpawnOptions o;
  o.env = {"SUBCTX_MAX_THREADS=0", "SUBCTX_PROTECTION=none"};
  const ProcessResult r = run({paths::kSubctxTool, "call", thread_image(), "parallel_sum", "100"}, o, Millis(30000));
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find(std::to_string(-EPERM)), std::string::npos) << r.describe();
  o.env = {"SUBCTX_MAX_THREADS=2000"};
  const ProcessResult bad = run({paths::kSubctxTool, "call", thread_image(), "plus_one", "1"}, o, Millis(30000));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.err.find("SUBCTX_MAX_THREADS"), std::string::npos) << bad.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, ThreadTest, ::testing::Values("none", "pkey", "mprotect"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace e2e
