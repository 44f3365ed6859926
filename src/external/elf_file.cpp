#include "external/elf_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "sys/io.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::external {

namespace {
constexpr uint64_t kPage = 4096;
}

ElfFile::~ElfFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

bool ElfFile::load(const std::string& path, std::string* why) {
  sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    *why = "cannot open " + path + ": " + sys::errno_text(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    *why = path + " is not an ELF file";
    return false;
  }
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) {
    *why = "cannot map " + path + ": " + sys::errno_text(errno);
    return false;
  }
  data_ = static_cast<const uint8_t*>(p);
  size_ = static_cast<size_t>(st.st_size);
  if (std::memcmp(data_, ELFMAG, SELFMAG) != 0) {
    *why = path + " is not an ELF file";
    return false;
  }
  class64_ = data_[EI_CLASS] == ELFCLASS64;
  uint16_t machine;
  std::memcpy(&machine, data_ + 18, 2);  // e_machine: the same offset in both classes
  machine_ = machine;
  if (!class64_ || data_[EI_DATA] != ELFDATA2LSB) {
    *why = path + " is not a 64-bit little-endian ELF file";
    return false;
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, data_, sizeof eh);
  type_ = eh.e_type;
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || !at(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr))) {
    *why = path + ": malformed program headers";
    return false;
  }
  first_load_ = UINT64_MAX;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, data_ + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_LOAD && (ph.p_vaddr & ~(kPage - 1)) < first_load_) first_load_ = ph.p_vaddr & ~(kPage - 1);
    if (ph.p_type == PT_NOTE && at(ph.p_offset, ph.p_filesz) && build_id_.empty()) {
      const uint8_t* b = data_ + ph.p_offset;
      for (uint64_t off = 0; off + 12 <= ph.p_filesz;) {
        uint32_t namesz, descsz, ntype;
        std::memcpy(&namesz, b + off, 4);
        std::memcpy(&descsz, b + off + 4, 4);
        std::memcpy(&ntype, b + off + 8, 4);
        const uint64_t desc = off + 12 + ((uint64_t{namesz} + 3) & ~uint64_t{3});
        if (desc > ph.p_filesz || descsz > ph.p_filesz - desc) break;
        if (ntype == NT_GNU_BUILD_ID && namesz == 4 && std::memcmp(b + off + 12, "GNU", 4) == 0) {
          static const char kHex[] = "0123456789abcdef";
          for (uint32_t k = 0; k < descsz; ++k) {
            build_id_.push_back(kHex[b[desc + k] >> 4]);
            build_id_.push_back(kHex[b[desc + k] & 15]);
          }
          break;
        }
        off = desc + ((uint64_t{descsz} + 3) & ~uint64_t{3});
      }
    }
  }
  if (first_load_ == UINT64_MAX) {
    *why = path + ": no loadable segment";
    return false;
  }
  read_sections();
  read_dynamic();
  return true;
}

bool ElfFile::vaddr_to_offset(uint64_t vaddr, uint64_t len, uint64_t* off) const {
  Elf64_Ehdr eh;
  std::memcpy(&eh, data_, sizeof eh);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, data_ + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr || vaddr - ph.p_vaddr > ph.p_filesz ||
        len > ph.p_filesz - (vaddr - ph.p_vaddr))
      continue;
    *off = ph.p_offset + (vaddr - ph.p_vaddr);
    return at(*off, len);
  }
  return false;
}

bool ElfFile::read_vaddr(uint64_t vaddr, void* out, size_t len) const {
  uint64_t off;
  if (!vaddr_to_offset(vaddr, len, &off)) return false;
  std::memcpy(out, data_ + off, len);
  return true;
}

// .dynsym (with .gnu.version's hidden bit) and .symtab, defined symbols only.
void ElfFile::read_sections() {
  Elf64_Ehdr eh;
  std::memcpy(&eh, data_, sizeof eh);
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || !at(eh.e_shoff, uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr))) return;
  auto section = [&](unsigned i, Elf64_Shdr* sh) {
    if (i >= eh.e_shnum) return false;
    std::memcpy(sh, data_ + eh.e_shoff + uint64_t{i} * sizeof *sh, sizeof *sh);
    return true;
  };
  uint64_t versym_off = 0, versym_size = 0;
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    section(i, &sh);
    if (sh.sh_type == SHT_GNU_versym && at(sh.sh_offset, sh.sh_size)) {
      versym_off = sh.sh_offset;
      versym_size = sh.sh_size;
    }
  }
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh, str;
    section(i, &sh);
    if (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) continue;
    if (sh.sh_entsize != sizeof(Elf64_Sym) || !at(sh.sh_offset, sh.sh_size) || !section(sh.sh_link, &str) ||
        !at(str.sh_offset, str.sh_size))
      continue;
    const bool symtab = sh.sh_type == SHT_SYMTAB;
    if (symtab) has_symtab_ = true;
    for (uint64_t k = 1; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
      Elf64_Sym s;
      std::memcpy(&s, data_ + sh.sh_offset + k * sizeof s, sizeof s);
      if (s.st_shndx == SHN_UNDEF || s.st_name == 0 || s.st_name >= str.sh_size) continue;
      const uint8_t type = ELF64_ST_TYPE(s.st_info);
      if (type == STT_SECTION || type == STT_FILE || type == STT_TLS) continue;
      const char* name = reinterpret_cast<const char*>(data_ + str.sh_offset + s.st_name);
      const size_t len = strnlen(name, static_cast<size_t>(str.sh_size - s.st_name));
      ElfSymbol out;
      out.name.assign(name, len);
      out.value = s.st_value;
      out.size = s.st_size;
      out.type = type;
      out.bind = ELF64_ST_BIND(s.st_info);
      out.from_symtab = symtab;
      if (!symtab && versym_off && k * 2 + 2 <= versym_size) {
        uint16_t v;
        std::memcpy(&v, data_ + versym_off + k * 2, 2);
        out.hidden_version = (v & 0x8000) != 0;
      }
      symbols_.push_back(std::move(out));
    }
  }
}

