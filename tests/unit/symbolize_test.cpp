// Symbolizer on real modules of this process (the test executable's
// .symtab, libc's .dynsym, the build-id check) and on files written to a
// temporary directory: small ELF files made here, then truncated, corrupted
// field by field, mutated at random, and files that are no ELF at all.
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "matchmaker/symbolize.hpp"
#include "sys/io.hpp"
#include "sys/proc_maps.hpp"
#include "temp_dir.hpp"

extern "C" __attribute__((noinline, used)) int subctx_symbolize_test_target(int x) {
  __asm__ volatile("" : "+r"(x));
  return x * 3 + 1;
}

namespace symbolize_test_ns {
__attribute__((noinline, used)) int cpp_target(int x, const char* s) {
  __asm__ volatile("" : "+r"(x));
  return x + s[0];
}
}  // namespace symbolize_test_ns

namespace subctx::matchmaker {
namespace {

using sys::hex;

uint64_t addr_of(const void* p) { return reinterpret_cast<uint64_t>(p); }
uint64_t target() { return addr_of(reinterpret_cast<const void*>(&subctx_symbolize_test_target)); }

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The file mapped at addr, with the range all its mappings cover.
Module module_containing(uint64_t addr) {
  sys::SelfMaps maps;
  std::string why;
  EXPECT_TRUE(sys::read_self_maps(&maps, &why)) << why;
  Module m;
  for (const auto& e : maps.entries)
    if (e.start <= addr && addr < e.end) m.path = std::string(e.path);
  EXPECT_FALSE(m.path.empty()) << "nothing mapped at " << hex(addr);
  m.lo = UINT64_MAX;
  for (const auto& e : maps.entries) {
    if (e.path != m.path) continue;
    m.lo = std::min(m.lo, e.start);
    m.hi = std::max(m.hi, e.end);
  }
  return m;
}

std::string read_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_binary(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// This executable's build-id, read from its notes in memory (not by the
// code under test).
std::string own_build_id() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const auto* p = reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr);
          const uint64_t align = ph.p_align == 8 ? 8 : 4;
          for (uint64_t off = 0; off + sizeof(ElfW(Nhdr)) <= ph.p_memsz;) {
            ElfW(Nhdr) nh;
            std::memcpy(&nh, p + off, sizeof nh);
            off += sizeof nh;
            const uint64_t name_at = off;
            off += (nh.n_namesz + align - 1) / align * align;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(p + name_at, "GNU", 4) == 0) {
              char buf[3];
              for (uint32_t k = 0; k < nh.n_descsz; ++k) {
                std::snprintf(buf, sizeof buf, "%02x", p[off + k]);
                *static_cast<std::string*>(out) += buf;
              }
              return 1;
            }
            off += (nh.n_descsz + align - 1) / align * align;
          }
        }
        return 1;  // the first object is the executable
      },
      &id);
  return id;
}

// ---- this process's modules ----

TEST(Symbolize, OwnFunctionWithOffset) {
  const Module self = module_containing(target());
  Symbolizer s({self});
  const std::string exe = base_name(self.path);
  EXPECT_EQ(s.name(target() + 4), "subctx_symbolize_test_target+0x4 (" + exe + ")");
  EXPECT_EQ(s.name(target()), "subctx_symbolize_test_target+0x0 (" + exe + ")");
}

TEST(Symbolize, DemanglesCppNames) {
  const Module self = module_containing(target());
  Symbolizer s({self});
  const uint64_t f = addr_of(reinterpret_cast<const void*>(&symbolize_test_ns::cpp_target));
  EXPECT_EQ(s.name(f + 1), "symbolize_test_ns::cpp_target(int, char const*)+0x1 (" + base_name(self.path) + ")");
}

TEST(Symbolize, LibcThroughItsDynamicSymbols) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr) << dlerror();
  const uint64_t getpid_addr = addr_of(dlsym(libc, "getpid"));
  dlclose(libc);
  ASSERT_NE(getpid_addr, 0u);
  const Module m = module_containing(getpid_addr);
  ASSERT_EQ(base_name(m.path), "libc.so.6");
  // Two modules: the lookup must pick the one holding the address.
  Symbolizer s({module_containing(target()), m});
  EXPECT_EQ(s.name(getpid_addr + 2), "getpid+0x2 (libc.so.6)");
}

