// Containment (docs/containment.md): a fault, exit() or runaway call inside
// a subcontext ends that call only -- SubcontextFault, Timeout or
// QuotaExceeded at the call site, the client's frames unwound -- and the
// subcontext is reset to its snapshot (or poisoned, or kept); reset() on
// demand; memory accounting and quotas; the system calls of subcontext
// code (Syscall User Dispatch).
//
// This process is the client: it survives every fault below.
#include <fcntl.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"
#include "temp_dir.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using subctx::OnFault;
using subctx::Protection;

const std::string& fault_image() {
  static const std::string path = build_image(paths::kFaultServer, "fault.img");
  return path;
}

subctx::MapOptions with(Protection p, std::optional<OnFault> on_fault = std::nullopt) {
  subctx::MapOptions o;
  o.protection = p;
  o.on_fault = on_fault;
  return o;
}

// Counts destructor runs: the client's frames between the call and the
// catch unwind.

class ContainmentTest : public E2eTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    const std::string b = GetParam();
    if (b == "pkey" && !pkeys_work()) GTEST_SKIP() << "no protection keys here";
    backend_ = subctx::testing::protection_named(b);
  }
  subctx::Subcontext map(std::optional<OnFault> on_fault = std::nullopt) {
    return mm().request_map(fault_image(), with(backend_, on_fault));
  }
  Protection backend_ = Protection::None;
};

struct FaultCase {
  const char* export_name;
  int64_t arg;
  int signal;  // 0: exit
  const char* words;
};

TEST_P(ContainmentTest, EveryFaultKindEndsTheCallAndTheSubcontextIsReset) {
  const FaultCase cases[] = {
      {"crash_null", 0, SIGSEGV, "SIGSEGV (address not mapped) at 0x0"},
      {"crash_at", 0x10000, SIGSEGV, "SIGSEGV"},
      {"divide", 0, SIGFPE, "integer division by zero"},
      {"illegal", 0, SIGILL, "SIGILL"},
      {"breakpoint", 0, SIGTRAP, "SIGTRAP"},
      {"do_abort", 0, SIGABRT, "SIGABRT (abort())"},
      {"throw_out", 0, SIGABRT, "SIGABRT"},
      {"recurse", 0, SIGSEGV, "overflowed its stack"},
      {"do_exit", 3, 0, "called exit(3)"},
      {"do_quick_exit", 4, 0, "called exit(4)"},
  };
  subctx::Subcontext sc = map();
  for (const FaultCase& c : cases) {
    SCOPED_TRACE(c.export_name);
    EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 5), 105);
    subctx::SubcontextFault f = expect_fault(
        [&] {
          if (std::string(c.export_name) == "divide") sc.call<int64_t(int64_t, int64_t)>("divide", 1, 0);
          else if (c.arg || std::string(c.export_name) == "crash_null" || std::string(c.export_name) == "recurse")
            sc.call<int64_t(int64_t)>(c.export_name, c.arg);
          else sc.call<int64_t()>(c.export_name);
        },
        Errc::Fault, {c.words, std::string("export \"") + c.export_name + "\"", "reset to its snapshot"});
    EXPECT_EQ(f.signal(), c.signal);
    EXPECT_EQ(f.export_name(), c.export_name);
    EXPECT_TRUE(f.reset_done());
    if (!c.signal) {
      EXPECT_EQ(f.exit_status(), c.arg);
    }
    ASSERT_FALSE(f.frames().empty());
    if (c.signal == SIGSEGV && std::string(c.export_name) == "crash_null") {
      EXPECT_NE(f.frames().front().symbol.find("crash_null"), std::string::npos) << f.frames().front().symbol;
    }
    // Reset: the counter is as at the snapshot again.
    EXPECT_EQ(sc.call<int64_t()>("counter"), 100);
  }
  EXPECT_EQ(sc.memory().faults, std::size(cases));
}

TEST_P(ContainmentTest, CApiReportsTheFault) {
  subctx::Subcontext sc = map();
  uint64_t arg = 0, ret = 0;
  EXPECT_EQ(sbc_request_call(sc.handle(), "crash_null", &arg, 1, &ret), -SBC_E_FAULT);
  EXPECT_NE(std::string(sbc_last_error()).find("SIGSEGV"), std::string::npos) << sbc_last_error();
  EXPECT_EQ(sbc_request_call(sc.handle(), "counter", nullptr, 0, &ret), 0);
  EXPECT_EQ(ret, 100u);
}

