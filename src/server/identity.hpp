// The server's kernel-side identity at snapshot time (docs/identity.md): its
// open descriptors, working directory, umask, pid and the dispositions of
// the signals its code raises synchronously.  The image's memory holds
// descriptor numbers (in FILE objects, in a database's handle) and relative
// paths that mean something only together with these; a client reopens the
// descriptors by path and gives the subcontext its own numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "image/format.hpp"

namespace subctx::server {

// Reads /proc/self: every descriptor from 3 up, sorted by number.  Throws
// SnapshotRefused, listing every descriptor a client could not reopen
// (pipes, sockets, deleted files, ...) that is not in `dropped`, or when the
// working directory cannot be named.  Dropped descriptors are recorded with
// dropped = true; numbers in `dropped` that are not open are ignored.
image::IdentityRecord collect_identity(const std::vector<int>& dropped);

// The image's creation time, the kernel and this CPU's features (both
// snapshots; the libc is each one's own to name).
void stamp_machine(image::ImageInfo& info);

// Whose identity: this process (the default), or another one read through
// /proc/PID (`subctx snapshot --pid`, src/external/: its descriptors stat()ed
// through their /proc links, its dispositions from SigIgn/SigCgt).  The
// texts finish the refusals' advice.
struct IdentitySource {
  std::string proc_dir = "/proc/self";
  int pid = 0;  // when !self
  bool self = true;
  std::string drop_advice =
      "close it before snapshot(), or declare it dropped (SnapshotOptions::dropped_fds; sbc_snapshot_drop_fd() in C)";
  std::string moment = "snapshot()";
};
image::IdentityRecord collect_identity(const IdentitySource& source, const std::vector<int>& dropped);

// Pure parsers of /proc text (tested on captured fixtures).
// /proc/self/fdinfo/N: "pos:" (decimal) and "flags:" (octal); false when
// either is missing or malformed.
bool parse_fdinfo(std::string_view text, uint64_t* pos, uint32_t* flags);
// /proc/self/status: "Umask:" (octal, at most 0777); false when missing or
// malformed (kernels before 4.7 do not print it).
bool parse_status_umask(std::string_view text, uint32_t* umask);

}  // namespace subctx::server
