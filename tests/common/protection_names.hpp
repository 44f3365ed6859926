// The protection backend a test parameter names: "none", "mprotect",
// "pkey"; anything else is Auto.
#pragma once

#include <string_view>
#include <subctx/subctx.hpp>

namespace subctx::testing {

inline Protection protection_named(std::string_view name) {
  if (name == "none") return Protection::None;
  if (name == "mprotect") return Protection::Mprotect;
  if (name == "pkey") return Protection::Pkey;
  return Protection::Auto;
}

}  // namespace subctx::testing