TEST_P(ContainmentTest, ResetRestoresCounterHeapSqliteAndMemory) {
  subctx::Subcontext sc = map();
  const uint64_t dirty_after_map = sc.memory().dirty_pages;
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("heap_push", 9), 4);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("sql_insert", 500), 1500);
  EXPECT_EQ(sc.call<int64_t()>("sql_changed"), 10);
  EXPECT_GT(sc.call<int64_t(int64_t)>("map_bytes", 1 << 20), 0);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("dirty", 100), 100);
  subctx::MemoryInfo before = sc.memory();
  EXPECT_GE(before.dirty_pages, 100u);
  EXPECT_EQ(before.mapped_bytes, uint64_t{1} << 20);
  const subctx::ResetInfo r = sc.reset();
  EXPECT_GE(r.pages_restored, 100u);
  EXPECT_EQ(r.mappings_released, 1u);
  EXPECT_EQ(r.bytes_released, uint64_t{1} << 20);
  subctx::MemoryInfo after = sc.memory();
  EXPECT_LE(after.dirty_pages, dirty_after_map);
  EXPECT_EQ(after.mapped_bytes, 0u);
  EXPECT_EQ(after.peak_mapped_bytes, uint64_t{1} << 20);
  EXPECT_EQ(sc.call<int64_t()>("counter"), 100);
  EXPECT_EQ(sc.call<int64_t()>("heap_size"), 3);
  EXPECT_STREQ(sc.call<const char*()>("heap_name"), "table");
  EXPECT_EQ(sc.call<int64_t()>("sql_count"), 1000);
  EXPECT_EQ(sc.call<int64_t()>("sql_changed"), 0);
  EXPECT_EQ(sbc_reset(sc.handle()), 0);
  EXPECT_EQ(sc.memory().resets, 2u);
}

bool is_mapped(uint64_t address) {
  return msync(reinterpret_cast<void*>(address & ~uint64_t{4095}), 4096, MS_ASYNC) == 0;
}

// A reset scans the gaps of up to 2 MiB between the segments along with
// them (reset.cpp): what it finds there is the client's and stays.
TEST_P(ContainmentTest, ResetLeavesTheClientsPageInAGapBetweenSegments) {
  subctx::Subcontext sc = map();
  std::vector<Range> ranges;
  for (const Range& r : read_layout(fault_image()).segments()) {
    if (!ranges.empty() && ranges.back().hi == r.lo) ranges.back().hi = r.hi;
    else ranges.push_back(r);
  }
  volatile uint8_t* page = nullptr;
  for (size_t i = 1; i < ranges.size() && !page; ++i)
    for (uint64_t at = ranges[i - 1].hi; at < ranges[i].lo && ranges[i].lo - ranges[i - 1].hi <= (2u << 20);
         at += 4096) {
      void* want = reinterpret_cast<void*>(at);
      void* p = mmap(want, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p == want) {
        page = static_cast<volatile uint8_t*>(p);
        break;
      }
      if (p != MAP_FAILED) munmap(p, 4096);
    }
  if (!page) GTEST_SKIP() << "no free page in a gap of up to 2 MiB between the segments (reserved under mprotect)";
  page[0] = 42;  // an anonymous page, as a written page of the subcontext is
  EXPECT_EQ(sc.call<int64_t(int64_t)>("dirty", 1), 1);
  EXPECT_GE(sc.reset().pages_restored, 1u);
  EXPECT_EQ(page[0], 42) << "the reset dropped the client's page";
  munmap(const_cast<uint8_t*>(page), 4096);
}

