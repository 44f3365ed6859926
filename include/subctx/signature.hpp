// Export signatures: the pinned string format and the mapping from C++
// function types to it.  Shared by the server (SUBCTX_EXPORT) and the client
// (type-checked calls), so both sides derive the same string from one type.
//
// Format: return type, then the argument types in parentheses, comma
// separated, no spaces; types from: void i32 i64 u32 u64 f64 ptr str.
// Examples: "i64(i64)", "f64(f64,f64)", "i32(str,ptr)", "void()".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "subctx/visibility.h"

namespace subctx {

enum class ValueType : uint8_t { Void, I32, I64, U32, U64, F64, Ptr, Str };

// Who may call an export: anyone the policy lets map the image, or only
// clients whose policy grants it by name (docs/policy.md).  The image
// stores the number.
enum class Visibility : uint8_t { Public = 0, Restricted = 1 };

// At most this many arguments of each register class (System V ABI
// registers; no arguments on the stack).
inline constexpr int kMaxIntArgs = 6;
inline constexpr int kMaxF64Args = 8;

struct SUBCTX_API Signature {
  ValueType result = ValueType::Void;
  std::vector<ValueType> args;

  std::string str() const;
  int int_args() const;
  int f64_args() const;
  friend bool operator==(const Signature&, const Signature&) = default;
};

// Parses a signature string; returns false and sets *why on error.
SUBCTX_API bool parse_signature(std::string_view text, Signature* out, std::string* why);

SUBCTX_API std::string_view value_type_name(ValueType t);

namespace detail {

template <class T, class = void>
struct value_type_of {
  static_assert(sizeof(T) == 0,
                "subctx: type not allowed in an export signature; use int32_t, "
                "int64_t, uint32_t, uint64_t, double, const char* or a pointer");
};
// clang-format off
template <> struct value_type_of<void> { static constexpr ValueType value = ValueType::Void; };
template <> struct value_type_of<int> { static constexpr ValueType value = ValueType::I32; };
template <> struct value_type_of<unsigned> { static constexpr ValueType value = ValueType::U32; };
template <> struct value_type_of<long> { static constexpr ValueType value = ValueType::I64; };
template <> struct value_type_of<long long> { static constexpr ValueType value = ValueType::I64; };
template <> struct value_type_of<unsigned long> { static constexpr ValueType value = ValueType::U64; };
template <> struct value_type_of<unsigned long long> { static constexpr ValueType value = ValueType::U64; };
template <> struct value_type_of<double> { static constexpr ValueType value = ValueType::F64; };
template <> struct value_type_of<const char*> { static constexpr ValueType value = ValueType::Str; };
template <> struct value_type_of<char*> { static constexpr ValueType value = ValueType::Str; };
// clang-format on
template <class T>
struct value_type_of<T*, std::enable_if_t<!std::is_same_v<std::remove_cv_t<T>, char>>> {
  static constexpr ValueType value = ValueType::Ptr;
};

template <class T>
inline constexpr ValueType value_type_v = value_type_of<std::remove_cv_t<T>>::value;

template <class F>
struct signature_of;
template <class R, class... A>
struct signature_of<R(A...)> {
  static Signature get() { return Signature{value_type_v<R>, {value_type_v<A>...}}; }
  static constexpr int int_args = ((value_type_v<A> != ValueType::F64 ? 1 : 0) + ... + 0);
  static constexpr int f64_args = ((value_type_v<A> == ValueType::F64 ? 1 : 0) + ... + 0);
  static_assert(int_args <= kMaxIntArgs, "subctx: at most 6 integer/pointer arguments");
  static_assert(f64_args <= kMaxF64Args, "subctx: at most 8 f64 arguments");
};
template <class R, class... A>
struct signature_of<R (*)(A...)> : signature_of<R(A...)> {};
template <class R, class... A>
struct signature_of<R(A...) noexcept> : signature_of<R(A...)> {};
template <class R, class... A>
struct signature_of<R (*)(A...) noexcept> : signature_of<R(A...)> {};

}  // namespace detail

// The signature of a C++ function type, e.g. signature_of<int64_t(int64_t)>().
template <class F>
Signature signature_of() {
  return detail::signature_of<F>::get();
}

}  // namespace subctx
