#include "parse_arg.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace subctx::tool {

namespace {

struct Range {
  int64_t min;
  uint64_t max;
};

Range range_of(ValueType t) {
  switch (t) {
    case ValueType::I32: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    case ValueType::I64: return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
    case ValueType::U32: return {0, std::numeric_limits<uint32_t>::max()};
    default: return {0, std::numeric_limits<uint64_t>::max()};  // U64, Ptr
  }
}

bool parse_integer(ValueType t, const char* text, uint64_t* out, std::string* why) {
  const std::string type(value_type_name(t));
  const char* p = text;
  const bool negative = *p == '-';
  if (*p == '-' || *p == '+') ++p;
  int base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, p += 2;
  // from_chars alone would accept a second sign or stop at the first bad
  // character; the whole rest must be digits.
  const char* end = p + std::strlen(p);
  uint64_t magnitude = 0;
  auto [stop, ec] = std::from_chars(p, end, magnitude, base);
  if (p == end || *p == '-' || *p == '+' || stop != end || ec == std::errc::invalid_argument) {
    *why = "is not a valid " + type + " (expected a decimal or 0x-hex integer)";
    return false;
  }
  const Range r = range_of(t);
  const std::string range =
      "out of range for " + type + " (" + std::to_string(r.min) + " to " + std::to_string(r.max) + ")";
  if (ec == std::errc::result_out_of_range) {
    *why = "is " + range;
    return false;
  }
  if (!negative) {
    if (magnitude > r.max) {
      *why = "is " + range;
      return false;
    }
    *out = magnitude;
    return true;
  }
  // -magnitude >= r.min, written without overflowing: r.min is 0 or negative.
  const uint64_t limit = r.min == 0 ? 0 : uint64_t{0} - static_cast<uint64_t>(r.min);
  if (magnitude > limit) {
    *why = "is " + range;
    return false;
  }
  *out = uint64_t{0} - magnitude;  // two's complement of the negative value
  return true;
}

bool parse_f64(const char* text, uint64_t* out, std::string* why) {
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(text, &end);
  // strtod skips leading blanks; a blank is more likely a quoting mistake.
  if (!*text || std::isspace(static_cast<unsigned char>(*text)) || *end) {
    *why = "is not a valid f64 (expected a number such as 1.5, -2e3 or 0x1p4)";
    return false;
  }
  if (errno == ERANGE && std::isinf(d)) {
    *why = "is out of range for f64 (magnitude above 1.8e308)";
    return false;
  }
  std::memcpy(out, &d, sizeof d);
  return true;
}

}  // namespace

bool parse_arg(ValueType type, const char* text, uint64_t* out, std::string* why) {
  switch (type) {
    case ValueType::I32:
    case ValueType::I64:
    case ValueType::U32:
    case ValueType::U64:
    case ValueType::Ptr: return parse_integer(type, text, out, why);
    case ValueType::F64: return parse_f64(text, out, why);
    case ValueType::Str: *out = reinterpret_cast<uint64_t>(text); return true;
    case ValueType::Void: break;
  }
  *why = "has type void, which no argument can have";
  return false;
}

}  // namespace subctx::tool