TEST_P(ContainmentTest, ResetAndUnmapReleaseWhatCallsMapped) {
  subctx::Subcontext sc = map();
  const auto a = static_cast<uint64_t>(sc.call<int64_t(int64_t)>("map_bytes", 3 << 20));
  ASSERT_TRUE(is_mapped(a));
  sc.reset();
  EXPECT_FALSE(is_mapped(a)) << "the subcontext's mapping survived the reset";
  const auto b = static_cast<uint64_t>(sc.call<int64_t(int64_t)>("map_bytes", 1 << 20));
  ASSERT_TRUE(is_mapped(b));
  mm().unmap(sc);
  EXPECT_FALSE(is_mapped(b)) << "the subcontext's mapping survived the unmap";
}

// This process's open descriptors.
int open_fd_count() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) n += fcntl(fd, F_GETFD) != -1;
  return n;
}
bool fd_open(int64_t fd) { return fcntl(static_cast<int>(fd), F_GETFD) != -1; }
// This process's descriptors that name /dev/null (open_null's).
int dev_null_count() {
  int n = 0;
  char buf[64];
  for (int fd = 0; fd < 4096; ++fd) {
    const ssize_t len = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf);
    n += len == 9 && std::memcmp(buf, "/dev/null", 9) == 0;
  }
  return n;
}

// Descriptors opened by subcontext code belong to the subcontext, under
// its own numbers (docs/identity.md): the fault server restores none, so
// they start at 3 whatever this process holds.  Each is one real
// descriptor of this process: reset, a fault's automatic reset and unmap
// close those it left open, and no other (the client's, even one under
// the same number as the subcontext's, or one the subcontext dup2'ed onto
// that number in its own table).
TEST_P(ContainmentTest, ResetFaultAndUnmapCloseTheDescriptorsCallsOpened) {
  const int before_map = open_fd_count();
  const int null_before = dev_null_count();
  subctx::Subcontext sc = map();
  sc.memory();                         // opens this process's pagemap, kept for later scans
  const int mapped = open_fd_count();  // with the image's own descriptor
  auto close_fd = [&](int64_t fd) { return sc.call<int64_t(int64_t)>("close_fd", fd); };
  const int64_t last = sc.call<int64_t(int64_t)>("open_null", 5);
  EXPECT_EQ(last, 7) << "the subcontext's numbers 3..7" << (last < 0 ? strerror(static_cast<int>(-last)) : "");
  EXPECT_EQ(open_fd_count(), mapped + 5);
  EXPECT_EQ(sc.memory().open_fds, 5u);
  subctx::ResetInfo r = sc.reset();
  EXPECT_EQ(r.fds_closed, 5u);
  EXPECT_EQ(open_fd_count(), mapped);
  EXPECT_EQ(close_fd(last), -EBADF) << "the subcontext still holds its number after the reset";

  // Closed inside: forgotten, and the number is free again in the
  // subcontext; the client's own descriptors are not the subcontext's.
  const int64_t fd = sc.call<int64_t(int64_t)>("open_null", 1);
  EXPECT_EQ(fd, 3);
  EXPECT_EQ(close_fd(fd), 0);
  EXPECT_EQ(sc.memory().open_fds, 0u);
  EXPECT_EQ(open_fd_count(), mapped);
  const int mine = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(mine, 0);
  EXPECT_EQ(close_fd(mine), -EBADF) << "subcontext code closed the client's descriptor " << mine;
  EXPECT_TRUE(fd_open(mine));
  EXPECT_EQ(sc.reset().fds_closed, 0u);
  EXPECT_TRUE(fd_open(mine)) << "reset closed a descriptor of the client";

  // A pipe is two; dup2 onto a number the subcontext does not hold (the
  // client's descriptor's number) makes that number in the subcontext's
  // table and leaves the client's descriptor as it was.
  const int64_t pipe = sc.call<int64_t()>("make_pipe");
  EXPECT_EQ(pipe, 3 * 65536 + 4);
  EXPECT_EQ(sc.memory().open_fds, 2u);
  EXPECT_EQ(open_fd_count(), mapped + 1 + 2);
  EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("dup_onto", pipe / 65536, mine), mine);
  EXPECT_EQ(sc.memory().open_fds, 3u);
  EXPECT_EQ(open_fd_count(), mapped + 1 + 3);
  struct stat st {};
  ASSERT_EQ(fstat(mine, &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "dup2 inside replaced the client's /dev/null with the pipe";
  EXPECT_EQ(sc.reset().fds_closed, 3u);
  EXPECT_EQ(open_fd_count(), mapped + 1);
  EXPECT_EQ(close_fd(pipe / 65536), -EBADF);
  EXPECT_EQ(close_fd(pipe % 65536), -EBADF);
  ASSERT_EQ(fstat(mine, &st), 0) << "reset closed the client's descriptor under the subcontext's number";
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  close(mine);

  // Descriptors received with SCM_RIGHTS (recvmsg, recvmmsg) are the
  // subcontext's too, under its lowest free numbers; the socketpair and
  // the originals it closed are not.
  for (int64_t many : {0, 1}) {
    const int64_t got = sc.call<int64_t(int64_t, int64_t)>("receive_fds", 3, many);
    ASSERT_GE(got, 0) << strerror(static_cast<int>(-got));
    EXPECT_LT(got, 16) << "not one of the subcontext's own numbers";
    EXPECT_EQ(open_fd_count(), mapped + 3) << (many ? "recvmmsg" : "recvmsg");
    EXPECT_EQ(sc.memory().open_fds, 3u) << (many ? "recvmmsg" : "recvmsg");
    EXPECT_EQ(sc.reset().fds_closed, 3u) << (many ? "recvmmsg" : "recvmsg");
    EXPECT_EQ(close_fd(got), -EBADF);
    EXPECT_EQ(open_fd_count(), mapped);
  }

  // A fault: the automatic reset closes what the call opened.
  expect_fault([&] { sc.call<int64_t(int64_t)>("open_then_crash", 3); }, Errc::Fault, {"SIGSEGV"});
  EXPECT_EQ(open_fd_count(), mapped);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_null", 1), 3) << "the fault's reset freed the subcontext's numbers";
  EXPECT_EQ(sc.reset().fds_closed, 1u);

  // Unmap: the same.
  ASSERT_GE(sc.call<int64_t(int64_t)>("open_null", 4), 0);
  EXPECT_EQ(open_fd_count(), mapped + 4);
  EXPECT_EQ(dev_null_count(), null_before + 4);
  mm().unmap(sc);
  // What calls opened is closed (so is what the map opened for the
  // subcontext: its working directory); the image's descriptor goes with
  // the last handle.
  EXPECT_EQ(dev_null_count(), null_before);
  EXPECT_LE(open_fd_count(), mapped);
  EXPECT_GE(open_fd_count(), before_map);
}

TEST_P(ContainmentTest, ResetMapsBackWhatACallUnmapped) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<int64_t(int64_t)>("big_byte", 12345), 'B');
  EXPECT_EQ(sc.call<int64_t()>("free_big"), 0);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("big_byte", 0), -1);
  const subctx::ResetInfo r = sc.reset();
  EXPECT_TRUE(r.layout_restored);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("big_byte", 12345), 'B');
  EXPECT_EQ(sc.call<int64_t(int64_t)>("big_byte", (4 << 20) - 1), 'B');
}

