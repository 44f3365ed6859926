// Turning image fields into text a person reads: sizes, times, permissions,
// addresses, and strings from the image made safe for a terminal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace subctx::tool {

// "8.4 MiB"; exact below 1 KiB ("512 B").
std::string human_size(uint64_t bytes);

// "8.4 MiB (8806400 bytes)".
std::string size_and_bytes(uint64_t bytes);

// "2025-01-02 03:04:05.678 UTC" from nanoseconds since the epoch.
std::string utc_time(uint64_t ns_since_epoch);

// "r-x" from PROT_* bits.

// "0x00007f12345000": fixed width, so columns of addresses line up
// (user-space addresses have at most 12 hex digits).
std::string address(uint64_t a);

// Strings read from an image are untrusted: a crafted origin or kernel name
// must not send escape sequences to the terminal.  The tool shows them
// through sys::printable (sys/io.hpp), the library's messages' escaping,
// whole (sys::kNoLimit).

}  // namespace subctx::tool
