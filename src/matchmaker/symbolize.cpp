#include "matchmaker/symbolize.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>

#include "sys/io.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::matchmaker {

namespace {

constexpr uint64_t kPageSize = 4096;
// Limits on what an untrusted file makes us read.
constexpr uint64_t kMaxTableBytes = uint64_t{256} << 20;  // one symbol, string or note table
constexpr uint64_t kMaxHeaders = 1u << 16;                // program or section headers
constexpr size_t kMaxNameLength = 4096;                   // longer names are neither demangled nor printed whole
constexpr int kMaxEnclosingLookback = 8;                  // symbols before addr that may still contain it

// An ELF file opened for reading: every read is checked against its size
// and is a pread (a mapping would fault if the file shrank meanwhile).
class ElfFile {
 public:
  bool open(const std::string& path) {
    // O_NONBLOCK: a FIFO at that path must not hang the fault report.
    fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st;
    if (!fd_ || ::fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    size_ = static_cast<uint64_t>(st.st_size);
    return true;
  }

  bool contains(uint64_t off, uint64_t len) const { return off <= size_ && len <= size_ - off; }

  template <class T>
  bool read(uint64_t off, T* out) const {
    return contains(off, sizeof(T)) && sys::pread_exact(fd_.get(), out, sizeof(T), static_cast<off_t>(off));
  }

  bool read_bytes(uint64_t off, uint64_t len, std::string* out) const {
    if (!contains(off, len) || len > kMaxTableBytes) return false;
    out->resize(static_cast<size_t>(len));
    return sys::pread_exact(fd_.get(), out->data(), out->size(), static_cast<off_t>(off));
  }

  // count entries of T at off, each entsize bytes apart (entsize checked by the caller).
  template <class T>
  bool read_array(uint64_t off, uint64_t count, std::vector<T>* out) const {
    if (count > kMaxHeaders || !contains(off, count * sizeof(T))) return false;
    out->resize(static_cast<size_t>(count));
    return count == 0 || sys::pread_exact(fd_.get(), out->data(), out->size() * sizeof(T), static_cast<off_t>(off));
  }

 private:
  sys::UniqueFd fd_;
  uint64_t size_ = 0;
};

bool read_elf_header(const ElfFile& file, Elf64_Ehdr* eh) {
  return file.read(0, eh) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
         eh->e_ident[EI_DATA] == ELFDATA2LSB && eh->e_phentsize == sizeof(Elf64_Phdr);
}

bool read_sections(const ElfFile& file, const Elf64_Ehdr& eh, std::vector<Elf64_Shdr>* out) {
  if (eh.e_shoff == 0 || eh.e_shentsize != sizeof(Elf64_Shdr)) return false;
  uint64_t count = eh.e_shnum;
  if (count == 0) {  // 0 with a section table: the count is in section 0's sh_size
    Elf64_Shdr first;
    if (!file.read(eh.e_shoff, &first)) return false;
    count = first.sh_size;
  }
  return file.read_array(eh.e_shoff, count, out);
}

// The GNU build-id in the notes (4- or 8-byte aligned fields), as hex.
std::string build_id_in_notes(std::string_view notes, uint64_t align) {
  auto padded = [align](uint64_t n) { return (n + align - 1) / align * align; };
  size_t off = 0;
  while (notes.size() - off >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr nh;
    std::memcpy(&nh, notes.data() + off, sizeof nh);
    off += sizeof nh;
    const uint64_t name_len = padded(nh.n_namesz), desc_len = padded(nh.n_descsz);
    if (name_len > notes.size() - off || desc_len > notes.size() - off - name_len) break;
    const std::string_view name = notes.substr(off, nh.n_namesz);
    off += name_len;
    if (nh.n_type == NT_GNU_BUILD_ID && name == std::string_view("GNU", 4)) {
      static const char kDigits[] = "0123456789abcdef";
      std::string hex;
      for (unsigned char c : notes.substr(off, nh.n_descsz)) (hex += kDigits[c >> 4]) += kDigits[c & 15];
      return hex;
    }
    off += desc_len;
  }
  return {};
}

std::string build_id_of(const ElfFile& file, const std::vector<Elf64_Phdr>& segments) {
  for (const Elf64_Phdr& ph : segments) {
    std::string notes;
    if (ph.p_type != PT_NOTE || !file.read_bytes(ph.p_offset, ph.p_filesz, &notes)) continue;
    std::string id = build_id_in_notes(notes, ph.p_align == 8 ? 8 : 4);
    if (!id.empty()) return id;
  }
  return {};
}

bool same_hex(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

struct Symbol {
  uint64_t start = 0, size = 0;  // link-time virtual address
  uint32_t name = 0;             // offset in Table::strings
  uint32_t rank = 0;             // among aliases at one address, the lowest is shown
};

// What one module's file says: its layout and function symbols.
struct Table {
  bool has_layout = false;      // the file was read and is the expected one
  uint64_t bias = 0;            // address in the subcontext - link-time address
  std::string strings;          // the string table, ending in '\0'
  std::vector<Symbol> symbols;  // sorted by start, one per start

  const Symbol* find(uint64_t vaddr) const {
    auto it = std::upper_bound(symbols.begin(), symbols.end(), vaddr,
                               [](uint64_t v, const Symbol& s) { return v < s.start; });
    for (int i = 0; i < kMaxEnclosingLookback && it != symbols.begin(); ++i) {
      --it;
      if (vaddr - it->start < it->size) return &*it;
    }
    return nullptr;
  }
};

bool is_function(const Elf64_Sym& sym) {
  const unsigned type = ELF64_ST_TYPE(sym.st_info);
  return (type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_NOTYPE) && sym.st_size > 0 &&
         sym.st_shndx != SHN_UNDEF && sym.st_name != 0;
}

// Prefer the public name of aliases: "getpid" over "__getpid", then
// global over weak over local.
uint32_t alias_rank(const Elf64_Sym& sym, const char* name) {
  const uint32_t underscores = name[0] != '_' ? 0 : name[1] != '_' ? 1 : 2;
  const unsigned bind = ELF64_ST_BIND(sym.st_info);
  const uint32_t binding = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : bind == STB_LOCAL ? 2 : 3;
  return underscores * 4 + binding;
}

// The function symbols of the first section of `type` into t.
bool load_symbols(const ElfFile& file, const std::vector<Elf64_Shdr>& sections, uint32_t type, Table* t) {
  auto it = std::find_if(sections.begin(), sections.end(), [type](const Elf64_Shdr& s) { return s.sh_type == type; });
  if (it == sections.end() || it->sh_entsize != sizeof(Elf64_Sym) || it->sh_link >= sections.size()) return false;
  const Elf64_Shdr& strtab = sections[it->sh_link];
  std::string raw;
  if (strtab.sh_type != SHT_STRTAB || !file.read_bytes(it->sh_offset, it->sh_size, &raw) ||
      !file.read_bytes(strtab.sh_offset, strtab.sh_size, &t->strings))
    return false;
  t->strings.push_back('\0');  // every name offset below its size now ends inside it
  for (size_t off = 0; raw.size() - off >= sizeof(Elf64_Sym); off += sizeof(Elf64_Sym)) {
    Elf64_Sym sym;
    std::memcpy(&sym, raw.data() + off, sizeof sym);
    if (!is_function(sym) || sym.st_name >= t->strings.size() - 1) continue;
    t->symbols.push_back({sym.st_value, sym.st_size, sym.st_name, alias_rank(sym, &t->strings[sym.st_name])});
  }
  return !t->symbols.empty();
}

void sort_symbols(Table* t) {
  std::sort(t->symbols.begin(), t->symbols.end(),
            [](const Symbol& a, const Symbol& b) { return a.start != b.start ? a.start < b.start : a.rank < b.rank; });
  auto dup = std::unique(t->symbols.begin(), t->symbols.end(),
                         [](const Symbol& a, const Symbol& b) { return a.start == b.start; });
  t->symbols.erase(dup, t->symbols.end());
}

// Reads the module's file; whatever is wrong with it leaves fewer facts.
Table load_table(const Module& m) {
  Table t;
  ElfFile file;
  Elf64_Ehdr eh;
  std::vector<Elf64_Phdr> segments;
  if (!file.open(m.path) || !read_elf_header(file, &eh) || !file.read_array(eh.e_phoff, eh.e_phnum, &segments))
    return t;
  auto first_load =
      std::find_if(segments.begin(), segments.end(), [](const Elf64_Phdr& p) { return p.p_type == PT_LOAD; });
  if (first_load == segments.end()) return t;
  // A rebuilt executable's symbols would name the wrong code.
  if (!m.build_id.empty() && !same_hex(build_id_of(file, segments), m.build_id)) return t;
  t.has_layout = true;
  t.bias = m.lo - (first_load->p_vaddr & ~(kPageSize - 1));
  std::vector<Elf64_Shdr> sections;
  if (!read_sections(file, eh, &sections)) return t;
  if (!load_symbols(file, sections, SHT_SYMTAB, &t)) {
    t.symbols.clear();
    t.strings.clear();
    load_symbols(file, sections, SHT_DYNSYM, &t);
  }
  sort_symbols(&t);
  return t;
}

std::string demangled(const char* raw) {
  if (std::strncmp(raw, "_Z", 2) != 0 || std::strlen(raw) > kMaxNameLength) return raw;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(abi::__cxa_demangle(raw, nullptr, nullptr, &status), &std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(raw);
}

std::string basename_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return sys::printable(slash == std::string::npos ? path : path.substr(slash + 1));
}

}  // namespace

// The tables, read on first use; each stays unchanged once read.
struct Symbolizer::Cache {
  std::mutex mutex;
  std::vector<std::optional<Table>> tables;

