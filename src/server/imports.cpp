// The server's import table (docs/callbacks.md): each import gets one of the
// stubs of import_stubs.S, which server code calls as the function itself.
// Its number is its place in the table, recorded in the image.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common/c_error.hpp"
#include "gate/abi.h"
#include "server/exports.hpp"
#include "subctx/server.hpp"
#include "subctx/subctx.h"

extern "C" const char subctx_import_stubs[], subctx_import_stubs_end[];

namespace subctx {

namespace {
static_assert(image::kMaxImports == SUBCTX_MAX_IMPORTS);

std::mutex& imports_mutex() {
  static std::mutex m;
  return m;
}
std::vector<image::ImportRecord>& imports() {
  static std::vector<image::ImportRecord> r;
  return r;
}
}  // namespace

void* import_function(const std::string& name, const Signature& signature) {
  server::check_name("import", name);
  const std::string sig = signature.str();
  std::lock_guard lock(imports_mutex());
  auto& table = imports();
  size_t index = 0;
  while (index < table.size() && table[index].name != name) ++index;
  if (index < table.size() && table[index].signature != sig)
    throw SignatureMismatch("import \"" + name + "\" declared with signature " + table[index].signature +
                            " and again with " + sig);
  if (index == table.size()) {
    if (table.size() == image::kMaxImports)
      throw LimitExceeded("import \"" + name + "\": an image has at most " + std::to_string(image::kMaxImports) +
                          " imports (the server library's stubs)");
    table.push_back({name, sig});
  }
  return const_cast<char*>(subctx_import_stubs) + index * SUBCTX_IMPORT_STUB_SIZE;
}

namespace server {
std::vector<image::ImportRecord> registered_imports() {
  static_assert(SUBCTX_MAX_IMPORTS * SUBCTX_IMPORT_STUB_SIZE > 0);
  std::lock_guard lock(imports_mutex());
  return imports();
}
}  // namespace server

}  // namespace subctx

// Where a stub goes when it is called outside a client's call (in the
// server process: nothing is bound there).  An import has no value to
// return, so the process ends with a message that says why.
extern "C" __attribute__((visibility("hidden"), noreturn)) void subctx_import_outside_call(uint32_t index) {
  std::string name = "#" + std::to_string(index);
  {
    auto& table = subctx::imports();
    if (index < table.size()) name = "\"" + table[index].name + "\" (" + table[index].signature + ")";
  }
  const std::string msg = "subctx: import " + name +
                          " was called outside a client's call: imports are bound by clients (sbc_bind), so server "
                          "code may call them only inside exported functions, after the snapshot\n";
  (void)!write(STDERR_FILENO, msg.data(), msg.size());
  std::abort();
}

extern "C" void* sbc_import(const char* name, const char* signature) {
  void* stub = nullptr;
  const int rc = subctx::detail::c_call([&] {
    if (!name || !signature)
      throw subctx::Error(subctx::Errc::InvalidArgument, "sbc_import: name and signature are required");
    subctx::Signature sig;
    std::string why;
    if (!subctx::parse_signature(signature, &sig, &why))
      throw subctx::SignatureMismatch(std::string("import \"") + name + "\": " + why);
    stub = subctx::import_function(name, sig);
    return 0;
  });
  return rc == 0 ? stub : nullptr;
}
