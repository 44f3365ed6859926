#include "common/c_error.hpp"

#include "subctx/subctx.h"

namespace subctx::detail {

namespace {
thread_local std::string t_last_error;
}

void set_last_error(const std::string& message) { t_last_error = message; }
const char* last_error() { return t_last_error.c_str(); }

}  // namespace subctx::detail

// In the common objects: both libraries (client and server) report errors
// through it.
extern "C" const char* sbc_last_error(void) { return subctx::detail::last_error(); }
