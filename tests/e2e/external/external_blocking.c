/* A library whose constructor never returns: external_target's "dlopen"
 * mode loads it, so the target waits inside dlopen() (the dynamic linker's
 * list of objects half built), which the snapshot must refuse. */
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void hold(void) {
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
