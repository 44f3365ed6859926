// Protection keys: the PKRU register holds two bits per key, AD (access
// disable) and WD (write disable).  Pure arithmetic here (unit-tested); the
// instructions are used only when pkey_alloc() succeeded.
#pragma once

#include <cstdint>

namespace subctx::gate::pkru {

inline constexpr int kKeys = 16;
inline constexpr uint32_t kAccessDisable = 1;
inline constexpr uint32_t kWriteDisable = 2;

constexpr uint32_t bits(int key, uint32_t rights) { return rights << (2 * key); }

// The value that gives full access to key, leaving the other keys as they are.
constexpr uint32_t allow(uint32_t pkru, int key) { return pkru & ~bits(key, kAccessDisable | kWriteDisable); }
// The value that takes every right to key away.
constexpr uint32_t deny(uint32_t pkru, int key) { return allow(pkru, key) | bits(key, kAccessDisable); }
constexpr bool may_read(uint32_t pkru, int key) { return !(pkru & bits(key, kAccessDisable)); }
constexpr bool may_write(uint32_t pkru, int key) { return !(pkru & bits(key, kAccessDisable | kWriteDisable)); }

// rdpkru / wrpkru (encoded: assemblers without the mnemonics).
inline uint32_t read() {
  uint32_t eax, edx;
  __asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}
inline void write(uint32_t value) {
  __asm__ volatile(".byte 0x0f, 0x01, 0xef" ::"a"(value), "c"(0), "d"(0) : "memory");
}

}  // namespace subctx::gate::pkru