TEST_P(ContainmentTest, PoisonAndKeepPolicies) {
  subctx::Subcontext sc = map(OnFault::Poison);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  expect_fault([&] { sc.call<int64_t(int64_t)>("crash_null", 0); }, Errc::Fault, {"poisoned until reset"});
  expect_error([&] { sc.call<int64_t()>("counter"); }, Errc::Poisoned, {"poisoned", "crash_null", "reset()"});
  uint64_t ret = 0;
  EXPECT_EQ(sbc_request_call(sc.handle(), "counter", nullptr, 0, &ret), -SBC_E_POISONED);
  sc.reset();
  EXPECT_EQ(sc.call<int64_t()>("counter"), 100);

  sc.set_on_fault(OnFault::Keep);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  expect_fault([&] { sc.call<int64_t(int64_t)>("crash_null", 0); }, Errc::Fault, {"kept as the fault left it"});
  EXPECT_EQ(sc.call<int64_t()>("counter"), 101);
}

TEST_P(ContainmentTest, DeadlineStopsARunawayCall) {
  subctx::Subcontext sc = map();
  sc.set_call_timeout(100);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("spin", 5), 5);  // within its deadline
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  const auto start = std::chrono::steady_clock::now();
  subctx::SubcontextFault f =
      expect_fault([&] { sc.call<int64_t(int64_t)>("spin", -1); }, Errc::Timeout, {"deadline of 100 ms", "\"spin\""});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(f.reset_done());
  EXPECT_EQ(sc.call<int64_t()>("counter"), 100);
  // Blocked in a system call (nanosleep) when the deadline comes.
  expect_fault([&] { sc.call<int64_t(int64_t)>("sleep_ms", 20000); }, Errc::Timeout, {"deadline"});
  uint64_t arg = static_cast<uint64_t>(-1), ret = 0;
  EXPECT_EQ(sbc_request_call(sc.handle(), "spin", &arg, 1, &ret), -SBC_E_TIMEOUT);
  sc.set_call_timeout(0);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("sleep_ms", 30), 30);
}

