// What works inside a subcontext (issue 2's client-side list), called from
// this process on the feature server's image: malloc/free, errno, C++
// exceptions, std::map/std::string, time through the vDSO, a libc function
// the server never called, syscalls on the calling client, SQLite, Lua; and
// the typed call's checks (signature mismatch, unknown export).
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <stdexcept>
#include <thread>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;

class Features : public E2eTest {
 protected:
  void SetUp() override { sc_ = mm().request_map(feature_image()); }
  template <class Sig, class... A>
  auto call(const char* name, A... a) {
    return sc_.call<Sig>(name, a...);
  }
  std::string text(const char* fn, const char* arg) {
    char buf[4096];
    int64_t n = sc_.call<int64_t(const char*, void*, int64_t)>(fn, arg, buf, int64_t{sizeof buf});
    return n < 0 ? "ERR:" + std::string(buf) : std::string(buf);
  }
  subctx::Subcontext sc_;
};

// What alloc_sum computes, computed here.
int64_t expected_alloc_sum(int64_t size) {
  int64_t sum = 0;
  for (int64_t i = 0; i < size; i += 4096) sum += static_cast<unsigned char>(i * 7);
  return sum + static_cast<unsigned char>((size - 1) * 7);
}

TEST_F(Features, MallocAndFreeSmallAndAboveTheMmapThreshold) {
  for (int64_t size : {int64_t{1}, int64_t{24}, int64_t{1000}, int64_t{100} << 10, int64_t{200} << 10, int64_t{1} << 20,
                       int64_t{16} << 20, int64_t{64} << 20})
    EXPECT_EQ((call<int64_t(int64_t)>("alloc_sum", size)), expected_alloc_sum(size)) << "size " << size;
  // The same sizes again: freed memory is reused, mmapped blocks come back.
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ((call<int64_t(int64_t)>("alloc_sum", int64_t{4} << 20)), expected_alloc_sum(int64_t{4} << 20));
}

TEST_F(Features, MallocGrowsTheHeapPastTheSnapshot) {
  // 20000 live blocks of 512 bytes (~10 MiB) outgrow the heap the image
  // holds; 100 live blocks of 300 KiB each are mmapped.
  EXPECT_EQ((call<int64_t(int64_t, int64_t)>("alloc_many", 20000, 512)), 20000);
  EXPECT_EQ((call<int64_t(int64_t, int64_t)>("alloc_many", 100, int64_t{300} << 10)), 100);
  EXPECT_EQ((call<int64_t(int64_t, int64_t)>("alloc_many", 20000, 512)), 20000);
}

TEST_F(Features, BlocksAllocatedInOneCallLiveUntilFreedInAnother) {
  std::vector<std::pair<void*, int64_t>> blocks;
  for (int64_t i = 0; i < 40; ++i) {
    int64_t size = (i % 2) ? (int64_t{1} << 20) + i : 100 + i * 37;
    void* p = call<void*(int64_t, int64_t)>("keep_block", size, i);
    ASSERT_NE(p, nullptr);
    blocks.emplace_back(p, size);
  }
  for (size_t i = 0; i < blocks.size(); ++i)
    EXPECT_EQ((call<int64_t(void*, int64_t, int64_t)>("check_block", blocks[i].first, blocks[i].second,
                                                      static_cast<int64_t>(i))),
              -1)
        << "block " << i;
  for (auto& b : blocks) call<void(void*)>("free_block", b.first);
}

TEST_F(Features, ErrnoIsTheSubcontextsOwn) {
  errno = EXDEV;
  EXPECT_EQ((call<int32_t(const char*)>("errno_of_open", "/nonexistent/subctx/e2e")), ENOENT);
  EXPECT_EQ((call<int32_t(const char*)>("errno_of_open", temp_dir().c_str())), 0);
  EXPECT_EQ((call<int32_t(const char*)>("errno_of_strtol", "999999999999999999999999")), ERANGE);
  EXPECT_EQ((call<int32_t(const char*)>("errno_of_strtol", "12")), 0);
  EXPECT_EQ(errno, EXDEV) << "a call changed the client's errno";
  // The subcontext's errno persists between calls, apart from the client's.
  call<void(int32_t)>("set_errno", 42);
  errno = EPIPE;
  EXPECT_EQ(call<int32_t()>("get_errno"), 42);
  EXPECT_EQ(errno, EPIPE);
}

