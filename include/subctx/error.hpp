// Errors: every failure is a subctx::Error with a code (the SBC_E_* value of
// the C API) and a message that says what happened and what to do.
#pragma once

#include <stdexcept>
#include <string>

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
};

// Short name of a code, e.g. "BadImage".
const char* errc_name(Errc code);

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

#define SUBCTX_DEFINE_ERROR(Name, Code)                                        \
  class Name : public Error {                                                  \
   public:                                                                     \
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
#undef SUBCTX_DEFINE_ERROR

// Throws the Error subclass that matches code.
[[noreturn]] void throw_error(Errc code, const std::string& message);

}  // namespace subctx