TEST_P(ContainmentTest, QuotasFailTheCall) {
  subctx::Subcontext sc = map();
  sc.set_quota({0, 2 << 20});
  EXPECT_GT(sc.call<int64_t(int64_t)>("map_bytes", 1 << 20), 0);
  expect_fault([&] { sc.call<int64_t(int64_t)>("map_bytes", 4 << 20); }, Errc::Quota,
               {"memory quota", "bytes mapped", "limit 2097152"});
  EXPECT_EQ(sc.memory().mapped_bytes, 0u);  // the reset released the first one
  sc.set_quota({50, 0});
  EXPECT_EQ(sc.call<int64_t(int64_t)>("dirty", 10), 10);
  expect_fault([&] { sc.call<int64_t(int64_t)>("dirty", 200); }, Errc::Quota, {"dirty pages", "limit 50"});
  EXPECT_LT(sc.memory().dirty_pages, 50u);
}

TEST_P(ContainmentTest, QuotaFromThePolicyFile) {
  mm().set_policy("allow map path=" + fault_image() + " max-mapped-bytes=1048576 max-dirty-pages=40\n");
  struct Clear {
    ~Clear() { mm().clear_policy(); }
  } clear;
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.memory().quota.max_mapped_bytes, 1048576u);
  EXPECT_EQ(sc.memory().quota.max_dirty_pages, 40u);
  expect_fault([&] { sc.call<int64_t(int64_t)>("map_bytes", 2 << 20); }, Errc::Quota, {"limit 1048576"});
  mm().unmap(sc);
  // The map options win over the rule.
  subctx::MapOptions o = with(backend_);
  o.quota = subctx::Quota{0, 8 << 20};
  sc = mm().request_map(fault_image(), o);
  EXPECT_GT(sc.call<int64_t(int64_t)>("map_bytes", 2 << 20), 0);
}

TEST_P(ContainmentTest, SystemCallDefaults) {
  std::string why;
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<int64_t()>("my_pid"), getpid());
  EXPECT_EQ(sc.call<int64_t()>("my_tid"), gettid());
  EXPECT_EQ(sc.call<int64_t()>("try_fork"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("try_brk_syscall"), -ENOMEM);
  EXPECT_EQ(sc.call<int64_t()>("try_sigaction"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("sigmask_roundtrip"), 1);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("raise_signal", SIGCHLD), 0);  // ignored by default: the call goes on
  subctx::SubcontextFault f =
      expect_fault([&] { sc.call<int64_t(int64_t)>("raise_signal", SIGTERM); }, Errc::Fault, {"SIGTERM"});
  EXPECT_EQ(f.signal(), SIGTERM);
  // The client's own state is untouched: its mask, its handlers, its break.
  sigset_t mask;
  sigprocmask(SIG_BLOCK, nullptr, &mask);
  EXPECT_FALSE(sigismember(&mask, SIGUSR2));
  struct sigaction usr1 {};
  sigaction(SIGUSR1, nullptr, &usr1);
  EXPECT_EQ(usr1.sa_handler, SIG_DFL);
}

