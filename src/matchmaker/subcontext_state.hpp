// What the Matchmaker keeps per mapped subcontext.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fault/view.hpp"
#include "gate/gate.hpp"
#include "gate/protection.hpp"
#include "image/format.hpp"
#include "matchmaker/call_lock.hpp"
#include "matchmaker/export_index.hpp"
#include "subctx/signature.hpp"
#include "subctx/subctx.hpp"
#include "sys/mapping.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::matchmaker {
class Symbolizer;
}

namespace subctx::detail {

struct ExportEntry {
  image::ExportRecord record;
  Signature signature;
};

// An import of the image and what the client bound to it (docs/callbacks.md).
struct ImportBinding {
  std::string name;
  std::string signature_text;
  Signature signature;
  uint32_t str_args = 0;        // bit i: integer argument register i carries a str
  void* fn = nullptr;           // null: unbound
  void* user = nullptr;         // sbc_callback_user() while it runs
  std::shared_ptr<void> owner;  // a bound C++ callable, kept while bound
};

// A descriptor of the server's, reopened at map (docs/identity.md): kept by
// the Matchmaker so that a reset can put it back where the snapshot had it.
struct RestoredFd {
  int number = -1;  // the subcontext's number for it
  sys::UniqueFd fd;
  uint64_t offset = 0;
  uint32_t status_flags = 0;  // O_APPEND, O_NONBLOCK, ...: what F_SETFL puts back
  bool seekable = false;      // a regular file not opened O_APPEND or O_PATH
  bool cloexec = false;       // the server's FD_CLOEXEC, as subcontext code sees it
};

// The image file as the Matchmaker saw it at map (fstat): a reset and a
// fault compare it with the file under the descriptor it keeps, to notice
// an image overwritten in place or truncated (reset.hpp).
struct ImageStamp {
  off_t size = 0;
  timespec mtime{}, ctime{};
  nlink_t nlink = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The signal handlers' part (fault/view.hpp: handle, thread pointer, gate
// stack, current frame, segments, system call table, memory and descriptors
// of calls, mapped-bytes quota) is the base: published at map, withdrawn at
// unmap (matchmaker.cpp, request_map.cpp).
struct SubcontextState : fault::SubcontextView {
  SubcontextState() = default;
  // The segments (the base's) go before the members below: a protection
  // key is freed only when no page carries it any more.
  ~SubcontextState() { segments.unmap(/*intact=*/false); }
  // The image's path for messages: as given to request_map, escaped
  // (sys::printable_path: a newline in it cannot forge a line of a log).
  // Never opened: the image is image_fd, its policy path canonical_path.
  std::string path;
  std::string given_path;  // as given (Subcontext::path())
  dev_t dev = 0;
  ino_t ino = 0;
  ImageStamp stamp;  // the image file at map
  image::ImageInfo info;
  std::vector<ExportEntry> exports;
  ExportIndex export_index;

  // What the policy looks at, and per export the policy generation at which
  // a call was last allowed (calls check one number while nothing changes).
  std::string canonical_path;  // the opened file's path (/proc/self/fd), never a second lookup
  uid_t owner = 0;
  // Every segment's data checked against its digest (a digest= rule names
  // the image: docs/policy.md); at map, or by the first call such a rule
  // decides.
  std::atomic<bool> segments_verified{false};
  std::unique_ptr<std::atomic<uint64_t>[]> call_allowed_generation;
  // The policy generation of may_spawn's decision (the view's): at map, and
  // again by the first call after the policy changed (update_may_spawn,
  // under the registry's mutex).
  std::atomic<uint64_t> spawn_decided_generation{0};

  // Calls into one subcontext are serialized: it has one server thread.
  CallLock call_lock;
  bool mapped = true;  // guarded by call_lock
  // Outlives the segments (~SubcontextState unmaps them first).
  gate::Protection protection;  // opened and closed under call_lock
  uint64_t raw_lo = 0;          // raw-call address of export 0
  sys::UniqueFd image_fd;       // read-only: a reset maps given-up views back
  // The vDSO forwarder's sealed memfd (ForwarderFile); 0: anonymous memory.
  uint64_t forwarder_dev = 0, forwarder_ino = 0;

  // Callbacks (docs/callbacks.md), all under call_lock (its holder's thread).
  std::vector<ImportBinding> imports;
  uint64_t import_slot = 0;    // gate_stack_hi - kImportSlotBelowTop; 0: the image has no imports
  uint32_t call_depth = 0;     // calls in progress, nested through callbacks
  uint32_t callbacks_out = 0;  // callbacks running (the subcontext waits in an import)
  uint64_t callback_sp = 0;    // its stack pointer at the innermost one: nested calls enter below it
  // Why the calls in progress fail: a callback threw, or a nested call of
  // this subcontext failed (its memory is as that left it).  The outermost
  // call applies the fault policy and rethrows it.
  std::exception_ptr failure_in_callback;

  FILE* sub_stdout = nullptr;  // in the image; flushed after each call
  FILE* sub_stderr = nullptr;
  uint64_t fflush_fn = 0;

  // Containment (docs/containment.md).  Settings are read on every call.
  MapOptions map_options;  // as mapped: a reset that restores the layout sets protection up again
  std::atomic<uint8_t> on_fault{static_cast<uint8_t>(OnFault::Reset)};
  std::atomic<uint32_t> call_timeout_ms{0};
  std::atomic<uint64_t> max_dirty_pages{0};  // max_mapped_bytes: the view's
  std::atomic<uint64_t> faults{0}, resets{0};
  std::atomic<uint64_t> dirty_pages{0}, peak_dirty_pages{0};  // as of the last scan
  std::string poisoned;                                       // why further calls fail; empty: they don't (call_lock)
  // sub_maps and fds (the view's): under call_lock, and the SIGSYS handler
  // of the thread holding it.  The server's descriptors as reopened at map,
  // its working directory, and what resets put back (docs/identity.md).
  std::vector<RestoredFd> restored_fds;
  // The process at map (its pid, the forks counted so far): after a fork the
  // restored descriptors' open files are shared with another process, and
  // every reset puts their offsets and flags back (identity.cpp).
  pid_t pid_at_map = 0;
  uint64_t forks_at_map = 0;
  sys::UniqueFd cwd;
  // ignored_signals, server_pid, syscall_action (the view's): from the
  // image at map; the table built from the defaults and the rules
  // (matchmaker/syscall_table.hpp).
  // Names fault frames; built at the first fault, its symbol tables read
  // once (call_lock).
  std::shared_ptr<const matchmaker::Symbolizer> symbolizer;
};

// "subcontext 3 (/path/of/image.img)": how messages name a subcontext.
inline std::string subcontext_name(const SubcontextState& s) {
  return "subcontext " + std::to_string(s.handle) + " (" + s.path + ")";
}

// A call, reset or other use of a subcontext unmapped meanwhile.
[[noreturn]] inline void throw_unmapped(const SubcontextState& s) {
  throw NoSuchSubcontext(subcontext_name(s) + " was unmapped");
}

}  // namespace subctx::detail
