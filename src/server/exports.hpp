// The server's export table, filled by SUBCTX_EXPORT / sbc_export before the
// snapshot.
#pragma once

#include <vector>

#include "image/format.hpp"

namespace subctx::server {

std::vector<image::ExportRecord> registered_exports();

}  // namespace subctx::server
