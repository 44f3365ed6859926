// snapshot() that returns: the server goes on, changes its state and writes
// a second image.  Output left in the stdout buffer before a snapshot (stdout
// is a pipe in the test, so it is fully buffered) must come out exactly once.
#include <cstdint>
#include <cstdio>

#include <subctx/server.hpp>

static int64_t generation = 0;
int64_t get_generation() { return generation; }
SUBCTX_EXPORT(get_generation);

int main(int, char** argv) {
  generation = 1;
  std::printf("buffered before the first snapshot;");  // no newline, not flushed
  subctx::snapshot(argv[1]);
  generation = 2;
  std::printf(" after it;");
  subctx::snapshot(argv[2]);
  std::printf(" done\n");
  return 0;  // a normal exit: destructors and atexit handlers run
}
