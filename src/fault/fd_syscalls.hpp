// System calls of subcontext code that take or make descriptors, or resolve
// relative paths: translated into the subcontext's own namespace
// (fd_table.hpp) by the SIGSYS handler.  docs/identity.md lists them.
//
// Every x86-64 system call is classified here once: one that involves no
// descriptor, one this file translates, or one it cannot (io_uring, AIO,
// bpf, the mount API, ...: refused with ENOSYS, never made untranslated).
#pragma once

#include <ucontext.h>

#include <cstdint>

#include "fault/fd_table.hpp"
#include "fault/signal_context.h"
#include "fault/syscall_make.hpp"

namespace subctx::fault {

enum class FdClass : uint8_t {
  None = 0,            // no descriptor, no path relative to the working directory
  Translated = 1,      // made through the subcontext's namespace
  Untranslatable = 2,  // takes or makes descriptors this namespace cannot follow
  Unknown = 3,         // not an x86-64 system call this Matchmaker knows
};
FdClass fd_class(long nr);

// Signal context: makes a Translated system call for subcontext code; its
// result (or -errno).
SUBCTX_SIGNAL_CONTEXT long descriptor_syscall(FdTable& t, SyscallCall& c, long nr, const greg_t* g);

// mmap's descriptor (file mappings): the real one, or -EBADF.
SUBCTX_SIGNAL_CONTEXT long translate_mmap_fd(const FdTable& t, long flags, long fd);

// Normal code (grants, revocations) while its threads may run: takes the
// table's lock and keeps the rules of fd_table.hpp.  fd_grant puts real at
// the lowest free number no reset takes (-1: none free; real is the
// caller's then); fd_revoke empties v and lets its real descriptor go
// (made dead while threads run); false when v is not there.
int fd_grant(FdTable& t, int real);
bool fd_revoke(FdTable& t, int v);

// Normal code, once the subcontext's threads are stopped: closes the dead
// descriptors kept while they ran (fd_table.hpp) and ends the table's
// locking.
void stop_sharing_descriptors(FdTable& t);

}  // namespace subctx::fault
