// Which of the server's mappings become segments of the image.  Pure and
// allocation-free once `out` has capacity, so it can run again while the
// snapshot is copying memory to check that the layout has not changed.
#pragma once

#include <array>
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

// The lowest address a process's [stack] and the room it may grow into
// reach (x86-64, 4-level page tables): its top lies at random up to 16 GiB
// below 0x7ffffffff000, and 256 MiB are allowed for RLIMIT_STACK and the
// guard gap.  No segment of an image should lie above it.
inline constexpr uint64_t kStackAreaLo = 0x7ffffffff000 - (uint64_t{16} << 30) - (uint64_t{256} << 20);

// Where the image puts the vDSO (its forwarder): where it is (0) unless it
// lies above the [stack] (kernels before 6.11 put it there); then a page
// above the highest other mapping, so that it stays the highest of the
// loaded objects (glibc's _dl_find_object keeps them sorted by address;
// moved below a library, C++ exceptions would no longer find their unwind
// tables).  0 too when that is not below the stack area.
uint64_t vdso_destination(const std::vector<sys::MapEntry>& maps, uint64_t vdso_lo, uint64_t vdso_size);

// Ranges of the server's address space the image puts elsewhere: its
// [stack] (environ, argv, auxv and the strings they point to sit at the
// top; libc and the program keep pointers to them) and its vDSO (the
// forwarder that replaces it; libc keeps pointers to its functions).  On
// kernels before 6.11 the vDSO lies just above the stack.  Every aligned
// word of the image whose value lies in an old range [lo, hi] (one past the
// end included: end pointers) is moved with it, wherever it is.
struct AddressMoves {
  struct Move {
    uint64_t lo = 0, hi = 0;
    uint64_t delta = 0;  // new - old, modulo 2^64
  };
  static constexpr size_t kMax = 2;
  std::array<Move, kMax> moves{};
  size_t count = 0;

  void add(uint64_t lo, uint64_t hi, uint64_t to);
  // Segments that may hold such words: all but read-only code (relro data,
  // written and then made read-only, holds glibc's argv and auxv pointers;
  // an executable stack is writable).
  static bool scanned(const SegmentPlan& p);
  // Whether the page (4096 bytes, 8-aligned) holds such a word.
  bool finds(const uint8_t* page) const;
  // Moves them in place.
  void apply(uint8_t* page) const;
  explicit operator bool() const { return count != 0; }
};
// The moves an image makes: its [stack], when the plan moved it, and the
// vDSO, when its record's base is no longer vdso_from (0: not moved).
AddressMoves address_moves(const std::vector<SegmentPlan>& plan, const image::VdsoRecord& vdso, uint64_t vdso_from);

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
