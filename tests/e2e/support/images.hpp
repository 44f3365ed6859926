// Images for the end-to-end tests: built by running the real servers into a
// per-process temporary directory, then copied, corrupted and re-sealed by
// the error tests.  Patches are computed from the file's own ELF program
// headers and SUBCTX notes (an independent reading of docs/format.md).
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "image/format.hpp"

namespace e2e {

// The directory this test process writes into (created on first use,
// removed at exit unless SUBCTX_E2E_KEEP is set).
const std::string& temp_dir();
// temp_dir() + "/" + name
std::string temp_path(const std::string& name);

// Runs `server [args...] temp_path(name)`; throws unless it exits 0 and
// writes the image.  An image that overlaps this process's mappings (ASLR
// made them meet) is written again, up to 5 times.  Returns the image path.
std::string build_image(const std::string& server, const std::string& name, const std::vector<std::string>& args = {});

// Images of the test servers, built once per test process.
const std::string& basic_image();    // basic_server: square bump hyp say
const std::string& feature_image();  // e2e_feature_server
const std::string& c_image();        // e2e_c_server

struct Range {
  uint64_t lo = 0, hi = 0;
};

struct NoteLocation {
  uint64_t desc_offset = 0;  // in the file
  uint32_t desc_size = 0;
};

struct ImageLayout {
  uint64_t file_size = 0;
  std::vector<Elf64_Phdr> phdrs;           // [0] is the PT_NOTE
  uint64_t header_end = 0;                 // end of the notes
  std::map<uint32_t, NoteLocation> notes;  // SUBCTX notes by type (image/format.hpp)
  Range vdso;                              // the vDSO forwarder's range; {0,0} if none

  static uint64_t phdr_offset(size_t i) { return sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr); }
  std::vector<Range> segments() const;    // the PT_LOAD ranges, in order
  std::vector<Range> all_ranges() const;  // segments and the vDSO forwarder
  uint64_t header_digest_offset() const;  // first field of the digests note
};

ImageLayout read_layout(const std::string& path);

// The image's records, as the library reads them (image/reader.hpp).
subctx::image::ImageInfo read_image_info(const std::string& path);

// The lowest address any process's [stack] may grow down to: the kernel
// puts its top at random up to 16 GiB below 0x7ffffffff000 (x86-64, 4-level
// page tables); then RLIMIT_STACK (unlimited counts as 8 MiB) and 4 MiB
// for the guard gap.  No image segment lies above it (the snapshot moves
// the server's stack).
uint64_t lowest_stack_room();

// Copies an image keeping its holes (mode 0644); returns the copy's path in temp_dir().
std::string copy_image(const std::string& from, const std::string& name);

void patch_bytes(const std::string& path, uint64_t offset, const void* data, size_t size);
template <class T>
void patch_value(const std::string& path, uint64_t offset, T value) {
  patch_bytes(path, offset, &value, sizeof value);
}
template <class T>
T read_value(const std::string& path, uint64_t offset);

// Recomputes and stores the header digest (subctx's compute_header_digest),
// so that a deliberately corrupted field gets past the digest check.
void reseal(const std::string& path);

// xxh3 of the whole file.
uint64_t file_hash(const std::string& path);

}  // namespace e2e