TEST(Symbolize, OutsideEveryModule) {
  const Module self = module_containing(target());
  Symbolizer s({self});
  EXPECT_EQ(s.name(0), "??");
  EXPECT_EQ(s.name(self.lo - 1), "??");
  EXPECT_EQ(s.name(self.hi), "??");
  EXPECT_EQ(Symbolizer({}).name(target()), "??");
}

TEST(Symbolize, BuildIdMismatchGivesNoSymbols) {
  Module self = module_containing(target());
  const std::string exe = base_name(self.path);
  self.build_id = "00112233445566778899aabbccddeeff00112233";
  EXPECT_EQ(Symbolizer({self}).name(target() + 4), "?? (" + exe + "+" + hex(target() + 4 - self.lo) + ")");

  const std::string id = own_build_id();
  if (id.empty()) GTEST_SKIP() << "this executable has no build-id";
  std::string upper = id;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  self.build_id = upper;  // hex case does not matter
  EXPECT_EQ(Symbolizer({self}).name(target() + 4), "subctx_symbolize_test_target+0x4 (" + exe + ")");
  self.build_id = id.substr(0, id.size() - 2);  // a prefix is not the id
  EXPECT_TRUE(starts_with(Symbolizer({self}).name(target() + 4), "?? (")) << Symbolizer({self}).name(target() + 4);
}

TEST(Symbolize, TruncatedCopiesOfTheExecutableGiveNoSymbols) {
  testing::TempDir dir("subctx-symbolize");
  const Module self = module_containing(target());
  const std::string bytes = read_binary(self.path);
  ASSERT_GT(bytes.size(), 4096u);
  const std::string copy = dir.file("copy");
  Module m = self;
  m.path = copy;
  // The whole copy works: the failures below are the truncation's.
  write_binary(copy, bytes);
  EXPECT_EQ(Symbolizer({m}).name(target() + 4), "subctx_symbolize_test_target+0x4 (copy)");
  for (size_t len : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{200}, size_t{4096}, bytes.size() / 2,
                     bytes.size() - 64, bytes.size() - 1}) {
    write_binary(copy, bytes.substr(0, len));
    const std::string name = Symbolizer({m}).name(target() + 4);
    EXPECT_TRUE(starts_with(name, "?? (copy+0x")) << len << ": " << name;
  }
}

TEST(Symbolize, FilesThatAreNoElf) {
  testing::TempDir dir("subctx-symbolize");
  std::mt19937_64 rng(7);
  std::string noise(65536, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  write_binary(dir.file("noise"), noise);
  write_binary(dir.file("magic"), std::string(ELFMAG, SELFMAG) + noise);
  write_binary(dir.file("zeros"), std::string(65536, '\0'));
  write_binary(dir.file("empty"), "");
  ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);  // opening it must not wait for a writer
  ASSERT_EQ(mkdir(dir.file("dir").c_str(), 0700), 0);
  for (const char* name : {"noise", "magic", "zeros", "empty", "fifo", "dir", "missing"}) {
    Symbolizer s({{dir.file(name), 0x10000, 0x20000, ""}});
    EXPECT_EQ(s.name(0x10010), std::string("?? (") + name + "+0x10)");
  }
}

// ---- small ELF files made here ----

struct SymbolSpec {
  std::string name;
  uint64_t value = 0, size = 0;
  unsigned char type = STT_FUNC, bind = STB_GLOBAL;
  uint16_t shndx = 1;
};
struct TableSpec {
  uint32_t type = SHT_SYMTAB;
  std::vector<SymbolSpec> symbols;
};
struct ElfSpec {
  uint64_t load_vaddr = 0;
  std::vector<TableSpec> tables;
  std::string build_id;  // the note's descriptor bytes; empty: no note
};

size_t align8(size_t n) { return (n + 7) & ~size_t{7}; }

template <class T>
void put(std::string* b, size_t off, const T& v) {
  if (b->size() < off + sizeof v) b->resize(off + sizeof v);
  std::memcpy(b->data() + off, &v, sizeof v);
}

