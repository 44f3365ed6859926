// Errors: every failure is a subctx::Error with a code (the SBC_E_* value of
// the C API) and a message that says what happened and what to do.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "subctx/subctx.h"

namespace subctx {

enum class Errc : int {
  InvalidArgument = SBC_E_INVALID_ARGUMENT,
  NotInitialized = SBC_E_NOT_INITIALIZED,
  NotFound = SBC_E_NOT_FOUND,
  NotRegular = SBC_E_NOT_REGULAR,
  Permission = SBC_E_PERMISSION,
  BadImage = SBC_E_BAD_IMAGE,
  Version = SBC_E_VERSION,
  Digest = SBC_E_DIGEST,
  Cpu = SBC_E_CPU,
  Limit = SBC_E_LIMIT,
  Conflict = SBC_E_CONFLICT,
  AlreadyMapped = SBC_E_ALREADY_MAPPED,
  NoSubcontext = SBC_E_NO_SUBCONTEXT,
  NoExport = SBC_E_NO_EXPORT,
  Signature = SBC_E_SIGNATURE,
  Snapshot = SBC_E_SNAPSHOT,
  Io = SBC_E_IO,
  System = SBC_E_SYSTEM,
  Policy = SBC_E_POLICY,
  Unsupported = SBC_E_UNSUPPORTED,
  Fault = SBC_E_FAULT,
  Timeout = SBC_E_TIMEOUT,
  Quota = SBC_E_QUOTA,
  Poisoned = SBC_E_POISONED,
};

// Short name of a code, e.g. "BadImage".
SUBCTX_API const char* errc_name(Errc code);

class SUBCTX_API Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

#define SUBCTX_DEFINE_ERROR(Name, Code)                                       \
  class SUBCTX_API Name : public Error {                                      \
   public:                                                                    \
    explicit Name(const std::string& message) : Error(Errc::Code, message) {} \
  };
SUBCTX_DEFINE_ERROR(NotInitialized, NotInitialized)
SUBCTX_DEFINE_ERROR(ImageNotFound, NotFound)
SUBCTX_DEFINE_ERROR(NotRegularFile, NotRegular)
SUBCTX_DEFINE_ERROR(PermissionDenied, Permission)
SUBCTX_DEFINE_ERROR(BadImage, BadImage)
SUBCTX_DEFINE_ERROR(UnsupportedVersion, Version)
SUBCTX_DEFINE_ERROR(DigestMismatch, Digest)
SUBCTX_DEFINE_ERROR(CpuMismatch, Cpu)
SUBCTX_DEFINE_ERROR(LimitExceeded, Limit)
SUBCTX_DEFINE_ERROR(AddressConflict, Conflict)
SUBCTX_DEFINE_ERROR(AlreadyMapped, AlreadyMapped)
SUBCTX_DEFINE_ERROR(NoSuchSubcontext, NoSubcontext)
SUBCTX_DEFINE_ERROR(NoSuchExport, NoExport)
SUBCTX_DEFINE_ERROR(SignatureMismatch, Signature)
SUBCTX_DEFINE_ERROR(SnapshotRefused, Snapshot)
SUBCTX_DEFINE_ERROR(IoError, Io)
SUBCTX_DEFINE_ERROR(SystemError, System)
SUBCTX_DEFINE_ERROR(PolicyDenied, Policy)
SUBCTX_DEFINE_ERROR(Unsupported, Unsupported)
SUBCTX_DEFINE_ERROR(SubcontextPoisoned, Poisoned)
#undef SUBCTX_DEFINE_ERROR

// One frame of the subcontext's stack at a fault.
struct FaultFrame {
  uint64_t address = 0;
  std::string symbol;  // "name+0x1a (module)", or "?? (module+0x...)"
};

// A call that ended inside the subcontext: a signal (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP, SIGABRT from abort()), exit() or _exit(), an
// overflow of the gate stack; subclasses: deadline and quota.  The client's
// frames unwind normally; the subcontext was reset, poisoned or kept as its
// fault policy says (message and reset_done()).
class SUBCTX_API SubcontextFault : public Error {
 public:
  struct Details {
    int signal = 0;        // 0 for exit, deadline and quota
    int exit_status = -1;  // exit()/_exit() inside: its status
    uint64_t address = 0;  // the faulting address (si_addr)
    uint64_t pc = 0;
    std::string export_name;  // the export that was called
    std::string import_name;  // an import call that could not run (unbound, too deep): its name
    std::vector<FaultFrame> frames;
    bool reset_done = false;
    // A batch (Function::call_each): the calls that returned before the
    // one that failed; their results are stored.  0 for a single call.
    uint64_t completed = 0;
  };
  SubcontextFault(const std::string& message, Details d, Errc code = Errc::Fault)
      : Error(code, message), d_(std::move(d)) {}
  int signal() const noexcept { return d_.signal; }
  int exit_status() const noexcept { return d_.exit_status; }
  uint64_t address() const noexcept { return d_.address; }
  uint64_t pc() const noexcept { return d_.pc; }
  const std::string& export_name() const noexcept { return d_.export_name; }
  const std::string& import_name() const noexcept { return d_.import_name; }
  const std::vector<FaultFrame>& frames() const noexcept { return d_.frames; }
  bool reset_done() const noexcept { return d_.reset_done; }
  uint64_t completed() const noexcept { return d_.completed; }

 private:
  Details d_;
};

class SUBCTX_API Timeout : public SubcontextFault {
 public:
  Timeout(const std::string& message, Details d) : SubcontextFault(message, std::move(d), Errc::Timeout) {}
};

class SUBCTX_API QuotaExceeded : public SubcontextFault {
 public:
  QuotaExceeded(const std::string& message, Details d) : SubcontextFault(message, std::move(d), Errc::Quota) {}
};

// Throws the Error subclass that matches code.
[[noreturn]] SUBCTX_API void throw_error(Errc code, const std::string& message);

}  // namespace subctx
