// What every benchmark client needs: a private temp directory for images, a
// way to run a bench server and read its report, the size of an image on
// disk, and a map of an image with plain mmap() (the floor for request_map).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace benchmark {
class State;
}
namespace subctx {
class Subcontext;
struct MapOptions;
}  // namespace subctx

namespace bench {

using TempDir = subctx::testing::TempDir;

// The process-wide temp directory (under $SUBCTX_BENCH_TMPDIR, else /tmp),
// created on first use and removed at exit.
TempDir& temp_dir();

// A program built next to this one (bench servers live in the same folder).
std::string sibling_program(const std::string& name);

// A program run to its end: its wait status and its stdout.
struct Spawned {
  int status = -1;  // as waitpid reports it
  std::string out;
};
// Runs argv[0] with argv, stdout captured, stderr inherited (or /dev/null
// when quiet); throws std::runtime_error when it cannot be started.
Spawned spawn(const std::vector<std::string>& argv, bool quiet = false);

// "key value" lines, as the bench servers print them.
using Report = std::map<std::string, double>;

// Runs argv[0] with argv, stdout captured, stderr inherited; throws
// std::runtime_error when it does not exit with status 0.
Report run_server(const std::vector<std::string>& argv);
double report_value(const Report& r, const std::string& key);

// Runs a bench server that writes `image`, then maps it once to check that
// it fits this client's address space.  A server image lives at the server's
// own (randomized) addresses, so it can collide with this client's mappings;
// on AddressConflict the image is written again by a new server process.
Report make_image(const std::string& image, const std::vector<std::string>& argv);

struct ImageStats {
  uint64_t file_bytes = 0;     // st_size
  uint64_t disk_bytes = 0;     // st_blocks * 512
  uint64_t virtual_bytes = 0;  // sum of PT_LOAD p_memsz
  uint32_t segments = 0;       // PT_LOAD count
};
ImageStats image_stats(const std::string& image);

// The image's segments as [lo, hi) address ranges (page-aligned PT_LOADs).
struct Range {
  uint64_t lo = 0, hi = 0;
};
std::vector<Range> image_ranges(const std::string& image);

// How many pages of `ranges` this process has present in its page tables
// (/proc/self/pagemap bit 63): what an mprotect of the ranges must rewrite.
// Reads only the page tables, never the memory.  *blocks_2m (when given):
// how many 2 MiB blocks hold a present page, a lower bound on the page
// tables of 512 entries that mprotect walks over.
uint64_t present_pages(const std::vector<Range>& ranges, uint64_t* blocks_2m = nullptr);

// The image's segments mapped with plain mmap(MAP_FIXED_NOREPLACE) from an
// fd opened once: no checks, no registry.  What request_map cannot beat.
class RawImageMap {
 public:
  explicit RawImageMap(const std::string& image);
  ~RawImageMap();
  RawImageMap(const RawImageMap&) = delete;
  RawImageMap& operator=(const RawImageMap&) = delete;
  void map();  // throws on failure
  void unmap();

 private:
  struct Piece {
    uint64_t addr, len, offset;
    int prot;
    bool anonymous;
  };
  int fd_ = -1;
  std::vector<Piece> pieces_;
  size_t mapped_ = 0;
};

// request_map(image, options), or an invalid Subcontext after
// SkipWithError("request_map failed: ...").
subctx::Subcontext map_or_skip(benchmark::State& state, const std::string& image, const subctx::MapOptions& options);

// Google Benchmark's main, with errors reported instead of terminate().
int benchmark_main(int argc, char** argv);
// The registered benchmarks, run (after Initialize and the program's own
// flags): 1 and a line on stderr when one throws.
int run_benchmarks(const char* argv0);

}  // namespace bench
