// Binding the image's imports to the client's functions (docs/callbacks.md).
// Bindings change under the call lock, never inside a call of the same
// subcontext: a call sees the same bindings from start to end.
#include <mutex>
#include <string>

#include "common/c_error.hpp"
#include "matchmaker/registry.hpp"
#include "subctx/subctx.h"
#include "subctx/subctx.hpp"

namespace subctx {

namespace {

detail::SubcontextState& bindable(const std::shared_ptr<detail::SubcontextState>& p, const char* what) {
  if (!p) throw NoSuchSubcontext(std::string(what) + " on an empty Subcontext");
  matchmaker::refuse_from_inside_call(*p, what);
  return *p;
}

detail::ImportBinding& find_import(detail::SubcontextState& s, std::string_view name) {
  for (auto& b : s.imports)
    if (b.name == name) return b;
  throw NoSuchExport("image " + s.path + " has no import \"" + std::string(name) + "\" (" +
                     std::to_string(s.imports.size()) + " imports; `subctx inspect " + s.path + "` lists them)");
}

}  // namespace

void Subcontext::bind_import(std::string_view name, void* fn, const Signature& sig, void* user,
                             std::shared_ptr<void> owner) const {
  detail::SubcontextState& s = bindable(state_, "bind");
  std::lock_guard lock(s.call_lock);
  if (!s.mapped) detail::throw_unmapped(s);
  detail::ImportBinding& b = find_import(s, name);
  if (fn && !(b.signature == sig))
    throw SignatureMismatch("import \"" + b.name + "\" of " + s.path + " has signature " + b.signature_text +
                            "; bound as " + sig.str());
  b.fn = fn;
  b.user = fn ? user : nullptr;
  b.owner = fn ? std::move(owner) : nullptr;
}

void Subcontext::unbind(std::string_view name) const { bind_import(name, nullptr, Signature{}, nullptr, nullptr); }

std::vector<ImportInfo> Subcontext::imports() const {
  if (!state_) throw NoSuchSubcontext("imports() of an empty Subcontext");
  detail::SubcontextState& s = bindable(state_, "imports()");
  std::lock_guard lock(s.call_lock);
  std::vector<ImportInfo> out;
  for (const auto& b : s.imports) out.push_back({b.name, b.signature_text, b.fn != nullptr});
  return out;
}

}  // namespace subctx

namespace {

int c_bind(int sc, const char* import_name, void* fn, const char* signature, void* user) {
  return subctx::detail::c_call([&] {
    if (!import_name) throw subctx::Error(subctx::Errc::InvalidArgument, "sbc_bind: the import's name is required");
    subctx::Signature sig;
    if (fn) {
      if (!signature) throw subctx::Error(subctx::Errc::InvalidArgument, "sbc_bind: the signature is required");
      std::string why;
      if (!subctx::parse_signature(signature, &sig, &why))
        throw subctx::SignatureMismatch(std::string("sbc_bind: import \"") + import_name + "\": " + why);
    }
    subctx::Matchmaker::instance().find(sc).bind_import(import_name, fn, sig, user, nullptr);
    return 0;
  });
}

}  // namespace

int sbc_bind(int sc, const char* import_name, void* fn, const char* signature) {
  return c_bind(sc, import_name, fn, signature, nullptr);
}

int sbc_bind_user(int sc, const char* import_name, void* fn, const char* signature, void* user) {
  return c_bind(sc, import_name, fn, signature, user);
}