TEST_F(Features, CxxExceptionsThrownAndCaughtInside) {
  // throw_catch(n) throws n exceptions of three kinds through 0..9 frames.
  auto expected = [](int64_t n) {
    int64_t total = 0;
    for (int64_t x = 1; x <= n; ++x) {
      if (x % 3 == 0) total += 1000 * static_cast<int64_t>(("boom " + std::to_string(x)).size());
      else if (x % 3 == 1) total += x;
      else total += static_cast<int64_t>(("out of range " + std::to_string(x)).size());
    }
    return total;
  };
  EXPECT_EQ(call<int64_t(int64_t)>("throw_catch", 1), expected(1));
  EXPECT_EQ(call<int64_t(int64_t)>("throw_catch", 3), expected(3));
  EXPECT_EQ(call<int64_t(int64_t)>("throw_catch", 2000), expected(2000));
  EXPECT_EQ(call<int64_t(int64_t)>("vector_at", 1), 20);
  EXPECT_EQ(call<int64_t(int64_t)>("vector_at", 7), -1);  // std::out_of_range from libstdc++
  // The client's own exceptions still work after calls.
  EXPECT_THROW(throw std::runtime_error("client"), std::runtime_error);
}

TEST_F(Features, StdMapAndStdString) {
  EXPECT_EQ(call<int64_t()>("map_size"), 1000);
  EXPECT_EQ(call<int64_t(const char*)>("map_get", "key10"), 100);
  EXPECT_EQ(call<int64_t(const char*)>("map_get", "key999"), 998001);
  EXPECT_EQ(call<int64_t(const char*)>("map_get", "nope"), -1);
  for (int i = 0; i < 500; ++i) {
    std::string k = "new" + std::to_string(i);
    EXPECT_EQ((call<int64_t(const char*, int64_t)>("map_put", k.c_str(), i)), 1001 + i);
  }
  EXPECT_EQ(call<int64_t(const char*)>("map_get", "new321"), 321);

  char buf[64];
  EXPECT_EQ((call<int64_t(const char*, const char*, int64_t, void*, int64_t)>("string_join", "ab", "cd", 3, buf,
                                                                              int64_t{sizeof buf})),
            14);
  EXPECT_STREQ(buf, "abcd+abcd+abcd");
  // A long string (heap-allocated, grown many times) truncated into buf.
  EXPECT_EQ((call<int64_t(const char*, const char*, int64_t, void*, int64_t)>("string_join", "xy", "z", 100000, buf,
                                                                              int64_t{8})),
            100000 * 3 + 99999);
  EXPECT_STREQ(buf, "xyz+xyz");
}

TEST_F(Features, ClockGettimeTimeAndGettimeofdayGoThroughTheVdso) {
  for (int i = 0; i < 1000; ++i) {
    timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    const int64_t client_rt = rt.tv_sec * 1000000000L + rt.tv_nsec;
    const int64_t client_mono = mono.tv_sec * 1000000000L + mono.tv_nsec;
    const int64_t sub_rt = call<int64_t()>("realtime_ns");
    const int64_t sub_mono = call<int64_t()>("monotonic_ns");
    // Same clocks: the subcontext reads them after the client did.
    ASSERT_GE(sub_rt, client_rt - 1000000) << "iteration " << i;
    ASSERT_LT(sub_rt - client_rt, int64_t{2} * 1000000000) << "iteration " << i;
    ASSERT_GE(sub_mono, client_mono) << "iteration " << i;
    ASSERT_LT(sub_mono - client_mono, int64_t{2} * 1000000000) << "iteration " << i;
  }
  const int64_t t = call<int64_t()>("time_s");
  EXPECT_LE(std::llabs(t - static_cast<int64_t>(time(nullptr))), 2);
  const int64_t us = call<int64_t()>("gettimeofday_us");
  EXPECT_LE(std::llabs(us / 1000000 - static_cast<int64_t>(time(nullptr))), 2);
  const int32_t cpu = call<int32_t()>("cpu_now");
  EXPECT_GE(cpu, 0);
  EXPECT_LT(cpu, static_cast<int32_t>(std::thread::hardware_concurrency() * 4 + 64));
}

