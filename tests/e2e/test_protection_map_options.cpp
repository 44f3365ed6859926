// Protection (docs/protection.md), 6. Map options, backends, errors: what
// each backend maps and reports (ProtectionInfo, the maps, protection keys),
// str results copied out, readable and exact-permission maps, running out
// of protection keys, the automatic choice and SUBCTX_PROTECTION,
// sbc_request_map_with's refusals.  In-process: no helper.
//
// The ProtectionApi and ProtectionBackend fixtures are in
// support/protection.hpp (ProtectionBackend is instantiated here;
// test_protection_freed_memory.cpp adds a test to it).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

#include "support/protection.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using subctx::Protection;

// The bytes the image file holds for [a, a+n) (zeros past a segment's file size).
std::string image_bytes(const std::string& image, uint64_t a, size_t n) {
  const ImageLayout l = read_layout(image);
  std::ifstream f(image, std::ios::binary);
  std::string out(n, '\0');
  for (const Elf64_Phdr& p : l.phdrs) {
    if (p.p_type != PT_LOAD || a < p.p_vaddr || a + n > p.p_vaddr + p.p_memsz) continue;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t at = a + i - p.p_vaddr;
      if (at >= p.p_filesz) continue;
      f.seekg(static_cast<std::streamoff>(p.p_offset + at));
      char c = 0;
      f.get(c);
      out[i] = c;
    }
    return out;
  }
  ADD_FAILURE() << "no segment holds " << std::hex << a;
  return out;
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// ---- the environment ------------------------------------------------------

// Sets (or unsets) SUBCTX_PROTECTION and reinstalls the Matchmaker, which
// reads it at install; restores both at the end of the test.
class ProtectionEnv {
 public:
  ProtectionEnv() {
    if (const char* v = std::getenv("SUBCTX_PROTECTION")) saved_ = v;
  }
  ~ProtectionEnv() {
    if (saved_) setenv("SUBCTX_PROTECTION", saved_->c_str(), 1);
    else unsetenv("SUBCTX_PROTECTION");
    mm().finalize();
    mm().init();
  }
  void set(const char* value) {
    if (value) setenv("SUBCTX_PROTECTION", value, 1);
    else unsetenv("SUBCTX_PROTECTION");
    mm().finalize();
    mm().init();
  }

 private:
  std::optional<std::string> saved_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ProtectionBackend, ::testing::Values("mprotect", "pkey", "none"),
                         [](const auto& info) { return info.param; });

TEST_P(ProtectionBackend, ProtectionInfoMapsAndCalls) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(basic_image(), with(p));
  const subctx::ProtectionInfo info = sc.protection();
  EXPECT_EQ(info.backend, p);
  EXPECT_EQ(sbc_protection(sc.handle()), static_cast<int>(p));
  EXPECT_FALSE(info.readable);
  EXPECT_FALSE(info.exact_permissions);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 7), 49);
  EXPECT_EQ(sc.call<double(double, double)>("hyp", 3.0, 4.0), 25.0);
  const uint64_t square = export_address(sc, "square");
  const std::string line = maps_line_at(square);
  switch (p) {
    case Protection::Mprotect:
      EXPECT_GE(info.clusters, 1u);
      EXPECT_GE(info.open_syscalls, 1u);
      EXPECT_GE(info.close_syscalls, 1u);
      EXPECT_EQ(info.pkey, -1);
      EXPECT_NE(line.find(" ---p "), std::string::npos) << line;  // closed between calls
      break;
    case Protection::Pkey:
      EXPECT_GE(info.pkey, 1);  // key 0 is everyone's default
      EXPECT_EQ(info.open_syscalls, 0u);
      EXPECT_EQ(info.close_syscalls, 0u);
      EXPECT_NE(line.find(" r-xp "), std::string::npos) << line;
      EXPECT_EQ(protection_key_at(square), info.pkey);
      for (const Range& r : read_layout(basic_image()).segments())
        EXPECT_EQ(protection_key_at(r.lo), info.pkey) << "segment at " << hex(r.lo);
      break;
    default:
      EXPECT_EQ(info.pkey, -1);
      EXPECT_EQ(info.open_syscalls, 0u);
      EXPECT_NE(line.find(" r-xp "), std::string::npos) << line;
      break;
  }
  mm().unmap(sc);
  EXPECT_EQ(sbc_protection(sc.handle()), -SBC_E_NO_SUBCONTEXT);
}

