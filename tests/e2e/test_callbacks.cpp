// Callbacks (docs/callbacks.md): exports of a real image call imports the
// client binds -- results, 1,000,000 callbacks in one call, nesting into the
// same and another subcontext, bind errors, unbound imports, a callback that
// throws or faults, output order, batches and raw calls; per backend.
//
// This process is the client: it survives every failure below except the
// faulting callbacks, which run in a client process of their own.
#include <stdexcept>
#include <string>
#include <vector>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using I64 = int64_t(int64_t);

const std::string& callback_image() {
  static const std::string path = build_image(paths::kCallbackServer, "callback.img");
  return path;
}

int64_t square_fn(int64_t x) { return x * x; }

class CallbackTest : public E2eTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "pkey" && !pkeys_work()) GTEST_SKIP() << "no protection keys here";
    backend_ = subctx::testing::protection_named(GetParam());
  }
  subctx::Subcontext map(const std::string& image) {
    subctx::MapOptions o;
    o.protection = backend_;
    return mm().request_map(image, o);
  }
  subctx::Protection backend_ = subctx::Protection::None;
};

TEST_P(CallbackTest, AnExportCallsABoundImport) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind("square", &square_fn);
  EXPECT_EQ(sc.call<I64>("sum_squares", 10), 285);
  auto sum = sc.function<I64>("sum_squares");
  EXPECT_EQ(sum(100), 328350);
  const std::vector<subctx::ImportInfo> imports = sc.imports();
  ASSERT_EQ(imports.size(), 8u);
  EXPECT_EQ(imports[0].name, "square");
  EXPECT_EQ(imports[0].signature, "i64(i64)");
  EXPECT_TRUE(imports[0].bound);
  EXPECT_FALSE(imports[1].bound);
}

TEST_P(CallbackTest, AMillionCallbacksInOneCall) {
  subctx::Subcontext sc = map(callback_image());
  int64_t seen = 0;
  sc.bind<I64>("square", [&seen](int64_t x) {
    ++seen;
    return x & 1;
  });
  EXPECT_EQ(sc.call<I64>("sum_squares", 1000000), 500000);
  EXPECT_EQ(seen, 1000000);
}

TEST_P(CallbackTest, ArgumentsOfEveryClassAndResults) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind<double(double, int64_t, double)>("host_mix", [](double a, int64_t b, double c) { return a * b + c; });
  EXPECT_DOUBLE_EQ(sc.call<double(double, int64_t, double)>("mix", 1.5, 4, 0.25), 12.5);
  std::vector<std::string> logged;
  sc.bind<int64_t(const char*)>("host_log", [&logged](const char* s) {
    logged.emplace_back(s);
    return static_cast<int64_t>(logged.back().size());
  });
  // The strings are subcontext memory; the callback reads them whatever the backend.
  EXPECT_EQ(sc.call<int64_t(const char*)>("log_twice", "hello"), 9 * 1000 + 4);
  EXPECT_EQ(logged, (std::vector<std::string>{"sub:hello", "done"}));
  // A string the client returns: its memory, which the subcontext reads.
  static const char* const names[] = {"a", "three", "sixteen letters!"};
  sc.bind<const char*(int64_t)>("host_name", [](int64_t i) { return names[i]; });
  EXPECT_EQ(sc.call<I64>("name_length", 1), 5);
  EXPECT_EQ(sc.call<I64>("name_length", 2), 16);
}

TEST_P(CallbackTest, CallbacksCallTheSameSubcontextThreeLevelsDeep) {
  subctx::Subcontext sc = map(callback_image());
  int deepest = 0;
  sc.bind<I64>("recurse_host", [&](int64_t depth) {
    deepest = std::max(deepest, static_cast<int>(3 - depth));
    return sc.call<I64>("recurse", depth);  // re-entry: no deadlock
  });
  EXPECT_EQ(sc.call<I64>("recurse", 3), 1003);
  EXPECT_EQ(deepest, 3);
  // The subcontext is whole afterwards: plain calls and another nesting.
  EXPECT_EQ(sc.call<I64>("plus_one", 41), 42);
  EXPECT_EQ(sc.call<I64>("recurse", 5), 1005);
}

TEST_P(CallbackTest, ACallbackCallsAnotherSubcontext) {
  subctx::Subcontext sc = map(callback_image());
  subctx::Subcontext basic = map(basic_image());
  sc.bind<I64>("host_other", [&](int64_t x) { return basic.call<I64>("square", x); });
  EXPECT_EQ(sc.call<I64>("via_other", 12), 145);
  EXPECT_EQ(basic.call<int64_t(int64_t)>("bump", 1), 101);  // its own state intact
}

