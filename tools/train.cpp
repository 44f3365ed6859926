// `subctx train IMAGE --call EXPORT[:ARG...]...`: records the pages the
// given calls touch as the image's hot pages (the hot-pages note,
// docs/prefetch.md), so that a map that finds the image evicted reads
// them in at once, not one fault after the other.  The image is mapped in a fresh process
// with SUBCTX_PREFETCH=off (the note already there would count its own
// pages as touched), the calls made, the present pages of the segments
// read from /proc/self/pagemap, and the image rewritten beside itself and
// renamed over the original: a client maps the old or the new image, never
// a part of either.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "call_args.hpp"
#include "cli.hpp"
#include "image/reader.hpp"
#include "image/writer.hpp"
#include "image_file.hpp"
#include "subctx/subctx.h"
#include "sys/env.hpp"
#include "sys/io.hpp"
#include "sys/pagemap.hpp"
#include "sys/unique_fd.hpp"
#include "text.hpp"

namespace subctx::tool {

namespace {

// Runs this close are merged: populating a few pages more costs less than
// one more madvise at every map.
constexpr uint32_t kMergeGapPages = 8;

struct TrainCall {
  std::string name;
  std::vector<std::string> args;
};

std::vector<TrainCall> parse_calls(const std::vector<std::string>& args) {
  std::vector<TrainCall> calls;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] != "--call" || i + 1 == args.size())
      throw UsageError("train", "expected --call EXPORT[:ARG...], got \"" + sys::printable(args[i]) + "\"");
    TrainCall c;
    std::string rest = args[++i];
    size_t colon = rest.find(':');
    c.name = rest.substr(0, colon);
    while (colon != std::string::npos) {
      rest = rest.substr(colon + 1);
      colon = rest.find(':');
      c.args.push_back(rest.substr(0, colon));
    }
    calls.push_back(std::move(c));
  }
  if (calls.empty()) throw UsageError("train", "train needs at least one --call EXPORT[:ARG...]");
  return calls;
}

// The Matchmaker reads SUBCTX_* once, when it is installed: a process in
// which it could have been (a SUBCTX_* variable set) starts again.  Read
// as the Matchmaker reads it (env::value): an AT_SECURE process ignores
// every SUBCTX_* variable, so starting again could not turn prefetching off.
void reexec_without_prefetch(const std::vector<std::string>& args) {
  const char* v = env::value("SUBCTX_PREFETCH");
  if (v && !std::strcmp(v, "off")) return;
  if (env::secure_process())
    throw Unsupported(
        "train cannot run setuid, setgid or with file capabilities: such a process ignores "
        "SUBCTX_PREFETCH=off, and the image's hot pages would be recorded as touched");
  if (setenv("SUBCTX_PREFETCH", "off", 1) != 0)
    throw SystemError("cannot set SUBCTX_PREFETCH: " + sys::errno_text(errno));
  std::vector<std::string> all = {"subctx", "train"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv.data());
  throw SystemError("cannot run subctx again (/proc/self/exe) without prefetching: " + sys::errno_text(errno));
}

// Only what the calls touch should be present afterwards.  A fault maps
// the pages around it that are in the page cache (fault-around, 64 KiB)
// and reads ahead around it, so the recording starts from an evicted image
// (written back first: dirty pages are not dropped) and reads it page by
// page.  Other processes' mappings keep their pages: the recording then
// holds some pages more, never fewer.
void evict(const ImageFile& file) {
  if (fdatasync(file.fd()) != 0 || posix_fadvise(file.fd(), 0, 0, POSIX_FADV_DONTNEED) != 0)
    std::fprintf(stderr,
                 "subctx: train: cannot evict %s from the page cache (%s): pages near the touched ones "
                 "may be recorded too\n",
                 sys::printable(file.path(), sys::kNoLimit).c_str(), std::strerror(errno));
}

void read_page_by_page(const image::ImageInfo& info) {
  for (const image::SegmentRecord& s : info.segments)
    if (s.filesz) madvise(reinterpret_cast<void*>(s.vaddr), s.filesz, MADV_RANDOM);
}

void make_calls(const Subcontext& sc, const std::vector<TrainCall>& calls) {
  for (const TrainCall& c : calls) {
    const ExportInfo e = find_export(sc, c.name);
    Signature sig;
    std::string why;
    if (!parse_signature(e.signature, &sig, &why))
      throw BadImage("image " + sc.path() + ": export \"" + e.name + "\": " + why);
    const std::vector<uint64_t> raw = parse_args(sc.path(), e, sig, c.args);
    uint64_t ret = 0;
    const int rc = sbc_request_call(sc.handle(), e.name.c_str(), raw.data(), raw.size(), &ret);
    if (rc < 0) throw_error(static_cast<Errc>(-rc), sbc_last_error());
  }
}

