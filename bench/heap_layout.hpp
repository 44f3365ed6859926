// The memory a bench image server snapshots: a heap region in which a given
// share of fixed-size runs holds data and the rest is zero, plus extra
// segments.  Also the floor a snapshot is compared with: writing just the
// data runs of the heap to a sparse file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bench {

struct HeapLayout {
  uint64_t bytes = 0;             // heap size
  uint64_t run_bytes = 64 << 10;  // data and zero runs alternate at this grain
  unsigned fill_pct = 100;        // share of runs that hold data
  bool touch_zero = false;        // zero runs written with zeros (present pages) or never touched
  uint8_t* base = nullptr;

  uint64_t runs() const { return (bytes + run_bytes - 1) / run_bytes; }
  // Runs i with data are spread evenly: 50% is every other run.
  bool has_data(uint64_t i) const { return (i + 1) * fill_pct / 100 > i * fill_pct / 100; }
  uint64_t run_len(uint64_t i) const { return i + 1 < runs() ? run_bytes : bytes - i * run_bytes; }
  uint64_t data_bytes() const;
};

// Maps the heap (anonymous, private) and fills it: every data page gets a
// non-zero byte pattern; zero runs are written with zeros or left untouched.
void build_heap(HeapLayout& heap);

// Writes each data run to `path` at its heap offset, sizes the file to the
// heap (holes for the zero runs), closes and removes it.  Returns seconds.
double dump_floor(const HeapLayout& heap, const std::string& path);

// Faults in and frees `bytes` of anonymous memory, so that the page cache a
// timed write allocates next comes from memory the host has already backed
// (in a VM a page touched for the first time costs several times more).
void prewarm_memory(uint64_t bytes);

// n one-page mappings with alternating protections (rw-, r--), so that the
// kernel cannot merge them and each becomes one segment of the image.
void make_extra_segments(size_t n);

}  // namespace bench