template <class T>
T get(const std::string& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

// Headers, then the note, then each table's strings and symbols, then the
// section headers: null, and per table its symbols (1+2k) and strings (2+2k).
std::string build_elf(const ElfSpec& spec) {
  std::string b(sizeof(Elf64_Ehdr), '\0');
  const size_t phnum = spec.build_id.empty() ? 1 : 2;
  b.resize(sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr));
  Elf64_Phdr note{};
  if (!spec.build_id.empty()) {
    note.p_type = PT_NOTE, note.p_offset = b.size(), note.p_align = 4;
    put(&b, b.size(), Elf64_Nhdr{4, static_cast<Elf64_Word>(spec.build_id.size()), NT_GNU_BUILD_ID});
    b += std::string("GNU\0", 4) + spec.build_id;
    b.resize((b.size() + 3) & ~size_t{3});
    note.p_filesz = note.p_memsz = b.size() - note.p_offset;
  }
  std::vector<Elf64_Shdr> sections(1);
  for (const TableSpec& t : spec.tables) {
    std::string strings(1, '\0');
    std::vector<Elf64_Sym> syms(1);
    for (const SymbolSpec& s : t.symbols) {
      Elf64_Sym sym{};
      sym.st_name = static_cast<Elf64_Word>(strings.size());
      sym.st_info = ELF64_ST_INFO(s.bind, s.type);
      sym.st_shndx = s.shndx;
      sym.st_value = s.value;
      sym.st_size = s.size;
      syms.push_back(sym);
      strings += s.name + '\0';
    }
    Elf64_Shdr str{}, tab{};
    str.sh_type = SHT_STRTAB, str.sh_offset = b.size(), str.sh_size = strings.size();
    b += strings;
    b.resize(align8(b.size()));
    tab.sh_type = t.type, tab.sh_offset = b.size(), tab.sh_size = syms.size() * sizeof(Elf64_Sym);
    tab.sh_entsize = sizeof(Elf64_Sym), tab.sh_link = static_cast<Elf64_Word>(sections.size() + 1);
    for (const Elf64_Sym& sym : syms) put(&b, b.size(), sym);
    sections.push_back(tab);
    sections.push_back(str);
  }
  b.resize(align8(b.size()));
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64, eh.e_ident[EI_DATA] = ELFDATA2LSB, eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_DYN, eh.e_machine = EM_X86_64, eh.e_version = EV_CURRENT, eh.e_ehsize = sizeof eh;
  eh.e_phoff = sizeof eh, eh.e_phentsize = sizeof(Elf64_Phdr), eh.e_phnum = static_cast<Elf64_Half>(phnum);
  eh.e_shoff = b.size(), eh.e_shentsize = sizeof(Elf64_Shdr), eh.e_shnum = static_cast<Elf64_Half>(sections.size());
  for (const Elf64_Shdr& sh : sections) put(&b, b.size(), sh);
  Elf64_Phdr load{};
  load.p_type = PT_LOAD, load.p_flags = PF_R | PF_X, load.p_vaddr = load.p_paddr = spec.load_vaddr;
  load.p_filesz = load.p_memsz = b.size(), load.p_align = 0x1000;
  put(&b, 0, eh);
  put(&b, sizeof eh, load);
  if (phnum == 2) put(&b, sizeof eh + sizeof load, note);
  return b;
}

size_t shdr_at(const std::string& b, size_t index) {
  return get<Elf64_Ehdr>(b, 0).e_shoff + index * sizeof(Elf64_Shdr);
}
size_t sym_at(const std::string& b, size_t table_section, size_t index) {
  return get<Elf64_Shdr>(b, shdr_at(b, table_section)).sh_offset + index * sizeof(Elf64_Sym);
}

template <class T>
void patch(std::string* b, size_t off, const std::function<void(T&)>& f) {
  T v = get<T>(*b, off);
  f(v);
  put(b, off, v);
}

constexpr uint64_t kLo = 0x70000000, kHi = kLo + 0x10000;

class SymbolizeElfFile : public ::testing::Test {
 protected:
  testing::TempDir dir_{"subctx-symbolize"};
  std::string path_ = dir_.file("synthetic.elf");

  std::string name_in(const std::string& bytes, uint64_t addr, const std::string& build_id = "") {
    write_binary(path_, bytes);
    return Symbolizer({{path_, kLo, kHi, build_id}}).name(addr);
  }

  static ElfSpec basic() { return {0, {{SHT_SYMTAB, {{"synthetic_fn", 0x1000, 0x20}}}}, ""}; }
};

TEST_F(SymbolizeElfFile, FunctionAndOffsets) {
  const std::string b = build_elf(basic());
  EXPECT_EQ(name_in(b, kLo + 0x1004), "synthetic_fn+0x4 (synthetic.elf)");
  EXPECT_EQ(name_in(b, kLo + 0x101f), "synthetic_fn+0x1f (synthetic.elf)");
  EXPECT_EQ(name_in(b, kLo + 0x1020), "?? (synthetic.elf+0x1020)");
  EXPECT_EQ(name_in(b, kLo + 0xfff), "?? (synthetic.elf+0xfff)");
}

