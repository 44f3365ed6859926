// `subctx snapshot --pid` (docs/external-snapshot.md): a real program that
// knows nothing of subctx (external/external_target.c) initializes, waits,
// is snapshotted from outside by the subctx command, and this process maps
// the image and calls the program's functions; then each refusal, with the
// target left as it was.
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "external/ptrace_refusal.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

constexpr const char* kTarget = E2E_EXTERNAL_TARGET;
constexpr const char* kCxxTarget = E2E_EXTERNAL_CXX_TARGET;
constexpr const char* kSelf = E2E_EXTERNAL_SELF;
constexpr const char* kSqliteTarget = E2E_EXTERNAL_SQLITE_TARGET;
constexpr const char* kPreload = E2E_EXTERNAL_PRELOAD;

// Whether this process may trace a child of its own (a container may forbid
// ptrace altogether): the command's tests need it, and skip without it.
bool ptrace_allowed() {
  static const bool allowed = [] {
    const pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    const bool ok = ptrace(PTRACE_SEIZE, child, nullptr, nullptr) == 0;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    return ok;
  }();
  return allowed;
}

class ExternalSnapshot : public E2eTest {
 protected:
  void SetUp() override {
    if (!ptrace_allowed()) GTEST_SKIP() << "ptrace is not allowed here (a container's seccomp profile?)";
  }
};

// A data file the target opens and keeps open (its identity record).
const std::string& data_file() {
  static const std::string path = [] {
    const std::string p = temp_path("external-data.txt");
    std::ofstream(p) << "twenty-six bytes of data.\n";
    return p;
  }();
  return path;
}

// The target, started and waiting ("ready" read from its stdout).
struct Target {
  Child child;
  explicit Target(const std::string& mode, bool stdin_pipe = false)
      : child({kTarget, mode, data_file()}, [&] {
          SpawnOptions o;
          o.stdin_pipe = stdin_pipe;
          return o;
        }()) {
    std::string line;
    if (!child.read_line(&line, Millis(10000)) || line != "ready")
      throw std::runtime_error("external_target " + mode + " did not say ready: " + line);
    // "ready" comes just before the wait: let it get there.
    wait_sleeping();
  }
  pid_t pid() const { return child.pid(); }
  // Until the process sleeps in the kernel (state S), up to 2 s.
  void wait_sleeping() const {
    for (int i = 0; i < 200; ++i) {
      std::ifstream stat("/proc/" + std::to_string(child.pid()) + "/stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const size_t paren = text.rfind(')');
      if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'S') return;
      std::this_thread::sleep_for(Millis(10));
    }
  }
  bool alive() const {
    std::ifstream stat("/proc/" + std::to_string(child.pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
  }
};

const std::vector<std::string> kExports = {
    "count_primes_below:i64(i64)", "nth_prime:i64(i64)",         "data_file_size:i64()",
    "span_length:i64(str)",        "parse_and_add:i64(str,i64)", "sum_of_first_primes:i64(i64)",
    "greeting_length:i64()",       "path_length:i64()",          "page_size_from_auxv:i64()"};

ProcessResult snapshot(pid_t pid, const std::string& image, const std::vector<std::string>& exports,
                       const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{paths::kSubctxTool, "snapshot", "--pid", std::to_string(pid), "-o", image};
  for (const auto& e : exports) {
    argv.push_back("--export");
    argv.push_back(e);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv);
}

// What the target computes, computed here.
struct Expected {
  std::vector<long> primes;
  Expected() {
    std::vector<bool> composite(1000001);
    for (long i = 2; i <= 1000000; ++i) {
      if (composite[i]) continue;
      primes.push_back(i);
      for (long j = i * i; j <= 1000000; j += i) composite[j] = true;
    }
  }
  long below(long n) const { return std::lower_bound(primes.begin(), primes.end(), n) - primes.begin(); }
  long sum(long n) const {
    long s = 0;
    for (long i = 0; i < n; ++i) s += primes[i];
    return s;
  }
};

void expect_answers(subctx::Subcontext& sc) {
  static const Expected want;
  EXPECT_EQ(sc.call<int64_t(int64_t)>("count_primes_below", 1000000), want.below(1000000));
  EXPECT_EQ(sc.call<int64_t(int64_t)>("count_primes_below", 100), 25);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("nth_prime", 10000), want.primes[9999]);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("nth_prime", 0), -1);
  // The descriptor the target opened, reopened by path in this client.
  EXPECT_EQ(sc.call<int64_t()>("data_file_size"), 26);
  // The stack's top, moved below the libraries with the pointers to it.
  const char* path = std::getenv("PATH");
  EXPECT_EQ(sc.call<int64_t()>("path_length"), path ? static_cast<int64_t>(std::strlen(path)) : -1);
  EXPECT_EQ(sc.call<int64_t()>("page_size_from_auxv"), sysconf(_SC_PAGESIZE));
  // strcspn and strtoll were never called in the target: lazily bound
  // slots the snapshot resolved (strcspn is an IFUNC).
  EXPECT_EQ(sc.call<int64_t(const char*)>("span_length", "abc,def"), 3);
  EXPECT_EQ(sc.call<int64_t(const char*, int64_t)>("parse_and_add", "40", 2), 42);
  // malloc and free inside the subcontext.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("sum_of_first_primes", 1000), want.sum(1000));
  EXPECT_EQ(sc.call<int64_t()>("greeting_length"),
            static_cast<int64_t>(std::string(std::to_string(want.primes.size()) + " primes below 1000000").size()));
}

// Snapshots a fresh target of `mode` and maps the image; a target whose
// addresses meet this process's (ASLR) is started again, up to 5 times.
subctx::Subcontext snapshot_and_map(const std::string& mode, const std::string& image, ProcessResult* tool,
                                    std::unique_ptr<Target>* kept = nullptr) {
  for (int attempt = 1;; ++attempt) {
    auto t = std::make_unique<Target>(mode, mode == "read");
    *tool = snapshot(t->pid(), image, kExports);
    if (!tool->ok()) throw std::runtime_error("subctx snapshot failed: " + tool->describe());
    try {
      subctx::Subcontext sc = mm().request_map(image);
      if (kept) *kept = std::move(t);
      return sc;
    } catch (const subctx::AddressConflict& e) {
      if (attempt == 5) throw;
      std::fprintf(stderr, "e2e: %s overlaps this test process (%s); again\n", image.c_str(), e.what());
    }
  }
}

