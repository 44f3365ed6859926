// An image opened read-only for the commands that only read it (inspect,
// verify): nothing is mapped, so even an image the Matchmaker would refuse
// (wrong CPU, address conflict, loose permissions) can be examined.
#pragma once

#include <sys/stat.h>

#include <string>

#include "image/format.hpp"
#include "image/reader.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::tool {

class ImageFile {
 public:
  // Throws ImageNotFound, PermissionDenied, NotRegularFile or IoError.
  static ImageFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const struct stat& stat() const { return st_; }
  int fd() const { return fd_.get(); }
  image::FileSource source() const;

  // Parses and validates the header (including its digest) under the same
  // limits a client would apply (SUBCTX_MAX_* environment variables).
  image::ImageInfo read_header() const;

 private:
  ImageFile(std::string path, sys::UniqueFd fd, const struct stat& st)
      : path_(std::move(path)), fd_(std::move(fd)), st_(st) {}

  std::string path_;
  sys::UniqueFd fd_;
  struct stat st_;
};

}  // namespace subctx::tool
