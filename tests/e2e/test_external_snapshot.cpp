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

#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

constexpr const char* kTarget = E2E_EXTERNAL_TARGET;
constexpr const char* kCxxTarget = E2E_EXTERNAL_CXX_TARGET;
constexpr const char* kSelf = E2E_EXTERNAL_SELF;
constexpr const char* kSqliteTarget = E2E_EXTERNAL_SQLITE_TARGET;

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
    "count_primes_below:i64(i64)", "nth_prime:i64(i64)",           "data_file_size:i64()", "span_length:i64(str)",
    "parse_and_add:i64(str,i64)",  "sum_of_first_primes:i64(i64)", "greeting_length:i64()"};

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

}  // namespace
}  // namespace e2e
