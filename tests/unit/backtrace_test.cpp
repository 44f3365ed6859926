// subcontext_frames on fake stacks in this process: words pointing just
// after real call instructions (recorded return addresses, and a block of
// hand-assembled calls in .text), rbp chains, bounds, unmapped pages; and
// ends_with_call on every ModRM form of call r/m64.
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "matchmaker/backtrace.hpp"
#include "sys/proc_maps.hpp"

// Code that is never run: known bytes before each label.  The "after_"
// labels follow a call, the "not_" labels follow no call (8 nops before
// each, so that no longer form can match either).
__asm__(R"(
  .pushsection .text.subctx_backtrace_test, "ax", @progbits
  .irp name, after_e8, after_ff_d0, after_rex_ff_d3, after_ff_10, after_ff_14_24, after_ff_55_08, after_ff_54_24_08, after_ff_15, after_ff_90, after_ff_94_24, after_ff_14_25, not_nops, not_jmp_ff_e0, not_ff_15_short, not_call_far_ff_18, not_e8_short
  .globl subctx_bt_\name
  .hidden subctx_bt_\name
  .endr
  .fill 8, 1, 0x90
  .byte 0xe8, 0x00, 0x00, 0x00, 0x00
subctx_bt_after_e8:
  .byte 0xff, 0xd0
subctx_bt_after_ff_d0:
  .byte 0x41, 0xff, 0xd3
subctx_bt_after_rex_ff_d3:
  .byte 0xff, 0x10
subctx_bt_after_ff_10:
  .byte 0xff, 0x14, 0x24
subctx_bt_after_ff_14_24:
  .byte 0xff, 0x55, 0x08
subctx_bt_after_ff_55_08:
  .byte 0xff, 0x54, 0x24, 0x08
subctx_bt_after_ff_54_24_08:
  .byte 0xff, 0x15, 0x01, 0x02, 0x03, 0x04
subctx_bt_after_ff_15:
  .byte 0xff, 0x90, 0x01, 0x02, 0x03, 0x04
subctx_bt_after_ff_90:
  .byte 0xff, 0x94, 0x24, 0x01, 0x02, 0x03, 0x04
subctx_bt_after_ff_94_24:
  .byte 0xff, 0x14, 0x25, 0x01, 0x02, 0x03, 0x04
subctx_bt_after_ff_14_25:
  .fill 8, 1, 0x90
subctx_bt_not_nops:
  .fill 8, 1, 0x90
  .byte 0xff, 0xe0
subctx_bt_not_jmp_ff_e0:
  .fill 8, 1, 0x90
  .byte 0xff, 0x15
subctx_bt_not_ff_15_short:
  .fill 8, 1, 0x90
  .byte 0xff, 0x18
subctx_bt_not_call_far_ff_18:
  .fill 8, 1, 0x90
  .byte 0xe8, 0x00, 0x00, 0x00
subctx_bt_not_e8_short:
  .byte 0xc3
  .popsection
)");

extern "C" {
extern const uint8_t subctx_bt_after_e8[], subctx_bt_after_ff_d0[], subctx_bt_after_rex_ff_d3[],
    subctx_bt_after_ff_10[], subctx_bt_after_ff_14_24[], subctx_bt_after_ff_55_08[], subctx_bt_after_ff_54_24_08[],
    subctx_bt_after_ff_15[], subctx_bt_after_ff_90[], subctx_bt_after_ff_94_24[], subctx_bt_after_ff_14_25[],
    subctx_bt_not_nops[], subctx_bt_not_jmp_ff_e0[], subctx_bt_not_ff_15_short[], subctx_bt_not_call_far_ff_18[],
    subctx_bt_not_e8_short[];

// The return address of its call: a real address just after a call.
__attribute__((noinline)) void* subctx_bt_return_address() {
  void* r = __builtin_return_address(0);
  __asm__ volatile("" : "+r"(r));
  return r;
}
}

namespace subctx::matchmaker {
namespace {

uint64_t addr(const void* p) { return reinterpret_cast<uint64_t>(p); }

// A direct call (e8) and a call through a function pointer (ff /2).
__attribute__((noinline)) uint64_t return_address_of_direct_call() {
  void* r = subctx_bt_return_address();
  __asm__ volatile("" : "+r"(r));  // no tail call
  return addr(r);
}

void* (*volatile g_record)() = subctx_bt_return_address;

__attribute__((noinline)) uint64_t return_address_of_indirect_call() {
  void* r = g_record();
  __asm__ volatile("" : "+r"(r));
  return addr(r);
}

std::vector<CodeRange> executable_ranges() {
  sys::SelfMaps maps;
  std::string why;
  EXPECT_TRUE(sys::read_self_maps(&maps, &why)) << why;
  std::vector<CodeRange> code;
  for (const auto& m : maps.entries)
    if (m.prot & PROT_EXEC) code.push_back({m.start, m.end});
  return code;
}

const uint64_t kPc = 0xdead0000;  // the pc is reported as it is, code or not

// A fake gate stack: words in a buffer, sp at its start.
struct FakeStack {
  std::vector<uint64_t> words = std::vector<uint64_t>(64, 0);

