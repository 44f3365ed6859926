// A rule for the system calls of subcontext code (docs/containment.md):
// given by a server at snapshot (carried in the image) or by a client at
// map (over the image's); both go over the Matchmaker's defaults.
#pragma once

#include <cstdint>
#include <string>

namespace subctx {

struct SyscallRule {
  enum class Action : uint8_t { Allow = 0, Deny = 1, Fault = 2 };
  std::string syscall;  // a name ("openat") or a number ("257"), x86-64
  Action action = Action::Deny;
  int error = 1;  // Deny: the errno the subcontext gets (EPERM)
};

}  // namespace subctx
