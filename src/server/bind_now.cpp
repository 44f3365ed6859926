#include "server/bind_now.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#include <cstring>

namespace subctx::server {

namespace {

struct LoadedObject {
  std::string name;
  uint64_t base = 0;
  const Elf64_Phdr* phdr = nullptr;
  int phnum = 0;
};

int collect(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<LoadedObject>*>(data);
  out->push_back({info->dlpi_name ? info->dlpi_name : "", info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum});
  return 0;
}

bool in_own_code(const LoadedObject& o, uint64_t addr) {
  for (int i = 0; i < o.phnum; ++i) {
    const Elf64_Phdr& p = o.phdr[i];
    if (p.p_type == PT_LOAD && (p.p_flags & PF_X) && addr >= o.base + p.p_vaddr &&
        addr < o.base + p.p_vaddr + p.p_memsz)
      return true;
  }
  return false;
}

// A lazy slot points at its PLT entry's "push <index>" (after an endbr64 in
// IBT-enabled PLTs); a resolved one points elsewhere.
bool is_lazy_stub(const LoadedObject& o, uint64_t value, uint64_t index) {
  if (!in_own_code(o, value)) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(value);
  static const uint8_t kEndbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
  if (std::memcmp(p, kEndbr64, 4) == 0) p += 4;
  uint32_t imm;
  std::memcpy(&imm, p + 1, 4);
  return p[0] == 0x68 && imm == index;
}

void bind_object(const LoadedObject& o, BindNowResult& result) {
  const Elf64_Dyn* dyn = nullptr;
  for (int i = 0; i < o.phnum; ++i)
    if (o.phdr[i].p_type == PT_DYNAMIC) dyn = reinterpret_cast<const Elf64_Dyn*>(o.base + o.phdr[i].p_vaddr);
  if (!dyn) return;
  uint64_t jmprel = 0, pltrelsz = 0, pltrel = 0, symtab = 0, strtab = 0, versym = 0, verneed = 0, verneednum = 0;
  // The dynamic linker rebases these in place for most objects; not for all.
  auto ptr = [&](uint64_t v) { return v >= o.base ? v : v + o.base; };
  for (const Elf64_Dyn* d = dyn; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_JMPREL: jmprel = ptr(d->d_un.d_ptr); break;
      case DT_PLTRELSZ: pltrelsz = d->d_un.d_val; break;
      case DT_PLTREL: pltrel = d->d_un.d_val; break;
      case DT_SYMTAB: symtab = ptr(d->d_un.d_ptr); break;
      case DT_STRTAB: strtab = ptr(d->d_un.d_ptr); break;
      case DT_VERSYM: versym = ptr(d->d_un.d_ptr); break;
      case DT_VERNEED: verneed = ptr(d->d_un.d_ptr); break;
      case DT_VERNEEDNUM: verneednum = d->d_un.d_val; break;
      default: break;
    }
  }
  if (!jmprel || !pltrelsz || pltrel != DT_RELA || !symtab || !strtab) return;

  auto version_of = [&](uint32_t symidx) -> const char* {
    if (!versym || !verneed) return nullptr;
    uint16_t v = reinterpret_cast<const uint16_t*>(versym)[symidx] & 0x7fff;
    if (v < 2) return nullptr;
    auto* vn = reinterpret_cast<const Elf64_Verneed*>(verneed);
    for (uint64_t i = 0; i < verneednum; ++i) {
      auto* aux = reinterpret_cast<const Elf64_Vernaux*>(reinterpret_cast<const uint8_t*>(vn) + vn->vn_aux);
      for (unsigned k = 0; k < vn->vn_cnt; ++k) {
        if (aux->vna_other == v) return reinterpret_cast<const char*>(strtab + aux->vna_name);
        aux = reinterpret_cast<const Elf64_Vernaux*>(reinterpret_cast<const uint8_t*>(aux) + aux->vna_next);
      }
      vn = reinterpret_cast<const Elf64_Verneed*>(reinterpret_cast<const uint8_t*>(vn) + vn->vn_next);
    }
    return nullptr;
  };

  void* own_handle = nullptr;
  const auto* rela = reinterpret_cast<const Elf64_Rela*>(jmprel);
  for (uint64_t i = 0; i < pltrelsz / sizeof(Elf64_Rela); ++i) {
    if (ELF64_R_TYPE(rela[i].r_info) != R_X86_64_JUMP_SLOT) continue;
    ++result.slots_checked;
    auto* slot = reinterpret_cast<uint64_t*>(o.base + rela[i].r_offset);
    if (!is_lazy_stub(o, *slot, i)) continue;
    uint32_t symidx = ELF64_R_SYM(rela[i].r_info);
    const auto& sym = reinterpret_cast<const Elf64_Sym*>(symtab)[symidx];
    const char* name = reinterpret_cast<const char*>(strtab + sym.st_name);
    const char* version = version_of(symidx);
    // Same order as the dynamic linker: the global scope, then the object's own.
    void* target = version ? dlvsym(RTLD_DEFAULT, name, version) : dlsym(RTLD_DEFAULT, name);
    if (!target && !o.name.empty()) {
      if (!own_handle) own_handle = dlopen(o.name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (own_handle) target = version ? dlvsym(own_handle, name, version) : dlsym(own_handle, name);
    }
    if (!target) {
      if (ELF64_ST_BIND(sym.st_info) == STB_WEAK) continue;  // weak and absent: calling it fails either way
      result.unresolved.push_back((o.name.empty() ? std::string("main executable") : o.name) + ": " + name +
                                  (version ? std::string("@") + version : std::string()));
      continue;
    }
    *slot = reinterpret_cast<uint64_t>(target);
    ++result.slots_resolved;
  }
  if (own_handle) dlclose(own_handle);
}

}  // namespace

BindNowResult bind_all_plt_slots() {
  std::vector<LoadedObject> objects;
  dl_iterate_phdr(collect, &objects);
  BindNowResult result;
  for (const auto& o : objects) {
    if (o.name.find("linux-vdso") != std::string::npos) continue;
    bind_object(o, result);
  }
  return result;
}

}  // namespace subctx::server
