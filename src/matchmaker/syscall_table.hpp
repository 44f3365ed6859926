// Each subcontext's system call table (SubcontextState::syscall_action),
// built at map: the defaults (syscall_defaults.hpp), then the image's rules,
// then the client's.  The SIGSYS handler (fault/syscalls.cpp) only reads it;
// the action codes are its (fault/syscalls.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "image/format.hpp"
#include "matchmaker/syscall_defaults.hpp"
#include "subctx/syscall_rule.hpp"

namespace subctx::matchmaker {

// The row of the defaults that decides system call nr (any number: x32
// ones and numbers past the known ones too).
const SyscallDefaultRow& syscall_default_row(long nr);

// The handler's action code for a row (fault::kAllow ..., or an errno).
int16_t syscall_action_code(const SyscallDefaultRow& row);

// Fills table (indexed by number): the defaults, then the image's rules
// (BadImage naming image_path when one is unusable: an image is untrusted
// and may only narrow), then the client's (InvalidArgument for an unknown
// system call, a bad errno, or one that cannot be allowed).
void build_syscall_table(std::span<int16_t> table, const std::string& image_path,
                         const std::vector<image::SyscallRuleRecord>& image_rules,
                         const std::vector<SyscallRule>& client_rules);

}  // namespace subctx::matchmaker
