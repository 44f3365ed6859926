/* Callbacks through the C API, in a process of their own (test_callbacks.cpp).
 *
 *   e2e_callback_client MODE CALLBACK_IMAGE BACKEND
 *     user          sbc_bind_user, sbc_callback_user, bind errors, an
 *                   unbound import; prints "ok"
 *     output        client and subcontext output around a callback, in order
 *     segv          a callback that dereferences NULL: the client dies of
 *                   SIGSEGV, as for any bug of its own
 *     segv-handler  the same with a SIGSEGV handler of the client's, which
 *                   reports and exits 7
 * BACKEND: none, mprotect or pkey.  Failures print "FAIL ..." and exit 1. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <subctx/subctx.h>

static void fail(const char *what) {
  fprintf(stderr, "FAIL %s: %s\n", what, sbc_last_error());
  exit(1);
}

struct tally {
  int64_t calls;
  int64_t sum;
};

static int64_t counted_square(int64_t x) {
  struct tally *t = (struct tally *)sbc_callback_user();
  t->calls++;
  t->sum += x;
  return x * x;
}

static int64_t plain_square(int64_t x) { return x * x; }

static void say_during(void) { printf("client: during\n"); }

static volatile int *nowhere;
static int64_t faulting_square(int64_t x) {
  *nowhere = (int)x; /* the client's own bug */
  return x;
}

static void on_segv(int sig) {
  (void)sig;
  static const char msg[] = "client handler: SIGSEGV in the client's callback\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(7);
}

static int64_t call1(int sc, const char *name, int64_t arg) {
  uint64_t a = (uint64_t)arg, r = 0;
  if (sbc_request_call(sc, name, &a, 1, &r) != 0) fail(name);
  return (int64_t)r;
}

static int mode_user(int sc) {
  struct tally t = {0, 0};
  if (sbc_callback_user() != NULL) fail("sbc_callback_user outside a callback is not NULL");
  if (sbc_bind_user(sc, "square", (void *)counted_square, "i64(i64)", &t) != 0) fail("sbc_bind_user");
  if (call1(sc, "sum_squares", 10) != 285 || t.calls != 10 || t.sum != 45) fail("sum_squares through a bound user");
  if (sbc_bind(sc, "square", (void *)plain_square, "i64(f64)") != -SBC_E_SIGNATURE) fail("a wrong signature bound");
  if (!strstr(sbc_last_error(), "i64(i64)")) fail("the signature error does not name the import's");
  if (sbc_bind(sc, "no_such_import", (void *)plain_square, "i64(i64)") != -SBC_E_NO_EXPORT)
    fail("an unknown import bound");
  if (sbc_bind(sc, "square", (void *)plain_square, "i64(i64)") != 0) fail("sbc_bind");
  if (call1(sc, "sum_squares", 4) != 14 || t.calls != 10) fail("rebinding did not take effect");
  uint64_t r = 0;
  if (sbc_request_call(sc, "call_unbound", NULL, 0, &r) != -SBC_E_FAULT) fail("an unbound import's call did not fail");
  if (!strstr(sbc_last_error(), "never_bound")) fail("the error does not name the unbound import");
  if (sbc_bind(sc, "square", NULL, NULL) != 0) fail("unbinding");
  uint64_t n = 3;
  if (sbc_request_call(sc, "sum_squares", &n, 1, &r) != -SBC_E_FAULT || !strstr(sbc_last_error(), "\"square\""))
    fail("an unbound square did not fail the call");
  printf("ok\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODE IMAGE BACKEND\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1], *backend = argv[3];
  int protection = strcmp(backend, "none") == 0   ? SBC_PROTECT_NONE
                   : strcmp(backend, "pkey") == 0 ? SBC_PROTECT_PKEY
                                                  : SBC_PROTECT_MPROTECT;
  int sc = sbc_request_map_with(argv[2], protection, 0);
  if (sc < 0) fail("sbc_request_map_with");
  if (strcmp(mode, "user") == 0) return mode_user(sc);
  if (strcmp(mode, "output") == 0) {
    if (sbc_bind(sc, "host_print", (void *)say_during, "void()") != 0) fail("bind host_print");
    printf("client: start\n");
    call1(sc, "print_around", 0);
    printf("client: end\n");
    return 0;
  }
  if (strcmp(mode, "segv-handler") == 0) signal(SIGSEGV, on_segv);
  if (strcmp(mode, "segv") == 0 || strcmp(mode, "segv-handler") == 0) {
    if (sbc_bind(sc, "square", (void *)faulting_square, "i64(i64)") != 0) fail("bind square");
    call1(sc, "sum_squares", 3);
    fail("the faulting callback returned");
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