// The PLT's relocations, with each symbol's name and required version, from
// the dynamic section (addresses translated through the PT_LOADs).
void ElfFile::read_dynamic() {
  Elf64_Ehdr eh;
  std::memcpy(&eh, data_, sizeof eh);
  uint64_t dyn_off = 0, dyn_size = 0;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, data_ + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_DYNAMIC && at(ph.p_offset, ph.p_filesz)) {
      dyn_off = ph.p_offset;
      dyn_size = ph.p_filesz;
    }
  }
  if (!dyn_size) return;
  uint64_t jmprel = 0, pltrelsz = 0, pltrel = 0, symtab = 0, strtab = 0, strsz = 0, versym = 0, verneed = 0,
           verneednum = 0;
  for (uint64_t off = dyn_off; off + sizeof(Elf64_Dyn) <= dyn_off + dyn_size; off += sizeof(Elf64_Dyn)) {
    Elf64_Dyn d;
    std::memcpy(&d, data_ + off, sizeof d);
    if (d.d_tag == DT_NULL) break;
    switch (d.d_tag) {
      case DT_JMPREL: jmprel = d.d_un.d_ptr; break;
      case DT_PLTRELSZ: pltrelsz = d.d_un.d_val; break;
      case DT_PLTREL: pltrel = d.d_un.d_val; break;
      case DT_SYMTAB: symtab = d.d_un.d_ptr; break;
      case DT_STRTAB: strtab = d.d_un.d_ptr; break;
      case DT_STRSZ: strsz = d.d_un.d_val; break;
      case DT_VERSYM: versym = d.d_un.d_ptr; break;
      case DT_VERNEED: verneed = d.d_un.d_ptr; break;
      case DT_VERNEEDNUM: verneednum = d.d_un.d_val; break;
      case DT_BIND_NOW: bind_now_ = true; break;
      case DT_FLAGS:
        if (d.d_un.d_val & DF_BIND_NOW) bind_now_ = true;
        break;
      case DT_FLAGS_1:
        if (d.d_un.d_val & DF_1_NOW) bind_now_ = true;
        break;
      default: break;
    }
  }
  if (!jmprel || !pltrelsz || pltrel != DT_RELA || !symtab || !strtab) return;
  uint64_t strtab_off = 0;
  if (!vaddr_to_offset(strtab, strsz, &strtab_off)) return;
  auto string_at = [&](uint64_t idx) -> std::string {
    if (idx >= strsz) return "";
    const char* s = reinterpret_cast<const char*>(data_ + strtab_off + idx);
    return std::string(s, strnlen(s, static_cast<size_t>(strsz - idx)));
  };
  auto version_of = [&](uint32_t symidx) -> std::string {
    uint16_t v = 0;
    if (!versym || !verneed || !read_vaddr(versym + uint64_t{symidx} * 2, &v, 2)) return "";
    v &= 0x7fff;
    if (v < 2) return "";
    // The counts and links come from the file: a zero link ends a chain,
    // and at most kMaxVerneed entries are walked (a forged count must not
    // keep the target stopped).
    constexpr uint64_t kMaxVerneed = 4096;
    uint64_t vn_addr = verneed;
    for (uint64_t i = 0; i < verneednum && i < kMaxVerneed; ++i) {
      Elf64_Verneed vn;
      if (!read_vaddr(vn_addr, &vn, sizeof vn)) return "";
      uint64_t aux_addr = vn_addr + vn.vn_aux;
      for (unsigned k = 0; k < vn.vn_cnt; ++k) {
        Elf64_Vernaux aux;
        if (!read_vaddr(aux_addr, &aux, sizeof aux)) return "";
        if (aux.vna_other == v) return string_at(aux.vna_name);
        if (aux.vna_next == 0) break;
        aux_addr += aux.vna_next;
      }
      if (vn.vn_next == 0) break;
      vn_addr += vn.vn_next;
    }
    return "";
  };
  for (uint64_t i = 0; i < pltrelsz / sizeof(Elf64_Rela); ++i) {
    Elf64_Rela r;
    if (!read_vaddr(jmprel + i * sizeof r, &r, sizeof r)) return;
    if (ELF64_R_TYPE(r.r_info) != R_X86_64_JUMP_SLOT) continue;
    const uint32_t symidx = ELF64_R_SYM(r.r_info);
    Elf64_Sym sym;
    if (!read_vaddr(symtab + uint64_t{symidx} * sizeof sym, &sym, sizeof sym)) continue;
    PltSlot slot;
    slot.index = i;
    slot.r_offset = r.r_offset;
    slot.symbol = string_at(sym.st_name);
    slot.version = version_of(symidx);
    slot.weak = ELF64_ST_BIND(sym.st_info) == STB_WEAK;
    plt_.push_back(std::move(slot));
  }
}

}  // namespace subctx::external
