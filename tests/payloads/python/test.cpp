// The CPython payload: a real client process's outputs equal a fresh native
// process's for every input (and backend); in process, the modules were
// imported before the snapshot, exceptions are results, a module imported
// inside a call is read from disk (and a rule can forbid that), state is
// private to the client, and a reset brings the snapshot's interpreter back.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cerrno>

#include <fstream>
#include <string>
#include <subctx/subctx.hpp>

#include "inputs.hpp"
#include "payload_test.hpp"

namespace {

using payload::testing::image;

PAYLOAD_COMPARISON_TESTS(PythonPayload);

std::string py(const subctx::Subcontext& sc, const std::string& source) {
  return sc.call<const char*(const char*)>("run", source.c_str());
}

class PythonInProcess : public ::testing::Test {
 protected:
  void SetUp() override { sc_ = subctx::Matchmaker::instance().request_map(image()); }
  void TearDown() override {
    if (sc_.valid()) subctx::Matchmaker::instance().unmap(sc_);
  }
  subctx::Subcontext sc_;
};

TEST_F(PythonInProcess, TheModulesWereImportedBeforeTheSnapshot) {
  EXPECT_EQ(py(sc_, "sorted(m for m in ('json', 're', 'decimal', 'collections', '_decimal') if m in sys.modules)"),
            R"(["_decimal", "collections", "decimal", "json", "re"])");
  EXPECT_EQ(py(sc_, "len(PRIMES), sys.flags.hash_randomization, sys.flags.isolated"), "[9592, 0, 1]");
  EXPECT_EQ(py(sc_, "sys.version_info[:2]"), "[3, 11]");
  EXPECT_EQ(py(sc_, "json.loads('[1, {\"a\": 2}]')[1]['a'] + 40"), "42");
}

TEST_F(PythonInProcess, ExceptionsAreResultsAndTheInterpreterGoesOn) {
  EXPECT_EQ(py(sc_, "1 / 0"), "error: ZeroDivisionError: division by zero");
  EXPECT_EQ(py(sc_, "raise SystemExit(7)"), "error: SystemExit: 7");
  EXPECT_EQ(py(sc_, "def f(:"), "error: SyntaxError: invalid syntax (<input>, line 1)");
  EXPECT_EQ(py(sc_, "def down(n): return down(n + 1)\ndown(0)"),
            "error: RecursionError: maximum recursion depth exceeded");
  EXPECT_EQ(py(sc_, "6 * 7"), "42");
}

// os._exit() is the process's end in a native run; inside a subcontext it
// ends the call (exit_group is the Matchmaker's), the client goes on and
// the default fault policy gives the next call the snapshot's interpreter.
TEST_F(PythonInProcess, OsExitEndsTheCallNotTheClient) {
  EXPECT_EQ(py(sc_, "visit(), visit()"), "[1, 2]");
  try {
    py(sc_, "import os; os._exit(9)");
    FAIL() << "os._exit returned";
  } catch (const subctx::SubcontextFault& e) {
    EXPECT_EQ(e.exit_status(), 9);
    EXPECT_EQ(e.export_name(), "run");
    EXPECT_TRUE(e.reset_done());
  }
  EXPECT_EQ(py(sc_, "visit()"), "1");
}

// A module nobody imported before the snapshot: the import inside the call
// reads /usr/lib/python3.11 (stat, openat, read: the subcontext's own
// system calls).  A client's rule denying openat makes it a Python error.
TEST_F(PythonInProcess, ImportingANewModuleReadsItFromDiskUnlessARuleForbidsIt) {
  EXPECT_EQ(py(sc_, "'colorsys' in sys.modules"), "false");
  EXPECT_EQ(py(sc_, "import colorsys; result = [round(v, 4) for v in colorsys.rgb_to_hsv(0.2, 0.4, 0.4)]"),
            "[0.5, 0.5, 0.4]");

  // An image maps once per client (at the server's addresses): map it again with the rule.
  subctx::Matchmaker::instance().unmap(sc_);
  subctx::MapOptions options;
  options.syscalls = {{"openat", subctx::SyscallRule::Action::Deny, EACCES}};
  sc_ = subctx::Matchmaker::instance().request_map(image(), options);
  const std::string out = py(sc_, "import colorsys");
  EXPECT_EQ(out.rfind("error: PermissionError: [Errno 13] Permission denied: ", 0), 0u) << out;
  EXPECT_EQ(py(sc_, "'colorsys' in sys.modules, json.dumps([1])"), R"([false, "[1]"])");
}

// Python threads run inside the subcontext (docs/threads.md) under the
// none and pkey backends; under mprotect, which refuses threads, Python
// code gets Python's own error and the interpreter goes on.
TEST(PythonThreads, AThreadStartedAndJoinedInsideACall) {
  const char* const code =
      "import threading; r = []; t = threading.Thread(target=lambda: r.append(sum(range(1000)))); t.start(); "
      "t.join(); result = r[0], threading.active_count()";
  for (const char* backend : {"none", "pkey", "mprotect"}) {
    SCOPED_TRACE(backend);
    if (std::string(backend) == "pkey" && !subctx::testing::pkeys_work()) continue;
    subctx::MapOptions o;
    o.protection = subctx::testing::protection_named(backend);
    subctx::Subcontext sc = subctx::Matchmaker::instance().request_map(image(), o);
    EXPECT_EQ(py(sc, code),
              std::string(backend) == "mprotect" ? "error: RuntimeError: can't start new thread" : "[499500, 1]");
    EXPECT_EQ(py(sc, "len(PRIMES)"), "9592");
    subctx::Matchmaker::instance().unmap(sc);
  }
}

// Issue 19: subprocess.run inside a call (vfork + execve of the
// interpreter's own _posixsubprocess) when the policy lets the image start
// programs; PermissionError when it does not (the image does not declare it).
TEST(PythonChildren, SubprocessRunGivesTheProgramsOutput) {
  const char* const code =
      "import subprocess; p = subprocess.run(['/bin/echo', 'x'], capture_output=True); "
      "result = p.stdout.decode(), p.returncode";
  subctx::Matchmaker& mm = subctx::Matchmaker::instance();
  for (const char* backend : {"none", "pkey", "mprotect"}) {
    SCOPED_TRACE(backend);
    if (std::string(backend) == "pkey" && !subctx::testing::pkeys_work()) continue;
    subctx::MapOptions o;
    o.protection = subctx::testing::protection_named(backend);
    mm.set_policy("allow spawn\nallow map\n");
    subctx::Subcontext sc = mm.request_map(image(), o);
    EXPECT_EQ(py(sc, code), "[\"x\\n\", 0]");
    EXPECT_EQ(py(sc, "subprocess.run(['/bin/sh', '-c', 'exit 3']).returncode"), "3");
    mm.clear_policy();
    EXPECT_EQ(py(sc, code).rfind("error: PermissionError", 0), 0u) << py(sc, code);
    mm.unmap(sc);
  }
}

// A server whose interpreter runs a second thread at snapshot time is
// refused, with the reason, and writes no image.
TEST(PythonServer, AThreadRunningAtSnapshotTimeIsRefused) {
  const std::string path = payload::testing::temp_dir() + "/threaded.img";
  e2e::SpawnOptions options;
  options.env = {"SUBCTX_PAYLOAD_PYTHON_THREAD=1"};
  e2e::ProcessResult r = e2e::run({PAYLOAD_SERVER, "snapshot", path}, options, e2e::Millis{60000});
  EXPECT_FALSE(r.ok()) << r.describe();
  EXPECT_NE(r.err.find("2 threads are running; an image is taken from a single-threaded moment"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("start lazily, in the first call"), std::string::npos) << r.err;
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "a refused snapshot left an image behind";
}

// A file Python keeps open (a global file object) is a descriptor of the
// client process; the reset that forgets the object closes it.
TEST_F(PythonInProcess, FilesLeftOpenAreClosedByTheReset) {
  EXPECT_EQ(py(sc_, "kept = open('/proc/self/status'); result = kept.readline().split(':')[0]"), R"("Name")");
  EXPECT_EQ(sc_.memory().open_fds, 1u);
  EXPECT_EQ(py(sc_, "kept.closed"), "false");
  EXPECT_EQ(sc_.reset().fds_closed, 1u);
  EXPECT_EQ(sc_.memory().open_fds, 0u);
  EXPECT_EQ(py(sc_, "'kept' in globals()"), "false");
  EXPECT_EQ(py(sc_, "with open('/proc/self/status') as f: result = len(f.readline()) > 0"), "true");
  EXPECT_EQ(sc_.memory().open_fds, 0u) << "a file closed by Python is forgotten";
}

TEST_F(PythonInProcess, StateIsPrivateToTheClientAndResetBringsTheSnapshotBack) {
  EXPECT_EQ(py(sc_, "visit()"), "1");
  EXPECT_EQ(py(sc_, "visit()"), "2");
  EXPECT_EQ(py(sc_, "answer = 42; PRIMES.clear(); decimal.getcontext().prec = 5"), "null");
  // A second client process sees the snapshot's interpreter, not ours.
  const std::string inputs = payload::testing::temp_dir() + "/second.txt";
  std::ofstream(inputs) << "visit()\n%%\n'answer' in globals(), len(PRIMES)\n%%\nDecimal(1) / 7\n";
  e2e::ProcessResult r = payload::testing::run_client("mprotect", {PAYLOAD_CLIENT, image(), inputs});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(payload::parse_outputs(r.out),
            (std::vector<std::string>{"1", "[false, 9592]",
                                      R"("0.14285714285714285714285714285714285714285714285714")"}));
  // Ours goes on, until a reset.
  EXPECT_EQ(py(sc_, "visit(), answer, len(PRIMES), Decimal(1) / 7"), R"([3, 42, 0, "0.14286"])");
  sc_.reset();
  EXPECT_EQ(py(sc_, "visit(), 'answer' in globals(), len(PRIMES), decimal.getcontext().prec"), "[1, false, 9592, 50]");
}

TEST_F(PythonInProcess, MemoryGrowsInsideTheSubcontextAndComesBackAtReset) {
  EXPECT_EQ(py(sc_, "1"), "1");
  const subctx::MemoryInfo before = sc_.memory();
  EXPECT_EQ(py(sc_, "big = [str(i) for i in range(1000000)]; result = len(big)"), "1000000");
  const subctx::MemoryInfo grown = sc_.memory();
  auto pages = [](const subctx::MemoryInfo& m) { return m.dirty_pages + m.mapped_bytes / 4096; };
  EXPECT_GT(pages(grown), pages(before) + 10000) << "a million strings take tens of megabytes";
  sc_.reset();
  const subctx::MemoryInfo after = sc_.memory();
  EXPECT_LE(after.dirty_pages, before.dirty_pages);
  EXPECT_LE(after.mapped_bytes, before.mapped_bytes);
  EXPECT_EQ(py(sc_, "'big' in globals()"), "false");
}

}  // namespace
