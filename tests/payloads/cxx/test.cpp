// The C++ payload's tests: a real client's outputs equal a native run's
// (PAYLOAD_COMPARISON_TESTS), and in this process, which maps the image
// itself: exceptions thrown and caught inside the subcontext, the client's
// own exceptions and RAII around calls, an exception that escapes an export
// (a fault, then the automatic reset), regexes compiled before the
// snapshot, iostreams formatting.
#include <signal.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <subctx/subctx.hpp>

#include "payload_test.hpp"

PAYLOAD_COMPARISON_TESTS(CxxPayload);

namespace {

using payload::testing::image;

subctx::Matchmaker& mm() { return subctx::Matchmaker::instance(); }

// Counts destructor runs of the client's frames that a call unwinds.
struct Sentinel {
  int* destroyed;
  ~Sentinel() { ++*destroyed; }
};

class CxxInProcess : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    PAYLOAD_SKIP_UNLESS_BACKEND_WORKS(GetParam());
    subctx::MapOptions o;
    o.protection = payload::testing::protection_named(GetParam());
    o.on_fault = subctx::OnFault::Reset;  // whatever SUBCTX_ON_FAULT says
    sc_ = mm().request_map(image(), o);
    run_ = sc_.function<const char*(const char*)>("run");
  }
  void TearDown() override {
    if (sc_.valid()) mm().unmap(sc_);
  }
  std::string run(const std::string& input) { return run_(input.c_str()); }
  int64_t escape(int64_t n) { return sc_.call<int64_t(int64_t)>("escape", n); }

  subctx::Subcontext sc_;
  subctx::Function<const char*(const char*)> run_;
};

TEST_P(CxxInProcess, ExceptionsThrownAndCaughtInsideReturnTheErrorText) {
  // Thrown three frames deep in the parser, wrapped by throw_with_nested.
  EXPECT_EQ(run("eval 3*(4+5)/0"),
            "error: EvalError: while evaluating '3*(4+5)/0': MathError: division by zero at column 8");
  // Each function call adds a level of nesting on the way out.
  EXPECT_EQ(run("eval sqrt(1 + max(2, log(0)))"),
            "error: EvalError: while evaluating 'sqrt(1 + max(2, log(0)))': EvalError: in sqrt() called at column 1: "
            "EvalError: in max() called at column 10: EvalError: in log() called at column 17: MathError: logarithm "
            "of non-positive number 0");
  EXPECT_EQ(run("throw nested"), "error: EvalError: outer: std::runtime_error: middle: MathError: innermost");
  // Thrown by the standard library itself.
  EXPECT_EQ(run("throw out_of_range"),
            "error: std::out_of_range: vector::_M_range_check: __n (which is 5) >= this->size() (which is 3)");
  EXPECT_EQ(run("throw bad_weak_ptr"), "error: std::bad_weak_ptr: bad_weak_ptr");
  EXPECT_EQ(run("throw bad_alloc"), "error: std::bad_alloc: std::bad_alloc");
  EXPECT_EQ(run("throw int"), "error: int 42");
  EXPECT_EQ(run("frobnicate"), "error: UsageError: unknown command 'frobnicate'");
  // None of it was a fault: the subcontext goes on as it was.
  EXPECT_EQ(run("eval x = 6*7"), "42");
  EXPECT_EQ(run("eval x/2"), "21");
  EXPECT_EQ(sc_.memory().faults, 0u);
}

TEST_P(CxxInProcess, ClientExceptionsAndRaiiWorkAroundCalls) {
  // The client's own exception, thrown after a call, unwinds the client's frame.
  int destroyed = 0;
  try {
    Sentinel s{&destroyed};
    ASSERT_EQ(run("eval 1+1"), "2");
    throw std::runtime_error("the client's own");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the client's own");
  }
  EXPECT_EQ(destroyed, 1);

  // A call that faults: the fault arrives as SubcontextFault at the call
  // site, never as the subcontext's exception, and the client's frames unwind.
  destroyed = 0;
  bool caught = false;
  try {
    Sentinel outer{&destroyed};
    [&] {
      Sentinel inner{&destroyed};
      escape(9);
    }();
    ADD_FAILURE() << "escape(9) returned";
  } catch (const subctx::SubcontextFault& f) {
    caught = true;
    EXPECT_EQ(destroyed, 2) << "the client's frames did not unwind";
  } catch (...) {
    ADD_FAILURE() << "something other than SubcontextFault reached the client";
  }
  EXPECT_TRUE(caught);

  // The client's exception machinery still works, nested exceptions included.
  try {
    try {
      throw std::out_of_range("inner");
    } catch (...) {
      std::throw_with_nested(std::runtime_error("outer"));
    }
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "outer");
    try {
      std::rethrow_if_nested(e);
      ADD_FAILURE() << "no nested exception";
    } catch (const std::out_of_range& inner) {
      EXPECT_STREQ(inner.what(), "inner");
    }
  }
  EXPECT_EQ(run("eval 2+3"), "5");
}

