// A subcontext's segments (src/sys/segments.cpp): unmapping them takes the
// image's views as far as they still are views of the image, never memory
// the client mapped in a hole a call left.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "sys/segments.hpp"

namespace subctx::sys {
namespace {

constexpr size_t kPage = 4096;

bool mapped(uint64_t a) {
  unsigned char v;
  return mincore(reinterpret_cast<void*>(a), kPage, &v) == 0;
}

struct ImageFile {
  int fd = -1;
  struct stat st {};
  ImageFile() {
    char path[] = "/tmp/segments_test.XXXXXX";
    fd = mkstemp(path);
    unlink(path);
    EXPECT_EQ(ftruncate(fd, 8 * kPage), 0);
    fstat(fd, &st);
  }
  ~ImageFile() { close(fd); }
};

// Four file pages and two anonymous pages, adjacent.
struct Layout {
  ImageFile file;
  uint64_t base = 0;
  Segments make() {
    void* p = mmap(nullptr, 6 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base = reinterpret_cast<uint64_t>(p);
    void* view = mmap(p, 4 * kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, file.fd, 0);
    EXPECT_EQ(view, p);
    std::vector<Mapping> maps;
    maps.emplace_back(p, 4 * kPage);
    maps.emplace_back(reinterpret_cast<void*>(base + 4 * kPage), 2 * kPage);
    return Segments(std::move(maps), {true, false}, file.st.st_dev, file.st.st_ino);
  }
};

TEST(Segments, DestroyedTheyUnmapEverythingTheyStillOwn) {
  Layout l;
  {
    Segments s = l.make();
    EXPECT_EQ(s.size(), 2u);
    EXPECT_TRUE(s.from_file(0));
    EXPECT_FALSE(s.from_file(1));
  }
  for (uint64_t a = l.base; a < l.base + 6 * kPage; a += kPage) EXPECT_FALSE(mapped(a)) << a - l.base;
}

TEST(Segments, MemoryTheClientMappedInAHoleOfAViewSurvives) {
  Layout l;
  uint64_t hole = 0;
  {
    Segments s = l.make();
    // A call gave a page of the view back; the client mapped its own there.
    hole = l.base + kPage;
    ASSERT_EQ(munmap(reinterpret_cast<void*>(hole), kPage), 0);
    void* mine = mmap(reinterpret_cast<void*>(hole), kPage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT_EQ(reinterpret_cast<uint64_t>(mine), hole);
    static_cast<char*>(mine)[0] = 42;
    const Segments::Ranges r = s.ranges_to_unmap(/*intact=*/false, {});
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0], std::make_pair(l.base, hole));
    EXPECT_EQ(r[1], std::make_pair(hole + kPage, l.base + 6 * kPage));
  }
  EXPECT_TRUE(mapped(hole));
  EXPECT_EQ(reinterpret_cast<char*>(hole)[0], 42);
  EXPECT_FALSE(mapped(l.base));
  EXPECT_FALSE(mapped(l.base + 2 * kPage));
  EXPECT_FALSE(mapped(l.base + 5 * kPage));
  munmap(reinterpret_cast<void*>(hole), kPage);
}

TEST(Segments, IntactTheyGoWholeWithTheExtraRangesInTheSameCalls) {
  Layout l;
  Segments s = l.make();
  void* extra = mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const uint64_t e = reinterpret_cast<uint64_t>(extra);
  const Segments::Ranges r = s.ranges_to_unmap(/*intact=*/true, {{e, e + kPage}});
  // The six adjacent pages are in one range (with the extra page too when
  // the kernel put it next to them).
  size_t covering = 0;
  for (const auto& [lo, hi] : r)
    if (lo <= l.base && hi >= l.base + 6 * kPage) ++covering;
  EXPECT_EQ(covering, 1u);
  s.unmap(/*intact=*/true, {{e, e + kPage}});
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(mapped(e));
  EXPECT_FALSE(mapped(l.base + 3 * kPage));
}

TEST(Segments, AMovedFromOwnerOwnsNothing) {
  Layout l;
  Segments a = l.make();
  Segments b = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.size(), 2u);
  a = Segments();  // unmaps nothing
  EXPECT_TRUE(mapped(l.base));
}

}  // namespace
}  // namespace subctx::sys
