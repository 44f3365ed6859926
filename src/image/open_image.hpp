// Opening an image file: read-only, never blocking, a regular file, and (for
// mapping) owned by the effective user or root, not writable by others, in
// directories others cannot swap it in, and known by the path the kernel
// opened.  Shared by the Matchmaker and the `subctx` command.
#pragma once

#include <sys/stat.h>

#include <string>

#include "sys/unique_fd.hpp"

namespace subctx::image {

enum class OwnerCheck { Enforce, Skip };

// Throws ImageNotFound, PermissionDenied, NotRegularFile or IoError; fills *st.
sys::UniqueFd open_image(const std::string& path, struct stat* st, OwnerCheck owner_check);

// open_image with OwnerCheck::Enforce, then *canonical: the opened file's
// own path (opened_path), every directory of it checked (check_directories).
sys::UniqueFd open_image_to_map(const std::string& path, struct stat* st, std::string* canonical);

// The absolute path of the file open as fd, from the kernel (readlink of
// /proc/self/fd/N, never a second lookup of the name given), confirmed to
// name that file still (device and inode as in st).  Throws PermissionDenied
// when there is none (longer than PATH_MAX, no /proc, deleted or renamed
// meanwhile): the policy must not decide on another path.  shown names the
// image in messages.
std::string opened_path(int fd, const struct stat& st, const std::string& shown);

// Refuses (PermissionDenied) when a directory from the image's up to / is
// writable by others without the sticky bit: anyone could rename another
// file over the image there.
void check_directories(const std::string& canonical, const std::string& shown);

// "a directory", "a FIFO", ... for messages.
const char* file_kind(mode_t mode);

}  // namespace subctx::image
