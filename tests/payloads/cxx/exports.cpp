// An export of the C++ payload's server that lets a C++ exception escape:
//
//   int64_t escape(int64_t n)   n == 0: returns the number of variables
//                               n != 0: sets the interpreter variable
//                               "escaped" to n, then throws (a nested
//                               exception) out of the export
//
// Nothing inside the subcontext catches it: the unwinder finds no handler
// above the export and calls std::terminate, whose abort() ends the call
// with SubcontextFault (SIGABRT, docs/containment.md); the client survives
// and the automatic reset drops "escaped" again.  Kept out of payload.cpp,
// which the benchmark (a client) links too.
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>

#include "payload.hpp"

namespace {

int64_t escape(int64_t n) {
  if (n == 0) {
    const std::string vars = payload::run("vars");  // "N variables\n..."
    return std::stoll(vars);
  }
  payload::run("eval escaped = " + std::to_string(n));
  try {
    throw std::runtime_error("escaping exception " + std::to_string(n));
  } catch (...) {
    std::throw_with_nested(std::logic_error("nobody catches this"));
  }
}
SUBCTX_EXPORT(escape);

}  // namespace