TEST_F(Features, LibcFunctionsNeverCalledBeforeTheSnapshot) {
  // strverscmp and fnmatch: their PLT slots were never used by the server.
  EXPECT_EQ((call<int32_t(const char*, const char*)>("version_compare", "1.9", "1.10")), -1);
  EXPECT_EQ((call<int32_t(const char*, const char*)>("version_compare", "2.0", "2.0")), 0);
  EXPECT_EQ((call<int32_t(const char*, const char*)>("version_compare", "10", "9")), 1);
  EXPECT_EQ((call<int32_t(const char*, const char*)>("glob_match", "*.img", "basic.img")), 1);
  EXPECT_EQ((call<int32_t(const char*, const char*)>("glob_match", "*.txt", "basic.img")), 0);
}

TEST_F(Features, SyscallsActOnTheCallingClientNotTheDeadServer) {
  EXPECT_EQ(call<int64_t()>("pid_now"), static_cast<int64_t>(getpid()));
  EXPECT_EQ(call<int64_t()>("tid_now"), static_cast<int64_t>(syscall(SYS_gettid)));
  int64_t thread_tid = 0, seen = 0;
  std::thread t([&] {
    thread_tid = syscall(SYS_gettid);
    seen = call<int64_t()>("tid_now");
  });
  t.join();
  EXPECT_EQ(seen, thread_tid);
}

