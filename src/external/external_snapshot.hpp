// `subctx snapshot --pid`: the image of another, unmodified process
// (docs/external-snapshot.md).  The same format and the same rules as the
// in-process snapshot (src/server/snapshot.cpp): the segments are chosen by
// server::select_segments, the descriptors and working directory recorded
// by server::collect_identity, the header encoded by image::encode_header;
// what differs is how memory and symbols are reached (ptrace,
// process_vm_readv, the target's ELF files).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace subctx::external {

struct ExternalExport {
  std::string name;       // a function symbol of the target
  std::string signature;  // "i64(i64)": as for SUBCTX_EXPORT
};

enum class Then { Continue, Kill };

struct ExternalOptions {
  pid_t pid = 0;
  std::string image_path;
  std::vector<ExternalExport> exports;
  Then then = Then::Continue;
  std::vector<int> dropped_fds;  // descriptors declared dropped (EBADF inside)
  uint64_t gate_stack_size = uint64_t{8} << 20;
  unsigned mode = 0600;
  bool spawns = false;  // the target starts programs: image::kFlagSpawns (SnapshotOptions::spawns)
};

struct ExternalReport {
  size_t segments = 0;
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;
  uint64_t data_bytes = 0;  // non-zero pages written
  size_t plt_slots_resolved = 0;
  std::vector<std::string> notes;  // what the user should know (pending output left to the target, ...)
  std::vector<std::pair<std::string, uint64_t>> exports;  // name, address
};

// Attaches, checks, writes the image (renamed into place when complete),
// then detaches (the target goes on) or kills the target.  Throws
// SnapshotRefused (a refusal, the target left running; or it exited),
// IoError, InvalidArgument (bad options), Interrupted (SIGINT, SIGTERM or
// SIGHUP reached this process: blocked meanwhile, taken at safe points,
// the target given back as it was first).  Signals sent to the target
// meanwhile are not lost (docs/external-snapshot.md, "Signals").
ExternalReport snapshot_process(const ExternalOptions& options);

}  // namespace subctx::external
