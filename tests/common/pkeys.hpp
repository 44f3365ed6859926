// Whether this CPU and kernel give out protection keys: tests of the pkey
// backend skip where they do not (CI must not depend on them).
#pragma once

#include <sys/mman.h>

namespace subctx::testing {

inline bool pkeys_work() {
  static const bool ok = [] {
    const int key = pkey_alloc(0, 0);
    if (key < 0) return false;
    pkey_free(key);
    return true;
  }();
  return ok;
}

}  // namespace subctx::testing
