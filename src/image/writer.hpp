// Encodes the image header: ELF header, program headers and SUBCTX notes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "image/format.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::image {

struct EncodedHeader {
  std::vector<uint8_t> bytes;       // file offset 0 .. end of notes
  size_t header_digest_offset = 0;  // of the u64 header digest in bytes
  size_t segment_digests_offset = 0;
  uint64_t data_start = 0;  // first page after the header
};

// Assigns page-aligned file offsets to the segments (in order, after the
// header) and encodes the header with the digests in info.  Returns the
// file size the segments need.
uint64_t layout_segments(ImageInfo& info, uint64_t data_start);
EncodedHeader encode_header(const ImageInfo& info);

// Stores the segment digests and computes the header digest, in place (no
// allocation: called while the image's memory is being copied).
void seal_header(EncodedHeader& header, const uint64_t* segment_digests, size_t count);
// The last steps of writing an image into fd (the temporary file tmp, named
// in errors): seals the header, writes it at offset 0 and sizes the file
// to file_size.  Throws IoError.  Allocates only to report an error (the
// in-process snapshot calls it in its copy phase).
void finish_image_file(int fd, const std::string& tmp, EncodedHeader& header, const uint64_t* segment_digests,
                       size_t count, uint64_t file_size);

// The pages of one segment, in order, as both snapshots copy them: each
// hashed into the segment's digest, an all-zero one a hole in the file, and
// runs of the others (contiguous in memory and in the file) written with
// one pwrite each.  Allocates only for an error's message: the in-process
// snapshot uses it in its copy phase.
class SegmentWriter {
 public:
  // fd: the image; file_offset: the segment's; path: for errors.
  SegmentWriter(int fd, uint64_t file_offset, const std::string& path)
      : fd_(fd), file_offset_(file_offset), path_(path) {}
  // The page at `offset` in the segment (increasing), its bytes at p: they
  // must stay as they are until flush(), which page() calls itself when a
  // page does not continue the pending run.
  void page(const uint8_t* p, uint64_t offset);
  void hole();                                        // a page never touched: hashed as zeros, not written
  void write_now(const uint8_t* p, uint64_t offset);  // hashed and written at once (a copy about to change)
  void flush();                                       // writes the pending run
  uint64_t finish() {                                 // flushes; the segment's digest
    flush();
    return digest_.value();
  }
  uint64_t data_bytes() const { return data_bytes_; }  // written so far

 private:
  void write(const uint8_t* p, uint64_t len, uint64_t offset);
  int fd_;
  uint64_t file_offset_;
  const std::string& path_;
  Digest digest_;
  const uint8_t* run_ = nullptr;
  uint64_t run_offset_ = 0, run_len_ = 0, data_bytes_ = 0;
};

// The file both snapshots (in-process and external) write an image to: a
// unique temporary beside `path` (mkostemp), its mode `mode` less the
// umask, renamed over `path` by commit() and removed by the destructor
// otherwise, so that no client ever sees a half-written image.
class TempImageFile {
 public:
  TempImageFile(const std::string& path, unsigned mode);  // throws IoError
  ~TempImageFile();
  TempImageFile(const TempImageFile&) = delete;
  TempImageFile& operator=(const TempImageFile&) = delete;
  int fd() const { return fd_.get(); }
  const std::string& temp_path() const { return tmp_; }
  void commit();  // renames it into place; throws IoError

 private:
  std::string path_, tmp_;
  sys::UniqueFd fd_;
  bool committed_ = false;
};

// True when the page (kPageSize bytes, 8-byte aligned) is all zeros: such a
// page is a hole in the file, never written (docs/format.md, "Holes").
inline bool page_is_zero(const uint8_t* page) {
  const auto* words = reinterpret_cast<const uint64_t*>(page);
  for (size_t w = 0; w < kPageSize / 8; w += 8)
    if ((words[w] | words[w + 1] | words[w + 2] | words[w + 3] | words[w + 4] | words[w + 5] | words[w + 6] |
         words[w + 7]) != 0)
      return false;
  return true;
}

// The digest of a segment of `bytes` zeros (the gate stack's guard, whose
// file part is empty; a gate stack never touched): page by page, as every
// segment digest is computed.  No allocation.
uint64_t zero_segment_digest(uint64_t bytes);

// The header digest: xxh3 over the header bytes except the digest itself.
uint64_t compute_header_digest(const uint8_t* bytes, size_t size, size_t header_digest_offset);

}  // namespace subctx::image
