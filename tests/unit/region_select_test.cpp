// select_segments on fixture maps: which mappings become segments, of which
// kind, and what is refused.
#include <sys/mman.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/region_select.hpp"
#include "sys/proc_maps.hpp"

namespace subctx::server {
namespace {

using image::SegmentKind;

// A server process at snapshot time, with the snapshot's gate stack (guard +
// stack) and scratch buffer.
const char kMaps[] =
    "55d0c4e00000-55d0c4e02000 r--p 00000000 fd:01 1835023                    /opt/srv/server\n"  // 0 file
    "55d0c4e02000-55d0c4e07000 r-xp 00002000 fd:01 1835023                    /opt/srv/server\n"  // 1 file
    "55d0c4e07000-55d0c4e08000 rw-p 00007000 fd:01 1835023                    /opt/srv/server\n"  // 2 file
    "55d0c5a1e000-55d0c5a3f000 rw-p 00000000 00:00 0                          [heap]\n"           // 3 heap
    "7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0 \n"                                          // 4 anon
    "7f3a1c021000-7f3a20000000 ---p 00000000 00:00 0 \n"  // 5 reservation: skipped
    "7f3a20a00000-7f3a20a28000 r--p 00000000 fd:01 1840211                    /usr/lib/libc.so.6\n"  // 6 file
    "7f3a20a28000-7f3a20a29000 ---p 00028000 fd:01 1840211                    /usr/lib/libc.so.6\n"  // 7 PROT_NONE:
                                                                                                     // skipped
    "7f3a20b00000-7f3a20b01000 ---p 00000000 00:00 0 \n"                                             // 8 gate guard
    "7f3a20b01000-7f3a20c01000 rw-p 00000000 00:00 0 \n"                                             // 9 gate stack
    "7f3a20d00000-7f3a20d40000 rw-p 00000000 00:00 0 \n"  // 10 scratch: excluded
    "7f3a20e00000-7f3a20e01000 rw-s 00000000 00:05 4242                       /dev/shm/x (deleted)\n"  // 11 file
    "7ffc8d500000-7ffc8d5c4000 rw-p 00000000 00:00 0                          [stack]\n"               // 12 stack
    "7ffc8d5f0000-7ffc8d5f4000 r--p 00000000 00:00 0                          [vvar]\n"
    "7ffc8d5f4000-7ffc8d5f5000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
    "7ffc8d5f5000-7ffc8d5f7000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7ffc8d600000-7ffc8d601000 --xp 00000000 00:00 0                          [uprobes]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

constexpr uint64_t kSp = 0x7ffc8d5a0123;

SelectInput input() {
  SelectInput in;
  in.stack_pointer = kSp;
  in.gate_guard = 0x7f3a20b00000;
  in.gate_stack_lo = 0x7f3a20b01000;
  in.gate_stack_hi = 0x7f3a20c01000;
  in.exclude_lo = 0x7f3a20d00000;
  in.exclude_hi = 0x7f3a20d40000;
  return in;
}

// The entries point into text: keep it alive while they are used.
std::vector<sys::MapEntry> maps(std::string_view text) {
  std::vector<sys::MapEntry> m;
  std::string why;
  EXPECT_TRUE(sys::parse_proc_maps(text, m, 1000, &why)) << why;
  return m;
}

TEST(RegionSelect, SelectsTheRightSegmentsAndKinds) {
  const auto m = maps(kMaps);
  std::vector<SegmentPlan> out;
  out.reserve(64);
  std::string why;
  ASSERT_TRUE(select_segments(m, input(), out, &why)) << why;
  struct Want {
    uint64_t start, end;
    int prot;
    SegmentKind kind;
    bool anonymous;
    const char* origin;
  };
  const int r = PROT_READ, rw = PROT_READ | PROT_WRITE, rx = PROT_READ | PROT_EXEC;
  const Want want[] = {
      {0x55d0c4e00000, 0x55d0c4e02000, r, SegmentKind::File, false, "/opt/srv/server"},
      {0x55d0c4e02000, 0x55d0c4e07000, rx, SegmentKind::File, false, "/opt/srv/server"},
      {0x55d0c4e07000, 0x55d0c4e08000, rw, SegmentKind::File, false, "/opt/srv/server"},
      {0x55d0c5a1e000, 0x55d0c5a3f000, rw, SegmentKind::Heap, true, "[heap]"},
      {0x7f3a1c000000, 0x7f3a1c021000, rw, SegmentKind::Anon, true, ""},
      {0x7f3a20a00000, 0x7f3a20a28000, r, SegmentKind::File, false, "/usr/lib/libc.so.6"},
      {0x7f3a20b00000, 0x7f3a20b01000, PROT_NONE, SegmentKind::GateGuard, true, ""},
      {0x7f3a20b01000, 0x7f3a20c01000, rw, SegmentKind::GateStack, true, ""},
      {0x7f3a20e00000, 0x7f3a20e01000, rw, SegmentKind::File, false, "/dev/shm/x"},
      // [stack] trimmed to 64 KiB below the stack pointer, page-aligned.
      {0x7ffc8d590000, 0x7ffc8d5c4000, rw, SegmentKind::Stack, true, "[stack]"},
  };
  ASSERT_EQ(out.size(), std::size(want));
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    EXPECT_EQ(out[i].start, want[i].start);
    EXPECT_EQ(out[i].end, want[i].end);
    EXPECT_EQ(out[i].prot, want[i].prot);
    EXPECT_EQ(out[i].kind, want[i].kind);
    EXPECT_EQ(out[i].anonymous, want[i].anonymous);
    EXPECT_EQ(out[i].origin, want[i].origin);
  }
}

TEST(RegionSelect, KernelSpecialMappingsAreNeverSelected) {
  const auto m = maps(kMaps);
  std::vector<SegmentPlan> out;
  out.reserve(64);
  std::string why;
  ASSERT_TRUE(select_segments(m, input(), out, &why)) << why;
  for (const auto& s : out) {
    EXPECT_NE(s.origin, "[vvar]");
    EXPECT_NE(s.origin, "[vvar_vclock]");
    EXPECT_NE(s.origin, "[vdso]");
    EXPECT_NE(s.origin, "[vsyscall]");
    EXPECT_NE(s.origin, "[uprobes]");
    EXPECT_LT(s.start, s.end);
    EXPECT_TRUE(s.kind == SegmentKind::GateGuard || (s.prot & PROT_READ));
  }
}

TEST(RegionSelect, StackTrimming) {
  const char text[] = "7ffc8d500000-7ffc8d5c4000 rw-p 00000000 00:00 0 [stack]\n";
  const auto m = maps(text);
  std::string why;
  auto stack_start = [&](uint64_t sp) {
    std::vector<SegmentPlan> out;
    out.reserve(4);
    SelectInput in;
    in.stack_pointer = sp;
    EXPECT_TRUE(select_segments(m, in, out, &why)) << why;
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(out.at(0).kind, SegmentKind::Stack);
    EXPECT_EQ(out.at(0).end, 0x7ffc8d5c4000u);
    return out.at(0).start;
  };
  EXPECT_EQ(stack_start(0x7ffc8d5a0123), 0x7ffc8d590000u);
  EXPECT_EQ(stack_start(0x7ffc8d5b0000), 0x7ffc8d5a0000u);
  // Near the bottom: the whole mapping.
  EXPECT_EQ(stack_start(0x7ffc8d500000 + 0x10000), 0x7ffc8d500000u);
  EXPECT_EQ(stack_start(0x7ffc8d500000 + 0x100), 0x7ffc8d500000u);
  // A stack pointer outside the stack (unknown, 0): the whole mapping.
  EXPECT_EQ(stack_start(0), 0x7ffc8d500000u);
  EXPECT_EQ(stack_start(0x1000), 0x7ffc8d500000u);
  EXPECT_EQ(stack_start(0x7fffffffffff), 0x7ffc8d500000u);
}

TEST(RegionSelect, UnreadableMappingIsRefused) {
  for (const char* perms : {"-w-p", "--xp", "-wxp"}) {
    SCOPED_TRACE(perms);
    const std::string line = std::string("7f3a1c000000-7f3a1c021000 ") + perms + " 00000000 00:00 0 ";
    const std::string text = "55d0c4e00000-55d0c4e02000 r--p 00000000 fd:01 1 /a\n" + line + "\n";
    const auto m = maps(text);  // the entries point into text
    std::vector<SegmentPlan> out;
    out.reserve(8);
    std::string why;
    EXPECT_FALSE(select_segments(m, SelectInput{}, out, &why));
    EXPECT_EQ(why, "mapping \"" + line +
                       "\" is not readable, so it cannot be copied; make it readable or unmap it before the snapshot");
  }
  // An unreadable [vsyscall] or excluded range is not a problem (the
  // exclusion is cut out of a mapping, so it must cover the unreadable one).
  const auto m = maps(
      "7f3a1c000000-7f3a1c021000 -w-p 00000000 00:00 0 \n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n");
  std::vector<SegmentPlan> out;
  out.reserve(8);
  std::string why;
  SelectInput in;
  in.exclude_lo = 0x7f3a1c000000;
  in.exclude_hi = 0x7f3a1c021000;
  EXPECT_TRUE(select_segments(m, in, out, &why)) << why;
  EXPECT_TRUE(out.empty());
}

TEST(RegionSelect, WritableSharedFileMappingIsRefused) {
  for (const char* perms : {"rw-s", "rwxs"}) {
    SCOPED_TRACE(perms);
    const std::string line =
        std::string("7f3a20e00000-7f3a20e01000 ") + perms + " 00000000 fd:01 4242 /var/lib/app/counters";
    const std::string text = "55d0c4e00000-55d0c4e02000 r--p 00000000 fd:01 1 /a\n" + line + "\n";
    const auto m = maps(text);
    std::vector<SegmentPlan> out;
    out.reserve(8);
    std::string why;
    EXPECT_FALSE(select_segments(m, SelectInput{}, out, &why));
    EXPECT_EQ(why, "mapping \"" + line +
                       "\" is a writable shared mapping of the file /var/lib/app/counters: in a "
                       "client its writes would go to a private copy, never to the file; unmap it before the snapshot "
                       "(or map it MAP_PRIVATE)");
    out.clear();
    EXPECT_FALSE(select_segments(m, SelectInput{}, out, nullptr));  // and without a message (the copy phase)
  }
}

TEST(RegionSelect, SharedMappingsThatStayCopies) {
  // Read-only shared files, private writable files, and shared memory that
  // only the kernel calls a file: copied as before.
  const auto m = maps(
      "7f3a20e00000-7f3a20e01000 r--s 00000000 fd:01 4242 /var/lib/app/table\n"
      "7f3a20e01000-7f3a20e02000 rw-p 00000000 fd:01 4243 /var/lib/app/private\n"
      "7f3a20e02000-7f3a20e03000 rw-s 00000000 00:01 17 /memfd:arena (deleted)\n"
      "7f3a20e03000-7f3a20e04000 rw-s 00000000 00:01 18 /SYSV00000000 (deleted)\n"
      "7f3a20e04000-7f3a20e05000 rw-s 00000000 00:01 19 /dev/zero (deleted)\n"
      "7f3a20e05000-7f3a20e06000 rw-s 00000000 00:05 4242 /dev/shm/x (deleted)\n"
      "7f3a20e06000-7f3a20e07000 rw-s 00000000 00:00 0 \n");
  std::vector<SegmentPlan> out;
  out.reserve(16);
  std::string why;
  ASSERT_TRUE(select_segments(m, SelectInput{}, out, &why)) << why;
  EXPECT_EQ(out.size(), 7u);
}

TEST(RegionSelect, GuardOnlyWhenItIsTheGatesGuard) {
  const auto m = maps(
      "7f3a20b00000-7f3a20b01000 ---p 00000000 00:00 0 \n"
      "7f3a20b01000-7f3a20c01000 rw-p 00000000 00:00 0 \n");
  std::vector<SegmentPlan> out;
  out.reserve(8);
  std::string why;
  ASSERT_TRUE(select_segments(m, SelectInput{}, out, &why)) << why;
  ASSERT_EQ(out.size(), 1u);  // the guard is just a PROT_NONE page without gate_guard
  EXPECT_EQ(out[0].kind, SegmentKind::Anon);
  SelectInput in;
  in.gate_guard = 0x7f3a20b00000;
  in.gate_stack_lo = 0x7f3a20b01000;
  in.gate_stack_hi = 0x7f3a20c01000;
  ASSERT_TRUE(select_segments(m, in, out, &why)) << why;
  ASSERT_EQ(out.size(), 2u);  // `out` was cleared first
  EXPECT_EQ(out[0].kind, SegmentKind::GateGuard);
  EXPECT_EQ(out[1].kind, SegmentKind::GateStack);
}

TEST(RegionSelect, ScratchMergedWithANeighbourIsCutOutNotDropped) {
  // The kernel merges the snapshot's scratch buffer with an adjacent mapping
  // of the same kind: only the scratch range may be left out.
  const auto m = maps("7f3a20cf0000-7f3a20d50000 rw-p 00000000 00:00 0 \n");
  std::vector<SegmentPlan> out;
  out.reserve(8);
  std::string why;
  ASSERT_TRUE(select_segments(m, input(), out, &why)) << why;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].start, 0x7f3a20cf0000u);
  EXPECT_EQ(out[0].end, 0x7f3a20d00000u);
  EXPECT_EQ(out[1].start, 0x7f3a20d40000u);
  EXPECT_EQ(out[1].end, 0x7f3a20d50000u);
}