TEST_F(Features, SqliteDatabaseBuiltBeforeTheSnapshot) {
  EXPECT_EQ(call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM t"), 10000);
  EXPECT_EQ(call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM t WHERE a % 7 = 0"), 1428);
  EXPECT_EQ(call<int64_t(const char*)>("sql_int", "SELECT sum(a) FROM t"), 50005000);
  EXPECT_EQ(text("sql_text", "SELECT b FROM t WHERE a = 4242"), "row4242");
  EXPECT_EQ(call<int64_t(const char*)>("sql_exec", "UPDATE t SET b = 'x' || a WHERE a <= 10"), 10);
  EXPECT_EQ(text("sql_text", "SELECT group_concat(b, ',') FROM t WHERE a <= 3"), "x1,x2,x3");
  EXPECT_GE(call<int64_t(const char*)>("sql_exec", "CREATE TABLE u(k TEXT PRIMARY KEY, v BLOB)"), 0);
  EXPECT_EQ(call<int64_t(const char*)>("sql_exec",
                                       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<5000) "
                                       "INSERT INTO u SELECT 'k' || x, randomblob(200) FROM c"),
            5000);
  EXPECT_EQ(call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM u WHERE length(v) = 200"), 5000);
  const std::string err = text("sql_text", "SELEKT nonsense");
  EXPECT_NE(err.find("syntax error"), std::string::npos) << err;
}

TEST_F(Features, LuaInterpreterWithAScriptLoadedBeforeTheSnapshot) {
  EXPECT_EQ(call<int64_t(const char*)>("lua_int", "fib(20)"), 6765);
  EXPECT_EQ(call<int64_t(const char*)>("lua_int", "#names"), 3);
  EXPECT_EQ(text("lua_str", "greet('bob')"), "hello bob #1");
  EXPECT_EQ(text("lua_str", "greet(names[2])"), "hello grace #2");
  // Lua errors unwind with longjmp inside the subcontext.
  EXPECT_EQ(call<int64_t(const char*)>("lua_int", "error('x')"), -1);
  const std::string err = text("lua_str", "undefined_fn()");
  EXPECT_NE(err.find("error:"), std::string::npos) << err;
  // Allocation-heavy code and the collector.
  EXPECT_EQ(call<int64_t(const char*)>("lua_int",
                                       "(function() local t = {} for i = 1, 200000 do t[i] = tostring(i) end "
                                       "return #t end)()"),
            200000);
  EXPECT_EQ(call<int64_t(const char*)>("lua_int", "collectgarbage('collect')"), 0);
  EXPECT_EQ(text("lua_str", "string.format('%5.2f|%s', math.pi, string.rep('ab', 3))"), " 3.14|ababab");
}

TEST_F(Features, ExportsListNamesAddressesAndSignatures) {
  subctx::Subcontext b = mm().request_map(basic_image());
  const auto exports = b.exports();
  ASSERT_EQ(exports.size(), 4u);
  std::map<std::string, std::string> sigs;
  for (const auto& e : exports) sigs[e.name] = e.signature;
  EXPECT_EQ(sigs["square"], "i64(i64)");
  EXPECT_EQ(sigs["bump"], "i64(i64)");
  EXPECT_EQ(sigs["hyp"], "f64(f64,f64)");
  EXPECT_EQ(sigs["say"], "i32(str)");
  // Each address lies in a mapping of this client now: executable where
  // the memory is not closed between calls (none, pkey), inaccessible under
  // mprotect.
  const std::string maps = read_self_maps();
  const bool closed = b.protection().backend == subctx::Protection::Mprotect;
  for (const auto& e : exports) {
    auto lines = lines_overlapping(maps, {{e.address, e.address + 1}});
    ASSERT_EQ(lines.size(), 1u) << e.name;
    EXPECT_NE(lines[0].find(closed ? " ---p " : " r-xp "), std::string::npos) << e.name << ": " << lines[0];
  }
  EXPECT_EQ(b.path(), basic_image());
  EXPECT_GE(b.handle(), 0);
  EXPECT_EQ(mm().find(b.handle()).path(), basic_image());
}

TEST_F(Features, TypedCallWithWrongTypesIsSignatureMismatch) {
  subctx::Subcontext b = mm().request_map(basic_image());
  expect_error([&] { b.call<int32_t(int64_t)>("square", 7); }, Errc::Signature,
               {"\"square\"", "i64(i64)", "called as i32(i64)"});
  expect_error([&] { b.call<int64_t(int64_t, int64_t)>("square", 7, 8); }, Errc::Signature,
               {"i64(i64)", "i64(i64,i64)"});
  expect_error([&] { b.call<int64_t(const char*)>("square", "7"); }, Errc::Signature, {"i64(str)"});
  expect_error([&] { b.call<double(double)>("hyp", 1.0); }, Errc::Signature, {"f64(f64,f64)", "f64(f64)"});
  expect_error([&] { b.call<uint64_t(uint64_t)>("bump", 1); }, Errc::Signature, {"u64(u64)"});
  expect_error([&] { b.function<int32_t(void*)>("say"); }, Errc::Signature, {"i32(str)", "i32(ptr)"});
  // Nothing was called: the counter is still the snapshot's.
  EXPECT_EQ(b.call<int64_t(int64_t)>("bump", 0), 100);
}

TEST_F(Features, UnknownExportIsNoSuchExport) {
  expect_error([&] { sc_.call<int64_t(int64_t)>("no_such_export", 1); }, Errc::NoExport,
               {"no_such_export", feature_image()});
  expect_error([&] { sc_.function<void()>(""); }, Errc::NoExport, {"no export"});
  EXPECT_EQ(call<int64_t(int64_t)>("bump", 1), 101);
}

TEST_F(Features, TypedFunctionHandleCheckedOnceCalledManyTimes) {
  auto bump = sc_.function<int64_t(int64_t)>("bump");
  for (int64_t i = 1; i <= 10000; ++i) ASSERT_EQ(bump(1), 100 + i);
  EXPECT_NE(bump.address(), 0u);
}

}  // namespace
}  // namespace e2e
