/* A C server: exports declared with sbc_export(), image written with
 * sbc_snapshot_and_exit().  Covers every argument class of the C API:
 * integers (signed/unsigned, 32/64-bit), pointers, strings and f64.
 *
 *   e2e_c_server IMAGE
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <subctx/subctx.h>

static int64_t counter;

static int64_t add(int64_t a, int64_t b) { return a + b; }
static int32_t negate32(int32_t x) { return -x; }
static uint32_t high_bit32(uint32_t x) { return x | 0x80000000u; }
/* a * b + *c: integer, f64 and pointer arguments in one call. */
static double mix(int64_t a, double b, const double *c) { return (double)a * b + *c; }
static double scale3(double x, double y, double z, int64_t k) { return (x + y + z) * (double)k; }
/* Writes 0, 1, 2, ... into the client's buffer; returns their sum. */
static int64_t fill(uint8_t *buf, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = (uint8_t)i;
    sum += (uint8_t)i;
  }
  return sum;
}
static int64_t c_strlen(const char *s) { return (int64_t)strlen(s); }
/* The environment, at the top of the server's stack (moved by the snapshot). */
static int64_t path_length(void) {
  const char *p = getenv("PATH");
  return p ? (int64_t)strlen(p) : -1;
}
static void set_counter(int64_t v) { counter = v; }
static int64_t get_counter(void) { return counter; }
static void *c_alloc(int64_t n) { return calloc(1, (size_t)n); }
static int64_t c_free(void *p) {
  free(p);
  return 0;
}

struct export_spec {
  const char *name;
  void *fn;
  const char *signature;
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  const struct export_spec specs[] = {
      {"add", (void *)add, "i64(i64,i64)"},
      {"negate32", (void *)negate32, "i32(i32)"},
      {"high_bit32", (void *)high_bit32, "u32(u32)"},
      {"mix", (void *)mix, "f64(i64,f64,ptr)"},
      {"scale3", (void *)scale3, "f64(f64,f64,f64,i64)"},
      {"fill", (void *)fill, "i64(ptr,i64)"},
      {"c_strlen", (void *)c_strlen, "i64(str)"},
      {"path_length", (void *)path_length, "i64()"},
      {"set_counter", (void *)set_counter, "void(i64)"},
      {"get_counter", (void *)get_counter, "i64()"},
      {"c_alloc", (void *)c_alloc, "ptr(i64)"},
      {"c_free", (void *)c_free, "i64(ptr)"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; ++i) {
    if (sbc_export(specs[i].name, specs[i].fn, specs[i].signature) != 0) {
      fprintf(stderr, "sbc_export(%s): %s\n", specs[i].name, sbc_last_error());
      return 3;
    }
  }
  /* Refused declarations: a malformed signature and a duplicate name. */
  int rc = sbc_export("bad_sig", (void *)add, "i64(int)");
  if (rc != -SBC_E_SIGNATURE) {
    fprintf(stderr, "sbc_export with a bad signature returned %d, expected %d\n", rc, -SBC_E_SIGNATURE);
    return 4;
  }
  rc = sbc_export("add", (void *)add, "i64(i64,i64)");
  if (rc != -SBC_E_INVALID_ARGUMENT || !strstr(sbc_last_error(), "twice")) {
    fprintf(stderr, "duplicate sbc_export returned %d (%s)\n", rc, sbc_last_error());
    return 5;
  }
  counter = 41;
  sbc_snapshot_and_exit(argv[1]);
}
