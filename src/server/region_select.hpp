// Which of the server's mappings become segments of the image.  Pure and
// allocation-free once `out` has capacity, so it can run again while the
// snapshot is copying memory to check that the layout has not changed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "image/format.hpp"
#include "sys/proc_maps.hpp"

namespace subctx::server {

struct SegmentPlan {
  uint64_t start = 0;
  uint64_t end = 0;
  int prot = 0;
  image::SegmentKind kind = image::SegmentKind::Anon;
  bool anonymous = false;  // no file behind it: pages never touched are zero
  std::string_view origin;
  // Where its bytes are read from: start, except for a moved [stack]
  // (SelectInput::stack_to).
  uint64_t source = 0;
  friend bool operator==(const SegmentPlan& a, const SegmentPlan& b) {
    return a.start == b.start && a.end == b.end && a.prot == b.prot && a.kind == b.kind && a.source == b.source;
  }
};

struct SelectInput {
  uint64_t stack_pointer = 0;  // the used part of [stack] starts below it
  uint64_t gate_stack_lo = 0;  // [lo, hi): the gate stack mapping
  uint64_t gate_stack_hi = 0;
  uint64_t gate_guard = 0;  // its PROT_NONE guard, below it
  uint64_t gate_guard_size = image::kPageSize;
  uint64_t exclude_lo = 0;  // the snapshot's own scratch memory, cut out
  uint64_t exclude_hi = 0;  // of whatever mapping the kernel merged it with
  // Where the used part of [stack] goes in the image (0: where it is).  A
  // server's stack lies where a client's own stack may grow (both are
  // placed at random in the same range): moved, it never refuses a map.
  uint64_t stack_to = 0;
};

// The used part of the [stack] mapping in maps ({0, 0}: none): from 64 KiB
// below the stack pointer (red zone and more) to its top.
std::pair<uint64_t, uint64_t> used_stack(const std::vector<sys::MapEntry>& maps, uint64_t stack_pointer);

// A moved [stack]: every aligned word of the image whose value lies in the
// old range [lo, hi] (one past the end included: end pointers) is moved by
// delta, wherever it is (environ, argv, auxv and the strings they point to
// sit at the stack's top; libc and the program keep pointers to them).
struct StackMove {
  uint64_t lo = 0, hi = 0;
  uint64_t delta = 0;  // new - old, modulo 2^64
  // Segments that may hold such words: all but code (relro data, written
  // and then made read-only, holds glibc's argv and auxv pointers).
  static bool scanned(const SegmentPlan& p);
  // Whether the page (4096 bytes, 8-aligned) holds such a word.
  bool finds(const uint8_t* page) const;
  // Moves them in place.
  void apply(uint8_t* page) const;
  explicit operator bool() const { return hi != 0; }
};
// The move a plan makes (none when its [stack] stays).
StackMove stack_move(const std::vector<SegmentPlan>& plan);

// Returns false (and sets *why) when a mapping cannot be copied or out is
// full.  Never allocates beyond out's capacity (why only on failure).
bool select_segments(const std::vector<sys::MapEntry>& maps, const SelectInput& in, std::vector<SegmentPlan>& out,
                     std::string* why);

// The image's segment records for a plan: address, size, permissions, kind
// and origin; the gate stack's guard has no file part (p_filesz = 0).  The
// in-process snapshot and `subctx snapshot --pid` (src/external/) both use it.
// Into out, reusing its capacity: the in-process snapshot re-reads its
// maps after this and wants no new mapping from the allocator meanwhile.
void segment_records(const std::vector<SegmentPlan>& plan, std::vector<image::SegmentRecord>& out);

}  // namespace subctx::server
