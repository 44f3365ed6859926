// Encodes the image header: ELF header, program headers and SUBCTX notes.
#pragma once

#include <cstdint>
#include <vector>

#include "image/format.hpp"

namespace subctx::image {

struct EncodedHeader {
  std::vector<uint8_t> bytes;       // file offset 0 .. end of notes
  size_t header_digest_offset = 0;  // of the u64 header digest in bytes
  size_t segment_digests_offset = 0;
  uint64_t data_start = 0;          // first page after the header
};

// Assigns page-aligned file offsets to the segments (in order, after the
// header) and encodes the header with the digests in info.  Returns the
// file size the segments need.
uint64_t layout_segments(ImageInfo& info, uint64_t data_start);
EncodedHeader encode_header(const ImageInfo& info);

// Stores the segment digests and computes the header digest, in place (no
// allocation: called while the image's memory is being copied).
void seal_header(EncodedHeader& header, const uint64_t* segment_digests, size_t count);

// The header digest: xxh3 over the header bytes except the digest itself.
uint64_t compute_header_digest(const uint8_t* bytes, size_t size, size_t header_digest_offset);

}  // namespace subctx::image
