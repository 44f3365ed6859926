// Command-line text to a raw argument slot of sbc_request_call, by the type
// the export's signature gives.  Pure: no I/O, unit-tested on its own.
#pragma once

#include <cstdint>
#include <string>

#include "subctx/signature.hpp"

namespace subctx::tool {

// Integers (i32 i64 u32 u64 ptr): decimal or 0x hex, an optional sign, and the
// value must fit the type ("-0x10" is -16; "0xffffffff" is not an i32).
// f64: anything strtod takes in full (1.5, -2e3, 0x1p4, inf, nan), stored as
// its bit pattern as the C API wants.  str: the address of `text` itself, so
// text must outlive the call.
// Returns false and sets *why (a phrase such as "is out of range for i32")
// when text does not parse; Void never parses.
bool parse_arg(ValueType type, const char* text, uint64_t* out, std::string* why);

}  // namespace subctx::tool
