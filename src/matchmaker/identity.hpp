// The server's identity in a client (docs/identity.md): its files and
// working directory reopened at map, the subcontext's descriptor namespace
// set up, put back by resets and closed by unmap.
#pragma once

#include <cstdint>

#include "matchmaker/registry.hpp"

namespace subctx::matchmaker {

// At map, registry mutex held: reopens what the image's identity note
// lists (the policy decides which paths) and fills the namespace.  Where
// system calls are not mediated, refuses an image that would need it
// unless options.unisolated.  Throws naming the descriptor and the path.
void restore_identity(const Registry& r, detail::SubcontextState& s, const MapOptions& options);

struct DescriptorReset {
  uint64_t closed = 0;    // opened by calls
  uint64_t restored = 0;  // the server's, put back at their snapshot offsets
};
// Reset, call mutex held: closes what calls opened, puts the restored
// descriptors, the working directory and the umask back; grants stay.
DescriptorReset reset_descriptors(detail::SubcontextState& s);

// Unmap, call mutex held: closes every descriptor of the subcontext.
void close_descriptors(detail::SubcontextState& s);

}  // namespace subctx::matchmaker