TEST(RegionSelect, GuardMergedWithOtherReservationsIsKeptExactly) {
  // The gate's PROT_NONE guard merged with a PROT_NONE reservation around it.
  const auto m = maps("7f3a20a00000-7f3a20b10000 ---p 00000000 00:00 0 \n");
  std::vector<SegmentPlan> out;
  out.reserve(8);
  std::string why;
  SelectInput in = input();
  in.gate_guard_size = 0x10000;
  ASSERT_TRUE(select_segments(m, in, out, &why)) << why;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, SegmentKind::GateGuard);
  EXPECT_EQ(out[0].start, 0x7f3a20b00000u);
  EXPECT_EQ(out[0].end, 0x7f3a20b10000u);
}

TEST(RegionSelect, CapacityLimit) {
  const auto m = maps(kMaps);
  std::vector<SegmentPlan> out;
  out.reserve(3);
  const size_t cap = out.capacity();
  const auto* data = out.data();
  std::string why;
  EXPECT_FALSE(select_segments(m, input(), out, &why));
  EXPECT_EQ(why, "the process has more than " + std::to_string(cap) + " mappings to copy");
  EXPECT_EQ(out.size(), cap);
  EXPECT_EQ(out.data(), data);  // never reallocated
  // Exactly enough room.
  std::vector<SegmentPlan> exact;
  exact.reserve(10);
  if (exact.capacity() == 10) {
    EXPECT_TRUE(select_segments(m, input(), exact, &why)) << why;
  }
  // No room at all.
  std::vector<SegmentPlan> none;
  EXPECT_FALSE(select_segments(m, input(), none, nullptr));
}

