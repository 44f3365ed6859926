// CPU feature bits and error codes.
#include <cpuid.h>

#include <string>

#include <gtest/gtest.h>

#include <cctype>

#include "common/cpu_features.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx {
namespace {

TEST(CpuFeatures, Names) {
  EXPECT_EQ(cpu_feature_names(0), "");
  EXPECT_EQ(cpu_feature_names(1), "sse3");
  EXPECT_EQ(cpu_feature_names((1u << 0) | (1u << 11) | (1u << 12)), "sse3 avx2 bmi2");
  EXPECT_EQ(cpu_feature_names(uint64_t{1} << 23), "rtm");
  // Bits this build does not know are named by number, never dropped.
  EXPECT_EQ(cpu_feature_names(uint64_t{1} << 40), "bit40");
  EXPECT_EQ(cpu_feature_names(1 | (uint64_t{1} << 63)), "sse3 bit63");
  const std::string all = cpu_feature_names(~uint64_t{0});
  EXPECT_EQ(all.rfind("sse3 ssse3 fma ", 0), 0u) << all;
  EXPECT_NE(all.find(" adx rtm xsavec "), std::string::npos) << all;
  EXPECT_NE(all.find(" avxvnni bit35 "), std::string::npos) << all;
  EXPECT_EQ(all.substr(all.size() - 6), " bit63") << all;
}

TEST(CpuFeatures, HostIsStableAndKnown) {
  const uint64_t a = host_cpu_features();
  EXPECT_EQ(host_cpu_features(), a);
  EXPECT_EQ(a >> 35, 0u) << "a bit without a name";
  // Unnamed bits print as "bitN" ("avx512bitalg" is a name).
  const std::string names = " " + cpu_feature_names(a);
  for (size_t at = names.find(" bit"); at != std::string::npos; at = names.find(" bit", at + 1))
    EXPECT_FALSE(std::isdigit(static_cast<unsigned char>(names[at + 4]))) << names;
  // x86-64 baseline: every CPU this runs on has SSE3 (bit 0) per cpuid.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  ASSERT_TRUE(__get_cpuid(1, &eax, &ebx, &ecx, &edx));
  EXPECT_EQ((a & 1) != 0, (ecx & 1) != 0);
  // AVX2 only with AVX state saved by the OS; avx512 needs avx.
  if (a & (uint64_t{1} << 14)) {
    EXPECT_TRUE(a & (uint64_t{1} << 8)) << cpu_feature_names(a);
  }
}

TEST(Errors, CodesNamesAndTypes) {
  struct Case {
    Errc code;
    const char* name;
  };
  const Case cases[] = {
      {Errc::InvalidArgument, "InvalidArgument"},
      {Errc::NotInitialized, "NotInitialized"},
      {Errc::NotFound, "NotFound"},
      {Errc::NotRegular, "NotRegular"},
      {Errc::Permission, "Permission"},
      {Errc::BadImage, "BadImage"},
      {Errc::Version, "Version"},
      {Errc::Digest, "Digest"},
      {Errc::Cpu, "Cpu"},
      {Errc::Limit, "LimitExceeded"},
      {Errc::Conflict, "AddressConflict"},
      {Errc::AlreadyMapped, "AlreadyMapped"},
      {Errc::NoSubcontext, "NoSubcontext"},
      {Errc::NoExport, "NoExport"},
      {Errc::Signature, "SignatureMismatch"},
      {Errc::Snapshot, "SnapshotRefused"},
      {Errc::Io, "Io"},
      {Errc::System, "System"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STREQ(errc_name(c.code), c.name);
    EXPECT_GT(static_cast<int>(c.code), 0);  // the C API returns the negated code
    try {
      throw_error(c.code, "msg");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), c.code);
      EXPECT_STREQ(e.what(), "msg");
    }
  }
  EXPECT_STREQ(errc_name(static_cast<Errc>(12345)), "Unknown");
  EXPECT_THROW(throw_error(Errc::BadImage, "x"), BadImage);
  EXPECT_THROW(throw_error(Errc::Version, "x"), UnsupportedVersion);
  EXPECT_THROW(throw_error(Errc::Digest, "x"), DigestMismatch);
  EXPECT_THROW(throw_error(Errc::Limit, "x"), LimitExceeded);
  EXPECT_EQ(BadImage("m").code(), Errc::BadImage);
  EXPECT_EQ(LimitExceeded("m").code(), Errc::Limit);
}

TEST(SysIo, Hex) {
  EXPECT_EQ(sys::hex(0), "0x0");
  EXPECT_EQ(sys::hex(0x7ffd10000000), "0x7ffd10000000");
  EXPECT_EQ(sys::hex(~uint64_t{0}), "0xffffffffffffffff");
}

TEST(SysIo, Printable) {
  EXPECT_EQ(sys::printable(""), "");
  EXPECT_EQ(sys::printable("clock_gettime ~!"), "clock_gettime ~!");
  EXPECT_EQ(sys::printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(sys::printable("\n\t\x1b\x7f\x80\xff"), "\\x0a\\x09\\x1b\\x7f\\x80\\xff");
  EXPECT_EQ(sys::printable("back\\slash"), "back\\x5cslash");  // so that an escape cannot be forged
  EXPECT_EQ(sys::printable(std::string(300, 'a')), std::string(200, 'a') + "...");
  EXPECT_EQ(sys::printable("abcdef", 3), "abc...");
  EXPECT_EQ(sys::printable("abc", 3), "abc");
  EXPECT_EQ(sys::printable("\x01\x02", 0), "...");
  EXPECT_EQ(sys::printable(std::string(300, 'a'), sys::kNoLimit), std::string(300, 'a'));  // subctx inspect
}

}  // namespace
}  // namespace subctx
