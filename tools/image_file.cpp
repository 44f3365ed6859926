#include "image_file.hpp"

#include <fcntl.h>

#include <cerrno>

#include "image/open_image.hpp"
#include "subctx/error.hpp"
#include "subctx/subctx.hpp"
#include "sys/io.hpp"

namespace subctx::tool {

ImageFile ImageFile::open(const std::string& path) {
  struct stat st;
  sys::UniqueFd fd = image::open_image(path, &st, image::OwnerCheck::Skip);
  return ImageFile(path, std::move(fd), st);
}

image::FileSource ImageFile::source() const { return image::FileSource(fd_.get(), static_cast<uint64_t>(st_.st_size)); }

image::ImageInfo ImageFile::read_header() const {
  const Limits l = Matchmaker::instance().limits();
  return image::read_image(source(), path_, image::ReadLimits{l.segments, l.exports, l.image_size});
}

}  // namespace subctx::tool
