/* Example client (C API): maps the cities image and queries it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <subctx/subctx.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  const char *image = argc > 1 ? argv[1] : "cities.img";
  double start = now_ms();
  int sc = sbc_request_map(image);
  if (sc < 0) {
    fprintf(stderr, "client: %s\n", sbc_last_error());
    return 1;
  }
  double mapped = now_ms();
  uint64_t prefix = (uint64_t)(uintptr_t) "Kalo", count;
  if (sbc_request_call(sc, "count_prefix", &prefix, 1, &count) < 0) {
    fprintf(stderr, "client: %s\n", sbc_last_error());
    return 1;
  }
  double first = now_ms();
  printf("client: map %.3f ms + first call %.3f ms = %.3f ms; cities named Kalo*: %" PRIu64 "\n", mapped - start,
         first - mapped, first - start, count);

  for (int64_t id = 1; id <= 3; ++id) {
    uint64_t arg = (uint64_t)id, text;
    if (sbc_request_call(sc, "city", &arg, 1, &text) < 0) {
      fprintf(stderr, "client: %s\n", sbc_last_error());
      return 1;
    }
    printf("client: city %" PRId64 ": %s\n", id, (const char *)(uintptr_t)text);
  }
  uint64_t nothing = 0, r;
  if (sbc_request_call(sc, "no_such_export", &nothing, 1, &r) < 0)
    printf("client: as expected, %s\n", sbc_last_error());
  sbc_unmap(sc);
  return 0;
}
