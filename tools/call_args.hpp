// What `subctx call` and `subctx train` share: an export found by name and
// its arguments typed by its signature.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "subctx/signature.hpp"
#include "subctx/subctx.hpp"

namespace subctx::tool {

// The export named `name`; NoSuchExport listing the image's exports else.
ExportInfo find_export(const Subcontext& sc, const std::string& name);

// text typed by sig (UsageError for `command`'s usage when it does not fit).
std::vector<uint64_t> parse_args(const std::string& path, const ExportInfo& e, const Signature& sig,
                                 const std::vector<std::string>& text);

}  // namespace subctx::tool
