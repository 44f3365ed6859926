// vDSO symbols (parse_vdso_symbols, host_vdso) and the forwarder that
// replaces the server's vDSO in a client (build_vdso_forwarder).
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/vdso.hpp"
#include "matchmaker/vdso_forward.hpp"
#include "sys/io.hpp"

namespace subctx {
namespace {

using image::VdsoRecord;
using image::VdsoSymbol;

std::vector<uint8_t> host_vdso_bytes() {
  HostVdso v = host_vdso();
  const auto* p = reinterpret_cast<const uint8_t*>(v.base);
  return std::vector<uint8_t>(p, p + v.size);
}

bool parse(const std::vector<uint8_t>& b, std::vector<VdsoSymbol>* out, std::string* why) {
  return parse_vdso_symbols(b.data(), b.size(), out, why);
}

// Every symbol returned lies inside the image and has a name.
void expect_sane(const std::vector<VdsoSymbol>& syms, size_t size) {
  for (const auto& s : syms) {
    EXPECT_LT(s.offset, size) << s.name;
    EXPECT_FALSE(s.name.empty());
    EXPECT_EQ(s.name.find('\0'), std::string::npos);
  }
}

TEST(Vdso, HostVdsoFindsClockGettime) {
  HostVdso v = host_vdso();
  if (!getauxval(AT_SYSINFO_EHDR)) GTEST_SKIP() << "this process has no vDSO";
  EXPECT_EQ(v.base, getauxval(AT_SYSINFO_EHDR));
  EXPECT_GE(v.size, 4096u);
  EXPECT_EQ(v.size % 4096, 0u);
  ASSERT_FALSE(v.symbols.empty());
  expect_sane(v.symbols, v.size);
  uint64_t fn = v.address_of("__vdso_clock_gettime");
  if (!fn) fn = v.address_of("clock_gettime");
  ASSERT_NE(fn, 0u);
  EXPECT_GE(fn, v.base);
  EXPECT_LT(fn, v.base + v.size);
  EXPECT_EQ(v.address_of("no_such_function"), 0u);
  EXPECT_EQ(v.address_of(""), 0u);

  // It really is clock_gettime.
  using ClockGettime = int (*)(clockid_t, timespec*);
  timespec before{}, mid{}, after{};
  clock_gettime(CLOCK_MONOTONIC, &before);
  ASSERT_EQ(reinterpret_cast<ClockGettime>(fn)(CLOCK_MONOTONIC, &mid), 0);
  clock_gettime(CLOCK_MONOTONIC, &after);
  auto ns = [](const timespec& t) { return t.tv_sec * 1000000000ll + t.tv_nsec; };
  EXPECT_LE(ns(before), ns(mid));
  EXPECT_LE(ns(mid), ns(after));
}

TEST(Vdso, ACopyParsesTheSame) {
  HostVdso v = host_vdso();
  if (!v.base) GTEST_SKIP() << "no vDSO";
  std::vector<VdsoSymbol> syms;
  std::string why;
  ASSERT_TRUE(parse(host_vdso_bytes(), &syms, &why)) << why;
  ASSERT_EQ(syms.size(), v.symbols.size());
  for (size_t i = 0; i < syms.size(); ++i) {
    EXPECT_EQ(syms[i].name, v.symbols[i].name);
    EXPECT_EQ(syms[i].offset, v.symbols[i].offset);
  }
}

TEST(Vdso, Garbage) {
  std::vector<VdsoSymbol> syms;
  std::string why;
  EXPECT_FALSE(parse_vdso_symbols(nullptr, 0, &syms, &why));
  EXPECT_EQ(why, "vdso: no ELF header");
  EXPECT_FALSE(parse(std::vector<uint8_t>(4096, 0), &syms, &why));
  EXPECT_EQ(why, "vdso: no ELF header");
  std::mt19937 rng(7);
  std::vector<uint8_t> noise(8192);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  EXPECT_FALSE(parse(noise, &syms, &why));
  // Just the magic, nothing else.
  std::vector<uint8_t> magic(64, 0);
  std::memcpy(magic.data(), ELFMAG, SELFMAG);
  EXPECT_FALSE(parse(magic, &syms, &why));
  EXPECT_EQ(why, "vdso: bad header sizes");
  EXPECT_TRUE(syms.empty());
  EXPECT_FALSE(parse_vdso_symbols(magic.data(), magic.size(), &syms, nullptr));  // why is optional
}

TEST(Vdso, TruncatedAtEveryLength) {
  const std::vector<uint8_t> full = host_vdso_bytes();
  if (full.empty()) GTEST_SKIP() << "no vDSO";
  for (size_t len = 0; len < full.size(); ++len) {
    // An exact-size heap copy, so that ASan sees any read past its end.
    std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<long>(len));
    std::vector<VdsoSymbol> syms;
    std::string why;
    if (parse(b, &syms, &why)) {
      expect_sane(syms, len);
    } else {
      EXPECT_EQ(why.rfind("vdso: ", 0), 0u);
    }
    if (::testing::Test::HasFailure()) FAIL() << "at length " << len;
  }
}

// Section headers of a vDSO copy, for targeted corruption.
struct Sections {
  Elf64_Ehdr eh;
  size_t dynsym = 0, dynstr = 0;  // offsets of their Elf64_Shdr
};

Sections sections(const std::vector<uint8_t>& b) {
  Sections s;
  std::memcpy(&s.eh, b.data(), sizeof s.eh);
  for (unsigned i = 0; i < s.eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, b.data() + s.eh.e_shoff + i * sizeof sh, sizeof sh);
    if (sh.sh_type == SHT_DYNSYM) {
      s.dynsym = s.eh.e_shoff + i * sizeof sh;
      s.dynstr = s.eh.e_shoff + sh.sh_link * sizeof sh;
    }
  }
  return s;
}

