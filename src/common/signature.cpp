// Parser and printer of the pinned signature format (see signature.hpp).
#include "subctx/signature.hpp"

namespace subctx {

namespace {
struct TypeName {
  std::string_view name;
  ValueType type;
};
constexpr TypeName kTypes[] = {
    {"void", ValueType::Void}, {"i32", ValueType::I32}, {"i64", ValueType::I64}, {"u32", ValueType::U32},
    {"u64", ValueType::U64},   {"f64", ValueType::F64}, {"ptr", ValueType::Ptr}, {"str", ValueType::Str},
};

bool lookup(std::string_view token, ValueType* out) {
  for (const auto& t : kTypes) {
    if (t.name == token) {
      *out = t.type;
      return true;
    }
  }
  return false;
}
}  // namespace

std::string_view value_type_name(ValueType t) {
  for (const auto& k : kTypes)
    if (k.type == t) return k.name;
  return "?";
}

int Signature::int_args() const {
  int n = 0;
  for (auto a : args) n += a != ValueType::F64;
  return n;
}

int Signature::f64_args() const {
  int n = 0;
  for (auto a : args) n += a == ValueType::F64;
  return n;
}

std::string Signature::str() const {
  std::string s(value_type_name(result));
  s += '(';
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) s += ',';
    s += value_type_name(args[i]);
  }
  s += ')';
  return s;
}

bool parse_signature(std::string_view text, Signature* out, std::string* why) {
  auto fail = [&](const std::string& msg) {
    if (why)
      *why = "bad signature \"" + std::string(text) + "\": " + msg +
             " (format: ret(arg,...), types void i32 i64 u32 u64 f64 ptr str, no spaces)";
    return false;
  };
  if (text.size() > 256) return fail("longer than 256 characters");
  size_t open = text.find('(');
  if (open == std::string_view::npos) return fail("missing '('");
  if (text.empty() || text.back() != ')') return fail("must end with ')'");
  Signature sig;
  std::string_view ret = text.substr(0, open);
  if (!lookup(ret, &sig.result)) return fail("unknown return type '" + std::string(ret) + "'");
  std::string_view list = text.substr(open + 1, text.size() - open - 2);
  if (!list.empty()) {
    size_t pos = 0;
    while (true) {
      size_t comma = list.find(',', pos);
      std::string_view tok = list.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      ValueType t;
      if (!lookup(tok, &t)) return fail("unknown argument type '" + std::string(tok) + "'");
      if (t == ValueType::Void) return fail("'void' is not an argument type");
      sig.args.push_back(t);
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
  }
  if (sig.int_args() > kMaxIntArgs) return fail("more than 6 integer/pointer arguments");
  if (sig.f64_args() > kMaxF64Args) return fail("more than 8 f64 arguments");
  *out = std::move(sig);
  return true;
}

}  // namespace subctx