TEST_P(ContainmentTest, ThreadBlockingEverySignalCanCallAndFault) {
  // SIGSYS or a fault signal blocked would make the kernel kill the
  // process: the Matchmaker unblocks them for the call.
  subctx::Subcontext sc = map();
  std::thread worker([&] {
    sigset_t all, after;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    EXPECT_EQ(sc.call<int64_t()>("my_tid"), gettid());
    EXPECT_EQ(sc.call<int64_t()>("try_fork"), -EPERM);
    expect_fault([&] { sc.call<int64_t(int64_t)>("crash_null", 0); }, Errc::Fault, {"SIGSEGV"});
    sc.set_call_timeout(50);
    expect_fault([&] { sc.call<int64_t(int64_t)>("spin", -1); }, Errc::Timeout, {"deadline"});
    sc.set_call_timeout(0);
    pthread_sigmask(SIG_BLOCK, nullptr, &after);
    EXPECT_TRUE(sigismember(&after, SIGSYS) && sigismember(&after, SIGSEGV)) << "the thread's mask came back";
  });
  worker.join();
}

TEST_P(ContainmentTest, ClientStateAfterTheCallIsTheClients) {
  subctx::Subcontext sc = map();
  // Flags and rounding mode the subcontext set before faulting stay there.
  expect_fault([&] { sc.call<int64_t()>("crash_with_flags"); }, Errc::Fault, {"SIGSEGV"});
  uint64_t flags;
  __asm__ volatile("pushfq; popq %0" : "=r"(flags));
  EXPECT_EQ(flags & 0x400, 0u) << "direction flag set";
  EXPECT_EQ(fegetround(), FE_TONEAREST);
  // Signal masks the subcontext set: not the client's after the call,
  // returned or faulted; SIGSYS is never really blocked.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("block_usr2_and", 0), 10);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_FALSE(sigismember(&now, SIGUSR2));
  expect_fault([&] { sc.call<int64_t(int64_t)>("block_usr2_and", 1); }, Errc::Fault, {"SIGSEGV"});
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_FALSE(sigismember(&now, SIGUSR2));
  EXPECT_EQ(sc.call<int64_t()>("bad_sigmask"), -EFAULT);
  // pthread_create blocks every signal before clone3: the thread starts
  // (docs/threads.md) and is joined, or, under mprotect, clone is refused;
  // not fatal either way, and the client's mask is its own after.
  EXPECT_EQ(sc.call<int64_t()>("try_thread"), backend_ == Protection::Mprotect ? -EPERM : 0);
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_FALSE(sigismember(&now, SIGUSR2));
  // sigqueue to itself ends the call instead of the client.
  expect_fault([&] { sc.call<int64_t(int64_t)>("queue_signal", SIGTERM); }, Errc::Fault, {"SIGTERM"});
  // MAP_FIXED over its own mapping is counted once.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("map_fixed_twice", 1 << 20), 0);
  EXPECT_EQ(sc.memory().mapped_bytes, uint64_t{1} << 20);
}

TEST_P(ContainmentTest, StaleThreadIdsFromTheSnapshotAreNeverSignalled) {
  // A process that now has the server's old pid would get SIGTERM if the
  // subcontext's tgkill went to the kernel as is: this one stands in for it.
  subctx::Subcontext sc = map();
  const auto stale = static_cast<pid_t>(sc.call<int64_t()>("snapshot_pid"));
  ASSERT_NE(stale, getpid());
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGUSR2, &ignore, &old);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("signal_snapshot_thread", 0), 0);  // "is it there": the caller is
  subctx::SubcontextFault f =
      expect_fault([&] { sc.call<int64_t(int64_t)>("signal_snapshot_thread", SIGTERM); }, Errc::Fault, {"SIGTERM"});
  EXPECT_EQ(f.signal(), SIGTERM);
  f = expect_fault([&] { sc.call<int64_t(int64_t)>("tkill_snapshot_thread", SIGUSR2); }, Errc::Fault, {"SIGUSR2"});
  EXPECT_EQ(f.signal(), SIGUSR2);
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(sc.call<int64_t()>("counter"), 100);
}

