// Reset to pristine and memory accounting (reset.cpp).
#pragma once

#include <cstdint>
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

// Restores the snapshot state; call mutex held, no call in progress.
// Throws when it cannot (the subcontext is then poisoned by the caller).
ResetInfo reset_state(detail::SubcontextState& s);

}  // namespace subctx::matchmaker
