#include "external/objects.hpp"

#include <elf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "server/refuse.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::external {

namespace {

using server::refuse;

bool is_code_symbol(const ElfSymbol& s) {
  return s.type == STT_FUNC || s.type == STT_GNU_IFUNC || s.type == STT_NOTYPE;
}

// The distinct addresses `name` has in one object: .dynsym's default
// versions and .symtab (a local function of the same name in two files
// makes two); a hidden version only when nothing else defines the name.
std::vector<uint64_t> definitions(const LoadedObject& o, const std::string& name, bool code_only,
                                  std::vector<const ElfSymbol*>* syms = nullptr) {
  std::vector<uint64_t> out, hidden;
  std::vector<const ElfSymbol*> out_syms, hidden_syms;
  for (const ElfSymbol& s : o.elf->symbols()) {
    if (s.name != name || (code_only && !is_code_symbol(s))) continue;
    const uint64_t a = o.bias + s.value;
    auto& list = s.hidden_version ? hidden : out;
    auto& list_syms = s.hidden_version ? hidden_syms : out_syms;
    if (std::find(list.begin(), list.end(), a) == list.end()) {
      list.push_back(a);
      list_syms.push_back(&s);
    }
  }
  if (out.empty()) {
    out = hidden;
    out_syms = hidden_syms;
  }
  if (syms) *syms = out_syms;
  return out;
}

// An object whose file could not be loaded: the executable, or a file the
// target runs code from (its symbols and lazily bound slots are needed), is
// a refusal; a data file that is not ELF is skipped.
void refuse_unreadable(const LoadedObject& o, bool code, uint64_t lo, uint64_t hi, const std::string& why) {
  if (o.executable) {
    if (o.elf->machine() != 0 && o.elf->machine() != EM_X86_64)
      refuse("the target " + o.path + " is not an x86-64 program (ELF machine " + std::to_string(o.elf->machine()) +
             "); subctx images hold x86-64 processes only");
    if (!o.elf->is_64() && o.elf->machine() != 0)
      refuse("the target " + o.path + " is a 32-bit program; subctx images hold x86-64 processes only");
    refuse("cannot read the target's executable: " + why);
  }
  if (code && why.find("is not an ELF file") == std::string::npos)
    refuse("cannot read " + o.path + ", from which the target runs code (mapped at " + sys::hex(lo) + "-" +
           sys::hex(hi) + "): " + why +
           "; its symbol tables are needed: run this command as the target's user or as root (reading a "
           "replaced file through /proc/PID/map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)");
}

}  // namespace

ProcessObjects::ProcessObjects(pid_t pid, const std::vector<sys::MapEntry>& maps) {
  const std::string proc = "/proc/" + std::to_string(pid);
  struct stat exe_st {};
  const bool have_exe = stat((proc + "/exe").c_str(), &exe_st) == 0;
  // Each file once, by device and inode, in address order; its lowest
  // mapping of offset 0 holds the ELF header.
  std::map<std::pair<uint64_t, uint64_t>, size_t> seen;
  std::vector<LoadedObject> libs;
  std::vector<LoadedObject> exe;
  struct Pending {
    const sys::MapEntry* first = nullptr;
    uint64_t lo = 0, hi = 0;
    bool has_header = false;
    uint64_t header_start = 0;
    bool code = false;  // mapped executable: code the target runs
  };
  std::vector<Pending> files;
  for (const auto& m : maps) {
    if (m.inode == 0 || m.path.empty() || m.path.front() != '/') continue;
    const uint64_t dev = (uint64_t{m.dev_major} << 32) | m.dev_minor;
    auto [it, fresh] = seen.try_emplace({dev, m.inode}, files.size());
    if (fresh) files.push_back({&m, m.start, m.end, false, 0});
    Pending& f = files[it->second];
    f.lo = std::min(f.lo, m.start);
    f.hi = std::max(f.hi, m.end);
    f.code |= (m.prot & PROT_EXEC) != 0;
    if (m.offset == 0 && !f.has_header) {
      f.has_header = true;
      f.header_start = m.start;
    }
  }
  for (const Pending& f : files) {
    if (!f.has_header) continue;
    const sys::MapEntry& m = *f.first;
    LoadedObject o;
    o.path = std::string(m.path);
    o.lo = f.lo;
    o.hi = f.hi;
    o.executable = have_exe && m.inode == exe_st.st_ino && makedev(m.dev_major, m.dev_minor) == exe_st.st_dev;
    // The path may name another file now (replaced, deleted): then the
    // mapped file itself, through map_files.
    std::string open_path = o.path;
    struct stat st {};
    if (m.deleted || stat(open_path.c_str(), &st) != 0 || st.st_ino != m.inode ||
        st.st_dev != makedev(m.dev_major, m.dev_minor)) {
      char range[64];
      std::snprintf(range, sizeof range, "/map_files/%llx-%llx", static_cast<unsigned long long>(m.start),
                    static_cast<unsigned long long>(m.end));
      open_path = proc + range;
    }
    o.elf = std::make_unique<ElfFile>();
    std::string why;
    if (!o.elf->load(open_path, &why)) {
      refuse_unreadable(o, f.code, f.lo, f.hi, why);
      continue;  // a data file mapped by the program
    }
    if (o.elf->type() != ET_EXEC && o.elf->type() != ET_DYN) continue;
    if (o.elf->machine() != EM_X86_64) {
      if (o.executable)
        refuse("the target " + o.path + " is not an x86-64 program (ELF machine " + std::to_string(o.elf->machine()) +
               "); subctx images hold x86-64 processes only");
      continue;
    }
    o.bias = f.header_start - o.elf->first_load_vaddr();
    (o.executable ? exe : libs).push_back(std::move(o));
  }
  if (exe.empty())
    refuse("cannot find the target's executable among its mappings (" + proc +
           "/exe names none of them: was the file replaced, or is it run by an interpreter?)");
  objects_.push_back(std::move(exe.front()));
  for (auto& l : libs) objects_.push_back(std::move(l));
}