template <class T>
void put(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

TEST(Vdso, CorruptedFields) {
  const std::vector<uint8_t> full = host_vdso_bytes();
  if (full.empty()) GTEST_SKIP() << "no vDSO";
  const Sections s = sections(full);
  ASSERT_NE(s.dynsym, 0u) << "the vDSO has no .dynsym";
  struct Case {
    const char* name;
    std::function<void(std::vector<uint8_t>&)> change;
    const char* want;  // nullptr: accepted, symbols sane
  };
  const Case cases[] = {
      {"magic", [](auto& b) { b[1] = 'X'; }, "vdso: no ELF header"},
      {"shentsize", [](auto& b) { put<uint16_t>(b, offsetof(Elf64_Ehdr, e_shentsize), 40); }, "vdso: bad header sizes"},
      {"phentsize", [](auto& b) { put<uint16_t>(b, offsetof(Elf64_Ehdr, e_phentsize), 0); }, "vdso: bad header sizes"},
      {"phoff huge", [](auto& b) { put<uint64_t>(b, offsetof(Elf64_Ehdr, e_phoff), ~uint64_t{0} - 8); },
       "vdso: program headers truncated"},
      {"phnum huge", [](auto& b) { put<uint16_t>(b, offsetof(Elf64_Ehdr, e_phnum), 0xffff); },
       "vdso: program headers truncated"},
      {"phnum 0", [](auto& b) { put<uint16_t>(b, offsetof(Elf64_Ehdr, e_phnum), 0); }, "vdso: no PT_LOAD"},
      {"no PT_LOAD",
       [](auto& b) {
         Elf64_Ehdr eh;
         std::memcpy(&eh, b.data(), sizeof eh);
         for (unsigned i = 0; i < eh.e_phnum; ++i) {
           const size_t at = eh.e_phoff + i * sizeof(Elf64_Phdr);
           uint32_t type;
           std::memcpy(&type, b.data() + at, 4);
           if (type == PT_LOAD) put<uint32_t>(b, at, PT_NULL);
         }
       },
       "vdso: no PT_LOAD"},
      {"shoff huge", [](auto& b) { put<uint64_t>(b, offsetof(Elf64_Ehdr, e_shoff), ~uint64_t{0} - 63); },
       "vdso: section headers truncated"},
      {"shnum 0", [](auto& b) { put<uint16_t>(b, offsetof(Elf64_Ehdr, e_shnum), 0); }, "vdso: no dynamic symbol table"},
      {"no dynsym", [&](auto& b) { put<uint32_t>(b, s.dynsym + offsetof(Elf64_Shdr, sh_type), SHT_PROGBITS); },
       "vdso: no dynamic symbol table"},
      {"sh_link huge", [&](auto& b) { put<uint32_t>(b, s.dynsym + offsetof(Elf64_Shdr, sh_link), 0xffffffff); },
       "vdso: no string table"},
      {"strtab offset huge",
       [&](auto& b) { put<uint64_t>(b, s.dynstr + offsetof(Elf64_Shdr, sh_offset), ~uint64_t{0}); },
       "vdso: string table outside the image"},
      {"strtab size huge",
       [&](auto& b) { put<uint64_t>(b, s.dynstr + offsetof(Elf64_Shdr, sh_size), ~uint64_t{0} - 4); },
       "vdso: string table outside the image"},
      {"symbol size", [&](auto& b) { put<uint64_t>(b, s.dynsym + offsetof(Elf64_Shdr, sh_entsize), 16); },
       "vdso: bad symbol size"},
      {"symtab offset huge",
       [&](auto& b) { put<uint64_t>(b, s.dynsym + offsetof(Elf64_Shdr, sh_offset), ~uint64_t{0} - 8); },
       "vdso: symbol table truncated"},
      {"symtab size huge", [&](auto& b) { put<uint64_t>(b, s.dynsym + offsetof(Elf64_Shdr, sh_size), ~uint64_t{0}); },
       "vdso: symbol table truncated"},
      {"strtab shrunk to nothing", [&](auto& b) { put<uint64_t>(b, s.dynstr + offsetof(Elf64_Shdr, sh_size), 0); },
       nullptr},
      {"strtab cut mid-name", [&](auto& b) { put<uint64_t>(b, s.dynstr + offsetof(Elf64_Shdr, sh_size), 5); }, nullptr},
      {"symtab empty", [&](auto& b) { put<uint64_t>(b, s.dynsym + offsetof(Elf64_Shdr, sh_size), 0); }, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> b = full;
    c.change(b);
    std::vector<VdsoSymbol> syms;
    std::string why;
    if (c.want) {
      EXPECT_FALSE(parse(b, &syms, &why));
      EXPECT_EQ(why, c.want);
    } else {
      EXPECT_TRUE(parse(b, &syms, &why)) << why;
      expect_sane(syms, b.size());
    }
  }
}

TEST(Vdso, SymbolsOutsideTheImageAreSkipped) {
  const std::vector<uint8_t> full = host_vdso_bytes();
  if (full.empty()) GTEST_SKIP() << "no vDSO";
  const Sections s = sections(full);
  Elf64_Shdr sym_sh;
  std::memcpy(&sym_sh, full.data() + s.dynsym, sizeof sym_sh);
  std::vector<VdsoSymbol> orig;
  std::string why;
  ASSERT_TRUE(parse(full, &orig, &why)) << why;
  // Every function symbol in turn gets a bad name offset, then a bad value.
  for (uint64_t k = 0; k < sym_sh.sh_size / sizeof(Elf64_Sym); ++k) {
    const size_t at = sym_sh.sh_offset + k * sizeof(Elf64_Sym);
    Elf64_Sym sym;
    std::memcpy(&sym, full.data() + at, sizeof sym);
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF) continue;
    for (int what = 0; what < 3; ++what) {
      std::vector<uint8_t> b = full;
      if (what == 0) put<uint32_t>(b, at + offsetof(Elf64_Sym, st_name), 0xfffffff0);
      if (what == 1) put<uint64_t>(b, at + offsetof(Elf64_Sym, st_value), ~uint64_t{0});
      if (what == 2) put<uint64_t>(b, at + offsetof(Elf64_Sym, st_value), 0);
      std::vector<VdsoSymbol> syms;
      ASSERT_TRUE(parse(b, &syms, &why)) << why;
      expect_sane(syms, b.size());
      EXPECT_LE(syms.size(), orig.size());
    }
  }
}

TEST(Vdso, RandomDamageNeverCrashes) {
  const std::vector<uint8_t> full = host_vdso_bytes();
  if (full.empty()) GTEST_SKIP() << "no vDSO";
  std::mt19937 rng(12345);
  const size_t hot = std::min<size_t>(full.size(), 4096);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      // Mostly the headers (the first 64 bytes and the section table at the end).
      size_t at = rng() % 2 ? rng() % 64 : rng() % 3 ? b.size() - 1 - rng() % 1024 : rng() % hot;
      b[at] = static_cast<uint8_t>(rng());
    }
    std::vector<VdsoSymbol> syms;
    std::string why;
    if (parse(b, &syms, &why)) expect_sane(syms, b.size());
    if (::testing::Test::HasFailure()) FAIL() << "at iteration " << iter;
  }
}

