// A mapped subcontext's segments: one owner whose destructor is the
// correct unmapping.
//
// A segment is either anonymous memory or a view of the image file.
// Subcontext code may give part of a view back during a call (munmap of a
// large free()d block) and the client may then map its own memory in the
// hole: unmapping the segment whole would take that memory away.  So the
// views are unmapped as far as they still are views of the image (the
// inode in /proc/self/maps), unless the caller knows the layout is as made
// (every mmap, munmap, mremap and mprotect of subcontext code was seen and
// none touched the segments: unmap(intact = true), no /proc read).
// Anonymous segments go whole (a call cannot put anything of the client's
// there).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sys/mapping.hpp"

namespace subctx::sys {

class Segments {
 public:
  Segments() = default;
  // maps[i] is a view of the file (dev, ino) where from_file[i].
  Segments(std::vector<Mapping> maps, std::vector<bool> from_file, dev_t dev, ino_t ino);
  Segments(Segments&& o) noexcept { *this = std::move(o); }
  Segments& operator=(Segments&& o) noexcept;
  Segments(const Segments&) = delete;
  Segments& operator=(const Segments&) = delete;
  ~Segments() { unmap_unless_intact(); }

  const std::vector<Mapping>& mappings() const { return maps_; }
  bool from_file(size_t i) const { return from_file_[i]; }
  size_t size() const { return maps_.size(); }
  bool empty() const { return maps_.empty(); }

  using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
  // Unmaps them (see above), with extra (reserved gaps, say) in the same
  // munmap calls: one per run of adjacent ranges.  Then empty.
  void unmap(bool intact, const Ranges& extra = {}) { unmap_ranges(ranges_to_unmap(intact, extra)); }
  // The same in two steps: what to unmap (merged, sorted), then unmapping
  // exactly that and forgetting the segments.
  Ranges ranges_to_unmap(bool intact, const Ranges& extra) const;
  void unmap_ranges(const Ranges& ranges);

 private:
  // unmap(false) for the destructor and move assignment, which may not
  // throw: without memory to read /proc/self/maps, each segment whole.
  void unmap_unless_intact() noexcept;

  std::vector<Mapping> maps_;
  std::vector<bool> from_file_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace subctx::sys
