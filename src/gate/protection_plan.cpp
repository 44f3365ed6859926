#include "gate/protection_plan.hpp"

#include <sys/mman.h>

namespace subctx::gate {

int outside_prot(const Piece& p, const PlanOptions& o) {
  if (p.hole) return PROT_NONE;
  return o.readable ? (p.prot & PROT_READ) : PROT_NONE;
}

std::vector<int> inside_prots(const Cluster& c, const PlanOptions& o) {
  const std::vector<Piece>& pieces = c.pieces;
  std::vector<int> out(pieces.size());
  auto is_guard = [](const Piece& p) { return !p.hole && p.prot == PROT_NONE; };  // guards stay guards
  if (o.exact) {
    for (size_t i = 0; i < pieces.size(); ++i) out[i] = pieces[i].hole ? PROT_NONE : pieces[i].prot;
    return out;
  }
  // Merged: a stretch between guards opens in one call, reserved gaps (no
  // pages, no cost) with their neighbours.  Read-write, and execute only
  // where the stretch holds code: the same number of calls, and data kept
  // non-executable where that is free -- recent kernels read around a
  // fault in an executable mapping even where MADV_RANDOM asked them not to
  // (exec read-ahead), which made a cold first call read megabytes of an
  // image's heap (docs/prefetch.md).  all_code: executable everywhere.
  size_t start = 0;
  auto finish = [&](size_t end) {
    bool code = o.all_code;
    for (size_t i = start; i < end; ++i) code |= !pieces[i].hole && (pieces[i].prot & PROT_EXEC);
    for (size_t i = start; i < end; ++i) out[i] = PROT_READ | PROT_WRITE | (code ? PROT_EXEC : 0);
  };
  for (size_t i = 0; i < pieces.size(); ++i)
    if (is_guard(pieces[i])) {
      finish(i);
      out[i] = PROT_NONE;
      start = i + 1;
    }
  finish(pieces.size());
  return out;
}

std::vector<ProtectOp> plan_ops(const std::vector<Cluster>& clusters, const PlanOptions& o, bool opening) {
  std::vector<ProtectOp> ops;
  for (const Cluster& c : clusters) {
    const std::vector<int> inside = inside_prots(c, o);
    // A run: adjacent pieces that take the same protection.  Pieces that
    // already have it ride along (no extra call); a run where nothing
    // changes is dropped.
    bool have_run = false, run_changes = false;
    auto flush = [&] {
      if (have_run && !run_changes) ops.pop_back();
      have_run = false;
    };
    for (size_t i = 0; i < c.pieces.size(); ++i) {
      const Piece& p = c.pieces[i];
      const int from = opening ? outside_prot(p, o) : inside[i];
      const int to = opening ? inside[i] : outside_prot(p, o);
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
