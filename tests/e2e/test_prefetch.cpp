// Hot pages (docs/prefetch.md): `subctx train` records the pages calls
// touch in the image's hot-pages note; every map populates them.  The
// trained image is a copy of the basic image, rewritten by the real tool;
// a bad note is a copy of it with one field patched and the header resealed.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image/format.hpp"
#include "image/reader.hpp"
#include "support/e2e_test.hpp"
#include "sys/unique_fd.hpp"

namespace e2e {
namespace {

using subctx::Errc;
using subctx::Protection;
namespace fmt = subctx::image;

const std::string& trained_image() {
  static const std::string path = [] {
    const std::string p = copy_image(basic_image(), "trained.img");
    const ProcessResult r = run({paths::kSubctxTool, "train", p, "--call", "square:7", "--call", "bump:1"});
    if (!r.ok()) throw std::runtime_error("subctx train failed: " + r.describe());
    return p;
  }();
  return path;
}

fmt::ImageInfo read_info(const std::string& path) {
  subctx::sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("cannot open " + path);
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  return fmt::read_image(fmt::FileSource(fd.get(), static_cast<uint64_t>(size)), path);
}

// How many pages of the runs this process has present (/proc/self/pagemap bit 63).
uint64_t present_pages(const std::vector<fmt::HotRun>& runs) {
  subctx::sys::UniqueFd pm(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  uint64_t n = 0;
  for (const fmt::HotRun& r : runs)
    for (uint64_t p = 0; p < r.pages; ++p) {
      uint64_t e = 0;
      const off_t at = static_cast<off_t>((r.vaddr / fmt::kPageSize + p) * 8);
      if (pread(pm.get(), &e, 8, at) == 8 && (e >> 63)) ++n;
    }
  return n;
}

uint64_t total_pages(const std::vector<fmt::HotRun>& runs) {
  uint64_t n = 0;
  for (const auto& r : runs) n += r.pages;
  return n;
}

class Prefetch : public E2eTest {};

TEST_F(Prefetch, TrainWritesAVerifiedImageWhoseNoteListsFileBackedPages) {
  const ProcessResult r = run({paths::kSubctxTool, "train", copy_image(basic_image(), "t2.img"), "--call", "square:7"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("1 call; hot pages: "), std::string::npos) << r.out;
  const fmt::ImageInfo info = read_info(trained_image());
  ASSERT_FALSE(info.hot_pages.empty());
  for (const fmt::HotRun& run : info.hot_pages) {
    const fmt::SegmentRecord* s = info.segment_at(run.vaddr);
    ASSERT_NE(s, nullptr);
    EXPECT_LE(run.vaddr - s->vaddr + run.pages * fmt::kPageSize, s->filesz);
  }
  // The export's code page is among them: the call ran it.
  const fmt::ImageInfo plain = read_info(basic_image());
  EXPECT_EQ(info.header_digest == plain.header_digest, false);
  const ProcessResult verify = run({paths::kSubctxTool, "verify", trained_image()});
  EXPECT_TRUE(verify.ok()) << verify.describe();
  const ProcessResult inspect = run({paths::kSubctxTool, "inspect", trained_image()});
  EXPECT_NE(inspect.out.find("hot pages: " + std::to_string(info.hot_pages.size()) + " runs, " +
                             std::to_string(total_pages(info.hot_pages)) + " pages"),
            std::string::npos)
      << inspect.out;
  // Training again records the calls' pages, not the ones the old note populated.
  const ProcessResult again = run({paths::kSubctxTool, "train", trained_image(), "--call", "square:3"});
  EXPECT_TRUE(again.ok()) << again.describe();
}

TEST_F(Prefetch, TrainRefusesABadCommandLine) {
  const ProcessResult none = run({paths::kSubctxTool, "train", basic_image()});
  EXPECT_EQ(none.exit_code, 2) << none.describe();
  EXPECT_NE(none.err.find("at least one --call"), std::string::npos) << none.err;
  const std::string copy = copy_image(basic_image(), "t3.img");
  const ProcessResult unknown = run({paths::kSubctxTool, "train", copy, "--call", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.describe();
  EXPECT_NE(unknown.err.find("no export \"nosuch\""), std::string::npos) << unknown.err;
  EXPECT_TRUE(read_info(copy).hot_pages.empty()) << "a failed training leaves the image as it was";
}

// Drops the image from the page cache (it is clean and mapped nowhere) and
// returns how many of its hot pages are still cached.
uint64_t evict(const std::string& path, const fmt::ImageInfo& info) {
  subctx::sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  fdatasync(fd.get());
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  void* file = mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd.get(), 0);
  if (file == MAP_FAILED) return UINT64_MAX;
  uint64_t cached = 0;
  for (const fmt::HotRun& r : info.hot_pages) {
    const fmt::SegmentRecord* s = info.segment_at(r.vaddr);
    std::vector<unsigned char> vec(r.pages);
    if (mincore(static_cast<char*>(file) + s->offset + (r.vaddr - s->vaddr), r.pages * fmt::kPageSize, vec.data()) != 0)
      cached += r.pages;
    for (unsigned char v : vec) cached += v & 1;
  }
  munmap(file, static_cast<size_t>(size));
  return cached;
}

class PrefetchBackends : public E2eTest, public ::testing::WithParamInterface<Protection> {};

// With the image evicted from the page cache, every hot page is in the
// page tables right after the map, before any call; an untrained copy at
// the same addresses has fewer.  The image still maps, calls and unmaps
// under every backend.
TEST_P(PrefetchBackends, MapOfAnEvictedImagePopulatesTheHotPages) {
  if (GetParam() == Protection::Pkey && !pkeys_work())
    GTEST_SKIP()
        << "pkey_alloc fails here: no protection keys (the pkey backend is covered on machines that have them)";
  subctx::MapOptions o;
  o.protection = GetParam();
  const fmt::ImageInfo info = read_info(trained_image());
  const std::vector<fmt::HotRun>& runs = info.hot_pages;
  ASSERT_FALSE(runs.empty());
  uint64_t untrained = 0;
  {
    subctx::Subcontext sc = mm().request_map(copy_image(basic_image(), "plain.img"), o);
    untrained = present_pages(runs);
    mm().unmap(sc);
  }
  if (const uint64_t cached = evict(trained_image(), info); cached != 0)
    GTEST_SKIP() << cached << " hot pages of " << trained_image()
                 << " stay in the page cache after POSIX_FADV_DONTNEED (mapped by another process?)";
  subctx::Subcontext sc = mm().request_map(trained_image(), o);
  EXPECT_EQ(present_pages(runs), total_pages(runs));
  EXPECT_LT(untrained, total_pages(runs));
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 9), 81);
  mm().unmap(sc);
}

INSTANTIATE_TEST_SUITE_P(, PrefetchBackends,
                         ::testing::Values(Protection::None, Protection::Mprotect, Protection::Pkey),
                         [](const auto& info) { return std::string(subctx::protection_name(info.param)); });

// SUBCTX_PREFETCH=always populates the hot pages of an image in the page
// cache too (the default leaves them to the first call's faults).
TEST_P(PrefetchBackends, AlwaysPopulatesAWarmImage) {
  if (GetParam() == Protection::Pkey && !pkeys_work())
    GTEST_SKIP()
        << "pkey_alloc fails here: no protection keys (the pkey backend is covered on machines that have them)";
  subctx::MapOptions o;
  o.protection = GetParam();
  const std::vector<fmt::HotRun> runs = read_info(trained_image()).hot_pages;
  struct Always {
    Always() { reinstall("always"); }
    ~Always() { reinstall(nullptr); }
    static void reinstall(const char* mode) {
      mm().finalize();
      if (mode) setenv("SUBCTX_PREFETCH", mode, 1);
      else unsetenv("SUBCTX_PREFETCH");
      mm().init();
    }
  } always;
  subctx::Subcontext sc = mm().request_map(trained_image(), o);
  EXPECT_EQ(present_pages(runs), total_pages(runs));
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 5), 25);
  mm().unmap(sc);
}

// SUBCTX_PREFETCH: on (the default), off, always; anything else fails every map.
TEST_F(Prefetch, EnvironmentSwitch) {
  for (const char* mode : {"on", "off", "always"}) {
    SpawnOptions env;
    env.env = {std::string("SUBCTX_PREFETCH=") + mode};
    const ProcessResult r = run({paths::kSubctxTool, "call", trained_image(), "square", "9"}, env);
    EXPECT_TRUE(r.ok()) << mode << ": " << r.describe();
    EXPECT_EQ(r.out, "81\n") << mode;
  }
  SpawnOptions env;
  env.env = {"SUBCTX_PREFETCH=yes"};
  const ProcessResult bad = run({paths::kSubctxTool, "call", trained_image(), "square", "9"}, env);
  EXPECT_EQ(bad.exit_code, 1) << bad.describe();
  EXPECT_NE(bad.err.find("SUBCTX_PREFETCH=yes is not a prefetch mode; use on, off or always"), std::string::npos)
      << bad.err;
}

// A bad note is refused by name, with the run or the limit.
TEST_F(Prefetch, BadNoteIsRefused) {
  const ImageLayout layout = read_layout(trained_image());
  ASSERT_TRUE(layout.notes.count(fmt::kNoteHotPages));
  const uint64_t desc = layout.notes.at(fmt::kNoteHotPages).desc_offset;

  const std::string outside = copy_image(trained_image(), "hot-outside.img");
  patch_value<uint64_t>(outside, desc + 4, 0x10000);  // run 0's vaddr: below every segment
  reseal(outside);
  expect_map_refused(outside, Errc::BadImage,
                     {outside, "hot-pages run 0 (0x10000", "not inside the file part of one segment"},
                     layout.all_ranges());

  const std::string many = copy_image(trained_image(), "hot-many.img");
  patch_value<uint32_t>(many, desc, fmt::kMaxHotRuns + 1);
  reseal(many);
  expect_map_refused(many, Errc::Limit,
                     {many, "hot-pages note lists " + std::to_string(fmt::kMaxHotRuns + 1) + " runs",
                      "at most " + std::to_string(fmt::kMaxHotRuns) + " (kMaxHotRuns)"},
                     layout.all_ranges());
  expect_valid_map_works();
}

}  // namespace
}  // namespace e2e
