// Marks code that runs in signal context, possibly with a subcontext's
// thread pointer (fault/: the handlers and what they call).
//
// Such code may not touch TLS (the canary of the stack protector lives
// there, so does the sanitizers' state), take locks normal code may hold,
// allocate, call libc (not async-signal-safe; ASan's interceptors in the
// _asan library keep state in TLS) or throw (nothrow: no unwinding code
// around the calls between such functions).  Its functions go into one
// section, .text.subctx_signal, so the rule is checked: the
// signal_context_check test reads the relocations from that section in
// every object of the client library and allows only other signal-context
// code, data, and the few assembly labels listed in
// tests/unit/signal_context_allowlist.txt.
#pragma once

#define SUBCTX_SIGNAL_CONTEXT \
  __attribute__((no_sanitize("address", "undefined"), no_stack_protector, nothrow, section(".text.subctx_signal")))
// For constructors and destructors of classes in headers (GCC requires a
// named section to match their aliases'), and small helpers: always inlined
// into their signal-context callers instead.
#define SUBCTX_SIGNAL_INLINE \
  __attribute__((no_sanitize("address", "undefined"), no_stack_protector, nothrow, always_inline))

#include <cstddef>

namespace subctx::fault {

// memcpy and memset for signal context (libc's may be ASan's interceptors):
// plain loops, never turned back into library calls -- inlined, they take
// their caller's flags: the fault/ files are built with
// -fno-tree-loop-distribute-patterns (src/CMakeLists.txt).
SUBCTX_SIGNAL_INLINE inline void copy_bytes(void* to, const void* from, size_t n) {
  auto* d = static_cast<unsigned char*>(to);
  const auto* s = static_cast<const unsigned char*>(from);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}
SUBCTX_SIGNAL_INLINE inline void zero_bytes(void* to, size_t n) {
  auto* d = static_cast<unsigned char*>(to);
  for (size_t i = 0; i < n; ++i) d[i] = 0;
}

}  // namespace subctx::fault
