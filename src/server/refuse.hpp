// How a snapshot says no, in-process (src/server) and from outside
// (src/external): SnapshotRefused, its message "snapshot refused: " and
// then what happened and what to do (what sbc_last_error() and the subctx
// command print).
#pragma once

#include <string>

#include "subctx/error.hpp"

namespace subctx::server {

[[noreturn]] inline void refuse(const std::string& msg) { throw SnapshotRefused("snapshot refused: " + msg); }

}  // namespace subctx::server
