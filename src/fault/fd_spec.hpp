// How a plainly translated system call uses descriptors (fd_class.cpp):
// which arguments are descriptors, which are directory descriptors
// (AT_FDCWD allowed), whether the result is a new descriptor.
#pragma once

#include <cstdint>

#include "fault/signal_context.h"

namespace subctx::fault {

inline constexpr long kFdTableSize = 512;

struct FdSpec {
  long nr = 0;
  uint8_t fds = 0;          // bit i: argument i is a descriptor (EBADF unless the subcontext has it)
  uint8_t dirfds = 0;       // bit i: argument i is a directory descriptor or AT_FDCWD
  bool new_fd = false;      // the result is a new descriptor
  int8_t cloexec_arg = -1;  // the argument whose cloexec_mask asks for close-on-exec
  uint32_t cloexec_mask = 0;
  int8_t mode_arg = -1;  // a creation mode the subcontext's umask applies to
};

// The spec of nr when it is translated without an emulation of its own, or null.
SUBCTX_SIGNAL_CONTEXT const FdSpec* plain_fd_spec(long nr);

}  // namespace subctx::fault
