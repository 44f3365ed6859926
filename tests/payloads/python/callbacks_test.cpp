// The CPython payload's callbacks (issue 16, exports.cpp): Python scripts in
// the image call the client through the built-in module `host`, per
// backend.  Results come back through Python; Python's own errors around
// host calls stay Python errors; an unbound import ends the call with
// SubcontextFault naming it, an exception of a callback reaches the caller,
// and both bring the snapshot's interpreter back; a callback may evaluate
// Python in the same interpreter (re-entry).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "payload_test.hpp"

namespace {

using Add = int64_t(int64_t, int64_t);
using Log = int64_t(const char*);

class PythonCallbacks : public payload::testing::MappedImageTest {
 protected:

  // host.add adds, host.log keeps the line and answers its length.
  void bind_defaults() override {
    sc_.bind<Add>("host_add", [this](int64_t a, int64_t b) {
      ++adds_;
      return a + b;
    });
    sc_.bind<Log>("host_log", [this](const char* text) {
      logged_.emplace_back(text);
      return static_cast<int64_t>(logged_.back().size());
    });
  }

  std::string py(const std::string& source) const { return sc_.call<const char*(const char*)>("run", source.c_str()); }
  // The value of an expression that may use the module host.
  std::string with_host(const std::string& expression) const { return py("import host\nresult = " + expression); }

  int adds_ = 0;
  std::vector<std::string> logged_;
};

TEST_P(PythonCallbacks, AScriptCallsTheHost) {
  EXPECT_EQ(std::string(sc_.call<const char*(int64_t)>("py_host_sum", 1000)), "499500");
  EXPECT_EQ(adds_, 1000);
  EXPECT_EQ(logged_, (std::vector<std::string>{"sum below 1000: 499500"}));
  EXPECT_EQ(with_host("host.add(2, 40), host.log('héllo'), host.__name__"), R"([42, 6, "host"])");
  EXPECT_EQ(logged_.back(), "héllo") << "UTF-8 reaches the client whole";
  EXPECT_EQ(with_host("sorted(map(lambda i: host.add(i, -10), range(3)))"), "[-10, -9, -8]");
  EXPECT_EQ(adds_, 1004);
}

TEST_P(PythonCallbacks, PythonErrorsAroundHostCallsArePythonErrors) {
  EXPECT_EQ(py("import host; host.add(1, 'x')"), "error: TypeError: 'str' object cannot be interpreted as an integer");
  EXPECT_EQ(py("import host; host.add(2 ** 70, 1)"), "error: OverflowError: int too big to convert");
  EXPECT_EQ(py("import host; host.log()"), "error: TypeError: log() takes exactly 1 argument (0 given)");
  EXPECT_EQ(adds_, 0) << "argument errors are raised before any callback";
  EXPECT_TRUE(logged_.empty());
  // The callback ran, then the script failed: an error result, the interpreter goes on.
  EXPECT_EQ(py("import host; host.add(1, 1) / 0"), "error: ZeroDivisionError: division by zero");
  EXPECT_EQ(adds_, 1);
  // The client's refusal is a RuntimeError the script can catch.
  sc_.bind<Log>("host_log", [](const char*) -> int64_t { return -7; });
  EXPECT_EQ(py("import host; host.log('x')"), "error: RuntimeError: host.log: the client refused (-7)");
  EXPECT_EQ(py("import host\ntry:\n    host.log('x')\nexcept RuntimeError as e:\n    result = 'caught: %s' % e"),
            R"x("caught: host.log: the client refused (-7)")x");
}

// The failing call ends with the subcontext reset (the default policy):
// the interpreter's state from before is gone, and the next call works.
TEST_P(PythonCallbacks, AnUnboundImportFailsTheCallNamingItAndTheClientGoesOn) {
  EXPECT_EQ(py("visit(), visit()"), "[1, 2]");
  sc_.unbind("host_add");
  try {
    py("import host; host.log('before'); host.add(1, 2)");
    FAIL() << "an unbound import returned";
  } catch (const subctx::SubcontextFault& e) {
    EXPECT_EQ(e.code(), subctx::Errc::Fault);
    EXPECT_EQ(e.import_name(), "host_add");
    EXPECT_EQ(e.export_name(), "run");
    EXPECT_TRUE(e.reset_done());
    const std::string what = e.what();
    EXPECT_NE(what.find("import \"host_add\" (i64(i64,i64))"), std::string::npos) << what;
    EXPECT_NE(what.find("has not bound"), std::string::npos) << what;
  }
  EXPECT_EQ(logged_, (std::vector<std::string>{"before"})) << "the bound import ran before the unbound one";
  EXPECT_EQ(py("visit()"), "1");
  bind_defaults();
  EXPECT_EQ(with_host("host.add(20, 22)"), "42");
}

TEST_P(PythonCallbacks, ACallbacksExceptionReachesTheCallerAndTheSnapshotComesBack) {
  EXPECT_EQ(py("answer = 42"), "null");
  sc_.bind<Log>("host_log",
                [](const char* text) -> int64_t { throw std::invalid_argument(std::string("no: ") + text); });
  try {
    py("import host; host.log('x' * 3)");
    FAIL() << "the callback's exception did not reach the caller";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "no: xxx");
  }
  EXPECT_EQ(sc_.memory().faults, 1u);
  EXPECT_EQ(py("'answer' in globals(), len(PRIMES)"), "[false, 9592]");
}

// host.log's callback evaluates its text in the same interpreter: a nested
// call of "run" while the outer script waits in host.log.
TEST_P(PythonCallbacks, ACallbackEvaluatesPythonInTheSameInterpreter) {
  sc_.bind<Log>("host_log", [this](const char* text) -> int64_t { return std::stoll(py(text)); });
  EXPECT_EQ(with_host("host.log('6 * 7') + 1"), "43");
  EXPECT_EQ(py("import host; result = [host.log('visit()') for _ in range(3)]"), "[1, 2, 3]");
}

INSTANTIATE_TEST_SUITE_P(Backends, PythonCallbacks, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
