// subctx — the C++ server API: declare exports, then snapshot.
//
//   int64_t square(int64_t x) { return x * x; }
//   SUBCTX_EXPORT(square);
//   int main() { build_tables(); subctx::snapshot_and_exit("square.img"); }
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "subctx/error.hpp"
#include "subctx/signature.hpp"
#include "subctx/syscall_rule.hpp"

namespace subctx {

using ExportVisibility = Visibility;  // signature.hpp: the one both sides use

struct SnapshotOptions {
  // Stack for calls into the image: as large as a main thread's, because
  // server code was written for one.  Untouched pages cost nothing (holes).
  std::size_t gate_stack_size = std::size_t{8} << 20;
  // Rules for the image's system calls in every client, over the
  // Matchmaker's defaults (a client's own rules go over these); carried in
  // the image, shown by `subctx inspect`.  docs/containment.md.
  std::vector<SyscallRule> syscalls;
  // Descriptors to leave behind (docs/identity.md).  Open regular files,
  // directories and /dev/null-like devices are reopened by path in every
  // client; anything else (a pipe, a socket, an eventfd, ...) open at
  // snapshot time is refused unless listed here: inside the subcontext a
  // dropped number is EBADF.  sbc_snapshot_drop_fd() adds to this list.
  std::vector<int> dropped_fds;
  // The image file's mode, less the umask (as open(2) applies it).  An
  // image holds the server's heap, stack, environment and whatever secrets
  // they hold (docs/format.md): 0600 by default, as core dumps are.  0640
  // or 0644 let clients of other users map it; group and others may never
  // write an image (clients refuse it).
  unsigned mode = 0600;
  // The image's code starts programs (posix_spawn, vfork + exec, Python's
  // subprocess): clients allow it unless their policy denies it; without
  // it, only a client policy rule allows it (docs/threads.md,
  // docs/policy.md).  sbc_snapshot_declare_spawns() sets it in C.
  bool spawns = false;
};

// Declares an export (what SUBCTX_EXPORT expands to).  Throws Error on a bad
// name or signature.
SUBCTX_API void export_function(const std::string& name, void* fn, const Signature& signature,
                                ExportVisibility visibility = ExportVisibility::Public);

// Declares an import (docs/callbacks.md): a function the subcontext calls and
// each client provides (Subcontext::bind).  Returns a pointer server code
// calls as the function itself, inside calls after the snapshot; called
// outside one (in the server process) it ends the process with a message.
// Declaring a name again with the same signature returns the same pointer;
// another signature throws SignatureMismatch; past image::kMaxImports (256)
// it throws LimitExceeded.
//   auto host_log = subctx::import<int64_t(const char*)>("host_log");
SUBCTX_API void* import_function(const std::string& name, const Signature& signature);
template <class F>
F* import(const std::string& name) {
  return reinterpret_cast<F*>(import_function(name, signature_of<F>()));
}

// Writes the image of this process and returns.  Throws SnapshotRefused when
// the process cannot be snapshotted as it is (the message says how to fix it).
SUBCTX_API void snapshot(const std::string& image_path, const SnapshotOptions& options = {});

// Writes the image and ends the process (exit status 0), without running
// atexit handlers or destructors: the image holds the state, not this process.
[[noreturn]] SUBCTX_API void snapshot_and_exit(const std::string& image_path, const SnapshotOptions& options = {});

namespace detail {
template <class F>
struct ExportRegistrar {
  ExportRegistrar(const char* name, F* fn, ExportVisibility visibility) {
    export_function(name, reinterpret_cast<void*>(fn), ::subctx::signature_of<F>(), visibility);
  }
};
}  // namespace detail

}  // namespace subctx

#define SUBCTX_CONCAT_(a, b) a##b
#define SUBCTX_CONCAT(a, b) SUBCTX_CONCAT_(a, b)

// Exports fn under its own name; the signature comes from its type.
#define SUBCTX_EXPORT(fn) SUBCTX_EXPORT_AS(#fn, fn)
#define SUBCTX_EXPORT_AS(name, fn)                                                              \
  static ::subctx::detail::ExportRegistrar<std::remove_pointer_t<decltype(&fn)>> SUBCTX_CONCAT( \
      subctx_export_, __LINE__)(name, &fn, ::subctx::ExportVisibility::Public)
#define SUBCTX_EXPORT_RESTRICTED(fn)                                                            \
  static ::subctx::detail::ExportRegistrar<std::remove_pointer_t<decltype(&fn)>> SUBCTX_CONCAT( \
      subctx_export_, __LINE__)(#fn, &fn, ::subctx::ExportVisibility::Restricted)