TEST_P(ProtectionBackend, StrResultsAreCopiedWhenTheClientCannotRead) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(protection_image(), with(p));
  const char* m = sc.call<const char*()>("motto");
  ASSERT_NE(m, nullptr);
  const bool in_image = inside_image(protection_image(), reinterpret_cast<uint64_t>(m));
  EXPECT_EQ(in_image, p == Protection::None) << "str result at " << static_cast<const void*>(m);
  if (in_image && p != Protection::None) return;  // reading it would be a violation
  EXPECT_STREQ(m, "memory stays where it belongs");
  // Another thread's copy is its own.
  std::string other;
  std::thread([&] { other = sc.call<const char*()>("motto"); }).join();
  EXPECT_EQ(other, "memory stays where it belongs");
  EXPECT_STREQ(m, "memory stays where it belongs");
}

// Subcontext code that writes code into its own data and makes it
// executable with mprotect (a JIT) can run it in later calls, under every
// backend: the mprotect backend's merged permissions open data without code
// read-write only until the subcontext makes part of it executable itself.
TEST_P(ProtectionBackend, CodeASubcontextMadeExecutableRunsInLaterCalls) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(protection_image(), with(p));
  if (sc.protection().exact_permissions) {  // a kernel that refused merged permissions (docs/protection.md)
    mm().unmap(sc);
    GTEST_SKIP() << "exact permissions give segments the image's own permissions at every call";
  }
  EXPECT_EQ(sc.call<int64_t(int64_t)>("jit_make", 4242), 4242);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sc.call<int64_t()>("jit_call"), 4242) << "call " << i;
  EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3), 5);
  mm().unmap(sc);
}

TEST_F(ProtectionApi, ReadableMapUnderMprotect) {
  subctx::Subcontext sc = mm().request_map(protection_image(), with(Protection::Mprotect, /*readable=*/true));
  const subctx::ProtectionInfo info = sc.protection();
  EXPECT_EQ(info.backend, Protection::Mprotect);
  EXPECT_TRUE(info.readable);
  // The client reads code and data in place: the bytes of the image file.
  const uint64_t code = export_address(sc, "pure_add");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(code), 16), image_bytes(protection_image(), code, 16));
  const auto* data = static_cast<const char*>(sc.call<void*()>("data_addr"));
  EXPECT_EQ(std::string(data, 64), std::string(64, 'P'));
  EXPECT_NE(maps_line_at(code).find(" r--p "), std::string::npos) << maps_line_at(code);
  EXPECT_NE(maps_line_at(reinterpret_cast<uint64_t>(data)).find(" r--p "), std::string::npos);
  // str results point into the image: readable, so not copied.
  const char* m = sc.call<const char*()>("motto");
  EXPECT_TRUE(inside_image(protection_image(), reinterpret_cast<uint64_t>(m)));
  EXPECT_STREQ(m, "memory stays where it belongs");
  EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("pure_add", 40, 2), 42);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("hits", 1), 101);
  // The write that is refused runs in ProtectionReadableMap.WriteIsStillAViolation.
}

TEST_F(ProtectionApi, ReadableMapsAreUnsupportedWithPkey) {
  ProtectionEnv env;
  env.set(nullptr);
  expect_error([&] { mm().request_map(basic_image(), with(Protection::Pkey, true)); }, Errc::Unsupported,
               {basic_image(), "readable", "pkey", "the map options", "mprotect"});
  EXPECT_EQ(sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_PKEY, SBC_MAP_READABLE), -SBC_E_UNSUPPORTED);
  expect_contains(sbc_last_error(), "readable", "sbc_last_error()");
  // Chosen by the environment: the message says so.
  env.set("pkey");
  expect_error([&] { mm().request_map(basic_image(), with(Protection::Auto, true)); }, Errc::Unsupported,
               {"readable", "SUBCTX_PROTECTION"});
  // Automatic choice: a readable map gets mprotect.
  env.set(nullptr);
  subctx::Subcontext sc = mm().request_map(basic_image(), with(Protection::Auto, true));
  EXPECT_EQ(sc.protection().backend, Protection::Mprotect);
  EXPECT_TRUE(sc.protection().readable);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 3), 9);
}

