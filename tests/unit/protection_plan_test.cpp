// The mprotect backend's plan (src/gate/protection_plan.hpp) and the PKRU
// arithmetic of the pkey backend (src/gate/pkru.hpp).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <utility>
#include <vector>

#include "gate/pkru.hpp"
#include "gate/protection_plan.hpp"

namespace subctx::gate {
namespace {

constexpr int R = PROT_READ, W = PROT_WRITE, X = PROT_EXEC, RWX = R | W | X;
constexpr uint64_t P = 0x1000;

// A library as ld.so maps it: header, text, rodata, relro, data.
std::vector<Piece> library_at(uint64_t base) {
  return {{base, base + 2 * P, R},
          {base + 2 * P, base + 10 * P, R | X},
          {base + 10 * P, base + 12 * P, R},
          {base + 12 * P, base + 13 * P, R},
          {base + 13 * P, base + 14 * P, R | W}};
}

struct Reserver {
  std::vector<std::pair<uint64_t, uint64_t>> asked;
  bool answer = true;
  std::function<bool(uint64_t, uint64_t)> fn() {
    return [this](uint64_t lo, uint64_t hi) {
      asked.emplace_back(lo, hi);
      return answer;
    };
  }
};

TEST(ProtectionPlan, ContiguousSegmentsCloseInOneCallAndOpenInOne) {
  Reserver r;
  ProtectionPlan plan = build_protection_plan(library_at(0x10000), {}, r.fn());
  ASSERT_EQ(plan.clusters.size(), 1u);
  EXPECT_TRUE(r.asked.empty());
  EXPECT_EQ(plan.close, (std::vector<ProtectOp>{{0x10000, 0x10000 + 14 * P, PROT_NONE}}));
  // Merged: the library holds code, so all of it read-write-execute in one call.
  EXPECT_EQ(plan.open, (std::vector<ProtectOp>{{0x10000, 0x10000 + 14 * P, RWX}}));
}

TEST(ProtectionPlan, ExactPermissionsOpenOneCallPerRunOfEqualPermissions) {
  Reserver r;
  PlanOptions o;
  o.exact = true;
  ProtectionPlan plan = build_protection_plan(library_at(0), o, r.fn());
  // r-- | r-x | r-- r-- (one run) | rw-
  EXPECT_EQ(plan.open, (std::vector<ProtectOp>{
                           {0, 2 * P, R}, {2 * P, 10 * P, R | X}, {10 * P, 13 * P, R}, {13 * P, 14 * P, R | W}}));
  EXPECT_EQ(plan.close, (std::vector<ProtectOp>{{0, 14 * P, PROT_NONE}}));
}

TEST(ProtectionPlan, GapsAreReservedSoTheClusterClosesAsOneRange) {
  Reserver r;
  std::vector<Piece> segs = library_at(0);
  for (const Piece& p : library_at(20 * P)) segs.push_back(p);  // 6-page gap at 14..20
  ProtectionPlan plan = build_protection_plan(segs, {}, r.fn());
  ASSERT_EQ(r.asked.size(), 1u);
  EXPECT_EQ(r.asked[0], std::make_pair(14 * P, 20 * P));
  ASSERT_EQ(plan.clusters.size(), 1u);
  EXPECT_EQ(plan.close, (std::vector<ProtectOp>{{0, 34 * P, PROT_NONE}}));
  // Merged: the reserved gap (no pages) opens with its neighbours, one call.
  EXPECT_EQ(plan.open, (std::vector<ProtectOp>{{0, 34 * P, RWX}}));
  // Exact: the gap stays closed.
  PlanOptions exact;
  exact.exact = true;
  EXPECT_EQ(plan_ops(plan.clusters, exact, true).size(), 8u);  // 4 runs per library
}

TEST(ProtectionPlan, GuardPagesStayGuardsInCalls) {
  Reserver r;
  std::vector<Piece> segs = {{0, 16 * P, PROT_NONE}, {16 * P, 2064 * P, R | W}, {2064 * P, 2070 * P, R | X}};
  ProtectionPlan plan = build_protection_plan(segs, {}, r.fn());
  EXPECT_EQ(plan.open, (std::vector<ProtectOp>{{16 * P, 2070 * P, RWX}}));
  // Closing may sweep over the guard (already PROT_NONE): one call.
  EXPECT_EQ(plan.close, (std::vector<ProtectOp>{{0, 2070 * P, PROT_NONE}}));
}

TEST(ProtectionPlan, RefusedOrLargeGapsSplitClusters) {
  Reserver refusing;
  refusing.answer = false;
  std::vector<Piece> segs = {{0, P, R | X}, {3 * P, 4 * P, R | W}};
  ProtectionPlan plan = build_protection_plan(segs, {}, refusing.fn());
  EXPECT_EQ(refusing.asked.size(), 1u);
  EXPECT_EQ(plan.clusters.size(), 2u);
  EXPECT_EQ(plan.close.size(), 2u);
  EXPECT_EQ(plan.open.size(), 2u);

  Reserver r;
  PlanOptions o;
  o.max_hole = 2 * P;
  segs = {{0, P, R | X}, {4 * P, 5 * P, R | W}, {6 * P, 7 * P, R}};
  plan = build_protection_plan(segs, o, r.fn());
  ASSERT_EQ(r.asked.size(), 1u);  // the 3-page gap is not even asked for
  EXPECT_EQ(r.asked[0], std::make_pair(5 * P, 6 * P));
  ASSERT_EQ(plan.clusters.size(), 2u);
  EXPECT_EQ(plan.clusters[1].lo, 4 * P);
  EXPECT_EQ(plan.clusters[1].hi, 7 * P);
  EXPECT_EQ(plan.clusters[1].pieces.size(), 3u);  // segment, reserved hole, segment
  EXPECT_TRUE(plan.clusters[1].pieces[1].hole);
}

TEST(ProtectionPlan, ReadableMapsStayReadableOutsideCalls) {
  Reserver r;
  PlanOptions o;
  o.readable = true;
  std::vector<Piece> segs = {{0, P, PROT_NONE}, {P, 3 * P, R | X}, {3 * P, 4 * P, R | W}, {4 * P, 5 * P, W}};
  ProtectionPlan plan = build_protection_plan(segs, o, r.fn());
  // Outside: readable segments r--; the guard and a write-only segment ---.
  EXPECT_EQ(plan.close, (std::vector<ProtectOp>{{P, 4 * P, R}, {4 * P, 5 * P, PROT_NONE}}));
  EXPECT_EQ(plan.open, (std::vector<ProtectOp>{{P, 5 * P, RWX}}));
  EXPECT_EQ(outside_prot(segs[1], o), R);
  EXPECT_EQ(inside_prots(plan.clusters[0], o), (std::vector<int>{PROT_NONE, RWX, RWX, RWX}));
  o.exact = true;
  EXPECT_EQ(inside_prots(plan.clusters[0], o), (std::vector<int>{PROT_NONE, R | X, R | W, W}));
}

// Merged permissions add execute only to a stretch that holds code: a heap
// or a data stretch behind a guard opens read-write, in as many calls as
// before.  (Executable data defeats MADV_RANDOM: docs/prefetch.md.)
TEST(ProtectionPlan, MergedDataWithoutCodeStaysNonExecutable) {
  Reserver r;
  std::vector<Piece> segs = {{0, 4 * P, R | W},  // a heap, alone
                             {100 * P, 101 * P, PROT_NONE},
                             {101 * P, 110 * P, R | W},  // a stack behind its guard
                             {110 * P, 111 * P, PROT_NONE},
                             {111 * P, 112 * P, R},
                             {113 * P, 114 * P, R | X}};  // reserved gap at 112, then code
  PlanOptions o;
  o.max_hole = 64 * P;
  ProtectionPlan plan = build_protection_plan(segs, o, r.fn());
  ASSERT_EQ(plan.clusters.size(), 2u);
  EXPECT_EQ(plan.open, (std::vector<ProtectOp>{{0, 4 * P, R | W}, {101 * P, 110 * P, R | W}, {111 * P, 114 * P, RWX}}));
  EXPECT_EQ(inside_prots(plan.clusters[1], o), (std::vector<int>{PROT_NONE, R | W, PROT_NONE, RWX, RWX, RWX}));
  EXPECT_EQ(plan.close, (std::vector<ProtectOp>{{0, 4 * P, PROT_NONE}, {100 * P, 114 * P, PROT_NONE}}));
  // Once subcontext code made part of its data executable itself (a JIT):
  // every stretch opens executable, still one call each.
  o.all_code = true;
  EXPECT_EQ(plan_ops(plan.clusters, o, true),
            (std::vector<ProtectOp>{{0, 4 * P, RWX}, {101 * P, 110 * P, RWX}, {111 * P, 114 * P, RWX}}));
}

TEST(ProtectionPlan, NothingToDoGivesNoCalls) {
  Reserver r;
  std::vector<Piece> guards = {{0, P, PROT_NONE}, {P, 2 * P, PROT_NONE}};
  ProtectionPlan plan = build_protection_plan(guards, {}, r.fn());
  EXPECT_TRUE(plan.open.empty());
  EXPECT_TRUE(plan.close.empty());
  plan = build_protection_plan({}, {}, r.fn());
  EXPECT_TRUE(plan.clusters.empty());
}

TEST(Pkru, AllowAndDenyTouchOnlyTheirKey) {
  // The kernel's default for new threads: every key but 0 access-disabled.
  constexpr uint32_t init = 0x55555554;
  EXPECT_FALSE(pkru::may_read(init, 3));
  EXPECT_TRUE(pkru::may_read(init, 0));
  const uint32_t in_call = pkru::allow(init, 3);
  EXPECT_EQ(in_call, init & ~(uint32_t{3} << 6));
  EXPECT_TRUE(pkru::may_read(in_call, 3));
  EXPECT_TRUE(pkru::may_write(in_call, 3));
  EXPECT_FALSE(pkru::may_read(in_call, 4));  // another subcontext's key stays closed
  EXPECT_EQ(pkru::deny(in_call, 3), init);
  const uint32_t write_disabled = pkru::bits(5, pkru::kWriteDisable);
  EXPECT_TRUE(pkru::may_read(write_disabled, 5));
  EXPECT_FALSE(pkru::may_write(write_disabled, 5));
  EXPECT_EQ(pkru::allow(write_disabled, 5), 0u);
  EXPECT_EQ(pkru::deny(0, 15), 0x40000000u);
}

}  // namespace
}  // namespace subctx::gate