  uint64_t at(size_t i) const { return addr(&words[0]) + 8 * i; }
  FrameScanInput input(uint64_t rbp = 0) const {
    FrameScanInput in;
    in.pc = kPc;
    in.sp = at(0);
    in.rbp = rbp;
    in.stack_lo = at(0);
    in.stack_hi = at(words.size());
    in.code = executable_ranges();
    return in;
  }
};

using Frames = std::vector<uint64_t>;

TEST(Backtrace, RecordedReturnAddressesFollowCalls) {
  for (uint64_t ret : {return_address_of_direct_call(), return_address_of_indirect_call()}) {
    const auto* p = reinterpret_cast<const uint8_t*>(ret);
    EXPECT_TRUE(ends_with_call({p - 7, 7})) << std::hex << ret;
  }
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(return_address_of_direct_call())[-5], 0xe8);
}

TEST(Backtrace, ScanKeepsWordsAfterCallsInOrder) {
  FakeStack s;
  const uint64_t direct = return_address_of_direct_call(), indirect = return_address_of_indirect_call();
  s.words[1] = direct;
  s.words[2] = 0x1234;                    // not code
  s.words[3] = addr(subctx_bt_not_nops);  // code, but no call before it
  s.words[4] = s.at(10);                  // a stack pointer
  s.words[6] = indirect;
  s.words[9] = addr(subctx_bt_after_ff_15);  // rip-relative call *disp32(%rip)
  s.words[63] = addr(subctx_bt_after_e8);    // the last word of the stack
  EXPECT_EQ(subcontext_frames(s.input()),
            (Frames{kPc, direct, indirect, addr(subctx_bt_after_ff_15), addr(subctx_bt_after_e8)}));
}

TEST(Backtrace, EveryCallFormIsFoundAndOthersAreNot) {
  const uint8_t* const calls[] = {subctx_bt_after_e8,          subctx_bt_after_ff_d0,    subctx_bt_after_rex_ff_d3,
                                  subctx_bt_after_ff_10,       subctx_bt_after_ff_14_24, subctx_bt_after_ff_55_08,
                                  subctx_bt_after_ff_54_24_08, subctx_bt_after_ff_15,    subctx_bt_after_ff_90,
                                  subctx_bt_after_ff_94_24,    subctx_bt_after_ff_14_25};
  const uint8_t* const others[] = {subctx_bt_not_nops, subctx_bt_not_jmp_ff_e0, subctx_bt_not_ff_15_short,
                                   subctx_bt_not_call_far_ff_18, subctx_bt_not_e8_short};
  FakeStack s;
  Frames want = {kPc};
  for (size_t i = 0; i < std::size(calls); ++i) {
    s.words[2 * i] = addr(calls[i]);
    s.words[2 * i + 1] = addr(others[i % std::size(others)]);
    want.push_back(addr(calls[i]));
  }
  EXPECT_EQ(subcontext_frames(s.input()), want);
}

TEST(Backtrace, EndsWithCallForms) {
  struct Case {
    std::vector<uint8_t> bytes;
    bool call;
  };
  const Case cases[] = {
      {{0xe8, 1, 2, 3, 4}, true},
      {{0x90, 0xe8, 1, 2, 3, 4}, true},
      {{0xe8, 1, 2, 3}, false},
      {{0xff, 0xd0}, true},                    // call *%rax
      {{0xff, 0xd7}, true},                    // call *%rdi
      {{0xff, 0xe0}, false},                   // jmp *%rax
      {{0xff, 0xc0}, false},                   // inc %eax
      {{0xff, 0x10}, true},                    // call *(%rax)
      {{0xff, 0x15}, false},                   // rip-relative needs a disp32
      {{0xff, 0x15, 1, 2, 3, 4}, true},        // call *disp32(%rip)
      {{0xff, 0x14}, false},                   // needs a SIB byte
      {{0xff, 0x14, 0x24}, true},              // call *(%rsp)
      {{0xff, 0x14, 0x25, 1, 2, 3, 4}, true},  // call *disp32 (SIB without base)
      {{0x90, 0xff, 0x14, 0x25}, false},
      {{0xff, 0x50, 8}, true},                 // call *8(%rax)
      {{0xff, 0x54, 0x24, 8}, true},           // call *8(%rsp)
      {{0xff, 0x90, 1, 2, 3, 4}, true},        // call *disp32(%rax)
      {{0xff, 0x94, 0x24, 1, 2, 3, 4}, true},  // call *disp32(%rsp)
      {{0xff, 0x18}, false},                   // lcall *(%rax) is ff /3
      {{0x41, 0xff, 0xd3}, true},              // call *%r11
      {{}, false},
      {{0xff}, false},
  };
  for (const Case& c : cases) {
    std::string hex;
    for (uint8_t b : c.bytes) hex += std::to_string(b) + " ";
    EXPECT_EQ(ends_with_call(c.bytes), c.call) << hex;
  }
}

// Frame records [saved rbp, return address] at words 4, 10 and 20.  Their
// return addresses follow no call: only the chain can find them.
struct ChainStack : FakeStack {
  const uint64_t a = addr(subctx_bt_not_nops), b = addr(subctx_bt_not_jmp_ff_e0), c = addr(subctx_bt_not_ff_15_short);
  ChainStack() {
    words[4] = at(10), words[5] = a;
    words[10] = at(20), words[11] = b;
    words[20] = 0, words[21] = c;
  }
};

TEST(Backtrace, FollowsTheRbpChain) {
  ChainStack s;
  EXPECT_EQ(subcontext_frames(s.input(s.at(4))), (Frames{kPc, s.a, s.b, s.c}));
  // Without rbp only the scan runs, which needs calls.
  EXPECT_EQ(subcontext_frames(s.input(0)), (Frames{kPc}));
}

TEST(Backtrace, ChainAndScanMergeInStackOrder) {
  ChainStack s;
  const uint64_t direct = return_address_of_direct_call();
  s.words[1] = direct;                        // a frameless leaf's caller, below rbp
  s.words[15] = addr(subctx_bt_after_ff_10);  // between two records
  EXPECT_EQ(subcontext_frames(s.input(s.at(4))), (Frames{kPc, direct, s.a, s.b, addr(subctx_bt_after_ff_10), s.c}));
}

TEST(Backtrace, RbpOutsideTheBoundsStopsTheWalk) {
  ChainStack s;
  s.words[10] = s.at(64);  // one past the stack
  EXPECT_EQ(subcontext_frames(s.input(s.at(4))), (Frames{kPc, s.a, s.b}));
  s.words[10] = s.at(0) - 64;  // below the stack
  EXPECT_EQ(subcontext_frames(s.input(s.at(4))), (Frames{kPc, s.a, s.b}));
  // The first rbp outside the bounds: no chain at all.
  EXPECT_EQ(subcontext_frames(s.input(s.at(0) - 16)), (Frames{kPc}));
  EXPECT_EQ(subcontext_frames(s.input(s.at(64))), (Frames{kPc}));
  // A record whose return address is not code ends the chain.
  ChainStack t;
  t.words[11] = 0x1234;
  EXPECT_EQ(subcontext_frames(t.input(t.at(4))), (Frames{kPc, t.a}));
}

TEST(Backtrace, ChainMustStrictlyIncrease) {
  ChainStack s;
  s.words[10] = s.at(4);  // a loop back
  EXPECT_EQ(subcontext_frames(s.input(s.at(4))), (Frames{kPc, s.a, s.b}));
  s.words[10] = s.at(10);  // a self loop
  EXPECT_EQ(subcontext_frames(s.input(s.at(4))), (Frames{kPc, s.a, s.b}));
  // Unaligned, or below sp: not a frame record.
  FrameScanInput in = s.input(s.at(4) + 1);
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
  in = s.input(s.at(4));
  in.sp = s.at(6);
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
}

TEST(Backtrace, MaxFramesAndAdjacentDuplicates) {
  FakeStack s;
  const uint64_t direct = return_address_of_direct_call(), indirect = return_address_of_indirect_call();
  s.words[0] = direct, s.words[1] = direct, s.words[2] = indirect, s.words[3] = direct;
  FrameScanInput in = s.input();
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc, direct, indirect, direct}));
  in.max_frames = 3;
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc, direct, indirect}));
  in.max_frames = 1;
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
  in.max_frames = 0;
  EXPECT_EQ(subcontext_frames(in), Frames{});
  // The pc and the first return address may be equal (a fault right after a return); kept once.
  in = s.input();
  in.pc = direct;
  EXPECT_EQ(subcontext_frames(in), (Frames{direct, indirect, direct}));
}