TEST_F(ProtectionApi, ProtectionKeysRunOutExplicitPkeyFailsAutoFallsBackToMprotect) {
  if (!pkeys_work()) GTEST_SKIP() << "no protection keys here";
  ProtectionEnv env;
  env.set(nullptr);
  // Distinct images (one per key): a process has at most 15 keys.
  std::vector<subctx::Subcontext> mapped;
  std::string refusal;
  for (int i = 0; i < 17 && refusal.empty(); ++i) {
    const std::string image = build_image(paths::kBasicServer, "keys" + std::to_string(i) + ".img");
    try {
      mapped.push_back(mm().request_map(image, with(Protection::Pkey)));
      EXPECT_EQ(mapped.back().protection().backend, Protection::Pkey);
    } catch (const subctx::Error& e) {
      if (e.code() == Errc::Conflict) continue;  // another image's random addresses: not this test's subject
      EXPECT_EQ(e.code(), Errc::Limit) << e.what();
      refusal = e.what();
    }
  }
  ASSERT_FALSE(refusal.empty()) << "17 pkey maps all succeeded";
  EXPECT_LE(mapped.size(), 15u);
  for (const char* w : {"no protection key is free", "Protection::Mprotect", "SUBCTX_PROTECTION=mprotect"})
    expect_contains(refusal, w, "the refusal");
  // The automatic choice takes the next best backend instead.
  subctx::Subcontext more;
  for (int i = 0; i < 3 && !more.valid(); ++i) {
    try {
      more = mm().request_map(build_image(paths::kBasicServer, "keys-auto" + std::to_string(i) + ".img"));
    } catch (const subctx::Error& e) {
      ASSERT_EQ(e.code(), Errc::Conflict) << e.what();
    }
  }
  ASSERT_TRUE(more.valid());
  EXPECT_EQ(more.protection().backend, Protection::Mprotect);
  EXPECT_EQ(more.call<int64_t(int64_t)>("square", 12), 144);
  // Unmapping gives a key back.
  mm().unmap(mapped.back());
  mapped.pop_back();
  subctx::Subcontext again =
      mm().request_map(build_image(paths::kBasicServer, "keys-again.img"), with(Protection::Pkey));
  EXPECT_EQ(again.protection().backend, Protection::Pkey);
  EXPECT_EQ(again.call<int64_t(int64_t)>("square", 5), 25);
  mm().unmap(again);
  mm().unmap(more);
  for (auto& sc : mapped) mm().unmap(sc);
}

TEST_F(ProtectionApi, AutoPicksPkeyWhereKeysWorkElseMprotect) {
  ProtectionEnv env;
  env.set(nullptr);
  const Protection expected = pkeys_work() ? Protection::Pkey : Protection::Mprotect;
  subctx::Subcontext sc = mm().request_map(basic_image());
  EXPECT_EQ(sc.protection().backend, expected) << subctx::protection_name(sc.protection().backend);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 11), 121);
  mm().unmap(sc);
  const int h = sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_AUTO, 0);
  ASSERT_GE(h, 0) << sbc_last_error();
  EXPECT_EQ(sbc_protection(h), static_cast<int>(expected));
  EXPECT_EQ(sbc_unmap(h), 0);
}

TEST_F(ProtectionApi, EnvironmentChoosesForAutoMapsOnly) {
  ProtectionEnv env;
  std::vector<std::pair<const char*, Protection>> cases = {{"none", Protection::None},
                                                           {"mprotect", Protection::Mprotect}};
  if (pkeys_work()) cases.push_back({"pkey", Protection::Pkey});
  for (const auto& [value, p] : cases) {
    SCOPED_TRACE(value);
    env.set(value);
    subctx::Subcontext sc = mm().request_map(basic_image());
    EXPECT_EQ(sc.protection().backend, p);
    EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 5), 25);
    mm().unmap(sc);
    // The map's own option wins over the environment.
    const Protection other = p == Protection::Mprotect ? Protection::None : Protection::Mprotect;
    sc = mm().request_map(basic_image(), with(other));
    EXPECT_EQ(sc.protection().backend, other);
    mm().unmap(sc);
  }
  env.set("auto");
  subctx::Subcontext sc = mm().request_map(basic_image());
  EXPECT_EQ(sc.protection().backend, pkeys_work() ? Protection::Pkey : Protection::Mprotect);
}

