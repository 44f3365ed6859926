// parse_proc_maps on captured fixtures: ordinary lines, odd names (spaces,
// " (deleted)", long paths, escapes), special mappings, anonymous lines with
// and without the kernel's trailing space, malformed lines, max_entries.
#include <sys/mman.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sys/io.hpp"
#include "sys/proc_maps.hpp"

namespace subctx::sys {
namespace {

std::vector<MapEntry> parse_ok(std::string_view text, size_t max = 1000) {
  std::vector<MapEntry> out;
  std::string why;
  EXPECT_TRUE(parse_proc_maps(text, out, max, &why)) << why;
  return out;
}

std::string parse_fails(std::string_view text, size_t max = 1000) {
  std::vector<MapEntry> out;
  std::string why;
  EXPECT_FALSE(parse_proc_maps(text, out, max, &why)) << "accepted: " << text;
  return why;
}

// Captured from a Debian 12 process (Linux 6.1), trimmed, plus odd names.
const char kFixture[] =
    "55d0c4e00000-55d0c4e02000 r--p 00000000 fd:01 1835023                    /usr/bin/cat\n"
    "55d0c4e02000-55d0c4e07000 r-xp 00002000 fd:01 1835023                    /usr/bin/cat\n"
    "55d0c5a1e000-55d0c5a3f000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0 \n"
    "7f3a1c021000-7f3a20000000 ---p 00000000 00:00 0 \n"
    "7f3a20a00000-7f3a20a28000 r--p 00000000 fd:01 1840211                    /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "7f3a20c00000-7f3a20c01000 rw-s 00000000 00:01 4242                       /dev/zero (deleted)\n"
    "7f3a20d00000-7f3a20d02000 r-xp 00001000 08:11 77                         /tmp/my plugin dir/lib odd name.so\n"
    "7f3a20e00000-7f3a20e01000 r--p 00000000 08:11 78                         /tmp/gone.so (deleted)\n"
    "7f3a20f00000-7f3a20f01000 r--p 00000000 08:11 79                         /tmp/line\\012break\n"
    "7f3a21000000-7f3a21001000 r--p 00000000 08:11 80                         /tmp/trailing space \n"
    "7ffc8d5a3000-7ffc8d5c4000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffc8d5f0000-7ffc8d5f4000 r--p 00000000 00:00 0                          [vvar]\n"
    "7ffc8d5f4000-7ffc8d5f6000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST(ProcMaps, ParsesTheFixture) {
  auto m = parse_ok(kFixture);
  ASSERT_EQ(m.size(), 15u);

  EXPECT_EQ(m[0].start, 0x55d0c4e00000u);
  EXPECT_EQ(m[0].end, 0x55d0c4e02000u);
  EXPECT_EQ(m[0].prot, PROT_READ);
  EXPECT_FALSE(m[0].shared);
  EXPECT_EQ(m[0].offset, 0u);
  EXPECT_EQ(m[0].dev_major, 0xfdu);
  EXPECT_EQ(m[0].dev_minor, 1u);
  EXPECT_EQ(m[0].inode, 1835023u);
  EXPECT_EQ(m[0].path, "/usr/bin/cat");
  EXPECT_FALSE(m[0].deleted);
  EXPECT_FALSE(m[0].is_special());
  EXPECT_EQ(m[0].line, "55d0c4e00000-55d0c4e02000 r--p 00000000 fd:01 1835023                    /usr/bin/cat");

  EXPECT_EQ(m[1].prot, PROT_READ | PROT_EXEC);
  EXPECT_EQ(m[1].offset, 0x2000u);

  EXPECT_EQ(m[2].path, "[heap]");
  EXPECT_TRUE(m[2].is_special());
  EXPECT_EQ(m[2].prot, PROT_READ | PROT_WRITE);
  EXPECT_EQ(m[2].inode, 0u);

  // Anonymous: the kernel ends the line with a space after the inode.
  EXPECT_EQ(m[3].path, "");
  EXPECT_FALSE(m[3].is_special());
  EXPECT_EQ(m[4].prot, PROT_NONE);
  EXPECT_EQ(m[4].path, "");