  const Table& table(size_t i, const Module& m) {
    std::lock_guard lock(mutex);
    if (!tables[i]) {
      try {
        tables[i] = load_table(m);
      } catch (...) {
        tables[i] = Table();  // out of memory: this module stays without symbols
      }
    }
    return *tables[i];
  }
};

Symbolizer::Symbolizer(std::vector<Module> modules) : modules_(std::move(modules)), cache_(std::make_unique<Cache>()) {
  cache_->tables.resize(modules_.size());
}
Symbolizer::~Symbolizer() = default;
Symbolizer::Symbolizer(Symbolizer&&) noexcept = default;
Symbolizer& Symbolizer::operator=(Symbolizer&&) noexcept = default;

std::string Symbolizer::name(uint64_t addr) const {
  try {
    auto m =
        std::find_if(modules_.begin(), modules_.end(), [addr](const Module& x) { return x.lo <= addr && addr < x.hi; });
    if (m == modules_.end() || !cache_) return "??";
    const Table& t = cache_->table(static_cast<size_t>(m - modules_.begin()), *m);
    const uint64_t vaddr = addr - t.bias;
    if (const Symbol* s = t.find(vaddr))
      return sys::printable(demangled(&t.strings[s->name]), kMaxNameLength) + "+" + sys::hex(vaddr - s->start) + " (" +
             basename_of(m->path) + ")";
    return "?? (" + basename_of(m->path) + "+" + sys::hex(t.has_layout ? vaddr : addr - m->lo) + ")";
  } catch (...) {
    return "??";
  }
}

}  // namespace subctx::matchmaker
