// Export names to export numbers: an open-addressing hash table built at
// map, read by every call by name (Subcontext::call, sbc_request_call).
// A std::map lookup cost about 100 instructions of string comparisons per
// call (bench_icount); this is one hash of at most two words, one or two
// probes and one comparison of the name.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace subctx::detail {

class ExportIndex {
 public:
  static constexpr uint32_t kNone = ~uint32_t{0};

  // Names are unique (the image reader refuses duplicates).
  void add(std::string name, uint32_t index) {
    names_.push_back(std::move(name));
    indices_.push_back(index);
    if (2 * names_.size() > slots_.size()) rebuild();  // doubles: amortized O(1)
    else insert(static_cast<uint32_t>(names_.size() - 1));
  }
  // kNone when no export has that name.
  uint32_t find(std::string_view name) const {
    if (slots_.empty()) return kNone;
    const uint64_t h = hash(name);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.entry == kEmpty) return kNone;
      if (s.hash == static_cast<uint32_t>(h) && names_[s.entry] == name) return indices_[s.entry];
    }
  }
  size_t size() const { return names_.size(); }

 private:
  static constexpr uint32_t kEmpty = ~uint32_t{0};
  struct Slot {
    uint32_t hash = 0;
    uint32_t entry = kEmpty;  // into names_ / indices_
  };

  // Length and at most 16 bytes of the name (its first and last words; for
  // a name under 8 bytes its first and last 4 or 3 bytes), mixed: a
  // constant number of loads, whatever the length (wyhash's reads).
  static uint64_t hash(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    uint64_t a = 0, b = 0;
    if (n >= 8) {
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + n - 8, 8);
    } else if (n >= 4) {
      uint32_t x, y;
      std::memcpy(&x, p, 4);
      std::memcpy(&y, p + n - 4, 4);
      a = x;
      b = y;
    } else if (n > 0) {
      a = uint64_t{p[0]} << 16 | uint64_t{p[n / 2]} << 8 | p[n - 1];
    }
    uint64_t h = (a ^ 0x9e3779b97f4a7c15ull) * ((b << 29 | b >> 35) ^ n ^ 0xff51afd7ed558ccdull);
    return h ^ (h >> 29) ^ (h >> 47);
  }

  void insert(uint32_t e) {
    const uint64_t h = hash(names_[e]);
    size_t i = h & mask_;
    while (slots_[i].entry != kEmpty) i = (i + 1) & mask_;
    slots_[i] = Slot{static_cast<uint32_t>(h), e};
  }
  // At most half full: a miss ends at an empty slot soon.
  void rebuild() {
    size_t n = 8;
    while (n < 4 * names_.size()) n *= 2;
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (uint32_t e = 0; e < names_.size(); ++e) insert(e);
  }

  std::vector<std::string> names_;
  std::vector<uint32_t> indices_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace subctx::detail
