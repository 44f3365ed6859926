// The C API's error convention: negative code + thread-local message.
#pragma once

#include <string>

#include "subctx/error.hpp"

namespace subctx::detail {

void set_last_error(const std::string& message);
const char* last_error();

// Runs fn; converts a thrown Error into -code and records its message.
template <class Fn>
int c_call(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const Error& e) {
    set_last_error(e.what());
    return -static_cast<int>(e.code());
  } catch (const std::exception& e) {
    set_last_error(std::string("unexpected error: ") + e.what());
    return -SBC_E_SYSTEM;
  }
}

}  // namespace subctx::detail