TEST(RegionSelect, PlansCompareByRangeProtAndKind) {
  SegmentPlan a{0x1000, 0x2000, PROT_READ, SegmentKind::File, false, "/a"};
  SegmentPlan b = a;
  b.origin = "/b";
  b.anonymous = true;
  EXPECT_TRUE(a == b);
  b.prot = PROT_READ | PROT_WRITE;
  EXPECT_FALSE(a == b);
  b = a;
  b.kind = SegmentKind::Anon;
  EXPECT_FALSE(a == b);
  b = a;
  b.end = 0x3000;
  EXPECT_FALSE(a == b);
  b = a;
  b.source = 0x9000;  // the same range read from elsewhere (a moved stack)
  EXPECT_FALSE(a == b);
}

// SelectInput::stack_to: the used part of [stack] is planned there, read
// from where it is, in address order with the rest; nothing else moves.
TEST(RegionSelect, StackMovesWhereAsked) {
  const auto m = maps(kMaps);
  std::vector<SegmentPlan> out;
  out.reserve(64);
  std::string why;
  SelectInput in = input();
  in.stack_to = 0x7f3a1b000000;  // below the anonymous mapping at 0x7f3a1c000000
  ASSERT_TRUE(select_segments(m, in, out, &why)) << why;
  ASSERT_EQ(out.size(), 10u);
  for (size_t i = 1; i < out.size(); ++i) EXPECT_LT(out[i - 1].start, out[i].start) << i;
  const SegmentPlan& stack = out[4];
  EXPECT_EQ(stack.kind, SegmentKind::Stack);
  EXPECT_EQ(stack.start, 0x7f3a1b000000u);
  EXPECT_EQ(stack.end, 0x7f3a1b000000u + (0x7ffc8d5c4000 - 0x7ffc8d590000));
  EXPECT_EQ(stack.source, 0x7ffc8d590000u);
  EXPECT_EQ(stack.origin, "[stack]");
  for (const SegmentPlan& p : out) {
    if (p.kind != SegmentKind::Stack) {
      EXPECT_EQ(p.source, p.start) << p.origin;
    }
  }

  const AddressMoves moves = address_moves(out, image::VdsoRecord{}, 0);
  ASSERT_EQ(moves.count, 1u);
  EXPECT_EQ(moves.moves[0].lo, 0x7ffc8d590000u);
  EXPECT_EQ(moves.moves[0].hi, 0x7ffc8d5c4000u);
  EXPECT_EQ(moves.moves[0].lo + moves.moves[0].delta, 0x7f3a1b000000u);
  // Without stack_to: no move.
  ASSERT_TRUE(select_segments(m, input(), out, &why)) << why;
  EXPECT_FALSE(address_moves(out, image::VdsoRecord{}, 0));
  // A vDSO whose record moved (vdso_from: where it was) moves too.
  image::VdsoRecord vdso;
  vdso.base = 0x7f3a20e02000;
  vdso.size = 0x2000;
  const AddressMoves with_vdso = address_moves(out, vdso, 0x7ffc8d5f5000);
  ASSERT_EQ(with_vdso.count, 1u);
  EXPECT_EQ(with_vdso.moves[0].lo, 0x7ffc8d5f5000u);
  EXPECT_EQ(with_vdso.moves[0].hi, 0x7ffc8d5f7000u);
  EXPECT_EQ(with_vdso.moves[0].lo + with_vdso.moves[0].delta, 0x7f3a20e02000u);
}

