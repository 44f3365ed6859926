/* A C client written against the pinned C API only.
 *
 *   e2e_c_client C_IMAGE BASIC_IMAGE
 *
 * Prints "ok <check>" for each check that passes and "FAIL <check>: ..." for
 * each that does not; the exit status is the number of failures.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <subctx/subctx.h>

static int failures;

static void check(int cond, const char *name, const char *detail) {
  if (cond) {
    printf("ok %s\n", name);
  } else {
    printf("FAIL %s: %s\n", name, detail ? detail : "");
    ++failures;
  }
}

static uint64_t f64_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static double bits_f64(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* rc must be -code and the message must contain word. */
static void check_error(int rc, int code, const char *word, const char *name) {
  char detail[512];
  snprintf(detail, sizeof detail, "rc %d (want %d), message \"%s\" (want \"%s\")", rc, -code, sbc_last_error(), word);
  check(rc == -code && strstr(sbc_last_error(), word) != NULL, name, detail);
}

/* A thread that calls a handle, waits while main unmaps it, and calls it
 * again: the C API's per-thread memory of the handle must see the unmap. */
struct call_around_unmap {
  int sc;
  pthread_barrier_t *barrier;
  int before, after;
  char after_error[256];
};

static void *call_around_unmap(void *p) {
  struct call_around_unmap *c = p;
  uint64_t r = 0;
  c->before = sbc_request_call(c->sc, "get_counter", NULL, 0, &r);
  pthread_barrier_wait(c->barrier); /* main unmaps */
  pthread_barrier_wait(c->barrier);
  c->after = sbc_request_call(c->sc, "get_counter", NULL, 0, &r);
  snprintf(c->after_error, sizeof c->after_error, "%s", sbc_last_error());
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s C_IMAGE BASIC_IMAGE\n", argv[0]);
    return 100;
  }
  const char *c_image = argv[1], *basic_image = argv[2];
  check(sbc_init() == 0, "init is idempotent", sbc_last_error());

  int sc = sbc_request_map(c_image);
  check(sc >= 0, "map the C image", sbc_last_error());
  if (sc < 0) return failures;

  uint64_t ret = 0;
  uint64_t two[2] = {40, 2};
  check(sbc_request_call(sc, "add", two, 2, &ret) == 0 && ret == 42, "add i64(i64,i64)", sbc_last_error());
  two[0] = (uint64_t)-50;
  two[1] = 8;
  check(sbc_request_call(sc, "add", two, 2, &ret) == 0 && (int64_t)ret == -42, "add negative", sbc_last_error());

  uint64_t one = 5;
  check(sbc_request_call(sc, "negate32", &one, 1, &ret) == 0 && ret == (uint64_t)(int64_t)-5,
        "i32 result is sign-extended", sbc_last_error());
  one = 5;
  check(sbc_request_call(sc, "high_bit32", &one, 1, &ret) == 0 && ret == 0x80000005u, "u32 result is zero-extended",
        sbc_last_error());

  double c = 0.25;
  uint64_t mix_args[3] = {3, f64_bits(1.5), (uint64_t)(uintptr_t)&c};
  check(sbc_request_call(sc, "mix", mix_args, 3, &ret) == 0 && bits_f64(ret) == 4.75,
        "f64(i64,f64,ptr) with f64 bit patterns", sbc_last_error());
  uint64_t s3[4] = {f64_bits(0.5), f64_bits(1.25), f64_bits(-0.75), 4};
  check(sbc_request_call(sc, "scale3", s3, 4, &ret) == 0 && bits_f64(ret) == 4.0, "f64(f64,f64,f64,i64)",
        sbc_last_error());

  /* A batch: three rows of mix's arguments; i32 results sign-extended. */
  double cs[3] = {0.25, 1.0, -2.0};
  uint64_t rows[9] = {3,
                      f64_bits(1.5),
                      (uint64_t)(uintptr_t)&cs[0],
                      2,
                      f64_bits(2.0),
                      (uint64_t)(uintptr_t)&cs[1],
                      (uint64_t)-1,
                      f64_bits(0.5),
                      (uint64_t)(uintptr_t)&cs[2]};
  uint64_t rets[3] = {0, 0, 0};
  size_t done = 99;
  check(sbc_request_call_batch(sc, "mix", rows, 3, 3, rets, &done) == 0 && done == 3 && bits_f64(rets[0]) == 4.75 &&
            bits_f64(rets[1]) == 5.0 && bits_f64(rets[2]) == -2.5,
        "batch of f64(i64,f64,ptr) rows", sbc_last_error());
  uint64_t xs[4] = {1, 2, 3, 4}, negated[4];
  check(sbc_request_call_batch(sc, "negate32", xs, 1, 4, negated, &done) == 0 && done == 4 &&
            negated[3] == (uint64_t)(int64_t)-4,
        "batch: i32 results sign-extended", sbc_last_error());

  uint8_t buf[200];
  memset(buf, 0xee, sizeof buf);
  uint64_t fill_args[2] = {(uint64_t)(uintptr_t)buf, 100};
  int filled = sbc_request_call(sc, "fill", fill_args, 2, &ret) == 0 && ret == 4950 && buf[0] == 0 && buf[99] == 99 &&
               buf[100] == 0xee;
  check(filled, "pointer to client memory written by the subcontext", sbc_last_error());

  const char *text = "subcontext";
  uint64_t str_arg = (uint64_t)(uintptr_t)text;
  check(sbc_request_call(sc, "c_strlen", &str_arg, 1, &ret) == 0 && ret == 10, "str argument", sbc_last_error());

  check(sbc_request_call(sc, "get_counter", NULL, 0, &ret) == 0 && ret == 41, "global from before the snapshot",
        sbc_last_error());
  one = 77;
  check(sbc_request_call(sc, "set_counter", &one, 1, NULL) == 0, "void result, ret NULL", sbc_last_error());
  check(sbc_request_call(sc, "get_counter", NULL, 0, &ret) == 0 && ret == 77, "global written", sbc_last_error());

  one = 1 << 20;
  check(sbc_request_call(sc, "c_alloc", &one, 1, &ret) == 0 && ret != 0, "ptr result (calloc 1 MiB)", sbc_last_error());
  uint64_t block = ret;
  check(sbc_request_call(sc, "c_free", &block, 1, &ret) == 0 && ret == 0, "free it", sbc_last_error());

  char sig[64];
  check(sbc_export_signature(sc, "mix", sig, sizeof sig) == 0 && strcmp(sig, "f64(i64,f64,ptr)") == 0,
        "sbc_export_signature", sig);

  /* Errors. */
  check_error(sbc_request_call(sc, "add", two, 1, &ret), SBC_E_SIGNATURE, "i64(i64,i64)", "wrong nargs (1 of 2)");
  check_error(sbc_request_call(sc, "get_counter", two, 2, &ret), SBC_E_SIGNATURE, "called with 2",
              "wrong nargs (2 of 0)");
  check_error(sbc_request_call(sc, "no_such_fn", NULL, 0, &ret), SBC_E_NO_EXPORT, "no_such_fn", "unknown export");
  check_error(sbc_request_call(sc, NULL, NULL, 0, &ret), SBC_E_INVALID_ARGUMENT, "NULL", "NULL export name");
  check_error(sbc_request_call(sc, "add", NULL, 2, &ret), SBC_E_INVALID_ARGUMENT, "NULL", "NULL args");
  check_error(sbc_request_call(sc + 1000, "add", two, 2, &ret), SBC_E_NO_SUBCONTEXT, "handle", "unknown handle");
  check_error(sbc_request_map(NULL), SBC_E_INVALID_ARGUMENT, "NULL", "map NULL path");
  check_error(sbc_request_map(c_image), SBC_E_ALREADY_MAPPED, "already mapped", "map the same image twice");
  check_error(sbc_set_limit(99, 1), SBC_E_INVALID_ARGUMENT, "unknown limit", "unknown limit");
  check_error(sbc_set_limit(SBC_LIMIT_EXPORTS, 0), SBC_E_INVALID_ARGUMENT, "positive", "zero limit");

  /* The error message is per thread and errno is the client's own. */
  errno = EXDEV;
  check(sbc_request_call(sc, "add", two, 2, &ret) == 0 && errno == EXDEV, "errno survives a call", NULL);

  /* Two subcontexts, then unmap one. */
  int b = sbc_request_map(basic_image);
  check(b >= 0 && b != sc, "map a second image", sbc_last_error());
  one = 9;
  check(sbc_request_call(b, "square", &one, 1, &ret) == 0 && ret == 81, "call the second image", sbc_last_error());
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  struct call_around_unmap around = {sc, &barrier, 1, 1, ""};
  pthread_t caller;
  check(pthread_create(&caller, NULL, call_around_unmap, &around) == 0, "start a calling thread", NULL);
  pthread_barrier_wait(&barrier);
  check(sbc_unmap(sc) == 0, "unmap", sbc_last_error());
  pthread_barrier_wait(&barrier);
  pthread_join(caller, NULL);
  pthread_barrier_destroy(&barrier);
  check(around.before == 0, "another thread's call before the unmap", NULL);
  check(around.after == -SBC_E_NO_SUBCONTEXT && strstr(around.after_error, "handle") != NULL,
        "another thread's call after the unmap", around.after_error);
  check_error(sbc_request_call(sc, "get_counter", NULL, 0, &ret), SBC_E_NO_SUBCONTEXT, "handle", "call after unmap");
  check_error(sbc_unmap(sc), SBC_E_NO_SUBCONTEXT, "handle", "unmap twice");

  /* finalize: everything unmapped, nothing can be mapped until sbc_init. */
  sbc_finalize();
  check_error(sbc_request_call(b, "square", &one, 1, &ret), SBC_E_NO_SUBCONTEXT, "handle", "call after finalize");
  check_error(sbc_request_map(basic_image), SBC_E_NOT_INITIALIZED, "not installed", "map after finalize");
  check(sbc_init() == 0, "init after finalize", sbc_last_error());
  sc = sbc_request_map(c_image);
  check(sc >= 0, "map again after init", sbc_last_error());
  check(sbc_request_call(sc, "get_counter", NULL, 0, &ret) == 0 && ret == 41, "fresh state after remap",
        sbc_last_error());
  printf("done, %d failures\n", failures);
  return failures;
}
