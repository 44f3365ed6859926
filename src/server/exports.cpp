#include "server/exports.hpp"

#include <mutex>

#include "common/c_error.hpp"
#include "subctx/server.hpp"
#include "subctx/subctx.h"

namespace subctx {

namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
// Function-local so that SUBCTX_EXPORT in any translation unit's static
// initializers finds it constructed.
std::vector<image::ExportRecord>& registry() {
  static std::vector<image::ExportRecord> r;
  return r;
}
}  // namespace

void export_function(const std::string& name, void* fn, const Signature& signature, ExportVisibility visibility) {
  server::check_name("export", name);
  if (!fn) throw Error(Errc::InvalidArgument, "export \"" + name + "\": function pointer is null");
  std::lock_guard lock(registry_mutex());
  for (auto& e : registry())
    if (e.name == name) throw Error(Errc::InvalidArgument, "export \"" + name + "\" declared twice");
  registry().push_back({name, reinterpret_cast<uint64_t>(fn), signature.str(), static_cast<uint8_t>(visibility)});
}

namespace server {
void check_name(const char* kind, const std::string& name) {
  if (name.empty() || name.size() > image::kMaxName)
    throw Error(Errc::InvalidArgument,
                std::string(kind) + " name must be 1 to " + std::to_string(image::kMaxName) + " characters");
  for (char c : name)
    if (c <= ' ' || c > '~')
      throw Error(Errc::InvalidArgument,
                  std::string(kind) + " name \"" + name + "\" has a character outside printable ASCII");
}

std::vector<image::ExportRecord> registered_exports() {
  std::lock_guard lock(registry_mutex());
  return registry();
}
}  // namespace server

}  // namespace subctx

extern "C" int sbc_export(const char* name, void* fn, const char* signature) {
  return subctx::detail::c_call([&] {
    if (!name || !signature)
      throw subctx::Error(subctx::Errc::InvalidArgument, "sbc_export: name and signature are required");
    subctx::Signature sig;
    std::string why;
    if (!subctx::parse_signature(signature, &sig, &why))
      throw subctx::SignatureMismatch(std::string("export \"") + name + "\": " + why);
    subctx::export_function(name, fn, sig);
    return 0;
  });
}
