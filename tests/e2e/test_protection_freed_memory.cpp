// Protection (docs/protection.md), 7. Subcontext code that unmaps part of its
// own memory: the range is the client's afterwards, under every backend.
// In-process: a test of ProtectionBackend (support/protection.hpp),
// instantiated in test_protection_map_options.cpp.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "support/protection.hpp"

namespace e2e {
namespace {

using subctx::Protection;

TEST_P(ProtectionBackend, SubcontextFreeingItsOwnMemoryLeavesTheRangeToTheClient) {
  const Protection p = protection_named(GetParam());
  subctx::Subcontext sc = mm().request_map(feature_image(), with(p));
  auto* block = sc.call<void*()>("snapshot_block_addr");
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(sc.call<int64_t(void*, int64_t, int64_t)>("check_block", block, int64_t{4} << 20, 0x5a), -1);
  sc.call<void()>("free_snapshot_block");  // munmap inside the image's range, during the call
  EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(12)"), 144);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);

  void* hole = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(block) & ~uintptr_t{4095});
  constexpr size_t kSize = 1 << 20;
  void* mine = mmap(hole, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(mine, hole) << "the freed block's range is not free: " << std::strerror(errno);
  const uint64_t at = reinterpret_cast<uint64_t>(mine);
  // Calls open and close the subcontext; the client's memory in the hole
  // is not part of it.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 102 + i);
    EXPECT_EQ(sc.call<int64_t(const char*)>("lua_int", "fib(10)"), 55);
  }
  const std::string line = maps_line_at(at);
  const std::string last = maps_line_at(at + kSize - 1);
  EXPECT_NE(line.find(" rw-p "), std::string::npos) << "the Matchmaker changed the client's memory: " << line;
  EXPECT_NE(last.find(" rw-p "), std::string::npos) << last;
  if (p == Protection::Pkey) {
    EXPECT_EQ(protection_key_at(at), 0) << "the client's memory carries a key";
  }
  if (line.find(" rw-p ") == std::string::npos || last.find(" rw-p ") == std::string::npos ||
      (p == Protection::Pkey && protection_key_at(at) != 0))
    return;  // touching it would be a violation
  std::memset(mine, 0x33, kSize);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 105);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[0], 0x33);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[kSize - 1], 0x33);
  mm().unmap(sc);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[kSize / 2], 0x33);
  EXPECT_NE(maps_line_at(at).find(" rw-p "), std::string::npos) << maps_line_at(at);
  munmap(mine, kSize);
}

}  // namespace
}  // namespace e2e
