// Opening an image file: read-only, never blocking, a regular file, and (for
// mapping) owned by the user or root and not writable by others.  Shared by
// the Matchmaker and the `subctx` command.
#pragma once

#include <sys/stat.h>

#include <string>

#include "sys/unique_fd.hpp"

namespace subctx::image {

enum class OwnerCheck { Enforce, Skip };

// Throws ImageNotFound, PermissionDenied, NotRegularFile or IoError; fills *st.
sys::UniqueFd open_image(const std::string& path, struct stat* st, OwnerCheck owner_check);

}  // namespace subctx::image