TEST_P(CxxInProcess, AnEscapingExceptionIsAFaultAndTheSubcontextIsReset) {
  const std::string stats = run("stats");
  EXPECT_EQ(escape(0), 2) << "pi and e are the variables of the snapshot";
  EXPECT_EQ(run("eval kept = 7"), "7");
  EXPECT_EQ(escape(0), 3);

  bool caught = false;
  try {
    escape(5);
  } catch (const subctx::SubcontextFault& f) {
    caught = true;
    // docs/containment.md: an exception that escapes the export is std::terminate, i.e. abort().
    EXPECT_EQ(f.code(), subctx::Errc::Fault);
    EXPECT_EQ(f.signal(), SIGABRT);
    EXPECT_EQ(f.export_name(), "escape");
    EXPECT_TRUE(f.reset_done());
    EXPECT_FALSE(f.frames().empty());
    const std::string what = f.what();
    for (const char* word : {"export \"escape\"", "SIGABRT", "reset to its snapshot"})
      EXPECT_NE(what.find(word), std::string::npos) << "message lacks \"" << word << "\": " << what;
  }
  ASSERT_TRUE(caught) << "escape(5) did not fail";

  // Reset to the snapshot: the variables set since (by run and by escape) are gone.
  EXPECT_EQ(run("eval kept"),
            "error: EvalError: while evaluating 'kept': NameError: unknown variable 'kept' at column 1");
  EXPECT_EQ(run("eval escaped"),
            "error: EvalError: while evaluating 'escaped': NameError: unknown variable 'escaped' at column 1");
  EXPECT_EQ(escape(0), 2);
  EXPECT_EQ(run("stats"), stats);
  EXPECT_EQ(run("path n0 n42"),
            "20 hops: n0 n5 n36 n253 n272 n105 n136 n53 n72 n41 n288 n149 n144 n109 n164 n249 n242 n195 n166 n263 n42");
  const subctx::MemoryInfo m = sc_.memory();
  EXPECT_EQ(m.faults, 1u);
  EXPECT_GE(m.resets, 1u);

  // Poisoned instead: no call until reset().
  sc_.set_on_fault(subctx::OnFault::Poison);
  EXPECT_THROW(escape(1), subctx::SubcontextFault);
  EXPECT_THROW(run("stats"), subctx::SubcontextPoisoned);
  sc_.reset();
  EXPECT_EQ(run("stats"), stats);
}

TEST_P(CxxInProcess, RegexesCompiledBeforeTheSnapshotAreUsed) {
  const std::string listing = run("regexes");
  EXPECT_EQ(listing.substr(0, listing.find('\n')), "compiled at init: 12, compiled since: 0");
  EXPECT_NE(listing.find("\nhello    ECMAScript|icase     marks=0"), std::string::npos) << listing;
  EXPECT_EQ(run("regex date due 2024-01-15 or later"), "match at 4: \"2024-01-15\" [1]=\"2024\" [2]=\"01\" [3]=\"15\"");
  EXPECT_EQ(run("regex hello Well, BonJour there"), "match at 6: \"BonJour\"");
  EXPECT_EQ(run("regex-all hex 0x1F and 0XAB but not x12"), "2 matches: 0x1F | 0XAB");
  EXPECT_EQ(run("replace date $3/$2/$1 from 2024-01-15 to 2025-12-31"), "from 15/01/2024 to 31/12/2025");
  EXPECT_EQ(run("regex nosuch x"), "error: NameError: no regex named 'nosuch'");
  // Using them compiled nothing; a pattern compiled inside a call is counted apart.
  EXPECT_EQ(run("regexes"), listing);
  EXPECT_EQ(run("match b+ aabbbc"), "match at 2: \"bbb\"");
  const std::string after = run("regexes");
  EXPECT_EQ(after.substr(0, after.find('\n')), "compiled at init: 12, compiled since: 1");
}

TEST_P(CxxInProcess, IostreamsFormattingIsIdentical) {
  EXPECT_EQ(run("format 3.14159 10 4"),
            "fixed   [    3.1416]\n"
            "sci     [3.1416e+00]\n"
            "left    [3.1416****]\n"
            "general [     3.142]\n"
            "hexfloat[0x1.921f9f01b866ep+1]\n"
            "showpos [+    3.142]\n"
            "integer [         3] hex 0x3 oct 03");
  EXPECT_EQ(run("format -255.5 0 1"),
            "fixed   [-255.5]\n"
            "sci     [-2.6e+02]\n"
            "left    [-255.5]\n"
            "general [-3e+02]\n"
            "hexfloat[-0x1.ffp+7]\n"
            "showpos [-3e+02]\n"
            "integer [-255] hex 0xffffffffffffff01 oct 01777777777777777777401");
  EXPECT_EQ(run("format pi 10 4"),
            "error: FormatError: bad value 'pi': std::ios_base::failure: basic_ios::clear: iostream error");
  EXPECT_EQ(run("top 3"),
            "word         count   docs\n"
            "mimi          3519   2057\n"
            "tigripa       1495   1145\n"
            "ansho         1072    891");
}

TEST_P(CxxInProcess, SharedPtrsMadeAndDroppedInsideTheSubcontext) {
  EXPECT_EQ(run("alloc 200000"),
            "live after make: 200000\n"
            "use_count with copies: 2, of the aliased: 3\n"
            "use_count after drop: 1, weak use_count: 1\n"
            "weak expired after clear: true, live after clear: 0\n"
            "sum: 19999900000");
  EXPECT_EQ(run("node n1"), "n1 use_count=3 out: n8 in: n0");
  EXPECT_EQ(run("path n0 island0"), "no path from n0 to island0");
}

INSTANTIATE_TEST_SUITE_P(Backends, CxxInProcess, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
