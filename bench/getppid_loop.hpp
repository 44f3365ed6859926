// The system-call loop bench_containment times inside a subcontext (an
// export of bench_containment_server) and directly in the client: both
// sides run the same code.  getppid is cheap, has no side effect and is
// passed through by the subcontext's system-call table ("made as asked").
// noipa: never inlined, cloned or analysed across the call.
#pragma once

#include <unistd.h>

#include <cstdint>

// n getppid system calls; returns the sum of the results.
__attribute__((noipa)) inline int64_t getppid_loop(int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += getppid();
  return sum;
}
