// Warm and cold first calls (docs/prefetch.md): the hot pages an image
// records (`subctx train`, the hot-pages note) are read in at once and
// mapped at map when the page cache does not hold them, so that a first
// call does not wait for them one fault after the other, and the kernel is
// told not to read ahead around the other faults.
#pragma once

#include <cstdint>
#include <vector>

#include "image/format.hpp"
#include "sys/mapping.hpp"

namespace subctx::matchmaker {

struct PrefetchCounts {
  uint64_t runs = 0;   // runs populated
  uint64_t pages = 0;  // pages in them
  bool cold = false;   // the first run was not in the page cache: reads were started for all
};

// For an image with a hot-pages note whose pages are not in the page cache
// (or always): starts the reads of all runs at once, populates the runs
// read-only (MADV_POPULATE_READ: the pages stay shared with the page cache,
// a write still copies), and marks the large views of the file
// MADV_RANDOM.  The segments must still have the image's own permissions
// (before the protection backend's setup).  Best effort: a failure leaves
// the pages to fault in as without the note.  views/from_file: the
// mappings just made.
PrefetchCounts prefetch_hot_pages(int fd, const image::ImageInfo& info, const std::vector<sys::Mapping>& views,
                                  const std::vector<bool>& from_file, bool always);

}  // namespace subctx::matchmaker
