#include "support/e2e_test.hpp"

#include <sys/mman.h>

namespace e2e {

bool is_error_class(const subctx::Error& e, subctx::Errc code) {
  using subctx::Errc;
  switch (code) {
    case Errc::NotInitialized: return dynamic_cast<const subctx::NotInitialized*>(&e) != nullptr;
    case Errc::NotFound: return dynamic_cast<const subctx::ImageNotFound*>(&e) != nullptr;
    case Errc::NotRegular: return dynamic_cast<const subctx::NotRegularFile*>(&e) != nullptr;
    case Errc::Permission: return dynamic_cast<const subctx::PermissionDenied*>(&e) != nullptr;
    case Errc::BadImage: return dynamic_cast<const subctx::BadImage*>(&e) != nullptr;
    case Errc::Version: return dynamic_cast<const subctx::UnsupportedVersion*>(&e) != nullptr;
    case Errc::Digest: return dynamic_cast<const subctx::DigestMismatch*>(&e) != nullptr;
    case Errc::Cpu: return dynamic_cast<const subctx::CpuMismatch*>(&e) != nullptr;
    case Errc::Limit: return dynamic_cast<const subctx::LimitExceeded*>(&e) != nullptr;
    case Errc::Conflict: return dynamic_cast<const subctx::AddressConflict*>(&e) != nullptr;
    case Errc::AlreadyMapped: return dynamic_cast<const subctx::AlreadyMapped*>(&e) != nullptr;
    case Errc::NoSubcontext: return dynamic_cast<const subctx::NoSuchSubcontext*>(&e) != nullptr;
    case Errc::NoExport: return dynamic_cast<const subctx::NoSuchExport*>(&e) != nullptr;
    case Errc::Signature: return dynamic_cast<const subctx::SignatureMismatch*>(&e) != nullptr;
    case Errc::Snapshot: return dynamic_cast<const subctx::SnapshotRefused*>(&e) != nullptr;
    case Errc::Io: return dynamic_cast<const subctx::IoError*>(&e) != nullptr;
    case Errc::System: return dynamic_cast<const subctx::SystemError*>(&e) != nullptr;
    case Errc::Policy: return dynamic_cast<const subctx::PolicyDenied*>(&e) != nullptr;
    case Errc::Unsupported: return dynamic_cast<const subctx::Unsupported*>(&e) != nullptr;
    case Errc::Fault: return dynamic_cast<const subctx::SubcontextFault*>(&e) != nullptr;
    case Errc::Timeout: return dynamic_cast<const subctx::Timeout*>(&e) != nullptr;
    case Errc::Quota: return dynamic_cast<const subctx::QuotaExceeded*>(&e) != nullptr;
    case Errc::Poisoned: return dynamic_cast<const subctx::SubcontextPoisoned*>(&e) != nullptr;
    case Errc::InvalidArgument: return true;  // the base class itself
  }
  return false;
}

void expect_map_refused(const std::string& path, subctx::Errc code, std::initializer_list<std::string> words,
                        const std::vector<Range>& ranges, const std::string& except) {
  // One attempt first, so that whatever memory the refusal itself needs
  // (malloc arenas, caches) exists before the maps are compared.
  try {
    mm().request_map(path);
    ADD_FAILURE() << "request_map(" << path << ") succeeded";
  } catch (const subctx::Error&) {
  }
  const std::string before = comparable_maps(read_self_maps());
  expect_error([&] { mm().request_map(path); }, code, words);
  const std::string after_cpp = read_self_maps();
  EXPECT_EQ(before, comparable_maps(after_cpp)) << "the client's mappings changed";
  EXPECT_EQ(join(lines_overlapping(after_cpp, ranges, except)), "") << "image ranges are (half-)mapped";

  const int rc = sbc_request_map(path.c_str());
  EXPECT_EQ(rc, -static_cast<int>(code)) << sbc_last_error();
  const std::string msg = sbc_last_error();
  for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "C message lacks \"" << w << "\": " << msg;
  const std::string after_c = read_self_maps();
  EXPECT_EQ(before, comparable_maps(after_c)) << "the client's mappings changed (C API)";
  EXPECT_EQ(join(lines_overlapping(after_c, ranges, except)), "") << "image ranges are (half-)mapped (C API)";
}

void expect_valid_map_works() {
  subctx::Subcontext sc = mm().request_map(basic_image());
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 7), 49);
  mm().unmap(sc);
}

void E2eTest::TearDown() {
  mm().finalize();
  mm().init();
}

}  // namespace e2e
