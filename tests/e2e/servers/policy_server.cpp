// A server with a public and a restricted export, for the policy tests.
#include <cstdint>

#include <subctx/server.hpp>

static int64_t opened = 0;
int64_t open_door(int64_t n) { return opened += n; }
int64_t admin_reset() { return opened = 0; }
SUBCTX_EXPORT(open_door);
SUBCTX_EXPORT_RESTRICTED(admin_reset);

int main(int, char** argv) { subctx::snapshot_and_exit(argv[1]); }
