// The callback benchmark's image: add1 exported as is, and an export that
// calls add1 through an import the client binds (one callback per call).
#include <subctx/server.hpp>

#include "add1.hpp"

namespace {
auto host_add1 = subctx::import <int64_t(int64_t)>("host_add1");
}

int64_t add1_via_import(int64_t x) { return host_add1(x); }
SUBCTX_EXPORT(add1);
SUBCTX_EXPORT(add1_via_import);

int main(int argc, char** argv) { subctx::snapshot_and_exit(argc > 1 ? argv[1] : "callback.img"); }
