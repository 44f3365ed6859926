// The call command's argument parser: every type's range edges and the
// text it must refuse.
#include "parse_arg.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace subctx::tool {
namespace {

// The parsed value, or a failure naming the reason.
::testing::AssertionResult parses(ValueType t, const char* text, uint64_t expected) {
  uint64_t v = 0;
  std::string why;
  if (!parse_arg(t, text, &v, &why)) return ::testing::AssertionFailure() << "\"" << text << "\" " << why;
  if (v != expected) return ::testing::AssertionFailure() << "\"" << text << "\" gave " << v << ", want " << expected;
  return ::testing::AssertionSuccess();
}

std::string refusal(ValueType t, const char* text) {
  uint64_t v = 0;
  std::string why;
  return parse_arg(t, text, &v, &why) ? "(accepted)" : why;
}

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

TEST(ParseArg, I32Range) {
  EXPECT_TRUE(parses(ValueType::I32, "2147483647", 2147483647));
  EXPECT_TRUE(parses(ValueType::I32, "-2147483648", static_cast<uint64_t>(int64_t{-2147483648})));
  EXPECT_TRUE(parses(ValueType::I32, "0x7fffffff", 0x7fffffff));
  EXPECT_NE(refusal(ValueType::I32, "2147483648").find("out of range for i32"), std::string::npos);
  EXPECT_NE(refusal(ValueType::I32, "-2147483649").find("out of range for i32"), std::string::npos);
  EXPECT_NE(refusal(ValueType::I32, "0xffffffff").find("out of range"), std::string::npos);
}

TEST(ParseArg, I64Range) {
  EXPECT_TRUE(parses(ValueType::I64, "9223372036854775807", 0x7fffffffffffffff));
  EXPECT_TRUE(parses(ValueType::I64, "-9223372036854775808", 0x8000000000000000));
  EXPECT_TRUE(parses(ValueType::I64, "-0x10", static_cast<uint64_t>(int64_t{-16})));
  EXPECT_TRUE(parses(ValueType::I64, "+5", 5));
  EXPECT_NE(refusal(ValueType::I64, "9223372036854775808").find("out of range"), std::string::npos);
  EXPECT_NE(refusal(ValueType::I64, "99999999999999999999999").find("out of range"), std::string::npos);
}

TEST(ParseArg, UnsignedRange) {
  EXPECT_TRUE(parses(ValueType::U32, "0xffffffff", 0xffffffff));
  EXPECT_TRUE(parses(ValueType::U32, "-0", 0));
  EXPECT_NE(refusal(ValueType::U32, "0x100000000").find("out of range for u32"), std::string::npos);
  EXPECT_NE(refusal(ValueType::U32, "-1").find("out of range for u32"), std::string::npos);
  EXPECT_TRUE(parses(ValueType::U64, "18446744073709551615", ~uint64_t{0}));
  EXPECT_TRUE(parses(ValueType::U64, "0XFFFFFFFFFFFFFFFF", ~uint64_t{0}));
  EXPECT_NE(refusal(ValueType::U64, "18446744073709551616").find("out of range"), std::string::npos);
  EXPECT_TRUE(parses(ValueType::Ptr, "0x7fff0000", 0x7fff0000));
}

TEST(ParseArg, MalformedIntegers) {
  for (const char* bad : {"", "-", "0x", "--5", "+-5", "0x-5", " 5", "5 ", "1e3", "1.0", "12abc", "0b101", "ten"})
    EXPECT_NE(refusal(ValueType::I64, bad).find("is not a valid i64"), std::string::npos) << "\"" << bad << "\"";
}

TEST(ParseArg, F64) {
  EXPECT_TRUE(parses(ValueType::F64, "1.5", bits(1.5)));
  EXPECT_TRUE(parses(ValueType::F64, "-2e3", bits(-2000.0)));
  EXPECT_TRUE(parses(ValueType::F64, "0x1p4", bits(16.0)));
  EXPECT_TRUE(parses(ValueType::F64, "7", bits(7.0)));
  EXPECT_TRUE(parses(ValueType::F64, "-inf", bits(-__builtin_inf())));
  EXPECT_TRUE(parses(ValueType::F64, "1e-320", bits(1e-320)));  // subnormal, still a value
  for (const char* bad : {"", " 1", "1.5x", "1,5", "pi"})
    EXPECT_NE(refusal(ValueType::F64, bad).find("is not a valid f64"), std::string::npos) << "\"" << bad << "\"";
  EXPECT_NE(refusal(ValueType::F64, "1e999").find("out of range for f64"), std::string::npos);
}

TEST(ParseArg, StrPassesTheTextItself) {
  const char* text = "hello";
  EXPECT_TRUE(parses(ValueType::Str, text, reinterpret_cast<uint64_t>(text)));
}

TEST(ParseArg, VoidIsNeverAnArgument) { EXPECT_NE(refusal(ValueType::Void, "1"), "(accepted)"); }

}  // namespace
}  // namespace subctx::tool
