// Makes every PLT slot of every loaded object resolved before the snapshot.
// A lazily bound slot still points at the server's dynamic linker; it is
// resolved here with the same symbol name and version, as LD_BIND_NOW would.
#pragma once

#include <string>
#include <vector>

namespace subctx::server {

struct BindNowResult {
  size_t slots_checked = 0;
  size_t slots_resolved = 0;            // lazy slots this call resolved
  std::vector<std::string> unresolved;  // "object: symbol@version"
};

BindNowResult bind_all_plt_slots();

}  // namespace subctx::server