TEST_P(CallbackTest, NestingPastTheLimitFailsTheCallAndResets) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind<I64>("recurse_host", [&](int64_t depth) { return sc.call<I64>("recurse", depth); });
  sc.bind("square", &square_fn);
  ASSERT_EQ(sc.call<I64>("sum_squares", 2), 1);
  subctx::SubcontextFault f = expect_fault([&] { sc.call<I64>("recurse", SBC_MAX_CALLBACK_DEPTH + 4); }, Errc::Fault,
                                           {"recurse_host", "SBC_MAX_CALLBACK_DEPTH", "16"});
  EXPECT_EQ(f.import_name(), "recurse_host");
  EXPECT_EQ(sc.call<int64_t()>("get_calls"), 0) << "the fault policy (reset) applied when the outermost call ended";
  EXPECT_EQ(sc.call<I64>("recurse", SBC_MAX_CALLBACK_DEPTH - 1), 1000 + SBC_MAX_CALLBACK_DEPTH - 1);
}

TEST_P(CallbackTest, BindErrorsNameTheImport) {
  subctx::Subcontext sc = map(callback_image());
  expect_error([&] { sc.bind<int64_t(double)>("square", [](double) -> int64_t { return 0; }); }, Errc::Signature,
               {"\"square\"", "i64(i64)", "i64(f64)"});
  expect_error([&] { sc.bind<I64>("cube", &square_fn); }, Errc::NoExport, {"\"cube\"", "8 imports", "subctx inspect"});
}

TEST_P(CallbackTest, AnUnboundImportFailsTheCallNamingIt) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind("square", &square_fn);
  ASSERT_EQ(sc.call<I64>("sum_squares", 3), 5);
  subctx::SubcontextFault f = expect_fault([&] { sc.call<int64_t()>("call_unbound"); }, Errc::Fault,
                                           {"export \"call_unbound\"", "import \"never_bound\" (i64())",
                                            "has not bound", "in call_unbound", "reset to its snapshot"});
  EXPECT_EQ(f.import_name(), "never_bound");
  EXPECT_TRUE(f.reset_done());
  EXPECT_EQ(sc.call<int64_t()>("get_calls"), 0);
  // Unbinding: the next call fails the same way.
  sc.unbind("square");
  expect_fault([&] { sc.call<I64>("sum_squares", 3); }, Errc::Fault, {"import \"square\"", "has not bound"});
}

TEST_P(CallbackTest, RebindingTakesEffectOnTheNextCall) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind("square", &square_fn);
  EXPECT_EQ(sc.call<I64>("sum_squares", 4), 14);
  sc.bind<I64>("square", [](int64_t x) { return x; });
  EXPECT_EQ(sc.call<I64>("sum_squares", 4), 6);
  const int64_t k = 10;
  sc.bind<I64>("square", [k](int64_t x) { return k * x; });  // a callable with state
  EXPECT_EQ(sc.call<I64>("sum_squares", 4), 60);
}

TEST_P(CallbackTest, BindingFromInsideACallIsRefused) {
  subctx::Subcontext sc = map(callback_image());
  std::string refused;
  sc.bind<I64>("square", [&](int64_t x) {
    try {
      sc.bind("square", &square_fn);
    } catch (const subctx::Error& e) {
      refused = e.what();
    }
    return x;
  });
  EXPECT_EQ(sc.call<I64>("sum_squares", 3), 3);
  EXPECT_NE(refused.find("from inside a call"), std::string::npos) << refused;
}

TEST_P(CallbackTest, UnmapAndFinalizeFromACallbackAreRefused) {
  subctx::Subcontext sc = map(callback_image());
  std::string unmap_error, finalize_error;
  sc.bind<I64>("square", [&](int64_t x) {
    try {
      mm().unmap(sc);
    } catch (const subctx::Error& e) {
      unmap_error = e.what();
    }
    try {
      mm().finalize();
    } catch (const subctx::Error& e) {
      finalize_error = e.what();
    }
    return x;
  });
  EXPECT_EQ(sc.call<I64>("sum_squares", 2), 1);
  EXPECT_NE(unmap_error.find("unmap() of subcontext"), std::string::npos) << unmap_error;
  EXPECT_NE(unmap_error.find("it would wait for itself"), std::string::npos) << unmap_error;
  EXPECT_NE(finalize_error.find("finalize() of subcontext"), std::string::npos) << finalize_error;
  EXPECT_TRUE(mm().installed());
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);
}

TEST_P(CallbackTest, AnExceptionFromACallbackReachesTheCallerAndResets) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind<I64>("square", [](int64_t x) -> int64_t {
    if (x == 5) throw std::runtime_error("client says no at 5");
    return x * x;
  });
  struct Sentinel {
    int* destroyed;
    ~Sentinel() { ++*destroyed; }
  };
  int destroyed = 0;
  try {
    Sentinel s{&destroyed};
    sc.call<I64>("sum_squares", 10);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "client says no at 5");
  }
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(sc.call<int64_t()>("get_calls"), 0) << "the subcontext was reset (the default fault policy)";
  EXPECT_EQ(sc.memory().faults, 1u);
  EXPECT_EQ(sc.call<I64>("sum_squares", 4), 14);
}

