/* An allocator entry point interposed with LD_PRELOAD, as jemalloc's or
 * tcmalloc's malloc would be: external_target's "malloc" mode then blocks
 * inside this malloc_stats (writing to a full pipe on stderr), not glibc's.
 * The snapshot must look malloc up as the program does (the dynamic
 * linker's search order: preloaded libraries before libc) to see it. */
#include <unistd.h>

void malloc_stats(void) {
  static char block[4096];
  for (;;)
    if (write(2, block, sizeof block) < 0) return;
}
