// The subcontext frames of a fault: the faulting pc, then the return
// addresses found on the gate stack.  Used by the Matchmaker in normal code
// after the faulting call was abandoned, while the subcontext's memory is as
// it was at the fault.  Every read of that memory goes through
// process_vm_readv: a bad pointer or an unmapped page gives a shorter list,
// never a fault.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace subctx::matchmaker {

struct CodeRange {
  uint64_t lo = 0, hi = 0;  // [lo, hi)
};

struct FrameScanInput {
  uint64_t pc = 0, sp = 0, rbp = 0;     // the registers at the fault
  uint64_t stack_lo = 0, stack_hi = 0;  // the gate stack, [lo, hi)
  std::vector<CodeRange> code;          // the subcontext's executable ranges
  size_t max_frames = 32;               // the result's size at most, pc included
};

// At most this much stack above sp is scanned for return addresses.
inline constexpr size_t kMaxStackScanBytes = 64 * 1024;

// pc first, then return addresses from the innermost frame outwards:
//  - words of the rbp chain (frame records [saved rbp, return address]
//    inside the stack bounds, strictly increasing) whose return address
//    follows a byte in `code`;
//  - other stack words from sp upwards (at most kMaxStackScanBytes) that
//    point just after a call instruction in `code` (ends_with_call); this
//    finds the frames of code built without frame pointers (a crashing
//    leaf such as strlen leaves rbp at its caller's caller).
// Adjacent duplicates are dropped.  Never throws: on any error (an
// allocation too) it returns the frames found so far.
std::vector<uint64_t> subcontext_frames(const FrameScanInput& in);

// True when `before`, the bytes just before an address, ends with a call
// instruction: e8 rel32, or ff /2 (call r/m64) in any ModRM form (2, 3, 4,
// 6 or 7 bytes from the ff; a REX prefix before it does not matter).
bool ends_with_call(std::span<const uint8_t> before);

}  // namespace subctx::matchmaker
