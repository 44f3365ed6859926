#include "server/region_select.hpp"

#include <sys/mman.h>

#include <algorithm>

namespace subctx::server {

namespace {
constexpr uint64_t kStackMargin = 64 * 1024;  // below the stack pointer: red zone and more
constexpr size_t kWords = image::kPageSize / 8;

bool is_kernel_special(std::string_view p) {
  return p == "[vvar]" || p == "[vvar_vclock]" || p == "[vdso]" || p == "[vsyscall]" || p == "[uprobes]";
}

// A MAP_SHARED, writable mapping of a file that still has a name.  The image
// holds a copy of its pages, which a client maps MAP_PRIVATE: the server's
// code would write to that copy, never to the file, and lose the writes
// without an error.  memfd, SysV shared memory and shared anonymous memory
// (/dev/zero) are files only for the kernel: nothing outside sees them, so
// a copy keeps their meaning.
bool is_writable_shared_file(const sys::MapEntry& m) {
  if (!m.shared || !(m.prot & PROT_WRITE) || m.inode == 0 || m.deleted) return false;
  if (m.path.empty() || m.path.front() != '/') return false;
  for (std::string_view anon : {"/memfd:", "/SYSV", "/dev/zero"})
    if (m.path.substr(0, anon.size()) == anon) return false;
  return true;
}
}  // namespace

bool select_segments(const std::vector<sys::MapEntry>& maps, const SelectInput& in, std::vector<SegmentPlan>& out,
                     std::string* why) {
  out.clear();
  auto emit = [&](const sys::MapEntry& m, uint64_t lo, uint64_t hi, image::SegmentKind kind, uint64_t to = 0) {
    if (lo >= hi) return true;
    if (out.size() == out.capacity()) {
      if (why) *why = "the process has more than " + std::to_string(out.capacity()) + " mappings to copy";
      return false;
    }
    SegmentPlan s;
    s.start = to ? to : lo;
    s.end = s.start + (hi - lo);
    s.source = lo;
    s.prot = m.prot;
    s.origin = m.path;
    s.anonymous = m.inode == 0;
    s.kind = kind;
    out.push_back(s);
    return true;
  };
  for (const auto& m : maps) {
    if (is_kernel_special(m.path)) continue;
    if (m.start >= in.exclude_lo && m.end <= in.exclude_hi) continue;  // the snapshot's own scratch
    if (m.prot == PROT_NONE) {
      // Reservations and guard pages hold nothing to copy; only the gate
      // stack's guard is kept (mapped PROT_NONE in the client), wherever the
      // kernel merged it.
      const uint64_t lo = std::max(m.start, in.gate_guard), hi = std::min(m.end, in.gate_guard + in.gate_guard_size);
      if (in.gate_guard && !emit(m, lo, hi, image::SegmentKind::GateGuard)) return false;
      continue;
    }
    if (!(m.prot & PROT_READ)) {
      if (why)
        *why = "mapping \"" + std::string(m.line) +
               "\" is not readable, so it cannot be copied; make it readable or unmap it before the snapshot";
      return false;
    }
    if (is_writable_shared_file(m)) {
      if (why)
        *why = "mapping \"" + std::string(m.line) + "\" is a writable shared mapping of the file " +
               std::string(m.path) +
               ": in a client its writes would go to a private copy, never to the file; unmap it before the snapshot "
               "(or map it MAP_PRIVATE)";
      return false;
    }
    image::SegmentKind kind;
    uint64_t start = m.start;
    if (m.overlaps(in.gate_stack_lo, in.gate_stack_hi)) {
      kind = image::SegmentKind::GateStack;
    } else if (m.path == "[heap]") {
      kind = image::SegmentKind::Heap;
    } else if (m.path == "[stack]") {
      const auto [lo, hi] = used_stack(maps, in.stack_pointer);
      if (!emit(m, lo, hi, image::SegmentKind::Stack, in.stack_to)) return false;
      continue;
    } else {
      kind = m.inode != 0 ? image::SegmentKind::File : image::SegmentKind::Anon;
    }
    // The part below and the part above the excluded scratch range.
    if (m.overlaps(in.exclude_lo, in.exclude_hi)) {
      if (!emit(m, start, std::min(m.end, in.exclude_lo), kind)) return false;
      if (!emit(m, std::max(start, in.exclude_hi), m.end, kind)) return false;
    } else if (!emit(m, start, m.end, kind)) {
      return false;
    }
  }
  // A moved [stack] takes its place by address (in place: no allocation).
  if (in.stack_to)
    std::sort(out.begin(), out.end(), [](const SegmentPlan& a, const SegmentPlan& b) { return a.start < b.start; });
  return true;
}

std::pair<uint64_t, uint64_t> used_stack(const std::vector<sys::MapEntry>& maps, uint64_t stack_pointer) {
  for (const auto& m : maps) {
    if (m.path != "[stack]") continue;
    const uint64_t lo = stack_pointer > kStackMargin ? image::page_round_down(stack_pointer - kStackMargin) : 0;
    return {lo > m.start && lo < m.end ? lo : m.start, m.end};
  }
  return {0, 0};
}

void AddressMoves::add(uint64_t lo, uint64_t hi, uint64_t to) {
  if (count == kMax || lo == to) return;
  moves[count++] = Move{lo, hi, to - lo};
  // Unused entries repeat the first: the scan compares each word with
  // every entry, no branch on the count.
  for (size_t i = count; i < kMax; ++i) moves[i] = moves[0];
}

bool AddressMoves::scanned(const SegmentPlan& p) { return !(p.prot & PROT_EXEC) || (p.prot & PROT_WRITE); }

// Branch-free over the page (vectorised): the common page has no such word.
bool AddressMoves::finds(const uint8_t* page) const {
  static_assert(kMax == 2);
  const auto* w = reinterpret_cast<const uint64_t*>(page);
  const uint64_t lo0 = moves[0].lo, span0 = moves[0].hi - lo0, lo1 = moves[1].lo, span1 = moves[1].hi - lo1;
  uint64_t hits = 0;
  for (size_t i = 0; i < kWords; ++i)
    hits |= static_cast<uint64_t>(w[i] - lo0 <= span0) | static_cast<uint64_t>(w[i] - lo1 <= span1);
  return hits != 0;
}

void AddressMoves::apply(uint8_t* page) const {
  auto* w = reinterpret_cast<uint64_t*>(page);
  for (size_t i = 0; i < kWords; ++i)
    for (size_t m = 0; m < count; ++m)
      if (w[i] - moves[m].lo <= moves[m].hi - moves[m].lo) {
        w[i] += moves[m].delta;
        break;
      }
}

uint64_t vdso_destination(const std::vector<sys::MapEntry>& maps, uint64_t vdso_lo, uint64_t vdso_size) {
  uint64_t stack_end = 0, highest = 0;
  for (const auto& m : maps) {
    if (m.path == "[stack]") stack_end = m.end;
    else if (!is_kernel_special(m.path)) highest = std::max(highest, m.end);
  }
  // Only the placement above the stack moves (not, say, a layout without
  // randomization, where the libraries lie in the stack area too).
  if (!stack_end || vdso_lo < stack_end || !highest) return 0;
  const uint64_t to = image::page_round_up(highest) + image::kPageSize;
  return to + vdso_size <= kStackAreaLo ? to : 0;
}

AddressMoves address_moves(const std::vector<SegmentPlan>& plan, const image::VdsoRecord& vdso, uint64_t vdso_from) {
  AddressMoves moves;
  for (const auto& p : plan)
    if (p.kind == image::SegmentKind::Stack && p.source != p.start)
      moves.add(p.source, p.source + (p.end - p.start), p.start);
  if (vdso_from) moves.add(vdso_from, vdso_from + vdso.size, vdso.base);
  return moves;
}

void segment_records(const std::vector<SegmentPlan>& plan, std::vector<image::SegmentRecord>& out) {
  out.clear();
  for (const auto& p : plan) {
    image::SegmentRecord s;
    s.vaddr = p.start;
    s.memsz = p.end - p.start;
    s.filesz = p.kind == image::SegmentKind::GateGuard ? 0 : s.memsz;
    s.prot = p.prot;
    s.kind = p.kind;
    s.origin = std::string(p.origin);
    out.push_back(std::move(s));
  }
}

}  // namespace subctx::server
