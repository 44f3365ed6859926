// Error codes, names and the C API's thread-local message.
#include "subctx/error.hpp"

namespace subctx {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::InvalidArgument: return "InvalidArgument";
    case Errc::NotInitialized: return "NotInitialized";
    case Errc::NotFound: return "NotFound";
    case Errc::NotRegular: return "NotRegular";
    case Errc::Permission: return "Permission";
    case Errc::BadImage: return "BadImage";
    case Errc::Version: return "Version";
    case Errc::Digest: return "Digest";
    case Errc::Cpu: return "Cpu";
    case Errc::Limit: return "LimitExceeded";
    case Errc::Conflict: return "AddressConflict";
    case Errc::AlreadyMapped: return "AlreadyMapped";
    case Errc::NoSubcontext: return "NoSubcontext";
    case Errc::NoExport: return "NoExport";
    case Errc::Signature: return "SignatureMismatch";
    case Errc::Snapshot: return "SnapshotRefused";
    case Errc::Io: return "Io";
    case Errc::System: return "System";
    case Errc::Policy: return "PolicyDenied";
    case Errc::Unsupported: return "Unsupported";
    case Errc::Fault: return "SubcontextFault";
    case Errc::Timeout: return "Timeout";
    case Errc::Quota: return "QuotaExceeded";
    case Errc::Poisoned: return "SubcontextPoisoned";
  }
  return "Unknown";
}

void throw_error(Errc code, const std::string& message) {
  switch (code) {
    case Errc::NotInitialized: throw NotInitialized(message);
    case Errc::NotFound: throw ImageNotFound(message);
    case Errc::NotRegular: throw NotRegularFile(message);
    case Errc::Permission: throw PermissionDenied(message);
    case Errc::BadImage: throw BadImage(message);
    case Errc::Version: throw UnsupportedVersion(message);
    case Errc::Digest: throw DigestMismatch(message);
    case Errc::Cpu: throw CpuMismatch(message);
    case Errc::Limit: throw LimitExceeded(message);
    case Errc::Conflict: throw AddressConflict(message);
    case Errc::AlreadyMapped: throw AlreadyMapped(message);
    case Errc::NoSubcontext: throw NoSuchSubcontext(message);
    case Errc::NoExport: throw NoSuchExport(message);
    case Errc::Signature: throw SignatureMismatch(message);
    case Errc::Snapshot: throw SnapshotRefused(message);
    case Errc::Io: throw IoError(message);
    case Errc::System: throw SystemError(message);
    case Errc::Policy: throw PolicyDenied(message);
    case Errc::Unsupported: throw Unsupported(message);
    case Errc::Fault: throw SubcontextFault(message, {});
    case Errc::Timeout: throw Timeout(message, {});
    case Errc::Quota: throw QuotaExceeded(message, {});
    case Errc::Poisoned: throw SubcontextPoisoned(message);
    case Errc::InvalidArgument: break;
  }
  throw Error(code, message);
}

}  // namespace subctx
