// The pinned C API end to end: a C server (sbc_export, sbc_snapshot_and_exit)
// and a C client (sbc_request_map, sbc_request_call with integer, pointer and
// f64-bit-pattern arguments, sbc_last_error); and the C server's image from
// C++.
#include <cstring>
#include <sstream>
#include <thread>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;

class CApi : public E2eTest {};

TEST_F(CApi, CClientCallsCServer) {
  ProcessResult r = run({paths::kCClient, c_image(), basic_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\ndone, 0 failures\n"), std::string::npos) << r.out;
  for (const char* check :
       {"ok add i64(i64,i64)", "ok i32 result is sign-extended", "ok u32 result is zero-extended",
        "ok f64(i64,f64,ptr) with f64 bit patterns", "ok pointer to client memory written", "ok wrong nargs (1 of 2)",
        "ok unknown export", "ok map after finalize", "ok fresh state after remap", "ok batch of f64(i64,f64,ptr) rows",
        "ok batch: i32 results sign-extended", "ok another thread's call after the unmap"})
    EXPECT_NE(r.out.find(check), std::string::npos) << check << "\n" << r.out;
  // Every check of the C client ran.
  std::istringstream lines(r.out);
  size_t oks = 0;
  for (std::string line; std::getline(lines, line);) oks += line.rfind("ok ", 0) == 0;
  EXPECT_EQ(oks, 42u) << r.out;
}

TEST_F(CApi, CServerImageFromCxx) {
  subctx::Subcontext sc = mm().request_map(c_image());
  EXPECT_EQ((sc.call<int64_t(int64_t, int64_t)>("add", 2, 3)), 5);
  EXPECT_EQ(sc.call<int32_t(int32_t)>("negate32", 7), -7);
  EXPECT_EQ(sc.call<uint32_t(uint32_t)>("high_bit32", 1), 0x80000001u);
  const double c = 0.5;
  EXPECT_EQ((sc.call<double(int64_t, double, const double*)>("mix", 4, 2.5, &c)), 10.5);
  EXPECT_EQ((sc.call<double(double, double, double, int64_t)>("scale3", 1.0, 2.0, 3.0, 2)), 12.0);
  unsigned char buf[16] = {};
  EXPECT_EQ((sc.call<int64_t(void*, int64_t)>("fill", buf, 10)), 45);
  EXPECT_EQ(buf[9], 9);
  EXPECT_EQ(buf[10], 0);
  EXPECT_EQ(sc.call<int64_t(const char*)>("c_strlen", "hello"), 5);
  EXPECT_EQ(sc.call<int64_t()>("get_counter"), 41);
  // The rejected declarations (bad signature, duplicate) are not exports.
  EXPECT_EQ(sc.exports().size(), 12u);
  expect_error([&] { sc.call<int64_t(int64_t)>("bad_sig", 1); }, Errc::NoExport, {"bad_sig"});
}

// Calls by name remember where the last names lay (a hint per thread):
// one buffer that names one export, then a prefix of it, a longer name,
// then another export, calls each (and refuses the names no export has);
// behind the same buffer another image's export is found after a map.
TEST_F(CApi, ANameBufferReusedForAnotherExportCallsThatExport) {
  // The C++ calls share the hints: a std::string's buffer, rewritten.
  {
    subctx::Subcontext cxx = mm().request_map(basic_image());
    std::string n = "square";
    EXPECT_EQ(cxx.call<int64_t(int64_t)>(n, 7), 49);
    const int64_t before = cxx.call<int64_t(int64_t)>("bump", 0);
    n.assign("bump");
    EXPECT_EQ(cxx.call<int64_t(int64_t)>(n, 1), before + 1);
    n.assign("say");  // another signature: refused as ever
    expect_error([&] { cxx.call<int64_t(int64_t)>(n, 1); }, Errc::Signature, {"say"});
    mm().unmap(cxx);
  }
  int sc = sbc_request_map(c_image().c_str());
  ASSERT_GE(sc, 0) << sbc_last_error();
  char name[32];
  uint64_t args[2] = {2, 3}, ret = 0;
  std::strcpy(name, "add");
  ASSERT_EQ(sbc_request_call(sc, name, args, 2, &ret), 0) << sbc_last_error();
  EXPECT_EQ(ret, 5u);
  name[2] = '\0';  // "ad": a prefix of the name the hint holds
  EXPECT_EQ(sbc_request_call(sc, name, args, 2, &ret), -SBC_E_NO_EXPORT);
  std::strcpy(name, "add");
  ASSERT_EQ(sbc_request_call(sc, name, args, 2, &ret), 0) << sbc_last_error();
  std::strcpy(name, "addx");  // longer, the same first bytes
  EXPECT_EQ(sbc_request_call(sc, name, args, 2, &ret), -SBC_E_NO_EXPORT);
  std::strcpy(name, "set_counter");
  ASSERT_EQ(sbc_request_call(sc, name, args, 1, &ret), 0) << sbc_last_error();
  std::strcpy(name, "get_counter");
  ASSERT_EQ(sbc_request_call(sc, name, args, 0, &ret), 0) << sbc_last_error();
  EXPECT_EQ(ret, 2u);
  EXPECT_EQ(sbc_unmap(sc), 0);
  // Another image behind the same buffer: its own export.
  sc = sbc_request_map(basic_image().c_str());
  ASSERT_GE(sc, 0) << sbc_last_error();
  std::strcpy(name, "get_counter");
  EXPECT_EQ(sbc_request_call(sc, name, args, 0, &ret), -SBC_E_NO_EXPORT);
  std::strcpy(name, "square");
  args[0] = 9;
  ASSERT_EQ(sbc_request_call(sc, name, args, 1, &ret), 0) << sbc_last_error();
  EXPECT_EQ(ret, 81u);
  EXPECT_EQ(sbc_unmap(sc), 0);
}

TEST_F(CApi, WrongArgumentCountIsSignatureError) {
  int sc = sbc_request_map(c_image().c_str());
  ASSERT_GE(sc, 0) << sbc_last_error();
  uint64_t args[7] = {1, 2, 3, 4, 5, 6, 7}, ret = 0;
  for (size_t nargs : {size_t{0}, size_t{1}, size_t{3}, size_t{7}}) {
    EXPECT_EQ(sbc_request_call(sc, "add", args, nargs, &ret), -SBC_E_SIGNATURE) << nargs;
    const std::string msg = sbc_last_error();
    EXPECT_NE(msg.find("i64(i64,i64)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("called with " + std::to_string(nargs)), std::string::npos) << msg;
  }
  EXPECT_EQ(sbc_request_call(sc, "add", args, 2, &ret), 0);
  EXPECT_EQ(ret, 3u);
  EXPECT_EQ(sbc_request_call(sc, "nope", args, 0, &ret), -SBC_E_NO_EXPORT);
  EXPECT_NE(std::string(sbc_last_error()).find("\"nope\""), std::string::npos) << sbc_last_error();
  char sig[8];
  EXPECT_EQ(sbc_export_signature(sc, "mix", sig, sizeof sig), -SBC_E_INVALID_ARGUMENT);  // too small
  EXPECT_EQ(sbc_unmap(sc), 0);
}

TEST_F(CApi, LastErrorIsPerThread) {
  EXPECT_EQ(sbc_request_map("/nonexistent/a.img"), -SBC_E_NOT_FOUND);
  std::string other;
  std::thread t([&] {
    EXPECT_EQ(sbc_request_map(temp_dir().c_str()), -SBC_E_NOT_REGULAR);
    other = sbc_last_error();
  });
  t.join();
  EXPECT_NE(std::string(sbc_last_error()).find("/nonexistent/a.img"), std::string::npos) << sbc_last_error();
  EXPECT_NE(other.find("directory"), std::string::npos) << other;
}

}  // namespace
}  // namespace e2e
