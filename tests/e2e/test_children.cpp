// Child processes started by subcontext code (docs/threads.md, "Child
// processes"): a real C image whose exports posix_spawn, vfork + execve,
// fork, wait and kill; per backend.  What the child gets (only the
// subcontext's descriptors, its working directory), what the client keeps
// (its children, its SIGCHLD), the permission (the image's declaration,
// the policy), and what reset and unmap do with children still running.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <string>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using Status = int64_t(const char*, const char*);
using Output = int64_t(const char*, void*, int64_t);
using None = int64_t();
using One = int64_t(int64_t);

const std::string& declared_image() {
  static const std::string path = build_image(paths::kChildrenServer, "children.img", {"--declare"});
  return path;
}
const std::string& undeclared_image() {
  static const std::string path = build_image(paths::kChildrenServer, "children-undeclared.img");
  return path;
}

// Descriptors of this process now.
int open_descriptors() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) n += fcntl(fd, F_GETFD) != -1;
  return n;
}

// Whether pid is gone (killed and reaped: not even a zombie).
bool gone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    usleep(10000);
  }
  return false;
}

class ChildTest : public E2eTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "pkey" && !pkeys_work()) GTEST_SKIP() << "no protection keys here";
    backend_ = subctx::testing::protection_named(GetParam());
  }
  void TearDown() override { mm().clear_policy(); }
  subctx::Subcontext map(const std::string& image = declared_image()) {
    subctx::MapOptions o;
    o.protection = backend_;
    return mm().request_map(image, o);
  }
  // out is the spawned program's standard output.
  int64_t run_output(subctx::Subcontext& sc, const char* fn, const char* script, std::string* out) {
    char buf[4096] = {};
    const int64_t r = sc.call<Output>(fn, script, buf, sizeof buf);
    *out = buf;
    return r;
  }
  subctx::Protection backend_ = subctx::Protection::None;
};

TEST_P(ChildTest, PosixSpawnRunsProgramsAndReportsTheirStatus) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<Status>("spawn_status", "/bin/true", ""), 0);
  EXPECT_EQ(sc.call<Status>("spawn_status", "/bin/false", ""), 1);
  EXPECT_EQ(sc.call<Status>("spawn_status", "/nonexistent/program", ""), -ENOENT);
  std::string out;
  EXPECT_EQ(run_output(sc, "spawn_sh", "echo x; exit 7", &out), 7);
  EXPECT_EQ(out, "x\n");
}

// The child is a process of its own: what the subcontext may not do to
// the client's (setsid: docs/containment.md) its child makes for itself
// before its exec (posix_spawn's POSIX_SPAWN_SETSID).
TEST_P(ChildTest, TheChildMakesItsOwnSession) {
  subctx::Subcontext sc = map();
  // /proc/PID/stat's sixth field is the session: the shell leads its own.
  EXPECT_EQ(sc.call<int64_t(const char*)>("spawn_sh_setsid", "set -- $(cat /proc/$$/stat); test \"$6\" = $$"), 0);
  EXPECT_EQ(sc.call<int64_t(const char*)>("spawn_sh_setsid", "exit 3"), 3);
}

// A child that waits before its exec (a file action opening a FIFO no one
// writes) holds its parent in the vfork, where no signal reaches it: the
// call's deadline still ends the call, the child killed at it.
TEST_P(ChildTest, TheCallsDeadlineEndsAChildThatWaitsBeforeItsExec) {
  subctx::Subcontext sc = map();
  const std::string fifo = temp_path("no-writer.fifo");
  unlink(fifo.c_str());  // another backend's run in this process made it
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  sc.set_call_timeout(300);
  const auto start = std::chrono::steady_clock::now();
  expect_error([&] { sc.call<int64_t(const char*)>("spawn_opening_fifo", fifo.c_str()); }, subctx::Errc::Timeout,
               {"deadline of 300 ms"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  sc.set_call_timeout(0);
  EXPECT_EQ(sc.call<Status>("spawn_status", "/bin/true", ""), 0);  // and the subcontext goes on
}

// What Python's subprocess does: vfork on the call's own stack, then
// dup2 and execve in the child; the parent's stack is put back each time.
TEST_P(ChildTest, VforkAndExecveAHundredTimes) {
  subctx::Subcontext sc = map();
  for (int i = 0; i < 100; ++i) {
    std::string out;
    ASSERT_EQ(run_output(sc, "vfork_sh", "echo vfork; exit 4", &out), 4) << "round " << i;
    ASSERT_EQ(out, "vfork\n") << "round " << i;
  }
  EXPECT_EQ(sc.call<One>("wait_pid", 1), -ECHILD);  // nothing left over
}

// The child has the subcontext's descriptors at the subcontext's numbers,
// and none of the client's.
TEST_P(ChildTest, TheChildHasTheSubcontextsDescriptorsAndNoneOfTheClients) {
  const std::string file = temp_path("for-the-child.txt");
  std::ofstream(file) << "the subcontext's own file\n";
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(dup2(fd, 77), 77);  // not close-on-exec
  close(fd);
  subctx::Subcontext sc = map();
  std::string out;
  EXPECT_EQ(run_output(sc, "spawn_sh", "test -e /proc/self/fd/77 && echo leaked || echo none", &out), 0);
  EXPECT_EQ(out, "none\n");
  EXPECT_EQ(run_output(sc, "spawn_reads_own_file", file.c_str(), &out), 0);
  EXPECT_EQ(out, "the subcontext's own file\n");
  close(77);
}

// Its working directory is the subcontext's (the server's at snapshot), not
// the client's.
TEST_P(ChildTest, TheChildStartsInTheSubcontextsWorkingDirectory) {
  char here[4096];
  ASSERT_NE(getcwd(here, sizeof here), nullptr);
  if (std::string(here) == "/") GTEST_SKIP() << "the tests run in /: no other directory to tell apart";
  subctx::Subcontext sc = map();  // the image was written by a server started here
  ASSERT_EQ(chdir("/"), 0);
  std::string out;
  const int64_t r = run_output(sc, "spawn_sh", "pwd", &out);
  ASSERT_EQ(chdir(here), 0);
  EXPECT_EQ(r, 0);
  EXPECT_EQ(out, std::string(here) + "\n");
}

TEST_P(ChildTest, ForkIsRefused) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<None>("fork_result"), -EPERM);
  EXPECT_EQ(sc.call<Status>("spawn_status", "/bin/true", ""), 0);  // and the subcontext goes on
}

