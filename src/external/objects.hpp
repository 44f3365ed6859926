// The ELF objects another process has loaded (its executable first, then its
// libraries in address order, or in the dynamic linker's search order once
// order_by() has read it), found in its /proc/PID/maps, each with its
// load bias and symbol tables read from the file, and the lookups the
// external snapshot makes in them: exports by name, the libc symbols it
// needs (stdout, fflush, __curbrk, dlsym, ...), the function an address is in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "external/elf_file.hpp"
#include "sys/proc_maps.hpp"

namespace subctx::external {

struct LoadedObject {
  std::string path;         // as the target's maps name it
  uint64_t bias = 0;        // add to the file's addresses
  uint64_t lo = 0, hi = 0;  // the range its mappings cover
  bool executable = false;  // the main program
  std::unique_ptr<ElfFile> elf;
};

class ProcessObjects {
 public:
  // Reads every mapped ELF object of the target.  The files are opened
  // through /proc/PID/map_files where the path no longer names the mapped
  // file.  Throws SnapshotRefused when the executable cannot be read.
  ProcessObjects(pid_t pid, const std::vector<sys::MapEntry>& maps);

  const std::vector<LoadedObject>& objects() const { return objects_; }
  const LoadedObject& executable() const { return objects_.front(); }

  // The export `name`: defined in the executable, else in exactly one
  // library (one address).  Throws SnapshotRefused naming the name and
  // where it looked when it is unknown or ambiguous.
  uint64_t resolve_export(const std::string& name) const;

  // The first definition in scope order (the executable, then the
  // libraries), the default version preferred; 0 when there is none.
  // *size: the symbol's size, *where: its object.
  uint64_t find(const std::string& name, uint64_t* size = nullptr, const LoadedObject** where = nullptr) const;

  // The object holding addr, or nullptr.
  const LoadedObject* object_at(uint64_t addr) const;

  // Puts the objects in the order the dynamic linker searches its global
  // scope: `dynamic` holds each link_map's l_ld (the address of its
  // dynamic section), from _r_debug's chain.  Objects outside the chain keep
  // their order, after it.  Called before any pointer to an object is kept.
  void order_by(const std::vector<uint64_t>& dynamic);

 private:
  std::vector<LoadedObject> objects_;
};

}  // namespace subctx::external