TEST_P(ContainmentTest, CustomSystemCallRules) {
  subctx::MapOptions o = with(backend_);
  o.syscalls = {{"openat", subctx::SyscallRule::Action::Deny, EACCES},
                {"getppid", subctx::SyscallRule::Action::Fault, 0}};
  subctx::Subcontext sc = mm().request_map(fault_image(), o);
  EXPECT_EQ(sc.call<int64_t(const char*)>("try_open", "/proc/self/status"), -EACCES);
  expect_fault([&] { sc.call<int64_t()>("parent_pid"); }, Errc::Fault, {"SIGSYS"});
  EXPECT_EQ(sc.call<int64_t()>("my_pid"), getpid());
  mm().unmap(sc);
  // Allow keeps the tracking a system call has by default: a reset still
  // closes what an allowed openat opened.
  subctx::MapOptions allow = with(backend_);
  allow.syscalls = {{"openat", subctx::SyscallRule::Action::Allow, 0}};
  subctx::Subcontext allowed = mm().request_map(fault_image(), allow);
  ASSERT_GE(allowed.call<int64_t(int64_t)>("open_null", 2), 0);
  EXPECT_EQ(allowed.memory().open_fds, 2u);
  EXPECT_EQ(allowed.reset().fds_closed, 2u);
  mm().unmap(allowed);
  subctx::MapOptions bad = with(backend_);
  bad.syscalls = {{"no_such_call", subctx::SyscallRule::Action::Deny, EPERM}};
  expect_error([&] { mm().request_map(fault_image(), bad); }, Errc::InvalidArgument, {"no_such_call"});
}

TEST_P(ContainmentTest, TheImagesOwnSystemCallRules) {
  static const std::string ruled = build_image(paths::kFaultServer, "fault-ruled.img", {"--syscall-rules"});
  subctx::Subcontext sc = mm().request_map(ruled, with(backend_));
  EXPECT_EQ(sc.call<int64_t(const char*)>("try_open", "/proc/self/status"), -EACCES);
  expect_fault([&] { sc.call<int64_t()>("parent_pid"); }, Errc::Fault, {"SIGSYS"});
  mm().unmap(sc);
  // A client's rule goes over the image's; its Allow brings back the
  // default tracking of descriptors too.
  subctx::MapOptions o = with(backend_);
  o.syscalls = {{"openat", subctx::SyscallRule::Action::Allow, 0}};
  sc = mm().request_map(ruled, o);
  EXPECT_EQ(sc.call<int64_t(const char*)>("try_open", "/proc/self/status"), 0);
  expect_fault([&] { sc.call<int64_t()>("parent_pid"); }, Errc::Fault, {"SIGSYS"});
  ASSERT_GE(sc.call<int64_t(int64_t)>("open_null", 3), 0);
  EXPECT_EQ(sc.memory().open_fds, 3u);
  EXPECT_EQ(sc.reset().fds_closed, 3u);
}

TEST_P(ContainmentTest, FaultsFromManyThreads) {
  subctx::Subcontext sc = map();
  std::atomic<int> faults{0}, good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        try {
          if ((i + t) % 3 == 0) sc.call<int64_t(int64_t)>("crash_null", 0);
          else if (sc.call<int64_t(int64_t)>("bump", 0) >= 100) ++good;
        } catch (const subctx::SubcontextFault&) {
          ++faults;
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(faults + good, 100);
  EXPECT_GT(faults.load(), 20);
  EXPECT_EQ(sc.call<int64_t()>("counter"), 100);
}

// ---- the environment and the tool (a separate client process each) ----

ProcessResult tool(const std::vector<std::string>& env, std::vector<std::string> args) {
  args.insert(args.begin(), paths::kSubctxTool);
  SpawnOptions o;
  o.env = env;
  return run(args, o, Millis(30000));
}

class ContainmentEnvironment : public E2eTest {};

TEST_F(ContainmentEnvironment, ExitInsideIsAnErrorAndTheToolReportsIt) {
  const ProcessResult r = tool({}, {"call", fault_image(), "do_exit", "7"});
  EXPECT_TRUE(r.exited) << r.describe();
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.exit_code, 7) << "the subcontext's exit() ended the client: " << r.describe();
  EXPECT_NE(r.err.find("called exit(7)"), std::string::npos) << r.describe();
}

TEST_F(ContainmentEnvironment, CallTimeoutFromTheEnvironment) {
  const ProcessResult r = tool({"SUBCTX_CALL_TIMEOUT_MS=100"}, {"call", fault_image(), "spin", "-1"});
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.describe();
  EXPECT_NE(r.err.find("ran past its deadline of 100 ms"), std::string::npos) << r.describe();
}

