#include "image/open_image.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::image {

namespace {
const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}
}  // namespace

sys::UniqueFd open_image(const std::string& path, struct stat* st, OwnerCheck owner_check) {
  // O_NONBLOCK: opening a FIFO must not hang before fstat() refuses it.
  sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) throw ImageNotFound("image " + path + " does not exist");
    if (err == EACCES || err == EPERM)
      throw PermissionDenied("cannot open image " + path + ": " + sys::errno_text(err) +
                             "; make it readable (chmod u+r " + path + ")");
    throw IoError("cannot open image " + path + ": " + sys::errno_text(err));
  }
  if (fstat(fd.get(), st) != 0) throw IoError("cannot stat image " + path + ": " + sys::errno_text(errno));
  if (!S_ISREG(st->st_mode))
    throw NotRegularFile("image " + path + " is " + file_kind(st->st_mode) +
                         ", not a regular file; give the path of an image file a server wrote");
  if (owner_check == OwnerCheck::Skip) return fd;
  const uid_t me = getuid();
  if (st->st_uid != me && st->st_uid != 0)
    throw PermissionDenied("image " + path + " is owned by uid " + std::to_string(st->st_uid) +
                           "; images must belong to you (uid " + std::to_string(me) + ") or root");
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st->st_mode & 07777);
    throw PermissionDenied("image " + path + " is writable by group or others (mode " + mode +
                           "); anyone could change its code: chmod go-w " + path);
  }
  return fd;
}

}  // namespace subctx::image