  EXPECT_EQ(m[5].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");

  EXPECT_TRUE(m[6].shared);
  EXPECT_TRUE(m[6].deleted);
  EXPECT_EQ(m[6].path, "/dev/zero");
  EXPECT_EQ(m[6].dev_minor, 1u);

  EXPECT_EQ(m[7].path, "/tmp/my plugin dir/lib odd name.so");
  EXPECT_EQ(m[7].offset, 0x1000u);
  EXPECT_EQ(m[7].dev_major, 8u);
  EXPECT_EQ(m[7].dev_minor, 0x11u);
  EXPECT_FALSE(m[7].deleted);

  EXPECT_EQ(m[8].path, "/tmp/gone.so");
  EXPECT_TRUE(m[8].deleted);

  EXPECT_EQ(m[9].path, "/tmp/line\\012break");  // escapes kept as the kernel prints them
  EXPECT_EQ(m[10].path, "/tmp/trailing space ");

  EXPECT_EQ(m[11].path, "[stack]");
  EXPECT_EQ(m[12].path, "[vvar]");
  EXPECT_EQ(m[13].path, "[vdso]");
  EXPECT_EQ(m[14].path, "[vsyscall]");
  EXPECT_EQ(m[14].start, 0xffffffffff600000u);
  EXPECT_EQ(m[14].prot, PROT_EXEC);
  for (size_t i : {11, 12, 13, 14}) EXPECT_TRUE(m[i].is_special()) << i;
}

TEST(ProcMaps, AnonymousLineWithoutTrailingSpace) {
  auto m = parse_ok("7f00-8f00 rw-p 00000000 00:00 0\n7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].path, "");
  EXPECT_EQ(m[0].start, 0x7f00u);
  EXPECT_EQ(m[1].path, "");
  EXPECT_EQ(m[1].line, "7f3a1c000000-7f3a1c021000 rw-p 00000000 00:00 0");  // last line without a newline
}

TEST(ProcMaps, DeletedSuffix) {
  auto m = parse_ok(
      "1000-2000 r--p 00000000 08:01 5 /a b (deleted)\n"
      "2000-3000 r--p 00000000 08:01 5 /x (deleted) (deleted)\n"
      "3000-4000 r--p 00000000 08:01 5 /y(deleted)\n"
      "4000-5000 r--p 00000000 08:01 5 /memfd:buf (deleted)\n");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].path, "/a b");
  EXPECT_TRUE(m[0].deleted);
  EXPECT_EQ(m[1].path, "/x (deleted)");  // only the kernel's one suffix is removed
  EXPECT_TRUE(m[1].deleted);
  EXPECT_EQ(m[2].path, "/y(deleted)");  // no space: part of the name
  EXPECT_FALSE(m[2].deleted);
  EXPECT_EQ(m[3].path, "/memfd:buf");
  EXPECT_TRUE(m[3].deleted);
}

TEST(ProcMaps, LongPaths) {
  for (size_t len : {255, 256, 1000, 4095, 4096, 10000}) {
    SCOPED_TRACE(len);
    std::string path = "/";
    while (path.size() < len) path += (path.size() % 50 == 0) ? '/' : static_cast<char>('a' + path.size() % 26);
    path.resize(len);
    std::string text = "7f0000000000-7f0000001000 r--p 00000000 08:01 99   " + path + "\n";
    text += "7f0000001000-7f0000002000 r--p 00000000 08:01 99   " + path + " (deleted)\n";
    auto m = parse_ok(text);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].path, path);
    EXPECT_EQ(m[1].path, path);
    EXPECT_TRUE(m[1].deleted);
    EXPECT_EQ(m[0].line.size(), 51 + len);
  }
}

TEST(ProcMaps, HexAndDecimalFields) {
  auto m = parse_ok("ABCDEF000-ABCDF0000 rwxs FFFFF000 103:0f 18446744073709551605 /big\n");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].start, 0xabcdef000u);
  EXPECT_EQ(m[0].prot, PROT_READ | PROT_WRITE | PROT_EXEC);
  EXPECT_TRUE(m[0].shared);
  EXPECT_EQ(m[0].offset, 0xfffff000u);
  EXPECT_EQ(m[0].dev_major, 0x103u);
  EXPECT_EQ(m[0].dev_minor, 0xfu);
  EXPECT_EQ(m[0].inode, UINT64_MAX - 10);
}

