// Which of the server's mappings become segments of the image.  Pure and
// allocation-free once `out` has capacity, so it can run again while the
// snapshot is copying memory to check that the layout has not changed.
#pragma once

#include <cstdint>
#include <string>
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
  friend bool operator==(const SegmentPlan& a, const SegmentPlan& b) {
    return a.start == b.start && a.end == b.end && a.prot == b.prot && a.kind == b.kind;
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
};

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
