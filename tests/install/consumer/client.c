#include <inttypes.h>
#include <stdio.h>
#include <subctx/subctx.h>
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int sc = sbc_request_map(argv[1]);
  if (sc < 0) {
    fprintf(stderr, "%s\n", sbc_last_error());
    return 1;
  }
  uint64_t arg = 234, ret = 0;
  if (sbc_request_call(sc, "add_base", &arg, 1, &ret) < 0) {
    fprintf(stderr, "%s\n", sbc_last_error());
    return 1;
  }
  printf("add_base(234)=%" PRIu64 "\n", ret);
  sbc_finalize();
  return 0;
}