// ---------------------------------------------------------------- forwarder

using matchmaker::build_vdso_forwarder;

constexpr uint64_t kHostBase = 0x7fff12340000;

HostVdso fake_host() {
  HostVdso h;
  h.base = kHostBase;
  h.size = 0x2000;
  h.symbols = {{0x100, "__vdso_clock_gettime"}, {0x100, "clock_gettime"}, {0x280, "__vdso_time"}, {0x280, "time"}};
  return h;
}

VdsoRecord record(std::vector<VdsoSymbol> syms) {
  VdsoRecord v;
  v.base = 0x7ffd10000000;
  v.size = 0x2000;
  v.symbols = std::move(syms);
  return v;
}

// jmp *0(%rip) followed by the 8-byte target.
void expect_jump(const std::vector<uint8_t>& buf, uint64_t at, uint64_t target) {
  const uint8_t jmp[] = {0xff, 0x25, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(buf.data() + at, jmp, sizeof jmp), 0) << "no jmp at " << at;
  uint64_t got;
  std::memcpy(&got, buf.data() + at + 6, 8);
  EXPECT_EQ(got, target) << "at " << at;
}

size_t nonzero_outside(const std::vector<uint8_t>& buf, const std::vector<std::pair<uint64_t, size_t>>& ranges) {
  size_t n = 0;
  for (size_t i = 0; i < buf.size(); ++i) {
    bool inside = false;
    for (auto [a, len] : ranges) inside |= i >= a && i < a + len;
    n += !inside && buf[i] != 0;
  }
  return n;
}

