#include <cstdint>
#include <string>

#include "fault/threads.hpp"
#include "fault/view.hpp"
#include "matchmaker/registry.hpp"
#include "sys/env.hpp"

namespace subctx::matchmaker {

Limits limits_from_environment(std::string* errors) {
  Limits l;
  // At most as many as the signal handlers' view table holds.
  env::read_number("SUBCTX_MAX_SUBCONTEXTS", 1, fault::kMaxViews, &l.subcontexts, errors);
  env::read_number("SUBCTX_MAX_IMAGE_SIZE", 1, UINT64_MAX, &l.image_size, errors);
  env::read_number("SUBCTX_MAX_EXPORTS", 1, UINT64_MAX, &l.exports, errors);
  env::read_number("SUBCTX_MAX_SEGMENTS", 1, UINT64_MAX, &l.segments, errors);
  // 0: subcontext code starts no threads (clone is EPERM, as before threads).
  env::read_number("SUBCTX_MAX_THREADS", 0, fault::kMaxThreadSlots, &l.threads, errors);
  return l;
}

}  // namespace subctx::matchmaker
