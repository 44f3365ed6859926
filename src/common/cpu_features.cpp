#include "common/cpu_features.hpp"

#include <cpuid.h>

#include <string_view>

namespace subctx {

namespace {

struct Feature {
  const char* name;
  unsigned leaf, subleaf;
  int reg;  // 0 eax, 1 ebx, 2 ecx, 3 edx
  int bit;
};

// Bit i of the mask is kFeatures[i].  Append only: images store the mask.
constexpr Feature kFeatures[] = {
    {"sse3", 1, 0, 2, 0},           {"ssse3", 1, 0, 2, 9},
    {"fma", 1, 0, 2, 12},           {"sse4_1", 1, 0, 2, 19},
    {"sse4_2", 1, 0, 2, 20},        {"movbe", 1, 0, 2, 22},
    {"popcnt", 1, 0, 2, 23},        {"xsave", 1, 0, 2, 26},
    {"avx", 1, 0, 2, 28},           {"f16c", 1, 0, 2, 29},
    {"bmi1", 7, 0, 1, 3},           {"avx2", 7, 0, 1, 5},
    {"bmi2", 7, 0, 1, 8},           {"erms", 7, 0, 1, 9},
    {"avx512f", 7, 0, 1, 16},       {"avx512dq", 7, 0, 1, 17},
    {"avx512cd", 7, 0, 1, 28},      {"avx512bw", 7, 0, 1, 30},
    {"avx512vl", 7, 0, 1, 31},      {"fsrm", 7, 0, 3, 4},
    {"lzcnt", 0x80000001, 0, 2, 5}, {"sha", 7, 0, 1, 29},
    {"adx", 7, 0, 1, 19},           {"rtm", 7, 0, 1, 11},
    {"xsavec", 0xd, 1, 0, 1},       {"fma4", 0x80000001, 0, 2, 16},
    {"gfni", 7, 0, 2, 8},           {"vaes", 7, 0, 2, 9},
    {"vpclmulqdq", 7, 0, 2, 10},    {"avx512vbmi", 7, 0, 2, 1},
    {"avx512vnni", 7, 0, 2, 11},    {"avx512ifma", 7, 0, 1, 21},
    {"avx512bitalg", 7, 0, 2, 12},  {"avx512vpopcntdq", 7, 0, 2, 14},
    {"avxvnni", 7, 1, 0, 4},
};

// leaf1_ecx: cpuid leaf 1's ecx (OSXSAVE is its bit 27).
bool os_saves_avx(unsigned leaf1_ecx, unsigned mask) {
  if (!(leaf1_ecx & (1u << 27))) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & mask) == mask;
}

}  // namespace

namespace {
// Features that also need the OS to save the AVX (or AVX-512) state.
bool needs_avx(std::string_view n) {
  return n == "avx" || n == "avx2" || n == "fma" || n == "f16c" || n == "fma4" || n == "vaes" || n == "vpclmulqdq" ||
         n == "avxvnni";
}

// Each cpuid leaf the table names, asked once: a cpuid traps to the
// hypervisor in a VM (1-3 us on the 2-vCPU guest), and the table's 35
// features need 5 leaves (about 70 cpuid before: ~0.12 ms of every client
// process that maps an image, perf).
struct LeafCache {
  unsigned max_basic = __get_cpuid_max(0, nullptr);
  unsigned max_extended = __get_cpuid_max(0x80000000, nullptr);
  struct Entry {
    unsigned leaf, subleaf, r[4];
  };
  Entry entries[8];
  Entry scratch;
  size_t n = 0;

  const unsigned* regs(unsigned leaf, unsigned subleaf) {
    if (leaf > (leaf >= 0x80000000 ? max_extended : max_basic)) return nullptr;
    for (size_t i = 0; i < n; ++i)
      if (entries[i].leaf == leaf && entries[i].subleaf == subleaf) return entries[i].r;
    Entry& e = n < sizeof entries / sizeof entries[0] ? entries[n++] : scratch;  // full: asked each time
    e.leaf = leaf;
    e.subleaf = subleaf;
    __cpuid_count(leaf, subleaf, e.r[0], e.r[1], e.r[2], e.r[3]);
    return e.r;
  }
};

uint64_t probe_cpu_features() {
  uint64_t mask = 0;
  LeafCache cpuid;
  const unsigned* leaf1 = cpuid.regs(1, 0);
  const unsigned leaf1_ecx = leaf1 ? leaf1[2] : 0;
  const bool avx_ok = os_saves_avx(leaf1_ecx, 0x6);
  const bool avx512_ok = os_saves_avx(leaf1_ecx, 0xe6);
  for (size_t i = 0; i < sizeof kFeatures / sizeof kFeatures[0]; ++i) {
    const Feature& f = kFeatures[i];
    const unsigned* r = cpuid.regs(f.leaf, f.subleaf);
    if (!r || !(r[f.reg] & (1u << f.bit))) continue;
    const std::string_view n = f.name;
    if (needs_avx(n) && !avx_ok) continue;
    if (n.starts_with("avx512") && !avx512_ok) continue;
    mask |= uint64_t{1} << i;
  }
  return mask;
}
}  // namespace

// cpuid traps to the hypervisor in a VM (microseconds each): probe once.
uint64_t host_cpu_features() {
  static const uint64_t mask = probe_cpu_features();
  return mask;
}

std::string cpu_feature_names(uint64_t mask) {
  std::string out;
  for (size_t i = 0; i < sizeof kFeatures / sizeof kFeatures[0]; ++i) {
    if (!(mask & (uint64_t{1} << i))) continue;
    if (!out.empty()) out += ' ';
    out += kFeatures[i].name;
  }
  for (size_t i = sizeof kFeatures / sizeof kFeatures[0]; i < 64; ++i)
    if (mask & (uint64_t{1} << i)) out += (out.empty() ? "bit" : " bit") + std::to_string(i);
  return out;
}

}  // namespace subctx
