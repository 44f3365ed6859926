#include "heap_layout.hpp"

#include "clock.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bench {

namespace {

constexpr uint64_t kPage = 4096;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

void* map_anonymous(uint64_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("mmap " + std::to_string(bytes) + " bytes");
  return p;
}

void pwrite_all(int fd, const uint8_t* p, uint64_t len, uint64_t off) {
  while (len) {
    ssize_t n = pwrite(fd, p, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("pwrite");
    p += n, off += static_cast<uint64_t>(n), len -= static_cast<uint64_t>(n);
  }
}

}  // namespace

uint64_t HeapLayout::data_bytes() const {
  uint64_t n = 0;
  for (uint64_t i = 0; i < runs(); ++i)
    if (has_data(i)) n += run_len(i);
  return n;
}

void build_heap(HeapLayout& heap) {
  if (heap.bytes % kPage || heap.run_bytes % kPage || heap.run_bytes == 0)
    throw std::runtime_error("heap and run sizes must be whole pages");
  heap.base = static_cast<uint8_t*>(map_anonymous(heap.bytes));
  for (uint64_t i = 0; i < heap.runs(); ++i) {
    uint8_t* run = heap.base + i * heap.run_bytes;
    if (heap.has_data(i)) {
      for (uint64_t off = 0; off < heap.run_len(i); off += kPage)
        std::memset(run + off, static_cast<int>((i * 131 + off / kPage * 7) % 255 + 1), kPage);
    } else if (heap.touch_zero) {
      std::memset(run, 0, heap.run_len(i));
    }
  }
}

double dump_floor(const HeapLayout& heap, const std::string& path) {
  const double t0 = now_seconds();
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("open " + path);
  for (uint64_t i = 0; i < heap.runs();) {
    if (!heap.has_data(i)) {
      ++i;
      continue;
    }
    uint64_t j = i;  // coalesce adjacent data runs into one write, as a snapshot may
    while (j < heap.runs() && heap.has_data(j)) ++j;
    const uint64_t end = j < heap.runs() ? j * heap.run_bytes : heap.bytes;
    pwrite_all(fd, heap.base + i * heap.run_bytes, end - i * heap.run_bytes, i * heap.run_bytes);
    i = j;
  }
  if (ftruncate(fd, static_cast<off_t>(heap.bytes)) != 0) fail("ftruncate " + path);
  close(fd);
  const double t1 = now_seconds();
  unlink(path.c_str());
  return t1 - t0;
}

void prewarm_memory(uint64_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) fail("mmap " + std::to_string(bytes) + " bytes");
  munmap(p, bytes);
}

void make_extra_segments(size_t n) {
  if (n == 0) return;
  // PROT_NONE pages at both ends keep neighbours from merging with the first
  // and last page (the snapshot skips PROT_NONE mappings).
  auto* guard = static_cast<uint8_t*>(map_anonymous((n + 2) * kPage));
  if (mprotect(guard, kPage, PROT_NONE) != 0 || mprotect(guard + (n + 1) * kPage, kPage, PROT_NONE) != 0)
    fail("mprotect");
  uint8_t* p = guard + kPage;
  for (size_t i = 0; i < n; ++i) {
    p[i * kPage] = static_cast<uint8_t>(i + 1);
    if (i % 2 && mprotect(p + i * kPage, kPage, PROT_READ) != 0) fail("mprotect");
  }
}

}  // namespace bench
