/* Example client (C API): maps the CPython image and evaluates the Python
 * expressions given as arguments, each through the export py_eval.
 *
 *   pyeval_client IMAGE EXPRESSION...                                  */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <subctx/subctx.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s IMAGE EXPRESSION...\n", argv[0]);
    return 2;
  }
  double start = now_ms();
  int sc = sbc_request_map(argv[1]);
  if (sc < 0) {
    fprintf(stderr, "client: %s\n", sbc_last_error());
    return 1;
  }
  double mapped = now_ms();
  for (int i = 2; i < argc; ++i) {
    uint64_t arg = (uint64_t)(uintptr_t)argv[i], result;
    if (sbc_request_call(sc, "py_eval", &arg, 1, &result) < 0) {
      fprintf(stderr, "client: %s\n", sbc_last_error());
      return 1;
    }
    if (i == 2) printf("client: map %.3f ms + first evaluation %.3f ms\n", mapped - start, now_ms() - mapped);
    printf("%s => %s\n", argv[i], (const char *)(uintptr_t)result);
  }
  sbc_unmap(sc);
  return 0;
}