TEST_F(ContainmentEnvironment, QuotaFromTheEnvironmentAndMemoryShown) {
  ProcessResult r = tool({"SUBCTX_QUOTA_MAPPED_BYTES=1000000"}, {"call", fault_image(), "map_bytes", "2000000"});
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.describe();
  EXPECT_NE(r.err.find("went over the memory quota"), std::string::npos) << r.describe();
  r = tool({}, {"call", "--memory", fault_image(), "map_bytes", "2000000"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.err.find("2002944 bytes mapped by subcontext code"), std::string::npos) << r.describe();
}

TEST_F(ContainmentEnvironment, DirtyPagesCountedWithAndWithoutPagemapScan) {
  for (const char* scan : {"SUBCTX_PAGEMAP_SCAN=on", "SUBCTX_PAGEMAP_SCAN=off"}) {
    const ProcessResult r = tool({scan}, {"call", "--memory", fault_image(), "dirty", "100"});
    ASSERT_TRUE(r.ok()) << r.describe();
    uint64_t pages = 0;
    ASSERT_EQ(std::sscanf(r.err.c_str(), "memory: %" SCNu64 " dirty pages", &pages), 1) << r.describe();
    EXPECT_GE(pages, 100u) << scan;
    EXPECT_LT(pages, 200u) << scan;
  }
}

TEST_F(ContainmentEnvironment, FaultPolicyAndSyscallsSwitches) {
  ProcessResult r = tool({"SUBCTX_ON_FAULT=sometimes"}, {"call", fault_image(), "counter"});
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.describe();
  EXPECT_NE(r.err.find("SUBCTX_ON_FAULT=sometimes is not a fault policy"), std::string::npos) << r.describe();
  r = tool({}, {"call", fault_image(), "try_brk_syscall"});
  EXPECT_EQ(r.out, std::to_string(-ENOMEM) + "\n") << r.describe();
  r = tool({"SUBCTX_SYSCALLS=off"}, {"call", fault_image(), "try_brk_syscall"});
  EXPECT_EQ(r.out, "0\n") << "not mediated: " << r.describe();
  r = tool({}, {"inspect", fault_image()});
  EXPECT_NE(r.out.find("system calls of subcontext code"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("clone, clone3, vfork"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("execve, execveat"), std::string::npos) << r.describe();
}

TEST_F(ContainmentEnvironment, ImageRulesShownAndCheckedAtSnapshot) {
  const std::string ruled = build_image(paths::kFaultServer, "fault-ruled.img", {"--syscall-rules"});
  ProcessResult r = tool({}, {"inspect", ruled});
  EXPECT_NE(r.out.find("denied: errno 13 (image rule)"), std::string::npos) << r.describe();
  EXPECT_NE(r.out.find("the call fails (image rule)"), std::string::npos) << r.describe();
  subctx::testing::TempDir dir("subctx-rules");
  r = run({paths::kFaultServer, "--bad-syscall-rule", dir.path() + "/bad.img"});
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.describe();
  EXPECT_NE(r.err.find("unknown system call \"no_such_call\""), std::string::npos) << r.describe();
  // An image's rules narrow the defaults, never widen them: "allow
  // exit_group" would let subcontext code end the client.
  r = run({paths::kFaultServer, "--allow-rule", dir.path() + "/allow.img"});
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.describe();
  EXPECT_NE(r.err.find("rule \"allow exit_group\": an image's rules may only deny or fault"), std::string::npos)
      << r.describe();
  // The same rule written into an image by hand (the deny of openat made an
  // allow) is refused at map.
  const std::string forged = copy_image(ruled, "fault-forged-rule.img");
  const NoteLocation rules = read_layout(forged).notes.at(0x5343000a);
  patch_value<uint8_t>(forged, rules.desc_offset + 4 + 4 + 6, 0);  // u32 n, str "openat", u8 action
  reseal(forged);
  expect_error([&] { mm().request_map(forged); }, Errc::BadImage, {"allow openat", "may only deny or fault"});
}

INSTANTIATE_TEST_SUITE_P(Backends, ContainmentTest, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace e2e