TEST(Backtrace, ScanIsBoundedAndStartsAtSp) {
  FakeStack s;
  s.words.assign((kMaxStackScanBytes + 4096) / 8, 0);
  const uint64_t direct = return_address_of_direct_call(), indirect = return_address_of_indirect_call();
  s.words[0] = indirect;  // below sp
  s.words[8] = direct;    // sp's word
  const uint64_t last = addr(subctx_bt_after_e8);
  s.words[kMaxStackScanBytes / 8 + 7] = last;      // the last word scanned
  s.words[kMaxStackScanBytes / 8 + 8] = indirect;  // one past the bound
  FrameScanInput in = s.input();
  in.sp = s.at(8);
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc, direct, last}));
  // An unaligned sp starts at the next word.
  in.sp = s.at(7) + 1;
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc, direct, last}));
  // After a stack overflow sp lies below the stack: scan from its bottom.
  in.sp = s.at(0) - 4096;
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc, indirect, direct}));
}

TEST(Backtrace, EmptyOrInvertedBoundsGiveThePcOnly) {
  FakeStack s;
  s.words[0] = return_address_of_direct_call();
  FrameScanInput in = s.input();
  in.stack_hi = in.stack_lo;
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
  in.stack_hi = in.stack_lo - 8;
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
  in = s.input();
  in.code.clear();
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
}

