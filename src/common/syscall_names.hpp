// x86-64 system call names, for rules (server and client) and messages.
#pragma once

#include <string>

#include "subctx/syscall_rule.hpp"

namespace subctx {

// The numbers rules accept (below this).
inline constexpr long kMaxRuleSyscall = 512;

// "openat" for 257, or "" for a number without a name here.
const char* syscall_name(long nr);
// A name or a decimal number below kMaxRuleSyscall; -1 when neither.
long syscall_number(const std::string& name_or_number);

// What is wrong with a rule (checked at snapshot and at map), or "".
std::string syscall_rule_problem(const SyscallRule& rule);

}  // namespace subctx
