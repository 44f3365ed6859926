#include "external/chunk_reader.hpp"

#include <cerrno>

#include "external/tracee.hpp"
#include "sys/io.hpp"
#include "sys/pagemap.hpp"

namespace subctx::external {

namespace {
constexpr uint64_t kPage = 4096;
}

ChunkReader::ChunkReader(Tracee& t, int pagemap_fd, std::vector<Job> jobs)
    : t_(t), pagemap_fd_(pagemap_fd), jobs_(std::move(jobs)) {
  for (auto& s : slots_) {
    s.data.resize(kChunkPages * kPage);
    s.present.resize(kChunkPages);
  }
  thread_ = std::thread([this] { run(); });
}

ChunkReader::~ChunkReader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ChunkReader::run() {
  for (size_t i = 0; i < jobs_.size(); ++i) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || produced_ - released_ < kSlots; });
      if (stop_) return;
    }
    read_chunk(jobs_[i], &slots_[i % kSlots]);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++produced_;
    }
    cv_.notify_all();
  }
}

void ChunkReader::read_chunk(const Job& job, Chunk* c) {
  c->job = &job;
  c->failed_at = 0;
  c->err = 0;
  // Anonymous pages never touched read as zeros: not read (reading would
  // fault them in, in the target), not written.
  uint64_t pm[kChunkPages];
  const bool have_pm = job.anonymous && pagemap_fd_ >= 0 &&
                       sys::pread_exact(pagemap_fd_, pm, job.pages * 8, static_cast<off_t>(job.addr / kPage * 8));
  for (uint64_t k = 0; k < job.pages; ++k) c->present[k] = !have_pm || sys::pagemap::populated(pm[k]);
  for (uint64_t k = 0; k < job.pages;) {
    if (!c->present[k]) {
      ++k;
      continue;
    }
    uint64_t e = k;
    while (e < job.pages && c->present[e]) ++e;
    const uint64_t addr = job.addr + k * kPage, len = (e - k) * kPage;
    const size_t got = t_.read(addr, c->data.data() + k * kPage, len);
    if (got != len) {
      c->failed_at = addr + got;
      c->err = errno;
      return;
    }
    k = e;
  }
}

const ChunkReader::Chunk* ChunkReader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (holding_) {
    ++released_;
    holding_ = false;
    cv_.notify_all();
  }
  if (released_ == jobs_.size()) return nullptr;
  cv_.wait(lock, [&] { return produced_ > released_; });
  holding_ = true;
  return &slots_[released_ % kSlots];
}

}  // namespace subctx::external
