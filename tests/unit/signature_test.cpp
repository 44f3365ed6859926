// The pinned signature format: parse_signature, Signature::str and
// signature_of<F> for C++ function types.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "subctx/signature.hpp"

namespace subctx {
namespace {

Signature parse_ok(std::string_view text) {
  Signature s;
  std::string why;
  EXPECT_TRUE(parse_signature(text, &s, &why)) << text << ": " << why;
  return s;
}

std::string parse_fails(std::string_view text) {
  Signature s;
  s.result = ValueType::Str;
  s.args = {ValueType::Ptr};
  const Signature before = s;
  std::string why;
  EXPECT_FALSE(parse_signature(text, &s, &why)) << "accepted \"" << text << "\"";
  EXPECT_EQ(s, before) << "output changed on failure";
  EXPECT_NE(why.find("format: ret(arg,...), types void i32 i64 u32 u64 f64 ptr str, no spaces"), std::string::npos)
      << why;
  return why;
}

TEST(Signature, ValidExamplesFromTheIssue) {
  Signature s = parse_ok("i64(i64)");
  EXPECT_EQ(s.result, ValueType::I64);
  EXPECT_EQ(s.args, std::vector<ValueType>{ValueType::I64});
  s = parse_ok("f64(f64,f64)");
  EXPECT_EQ(s.result, ValueType::F64);
  EXPECT_EQ(s.args, (std::vector<ValueType>{ValueType::F64, ValueType::F64}));
  s = parse_ok("i32(str,ptr)");
  EXPECT_EQ(s.result, ValueType::I32);
  EXPECT_EQ(s.args, (std::vector<ValueType>{ValueType::Str, ValueType::Ptr}));
  s = parse_ok("void()");
  EXPECT_EQ(s.result, ValueType::Void);
  EXPECT_TRUE(s.args.empty());
}

TEST(Signature, EveryTypeRoundTrips) {
  const char* types[] = {"i32", "i64", "u32", "u64", "f64", "ptr", "str"};
  for (const char* ret : {"void", "i32", "i64", "u32", "u64", "f64", "ptr", "str"}) {
    for (const char* arg : types) {
      const std::string text = std::string(ret) + "(" + arg + "," + arg + ")";
      SCOPED_TRACE(text);
      Signature s = parse_ok(text);
      EXPECT_EQ(s.str(), text);
      EXPECT_EQ(value_type_name(s.result), ret);
      EXPECT_EQ(parse_ok(s.str()), s);
    }
  }
  const std::string all = "u64(i32,i64,u32,u64,f64,ptr,str)";
  EXPECT_EQ(parse_ok(all).str(), all);
}

TEST(Signature, Invalid) {
  struct Case {
    const char* text;
    const char* want;
  };
  const Case cases[] = {
      {"", "missing '('"},
      {"i64", "missing '('"},
      {"i64)", "missing '('"},
      {"i64(", "must end with ')'"},
      {"i64(i64", "must end with ')'"},
      {"i64(i64) ", "must end with ')'"},
      {"i64()x", "must end with ')'"},
      {"(i64)", "unknown return type ''"},
      {"()", "unknown return type ''"},
      {"(", "must end with ')'"},
      {")(", "must end with ')'"},
      {"int(i64)", "unknown return type 'int'"},
      {"I64(i64)", "unknown return type 'I64'"},
      {" i64(i64)", "unknown return type ' i64'"},
      {"i64 (i64)", "unknown return type 'i64 '"},
      {"i64(i64 )", "unknown argument type 'i64 '"},
      {"i64( i64)", "unknown argument type ' i64'"},
      {"i64(i64, i64)", "unknown argument type ' i64'"},
      {"i64(void)", "'void' is not an argument type"},
      {"void(i32,void)", "'void' is not an argument type"},
      {"i64(i128)", "unknown argument type 'i128'"},
      {"i64(i64,)", "unknown argument type ''"},
      {"i64(,i64)", "unknown argument type ''"},
      {"i64(,)", "unknown argument type ''"},
      {"i64(i64,,i64)", "unknown argument type ''"},
      {"i64((i64))", "unknown argument type '(i64)'"},
      {"i64(i64))", "unknown argument type 'i64)'"},
      {"i64(i64)(i64)", "unknown argument type 'i64)(i64'"},
      {"i64(i64;i64)", "unknown argument type 'i64;i64'"},
      {"i64(f32)", "unknown argument type 'f32'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string why = parse_fails(c.text);
    EXPECT_EQ(why.rfind("bad signature \"" + std::string(c.text) + "\": ", 0), 0u) << why;
    EXPECT_NE(why.find(c.want), std::string::npos) << why;
  }
}

TEST(Signature, NulAndControlCharacters) {
  const std::string with_nul("i64(i6\0)", 8);
  parse_fails(with_nul);
  parse_fails("i64(i64\n)");
}

TEST(Signature, LengthLimit) {
  // 256 characters are allowed, 257 are not.
  std::string args;
  while (args.size() + 4 < 256 - 5) args += "f64,";
  std::string text = "void(" + args;
  text += std::string(256 - text.size() - 1, 'x') + ")";
  ASSERT_EQ(text.size(), 256u);
  std::string why = parse_fails(text);
  EXPECT_EQ(why.find("longer than 256"), std::string::npos) << why;  // refused for its types, not its length
  std::string long_text = text.substr(0, 255) + "x)";
  ASSERT_EQ(long_text.size(), 257u);
  why = parse_fails(long_text);
  EXPECT_NE(why.find("longer than 256 characters"), std::string::npos) << why;
  parse_fails(std::string(100000, '('));
}

TEST(Signature, ArgumentCountLimits) {
  EXPECT_EQ(parse_ok("void(i64,i64,i64,i64,i64,i64)").int_args(), 6);
  EXPECT_NE(parse_fails("void(i64,i64,i64,i64,i64,i64,i64)").find("more than 6 integer/pointer arguments"),
            std::string::npos);
  EXPECT_NE(parse_fails("void(str,ptr,u32,u64,i32,i64,ptr)").find("more than 6 integer/pointer arguments"),
            std::string::npos);
  Signature s = parse_ok("f64(f64,f64,f64,f64,f64,f64,f64,f64)");
  EXPECT_EQ(s.f64_args(), 8);
  EXPECT_EQ(s.int_args(), 0);
  EXPECT_NE(parse_fails("f64(f64,f64,f64,f64,f64,f64,f64,f64,f64)").find("more than 8 f64 arguments"),
            std::string::npos);
  // Both register classes full at once: 14 arguments.
  s = parse_ok("void(i64,f64,i64,f64,i64,f64,i64,f64,i64,f64,i64,f64,f64,f64)");
  EXPECT_EQ(s.int_args(), 6);
  EXPECT_EQ(s.f64_args(), 8);
  EXPECT_EQ(s.args.size(), 14u);
}

TEST(Signature, WhyIsOptional) {
  Signature s;
  EXPECT_FALSE(parse_signature("nope", &s, nullptr));
  EXPECT_TRUE(parse_signature("void()", &s, nullptr));
}

TEST(Signature, Equality) {
  EXPECT_EQ(parse_ok("i64(i64)"), parse_ok("i64(i64)"));
  EXPECT_NE(parse_ok("i64(i64)"), parse_ok("u64(i64)"));
  EXPECT_NE(parse_ok("i64(i64)"), parse_ok("i64(u64)"));
  EXPECT_NE(parse_ok("i64(i64)"), parse_ok("i64(i64,i64)"));
  EXPECT_NE(parse_ok("i64(str)"), parse_ok("i64(ptr)"));
}

TEST(Signature, ValueTypeNames) {
  EXPECT_EQ(value_type_name(ValueType::Void), "void");
  EXPECT_EQ(value_type_name(ValueType::I32), "i32");
  EXPECT_EQ(value_type_name(ValueType::I64), "i64");
  EXPECT_EQ(value_type_name(ValueType::U32), "u32");
  EXPECT_EQ(value_type_name(ValueType::U64), "u64");
  EXPECT_EQ(value_type_name(ValueType::F64), "f64");
  EXPECT_EQ(value_type_name(ValueType::Ptr), "ptr");
  EXPECT_EQ(value_type_name(ValueType::Str), "str");
  EXPECT_EQ(value_type_name(static_cast<ValueType>(99)), "?");
}

// ---------------------------------------------------------------- signature_of<F>

struct Opaque;

int64_t square(int64_t x) { return x * x; }
double hypot2(double a, double b) noexcept { return a * a + b * b; }

TEST(SignatureOf, CppTypes) {
  EXPECT_EQ(signature_of<int64_t(int64_t)>().str(), "i64(i64)");
  EXPECT_EQ(signature_of<int32_t(int32_t)>().str(), "i32(i32)");
  EXPECT_EQ(signature_of<uint32_t(uint64_t)>().str(), "u32(u64)");
  EXPECT_EQ(signature_of<double(double, double)>().str(), "f64(f64,f64)");
  EXPECT_EQ(signature_of<void()>().str(), "void()");
  EXPECT_EQ(signature_of<int(const char*, void*)>().str(), "i32(str,ptr)");
  EXPECT_EQ(signature_of<int(char*, const void*)>().str(), "i32(str,ptr)");
  EXPECT_EQ(signature_of<Opaque*(int*, const double*, Opaque**)>().str(), "ptr(ptr,ptr,ptr)");
  EXPECT_EQ(signature_of<const char*()>().str(), "str()");
  EXPECT_EQ(signature_of<long(long long, unsigned long, unsigned long long, unsigned)>().str(), "i64(i64,u64,u64,u32)");
  EXPECT_EQ(signature_of<const unsigned char*(unsigned char*)>().str(), "ptr(ptr)");  // only char is a string
  // Top-level const of parameters is not part of a function type.
  EXPECT_EQ(signature_of<int(const int, const double)>().str(), "i32(i32,f64)");
}

TEST(SignatureOf, PointersAndNoexcept) {
  EXPECT_EQ(signature_of<decltype(&square)>().str(), "i64(i64)");
  EXPECT_EQ(signature_of<decltype(square)>().str(), "i64(i64)");
  EXPECT_EQ(signature_of<decltype(hypot2)>().str(), "f64(f64,f64)");
  EXPECT_EQ(signature_of<decltype(&hypot2)>().str(), "f64(f64,f64)");
  EXPECT_EQ(square(3), 9);
  EXPECT_EQ(hypot2(1, 2), 5.0);
}

TEST(SignatureOf, AgreesWithTheParser) {
  using F = uint64_t(int32_t, double, const char*, void*, double, uint32_t);
  EXPECT_EQ(signature_of<F>(), parse_ok("u64(i32,f64,str,ptr,f64,u32)"));
  using Full = void(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, double, double, double, double, double,
                    double, double, double);
  static_assert(detail::signature_of<Full>::int_args == 6);
  static_assert(detail::signature_of<Full>::f64_args == 8);
  EXPECT_EQ(signature_of<Full>(), parse_ok(signature_of<Full>().str()));
}

}  // namespace
}  // namespace subctx