uint64_t ProcessObjects::resolve_export(const std::string& name) const {
  std::vector<uint64_t> in_exe = definitions(objects_.front(), name, true);
  std::vector<const ElfSymbol*> syms;
  auto ifunc_check = [&](const LoadedObject& o, uint64_t addr) {
    definitions(o, name, true, &syms);
    for (const ElfSymbol* s : syms)
      if (s->type == STT_GNU_IFUNC && o.bias + s->value == addr)
        refuse("export \"" + name + "\" is an indirect function (STT_GNU_IFUNC) in " + o.path +
               ": its address is the resolver's, not the function's; export a plain function that calls it");
    return addr;
  };
  auto list = [&](const std::vector<std::pair<const LoadedObject*, uint64_t>>& where) {
    std::string s;
    for (const auto& [o, a] : where) s += "\n  " + sys::hex(a) + " in " + o->path;
    return s;
  };
  if (in_exe.size() == 1) return ifunc_check(objects_.front(), in_exe.front());
  if (in_exe.size() > 1) {
    std::vector<std::pair<const LoadedObject*, uint64_t>> where;
    for (uint64_t a : in_exe) where.push_back({&objects_.front(), a});
    refuse("export \"" + name + "\" is ambiguous: the executable defines it " + std::to_string(in_exe.size()) +
           " times (local functions of the same name in different files?):" + list(where) +
           "\nrename one, or export a function of another name");
  }
  std::vector<std::pair<const LoadedObject*, uint64_t>> where;
  for (size_t i = 1; i < objects_.size(); ++i)
    for (uint64_t a : definitions(objects_[i], name, true)) where.push_back({&objects_[i], a});
  if (where.size() == 1) return ifunc_check(*where.front().first, where.front().second);
  if (where.size() > 1)
    refuse("export \"" + name + "\" is ambiguous: the executable does not define it and " +
           std::to_string(where.size()) + " definitions were found in its libraries:" + list(where) +
           "\nexport a function that only one object defines");
  std::string looked;
  for (const auto& o : objects_)
    looked += "\n  " + o.path + (o.executable ? " (the executable)" : "") +
              (o.elf->has_symtab() ? ": .dynsym and .symtab" : ": .dynsym only (no .symtab: stripped)");
  refuse("export \"" + name + "\" is unknown: no function of that name in the symbol tables of the target's " +
         std::to_string(objects_.size()) + " objects:" + looked +
         "\na static function of a stripped executable has no symbol: give it external linkage, or keep .symtab");
}

uint64_t ProcessObjects::find(const std::string& name, uint64_t* size, const LoadedObject** where) const {
  for (const auto& o : objects_) {
    std::vector<const ElfSymbol*> syms;
    std::vector<uint64_t> a = definitions(o, name, false, &syms);
    // .dynsym first: a global definition, not a local one of the same name.
    for (size_t i = 0; i < a.size(); ++i) {
      if (syms[i]->from_symtab && syms[i]->bind == STB_LOCAL) continue;
      if (size) *size = syms[i]->size;
      if (where) *where = &o;
      return a[i];
    }
  }
  return 0;
}

void ProcessObjects::order_by(const std::vector<uint64_t>& dynamic) {
  auto rank = [&](const LoadedObject& o) {
    for (size_t i = 0; i < dynamic.size(); ++i)
      if (dynamic[i] >= o.lo && dynamic[i] < o.hi) return i;
    return dynamic.size();
  };
  std::stable_sort(objects_.begin() + 1, objects_.end(),
                   [&](const LoadedObject& a, const LoadedObject& b) { return rank(a) < rank(b); });
}

const LoadedObject* ProcessObjects::object_at(uint64_t addr) const {
  for (const auto& o : objects_)
    if (addr >= o.lo && addr < o.hi) return &o;
  return nullptr;
}

}  // namespace subctx::external