// The client's children are invisible to subcontext code: it can neither
// wait for them nor signal them, and the client still reaps its own.
TEST_P(ChildTest, TheClientsChildrenAreNotTheSubcontexts) {
  const pid_t mine = fork();
  if (mine == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pause();
    _exit(0);
  }
  ASSERT_GT(mine, 0);
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<None>("wait_any"), -ECHILD);
  EXPECT_EQ(sc.call<One>("wait_pid", mine), -ECHILD);
  EXPECT_EQ((sc.call<int64_t(int64_t, int64_t)>("kill_pid", mine, SIGKILL)), -EPERM);
  kill(mine, SIGKILL);
  int st = 0;
  EXPECT_EQ(waitpid(mine, &st, 0), mine);
  EXPECT_TRUE(WIFSIGNALED(st));
}

// The subcontext signals and waits for its own children.
TEST_P(ChildTest, TheSubcontextSignalsAndWaitsForItsOwnChildren) {
  subctx::Subcontext sc = map();
  const int64_t pid = sc.call<None>("start_sleeper");
  ASSERT_GT(pid, 0);
  EXPECT_EQ((sc.call<int64_t(int64_t, int64_t)>("kill_pid", pid, SIGTERM)), 0);
  EXPECT_EQ(sc.call<One>("wait_pid", pid), 1000 + SIGTERM);
  EXPECT_EQ(sc.call<One>("wait_pid", pid), -ECHILD);  // reaped
  EXPECT_EQ(sc.call<None>("wait_any_two"), 6);        // a wait for any child: two, then ECHILD
}

TEST_P(ChildTest, ResetAndUnmapKillAndReapItsChildren) {
  subctx::Subcontext sc = map();
  const int64_t a = sc.call<None>("start_sleeper");
  ASSERT_GT(a, 0);
  sc.reset();
  EXPECT_TRUE(gone(static_cast<pid_t>(a))) << "a child of the subcontext outlived its reset";
  const int64_t b = sc.call<None>("start_sleeper");
  ASSERT_GT(b, 0);
  mm().unmap(sc);
  EXPECT_TRUE(gone(static_cast<pid_t>(b))) << "a child of the subcontext outlived its unmap";
}

// 200 spawns, each waited for: nothing is left behind (its table holds 64).
TEST_P(ChildTest, ManySpawnsLeaveNoDescriptorOrChildBehind) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<One>("spawn_many", 1), 1);
  const int before = open_descriptors();
  EXPECT_EQ(sc.call<One>("spawn_many", 200), 200);
  EXPECT_EQ(open_descriptors(), before);
  EXPECT_EQ(sc.call<None>("wait_any"), -ECHILD);
}

// A fault in the child before its exec kills the child, as it would a
// process of its own; the call and the client go on.
TEST_P(ChildTest, AFaultInTheChildIsTheChilds) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<None>("vfork_fault"), 1000 + SIGSEGV);
  EXPECT_EQ(sc.call<Status>("spawn_status", "/bin/false", ""), 1);
}

// Before its exec the child may not turn mediation off, map memory (it
// would stay in the client, untracked) or fork.
TEST_P(ChildTest, TheChildsOwnTableRefusesWhatWouldEscapeOrLeak) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<None>("child_refusals"), EPERM * 10000 + ENOMEM * 100 + EPERM);
}

TEST_P(ChildTest, AThreadOfTheSubcontextSpawnsToo) {
  subctx::Subcontext sc = map();
  EXPECT_EQ(sc.call<None>("spawn_in_thread"), backend_ == subctx::Protection::Mprotect ? -2000 : 1);
}

// The permission: an image that does not declare that it spawns may not;
// the policy decides over the declaration either way.
TEST_P(ChildTest, SpawningIsAPermission) {
  subctx::Subcontext undeclared = map(undeclared_image());
  EXPECT_EQ(undeclared.call<Status>("spawn_status", "/bin/true", ""), -EPERM);
  std::string out;
  EXPECT_EQ(run_output(undeclared, "vfork_sh", "echo no", &out), -EPERM);
  mm().unmap(undeclared);

  mm().set_policy("allow spawn path=" + undeclared_image() + "\nallow map path=*\n");
  subctx::Subcontext allowed = map(undeclared_image());
  EXPECT_EQ(allowed.call<Status>("spawn_status", "/bin/true", ""), 0);
  mm().set_policy("deny spawn\nallow map path=*\n");  // the next call decides again
  EXPECT_EQ(allowed.call<Status>("spawn_status", "/bin/true", ""), -EPERM);
  subctx::Subcontext declared = map();
  EXPECT_EQ(declared.call<Status>("spawn_status", "/bin/true", ""), -EPERM);
}

INSTANTIATE_TEST_SUITE_P(Backends, ChildTest, ::testing::Values("none", "pkey", "mprotect"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace e2e
