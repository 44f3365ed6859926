// xxh3 digests of headers and segments (header-only xxhash, no runtime dependency).
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstddef>
#include <cstdint>

namespace subctx::image {

class Digest {
 public:
  Digest() { XXH3_64bits_reset(&state_); }
  void update(const void* data, size_t size) { XXH3_64bits_update(&state_, data, size); }
  uint64_t value() const { return XXH3_64bits_digest(&state_); }

 private:
  XXH3_state_t state_;
};

inline uint64_t digest_of(const void* data, size_t size) { return XXH3_64bits(data, size); }

}  // namespace subctx::image
