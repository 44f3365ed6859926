// The Matchmaker's process-wide state: installed flag, limits, subcontexts.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "common/vdso.hpp"
#include "gate/gate.hpp"
#include "matchmaker/subcontext_state.hpp"
#include "subctx/subctx.hpp"

namespace subctx::matchmaker {

struct Registry {
  std::mutex mutex;  // map, unmap, finalize, limits
  bool installed = false;
  Limits limits;
  int next_handle = 0;
  std::map<int, std::shared_ptr<detail::SubcontextState>> subcontexts;
  std::optional<HostVdso> host_vdso;  // read on first map
  gate::EnterFn enter = nullptr;
};

Registry& registry();

// Limits from SUBCTX_MAX_* environment variables over the defaults.
Limits limits_from_environment();

// Maps the image (all or nothing) and returns its state; called with the
// registry mutex held.
std::shared_ptr<detail::SubcontextState> map_image(Registry& r, const std::string& path);

// Unmaps one subcontext's memory; waits for a call in progress.
void unmap_state(detail::SubcontextState& s);

}  // namespace subctx::matchmaker
