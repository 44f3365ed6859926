// Reads and validates an image's header.  An image is untrusted input: every
// field is bounds-checked and a bad image gives an Error (BadImage, Version,
// Digest or LimitExceeded) that says which check failed, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "image/format.hpp"

namespace subctx::image {

// Where the bytes come from: a file (pread) or memory (tests, the fuzzer).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly len bytes at offset; false when it cannot.
  virtual bool read(uint64_t offset, void* out, size_t len) const = 0;
};

class FileSource : public ByteSource {
 public:
  FileSource(int fd, uint64_t size) : fd_(fd), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* out, size_t len) const override;

 private:
  int fd_;
  uint64_t size_;
};

// A FileSource whose first bytes (up to kPrefix: the ELF header, program
// headers and notes of most images) are read with one pread at
// construction; reads inside them are served from memory.  read_image reads
// those parts three times (header, program headers, all of it again for the
// header digest): one system call instead of three.
class PrefetchedFileSource : public ByteSource {
 public:
  static constexpr size_t kPrefix = 16 << 10;
  PrefetchedFileSource(int fd, uint64_t size);
  uint64_t size() const override { return file_.size(); }
  bool read(uint64_t offset, void* out, size_t len) const override;

 private:
  FileSource file_;
  std::unique_ptr<uint8_t[]> prefix_;
  size_t prefix_size_ = 0;  // 0: the file could not be read there (reads go to the file)
};

class MemorySource : public ByteSource {
 public:
  MemorySource(const void* data, size_t size) : data_(static_cast<const uint8_t*>(data)), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* out, size_t len) const override;

 private:
  const uint8_t* data_;
  size_t size_;
};

struct ReadLimits {
  uint64_t max_segments = 4096;
  uint64_t max_exports = 4096;
  uint64_t max_image_size = uint64_t{64} << 30;
};

// Parses and validates the header; `what` names the image in messages.
ImageInfo read_image(const ByteSource& src, const std::string& what, const ReadLimits& limits = {});

// Recomputes every segment digest from the file; returns "" when all match,
// else a description of the first mismatch.
std::string verify_segments(const ByteSource& src, const ImageInfo& info);

}  // namespace subctx::image