TEST(ProcMaps, LargestInode) {
  auto m = parse_ok("1000-2000 r--p 00000000 08:01 18446744073709551615 /big\n");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].inode, UINT64_MAX);
  parse_fails("1000-2000 r--p 00000000 08:01 18446744073709551616 /big\n");
  parse_fails("1000-2000 r--p 00000000 08:01 18446744073709551620 /big\n");
}

TEST(ProcMaps, SixteenHexDigitsButNotSeventeen) {
  auto m = parse_ok("fffffffffffff000-ffffffffffffffff r--p 0000000000000000 00:00 0\n");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].end, 0xffffffffffffffffu);
  EXPECT_NE(parse_fails("0fffffffffffff000-ffffffffffffffff r--p 00000000 00:00 0\n").find("malformed maps line 1"),
            std::string::npos);
}

TEST(ProcMaps, MalformedLines) {
  const char* bad[] = {
      "garbage",
      "-2000 r--p 00000000 08:01 5 /x",
      "1000 r--p 00000000 08:01 5 /x",
      "1000-2000",
      "1000-2000 ",
      "1000-2000 r--",
      "1000-2000  r--p 00000000 08:01 5 /x",
      "1000-2000 r--p",
      "1000-2000 r--p ",
      "1000-2000 r--p 00000000",
      "1000-2000 r--p 00000000 08:01",
      "1000-2000 r--p 00000000 08:01 ",
      "1000-2000 r--p 00000000 0801 5 /x",
      "1000-2000 r--p 00000000 08:01 x /x",
      "1000-2000 r--p 00000000 08:01 5x /x",
      "1000-2000 r--p zz 08:01 5 /x",
      "1000-2000 R--p 00000000 08:01 5 /x",
      "1000-2000 r-wp 00000000 08:01 5 /x",
      "1000-2000 rw-x 00000000 08:01 5 /x",
      "1000-2000 r--- 00000000 08:01 5 /x",
      "1000-2000 r--pp 00000000 08:01 5 /x",
      "2000-1000 r--p 00000000 08:01 5 /x",  // end before start
      "2000-2000 r--p 00000000 08:01 5 /x",  // empty
      "1000-2000\tr--p 00000000 08:01 5 /x",
      "1000-2000 r--p 00000000 08:01 99999999999999999999999 /x",  // inode overflows
      " 1000-2000 r--p 00000000 08:01 5 /x",
  };
  for (const char* line : bad) {
    SCOPED_TRACE(line);
    std::string text = std::string("1000-2000 r--p 00000000 08:01 5 /ok\n") + line + "\n";
    std::string why = parse_fails(text);
    EXPECT_EQ(why.rfind("malformed maps line 2: \"", 0), 0u) << why;
  }
}

TEST(ProcMaps, MalformedLineIsQuotedShortened) {
  std::string line = "1000-2000 r--p 00000000 08:01 5x " + std::string(500, 'a');
  std::string why = parse_fails(line);
  EXPECT_LT(why.size(), 260u) << why;
}

TEST(ProcMaps, EmptyInputAndBlankLines) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("\n\n").empty());
  auto m = parse_ok("\n1000-2000 r--p 00000000 08:01 5 /a\n\n\n2000-3000 r--p 00000000 08:01 5 /b\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1].path, "/b");
  // A blank line still counts for the line number in messages.
  std::string why = parse_fails("\n\nbad\n");
  EXPECT_NE(why.find("malformed maps line 3"), std::string::npos) << why;
}

