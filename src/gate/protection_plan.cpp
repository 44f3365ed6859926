#include "gate/protection_plan.hpp"

#include <sys/mman.h>

namespace subctx::gate {

int outside_prot(const Piece& p, const PlanOptions& o) {
  if (p.hole) return PROT_NONE;
  return o.readable ? (p.prot & PROT_READ) : PROT_NONE;
}

int inside_prot(const Piece& p, const PlanOptions& o) {
  // Merged mode opens the reserved gaps along with their neighbours (no
  // pages, no cost; one call per cluster instead of one per stretch).
  if (p.hole) return o.exact ? PROT_NONE : (PROT_READ | PROT_WRITE | PROT_EXEC);
  if (p.prot == PROT_NONE) return PROT_NONE;  // guards stay guards
  return o.exact ? p.prot : (PROT_READ | PROT_WRITE | PROT_EXEC);
}

std::vector<ProtectOp> plan_ops(const std::vector<Cluster>& clusters, const PlanOptions& o, bool opening) {
  std::vector<ProtectOp> ops;
  for (const Cluster& c : clusters) {
    // A run: adjacent pieces that take the same protection.  Pieces that
    // already have it ride along (no extra call); a run where nothing
    // changes is dropped.
    bool have_run = false, run_changes = false;
    auto flush = [&] {
      if (have_run && !run_changes) ops.pop_back();
      have_run = false;
    };
    for (const Piece& p : c.pieces) {
      const int from = opening ? outside_prot(p, o) : inside_prot(p, o);
      const int to = opening ? inside_prot(p, o) : outside_prot(p, o);
      if (have_run && ops.back().prot == to) {
        ops.back().hi = p.hi;
        run_changes |= from != to;
        continue;
      }
      flush();
      ops.push_back({p.lo, p.hi, to});
      have_run = true;
      run_changes = from != to;
    }
    flush();
  }
  return ops;
}

ProtectionPlan build_protection_plan(const std::vector<Piece>& segments, const PlanOptions& options,
                                     const std::function<bool(uint64_t, uint64_t)>& reserve) {
  ProtectionPlan plan;
  for (const Piece& s : segments) {
    if (!plan.clusters.empty()) {
      Cluster& c = plan.clusters.back();
      if (s.lo == c.hi) {
        c.pieces.push_back(s);
        c.hi = s.hi;
        continue;
      }
      if (s.lo > c.hi && s.lo - c.hi <= options.max_hole && reserve(c.hi, s.lo)) {
        c.pieces.push_back({c.hi, s.lo, PROT_NONE, true});
        c.pieces.push_back(s);
        c.hi = s.hi;
        continue;
      }
    }
    plan.clusters.push_back({s.lo, s.hi, {s}});
  }
  plan.open = plan_ops(plan.clusters, options, true);
  plan.close = plan_ops(plan.clusters, options, false);
  return plan;
}

}  // namespace subctx::gate