TEST(VdsoForward, StubsJumpToTheHostFunctionOfTheSameName) {
  VdsoRecord v = record({{0x900, "__vdso_clock_gettime"}, {0xa00, "__vdso_getcpu"}, {0xb00, "time"}});
  std::vector<uint8_t> buf(v.size, 0);
  std::string why;
  ASSERT_TRUE(build_vdso_forwarder(v, fake_host(), buf.data(), &why)) << why;
  expect_jump(buf, 0x900, kHostBase + 0x100);
  expect_jump(buf, 0xb00, kHostBase + 0x280);
  // The host has no getcpu: ud2.
  EXPECT_EQ(buf[0xa00], 0x0f);
  EXPECT_EQ(buf[0xa01], 0x0b);
  EXPECT_EQ(nonzero_outside(buf, {{0x900, 14}, {0xa00, 2}, {0xb00, 14}}), 0u);
}

TEST(VdsoForward, NoRoomForAStub) {
  const HostVdso host = fake_host();
  std::string why;
  {
    std::vector<uint8_t> buf(0x2000, 0);
    EXPECT_FALSE(build_vdso_forwarder(record({{0x900, "__vdso_clock_gettime"}, {0x90d, "time"}}), host, buf.data(),
                                      &why));
    EXPECT_EQ(why, "vdso symbol __vdso_clock_gettime at offset 0x900 leaves no room for a forwarding stub");
  }
  {
    std::vector<uint8_t> buf(0x2000, 0);
    EXPECT_TRUE(build_vdso_forwarder(record({{0x90e, "time"}, {0x900, "__vdso_clock_gettime"}}), host, buf.data(),
                                     &why))
        << why;  // exactly 14 bytes, listed out of order
    expect_jump(buf, 0x900, kHostBase + 0x100);
    expect_jump(buf, 0x90e, kHostBase + 0x280);
  }
  {
    std::vector<uint8_t> buf(0x2000, 0);
    EXPECT_FALSE(build_vdso_forwarder(record({{0x2000 - 13, "time"}}), host, buf.data(), &why));
    EXPECT_EQ(why, "vdso symbol time at offset 0x1ff3 leaves no room for a forwarding stub");
    EXPECT_TRUE(build_vdso_forwarder(record({{0x2000 - 14, "time"}}), host, buf.data(), &why)) << why;
    expect_jump(buf, 0x2000 - 14, kHostBase + 0x280);
  }
  {
    std::vector<uint8_t> buf(0x2000, 0);  // the ELF header area stays zero
    EXPECT_FALSE(build_vdso_forwarder(record({{0xff, "time"}}), host, buf.data(), &why));
    EXPECT_EQ(why, "vdso symbol time at offset 0xff overlaps the vdso's ELF headers");
    EXPECT_FALSE(build_vdso_forwarder(record({{0, "t\nme"}}), host, buf.data(), &why));
    EXPECT_EQ(why, "vdso symbol t\\x0ame at offset 0x0 overlaps the vdso's ELF headers");  // names quoted safely
    EXPECT_EQ(nonzero_outside(buf, {}), 0u);
    EXPECT_TRUE(build_vdso_forwarder(record({{0x100, "time"}}), host, buf.data(), &why)) << why;
  }
}