TEST(ProcMaps, MaxEntries) {
  const std::string three =
      "1000-2000 r--p 00000000 08:01 5 /a\n2000-3000 r--p 00000000 08:01 5 /b\n3000-4000 r--p 00000000 08:01 5 /c\n";
  EXPECT_EQ(parse_ok(three, 3).size(), 3u);
  std::vector<MapEntry> out;
  std::string why;
  EXPECT_FALSE(parse_proc_maps(three, out, 2, &why));
  EXPECT_EQ(why, "more than 2 mappings");
  EXPECT_EQ(out.size(), 2u);
  // The limit counts what `out` already holds, so a caller that reserved
  // max_entries never allocates.
  out.clear();
  out.reserve(4);
  const auto* data = out.data();
  EXPECT_TRUE(parse_proc_maps("1000-2000 r--p 00000000 08:01 5 /a\n", out, 4, &why));
  EXPECT_FALSE(parse_proc_maps(three, out, 3, &why));
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(out.data(), data);
  // Zero entries allowed: only an empty text passes.
  out.clear();
  EXPECT_TRUE(parse_proc_maps("\n", out, 0, &why));
  EXPECT_FALSE(parse_proc_maps(three, out, 0, nullptr));  // why is optional
}

TEST(ProcMaps, DescribeOverlap) {
  auto m = parse_ok(kFixture);
  EXPECT_EQ(describe_overlap(m, 0x55d0c5a1e000, 0x55d0c5a1f000),
            "55d0c5a1e000-55d0c5a3f000 rw-p 00000000 00:00 0                          [heap]");
  EXPECT_EQ(describe_overlap(m, 0x55d0c5a3e000, 0x55d0c5a40000).substr(0, 12), "55d0c5a1e000");
  EXPECT_EQ(describe_overlap(m, 0x55d0c5a3f000, 0x55d0c5a40000), "");  // end is exclusive
  EXPECT_EQ(describe_overlap(m, 0x55d0c5a1d000, 0x55d0c5a1e000), "");  // so is hi
  EXPECT_EQ(describe_overlap(m, 0x1000, 0x2000), "");
  EXPECT_EQ(describe_overlap(m, 0, UINT64_MAX).substr(0, 12), "55d0c4e00000");  // the first in the list
  EXPECT_EQ(describe_overlap({}, 0, UINT64_MAX), "");
}

TEST(ProcMaps, ParsesThisProcess) {
  const std::string text = read_text_file("/proc/self/maps");
  std::vector<MapEntry> m;
  std::string why;
  ASSERT_TRUE(parse_proc_maps(text, m, 1u << 20, &why)) << why;
  ASSERT_FALSE(m.empty());
  bool stack = false, code = false;
  const auto here = reinterpret_cast<uint64_t>(&parse_ok);
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_LT(m[i].start, m[i].end);
    if (i) {
      EXPECT_LE(m[i - 1].end, m[i].start);
    }
    stack |= m[i].path == "[stack]";
    if (m[i].overlaps(here, here + 1)) {
      code = true;
      EXPECT_TRUE(m[i].prot & PROT_EXEC);
    }
  }
  EXPECT_TRUE(stack);
  EXPECT_TRUE(code);
}

TEST(PermString, ShowsEachRightInItsPlace) {
  EXPECT_EQ(perm_string(0), "---");
  EXPECT_EQ(perm_string(PROT_READ | PROT_EXEC), "r-x");
  EXPECT_EQ(perm_string(PROT_READ | PROT_WRITE), "rw-");
  EXPECT_EQ(perm_string(PROT_READ | PROT_WRITE | PROT_EXEC), "rwx");
}

TEST(SelfMaps, ReadsThisProcessAndRespectsTheLimit) {
  SelfMaps maps;
  std::string why;
  ASSERT_TRUE(read_self_maps(&maps, &why)) << why;
  // This test's own stack variable lies in exactly one entry, a writable one.
  int local = 0;
  const auto at = reinterpret_cast<uint64_t>(&local);
  int found = 0;
  for (const MapEntry& e : maps.entries)
    if (e.overlaps(at, at + 1)) {
      ++found;
      EXPECT_TRUE(e.prot & PROT_WRITE) << e.line;
    }
  EXPECT_EQ(found, 1);
  // A limit below the real count is an error that says so, not a silent cut.
  EXPECT_FALSE(read_self_maps(&maps, &why, 1));
  EXPECT_NE(why.find("/proc/self/maps"), std::string::npos) << why;
}

}  // namespace
}  // namespace subctx::sys
