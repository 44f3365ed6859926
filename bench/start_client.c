/* bench_start_client IMAGE: a C client of bench_start (process start) that
 * maps IMAGE (bench_image_server's), calls add1(41) once and prints the
 * result.  Exit status 0: done; 3: the image's addresses collide with this
 * process's own memory (SBC_E_CONFLICT: a new process, new addresses);
 * 1: another failure (message on stderr); 2: usage. */
#include <inttypes.h>
#include <stdio.h>
#include <subctx/subctx.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fputs("usage: bench_start_client IMAGE\n", stderr);
    return 2;
  }
  const int sc = sbc_request_map(argv[1]);
  if (sc < 0) {
    fprintf(stderr, "bench_start_client: %s\n", sbc_last_error());
    return sc == -SBC_E_CONFLICT ? 3 : 1;
  }
  const uint64_t arg = 41;
  uint64_t ret = 0;
  if (sbc_request_call(sc, "add1", &arg, 1, &ret) != 0) {
    fprintf(stderr, "bench_start_client: %s\n", sbc_last_error());
    return 1;
  }
  printf("%" PRIu64 "\n", ret);
  return 0;
}
