#include "matchmaker/prefetch.hpp"

#include <fcntl.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>

namespace subctx::matchmaker {

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace {

// Views of the file at least this large are marked MADV_RANDOM.  The
// kernel's read-around on a fault reads up to read_ahead_kb (128 KiB by
// default) around it, and keeps widening it: on a cold page cache one
// query of a 32 MiB image read 27 MiB.  A smaller view can lose little to
// it, and each view is one more system call at map.  (The kernel ignores
// MADV_RANDOM on an executable view: code, and under the mprotect backend
// data that shares a stretch with code, docs/prefetch.md.)
constexpr uint64_t kRandomAdviceMinBytes = uint64_t{1} << 20;

// Cleared when the kernel refuses MADV_POPULATE_READ (before 5.14): its
// MADV_WILLNEED then only reads the pages in, each still faults once.
std::atomic<bool> populate_read_works{true};

struct HotView {
  void* addr;
  uint64_t len;
  uint64_t file_offset;
};

// The runs as views of the file; runs in segments a read may not touch
// (no PROT_READ) are left out.  The reader checked that each run lies in
// the file part of one segment.
std::vector<HotView> hot_views(const image::ImageInfo& info) {
  std::vector<HotView> out;
  out.reserve(info.hot_pages.size());
  for (const image::HotRun& run : info.hot_pages) {
    const image::SegmentRecord* s = info.segment_at(run.vaddr);
    if (!s || !(s->prot & PROT_READ)) continue;
    out.push_back({reinterpret_cast<void*>(run.vaddr), uint64_t{run.pages} * image::kPageSize,
                   s->offset + (run.vaddr - s->vaddr)});
  }
  return out;
}

// Whether the page cache holds the hot pages, judged by two of them: a
// page cache holds an image's pages all (warm) or few (evicted, never read)
// far more often than half, and a page missing still faults in as without
// the note.  Not the first run: reading the header read ahead into the
// first segments.
bool in_page_cache(const std::vector<HotView>& hot) {
  for (const HotView* v : {&hot[hot.size() / 2], &hot.back()}) {
    unsigned char vec = 0;
    if (mincore(v->addr, image::kPageSize, &vec) != 0 || !(vec & 1)) return false;
  }
  return true;
}

void populate(const HotView& v) {
  if (populate_read_works.load(std::memory_order_relaxed) && madvise(v.addr, v.len, MADV_POPULATE_READ) != 0 &&
      errno == EINVAL)
    populate_read_works.store(false, std::memory_order_relaxed);
  if (!populate_read_works.load(std::memory_order_relaxed)) madvise(v.addr, v.len, MADV_WILLNEED);
}

}  // namespace

PrefetchCounts prefetch_hot_pages(int fd, const image::ImageInfo& info, const std::vector<sys::Mapping>& views,
                                  const std::vector<bool>& from_file, bool always) {
  PrefetchCounts counts;
  if (info.hot_pages.empty()) return counts;
  const std::vector<HotView> hot = hot_views(info);
  if (hot.empty()) return counts;
  counts.cold = !in_page_cache(hot);
  // Warm: the first call's faults map the pages as cheaply as populating
  // them would (each fault maps the cached pages around it, 64 KiB), so
  // nothing is done unless asked (docs/prefetch.md, measured).
  if (!counts.cold && !always) return counts;
  // Cold: every read is started before any is waited for (the disk serves
  // them together); without it each page is one synchronous read.
  if (counts.cold)
    for (const HotView& v : hot)
      posix_fadvise(fd, static_cast<off_t>(v.file_offset), static_cast<off_t>(v.len), POSIX_FADV_WILLNEED);
  for (const HotView& v : hot) {
    populate(v);
    ++counts.runs;
    counts.pages += v.len / image::kPageSize;
  }
  // What a call touches beyond the recorded pages is read page by page.
  if (counts.cold)
    for (size_t i = 0; i < views.size() && i < from_file.size(); ++i)
      if (from_file[i] && views[i].size() >= kRandomAdviceMinBytes)
        madvise(views[i].get(), views[i].size(), MADV_RANDOM);
  return counts;
}

}  // namespace subctx::matchmaker