// The present (or swapped out) pages of each segment's file part, as runs.
std::vector<image::HotRun> present_runs(const image::ImageInfo& info) {
  sys::UniqueFd pm(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pm) throw SystemError("cannot open /proc/self/pagemap: " + sys::errno_text(errno));
  std::vector<image::HotRun> runs;
  std::vector<uint64_t> entries;
  for (const image::SegmentRecord& s : info.segments) {
    if (!(s.prot & PROT_READ) || !s.filesz) continue;
    const uint64_t pages = s.filesz / image::kPageSize;
    entries.resize(pages);
    if (!sys::pread_exact(pm.get(), entries.data(), pages * 8, static_cast<off_t>(s.vaddr / image::kPageSize * 8)))
      throw SystemError("cannot read /proc/self/pagemap for [" + sys::hex(s.vaddr) + "-" + sys::hex(s.end()) +
                        "): " + sys::errno_text(errno));
    for (uint64_t p = 0; p < pages; ++p) {
      if (!sys::pagemap::populated(entries[p])) continue;
      const uint64_t a = s.vaddr + p * image::kPageSize;
      image::HotRun* last = runs.empty() ? nullptr : &runs.back();
      if (p > 0 && last && last->vaddr + uint64_t{last->pages} * image::kPageSize == a)  // runs end with their segment
        ++last->pages;
      else runs.push_back({a, 1});
    }
  }
  return runs;
}

// Runs of one segment no more than gap pages apart, merged.
std::vector<image::HotRun> merged(const image::ImageInfo& info, const std::vector<image::HotRun>& runs, uint64_t gap) {
  std::vector<image::HotRun> out;
  for (const image::HotRun& r : runs) {
    if (!out.empty()) {
      image::HotRun& last = out.back();
      const uint64_t end = last.vaddr + uint64_t{last.pages} * image::kPageSize;
      if (r.vaddr - end <= gap * image::kPageSize && info.segment_at(last.vaddr) == info.segment_at(r.vaddr) &&
          (r.vaddr - last.vaddr) / image::kPageSize + r.pages <= UINT32_MAX) {
        last.pages = static_cast<uint32_t>((r.vaddr - last.vaddr) / image::kPageSize + r.pages);
        continue;
      }
    }
    out.push_back(r);
  }
  return out;
}

// Within the note's bounds (kMaxHotRuns, kMaxHotPages): runs merged over
// wider gaps until they are few enough (runs never span segments: an image
// of more segments than kMaxHotRuns with hot pages in each keeps the first
// ones), then cut at the page limit.
std::vector<image::HotRun> fit_limits(const image::ImageInfo& info, const std::vector<image::HotRun>& runs) {
  uint64_t gap = kMergeGapPages;
  std::vector<image::HotRun> out = merged(info, runs, gap);
  while (out.size() > image::kMaxHotRuns && gap < (uint64_t{1} << 32)) out = merged(info, out, gap *= 2);
  if (out.size() > image::kMaxHotRuns) {
    std::fprintf(stderr,
                 "subctx: train: the calls touched pages in %zu separate runs; recording the first %" PRIu32
                 " (kMaxHotRuns)\n",
                 out.size(), image::kMaxHotRuns);
    out.resize(image::kMaxHotRuns);
  }
  uint64_t total = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (total + out[i].pages > image::kMaxHotPages) {
      std::fprintf(stderr,
                   "subctx: train: the calls touched more than %" PRIu64
                   " pages (kMaxHotPages); recording the first %" PRIu64 "\n",
                   image::kMaxHotPages, total);
      out.resize(i);
      break;
    }
    total += out[i].pages;
  }
  return out;
}

}  // namespace

// Defined in train_write.cpp.
void write_trained_image(const ImageFile& file, image::ImageInfo info, std::vector<image::HotRun> runs);

int run_train(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError("train", "train needs an image path and at least one --call");
  const std::vector<TrainCall> calls = parse_calls(args);
  reexec_without_prefetch(args);
  const std::string& path = args[0];
  const ImageFile file = ImageFile::open(path);
  image::ImageInfo info = file.read_header();
  std::vector<image::HotRun> runs;
  {
    Matchmaker& mm = Matchmaker::instance();
    evict(file);
    Subcontext sc = mm.request_map(path);
    read_page_by_page(info);
    make_calls(sc, calls);
    runs = present_runs(info);
    mm.unmap(sc);
  }
  runs = fit_limits(info, runs);
  uint64_t pages = 0, file_pages = 0;
  for (const auto& r : runs) pages += r.pages;
  for (const auto& s : info.segments) file_pages += s.filesz / image::kPageSize;
  write_trained_image(file, std::move(info), runs);
  std::printf("%s: %zu call%s; hot pages: %zu runs, %" PRIu64 " pages (%s) of %" PRIu64 " in the file\n",
              sys::printable(path, sys::kNoLimit).c_str(), calls.size(), calls.size() == 1 ? "" : "s", runs.size(),
              pages, human_size(pages * image::kPageSize).c_str(), file_pages);
  return kExitOk;
}

}  // namespace subctx::tool