TEST_F(SymbolizeElfFile, LoadBiasFromTheFirstLoadSegment) {
  // A non-PIE layout: the first PT_LOAD at 0x400123 maps from page 0x400000.
  const std::string b = build_elf({0x400123, {{SHT_SYMTAB, {{"fn", 0x401000, 0x10}}}}, ""});
  EXPECT_EQ(name_in(b, kLo + 0x1008), "fn+0x8 (synthetic.elf)");
  // Without a symbol the offset is the file's virtual address, as addr2line takes it.
  EXPECT_EQ(name_in(b, kLo + 0x2000), "?? (synthetic.elf+0x402000)");
}

TEST_F(SymbolizeElfFile, WhichSymbolsCount) {
  const std::string b = build_elf({0,
                                   {{SHT_SYMTAB,
                                     {{"object", 0x1000, 0x10, STT_OBJECT},
                                      {"sizeless", 0x2000, 0, STT_FUNC},
                                      {"undefined", 0x3000, 0x10, STT_FUNC, STB_GLOBAL, SHN_UNDEF},
                                      {"notype", 0x4000, 0x10, STT_NOTYPE},
                                      {"ifunc", 0x5000, 0x10, STT_GNU_IFUNC},
                                      {"local", 0x6000, 0x10, STT_FUNC, STB_LOCAL}}}},
                                   ""});
  EXPECT_EQ(name_in(b, kLo + 0x1000), "?? (synthetic.elf+0x1000)");
  EXPECT_EQ(name_in(b, kLo + 0x2000), "?? (synthetic.elf+0x2000)");
  EXPECT_EQ(name_in(b, kLo + 0x3000), "?? (synthetic.elf+0x3000)");
  EXPECT_EQ(name_in(b, kLo + 0x4001), "notype+0x1 (synthetic.elf)");
  EXPECT_EQ(name_in(b, kLo + 0x5001), "ifunc+0x1 (synthetic.elf)");
  EXPECT_EQ(name_in(b, kLo + 0x6001), "local+0x1 (synthetic.elf)");
}

TEST_F(SymbolizeElfFile, AliasesAndNestedSymbols) {
  const std::string b = build_elf({0,
                                   {{SHT_SYMTAB,
                                     {{"__getpid", 0x1000, 8, STT_FUNC, STB_GLOBAL},
                                      {"getpid", 0x1000, 8, STT_FUNC, STB_WEAK},
                                      {"_getpid_local", 0x1000, 8, STT_FUNC, STB_LOCAL},
                                      {"outer", 0x2000, 0x100},
                                      {"inner", 0x2010, 0x10}}}},
                                   ""});
  EXPECT_EQ(name_in(b, kLo + 0x1002), "getpid+0x2 (synthetic.elf)");
  EXPECT_EQ(name_in(b, kLo + 0x2015), "inner+0x5 (synthetic.elf)");
  EXPECT_EQ(name_in(b, kLo + 0x2050), "outer+0x50 (synthetic.elf)");
}

TEST_F(SymbolizeElfFile, SymtabBeforeDynsym) {
  const TableSpec dyn{SHT_DYNSYM, {{"dynamic_name", 0x1000, 0x20}}};
  EXPECT_EQ(name_in(build_elf({0, {dyn, {SHT_SYMTAB, {{"full_name", 0x1000, 0x20}}}}, ""}), kLo + 0x1001),
            "full_name+0x1 (synthetic.elf)");
  EXPECT_EQ(name_in(build_elf({0, {dyn}, ""}), kLo + 0x1001), "dynamic_name+0x1 (synthetic.elf)");
  // A .symtab without functions (only objects): the dynamic symbols still name code.
  EXPECT_EQ(name_in(build_elf({0, {{SHT_SYMTAB, {{"data", 0x8000, 8, STT_OBJECT}}}, dyn}, ""}), kLo + 0x1001),
            "dynamic_name+0x1 (synthetic.elf)");
}

