// Every error of request_map: each refusal has its code (C++ exception class
// and C code) and a message with the words a person needs, leaves the
// client's mappings exactly as they were, maps none of the image's ranges
// (nothing half-mapped), and a valid map works afterwards.  Corrupt images
// are copies of a real one with fields patched at offsets computed from the
// ELF program headers and SUBCTX notes, re-sealed when the test must get
// past the header digest.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>

#include "common/cpu_features.hpp"
#include "image/format.hpp"
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;
namespace fmt = subctx::image;

constexpr uint64_t kPage = 4096;

class MapErrors : public E2eTest {
 protected:
  void SetUp() override {
    layout_ = read_layout(basic_image());
    ranges_ = layout_.all_ranges();
  }
  void TearDown() override {
    E2eTest::TearDown();
    expect_valid_map_works();
  }
  // A copy of the basic image with fn applied to it.
  template <class Fn>
  std::string corrupt(const std::string& name, Fn fn) {
    std::string path = copy_image(basic_image(), name);
    fn(path);
    return path;
  }
  // Index (1-based, into phdrs) of a PT_LOAD with file data; the last one
  // when `last`.
  size_t segment_with_data(bool last = false) const {
    size_t found = 0;
    for (size_t i = 1; i < layout_.phdrs.size(); ++i)
      if (layout_.phdrs[i].p_filesz > 0) {
        found = i;
        if (!last) break;
      }
    return found;
  }
  ImageLayout layout_;
  std::vector<Range> ranges_;
};

// ---- the file itself ----

TEST_F(MapErrors, MissingFileIsNotFound) {
  const std::string path = temp_path("missing.img");
  expect_map_refused(path, Errc::NotFound, {path, "does not exist"}, ranges_);
  const std::string under_file = basic_image() + "/x.img";  // ENOTDIR
  expect_map_refused(under_file, Errc::NotFound, {under_file, "does not exist"}, ranges_);
}

TEST_F(MapErrors, DirectoryIsNotRegular) {
  expect_map_refused(temp_dir(), Errc::NotRegular, {temp_dir(), "a directory", "not a regular file"}, ranges_);
}

TEST_F(MapErrors, FifoIsNotRegularAndDoesNotHang) {
  const std::string fifo = temp_path("image.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto done = std::async(std::launch::async, [&] {
    expect_map_refused(fifo, Errc::NotRegular, {fifo, "a FIFO", "not a regular file"}, ranges_);
  });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "request_map on a FIFO hangs";
    // Unblock the reader: open the write end until the check finishes.
    while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) close(fd);
    }
  }
  done.get();
}

TEST_F(MapErrors, CharacterDeviceIsNotRegular) {
  expect_map_refused("/dev/null", Errc::NotRegular, {"/dev/null", "a character device"}, ranges_);
}

TEST_F(MapErrors, GroupOrOtherWritableImageIsRefused) {
  const std::string group = copy_image(basic_image(), "group-writable.img");
  ASSERT_EQ(chmod(group.c_str(), 0664), 0);
  expect_map_refused(group, Errc::Permission, {group, "writable by group or others", "0664", "chmod go-w " + group},
                     ranges_);
  const std::string other = copy_image(basic_image(), "other-writable.img");
  ASSERT_EQ(chmod(other.c_str(), 0646), 0);
  expect_map_refused(other, Errc::Permission, {"0646", "chmod go-w " + other}, ranges_);
  // After the fix the message suggests, the image maps.
  ASSERT_EQ(chmod(group.c_str(), 0644), 0);
  subctx::Subcontext sc = mm().request_map(group);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 5), 25);
}

TEST_F(MapErrors, ImageOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown the image to another user";
  const std::string path = copy_image(basic_image(), "foreign.img");
  ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
  expect_map_refused(path, Errc::Permission, {path, "owned by uid 65534", "or root"}, ranges_);
}

TEST_F(MapErrors, UnreadableImageIsPermission) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const std::string path = copy_image(basic_image(), "unreadable.img");
  ASSERT_EQ(chmod(path.c_str(), 0200), 0);
  expect_map_refused(path, Errc::Permission, {path, "cannot open"}, ranges_);
}

// ---- the header ----

TEST_F(MapErrors, BadMagic) {
  const std::string path = corrupt("bad-magic.img", [](const std::string& p) { patch_bytes(p, 1, "XLF", 3); });
  expect_map_refused(path, Errc::BadImage, {path, "bad magic"}, ranges_);
}

TEST_F(MapErrors, AnExecutableIsNotAnImage) {
  // A real ELF file, but ET_DYN: the server's own executable.
  const std::string exe = copy_image(paths::kBasicServer, "basic_server.copy");
  expect_map_refused(exe, Errc::BadImage, {exe, "not ET_CORE"}, ranges_);
}

TEST_F(MapErrors, UnknownFormatVersion) {
  const std::string path = corrupt("version.img", [&](const std::string& p) {
    patch_value<uint32_t>(p, layout_.notes.at(fmt::kNoteVersion).desc_offset, 99);
    reseal(p);
  });
  expect_map_refused(path, Errc::Version, {path, "version 99", "reads version 3"}, ranges_);
}

