#include "common/cpu_features.hpp"

#include <cpuid.h>

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

bool os_saves_avx(unsigned mask) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & mask) == mask;
}

}  // namespace

namespace {
uint64_t probe_cpu_features() {
  uint64_t mask = 0;
  const bool avx_ok = os_saves_avx(0x6);
  const bool avx512_ok = os_saves_avx(0xe6);
  for (size_t i = 0; i < sizeof kFeatures / sizeof kFeatures[0]; ++i) {
    const Feature& f = kFeatures[i];
    unsigned r[4] = {};
    if (!__get_cpuid_count(f.leaf, f.subleaf, &r[0], &r[1], &r[2], &r[3])) continue;
    if (!(r[f.reg] & (1u << f.bit))) continue;
    std::string n = f.name;
    if ((n == "avx" || n == "avx2" || n == "fma" || n == "f16c" || n == "fma4" || n == "vaes" || n == "vpclmulqdq" ||
         n == "avxvnni") &&
        !avx_ok)
      continue;
    if (n.rfind("avx512", 0) == 0 && !avx512_ok) continue;
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
