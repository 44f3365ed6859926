// The server side of the snapshot: snapshot() that returns, stdout buffers
// flushed exactly once, lazily bound PLT slots resolved (or a refusal that
// names the symbol), and an image that readelf lists.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "image/reader.hpp"
#include "support/e2e_test.hpp"
#include "sys/unique_fd.hpp"

namespace e2e {
namespace {

class Snapshot : public E2eTest {};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST_F(Snapshot, ReturnsAndTheServerGoesOnWithPendingOutputPrintedOnce) {
  const std::string first = temp_path("gen1.img"), second = temp_path("gen2.img");
  ProcessResult r = run({paths::kReturningServer, first, second});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "buffered before the first snapshot; after it; done\n");
  EXPECT_EQ(r.err, "");

  subctx::Subcontext sc = mm().request_map(first);
  EXPECT_EQ(sc.call<int64_t()>("get_generation"), 1);
  mm().unmap(sc);
  // Same server, same addresses: the second image maps once the first is gone.
  sc = mm().request_map(second);
  EXPECT_EQ(sc.call<int64_t()>("get_generation"), 2);
  mm().unmap(sc);
}

TEST_F(Snapshot, ServerThatRanAThreadWritesAConsistentImage) {
  // After a thread was created (and joined), glibc's pread/pwrite wrappers
  // write the TCB around each system call; the copy must not capture that.
  const std::string image = temp_path("joined.img");
  ProcessResult r = run({paths::kRefusingServer, "threads", image});
  ASSERT_TRUE(r.ok()) << r.describe();
  subctx::sys::UniqueFd fd(open(image.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  subctx::image::FileSource src(fd.get(), static_cast<uint64_t>(st.st_size));
  EXPECT_EQ(subctx::image::verify_segments(src, subctx::image::read_image(src, image)), "");
}

TEST_F(Snapshot, LazilyBoundSlotsAreResolvedAtSnapshot) {
  // vanish() and keep() were never called before the snapshot: their PLT
  // slots still pointed at the server's dynamic linker.
  const std::string image = temp_path("lazy.img");
  ProcessResult r = run({paths::kLazyServer, image});
  ASSERT_TRUE(r.ok()) << r.describe();
  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("call_vanish", 41), 42);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("call_keep", 21), 42);
  mm().unmap(sc);
}

TEST_F(Snapshot, UnresolvableLazySlotIsRefusedWithTheFix) {
  const std::string image = temp_path("vanished.img");
  SpawnOptions options;
  options.env.push_back(std::string("LD_LIBRARY_PATH=") + paths::kVanishEmptyDir);
  ProcessResult r = run({paths::kLazyServer, image}, options);
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("snapshot refused: 1 lazily bound PLT slots could not be resolved"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": vanish"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("LD_BIND_NOW=1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("-Wl,-z,now"), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(stat(image.c_str(), &st), 0) << "a refused snapshot wrote an image";
}

TEST_F(Snapshot, ReadelfListsTheSegmentsAndTheSubctxNotes) {
  if (access("/usr/bin/readelf", X_OK) != 0) GTEST_SKIP() << "readelf (binutils) is not installed";
  const std::string image = basic_image();
  ProcessResult r = run({"/usr/bin/readelf", "-lnW", image});
  ASSERT_TRUE(r.ok()) << r.describe();
  const subctx::image::ImageInfo info = read_image_info(image);
  EXPECT_NE(r.out.find("Elf file type is CORE"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, "  LOAD "), info.segments.size()) << r.out;
  EXPECT_GE(count(r.out, "SUBCTX "), 7u) << r.out;
  EXPECT_NE(r.out.find("0x53430006"), std::string::npos) << "exports note: " << r.out;
}

// The server's stack lay where a client's own stack may grow (both random in
// the same 16 GiB): about one map in 1,700 in a new process was refused
// ("snapshot the server again").  The image keeps the used part of the
// stack below the libraries, every pointer to it moved along; nothing of
// the image lies where any process's stack may be.
TEST_F(Snapshot, TheServersStackMovesOutOfWhereClientStacksLie) {
  const std::string image = feature_image();
  const subctx::image::ImageInfo info = read_image_info(image);
  size_t stacks = 0;
  for (const auto& seg : info.segments) {
    EXPECT_LE(seg.end(), lowest_stack_room()) << subctx::image::segment_kind_name(seg.kind) << " " << seg.origin;
    stacks += seg.kind == subctx::image::SegmentKind::Stack;
  }
  EXPECT_EQ(stacks, 1u);
  if (info.vdso.base) {
    EXPECT_LE(info.vdso.base + info.vdso.size, lowest_stack_room());
  }

  // What was at the stack's top reads the same through the moved pointers:
  // environ and its strings, argv (a pointer main() kept), the auxiliary
  // vector and the bytes AT_RANDOM points at.
  subctx::Subcontext sc = mm().request_map(image);
  const char* path = std::getenv("PATH");
  EXPECT_EQ(std::string(sc.call<const char*(const char*)>("env_value", "PATH")), path ? path : "(unset)");
  EXPECT_EQ(std::string(sc.call<const char*(int64_t)>("arg_value", 0)), paths::kFeatureServer);
  EXPECT_EQ(std::string(sc.call<const char*(int64_t)>("arg_value", 1)), image);
  EXPECT_EQ(std::string(sc.call<const char*()>("program_name")), paths::kFeatureServer);
  EXPECT_EQ(sc.call<int64_t()>("page_size_from_auxv"), sysconf(_SC_PAGESIZE));
  EXPECT_EQ(sc.call<int64_t()>("at_random_unchanged"), 1);
}

// A server linked with -z execstack has an rwx [stack]: moved and scanned
// like any other (the environment's pointers in it follow).
TEST_F(Snapshot, AnExecutableStackMovesToo) {
  const std::string image = build_image(paths::kCExecstackServer, "execstack.img", {});
  bool rwx_stack = false;
  for (const auto& seg : read_image_info(image).segments) {
    EXPECT_LE(seg.end(), lowest_stack_room()) << subctx::image::segment_kind_name(seg.kind) << " " << seg.origin;
    if (seg.kind == subctx::image::SegmentKind::Stack) rwx_stack = seg.prot == (PROT_READ | PROT_WRITE | PROT_EXEC);
  }
  EXPECT_TRUE(rwx_stack) << "the kernel gave the server a stack that is not executable";
  subctx::Subcontext sc = mm().request_map(image);
  const char* path = std::getenv("PATH");
  EXPECT_EQ(sc.call<int64_t()>("path_length"), path ? static_cast<int64_t>(std::strlen(path)) : -1);
}

}  // namespace
}  // namespace e2e
