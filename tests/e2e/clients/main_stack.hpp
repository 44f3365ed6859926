// The main thread's stack as client helpers check it: where a client signal
// handler must run when it interrupts a call on the main thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace e2e_client {

struct StackRange {
  uintptr_t lo = 0, hi = 0;
  bool contains(uintptr_t p) const { return p >= lo && p < hi; }
};

// [stack] in /proc/self/maps, down to its 8 MiB limit (the stack grows down).
inline StackRange find_main_stack() {
  StackRange r;
  FILE* f = std::fopen("/proc/self/maps", "r");
  char line[512];
  while (f && std::fgets(line, sizeof line, f))
    if (std::strstr(line, "[stack]")) std::sscanf(line, "%lx-%lx", &r.lo, &r.hi);
  if (f) std::fclose(f);
  r.lo = r.hi - (8u << 20);
  return r;
}

}  // namespace e2e_client