TEST_F(ExternalSnapshot, UnmodifiedProcessAnswersInAClient) {
  ProcessResult tool;
  std::unique_ptr<Target> t;
  subctx::Subcontext sc = snapshot_and_map("pause", temp_path("ext.img"), &tool, &t);
  EXPECT_NE(tool.out.find("lazy PLT slots resolved"), std::string::npos) << tool.out;
  // The target's stack moved below its libraries: no segment where a
  // client's stack may grow.
  for (const auto& seg : read_image_info(temp_path("ext.img")).segments)
    EXPECT_LE(seg.end(), lowest_stack_room()) << subctx::image::segment_kind_name(seg.kind) << " " << seg.origin;
  EXPECT_NE(tool.out.find("continues"), std::string::npos) << tool.out;
  expect_answers(sc);
  mm().unmap(sc);
  // The target was let go: still running, and it can be snapshotted again.
  EXPECT_TRUE(t->alive());
  ProcessResult again = snapshot(t->pid(), temp_path("ext-again.img"), {"nth_prime:i64(i64)"});
  EXPECT_TRUE(again.ok()) << again.describe();
  EXPECT_TRUE(t->alive());
  ProcessResult verify = run({paths::kSubctxTool, "verify", temp_path("ext-again.img")});
  EXPECT_TRUE(verify.ok()) << verify.describe();
}

TEST_F(ExternalSnapshot, TargetBlockedInReadGoesOnAfterTheSnapshot) {
  ProcessResult tool;
  std::unique_ptr<Target> t;
  subctx::Subcontext sc = snapshot_and_map("read", temp_path("ext-read.img"), &tool, &t);
  expect_answers(sc);
  mm().unmap(sc);
  // Its read(2) was interrupted by the attach and restarted at the detach:
  // it still reads its stdin, and ends when that closes.
  t->child.close_stdin();
  ProcessResult end = t->child.finish(Millis(10000));
  EXPECT_TRUE(end.ok()) << end.describe();
}

TEST_F(ExternalSnapshot, PendingOutputStaysWithTheTarget) {
  ProcessResult tool;
  std::unique_ptr<Target> t;
  subctx::Subcontext sc = snapshot_and_map("pending", temp_path("ext-pending.img"), &tool, &t);
  EXPECT_NE(tool.err.find("14 bytes of output buffered in the target's stdout are left to the target"),
            std::string::npos)
      << tool.err;
  EXPECT_EQ(sc.call<int64_t(int64_t)>("nth_prime", 1), 2);
  mm().unmap(sc);
}