TEST(VdsoForward, EmptyRecord) {
  std::vector<uint8_t> buf(0x2000, 0);
  std::string why;
  EXPECT_TRUE(build_vdso_forwarder(record({}), fake_host(), buf.data(), &why));
  EXPECT_EQ(nonzero_outside(buf, {}), 0u);
  // A host without a vDSO: every stub is ud2.
  EXPECT_TRUE(build_vdso_forwarder(record({{0x900, "time"}}), HostVdso{}, buf.data(), &why));
  EXPECT_EQ(buf[0x900], 0x0f);
  EXPECT_EQ(buf[0x901], 0x0b);
}

TEST(VdsoForward, AliasesAtOneOffset) {
  // The kernel exports clock_gettime and __vdso_clock_gettime at one address;
  // a stub for either name works.
  std::vector<uint8_t> buf(0x2000, 0);
  std::string why;
  ASSERT_TRUE(build_vdso_forwarder(record({{0x900, "clock_gettime"}, {0x900, "__vdso_clock_gettime"}}), fake_host(),
                                   buf.data(), &why));
  expect_jump(buf, 0x900, kHostBase + 0x100);
}

TEST(VdsoForward, AnAliasMissingOnTheHostDoesNotBreakTheStub) {
  HostVdso host = fake_host();
  std::erase_if(host.symbols, [](const VdsoSymbol& s) { return s.name == "time"; });  // only __vdso_time
  std::vector<uint8_t> buf(0x2000, 0);
  std::string why;
  ASSERT_TRUE(build_vdso_forwarder(record({{0x900, "__vdso_time"}, {0x900, "time"}}), host, buf.data(), &why));
  expect_jump(buf, 0x900, kHostBase + 0x280);
}

TEST(VdsoForward, SymbolPastTheEndIsRefused) {
  std::vector<uint8_t> buf(0x2000, 0);
  std::string why;
  for (uint64_t off : {uint64_t{0x2000}, uint64_t{0x3000}, ~uint64_t{0}}) {
    EXPECT_FALSE(build_vdso_forwarder(record({{0x900, "time"}, {off, "__vdso_time"}}), fake_host(), buf.data(), &why));
    EXPECT_EQ(why, "vdso symbol __vdso_time at offset " + sys::hex(off) + " lies past the end of the vdso");
  }
  EXPECT_EQ(nonzero_outside(buf, {}), 0u);  // nothing written on failure
}

// The forwarder built from this process's own vDSO record, executed: a call
// to the stub lands in the real vDSO's clock_gettime.
TEST(VdsoForward, StubCallsTheHostVdso) {
  HostVdso host = host_vdso();
  if (!host.base) GTEST_SKIP() << "no vDSO";
  VdsoRecord v;
  v.base = 0x7ffd10000000;
  v.size = host.size;
  v.symbols = host.symbols;
  std::string why;
  void* page = mmap(nullptr, v.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  auto* buf = static_cast<uint8_t*>(page);
  ASSERT_TRUE(build_vdso_forwarder(v, host, buf, &why)) << why << " (this kernel's vDSO could not be forwarded)";
  ASSERT_EQ(mprotect(page, v.size, PROT_READ | PROT_EXEC), 0);
  uint64_t off = 0;
  for (const auto& s : v.symbols)
    if (s.name == "__vdso_clock_gettime" || s.name == "clock_gettime") off = s.offset;
  ASSERT_NE(off, 0u);
  using ClockGettime = int (*)(clockid_t, timespec*);
  auto fn = reinterpret_cast<ClockGettime>(buf + off);
  timespec a{}, b{}, c{};
  clock_gettime(CLOCK_REALTIME, &a);
  ASSERT_EQ(fn(CLOCK_REALTIME, &b), 0);
  clock_gettime(CLOCK_REALTIME, &c);
  EXPECT_TRUE(a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec));
  EXPECT_TRUE(b.tv_sec < c.tv_sec || (b.tv_sec == c.tv_sec && b.tv_nsec <= c.tv_nsec));
  munmap(page, v.size);
}

}  // namespace
}  // namespace subctx
