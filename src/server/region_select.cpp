#include "server/region_select.hpp"

#include <sys/mman.h>

namespace subctx::server {

namespace {
constexpr uint64_t kStackMargin = 64 * 1024;  // below the stack pointer: red zone and more

bool is_kernel_special(std::string_view p) {
  return p == "[vvar]" || p == "[vvar_vclock]" || p == "[vdso]" || p == "[vsyscall]" || p == "[uprobes]";
}
}  // namespace

bool select_segments(const std::vector<sys::MapEntry>& maps, const SelectInput& in,
                     std::vector<SegmentPlan>& out, std::string* why) {
  out.clear();
  for (const auto& m : maps) {
    if (is_kernel_special(m.path)) continue;
    if (m.overlaps(in.exclude_lo, in.exclude_hi)) continue;
    SegmentPlan s;
    s.start = m.start;
    s.end = m.end;
    s.prot = m.prot;
    s.origin = m.path;
    s.anonymous = m.inode == 0;
    if (m.start == in.gate_guard) {
      s.kind = image::SegmentKind::GateGuard;
    } else if (m.prot == PROT_NONE) {
      continue;  // reservations and guard pages: nothing to copy
    } else if (!(m.prot & PROT_READ)) {
      if (why) *why = "mapping \"" + std::string(m.line) + "\" is not readable, so it cannot be copied; make it readable or unmap it before the snapshot";
      return false;
    } else if (m.overlaps(in.gate_stack_lo, in.gate_stack_hi)) {
      s.kind = image::SegmentKind::GateStack;
    } else if (m.path == "[heap]") {
      s.kind = image::SegmentKind::Heap;
    } else if (m.path == "[stack]") {
      s.kind = image::SegmentKind::Stack;
      uint64_t lo = in.stack_pointer > kStackMargin ? image::page_round_down(in.stack_pointer - kStackMargin) : 0;
      if (lo > s.start && lo < s.end) s.start = lo;
    } else if (m.inode != 0) {
      s.kind = image::SegmentKind::File;
    } else {
      s.kind = image::SegmentKind::Anon;
    }
    if (out.size() == out.capacity()) {
      if (why) *why = "the process has more than " + std::to_string(out.capacity()) + " mappings to copy";
      return false;
    }
    out.push_back(s);
  }
  return true;
}

}  // namespace subctx::server
