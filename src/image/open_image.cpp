#include "image/open_image.hpp"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::image {

namespace {

std::string mode_text(mode_t m) { return sys::octal(m & 07777); }

// Owned by the effective user (who the process acts as: a setuid program's
// owner) or root, and writable by nobody else.
void check_owner(const struct stat& st, const std::string& shown) {
  const uid_t me = geteuid();
  if (st.st_uid != me && st.st_uid != 0)
    throw PermissionDenied("image " + shown + " is owned by uid " + std::to_string(st.st_uid) +
                           "; images must belong to the user this process runs as (effective uid " +
                           std::to_string(me) + ") or root");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw PermissionDenied("image " + shown + " is writable by group or others (mode " + mode_text(st.st_mode) +
                           "); anyone could change its code: chmod go-w " + shown);
}

}  // namespace

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

sys::UniqueFd open_image(const std::string& path, struct stat* st, OwnerCheck owner_check) {
  const std::string shown = sys::printable_path(path);
  // O_NONBLOCK: opening a FIFO must not hang before fstat() refuses it.
  sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) throw ImageNotFound("image " + shown + " does not exist");
    if (err == EACCES || err == EPERM)
      throw PermissionDenied("cannot open image " + shown + ": " + sys::errno_text(err) +
                             "; make it readable (chmod u+r " + shown + ")");
    throw IoError("cannot open image " + shown + ": " + sys::errno_text(err));
  }
  if (fstat(fd.get(), st) != 0) throw IoError("cannot stat image " + shown + ": " + sys::errno_text(errno));
  if (!S_ISREG(st->st_mode))
    throw NotRegularFile("image " + shown + " is " + file_kind(st->st_mode) +
                         ", not a regular file; give the path of an image file a server wrote");
  if (owner_check == OwnerCheck::Enforce) check_owner(*st, shown);
  return fd;
}

std::string opened_path(int fd, const struct stat& st, const std::string& shown) {
  char link[32];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  std::string path(PATH_MAX, '\0');
  const ssize_t n = readlink(link, path.data(), path.size());
  if (n < 0 || static_cast<size_t>(n) >= path.size())
    throw PermissionDenied("cannot map image " + shown + ": cannot tell the path of the file opened (readlink " + link +
                           ": " + (n < 0 ? sys::errno_text(errno) : std::string("longer than PATH_MAX")) +
                           "); the policy decides on that path, so the image is not mapped: keep images where "
                           "their full path is shorter than " +
                           std::to_string(PATH_MAX) + " bytes");
  path.resize(static_cast<size_t>(n));
  struct stat now;
  if (path[0] != '/' || lstat(path.c_str(), &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino)
    throw PermissionDenied("cannot map image " + shown +
                           ": it was renamed, replaced or deleted while it was opened "
                           "(the kernel's path of the file opened: " +
                           sys::printable_path(path) +
                           "); the policy decides on that path, so the image is not mapped: try again");
  return path;
}

void check_directories(const std::string& canonical, const std::string& shown) {
  for (size_t slash = canonical.rfind('/'); slash != std::string::npos;
       slash = slash ? canonical.rfind('/', slash - 1) : std::string::npos) {
    const std::string dir = slash ? canonical.substr(0, slash) : "/";
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw PermissionDenied("cannot map image " + shown + ": directory " + sys::printable_path(dir) +
                             " of its path changed while it was opened; try again");
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
      throw PermissionDenied("cannot map image " + shown + ": directory " + sys::printable_path(dir) + " (mode " +
                             mode_text(st.st_mode) +
                             ") is writable by others without the sticky bit: anyone could rename another file over "
                             "the image; chmod o-w (or chmod +t) " +
                             sys::printable_path(dir) + ", or move the image");
    if (!slash) break;
  }
}

sys::UniqueFd open_image_to_map(const std::string& path, struct stat* st, std::string* canonical) {
  sys::UniqueFd fd = open_image(path, st, OwnerCheck::Enforce);
  const std::string shown = sys::printable_path(path);
  *canonical = opened_path(fd.get(), *st, shown);
  check_directories(*canonical, shown);
  return fd;
}

}  // namespace subctx::image
