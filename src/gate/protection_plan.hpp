// The mprotect backend's plan: which mprotect calls open a subcontext for a
// call and close it again.  Pure logic (unit-tested); protection.cpp runs it.
//
// One mprotect costs a system call plus work per present page, so the plan
// keeps the calls few:
//  - segments whose gaps the Matchmaker could reserve (PROT_NONE, no memory)
//    form one *cluster*: a contiguous range;
//  - closing sets a whole run of pieces that share the outside protection
//    in one call (by default: the whole cluster to PROT_NONE);
//  - opening sets each run of adjacent pieces that share the in-call
//    protection in one call.  In the default *merged* mode every accessible
//    piece and reserved gap is opened read-write (and execute, where the
//    stretch holds code), so a cluster opens in one call per stretch between
//    guard pages; *exact* mode restores each segment's own permissions (one
//    call per run of equal permissions) and leaves the gaps closed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace subctx::gate {

// One stretch of a subcontext's address space.
struct Piece {
  uint64_t lo = 0, hi = 0;
  int prot = 0;       // the segment's own permissions (PROT_*); 0 for guards
  bool hole = false;  // a gap the Matchmaker reserved
  // [lo, file_end) is a view of the image file from file_offset on; the
  // rest is anonymous memory.  (How repair() recognizes its own mappings.)
  uint64_t file_end = 0;
  uint64_t file_offset = 0;
};

struct ProtectOp {
  uint64_t lo = 0, hi = 0;
  int prot = 0;
  bool operator==(const ProtectOp&) const = default;
};

struct PlanOptions {
  bool readable = false;  // outside calls readable segments stay PROT_READ
  bool exact = false;     // in-call permissions exactly the segments' own
  // Merged: every stretch opens executable, code or not (subcontext code
  // made part of its image executable itself: a JIT writing into its heap).
  bool all_code = false;
  // Larger gaps split clusters: mprotect walks the page tables of a reserved
  // gap too (an empty GiB costs about as much as a system call), and a
  // reservation takes address space from the client.
  uint64_t max_hole = uint64_t{64} << 20;
};

struct Cluster {
  uint64_t lo = 0, hi = 0;
  std::vector<Piece> pieces;  // contiguous, lo..hi, holes included
};

struct ProtectionPlan {
  std::vector<Cluster> clusters;
  std::vector<ProtectOp> open;   // in a call
  std::vector<ProtectOp> close;  // outside calls
};

// The protection of a piece outside calls, and of each piece of a cluster
// in a call.
int outside_prot(const Piece& p, const PlanOptions& o);
std::vector<int> inside_prots(const Cluster& c, const PlanOptions& o);

// segments: sorted by address, not overlapping.  reserve(lo, hi) is asked to
// reserve each gap not larger than max_hole between two segments; when it
// returns false the cluster ends there.
ProtectionPlan build_protection_plan(const std::vector<Piece>& segments, const PlanOptions& options,
                                     const std::function<bool(uint64_t lo, uint64_t hi)>& reserve);

// The calls of one direction: runs of adjacent pieces that take the same
// target protection, skipping pieces that keep theirs.  Exposed for tests.
std::vector<ProtectOp> plan_ops(const std::vector<Cluster>& clusters, const PlanOptions& o, bool opening);

}  // namespace subctx::gate
