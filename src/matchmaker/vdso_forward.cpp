#include "matchmaker/vdso_forward.hpp"

#include <algorithm>
#include <cstring>

#include "sys/io.hpp"

namespace subctx::matchmaker {

namespace {
constexpr size_t kStubSize = 14;         // jmp *0(%rip); .quad target
constexpr uint64_t kHeaderArea = 0x100;  // stays zero: the ELF header and program headers
}  // namespace

bool build_vdso_forwarder(const image::VdsoRecord& v, const HostVdso& host, uint8_t* buf, std::string* why) {
  auto fail = [&](const image::VdsoSymbol& s, const char* what) {
    if (why) *why = "vdso symbol " + sys::printable(s.name) + " at offset " + sys::hex(s.offset) + " " + what;
    return false;
  };
  std::vector<uint64_t> offsets;
  for (const auto& s : v.symbols) {
    if (s.offset >= v.size) return fail(s, "lies past the end of the vdso");
    offsets.push_back(s.offset);
  }
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  // One stub per entry point; aliases (clock_gettime, __vdso_clock_gettime)
  // share it, and any alias the client's vDSO has will do.
  for (size_t i = 0; i < offsets.size(); ++i) {
    const uint64_t off = offsets[i];
    const uint64_t limit = i + 1 < offsets.size() ? offsets[i + 1] : v.size;
    uint64_t target = 0;
    const image::VdsoSymbol* first = nullptr;
    for (const auto& s : v.symbols) {
      if (s.offset != off) continue;
      if (!first) first = &s;
      if (!target) target = host.address_of(s.name);
    }
    if (off < kHeaderArea) return fail(*first, "overlaps the vdso's ELF headers");
    if (limit - off < kStubSize) return fail(*first, "leaves no room for a forwarding stub");
    uint8_t* p = buf + off;
    if (!target) {
      p[0] = 0x0f, p[1] = 0x0b;  // ud2: this kernel's vDSO has no such function
      continue;
    }
    static const uint8_t kJmp[] = {0xff, 0x25, 0, 0, 0, 0};
    std::memcpy(p, kJmp, sizeof kJmp);
    std::memcpy(p + sizeof kJmp, &target, 8);
  }
  return true;
}

}  // namespace subctx::matchmaker
