// Reads a NUL-terminated string that an export returned: the pointer comes
// from subcontext code, so it may be NULL, wild, or point at memory the
// Matchmaker keeps unreadable outside calls.  A bad pointer is an error
// message, never a crash of the tool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace subctx::tool {

struct ReadString {
  bool ok = false;         // false: `error` says what failed
  bool truncated = false;  // no NUL within the limit
  std::string text;
  std::string error;
};

// Reads at most `limit` bytes from `addr` in this process.
ReadString read_string(uint64_t addr, size_t limit);

}  // namespace subctx::tool
