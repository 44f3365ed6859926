// The image rewritten with its hot-pages note (train.cpp): a new header,
// the segments' data copied after it (holes kept), written beside the
// image and renamed over it.  The segment digests do not change (they
// cover memory, not file offsets); the header digest is computed again.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "image/reader.hpp"
#include "image/writer.hpp"
#include "image_file.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::tool {

namespace {

// The temporary file until it is renamed over the image.
class TempFile {
 public:
  explicit TempFile(const std::string& image) : path_(image + ".train-XXXXXX") {
    fd_.reset(mkostemp(path_.data(), O_CLOEXEC));
    if (!fd_) throw IoError("cannot create " + path_ + " beside the image: " + sys::errno_text(errno));
  }
  ~TempFile() {
    if (!renamed_) unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  void rename_to(const std::string& to) {
    if (rename(path_.c_str(), to.c_str()) != 0)
      throw IoError("cannot rename " + path_ + " to " + to + ": " + sys::errno_text(errno));
    renamed_ = true;
  }

 private:
  std::string path_;
  sys::UniqueFd fd_;
  bool renamed_ = false;
};

[[noreturn]] void io_failed(const std::string& what, const std::string& path) {
  throw IoError("cannot " + what + " " + path + ": " + sys::errno_text(errno) + "; the image is unchanged");
}

// [from, from + len) of in to [to, ...) of out, only the data: the holes
// (never-written zero pages) stay holes.
void copy_data(int in, uint64_t from, int out, uint64_t to, uint64_t len, const std::string& out_path) {
  std::vector<uint8_t> buf(1 << 20);
  const uint64_t end = from + len;
  for (uint64_t at = from; at < end;) {
    const off_t data = lseek(in, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno == ENXIO) return;  // only a hole is left
    if (data < 0) io_failed("find the data of the image for", out_path);
    if (static_cast<uint64_t>(data) >= end) return;
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) io_failed("find the holes of the image for", out_path);
    const uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    for (uint64_t p = static_cast<uint64_t>(data); p < stop;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), stop - p));
      if (!sys::pread_exact(in, buf.data(), n, static_cast<off_t>(p)) ||
          !sys::pwrite_exact(out, buf.data(), n, static_cast<off_t>(to + (p - from))))
        io_failed("copy the segments to", out_path);
      p += n;
    }
    at = stop;
  }
}

}  // namespace

void write_trained_image(const ImageFile& file, image::ImageInfo info, std::vector<image::HotRun> runs) {
  const std::vector<image::SegmentRecord> old = info.segments;
  info.hot_pages = std::move(runs);
  // The header's size does not depend on the offsets: encode once to learn
  // where the data starts, lay the segments out from there, encode again.
  const uint64_t size = image::layout_segments(info, image::encode_header(info).data_start);
  image::EncodedHeader header = image::encode_header(info);
  std::vector<uint64_t> digests;
  for (const auto& s : info.segments) digests.push_back(s.digest);
  image::seal_header(header, digests.data(), digests.size());

  TempFile tmp(file.path());
  if (ftruncate(tmp.fd(), static_cast<off_t>(size)) != 0) io_failed("size", tmp.path());
  if (!sys::pwrite_exact(tmp.fd(), header.bytes.data(), header.bytes.size(), 0)) io_failed("write", tmp.path());
  for (size_t i = 0; i < old.size(); ++i)
    copy_data(file.fd(), old[i].offset, tmp.fd(), info.segments[i].offset, old[i].filesz, tmp.path());
  // Checked as a client would read it before it replaces anything.
  image::read_image(image::FileSource(tmp.fd(), size), tmp.path());
  if (fchmod(tmp.fd(), file.stat().st_mode & 07777) != 0) io_failed("set the mode of", tmp.path());
  if (fsync(tmp.fd()) != 0) io_failed("write", tmp.path());
  tmp.rename_to(file.path());
}

}  // namespace subctx::tool
