// The server's export and import tables, filled by SUBCTX_EXPORT /
// sbc_export and subctx::import / sbc_import before the snapshot.
#pragma once

#include <string>
#include <vector>

#include "image/format.hpp"

namespace subctx::server {

std::vector<image::ExportRecord> registered_exports();
std::vector<image::ImportRecord> registered_imports();

// An export's or import's name: 1 to 255 printable ASCII characters (throws
// InvalidArgument naming it).
void check_name(const char* kind, const std::string& name);

}  // namespace subctx::server
