// Names for code addresses of a subcontext ("sqlite3VdbeExec+0x1a2
// (libsqlite3.so.0)"), from the symbol tables of the modules' files on
// disk.  The files are untrusted: a truncated, hostile or rebuilt file gives
// no symbols, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace subctx::matchmaker {

struct Module {
  std::string path;         // the ELF file on disk
  uint64_t lo = 0, hi = 0;  // [lo, hi): what it occupies in the subcontext (min/max of its segments)
  std::string build_id;     // expected NT_GNU_BUILD_ID as hex; empty: not checked
};

class Symbolizer {
 public:
  explicit Symbolizer(std::vector<Module> modules);
  ~Symbolizer();
  Symbolizer(Symbolizer&&) noexcept;
  Symbolizer& operator=(Symbolizer&&) noexcept;

  // "symbol+0xOFF (basename)", or "?? (basename+0xOFF)" when the module
  // has no symbol there (OFF is then the file's virtual address, as
  // addr2line takes it, or the offset from lo when the file is unusable),
  // or "??" when no module holds addr.  A module's file is read on the
  // first lookup in it; a file whose build-id differs from the expected
  // one gives no symbols.  Thread-safe; never throws (returns "??" on
  // allocation failure).
  std::string name(uint64_t addr) const;

 private:
  struct Cache;
  std::vector<Module> modules_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace subctx::matchmaker