TEST_F(MapErrors, TruncatedFile) {
  const size_t data_seg = segment_with_data(true);
  ASSERT_GT(data_seg, 0u);
  const Elf64_Phdr& last = layout_.phdrs[data_seg];
  ASSERT_EQ(last.p_offset + last.p_filesz, layout_.file_size) << "the last segment with data ends the file";
  struct Cut {
    uint64_t size;
    std::vector<std::string> words;
  };
  const std::vector<Cut> cuts = {
      {0, {"truncated", "0 bytes"}},
      {40, {"truncated", "ELF header needs 64"}},
      {ImageLayout::phdr_offset(2) + 10, {"truncated", "program header table"}},
      {layout_.header_end - 100, {"truncated", "notes"}},
      {layout_.header_end, {"lies outside the file"}},
      {layout_.file_size - kPage, {"segment " + std::to_string(data_seg - 1), "lies outside the file"}},
  };
  for (const Cut& c : cuts) {
    SCOPED_TRACE("truncated to " + std::to_string(c.size) + " bytes");
    const std::string path = copy_image(basic_image(), "truncated-" + std::to_string(c.size) + ".img");
    ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(c.size)), 0);
    try {
      mm().request_map(path);
      ADD_FAILURE() << "mapped";
    } catch (const subctx::Error& e) {
      EXPECT_EQ(e.code(), Errc::BadImage) << e.what();
      for (const auto& w : c.words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
    expect_map_refused(path, Errc::BadImage, {path}, ranges_);
  }
}

TEST_F(MapErrors, SegmentOutsideTheFile) {
  const size_t i = segment_with_data();
  ASSERT_GT(i, 0u);
  const std::string path = corrupt("outside.img", [&](const std::string& p) {
    patch_value<uint64_t>(p, ImageLayout::phdr_offset(i) + offsetof(Elf64_Phdr, p_offset),
                          (layout_.file_size + 16 * kPage) & ~(kPage - 1));
    reseal(p);
  });
  expect_map_refused(path, Errc::BadImage, {path, "segment " + std::to_string(i - 1), "lies outside the file"},
                     ranges_);
}

TEST_F(MapErrors, OverlappingSegments) {
  ASSERT_GE(layout_.phdrs.size(), 3u);
  const std::string path = corrupt("overlap.img", [&](const std::string& p) {
    patch_value<uint64_t>(p, ImageLayout::phdr_offset(2) + offsetof(Elf64_Phdr, p_vaddr), layout_.phdrs[1].p_vaddr);
    reseal(p);
  });
  expect_map_refused(path, Errc::BadImage, {path, "segments 0 and 1 overlap"}, ranges_);
}

TEST_F(MapErrors, ExportOutsideAnExecutableSegment) {
  // The first export's address becomes the start of a writable segment.
  uint64_t data_addr = 0;
  for (size_t i = 1; i < layout_.phdrs.size() && !data_addr; ++i)
    if (!(layout_.phdrs[i].p_flags & PF_X) && (layout_.phdrs[i].p_flags & PF_W)) data_addr = layout_.phdrs[i].p_vaddr;
  ASSERT_NE(data_addr, 0u);
  const uint64_t first =
      layout_.notes.at(fmt::kNoteExports).desc_offset + 4;  // u32 count, then {u64 address, u8, str name, ...}
  const uint32_t name_len = read_value<uint32_t>(basic_image(), first + 9);
  ASSERT_LT(name_len, 64u);
  std::string name(name_len, '\0');
  {
    std::FILE* f = std::fopen(basic_image().c_str(), "rb");
    ASSERT_NE(f, nullptr);
    std::fseek(f, static_cast<long>(first + 13), SEEK_SET);
    ASSERT_EQ(std::fread(name.data(), 1, name_len, f), name_len);
    std::fclose(f);
  }
  const std::string path = corrupt("export.img", [&](const std::string& p) {
    patch_value<uint64_t>(p, first, data_addr);
    reseal(p);
  });
  expect_map_refused(path, Errc::BadImage, {path, "export \"" + name + "\"", "outside every executable segment"},
                     ranges_);
}

TEST_F(MapErrors, HeaderDigestMismatch) {
  // A byte of the creator note (nothing else checks it) and a program
  // header's p_align (not otherwise read): only the digest notices.
  const std::string creator = corrupt("digest-creator.img", [&](const std::string& p) {
    patch_value<uint8_t>(p, layout_.notes.at(fmt::kNoteCreator).desc_offset + 5, 'Q');
  });
  expect_map_refused(creator, Errc::Digest, {creator, "header digest mismatch", "modified or damaged"}, ranges_);
  const std::string align = corrupt("digest-align.img", [&](const std::string& p) {
    patch_value<uint64_t>(p, ImageLayout::phdr_offset(1) + offsetof(Elf64_Phdr, p_align), 8192);
  });
  expect_map_refused(align, Errc::Digest, {align, "header digest mismatch"}, ranges_);
}

