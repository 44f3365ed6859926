#include "common/vdso.hpp"

#include <elf.h>
#include <sys/auxv.h>

#include <cstring>

#include "subctx/error.hpp"
#include "sys/io.hpp"
#include "sys/proc_maps.hpp"

namespace subctx {

namespace {
template <class T>
bool read_at(const uint8_t* base, size_t size, uint64_t off, T* out) {
  if (off > size || sizeof(T) > size - off) return false;
  std::memcpy(out, base + off, sizeof(T));
  return true;
}
}  // namespace

bool parse_vdso_symbols(const uint8_t* base, size_t size, std::vector<image::VdsoSymbol>* out, std::string* why) {
  auto fail = [&](const char* msg) {
    if (why) *why = std::string("vdso: ") + msg;
    return false;
  };
  Elf64_Ehdr eh;
  if (!read_at(base, size, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return fail("no ELF header");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_phentsize != sizeof(Elf64_Phdr)) return fail("bad header sizes");
  // Load bias: the first PT_LOAD's p_vaddr sits at base.
  uint64_t load_vaddr = UINT64_MAX;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (!read_at(base, size, eh.e_phoff + uint64_t{i} * sizeof ph, &ph)) return fail("program headers truncated");
    if (ph.p_type == PT_LOAD && ph.p_vaddr < load_vaddr) load_vaddr = ph.p_vaddr;
  }
  if (load_vaddr == UINT64_MAX) return fail("no PT_LOAD");
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!read_at(base, size, eh.e_shoff + uint64_t{i} * sizeof sh, &sh)) return fail("section headers truncated");
    if (sh.sh_type != SHT_DYNSYM) continue;
    Elf64_Shdr strsh;
    if (!read_at(base, size, eh.e_shoff + uint64_t{sh.sh_link} * sizeof strsh, &strsh)) return fail("no string table");
    if (strsh.sh_offset > size || strsh.sh_size > size - strsh.sh_offset) return fail("string table outside the image");
    if (sh.sh_entsize != sizeof(Elf64_Sym)) return fail("bad symbol size");
    for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
      Elf64_Sym sym;
      if (!read_at(base, size, sh.sh_offset + k * sizeof sym, &sym)) return fail("symbol table truncated");
      if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF) continue;
      if (sym.st_name >= strsh.sh_size || sym.st_value < load_vaddr || sym.st_value - load_vaddr >= size) continue;
      const char* s = reinterpret_cast<const char*>(base + strsh.sh_offset + sym.st_name);
      size_t max = static_cast<size_t>(strsh.sh_size - sym.st_name);
      size_t len = strnlen(s, max);
      if (len == max || len == 0) continue;
      out->push_back({sym.st_value - load_vaddr, std::string(s, len)});
    }
    return true;
  }
  return fail("no dynamic symbol table");
}

uint64_t HostVdso::address_of(const std::string& name) const {
  for (const auto& s : symbols)
    if (s.name == name) return base + s.offset;
  return 0;
}

HostVdso host_vdso() {
  HostVdso v;
  v.base = getauxval(AT_SYSINFO_EHDR);
  if (!v.base) return v;
  sys::SelfMaps maps;
  std::string why;
  if (!sys::read_self_maps(&maps, &why)) throw SystemError(why);
  for (const auto& m : maps.entries)
    if (m.start == v.base) v.size = m.end - m.start;
  if (!v.size) v.size = 2 * image::kPageSize;
  if (!parse_vdso_symbols(reinterpret_cast<const uint8_t*>(v.base), v.size, &v.symbols, &why)) throw SystemError(why);
  return v;
}

}  // namespace subctx
