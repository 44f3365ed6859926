// Protection backends: what keeps the client out of a subcontext's memory
// outside calls (docs/protection.md).
//   none      nothing (trusted images; the fastest path)
//   mprotect  the gate opens the subcontext's memory for a call and closes
//             it after (protection_plan.hpp: few system calls per call)
//   pkey      every page carries the subcontext's protection key; the gate
//             gives the calling thread the key's rights for the call
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gate/protection_plan.hpp"
#include "subctx/subctx.hpp"
#include "sys/mapping.hpp"

namespace subctx::gate {

// The backend a subcontext got: the public enum (never Auto here), named
// by protection_name().
using Backend = Protection;

// Whether pkey_alloc() works here (probed once); *why says why not.
bool pkeys_available(std::string* why);

struct ProtectionStats {
  size_t clusters = 0;
  size_t open_calls = 0;   // mprotect calls to open for one call
  size_t close_calls = 0;  // and to close after it
  int pkey = -1;
};

// One subcontext's protection.  Set up by the Matchmaker after it mapped the
// segments; open()/close() bracket every call (call mutex held).
class Protection {
 public:
  Protection() = default;
  Protection(const Protection&) = delete;
  Protection& operator=(const Protection&) = delete;
  ~Protection() { reset(); }

  // segments: the subcontext's mapped ranges and their own permissions.
  // Throws SystemError / LimitExceeded; path names the image in messages.
  void setup_none() { backend_ = Backend::None; }
  // image_dev/image_ino: the image file, whose views repair() recognizes.
  void setup_mprotect(const std::vector<Piece>& segments, const PlanOptions& options, const std::string& path,
                      uint64_t image_dev, uint64_t image_ino);
  void setup_pkey(const std::vector<Piece>& segments, int key, const std::string& path);
  // The file mapped as the vDSO forwarder (a sealed memfd; 0: the forwarder
  // is anonymous memory), whose view repair() recognizes as the forwarder's.
  void set_forwarder_file(uint64_t dev, uint64_t ino) { forwarder_dev_ = dev, forwarder_ino_ = ino; }
  // mprotect, merged permissions: *made_executable turns true once
  // subcontext code gave part of its image PROT_EXEC (the SIGSYS handler's
  // SubMappings); from the next call on every stretch opens executable.
  void watch_made_executable(const bool* made_executable) { made_executable_ = made_executable; }

  Backend backend() const { return backend_; }
  const ProtectionPlan& plan() const { return plan_; }
  ProtectionStats stats() const;
  bool readable() const { return options_.readable; }
  int pkey() const { return pkey_; }
  bool exact() const { return options_.exact; }
  // Whether client code may read the memory outside calls.
  bool client_may_read() const { return backend_ == Backend::None || options_.readable; }

  // Before entering (throws SystemError when the memory cannot be opened;
  // nothing was entered then) and after leaving (never throws).  The pkey
  // backend changes only this thread's rights: open() returns the PKRU value
  // that close() restores.  Nested windows (a call from a callback) close
  // the mprotect backend's memory with the outermost.
  uint32_t open();
  void close(uint32_t saved_pkru);
  // fork(): the windows open in the parent were another thread's, which the
  // child does not have (its memory stays as that left it: open).
  void forget_windows() { open_depth_ = 0; }

  // Gaps reserved between segments, for the fault handler's report.
  const std::vector<sys::Mapping>& reservations() const { return reservations_; }
  // Hands the reserved gaps over (unmap munmaps them with the segments).
  std::vector<sys::Mapping> take_reservations() { return std::exchange(reservations_, {}); }
  // Ranges the subcontext gave up during calls (found by repair()): no
  // longer its memory.  take_repaired() says once that the list grew.
  const std::vector<std::pair<uint64_t, uint64_t>>& released() const { return released_; }
  bool take_repaired() { return std::exchange(repaired_, false); }

  // Unmaps the reserved gaps and frees the key (the segments are gone).
  void reset();

 private:
  bool apply(const std::vector<ProtectOp>& ops, int* failed_errno, ProtectOp* failed_op = nullptr);
  void repair();
  void open_code_everywhere();

  Backend backend_ = Backend::None;
  PlanOptions options_;
  ProtectionPlan plan_;
  std::vector<sys::Mapping> reservations_;
  std::vector<std::pair<uint64_t, uint64_t>> released_;
  bool repaired_ = false;
  uint64_t image_dev_ = 0, image_ino_ = 0;
  uint64_t forwarder_dev_ = 0, forwarder_ino_ = 0;
  int pkey_ = -1;
  uint32_t open_depth_ = 0;  // mprotect: windows open (nested through callbacks)
  const bool* made_executable_ = nullptr;
  bool all_code_refused_ = false;
};

// RAII: a call's protection window.
class ProtectionWindow {
 public:
  explicit ProtectionWindow(Protection& p) : p_(p), saved_(p.backend() == Backend::None ? 0 : p.open()) {}
  ~ProtectionWindow() {
    if (p_.backend() != Backend::None) p_.close(saved_);
  }
  ProtectionWindow(const ProtectionWindow&) = delete;
  ProtectionWindow& operator=(const ProtectionWindow&) = delete;

 private:
  Protection& p_;
  uint32_t saved_;
};

}  // namespace subctx::gate