TEST_F(MapErrors, CpuFeaturesMissing) {
  const uint64_t host = subctx::host_cpu_features();
  uint64_t missing = 0;
  for (int bit = 0; bit < 24 && !missing; ++bit)
    if (!(host & (uint64_t{1} << bit))) missing = uint64_t{1} << bit;
  if (!missing) missing = uint64_t{1} << 40;  // this CPU has them all: an unknown feature
  const std::string name = subctx::cpu_feature_names(missing);
  const uint64_t at = layout_.notes.at(fmt::kNoteCpu).desc_offset;
  const std::string path = corrupt("cpu.img", [&](const std::string& p) {
    patch_value<uint64_t>(p, at, read_value<uint64_t>(p, at) | missing);
    reseal(p);
  });
  expect_map_refused(path, Errc::Cpu, {path, "features this one lacks: " + name}, ranges_);
}

TEST_F(MapErrors, LimitExceeded) {
  LimitsGuard guard;
  subctx::Limits l = mm().limits();
  l.segments = 3;
  mm().set_limits(l);
  expect_map_refused(basic_image(), Errc::Limit, {basic_image(), "segments per image", "SUBCTX_MAX_SEGMENTS", "is 3"},
                     ranges_);
}

// ---- address conflicts: a client mapping in the way ----

class AddressConflicts : public MapErrors {
 protected:
  // Maps one page of a file named blocker_name at addr, MAP_FIXED_NOREPLACE.
  void block(uint64_t addr, const std::string& blocker_name) {
    blocker_name_ = blocker_name;
    const std::string file = temp_path(blocker_name);
    int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kPage), 0);
    void* want = reinterpret_cast<void*>(addr);
    void* p = mmap(want, kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
    close(fd);
    ASSERT_EQ(p, want) << "this client already has a mapping at the image's address";
    blocker_ = p;
  }
  void expect_conflict() {
    const std::string line = line_containing(read_self_maps(), blocker_name_);
    ASSERT_NE(line, "");
    expect_map_refused(basic_image(), Errc::Conflict, {basic_image(), "overlaps a mapping of this client", line},
                       ranges_, blocker_name_);
  }
  void TearDown() override {
    if (blocker_) munmap(blocker_, kPage);
    MapErrors::TearDown();
  }
  void* blocker_ = nullptr;
  std::string blocker_name_;
};

TEST_F(AddressConflicts, AtTheFirstSegment) {
  block(ranges_.front().lo, "blocker-first");
  expect_conflict();
}

TEST_F(AddressConflicts, AtTheLastSegmentEverythingBeforeIsRolledBack) {
  const auto segs = layout_.segments();
  block(segs.back().hi - kPage, "blocker-last");
  expect_conflict();
}

TEST_F(AddressConflicts, InsideALargeSegment) {
  Range big;
  for (const Range& r : layout_.segments())
    if (r.hi - r.lo > big.hi - big.lo) big = r;
  ASSERT_GE(big.hi - big.lo, 3 * kPage);
  block(big.lo + ((big.hi - big.lo) / 2 & ~(kPage - 1)), "blocker-middle");
  expect_conflict();
}

TEST_F(AddressConflicts, AtTheVdsoForwarder) {
  if (!layout_.vdso.hi) GTEST_SKIP() << "the image has no vDSO record";
  block(layout_.vdso.lo, "blocker-vdso");
  expect_conflict();
}

// ---- the same image twice ----

TEST_F(MapErrors, SameImageAlreadyMapped) {
  subctx::Subcontext sc = mm().request_map(basic_image());
  const std::string handle = "subcontext " + std::to_string(sc.handle());
  expect_map_refused(basic_image(), Errc::AlreadyMapped, {basic_image(), "already mapped", handle}, {});
  // Other names of the same file.
  const std::string sym = temp_path("basic-symlink.img"), hard = temp_path("basic-hardlink.img");
  ASSERT_EQ(symlink(basic_image().c_str(), sym.c_str()), 0);
  ASSERT_EQ(link(basic_image().c_str(), hard.c_str()), 0);
  expect_map_refused(sym, Errc::AlreadyMapped, {"already mapped", handle}, {});
  expect_map_refused(hard, Errc::AlreadyMapped, {"already mapped", handle}, {});
  EXPECT_EQ(sc.call<int64_t(int64_t)>("square", 6), 36);
  mm().unmap(sc);
  subctx::Subcontext again = mm().request_map(sym);
  EXPECT_EQ(again.call<int64_t(int64_t)>("square", 6), 36);
  mm().unmap(again);
}

TEST_F(MapErrors, CopyOfAMappedImageIsAlreadyMapped) {
  subctx::Subcontext sc = mm().request_map(basic_image());
  const std::string copy = copy_image(basic_image(), "basic-copy.img");
  expect_map_refused(copy, Errc::AlreadyMapped, {copy, "is a copy of " + basic_image(), "already mapped"}, {});
  mm().unmap(sc);
  subctx::Subcontext c = mm().request_map(copy);
  EXPECT_EQ(c.call<int64_t(int64_t)>("bump", 1), 101);
  mm().unmap(c);
}

}  // namespace
}  // namespace e2e
