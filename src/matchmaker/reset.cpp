// Reset to pristine (docs/containment.md): a subcontext's segments are
// private views of the image file, so the pages its calls wrote are the
// anonymous pages in them.  Dropping those pages (MADV_DONTNEED) brings back
// the image's bytes on the next touch; the kernel finds them for us
// (PAGEMAP_SCAN, else /proc/self/pagemap), so the cost follows the dirtied
// pages, not the image's size.
#include "matchmaker/reset.hpp"
#include "fault/children.hpp"
#include "fault/threads.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "fault/fault_handler.hpp"
#include "fault/syscalls.hpp"
#include "image/format.hpp"
#include "matchmaker/identity.hpp"
#include "matchmaker/registry.hpp"
#include "sys/env.hpp"
#include "sys/io.hpp"
#include "sys/pagemap.hpp"
#include "sys/proc_maps.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::matchmaker {

namespace {

// PAGEMAP_SCAN (Linux 6.7; Debian 12's headers predate it).
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
struct PageRegion {
  uint64_t start, end, categories;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsFile = 1u << 2, kPageIsPresent = 1u << 3, kPageIsSwapped = 1u << 4, kPageIsPfnZero = 1u << 5;
// /proc/PID/pagemap entry bits.

}  // namespace

pid_t this_pid() {
  static std::atomic<pid_t>* const slot = [] {
    void* p = mmap(nullptr, image::kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return static_cast<std::atomic<pid_t>*>(nullptr);
    if (madvise(p, image::kPageSize, MADV_WIPEONFORK) != 0) {
      munmap(p, image::kPageSize);
      return static_cast<std::atomic<pid_t>*>(nullptr);
    }
    return new (p) std::atomic<pid_t>(0);
  }();
  if (!slot) return getpid();
  pid_t pid = slot->load(std::memory_order_relaxed);
  if (!pid) slot->store(pid = getpid(), std::memory_order_relaxed);
  return pid;
}

namespace {

// /proc/self/pagemap, opened once per process (a forked child opens its own:
// the file stays bound to the process that opened it).  No lock: a fork
// while another thread holds one would leave it held in the child.  The
// owner's pid and the descriptor are one word, replaced by compare-exchange.
int pagemap_fd() {
  static std::atomic<uint64_t> cached{0};  // pid << 32 | (uint32_t) fd; 0: none yet
  const pid_t me = this_pid();
  uint64_t seen = cached.load(std::memory_order_acquire);
  if (seen && static_cast<pid_t>(seen >> 32) == me) return static_cast<int32_t>(static_cast<uint32_t>(seen));
  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  const uint64_t mine = (static_cast<uint64_t>(static_cast<uint32_t>(me)) << 32) | static_cast<uint32_t>(fd);
  while (!cached.compare_exchange_weak(seen, mine, std::memory_order_acq_rel, std::memory_order_acquire)) {
    if (seen && static_cast<pid_t>(seen >> 32) == me) {  // another thread of this process was first
      if (fd >= 0) close(fd);
      return static_cast<int32_t>(static_cast<uint32_t>(seen));
    }
  }
  // The parent's descriptor, inherited by this child: ours now replaces it.
  if (seen && static_cast<int32_t>(static_cast<uint32_t>(seen)) >= 0)
    close(static_cast<int32_t>(static_cast<uint32_t>(seen)));
  return fd;
}

void add_run(std::vector<std::pair<uint64_t, uint64_t>>* runs, uint64_t lo, uint64_t hi) {
  if (!runs->empty() && runs->back().second == lo) runs->back().second = hi;
  else runs->emplace_back(lo, hi);
}

// Anonymous (written, or swapped out) pages in [lo, hi).  Returns false when
// PAGEMAP_SCAN is not there.
bool scan_with_ioctl(int fd, uint64_t lo, uint64_t hi, std::vector<std::pair<uint64_t, uint64_t>>* runs) {
  PageRegion vec[256];
  uint64_t at = lo;
  while (at < hi) {
    PmScanArg a{};
    a.size = sizeof a;
    a.start = at;
    a.end = hi;
    a.vec = reinterpret_cast<uint64_t>(vec);
    a.vec_len = std::size(vec);
    a.category_inverted = kPageIsFile | kPageIsPfnZero;
    a.category_mask = kPageIsFile | kPageIsPfnZero;
    a.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    a.return_mask = kPageIsPresent | kPageIsSwapped;
    const int n = ioctl(fd, kPagemapScan, &a);
    if (n < 0) return false;
    for (int i = 0; i < n; ++i) add_run(runs, vec[i].start, vec[i].end);
    if (a.walk_end <= at) break;
    at = a.walk_end;
  }
  return true;
}

void scan_with_read(int fd, uint64_t lo, uint64_t hi, std::vector<std::pair<uint64_t, uint64_t>>* runs) {
  constexpr uint64_t kChunk = 4096;  // entries per read
  std::vector<uint64_t> entries(kChunk);
  for (uint64_t at = lo; at < hi;) {
    const uint64_t pages = std::min<uint64_t>(kChunk, (hi - at) / image::kPageSize);
    const ssize_t got = pread(fd, entries.data(), pages * 8, static_cast<off_t>(at / image::kPageSize * 8));
    if (got <= 0) {
      add_run(runs, at, hi);  // unknown: drop it all, a reset must not leave a written page behind
      return;
    }
    const uint64_t n = static_cast<uint64_t>(got) / 8;
    for (uint64_t k = 0; k < n; ++k) {
      const uint64_t e = entries[k];
      if (sys::pagemap::populated(e) && !(e & sys::pagemap::kFileOrShared))
        add_run(runs, at + k * image::kPageSize, at + (k + 1) * image::kPageSize);
    }
    at += n * image::kPageSize;
  }
}

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

// The segments' mappings, adjacent ones (a library's segments) as one
// range: everything the image gave, not the vDSO forwarder (its page is the
// Matchmaker's).
Ranges segment_ranges(const detail::SubcontextState& s) {
  const uint64_t vdso = s.info.vdso.base;
  Ranges ranges;
  for (const sys::Mapping& m : s.segments.mappings())
    if (!(vdso && m.begin() == vdso)) ranges.emplace_back(m.begin(), m.end());
  std::sort(ranges.begin(), ranges.end());
  Ranges merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && merged.back().second == r.first) merged.back().second = r.second;
    else merged.push_back(r);
  }
  return merged;
}

// A scan call costs about as much as walking a few page tables, so the
// gaps between segment ranges are scanned along where that is cheap: the
// subcontext's own reserved gaps and vDSO forwarder (no pages but the
// forwarder's), and any gap up to kBridge (one page table's reach, whatever
// lies there).  What a scan finds in a gap is not the subcontext's: clip()
// leaves it out.
constexpr uint64_t kBridge = uint64_t{2} << 20;

bool covered(const Ranges& own, uint64_t lo, uint64_t hi) {  // own: sorted
  for (const auto& [a, b] : own) {
    if (a > lo) break;
    if (b > lo) lo = b;
    if (lo >= hi) return true;
  }
  return lo >= hi;
}

Ranges scan_spans(const detail::SubcontextState& s, const Ranges& segments) {
  Ranges own;
  for (const sys::Mapping& m : s.protection.reservations()) own.emplace_back(m.begin(), m.end());
  if (s.info.vdso.base) own.emplace_back(s.info.vdso.base, s.info.vdso.base + s.info.vdso.size);
  std::sort(own.begin(), own.end());
  Ranges spans;
  for (const auto& r : segments) {
    if (!spans.empty() && (r.first - spans.back().second <= kBridge || covered(own, spans.back().second, r.first)))
      spans.back().second = r.second;
    else spans.push_back(r);
  }
  return spans;
}

// The runs found (sorted) that lie in the segment ranges (sorted), as runs.
void clip(const Ranges& found, const Ranges& segments, Ranges* runs) {
  size_t j = 0;
  for (const auto& [lo, hi] : found) {
    while (j < segments.size() && segments[j].second <= lo) ++j;
    for (size_t k = j; k < segments.size() && segments[k].first < hi; ++k) {
      const uint64_t a = std::max(lo, segments[k].first), b = std::min(hi, segments[k].second);
      if (a < b) add_run(runs, a, b);
    }
  }
}

// Unmaps what subcontext code mapped during calls.
void release_sub_mappings(detail::SubcontextState& s, ResetInfo* info) {
  fault::SubMappings& t = s.sub_maps;
  for (uint32_t i = 0; i < t.count; ++i) {
    const auto [lo, hi] = t.ranges[i];
    if (munmap(reinterpret_cast<void*>(lo), hi - lo) == 0) {
      ++info->mappings_released;
      info->bytes_released += hi - lo;
    }
  }
  t.count = 0;
  t.bytes = 0;
  t.lost = false;
}

// Calls unmapped, moved or re-protected parts of the segments: the views of
// the image come back where they were, with their permissions, and the
// protection is set up again.  Fails (the caller poisons the subcontext)
// when a client mapping took a range.
void restore_layout(detail::SubcontextState& s) {
  const std::string who = "cannot reset " + detail::subcontext_name(s);
  sys::SelfMaps maps;
  std::string why;
  if (!sys::read_self_maps(&maps, &why)) throw SystemError(who + ": " + why);
  for (const auto& seg : s.info.segments) {
    const uint64_t file_end = seg.vaddr + std::min(image::page_round_up(seg.filesz), seg.memsz);
    uint64_t at = seg.vaddr;
    auto put_back = [&](uint64_t lo, uint64_t hi) {
      if (lo >= hi) return;
      const bool file = lo < file_end;
      const uint64_t end = file ? std::min(hi, file_end) : hi;
      void* p = file ? mmap(reinterpret_cast<void*>(lo), end - lo, seg.prot, MAP_PRIVATE | MAP_FIXED_NOREPLACE,
                            s.image_fd.get(), static_cast<off_t>(seg.offset + (lo - seg.vaddr)))
                     : mmap(reinterpret_cast<void*>(lo), end - lo, seg.prot,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p != reinterpret_cast<void*>(lo)) {
        if (p != MAP_FAILED) munmap(p, end - lo);
        throw SystemError(who + ": cannot map [" + sys::hex(lo) + "-" + sys::hex(end) +
                          ") back: " + sys::errno_text(errno));
      }
      if (end < hi) {  // the anonymous tail of the segment
        void* q = mmap(reinterpret_cast<void*>(end), hi - end, seg.prot,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (q != reinterpret_cast<void*>(end))
          throw SystemError(who + ": cannot map [" + sys::hex(end) + "-" + sys::hex(hi) + ") back");
      }
    };
    for (const sys::MapEntry& e : maps.entries) {
      if (!e.overlaps(seg.vaddr, seg.end())) continue;
      const uint64_t lo = std::max<uint64_t>(e.start, seg.vaddr), hi = std::min<uint64_t>(e.end, seg.end());
      const bool ours_file = e.inode == s.ino && e.dev_major == major(s.dev) && e.dev_minor == minor(s.dev) &&
                             e.offset + (lo - e.start) == seg.offset + (lo - seg.vaddr);
      const bool ours_anon = e.inode == 0 && e.path.empty() && lo >= file_end;
      if (!ours_file && !ours_anon)
        throw AddressConflict(who + ": part of its segment [" + sys::hex(seg.vaddr) + "-" + sys::hex(seg.end()) +
                              ") that a call unmapped is now a client mapping: " + std::string(e.line) +
                              "; unmap the subcontext and map it again");
      put_back(at, lo);
      at = hi;
    }
    put_back(at, seg.end());
    if (s.protection.backend() != gate::Backend::Mprotect)
      mprotect(reinterpret_cast<void*>(seg.vaddr), seg.memsz, seg.prot);  // calls may have changed them
  }
  s.protection.reset();
  setup_protection(registry(), s, s.map_options);
  set_address_map(s);
  s.sub_maps.layout_changed = false;
  s.sub_maps.made_executable = false;  // what its code made executable is gone: the new plan's own permissions
}

// Anonymous pages in [lo, hi) into *runs: PAGEMAP_SCAN, probed on first
// use (the kernel does not change), else a read of /proc/self/pagemap
// (SUBCTX_PAGEMAP_SCAN=off forces it, as older kernels get).
void scan(int fd, uint64_t lo, uint64_t hi, Ranges* runs) {
  static bool have_ioctl = [] {
    const char* v = env::value("SUBCTX_PAGEMAP_SCAN");
    return !(v && !std::strcmp(v, "off"));
  }();
  if (!(have_ioctl && (have_ioctl = scan_with_ioctl(fd, lo, hi, runs)))) scan_with_read(fd, lo, hi, runs);
}

// Whether a call may have run since the map or the last reset.  Every call
// pushes its return address at the top of the gate stack: while that page
// of the image is as the image has it (not an anonymous page), none did.
bool gate_stack_written(const detail::SubcontextState& s) {
  const int fd = pagemap_fd();
  if (fd < 0 || s.stack_top < 8) return true;
  const uint64_t page = (s.stack_top - 8) & ~(image::kPageSize - 1);
  Ranges runs;
  scan(fd, page, page + image::kPageSize, &runs);
  return !runs.empty();
}

}  // namespace

DirtyScan scan_dirty(const detail::SubcontextState& s) {
  DirtyScan out;
  const Ranges segments = segment_ranges(s);
  const int fd = pagemap_fd();
  if (fd < 0) {
    out.exact = false;
    for (const auto& [lo, hi] : segments) add_run(&out.runs, lo, hi);
  } else {
    Ranges found;
    for (const auto& [lo, hi] : scan_spans(s, segments)) scan(fd, lo, hi, &found);
    clip(found, segments, &out.runs);
  }
  for (const auto& [lo, hi] : out.runs) out.pages += (hi - lo) / image::kPageSize;
  return out;
}

void note_dirty(detail::SubcontextState& s, uint64_t pages) {
  s.dirty_pages.store(pages, std::memory_order_relaxed);
  if (pages > s.peak_dirty_pages.load(std::memory_order_relaxed))
    s.peak_dirty_pages.store(pages, std::memory_order_relaxed);
}

detail::ImageStamp stamp_of(const struct stat& st) {
  detail::ImageStamp t;
  t.size = st.st_size;
  t.mtime = st.st_mtim;
  t.ctime = st.st_ctim;
  t.nlink = st.st_nlink;
  t.mode = st.st_mode;
  t.uid = st.st_uid;
  t.gid = st.st_gid;
  return t;
}

namespace {
bool same_time(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }
}  // namespace

std::string image_change(const detail::SubcontextState& s) {
  struct stat st;
  if (!s.image_fd || fstat(s.image_fd.get(), &st) != 0) return "";
  const detail::ImageStamp now = stamp_of(st), &was = s.stamp;
  std::string what;
  if (now.size != was.size) {
    what = "its size went from " + std::to_string(was.size) + " to " + std::to_string(now.size) + " bytes";
  } else if (!same_time(now.mtime, was.mtime)) {
    what = "it was written: its modification time moved";
  } else if (!same_time(now.ctime, was.ctime) && now.nlink == was.nlink && now.mode == was.mode && now.uid == was.uid &&
             now.gid == was.gid) {
    what = "its status change time moved with its links, mode and owner unchanged";
  } else {
    return "";
  }
  return "the image file " + s.path + " changed on disk since it was mapped (" + what +
         "): replace images by rename (write the new image to another file in the same directory, then rename() it "
         "over the old name), never by overwriting or truncating a mapped one (docs/containment.md)";
}

ResetInfo reset_state(detail::SubcontextState& s) {
  if (!s.mapped) detail::throw_unmapped(s);
  // The pages a reset drops come back from the file: from a changed file
  // they would be the new image's bytes under the old layout.
  if (const std::string changed = image_change(s); !changed.empty())
    throw BadImage("cannot reset " + detail::subcontext_name(s) + " onto its image: " + changed +
                   "; unmap it and map the image again");
  ResetInfo info;
  // Its threads end first (they may be anywhere in its code); whatever they
  // wrote, outside calls too, is scanned below.
  const bool threads_ran = s.threads_ran.load(std::memory_order_acquire);
  fault::stop_threads(s);
  fault::stop_children(s);  // programs it started are not in its snapshot either
  s.thread_fault_state.store(0, std::memory_order_release);
  release_sub_mappings(s, &info);
  const DescriptorReset d = reset_descriptors(s);
  info.fds_closed = d.closed;
  info.fds_restored = d.restored;
  // Without Syscall User Dispatch nothing saw calls unmap part of the
  // segments (and a client mapping may sit in the hole): the layout is
  // checked against /proc/self/maps every time.
  const bool tracked = fault::syscall_dispatch_available() && !s.sub_maps.lost;
  if (!tracked || s.sub_maps.layout_changed || !s.protection.released().empty()) {
    restore_layout(s);
    info.layout_restored = true;
  }
  // Under the pkey and mprotect backends client code cannot write the
  // segments (they are closed to it outside calls): while no call ran since
  // the map or the last reset, no page is to drop, and one page scanned
  // stands for the scan of them all.
  const bool only_calls_write = s.protection.backend() != gate::Backend::None;
  const DirtyScan dirty = only_calls_write && !threads_ran && !gate_stack_written(s) ? DirtyScan{} : scan_dirty(s);
  for (const auto& [lo, hi] : dirty.runs)
    if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) != 0)
      throw SystemError("cannot reset " + detail::subcontext_name(s) + ": madvise(MADV_DONTNEED) of [" + sys::hex(lo) +
                        "-" + sys::hex(hi) + ") failed: " + sys::errno_text(errno));
  info.pages_restored = dirty.pages;
  s.dirty_pages.store(0, std::memory_order_relaxed);
  s.poisoned.clear();
  s.resets.fetch_add(1, std::memory_order_relaxed);
  return info;
}

}  // namespace subctx::matchmaker