TEST_F(SymbolizeElfFile, BuildId) {
  ElfSpec spec = basic();
  spec.build_id = "\xde\xad\xbe\xef";
  const std::string with = build_elf(spec), without = build_elf(basic());
  EXPECT_EQ(name_in(with, kLo + 0x1004, "DEADBEEF"), "synthetic_fn+0x4 (synthetic.elf)");
  EXPECT_EQ(name_in(with, kLo + 0x1004, "deadbeef"), "synthetic_fn+0x4 (synthetic.elf)");
  EXPECT_EQ(name_in(with, kLo + 0x1004), "synthetic_fn+0x4 (synthetic.elf)");  // not checked
  EXPECT_EQ(name_in(with, kLo + 0x1004, "deadbeee"), "?? (synthetic.elf+0x1004)");
  EXPECT_EQ(name_in(without, kLo + 0x1004, "deadbeef"), "?? (synthetic.elf+0x1004)");
  // A note whose size runs past its segment is no note.
  std::string cut = with;
  patch<Elf64_Phdr>(&cut, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), [](Elf64_Phdr& p) { p.p_filesz -= 4; });
  EXPECT_EQ(name_in(cut, kLo + 0x1004, "deadbeef"), "?? (synthetic.elf+0x1004)");
}

TEST_F(SymbolizeElfFile, NamesArePrintableAndBounded) {
  const std::string b = build_elf(
      {0,
       {{SHT_SYMTAB,
         {{"bad\x1b[2Jname\xff", 0x1000, 0x10}, {std::string(10000, 'x'), 0x2000, 0x10}, {"_Zgarbage", 0x3000, 0x10}}}},
       ""});
  EXPECT_EQ(name_in(b, kLo + 0x1000), "bad\\x1b[2Jname\\xff+0x0 (synthetic.elf)");
  const std::string long_name = name_in(b, kLo + 0x2000);
  EXPECT_LT(long_name.size(), 4200u);
  EXPECT_TRUE(starts_with(long_name, "xxxx")) << long_name.substr(0, 20);
  EXPECT_NE(long_name.find("...+0x0 (synthetic.elf)"), std::string::npos);
  EXPECT_EQ(name_in(b, kLo + 0x3000), "_Zgarbage+0x0 (synthetic.elf)");  // not demangled: the raw name
}

TEST_F(SymbolizeElfFile, ReadLazilyAndCached) {
  Symbolizer s({{path_, kLo, kHi, ""}});
  write_binary(path_, build_elf(basic()));  // after construction: read on the first lookup
  EXPECT_EQ(s.name(kLo + 0x1004), "synthetic_fn+0x4 (synthetic.elf)");
  write_binary(path_, "rebuilt");  // read once: the table stays
  EXPECT_EQ(s.name(kLo + 0x1008), "synthetic_fn+0x8 (synthetic.elf)");
  Symbolizer moved = std::move(s);
  EXPECT_EQ(moved.name(kLo + 0x1008), "synthetic_fn+0x8 (synthetic.elf)");
}

