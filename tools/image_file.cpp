#include "image_file.hpp"

#include <fcntl.h>

#include <cerrno>

#include "subctx/error.hpp"
#include "subctx/subctx.hpp"
#include "sys/io.hpp"

namespace subctx::tool {

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

ImageFile ImageFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang before fstat() refuses it.
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) throw ImageNotFound("image " + path + " does not exist");
    if (err == EACCES || err == EPERM)
      throw PermissionDenied("cannot open image " + path + ": " + sys::errno_text(err) +
                             "; make it readable (chmod u+r " + path + ")");
    throw IoError("cannot open image " + path + ": " + sys::errno_text(err));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) throw IoError("cannot stat image " + path + ": " + sys::errno_text(errno));
  if (!S_ISREG(st.st_mode))
    throw NotRegularFile("image " + path + " is " + file_kind(st.st_mode) +
                         ", not a regular file; give the path of an image file a server wrote");
  return ImageFile(path, std::move(fd), st);
}

image::FileSource ImageFile::source() const {
  return image::FileSource(fd_.get(), static_cast<uint64_t>(st_.st_size));
}

image::ImageInfo ImageFile::read_header() const {
  const Limits l = Matchmaker::instance().limits();
  return image::read_image(source(), path_, image::ReadLimits{l.segments, l.exports, l.image_size});
}

}  // namespace subctx::tool