// Every aligned word in [lo, hi] (the end included) of either range moves
// with it; its neighbours on either side do not.
TEST(RegionSelect, AddressMovesFindAndMoveOnlyPointersIntoTheRanges) {
  AddressMoves moves;
  moves.add(0x7ffc8d590000, 0x7ffc8d5c4000, 0x7f3a1b000000);  // the stack
  alignas(4096) uint64_t page[512] = {};
  EXPECT_FALSE(moves.finds(reinterpret_cast<const uint8_t*>(page)));
  page[0] = 0x7ffc8d590000 - 1;
  page[1] = 0x7ffc8d5c4000 + 1;
  page[2] = 42;
  page[4] = 0x7ffc8d5f5000;  // the vDSO, not moved yet
  EXPECT_FALSE(moves.finds(reinterpret_cast<const uint8_t*>(page)));
  moves.add(0x7ffc8d5f5000, 0x7ffc8d5f7000, 0x7f3a1a000000);  // the vDSO
  EXPECT_TRUE(moves.finds(reinterpret_cast<const uint8_t*>(page)));
  page[4] = 0;
  page[3] = 0x7ffc8d590000;
  page[100] = 0x7ffc8d5a0123;
  page[511] = 0x7ffc8d5c4000;
  page[200] = 0x7ffc8d5f5a10;
  EXPECT_TRUE(moves.finds(reinterpret_cast<const uint8_t*>(page)));
  moves.apply(reinterpret_cast<uint8_t*>(page));
  EXPECT_EQ(page[0], 0x7ffc8d590000u - 1);
  EXPECT_EQ(page[1], 0x7ffc8d5c4000u + 1);
  EXPECT_EQ(page[2], 42u);
  EXPECT_EQ(page[3], 0x7f3a1b000000u);
  EXPECT_EQ(page[100], 0x7f3a1b010123u);
  EXPECT_EQ(page[511], 0x7f3a1b034000u);
  EXPECT_EQ(page[200], 0x7f3a1a000a10u);
  EXPECT_FALSE(moves.finds(reinterpret_cast<const uint8_t*>(page)));
  // A third range, or one that stays where it is, is not added.
  moves.add(0x1000, 0x2000, 0x3000);
  moves.add(0x5000, 0x6000, 0x5000);
  EXPECT_EQ(moves.count, 2u);
  // Which segments are scanned: all but read-only code (relro data holds
  // glibc's pointers to argv and the auxv; an executable stack is
  // writable).
  EXPECT_TRUE(AddressMoves::scanned({0, 0, PROT_READ | PROT_WRITE, SegmentKind::File, false, "/lib"}));
  EXPECT_TRUE(AddressMoves::scanned({0, 0, PROT_READ, SegmentKind::Anon, true, ""}));
  EXPECT_TRUE(AddressMoves::scanned({0, 0, PROT_READ, SegmentKind::File, false, "/lib"}));
  EXPECT_TRUE(AddressMoves::scanned({0, 0, PROT_READ | PROT_WRITE | PROT_EXEC, SegmentKind::Stack, true, "[stack]"}));
  EXPECT_FALSE(AddressMoves::scanned({0, 0, PROT_READ | PROT_EXEC, SegmentKind::File, false, "/lib"}));
}