// Each corruption of one field: no symbol (or the fields it still allows), never a crash.
TEST_F(SymbolizeElfFile, CorruptFieldsGiveNoSymbols) {
  const std::string good = build_elf(basic());
  using Edit = std::function<void(std::string*)>;
  const size_t symtab = 1, strtab = 2;
  const std::pair<const char*, Edit> edits[] = {
      {"class 32", [](std::string* b) { (*b)[EI_CLASS] = ELFCLASS32; }},
      {"big endian", [](std::string* b) { (*b)[EI_DATA] = ELFDATA2MSB; }},
      {"phoff past the end", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_phoff = ~0ull - 8; }); }},
      {"phentsize", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_phentsize = 32; }); }},
      {"no PT_LOAD",
       [](std::string* b) { patch<Elf64_Phdr>(b, sizeof(Elf64_Ehdr), [](auto& p) { p.p_type = PT_NULL; }); }},
      {"phnum huge", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_phnum = 0xffff; }); }},
  };
  for (const auto& [what, edit] : edits) {
    std::string b = good;
    edit(&b);
    EXPECT_EQ(name_in(b, kLo + 0x1004), "?? (synthetic.elf+0x1004)") << what;  // no layout: offset from lo
  }
  const std::pair<const char*, Edit> section_edits[] = {
      {"shoff past the end", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_shoff = ~0ull - 100; }); }},
      {"shoff 0", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_shoff = 0; }); }},
      {"shentsize", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_shentsize = 40; }); }},
      {"shnum huge", [](std::string* b) { patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_shnum = 0xfff0; }); }},
      {"shnum 0, huge count in section 0",
       [](std::string* b) {
         patch<Elf64_Ehdr>(b, 0, [](auto& e) { e.e_shnum = 0; });
         patch<Elf64_Shdr>(b, shdr_at(*b, 0), [](auto& s) { s.sh_size = ~0ull; });
       }},
      {"symtab offset past the end",
       [&](std::string* b) { patch<Elf64_Shdr>(b, shdr_at(*b, symtab), [](auto& s) { s.sh_offset = ~0ull - 4; }); }},
      {"symtab size huge",
       [&](std::string* b) { patch<Elf64_Shdr>(b, shdr_at(*b, symtab), [](auto& s) { s.sh_size = 1ull << 62; }); }},
      {"symtab entsize",
       [&](std::string* b) { patch<Elf64_Shdr>(b, shdr_at(*b, symtab), [](auto& s) { s.sh_entsize = 16; }); }},
      {"symtab link out of range",
       [&](std::string* b) { patch<Elf64_Shdr>(b, shdr_at(*b, symtab), [](auto& s) { s.sh_link = 99; }); }},
      {"link to a non-string section",
       [&](std::string* b) { patch<Elf64_Shdr>(b, shdr_at(*b, symtab), [](auto& s) { s.sh_link = 1; }); }},
      {"strtab size huge",
       [&](std::string* b) { patch<Elf64_Shdr>(b, shdr_at(*b, strtab), [](auto& s) { s.sh_size = ~0ull; }); }},
      {"name offset past the strings",
       [&](std::string* b) { patch<Elf64_Sym>(b, sym_at(*b, symtab, 1), [](auto& s) { s.st_name = 0xfffffff0u; }); }},
      {"name offset at the strings' end",
       [&](std::string* b) {
         const uint64_t size = get<Elf64_Shdr>(*b, shdr_at(*b, strtab)).sh_size;
         patch<Elf64_Sym>(b, sym_at(*b, symtab, 1), [&](auto& s) { s.st_name = static_cast<Elf64_Word>(size); });
       }},
      {"size overflowing",
       [&](std::string* b) {
         patch<Elf64_Sym>(b, sym_at(*b, symtab, 1), [](auto& s) { s.st_value = ~0ull - 1, s.st_size = ~0ull; });
       }},
  };
  for (const auto& [what, edit] : section_edits) {
    std::string b = good;
    edit(&b);
    EXPECT_EQ(name_in(b, kLo + 0x1004), "?? (synthetic.elf+0x1004)") << what;
  }
}

TEST_F(SymbolizeElfFile, UnterminatedStringTable) {
  // The last name runs to the end of its section without a '\0'.
  std::string b = build_elf(basic());
  patch<Elf64_Shdr>(&b, shdr_at(b, 2), [](auto& s) { s.sh_size -= 1; });
  EXPECT_EQ(name_in(b, kLo + 0x1004), "synthetic_fn+0x4 (synthetic.elf)");
  patch<Elf64_Shdr>(&b, shdr_at(b, 2), [](auto& s) { s.sh_size -= 1; });
  EXPECT_EQ(name_in(b, kLo + 0x1004), "synthetic_f+0x4 (synthetic.elf)");
}

TEST_F(SymbolizeElfFile, TruncatedAtEveryLength) {
  ElfSpec spec = basic();
  spec.build_id = "\x01\x02\x03\x04";
  const std::string b = build_elf(spec);
  for (size_t len = 0; len < b.size(); ++len) {
    const std::string name = name_in(b.substr(0, len), kLo + 0x1004);
    EXPECT_TRUE(starts_with(name, "?? (synthetic.elf+0x1004)")) << len << ": " << name;
  }
  EXPECT_EQ(name_in(b, kLo + 0x1004), "synthetic_fn+0x4 (synthetic.elf)");
}

TEST_F(SymbolizeElfFile, RandomMutationsNeverCrash) {
  ElfSpec spec = basic();
  spec.build_id = "\x01\x02\x03\x04";
  spec.tables.push_back({SHT_DYNSYM, {{"a", 0x1000, 8}, {"b", 0x1010, 8}, {"_ZN1a1bEv", 0x1020, 8}}});
  const std::string good = build_elf(spec);
  std::mt19937_64 rng(1234);
  for (int round = 0; round < 500; ++round) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) b.resize(rng() % b.size());
    write_binary(path_, b);
    const Symbolizer s({{path_, kLo, kHi, round % 2 ? "01020304" : ""}});
    for (uint64_t a : {kLo, kLo + 0x1004, kLo + 0x1021, kHi - 1}) EXPECT_FALSE(s.name(a).empty()) << round;
  }
}

}  // namespace
}  // namespace subctx::matchmaker