// One rule for every SUBCTX_* variable (docs/policy.md): a malformed value
// fails every map, also one that chooses its backend itself.
TEST_F(ProtectionApi, UnusableEnvironmentValueFailsEveryMap) {
  ProtectionEnv env;
  env.set("bogus");
  expect_map_refused(basic_image(), Errc::InvalidArgument,
                     {basic_image(), "SUBCTX_PROTECTION=bogus", "pkey, mprotect, none or auto"},
                     read_layout(basic_image()).all_ranges());
  EXPECT_EQ(sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_AUTO, 0), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "SUBCTX_PROTECTION", "sbc_last_error()");
  EXPECT_EQ(sbc_request_map_with(basic_image().c_str(), SBC_PROTECT_MPROTECT, 0), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "SUBCTX_PROTECTION=bogus", "sbc_last_error()");
  env.set("PKEY");  // case matters
  expect_error([&] { mm().request_map(basic_image()); }, Errc::InvalidArgument, {"SUBCTX_PROTECTION=PKEY"});
}

TEST_F(ProtectionApi, ExactPermissionsUnderMprotect) {
  subctx::Subcontext sc = mm().request_map(feature_image(), with(Protection::Mprotect, false, /*exact=*/true));
  const subctx::ProtectionInfo exact = sc.protection();
  EXPECT_EQ(exact.backend, Protection::Mprotect);
  EXPECT_TRUE(exact.exact_permissions);
  EXPECT_GE(exact.clusters, 1u);
  EXPECT_GE(exact.open_syscalls, exact.clusters);
  EXPECT_GE(exact.close_syscalls, exact.clusters);
  EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(15)"), 610);
  EXPECT_EQ(sc.call<int64_t(const char*)>("sql_int", "SELECT 6*7"), 42);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  EXPECT_NE(maps_line_at(export_address(sc, "bump")).find(" ---p "), std::string::npos);
  mm().unmap(sc);
  // Merged permissions (the default) open the same image in no more calls.
  sc = mm().request_map(feature_image(), with(Protection::Mprotect));
  EXPECT_FALSE(sc.protection().exact_permissions);
  EXPECT_LE(sc.protection().open_syscalls, exact.open_syscalls);
  EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(15)"), 610);
}

TEST_F(ProtectionApi, MapWithRejectsUnknownBackendsAndFlags) {
  const char* path = basic_image().c_str();
  EXPECT_EQ(sbc_request_map_with(path, 4, 0), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "unknown protection 4", "sbc_last_error()");
  EXPECT_EQ(sbc_request_map_with(path, -1, 0), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_request_map_with(path, SBC_PROTECT_MPROTECT, 8u), -SBC_E_INVALID_ARGUMENT);
  expect_contains(sbc_last_error(), "unknown flags 8", "sbc_last_error()");
  EXPECT_EQ(sbc_request_map_with(path, SBC_PROTECT_MPROTECT, 0x80000000u), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_request_map_with(nullptr, SBC_PROTECT_MPROTECT, 0), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(join(lines_overlapping(read_self_maps(), read_layout(basic_image()).all_ranges())), "");
  const int h = sbc_request_map_with(path, SBC_PROTECT_MPROTECT, SBC_MAP_READABLE | SBC_MAP_EXACT_PERMISSIONS);
  ASSERT_GE(h, 0) << sbc_last_error();
  EXPECT_EQ(sbc_protection(h), SBC_PROTECT_MPROTECT);
  const subctx::ProtectionInfo info = mm().find(h).protection();
  EXPECT_TRUE(info.readable);
  EXPECT_TRUE(info.exact_permissions);
  EXPECT_EQ(sbc_unmap(h), 0);
  const int n = sbc_request_map_with(path, SBC_PROTECT_NONE, 0);
  ASSERT_GE(n, 0) << sbc_last_error();
  EXPECT_EQ(sbc_protection(n), SBC_PROTECT_NONE);
  EXPECT_EQ(sbc_unmap(n), 0);
  EXPECT_EQ(sbc_protection(n), -SBC_E_NO_SUBCONTEXT);
}

}  // namespace
}  // namespace e2e
