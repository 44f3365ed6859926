// An ELF object file of another process, read from disk (`subctx snapshot
// --pid`): its symbol tables (.dynsym with symbol versions, and .symtab
// where the file has one) and what the dynamic section says about its PLT.
// Section headers are not loaded into memory, so symbols come from the
// file; every read is bounds-checked against the file's size.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace subctx::external {

struct ElfSymbol {
  std::string name;
  uint64_t value = 0;  // st_value: add the object's load bias
  uint64_t size = 0;
  uint8_t type = 0;             // STT_*
  uint8_t bind = 0;             // STB_*
  bool hidden_version = false;  // .dynsym, a non-default version ("name@V", not "name@@V")
  bool from_symtab = false;     // .symtab rather than .dynsym
};

// One lazily bindable PLT slot: an R_X86_64_JUMP_SLOT relocation.
struct PltSlot {
  uint64_t index = 0;     // in the relocation table: the lazy stub pushes it
  uint64_t r_offset = 0;  // the slot (GOT entry), before the load bias
  std::string symbol;
  std::string version;  // "" when unversioned
  bool weak = false;
};

class ElfFile {
 public:
  ElfFile() = default;
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  // Maps the file (read-only); false and *why when it is not an ELF object
  // (then type() and machine() say what it is, if it got that far).
  bool load(const std::string& path, std::string* why);

  uint16_t type() const { return type_; }        // ET_EXEC, ET_DYN
  uint16_t machine() const { return machine_; }  // EM_X86_64
  bool is_64() const { return class64_; }
  // The lowest PT_LOAD's address, page-rounded down: the load bias is where
  // the file's first mapping starts in the process, less this.
  uint64_t first_load_vaddr() const { return first_load_; }
  bool has_symtab() const { return has_symtab_; }
  bool bind_now() const { return bind_now_; }  // DF_BIND_NOW or DF_1_NOW: no lazy slot

  const std::vector<ElfSymbol>& symbols() const { return symbols_; }
  const std::vector<PltSlot>& plt_slots() const { return plt_; }
  std::string build_id_hex() const { return build_id_; }

  // Bytes of the file at a virtual address (before the load bias) inside a
  // PT_LOAD's file part; false when [vaddr, vaddr+len) is not there.
  bool read_vaddr(uint64_t vaddr, void* out, size_t len) const;

 private:
  bool at(uint64_t off, uint64_t len) const { return off <= size_ && len <= size_ - off; }
  bool vaddr_to_offset(uint64_t vaddr, uint64_t len, uint64_t* off) const;
  void read_sections();
  void read_dynamic();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint16_t type_ = 0, machine_ = 0;
  bool class64_ = false;
  uint64_t first_load_ = 0;
  bool has_symtab_ = false;
  bool bind_now_ = false;
  std::vector<ElfSymbol> symbols_;
  std::vector<PltSlot> plt_;
  std::string build_id_;
};

}  // namespace subctx::external
