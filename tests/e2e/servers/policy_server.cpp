// A server with a public and a restricted export, for the policy tests.
//   e2e_policy_server [--mode OCTAL] [--spawns] IMAGE
// (--mode: SnapshotOptions::mode; --spawns: SnapshotOptions::spawns)
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <subctx/server.hpp>

static int64_t opened = 0;
int64_t open_door(int64_t n) { return opened += n; }
int64_t admin_reset() { return opened = 0; }
SUBCTX_EXPORT(open_door);
SUBCTX_EXPORT_RESTRICTED(admin_reset);

int main(int argc, char** argv) {
  subctx::SnapshotOptions options;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--mode") && i + 2 < argc)
      options.mode = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 8));
    else if (!std::strcmp(argv[i], "--spawns")) options.spawns = true;
  }
  subctx::snapshot_and_exit(argv[argc - 1], options);
}
