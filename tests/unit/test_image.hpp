// Builds valid images in memory for the reader's tests and the fuzzer's
// seeds, with the real writer (layout_segments, encode_header, seal_header)
// and real xxh3 digests over segment data placed in the buffer.  Also finds
// notes and fields in the encoded bytes so that tests can corrupt exactly one
// field, and re-seals the header digest afterwards when they need to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "image/format.hpp"

namespace subctx::test {

// A valid ImageInfo (offsets and digests not yet assigned):
//   0  0x400000 +0x2000 r-x file   exports, fflush
//   1  0x402000 +0x1000 r-- file
//   2  0x600000 +0x3000 rw- heap   tcb, stdout/stderr FILEs (1 page in the file, 2 zero pages)
//   3  0x7f0000000000 +0x1000 --- gate guard (no file data)
//   4  0x7f0000001000 +0x4000 rw- gate stack (no file data)
//   5  0x7ffd00000000 +0x2000 rw- stack
// and a vDSO record at 0x7ffd10000000 +0x2000, and sample_identity().
image::ImageInfo sample_info();

// A valid identity: cwd /srv/data, umask 027, pid 4242; fds 3 (file), 4
// (directory), 5 (file, sharing fd 3's open file description), 6
// (/dev/urandom), 7 (pipe, dropped), 9 (socket, dropped); SIGPIPE ignored,
// SIGXFSZ default.
image::IdentityRecord sample_identity();

// The smallest valid image: one r-x page, one rw- page (the thread record
// at its start, the gate stack at its end), no vDSO record, no descriptors
// (cwd "/", pid 1000).
image::ImageInfo small_info();

struct TestImage {
  image::ImageInfo info;       // as written: offsets, digests, header_digest, file_size
  std::vector<uint8_t> bytes;  // the whole file
  size_t header_size = 0;      // ELF header + program headers + notes
  size_t header_digest_offset = 0;
  size_t segment_digests_offset = 0;
  uint64_t data_start = 0;

  // Offset in bytes of the SUBCTX note of this type (its namesz field), or 0.
  size_t note(uint32_t type) const;
  // Offset of that note's descriptor.
  size_t desc(uint32_t type) const { return note(type) + 12 + 8; }
  // Offset of program header i (0 is PT_NOTE, 1 + k is segment k).
  static size_t phdr(size_t i) { return 64 + i * 56; }

  template <class T>
  T get(size_t off) const {
    T v;
    std::memcpy(&v, bytes.data() + off, sizeof v);
    return v;
  }
  template <class T>
  void put(size_t off, T v) {
    std::memcpy(bytes.data() + off, &v, sizeof v);
  }

  // Recomputes the header digest over the header as the bytes now describe
  // it (notes size from the PT_NOTE entry, digest note found by walking).
  void reseal();
};

// Lays out the segments, fills each with a recognizable pattern (filesz
// bytes; the rest of memsz is zero) with the thread pointer's own address
// at the thread pointer (as glibc's TCB starts), computes the segment
// digests and seals the header.
TestImage build_image(image::ImageInfo info);

// The notes region decoded as it is in the bytes, for tests that restructure
// it (drop, shorten, reorder or add notes).  `name` holds the raw owner bytes
// (namesz = name.size(), so "SUBCTX" with its NUL is 7 bytes).
struct RawNote {
  std::string name;
  uint32_t type = 0;
  std::vector<uint8_t> desc;
};
std::vector<RawNote> read_notes(const TestImage& t);
RawNote subctx_note(uint32_t type, std::vector<uint8_t> desc);
// Encodes notes in place of the old ones (the header stays below
// data_start), updates the PT_NOTE size and, when a digest note is present,
// re-seals the header.
void write_notes(TestImage& t, const std::vector<RawNote>& notes);

// The pattern byte at offset i of segment k's file data.
inline uint8_t pattern_byte(size_t k, uint64_t i) { return static_cast<uint8_t>(0x11 * (k + 1) + (i * 7) + (i >> 8)); }

}  // namespace subctx::test
