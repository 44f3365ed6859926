#include "matchmaker/vdso_forward.hpp"

#include <algorithm>
#include <cstring>

namespace subctx::matchmaker {

namespace {
constexpr size_t kStubSize = 14;  // jmp *0(%rip); .quad target
}

bool build_vdso_forwarder(const image::VdsoRecord& v, const HostVdso& host, uint8_t* buf, std::string* why) {
  std::vector<uint64_t> offsets;
  for (const auto& s : v.symbols) offsets.push_back(s.offset);
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  for (const auto& s : v.symbols) {
    auto it = std::upper_bound(offsets.begin(), offsets.end(), s.offset);
    uint64_t limit = it == offsets.end() ? v.size : *it;
    if (limit - s.offset < kStubSize || s.offset < 0x100) {  // 0x100: keep the ELF header area zero
      if (why) *why = "vdso symbol " + s.name + " leaves no room for a forwarding stub";
      return false;
    }
    uint8_t* p = buf + s.offset;
    uint64_t target = host.address_of(s.name);
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