// Kernels before 6.11 put the vDSO just above the stack: its forwarder
// goes a page above the highest other mapping (it stays the highest loaded
// object).  Elsewhere it stays where it is.
TEST(RegionSelect, VdsoMovesOnlyFromAboveTheStack) {
  const auto m = maps(kMaps);
  EXPECT_EQ(vdso_destination(m, 0x7ffc8d5f5000, 0x2000), 0x7f3a20e02000u);  // above /dev/shm/x's end
  EXPECT_EQ(vdso_destination(m, 0x7f3a21000000, 0x2000), 0u);               // below the stack (6.11 on): stays
  // Without randomization the libraries lie in the stack area too, below
  // the vDSO: it stays, the highest object still.
  const char norandom[] =
      "555555554000-555555556000 r--p 00000000 fd:01 1835023 /opt/srv/server\n"
      "7ffff7fc3000-7ffff7fc5000 r--p 00000000 fd:01 1840200 /usr/lib/ld-linux-x86-64.so.2\n"
      "7ffff7fc5000-7ffff7fc9000 r--p 00000000 00:00 0 [vvar]\n"
      "7ffff7fc9000-7ffff7fcb000 r-xp 00000000 00:00 0 [vdso]\n"
      "7ffff7fcb000-7ffff7ff1000 r-xp 00002000 fd:01 1840200 /usr/lib/ld-linux-x86-64.so.2\n"
      "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n";
  EXPECT_EQ(vdso_destination(maps(norandom), 0x7ffff7fc9000, 0x2000), 0u);
  // Nothing but the stack mapped: no room to tell.
  EXPECT_EQ(vdso_destination(maps("7ffc8d500000-7ffc8d5c4000 rw-p 00000000 00:00 0 [stack]\n"), 0x7ffc8d5f5000, 0x2000),
            0u);
}

}  // namespace
}  // namespace subctx::server
