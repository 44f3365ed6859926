// Reading a str result: a bad pointer from an export must be an error, and a
// string that ends right before an unmapped page must still be read whole.
#include "read_string.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace subctx::tool {
namespace {

TEST(ReadString, ReadsUpToTheNul) {
  const char text[] = "hello\0world";
  const ReadString r = read_string(reinterpret_cast<uint64_t>(text), 1024);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "hello");
  EXPECT_FALSE(r.truncated);
}

TEST(ReadString, StopsAtTheLimit) {
  const char text[] = "abcdef";
  const ReadString r = read_string(reinterpret_cast<uint64_t>(text), 3);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "abc");
  EXPECT_TRUE(r.truncated);
}

TEST(ReadString, AStringEndingAtAnUnmappedPageIsReadWhole) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* base = static_cast<char*>(p);
  ASSERT_EQ(munmap(base + page, page), 0);
  std::memcpy(base + page - 4, "abc", 4);  // NUL is the page's last byte
  const ReadString r = read_string(reinterpret_cast<uint64_t>(base + page - 4), 1024);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "abc");

  std::memcpy(base + page - 3, "xyz", 3);  // no NUL before the hole
  const ReadString bad = read_string(reinterpret_cast<uint64_t>(base + page - 3), 1024);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("cannot read memory at 0x"), std::string::npos) << bad.error;
  munmap(base, page);
}

TEST(ReadString, AWildPointerIsAnErrorNotACrash) {
  const ReadString r = read_string(0x10, 64);  // page zero is never mapped
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("cannot read memory at 0x10"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace subctx::tool