TEST_P(CallbackTest, AnExceptionThroughNestedCallsReachesTheOutermostCaller) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind<I64>("recurse_host", [&](int64_t depth) -> int64_t {
    if (depth == 0) throw std::logic_error("deepest");
    return sc.call<I64>("recurse", depth);
  });
  EXPECT_THROW(sc.call<I64>("recurse", 3), std::logic_error);
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);
  EXPECT_EQ(sc.memory().faults, 1u);
}

TEST_P(CallbackTest, ANestedFaultFailsTheOuterCallOfTheSameSubcontext) {
  subctx::Subcontext sc = map(callback_image());
  // The nested call fails (an unbound import); the callback swallows the
  // error, but the subcontext's memory is as the failure left it: the
  // outer call fails with the same error, and only then is it reset.
  std::string swallowed;
  sc.bind<I64>("recurse_host", [&](int64_t) -> int64_t {
    try {
      return sc.call<int64_t()>("call_unbound");
    } catch (const subctx::SubcontextFault& f) {
      swallowed = f.what();
      return 0;
    }
  });
  expect_fault([&] { sc.call<I64>("recurse", 1); }, Errc::Fault, {"never_bound", "fails too"});
  EXPECT_NE(swallowed.find("never_bound"), std::string::npos);
  EXPECT_EQ(sc.call<I64>("plus_one", 1), 2);
}

TEST_P(CallbackTest, CallbacksInABatchAndThroughARawCall) {
  subctx::Subcontext sc = map(callback_image());
  sc.bind("square", &square_fn);
  auto sum = sc.function<I64>("sum_squares");
  std::vector<int64_t> in{1, 2, 3, 10}, out(4);
  sum.call_each(in, out);
  EXPECT_EQ(out, (std::vector<int64_t>{0, 1, 5, 285}));
  I64* raw = sc.raw<I64>("sum_squares");
  EXPECT_EQ(raw(10), 285);
}

TEST_P(CallbackTest, AnotherThreadWaitsWhileACallbackRuns) {
  subctx::Subcontext sc = map(callback_image());
  std::atomic<int> phase{0};
  int64_t other = -1;
  std::thread t;
  sc.bind<I64>("square", [&](int64_t x) {
    if (x == 0) {
      t = std::thread([&] {
        other = sc.call<I64>("plus_one", 1);
        phase = 2;
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      EXPECT_EQ(phase.load(), 0) << "the other thread's call ran inside this callback";
    }
    return x;
  });
  EXPECT_EQ(sc.call<I64>("sum_squares", 3), 3);
  t.join();
  EXPECT_EQ(other, 2);
}

TEST_P(CallbackTest, CallbacksThroughTheCApi) {
  ProcessResult r = run({paths::kCallbackClient, "user", callback_image(), GetParam()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "ok\n");
}

TEST_P(CallbackTest, OutputAroundACallbackComesInOrder) {
  ProcessResult r = run({paths::kCallbackClient, "output", callback_image(), GetParam()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "client: start\nsub: before\nclient: during\nsub: after\nclient: end\n");
}

TEST_P(CallbackTest, AFaultInACallbackIsTheClientsOwn) {
  ProcessResult dies = run({paths::kCallbackClient, "segv", callback_image(), GetParam()});
  EXPECT_EQ(dies.signal, SIGSEGV) << dies.describe();
  ProcessResult handled = run({paths::kCallbackClient, "segv-handler", callback_image(), GetParam()});
  EXPECT_TRUE(handled.exited && handled.exit_code == 7) << handled.describe();
  EXPECT_NE(handled.err.find("client handler: SIGSEGV in the client's callback"), std::string::npos) << handled.err;
}

INSTANTIATE_TEST_SUITE_P(Backends, CallbackTest, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

TEST(CallbackServer, AnImportCalledInTheServerProcessEndsItWithAMessage) {
  ProcessResult r = run({paths::kCallbackServer, temp_path("early.img"), "--early"});
  EXPECT_EQ(r.signal, SIGABRT) << r.describe();
  EXPECT_NE(r.err.find("import \"square\" (i64(i64)) was called outside a client's call"), std::string::npos) << r.err;
}

TEST(CallbackServer, InspectListsTheImports) {
  ProcessResult r = run({paths::kSubctxTool, "inspect", callback_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("imports (8;"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("host_mix"), std::string::npos);
  EXPECT_NE(r.out.find("f64(f64,i64,f64)"), std::string::npos);
}

}  // namespace
}  // namespace e2e
