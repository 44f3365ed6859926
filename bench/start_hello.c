/* A C hello world for bench_start (process start): built as
 * bench_start_hello (nothing else linked: the baseline),
 * bench_start_hello_linked (linked with libsubctx_client, nothing of it used)
 * and bench_start_hello_stdcxx (linked with libstdc++ only). */
#include <stdio.h>

int main(void) {
  puts("hello");
  return 0;
}
