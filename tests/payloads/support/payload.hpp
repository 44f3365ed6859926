// A payload: a real library from Debian's packages, initialized by a server
// before its snapshot and driven by clients through the export "run".
// Each payload (tests/payloads/<name>/payload.cpp) defines these two; the
// same code is built into
//   payload_<name>_server  snapshot IMAGE | native INPUTS   (server_main.cpp)
//   bench_payloads         the warm-start benchmark (bench/)
// so a client's outputs can be compared byte for byte with a fresh native
// process running the same operations.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace payload {

// The name ("sqlite"), for messages and benchmark rows.
extern const char* const kName;

// Everything a process does before its first operation (the part a
// snapshot saves).  Throws std::exception on failure.
void init();

// One operation on one input (a query, an expression, a program): its
// output text.  An error of the library (an SQL error, a Lua or Python
// exception) is output too, starting with "error: ", so that clients and
// native runs compare the same way; run() itself never throws.
std::string run(std::string_view input);

// Server-only setup after init(), defined by a payload's exports.cpp where
// it needs one (its SQL functions or Python module calling the server's
// imports, docs/callbacks.md).  Weak: the benchmark links payload.cpp
// without it, and without the server library the imports live in.  The
// server runs it in every mode, so native runs set up what images hold.
[[gnu::weak]] void server_init();

// Inputs the server runs before the snapshot only, where a payload has
// them (weak): what its library initializes lazily at a first operation is
// then in the image instead of in every client's first call.  They must
// leave nothing an input could see.  Native runs ("first": the cold start
// the warm start is compared with) do not run them.
[[gnu::weak]] std::vector<std::string> warm_up_inputs();

}  // namespace payload
