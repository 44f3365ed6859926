#include <cstdint>
#include <subctx/server.hpp>
static int64_t base = 0;
int64_t add_base(int64_t x) { return base + x; }
SUBCTX_EXPORT(add_base);
int main(int, char** argv) {
  base = 1000;
  subctx::snapshot_and_exit(argv[1]);
}
