// Reset to pristine and memory accounting (reset.cpp).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "matchmaker/subcontext_state.hpp"

namespace subctx::matchmaker {

// The pages of a subcontext's segments that differ from the image: written
// (copied on write) or swapped out.
struct DirtyScan {
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // page-aligned, sorted
  uint64_t pages = 0;
  bool exact = true;  // false: pagemap unreadable, every page counted
};
DirtyScan scan_dirty(const detail::SubcontextState& s);
// Records a scan's count (and the peak).
void note_dirty(detail::SubcontextState& s, uint64_t pages);

// This process's pid without a getpid() per call: kept in a page that the
// kernel hands every child with memory of its own (fork, _Fork, clone
// without CLONE_VM) zeroed (MADV_WIPEONFORK), so a child asks once.  Where
// that page cannot be had, getpid() every time.
pid_t this_pid();

// The image file's stamp from its fstat (at map).
detail::ImageStamp stamp_of(const struct stat& st);
// "" while the image file (the descriptor the Matchmaker keeps) is as it was
// at map; else a sentence for messages: the file changed on disk (size,
// modification time, or status change time while links, mode and owner are
// unchanged: a rename over the image or its unlink changes only the old
// inode's links and ctime, and is the supported way to replace an image).
std::string image_change(const detail::SubcontextState& s);

// Restores the snapshot state; call mutex held, no call in progress.
// Throws when it cannot (the subcontext is then poisoned by the caller):
// BadImage when the image file changed on disk (image_change): the pages
// would come back with the new file's bytes.
ResetInfo reset_state(detail::SubcontextState& s);

}  // namespace subctx::matchmaker