TEST_F(ExternalSnapshot, DescriptorsAClientCannotReopenAreRefusedUnlessDropped) {
  // Descriptor 3 is the data file; 4 and 5 a pipe.
  Target t("pipe");
  const std::string image = temp_path("ext-pipe.img");
  ProcessResult r = snapshot(t.pid(), image, {"nth_prime:i64(i64)"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  for (const char* w :
       {"snapshot refused: 2 descriptors cannot be restored", "fd 4: pipe", "fd 5: pipe", "--drop-fd N"})
    EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
  r = snapshot(t.pid(), image, {"nth_prime:i64(i64)"}, {"--drop-fd", "4", "--drop-fd", "5"});
  ASSERT_TRUE(r.ok()) << r.describe();
  ProcessResult inspect = run({paths::kSubctxTool, "inspect", image});
  EXPECT_TRUE(inspect.ok()) << inspect.describe();
  EXPECT_NE(inspect.out.find("dropped"), std::string::npos) << inspect.out;
}

// --spawns: the image declares that its code starts programs (docs/policy.md, "Spawn").
TEST_F(ExternalSnapshot, SpawnsDeclaresThatTheImageStartsPrograms) {
  Target t("pause");
  const std::string image = temp_path("ext-spawns.img");
  for (const bool spawns : {true, false}) {
    ProcessResult r = snapshot(t.pid(), image, {"nth_prime:i64(i64)"},
                               spawns ? std::vector<std::string>{"--spawns"} : std::vector<std::string>{});
    ASSERT_TRUE(r.ok()) << r.describe();
    ProcessResult inspect = run({paths::kSubctxTool, "inspect", image});
    ASSERT_TRUE(inspect.ok()) << inspect.describe();
    EXPECT_NE(inspect.out.find(spawns ? "programs:  declares that it starts programs"
                                      : "programs:  does not declare that it starts programs"),
              std::string::npos)
        << inspect.out;
  }
}

TEST_F(ExternalSnapshot, ThenKillEndsTheTarget) {
  Target t("pause");
  ProcessResult tool = snapshot(t.pid(), temp_path("ext-kill.img"), {"nth_prime:i64(i64)"}, {"--then", "kill"});
  ASSERT_TRUE(tool.ok()) << tool.describe();
  EXPECT_NE(tool.out.find("killed"), std::string::npos) << tool.out;
  ProcessResult end = t.child.finish(Millis(10000));
  EXPECT_EQ(end.signal, SIGKILL) << end.describe();
  ProcessResult verify = run({paths::kSubctxTool, "verify", temp_path("ext-kill.img")});
  EXPECT_TRUE(verify.ok()) << verify.describe();
}

TEST_F(ExternalSnapshot, AgreesWithTheSameProgramSnapshottingItself) {
  // The same source linked with subctx_server, exporting the same
  // functions and calling sbc_snapshot_and_exit().
  const std::string self_image = temp_path("ext-self.img");
  SpawnOptions o;
  o.env.push_back("EXTERNAL_TARGET_IMAGE=" + self_image);
  ProcessResult tool;
  subctx::Subcontext ext = snapshot_and_map("pause", temp_path("ext-vs-self.img"), &tool);
  std::vector<int64_t> from_ext, from_self;
  auto answers = [](subctx::Subcontext& sc, std::vector<int64_t>* out) {
    for (int64_t n : {0, 2, 3, 100, 7919, 7920, 999983, 1000000, 1000001}) {
      out->push_back(sc.call<int64_t(int64_t)>("count_primes_below", n));
      out->push_back(sc.call<int64_t(int64_t)>("nth_prime", n));
      out->push_back(sc.call<int64_t(int64_t)>("sum_of_first_primes", n));
    }
    out->push_back(sc.call<int64_t()>("data_file_size"));
    out->push_back(sc.call<int64_t()>("greeting_length"));
    for (const char* s : {"", "a,b", "abc;", "no separators"})
      out->push_back(sc.call<int64_t(const char*)>("span_length", s));
    out->push_back(sc.call<int64_t(const char*, int64_t)>("parse_and_add", "-17", 5));
  };
  answers(ext, &from_ext);
  mm().unmap(ext);
  for (int attempt = 1;; ++attempt) {  // a layout that meets this process's (ASLR): written again
    ProcessResult self = run({kSelf, "self", data_file()}, o);
    ASSERT_TRUE(self.ok()) << self.describe();
    try {
      subctx::Subcontext in = mm().request_map(self_image);
      answers(in, &from_self);
      mm().unmap(in);
      break;
    } catch (const subctx::AddressConflict&) {
      if (attempt == 5) throw;
    }
  }
  EXPECT_EQ(from_ext, from_self);
}

TEST_F(ExternalSnapshot, CxxProgramWithAnUnorderedMapAndExceptions) {
  for (int attempt = 1;; ++attempt) {
    Child target({kCxxTarget});
    std::string line;
    ASSERT_TRUE(target.read_line(&line, Millis(20000))) << "the C++ target did not say ready";
    ASSERT_EQ(line, "ready");
    const std::string image = temp_path("ext-cxx.img");
    ProcessResult tool = snapshot(target.pid(), image, {"lookup:i64(str)", "word_count:i64(str)", "table_size:i64()"});
    ASSERT_TRUE(tool.ok()) << tool.describe();
    try {
      subctx::Subcontext sc = mm().request_map(image);
      EXPECT_EQ(sc.call<int64_t()>("table_size"), 100000);
      EXPECT_EQ(sc.call<int64_t(const char*)>("lookup", "key300"), 90000);
      EXPECT_EQ(sc.call<int64_t(const char*)>("lookup", "key99999"), 99999L * 99999L);
      // Thrown and caught inside the subcontext, twice.
      EXPECT_EQ(sc.call<int64_t(const char*)>("lookup", "nope"), -1);
      EXPECT_EQ(sc.call<int64_t(const char*)>("lookup", "key-1"), -1);
      EXPECT_EQ(sc.call<int64_t(const char*)>("word_count", "  the quick  brown fox "), 4);
      mm().unmap(sc);
      return;
    } catch (const subctx::AddressConflict& e) {
      if (attempt == 5) throw;
    }
  }
}

TEST_F(ExternalSnapshot, SqliteProgramWithAPopulatedDatabase) {
  for (int attempt = 1;; ++attempt) {
    Child target({kSqliteTarget});
    std::string line;
    ASSERT_TRUE(target.read_line(&line, Millis(30000))) << "the SQLite target did not say ready";
    ASSERT_EQ(line, "ready");
    const std::string image = temp_path("ext-sqlite.img");
    ProcessResult tool =
        snapshot(target.pid(), image,
                 {"count_prefix:i64(str)", "population_between:i64(i64,i64)", "insert_and_count:i64(i64)"});
    ASSERT_TRUE(tool.ok()) << tool.describe();
    try {
      subctx::Subcontext sc = mm().request_map(image);
      EXPECT_EQ(sc.call<int64_t(const char*)>("count_prefix", "Kalo"), 5000);
      EXPECT_EQ(sc.call<int64_t(const char*)>("count_prefix", "Town"), 15000);
      EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("population_between", 1, 100), 50500);
      EXPECT_EQ(sc.call<int64_t(int64_t)>("insert_and_count", 30001), 1);
      EXPECT_EQ(sc.call<int64_t(int64_t)>("insert_and_count", 30002), 2);
      mm().unmap(sc);
      return;
    } catch (const subctx::AddressConflict&) {
      if (attempt == 5) throw;
    }
  }
}

// A refusal: exit status 1, every word in the message, no image, and the
// target still running.
void expect_refused(const Target& t, const std::vector<std::string>& exports, std::initializer_list<std::string> words,
                    const std::vector<std::string>& prefix = {}) {
  const std::string image = temp_path("refused.img");
  std::vector<std::string> argv = prefix;
  argv.insert(argv.end(), {paths::kSubctxTool, "snapshot", "--pid", std::to_string(t.pid()), "-o", image});
  for (const auto& e : exports) argv.insert(argv.end(), {"--export", e});
  ProcessResult r = run(argv);
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("snapshot refused"), std::string::npos) << r.err;
  for (const auto& w : words) EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
  struct stat st;
  EXPECT_NE(stat(image.c_str(), &st), 0) << "an image was written";
  EXPECT_TRUE(t.alive());
}

TEST_F(ExternalSnapshot, RefusesATargetWithTwoThreads) {
  Target t("threads");
  expect_refused(t, {"nth_prime:i64(i64)"}, {"has 2 threads", "single-threaded"});
}

TEST_F(ExternalSnapshot, RefusesAnUnknownExportNamingWhereItLooked) {
  Target t("pause");
  expect_refused(t, {"nth_prime:i64(i64)", "no_such_function:i64()"},
                 {"export \"no_such_function\" is unknown", "external_target (the executable): .dynsym and .symtab",
                  "libc.so.6"});
}

TEST_F(ExternalSnapshot, RefusesAnAmbiguousExport) {
  // "helper" is a local function of both of the target's source files.
  Target t("pause");
  expect_refused(t, {"helper:i64(i64)"}, {"export \"helper\" is ambiguous", "2 times"});
}

TEST_F(ExternalSnapshot, RefusesATargetInsideStdio) {
  // Blocked in fgets() on its stdin: stdin's lock is held.
  Target t("fgets", true);
  expect_refused(t, {"nth_prime:i64(i64)"}, {"inside a stdio function", "(descriptor 0) is held"});
}

