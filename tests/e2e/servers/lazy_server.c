/* A lazily bound server whose PLT slot for vanish() has no definition at
 * run time: the snapshot must refuse, naming the symbol and the fix. */
#include <stdint.h>
#include <subctx/subctx.h>

int vanish(int x);
int keep(int x);

int64_t call_vanish(int64_t x) { return vanish((int)x); }
int64_t call_keep(int64_t x) { return keep((int)x); }

int main(int argc, char **argv) {
  (void)argc;
  sbc_export("call_vanish", (void *)call_vanish, "i64(i64)");
  sbc_export("call_keep", (void *)call_keep, "i64(i64)");
  sbc_snapshot_and_exit(argv[1]);
}
