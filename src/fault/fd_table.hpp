// A subcontext's own descriptor namespace (docs/identity.md).
//
// Subcontext code never sees the client's descriptor numbers: the numbers
// it holds (in FILE objects, SQLite's connection, a library's globals) are
// indexes into this table, which the SIGSYS handler translates into the
// client process's real descriptors for every system call (fault/
// fd_syscalls.cpp).  A number the table does not hold is EBADF, so
// subcontext code cannot reach a client's file by accident.
//
// Written by the SIGSYS handler of the thread holding the call mutex, and
// by normal code under the call mutex (map, reset, grants, unmap): fixed
// size, no allocation.  While subcontext threads run, the handlers of
// several threads write it, under its lock (below).
#pragma once

#include <atomic>
#include <cstdint>

#include "image/format.hpp"

namespace subctx::fault {

inline constexpr int kMaxFds = static_cast<int>(image::kMaxFds);

enum class FdOrigin : uint8_t {
  Free = 0,
  ClientStd = 1,  // 0, 1, 2: the client's standard streams, never closed for it
  Restored = 2,   // reopened at map (the Matchmaker keeps the real one for resets)
  Opened = 3,     // made by subcontext code during a call: the subcontext's to close
  Granted = 4,    // the client's grant (grant_fd): kept by resets
};

struct FdEntry {
  int32_t real = -1;  // the client process's descriptor
  FdOrigin origin = FdOrigin::Free;
  bool cloexec = false;  // the subcontext's view of FD_CLOEXEC (real ones are always close-on-exec)
};

struct FdTable {
  FdEntry entries[kMaxFds];
  // Numbers a grant never takes (0-2 and the restored ones): a reset puts
  // those back, and a grant outlives resets.
  uint64_t reserved[kMaxFds / 64] = {};
  // Numbers the server had but the snapshot dropped: EBADF for good (its
  // memory may still hold them), never handed out again by the table.
  uint64_t dropped[kMaxFds / 64] = {};
  int32_t cwd = -1;        // the working directory relative paths resolve against
  bool cwd_owned = false;  // opened by chdir/fchdir in a call: closed when replaced
  uint32_t umask = 022;    // the subcontext's umask (the server's at snapshot)
  uint32_t opened = 0;     // entries of origin Opened
  uint32_t granted = 0;    // entries of origin Granted
  bool active = false;     // false: not mediated (SUBCTX_SYSCALLS=off): numbers are the client's
  // What a reset looks at before putting the restored descriptors' offsets
  // and status flags back (the Matchmaker's identity.cpp): a restored number was
  // translated since the last reset (fd_real), or one may be moved by
  // others at any time (sent away by SCM_RIGHTS, claimed by the client).
  mutable bool restored_used = false;
  mutable bool restored_shared = false;
  // While subcontext threads run (threaded; fault/threads.hpp), a number one
  // thread closes may be in another's system call, translated just before
  // the close.  So its real descriptor is never closed then: it is made a
  // dead one (an O_PATH descriptor of /dev/null, by dup3: EBADF for I/O,
  // ENOTDIR as a directory) and kept
  // in dead[], and the next new descriptor of the subcontext takes its
  // number.  A stale translation thus reaches only the subcontext's own
  // files, never a number the client gets back.  The dead ones are closed
  // when the threads are stopped (reset, unmap).  Writers hold lock.
  std::atomic<bool> threaded{false};
  std::atomic<int> lock{0};
  int32_t dead[kMaxFds];
  uint32_t n_dead = 0;

  bool is_reserved(int v) const { return (reserved[v / 64] >> (v % 64)) & 1; }
  void reserve(int v) { reserved[v / 64] |= uint64_t{1} << (v % 64); }
  bool is_dropped(int v) const { return (dropped[v / 64] >> (v % 64)) & 1; }
  void drop(int v) { dropped[v / 64] |= uint64_t{1} << (v % 64); }
};

// ---- signal context and normal code alike: no libc, no allocation ----

#define SUBCTX_FD_TABLE_FN __attribute__((always_inline, no_sanitize("address", "undefined"))) inline

// The real descriptor behind the subcontext's number v, or -1.
SUBCTX_FD_TABLE_FN int fd_real(const FdTable& t, long v) {
  if (v < 0 || v >= kMaxFds) return -1;
  const FdEntry& e = t.entries[v];
  if (e.origin == FdOrigin::Restored) t.restored_used = true;
  return e.origin == FdOrigin::Free ? -1 : e.real;
}

// The lowest free number >= min (never a dropped one; grants: no reserved
// one either), or -1.
SUBCTX_FD_TABLE_FN int fd_lowest_free(const FdTable& t, long min, bool skip_reserved = false) {
  for (long v = min < 0 ? 0 : min; v < kMaxFds; ++v) {
    const int n = static_cast<int>(v);
    if (t.entries[v].origin == FdOrigin::Free && !t.is_dropped(n) && !(skip_reserved && t.is_reserved(n))) return n;
  }
  return -1;
}

// Empties entry v; returns the real descriptor the caller must close (one
// the subcontext owned: Opened, Granted), or -1.
SUBCTX_FD_TABLE_FN int fd_take(FdTable& t, int v) {
  FdEntry& e = t.entries[v];
  int close_me = -1;
  if (e.origin == FdOrigin::Opened) {
    --t.opened;
    close_me = e.real;
  } else if (e.origin == FdOrigin::Granted) {
    --t.granted;
    close_me = e.real;
  }
  e = FdEntry{};
  return close_me;
}

// Fills the free entry v.
SUBCTX_FD_TABLE_FN void fd_set(FdTable& t, int v, int real, FdOrigin origin, bool cloexec) {
  t.entries[v].real = real;
  t.entries[v].origin = origin;
  t.entries[v].cloexec = cloexec;
  if (origin == FdOrigin::Opened) ++t.opened;
  if (origin == FdOrigin::Granted) ++t.granted;
}

#undef SUBCTX_FD_TABLE_FN

}  // namespace subctx::fault