TEST_F(ExternalSnapshot, RefusesATargetInsideMalloc) {
  // malloc_stats() holds the arena lock while it writes to a full pipe.
  Target t("malloc");
  expect_refused(t, {"nth_prime:i64(i64)"}, {"stopped inside malloc_stats()", "an export calling malloc"});
}

TEST_F(ExternalSnapshot, RefusesATargetInsideDlopen) {
  // A library's constructor waits: the dynamic linker's list of objects is
  // half built, which the snapshot's own dlsym calls would read.
  Target t("dlopen");
  expect_refused(t, {"nth_prime:i64(i64)"}, {"inside dlopen()", "try again"});
}

TEST_F(ExternalSnapshot, RefusesAProcessThatDoesNotExist) {
  // A child that has exited and been reaped: its pid names no process.
  pid_t pid = 0;
  {
    Child c({"/bin/true"});
    pid = c.pid();
    c.finish(Millis(5000));
  }
  ProcessResult r = snapshot(pid, temp_path("gone.img"), {"nth_prime:i64(i64)"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("process " + std::to_string(pid) + " does not exist"), std::string::npos) << r.err;
}

TEST_F(ExternalSnapshot, RefusesAProcessThatHasExited) {
  // A child that has exited and is not reaped yet: a zombie.
  Child c({"/bin/true"});
  for (int i = 0; i < 500; ++i) {
    std::ifstream stat("/proc/" + std::to_string(c.pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    if (text.find(") Z") != std::string::npos) break;
    std::this_thread::sleep_for(Millis(10));
  }
  ProcessResult r = snapshot(c.pid(), temp_path("zombie.img"), {"nth_prime:i64(i64)"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("process " + std::to_string(c.pid()) + " has exited"), std::string::npos) << r.err;
  c.finish(Millis(5000));
}

TEST_F(ExternalSnapshot, RefusesATargetItMayNotTrace) {
  // The command as another user (nobody) than the target's (root).
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the command as another user";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
  struct stat st;
  if (stat(paths::kSubctxTool, &st) != 0 || !(st.st_mode & S_IXOTH))
    GTEST_SKIP() << "the tool is not executable by others";
  Target t("pause");
  ProcessResult probe =
      run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", paths::kSubctxTool, "--help"});
  if (!probe.ok()) GTEST_SKIP() << "the tool does not run as nobody here: " << probe.describe();
  expect_refused(t, {"nth_prime:i64(i64)"}, {"not allowed to trace process", "credentials", "uid 0", "uid 65534"},
                 {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
}

TEST_F(ExternalSnapshot, RefusesALibraryItCannotRead) {
  // The target (as nobody) runs code from a library that is then made
  // unreadable; the command, as nobody too, may trace it but not read that
  // file: refused naming it, not skipped (its lazy slots would be missed).
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the target and the command as another user";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
  const std::vector<std::string> nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  std::vector<std::string> probe = nobody;
  probe.insert(probe.end(), {paths::kSubctxTool, "--help"});
  if (!run(probe).ok()) GTEST_SKIP() << "the tool does not run as nobody here";
  char dir[] = "/tmp/subctx-ext-nobody-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  chmod(dir, 0777);
  const std::string lib = std::string(dir) + "/libpreloaded.so", data = std::string(dir) + "/data.txt";
  std::filesystem::copy_file("/lib/x86_64-linux-gnu/libm.so.6", lib);
  chmod(lib.c_str(), 0644);
  std::ofstream(data) << "data\n";
  chmod(data.c_str(), 0644);
  SpawnOptions o;
  o.env.push_back("LD_PRELOAD=" + lib);
  std::vector<std::string> argv = nobody;
  argv.insert(argv.end(), {kTarget, "pause", data});
  {
    Child target(argv, o);
    std::string line;
    ASSERT_TRUE(target.read_line(&line, Millis(10000))) << "the target did not start as nobody";
    chmod(lib.c_str(), 0);
    argv = nobody;
    argv.insert(argv.end(), {paths::kSubctxTool, "snapshot", "--pid", std::to_string(target.pid()), "-o",
                             std::string(dir) + "/x.img", "--export", "nth_prime:i64(i64)"});
    ProcessResult r = run(argv);
    EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
    for (const std::string& w :
         {"cannot read " + lib + ", from which the target runs code", std::string("Permission denied"),
          std::string("run this command as the target's user or as root")})
      EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
  }
  std::filesystem::remove_all(dir);
}

TEST_F(ExternalSnapshot, RefusesATargetThatIsNotX86_64) {
  // A 32-bit i386 program of 93 bytes, written here: pause() for ever.
  const uint32_t base = 0x08048000;
  const uint8_t code[] = {0xb8, 0x1d, 0, 0, 0, 0xcd, 0x80, 0xeb, 0xf7};  // mov $29,%eax; int $0x80; jmp back
  Elf32_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS32;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_386;
  eh.e_version = EV_CURRENT;
  eh.e_entry = base + sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr);
  eh.e_phoff = sizeof(Elf32_Ehdr);
  eh.e_ehsize = sizeof(Elf32_Ehdr);
  eh.e_phentsize = sizeof(Elf32_Phdr);
  eh.e_phnum = 1;
  Elf32_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_vaddr = ph.p_paddr = base;
  ph.p_filesz = ph.p_memsz = sizeof eh + sizeof ph + sizeof code;
  ph.p_flags = PF_R | PF_X;
  ph.p_align = 0x1000;
  const std::string exe = temp_path("i386-pause");
  {
    std::ofstream f(exe, std::ios::binary);
    f.write(reinterpret_cast<const char*>(&eh), sizeof eh);
    f.write(reinterpret_cast<const char*>(&ph), sizeof ph);
    f.write(reinterpret_cast<const char*>(code), sizeof code);
  }
  chmod(exe.c_str(), 0755);
  std::unique_ptr<Child> c;
  try {
    c = std::make_unique<Child>(std::vector<std::string>{exe});
  } catch (const std::exception& e) {
    GTEST_SKIP() << "this kernel runs no 32-bit programs: " << e.what();
  }
  std::this_thread::sleep_for(Millis(100));
  ProcessResult r = snapshot(c->pid(), temp_path("i386.img"), {"f:i64()"});
  if (r.err.find("exited during") != std::string::npos || r.err.find("does not exist") != std::string::npos)
    GTEST_SKIP() << "this kernel runs no 32-bit programs: " << r.err;
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("x86-64"), std::string::npos) << r.err;
}

TEST_F(ExternalSnapshot, BadCommandLinesAreUsageErrors) {
  ProcessResult r = run({paths::kSubctxTool, "snapshot", "--pid", "1", "-o", temp_path("x.img")});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("--export"), std::string::npos) << r.err;
  r = run({paths::kSubctxTool, "snapshot", "--pid", "1", "-o", temp_path("x.img"), "--export", "f:i64(i64", "--then",
           "continue"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("export \"f\""), std::string::npos) << r.err;
  r = run({paths::kSubctxTool, "snapshot", "--pid", "1", "-o", temp_path("x.img"), "--export", "f:i64()", "--then",
           "stop"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
}

// ---- /proc helpers of the tests below ----

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) {
      std::string v = line.substr(key.size());
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

char state_of(pid_t pid) {
  const std::string s = status_field(pid, "State:");
  return s.empty() ? 0 : s[0];
}

// Until a tracer holds pid (the command has attached), up to timeout.
bool wait_traced(pid_t pid, Millis timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const std::string t = status_field(pid, "TracerPid:");
    if (!t.empty() && t != "0") return true;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return false;
}

// Until pid sleeps with no signal pending (everything sent so far handled).
void wait_quiet(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (state_of(pid) == 'S' && status_field(pid, "SigPnd:").find_first_not_of('0') == std::string::npos &&
        status_field(pid, "ShdPnd:").find_first_not_of('0') == std::string::npos)
      return;
    std::this_thread::sleep_for(Millis(10));
  }
}

// The files beside `image` whose names start with its name (a temporary left behind).
std::vector<std::string> leftovers(const std::string& image) {
  std::vector<std::string> out;
  const std::filesystem::path p(image);
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path()))
    if (e.path().filename().string().rfind(p.filename().string(), 0) == 0) out.push_back(e.path().string());
  return out;
}

std::vector<std::string> snapshot_argv(pid_t pid, const std::string& image) {
  return {paths::kSubctxTool, "snapshot", "--pid", std::to_string(pid), "-o", image, "--export", "nth_prime:i64(i64)"};
}

TEST_F(ExternalSnapshot, RefusesATargetInsideAnInterposedMalloc) {
  // malloc_stats from a preloaded library (as an allocator such as jemalloc
  // interposes malloc): found the way the dynamic linker finds it, before
  // libc's, though the preloaded library lies above libc in memory.
  SpawnOptions o;
  o.env.push_back(std::string("LD_PRELOAD=") + kPreload);
  Child c({kTarget, "malloc", data_file()}, o);
  std::string line;
  ASSERT_TRUE(c.read_line(&line, Millis(10000)) && line == "ready") << line;
  for (int i = 0; i < 200 && state_of(c.pid()) != 'S'; ++i) std::this_thread::sleep_for(Millis(10));
  const std::string image = temp_path("refused-preload.img");
  ProcessResult r = snapshot(c.pid(), image, {"nth_prime:i64(i64)"});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("stopped inside malloc_stats()"), std::string::npos) << r.err;
  EXPECT_TRUE(leftovers(image).empty());
}

// ---- signals sent while the command holds the target ----

TEST_F(ExternalSnapshot, SignalsSentDuringSnapshotsAreNotLost) {
  // The target counts SIGUSR1 and SIGRTMIN in handlers and adds up their
  // sigqueue values; a thread here sends both, all the time, while the
  // command snapshots it four times (the injected calls included).
  Target t("signals", true);
  const pid_t pid = t.pid();
  std::atomic<bool> done{false};
  long rt_sent = 0, rt_sum = 0;
  std::thread sender([&] {
    for (int i = 1; !done; ++i) {
      if (sigqueue(pid, SIGRTMIN, sigval{.sival_int = i}) == 0) ++rt_sent, rt_sum += i;
      if (i % 8 == 0)
        for (int k = 0; k < 3; ++k) sigqueue(pid, SIGUSR1, sigval{.sival_int = i});
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  for (int i = 0; i < 4; ++i) {
    ProcessResult r = snapshot(pid, temp_path("ext-signals.img"), {"nth_prime:i64(i64)", "span_length:i64(str)"});
    EXPECT_TRUE(r.ok()) << r.describe();
    const char state = state_of(pid);
    EXPECT_TRUE(state != 'T' && state != 't') << "the target is left stopped: state " << state;
  }
  done = true;
  sender.join();
  // A last burst while the command certainly holds it: after the detach,
  // the SIGUSR1 burst is delivered (at least once, with the first one's
  // value) and every SIGRTMIN once.
  wait_quiet(pid);
  Child tool(snapshot_argv(pid, temp_path("ext-signals-last.img")));
  ASSERT_TRUE(wait_traced(pid, Millis(10000)));
  constexpr int kLast = 1000000;
  for (int k = 0; k < 3; ++k) sigqueue(pid, SIGUSR1, sigval{.sival_int = kLast});
  for (int k = 1; k <= 5; ++k)
    if (sigqueue(pid, SIGRTMIN, sigval{.sival_int = kLast + k}) == 0) ++rt_sent, rt_sum += kLast + k;
  ProcessResult r = tool.finish(Millis(20000));
  EXPECT_TRUE(r.ok()) << r.describe();
  t.child.close_stdin();  // the target prints its counts and ends
  ProcessResult end = t.child.finish(Millis(10000));
  ASSERT_TRUE(end.ok()) << end.describe();
  long usr1 = -1, last = -1, rt = -1, sum = -1;
  const size_t at = end.out.find("usr1 ");
  ASSERT_NE(at, std::string::npos) << end.out;
  ASSERT_EQ(std::sscanf(end.out.c_str() + at, "usr1 %ld last %ld rt %ld sum %ld", &usr1, &last, &rt, &sum), 4);
  EXPECT_EQ(rt, rt_sent) << "realtime signals lost or doubled";
  EXPECT_EQ(sum, rt_sum) << "their siginfo (sigqueue values) changed";
  EXPECT_GE(usr1, 1);
  EXPECT_EQ(last, kLast) << "the SIGUSR1 burst sent during the last snapshot was not delivered after it";
}

TEST_F(ExternalSnapshot, SigstopSentDuringTheSnapshotLeavesTheTargetStopped) {
  Target t("pause");
  Child tool(snapshot_argv(t.pid(), temp_path("ext-stop.img")));
  ASSERT_TRUE(wait_traced(t.pid(), Millis(10000)));
  kill(t.pid(), SIGSTOP);
  ProcessResult r = tool.finish(Millis(20000));
  EXPECT_TRUE(r.ok()) << r.describe();
  char state = 0;
  for (int i = 0; i < 200 && state != 'T'; ++i, std::this_thread::sleep_for(Millis(10))) state = state_of(t.pid());
  EXPECT_EQ(state, 'T') << "the SIGSTOP sent while the command held the target was lost";
  kill(t.pid(), SIGCONT);
  t.wait_sleeping();
  EXPECT_EQ(state_of(t.pid()), 'S');
  ProcessResult again = snapshot(t.pid(), temp_path("ext-stop-again.img"), {"nth_prime:i64(i64)"});
  EXPECT_TRUE(again.ok()) << again.describe();
}

TEST_F(ExternalSnapshot, TargetOnASigaltstackAboveOtherDataIsNotWrittenTo) {
  // The target waits inside a handler on a small sigaltstack carved from a
  // heap block, a canary just below it: the injected calls run on a stack
  // of their own, so the canary is intact and the target answers.
  ProcessResult tool;
  std::unique_ptr<Target> t;
  subctx::Subcontext sc = snapshot_and_map("altstack", temp_path("ext-altstack.img"), &tool, &t);
  EXPECT_NE(tool.out.find("lazy PLT slots resolved"), std::string::npos) << tool.out;
  expect_answers(sc);
  mm().unmap(sc);
  kill(t->pid(), SIGUSR1);
  std::string line;
  ASSERT_TRUE(t->child.read_line(&line, Millis(10000)));
  EXPECT_EQ(line, "canary intact");
}

// ---- the target or the command ending during the snapshot ----

// A target with `mb` MiB of heap (a copy that takes a while), ready.
std::unique_ptr<Child> heavy_target(int mb) {
  SpawnOptions o;
  o.env.push_back("EXTERNAL_TARGET_HEAP_MB=" + std::to_string(mb));
  auto c = std::make_unique<Child>(std::vector<std::string>{kTarget, "pause", data_file()}, o);
  std::string line;
  if (!c->read_line(&line, Millis(30000)) || line != "ready") throw std::runtime_error("heavy target not ready");
  return c;
}

TEST_F(ExternalSnapshot, TargetKilledDuringTheSnapshotIsReportedAndNothingIsWritten) {
  bool seen = false;
  for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
    auto target = heavy_target(192);
    const std::string image = temp_path("ext-killed.img");
    Child tool(snapshot_argv(target->pid(), image));
    ASSERT_TRUE(wait_traced(target->pid(), Millis(10000)));
    kill(target->pid(), SIGKILL);
    ProcessResult r = tool.finish(Millis(30000));
    if (r.ok()) continue;  // the command was done first: again
    seen = true;
    EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
    for (const char* w : {"exited during the snapshot (killed by SIGKILL)", "no image was written"})
      EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
    EXPECT_TRUE(leftovers(image).empty()) << "left behind: " << leftovers(image).front();
  }
  EXPECT_TRUE(seen) << "the command finished before the target could be killed, 5 times";
}

TEST_F(ExternalSnapshot, CommandInterruptedGivesTheTargetBackAsItWas) {
  bool seen = false;
  for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
    auto target = heavy_target(192);
    const pid_t pid = target->pid();
    const std::string blocked = status_field(pid, "SigBlk:");
    const std::string image = temp_path("ext-interrupted.img");
    Child tool(snapshot_argv(pid, image));
    ASSERT_TRUE(wait_traced(pid, Millis(10000)));
    kill(tool.pid(), attempt % 2 ? SIGTERM : SIGINT);
    ProcessResult r = tool.finish(Millis(30000));
    if (r.ok()) continue;
    seen = true;
    const int sig = attempt % 2 ? SIGTERM : SIGINT;
    EXPECT_TRUE(r.exited && r.exit_code == 128 + sig) << r.describe();
    for (const std::string& w : {std::string("interrupted by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"),
                                 std::string("given back as it was"), std::string("no image was written")})
      EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
    EXPECT_TRUE(leftovers(image).empty()) << "left behind: " << leftovers(image).front();
    // Detached, running, its signal mask as it was; a snapshot works.
    EXPECT_EQ(status_field(pid, "TracerPid:"), "0");
    const char state = state_of(pid);
    EXPECT_TRUE(state == 'S' || state == 'R') << state;
    EXPECT_EQ(status_field(pid, "SigBlk:"), blocked);
    ProcessResult again = snapshot(pid, image, {"nth_prime:i64(i64)"}, {"--then", "kill"});
    EXPECT_TRUE(again.ok()) << again.describe();
  }
  EXPECT_TRUE(seen) << "the command finished before it could be interrupted, 5 times";
}

TEST_F(ExternalSnapshot, CommandKilledDuringTheCopyLeavesTheTargetRunning) {
  // SIGKILL cannot be caught: the kernel detaches the target.  Killed while
  // it copies (its temporary file exists: the calls are over), the target
  // goes on as it was; the temporary file is what remains.
  auto target = heavy_target(192);
  const pid_t pid = target->pid();
  const std::string blocked = status_field(pid, "SigBlk:");
  const std::string image = temp_path("ext-tool-killed.img");
  Child tool(snapshot_argv(pid, image));
  bool copying = false;
  for (int i = 0; i < 20000 && !copying; ++i) {
    for (const auto& f : leftovers(image)) copying |= f.find(".tmp.") != std::string::npos;
    if (!copying) std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
  if (!copying) GTEST_SKIP() << "the command was done before its copy could be caught";
  kill(tool.pid(), SIGKILL);
  ProcessResult r = tool.finish(Millis(20000));
  EXPECT_EQ(r.signal, SIGKILL) << r.describe();
  for (int i = 0; i < 200 && status_field(pid, "TracerPid:") != "0"; ++i) std::this_thread::sleep_for(Millis(10));
  EXPECT_EQ(status_field(pid, "TracerPid:"), "0");
  const char state = state_of(pid);
  EXPECT_TRUE(state == 'S' || state == 'R') << "state " << state;
  EXPECT_EQ(status_field(pid, "SigBlk:"), blocked);
  ProcessResult again = snapshot(pid, image, {"nth_prime:i64(i64)"}, {"--then", "kill"});
  EXPECT_TRUE(again.ok()) << again.describe();
}

// ---- the launcher form: subctx snapshot ... -- PROGRAM ARGS ----

std::vector<std::string> launcher_argv(const std::string& image, const std::vector<std::string>& ready,
                                       const std::vector<std::string>& program) {
  std::vector<std::string> argv{paths::kSubctxTool, "snapshot", "-o", image};
  for (const auto& e : kExports) argv.insert(argv.end(), {"--export", e});
  argv.insert(argv.end(), ready.begin(), ready.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  return argv;
}

// Launches the target with `ready` and the environment `env`, maps the
// image, checks the answers; a layout that meets this process's is
// launched again.
void launch_and_check(const std::vector<std::string>& ready, const std::vector<std::string>& env) {
  const std::string image = temp_path("ext-launched.img");
  SpawnOptions o;
  o.env = env;
  for (int attempt = 1;; ++attempt) {
    ProcessResult r = run(launcher_argv(image, ready, {kTarget, "pause", data_file()}), o);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_NE(r.out.find("killed"), std::string::npos) << "--then kill is the launcher's default: " << r.out;
    try {
      subctx::Subcontext sc = mm().request_map(image);
      expect_answers(sc);
      mm().unmap(sc);
      return;
    } catch (const subctx::AddressConflict&) {
      if (attempt == 5) throw;
    }
  }
}

TEST_F(ExternalSnapshot, LauncherAfterSeconds) { launch_and_check({"--after", "0.5"}, {}); }

TEST_F(ExternalSnapshot, LauncherOnASignalFromTheProgram) {
  launch_and_check({"--on-signal", "USR1"}, {"EXTERNAL_TARGET_READY_SIGNAL=1"});
}

TEST_F(ExternalSnapshot, LauncherOnALineOnADescriptor) {
  // "loading" first, then "status: all ready"; the program closes the
  // descriptor once it has written (else it would be a pipe in the image).
  launch_and_check({"--ready-fd", "7", "--ready-text", "all ready"}, {"EXTERNAL_TARGET_READY_FD=7"});
}

TEST_F(ExternalSnapshot, LauncherThenContinueLeavesTheProgramRunning) {
  // Its output away from the command's pipes, so that the command's end is seen.
  const std::string image = temp_path("ext-launched-continue.img");
  SpawnOptions o;
  o.env = {"EXTERNAL_TARGET_READY_SIGNAL=1"};
  ProcessResult r =
      run(launcher_argv(image, {"--on-signal", "SIGUSR1", "--then", "continue"},
                        {"/bin/sh", "-c", "exec \"$0\" pause \"$1\" >/dev/null 2>&1", kTarget, data_file()}),
          o);
  ASSERT_TRUE(r.ok()) << r.describe();
  int pid = 0;
  const size_t at = r.out.find("; process ");
  ASSERT_NE(at, std::string::npos) << r.out;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at, "; process %d continues", &pid), 1) << r.out;
  const char state = state_of(pid);
  EXPECT_TRUE(state == 'S' || state == 'R') << "state " << state;
  EXPECT_EQ(status_field(pid, "TracerPid:"), "0");
  kill(pid, SIGKILL);
}

void expect_launch_refused(const std::vector<std::string>& ready, const std::vector<std::string>& program,
                           std::initializer_list<std::string> words, const std::vector<std::string>& env = {}) {
  const std::string image = temp_path("ext-launch-refused.img");
  SpawnOptions o;
  o.env = env;
  ProcessResult r = run(launcher_argv(image, ready, program), o);
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  for (const auto& w : words) EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
  EXPECT_TRUE(leftovers(image).empty()) << "left behind: " << leftovers(image).front();
}

TEST_F(ExternalSnapshot, LauncherReportsAProgramThatCannotStart) {
  expect_launch_refused({"--after", "0"}, {temp_path("no-such-program")},
                        {"cannot start", "no-such-program", "No such file or directory", "check the program's path"});
}

TEST_F(ExternalSnapshot, LauncherReportsAProgramThatExitsBeforeItIsReady) {
  expect_launch_refused({"--on-signal", "USR1"}, {kTarget, "exit-early", data_file()},
                        {"exited before it was ready (exit status 3)", "nothing to snapshot"});
  expect_launch_refused({"--ready-fd", "7"}, {kTarget, "pause", temp_path("no-such-data-file")},
                        {"exited before it was ready (exit status 1)"}, {"EXTERNAL_TARGET_READY_FD=7"});
}

TEST_F(ExternalSnapshot, LauncherReportsReadinessThatNeverComes) {
  expect_launch_refused({"--on-signal", "USR2", "--timeout", "0.5"}, {kTarget, "pause", data_file()},
                        {"was not ready within 0.5 s (no SIGUSR2 from it)", "it was killed", "--timeout SECONDS"});
  expect_launch_refused({"--ready-fd", "7", "--ready-text", "never said", "--timeout", "0.5"},
                        {kTarget, "pause", data_file()},
                        {"was not ready within 0.5 s", "closed descriptor 7 without a line containing \"never said\""},
                        {"EXTERNAL_TARGET_READY_FD=7"});
}

TEST_F(ExternalSnapshot, LauncherReportsAProgramThatExitsRightAfterItIsReady) {
  // It says ready and exits at once: held before its exit (an image, and
  // the command kills it), or gone
  // before the command holds it (a refusal).  Which one is a race; both
  // must be clean, five times.
  const std::string image = temp_path("ext-exit-after-ready.img");
  SpawnOptions o;
  o.env = {"EXTERNAL_TARGET_READY_FD=7"};
  for (int i = 0; i < 5; ++i) {
    unlink(image.c_str());
    ProcessResult r = run(launcher_argv(image, {"--ready-fd", "7"}, {kTarget, "exit-after-ready", data_file()}), o);
    if (r.ok()) {
      ProcessResult verify = run({paths::kSubctxTool, "verify", image});
      EXPECT_TRUE(verify.ok()) << verify.describe();
      EXPECT_EQ(leftovers(image), std::vector<std::string>{image});
      continue;
    }
    EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
    EXPECT_TRUE(r.err.find("exited during the snapshot (exit status 0)") != std::string::npos ||
                r.err.find("exited before it was ready (exit status 0)") != std::string::npos)
        << r.err;
    EXPECT_TRUE(leftovers(image).empty()) << "left behind: " << leftovers(image).front();
  }
}

TEST_F(ExternalSnapshot, LauncherInterruptedWhileWaitingKillsTheProgram) {
  // SIGTERM while the command waits for a readiness that does not come:
  // the program it started is killed and reaped, the command says so.
  const std::string image = temp_path("ext-launch-interrupted.img");
  Child tool(launcher_argv(image, {"--on-signal", "USR2", "--timeout", "30"}, {kTarget, "pause", data_file()}));
  pid_t program = 0;
  for (int i = 0; i < 500 && !program; ++i) {  // the command's child, once started
    std::ifstream f("/proc/" + std::to_string(tool.pid()) + "/task/" + std::to_string(tool.pid()) + "/children");
    if (!(f >> program)) program = 0;
    if (!program) std::this_thread::sleep_for(Millis(10));
  }
  ASSERT_NE(program, 0) << "the command started no program";
  std::this_thread::sleep_for(Millis(100));  // in its wait
  kill(tool.pid(), SIGTERM);
  ProcessResult r = tool.finish(Millis(20000));
  EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGTERM) << r.describe();
  for (const char* w : {"interrupted by SIGTERM", "started for the snapshot, was killed", "no image was written"})
    EXPECT_NE(r.err.find(w), std::string::npos) << "lacks \"" << w << "\": " << r.err;
  EXPECT_NE(kill(program, 0), 0) << "the program is still there";
  EXPECT_TRUE(leftovers(image).empty());
}

TEST_F(ExternalSnapshot, LauncherBadCommandLinesAreUsageErrors) {
  const std::string image = temp_path("x.img");
  auto usage = [&](std::vector<std::string> args, const std::string& word) {
    std::vector<std::string> argv{paths::kSubctxTool, "snapshot", "-o", image, "--export", "f:i64()"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = run(argv);
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_NE(r.err.find(word), std::string::npos) << r.err;
  };
  usage({"--", kTarget}, "say when PROGRAM is ready");
  usage({"--pid", "1", "--after", "1", "--", kTarget}, "either --pid PID");
  usage({"--pid", "1", "--after", "1"}, "go with -- PROGRAM");
  usage({"--after", "1", "--on-signal", "USR1", "--", kTarget}, "give one of --after, --on-signal and --ready-fd");
  usage({"--on-signal", "NOPE", "--", kTarget}, "a signal such as USR1");
  usage({"--after", "1", "--ready-text", "x", "--", kTarget}, "--ready-text goes with --ready-fd");
  usage({"--after", "1", "--"}, "-- must be followed by PROGRAM");
}

// ---- the refusal messages for what this machine cannot produce ----

TEST(ExternalSnapshotMessages, YamaPtraceScopeSaysWhatToDo) {
  subctx::external::PtraceFacts f;
  f.pid = 42;
  f.err = EPERM;
  f.tracer_pid = "0";
  f.uids = "1000\t1000\t1000\t1000";
  f.our_uid = 1000;
  f.yama_scope = "1";
  std::string m = subctx::external::ptrace_refusal_message(f);
  for (const char* w : {"not allowed to trace process 42", "kernel.yama.ptrace_scope is 1",
                        "only a process's ancestors", "PR_SET_PTRACER", "launcher form", "as root"})
    EXPECT_NE(m.find(w), std::string::npos) << "lacks \"" << w << "\": " << m;
  f.privileged = true;  // CAP_SYS_PTRACE passes scope 1: then it is not Yama
  EXPECT_EQ(subctx::external::ptrace_refusal_message(f).find("ptrace_scope"), std::string::npos);
  f.yama_scope = "2";
  m = subctx::external::ptrace_refusal_message(f);
  EXPECT_NE(m.find("ptrace_scope is 2 (admin only): run this command as root"), std::string::npos) << m;
  f.yama_scope = "3";
  m = subctx::external::ptrace_refusal_message(f);
  EXPECT_NE(m.find("ptrace_scope is 3: no process may be traced until reboot"), std::string::npos) << m;
}

TEST(ExternalSnapshotMessages, OtherPtraceRefusals) {
  subctx::external::PtraceFacts f;
  f.pid = 42;
  f.err = EPERM;
  f.tracer_pid = "77";
  EXPECT_NE(subctx::external::ptrace_refusal_message(f).find("already traced by process 77"), std::string::npos);
  f.tracer_pid = "0";
  f.uids = "0\t0\t0\t0";
  f.our_uid = 1000;
  std::string m = subctx::external::ptrace_refusal_message(f);
  EXPECT_NE(m.find("it runs as uid 0 and this command as uid 1000"), std::string::npos) << m;
  f.our_uid = 0;
  m = subctx::external::ptrace_refusal_message(f);
  EXPECT_NE(m.find("not dumpable"), std::string::npos) << m;
  f.err = ESRCH;
  EXPECT_EQ(subctx::external::ptrace_refusal_message(f), "process 42 does not exist (or has exited)");
}

}  // namespace
}  // namespace e2e
