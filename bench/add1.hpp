// The function a gate call is compared with.  The bench servers export it;
// bench_call also calls its own copy directly, so both sides run the same
// machine code.  noipa: never inlined, cloned or analysed across the call.
#pragma once

#include <cstdint>

__attribute__((noipa)) inline int64_t add1(int64_t x) { return x + 1; }
