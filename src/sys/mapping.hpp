// One move-only owner per memory mapping.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace subctx::sys {

class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  Mapping(Mapping&& o) noexcept : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      reset();
      addr_ = std::exchange(o.addr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { reset(); }

  void* get() const { return addr_; }
  uint8_t* bytes() const { return static_cast<uint8_t*>(addr_); }
  uintptr_t begin() const { return reinterpret_cast<uintptr_t>(addr_); }
  uintptr_t end() const { return begin() + size_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return addr_ != nullptr; }
  void release() { addr_ = nullptr, size_ = 0; }
  void reset() {
    if (addr_) ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
  }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// mmap that returns an owner, or an empty Mapping with errno set.
inline Mapping map_memory(void* hint, size_t size, int prot, int flags, int fd = -1, off_t offset = 0) {
  void* p = ::mmap(hint, size, prot, flags, fd, offset);
  if (p == MAP_FAILED) return Mapping();
  return Mapping(p, size);
}

}  // namespace subctx::sys