// Three pages; the middle one is unmapped after the words are written.
struct HoleyStack {
  static constexpr size_t kPage = 4096;
  uint8_t* base = nullptr;

  HoleyStack() {
    void* p = mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    base = static_cast<uint8_t*>(p);
  }
  ~HoleyStack() { munmap(base, 3 * kPage); }
  uint64_t at(size_t offset) const { return addr(base) + offset; }
  void put(size_t offset, uint64_t word) const { std::memcpy(base + offset, &word, 8); }
  void punch() const { ASSERT_EQ(munmap(base + kPage, kPage), 0); }
  FrameScanInput input(uint64_t sp, uint64_t rbp = 0) const {
    FrameScanInput in;
    in.pc = kPc, in.sp = sp, in.rbp = rbp;
    in.stack_lo = at(0), in.stack_hi = at(3 * kPage);
    in.code = executable_ranges();
    return in;
  }
};

TEST(Backtrace, UnmappedStackGivesAShortResult) {
  HoleyStack s;
  const uint64_t direct = return_address_of_direct_call(), indirect = return_address_of_indirect_call();
  s.put(64, direct);
  s.put(HoleyStack::kPage - 8, indirect);       // the last word before the hole
  s.put(HoleyStack::kPage + 64, direct);        // in the hole
  s.put(2 * HoleyStack::kPage + 64, indirect);  // after the hole
  s.punch();
  EXPECT_EQ(subcontext_frames(s.input(s.at(0))), (Frames{kPc, direct, indirect}));
  // sp in the hole: nothing readable from there.
  EXPECT_EQ(subcontext_frames(s.input(s.at(HoleyStack::kPage + 16))), (Frames{kPc}));
  // An rbp into the hole ends the chain without a fault.
  EXPECT_EQ(subcontext_frames(s.input(s.at(0), s.at(HoleyStack::kPage + 32))), (Frames{kPc, direct, indirect}));
}

TEST(Backtrace, ChainContinuesPastTheScannedWindowAndTheHole) {
  HoleyStack s;
  const uint64_t a = addr(subctx_bt_not_nops), b = addr(subctx_bt_not_jmp_ff_e0);
  s.put(32, s.at(2 * HoleyStack::kPage + 32));  // record 1: saved rbp
  s.put(40, a);
  s.put(2 * HoleyStack::kPage + 32, 0);  // record 2, beyond the hole
  s.put(2 * HoleyStack::kPage + 40, b);
  s.punch();
  EXPECT_EQ(subcontext_frames(s.input(s.at(0), s.at(32))), (Frames{kPc, a, b}));
}

TEST(Backtrace, UnreadableCodeIsNotACall) {
  void* p = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  FakeStack s;
  s.words[0] = addr(p) + 64;
  s.words[1] = addr(p) + 4096;  // just past the range: its call would be at its end
  FrameScanInput in = s.input();
  in.code.push_back({addr(p), addr(p) + 4096});
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
  munmap(p, 4096);
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
}

TEST(Backtrace, ACallAtTheEndOfARangeCounts) {
  // A noreturn call may be a range's last instruction: its return address
  // is the range's end.  Claim a range that ends right after a call.
  FakeStack s;
  s.words[0] = addr(subctx_bt_after_e8);
  FrameScanInput in = s.input();
  in.code = {{addr(subctx_bt_after_e8) - 5, addr(subctx_bt_after_e8)}};
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc, addr(subctx_bt_after_e8)}));
  // Only part of the call inside the range: not enough bytes to tell.
  in.code = {{addr(subctx_bt_after_e8) - 4, addr(subctx_bt_after_e8)}};
  EXPECT_EQ(subcontext_frames(in), (Frames{kPc}));
}

}  // namespace
}  // namespace subctx::matchmaker
