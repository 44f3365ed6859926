// unmap(sc), finalize() (unmaps every subcontext, then uninstalls the
// Matchmaker until init()), and the same at exit.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;

class Lifecycle : public E2eTest {};

TEST_F(Lifecycle, InstalledBeforeMainAndInitIsIdempotent) {
  EXPECT_TRUE(mm().installed());
  mm().init();
  EXPECT_EQ(sbc_init(), 0);
  EXPECT_TRUE(mm().installed());
  expect_valid_map_works();
}

TEST_F(Lifecycle, UnmapRemovesTheMappingsAndInvalidatesHandles) {
  const auto ranges = read_layout(basic_image()).all_ranges();
  subctx::Subcontext sc = mm().request_map(basic_image());
  EXPECT_FALSE(lines_overlapping(read_self_maps(), ranges).empty());
  auto bump = sc.function<int64_t(int64_t)>("bump");
  EXPECT_EQ(bump(5), 105);
  const int handle = sc.handle();
  mm().unmap(sc);
  EXPECT_EQ(join(lines_overlapping(read_self_maps(), ranges)), "") << "unmapped image still mapped";
  expect_error([&] { bump(1); }, Errc::NoSubcontext, {"unmapped"});
  expect_error([&] { sc.call<int64_t(int64_t)>("square", 2); }, Errc::NoSubcontext, {});
  expect_error([&] { mm().unmap(sc); }, Errc::NoSubcontext, {std::to_string(handle)});
  expect_error([&] { mm().find(handle); }, Errc::NoSubcontext, {std::to_string(handle)});
  expect_error([&] { mm().unmap(subctx::Subcontext()); }, Errc::NoSubcontext, {"empty"});
}

TEST_F(Lifecycle, UnmapLeavesClientMemoryInHolesTheSubcontextMade) {
  subctx::Subcontext sc = mm().request_map(feature_image());
  auto* block = sc.call<void*()>("snapshot_block_addr");
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(sc.call<int64_t(void*, int64_t, int64_t)>("check_block", block, int64_t{4} << 20, 0x5a), -1);
  sc.call<void()>("free_snapshot_block");  // munmap inside the image's range
  // The client's own memory lands in the hole.
  void* hole = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(block) & ~uintptr_t{4095});  // chunk header
  void* mine = mmap(hole, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(mine, hole) << "the freed block's range is not free: " << std::strerror(errno);
  std::memset(mine, 0x33, 1 << 20);
  mm().unmap(sc);
  // Still the client's, still its data.
  EXPECT_EQ(static_cast<unsigned char*>(mine)[0], 0x33);
  EXPECT_EQ(static_cast<unsigned char*>(mine)[(1 << 20) - 1], 0x33);
  EXPECT_NE(join(lines_overlapping(read_self_maps(),
                                   {{reinterpret_cast<uint64_t>(mine), reinterpret_cast<uint64_t>(mine) + (1 << 20)}})),
            "");
  munmap(mine, 1 << 20);
}

TEST_F(Lifecycle, ExitDoesNotWaitForACallThatNeverReturns) {
  // The call sleeps for 10 minutes; the process must still end (ctest's
  // timeout catches a hang).
  ProcessResult r = run({paths::kWorkerClient, "exit-in-call", feature_image()}, {}, Millis(60000));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "returning from main during a call\n");
}

TEST_F(Lifecycle, EmptyFunctionHandleIsAnError) {
  subctx::Function<int64_t(int64_t)> none;
  expect_error([&] { none(1); }, Errc::NoSubcontext, {"empty"});
}

TEST_F(Lifecycle, RemapAfterUnmapStartsFromTheSnapshotAgain) {
  for (int round = 0; round < 20; ++round) {
    subctx::Subcontext sc = mm().request_map(basic_image());
    EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 0), 100) << "round " << round;
    EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", round + 1), 101 + round);
    mm().unmap(sc.handle());
  }
}

TEST_F(Lifecycle, FinalizeUnmapsEverythingThenRefusesUntilInit) {
  std::vector<Range> ranges = read_layout(basic_image()).all_ranges();
  for (const Range& r : read_layout(feature_image()).all_ranges()) ranges.push_back(r);
  subctx::Subcontext b = mm().request_map(basic_image());
  subctx::Subcontext f = mm().request_map(feature_image());
  EXPECT_EQ(b.call<int64_t(int64_t)>("bump", 1), 101);
  EXPECT_EQ(f.call<int64_t(const char*)>("lua_int", "fib(10)"), 55);

  mm().finalize();
  EXPECT_FALSE(mm().installed());
  EXPECT_EQ(join(lines_overlapping(read_self_maps(), ranges)), "") << "finalize left image mappings";
  expect_error([&] { b.call<int64_t(int64_t)>("bump", 1); }, Errc::NoSubcontext, {"unmapped"});
  expect_error([&] { mm().find(f.handle()); }, Errc::NoSubcontext, {});
  expect_error([&] { mm().request_map(basic_image()); }, Errc::NotInitialized, {"not installed", "init()"});
  EXPECT_EQ(sbc_request_map(basic_image().c_str()), -SBC_E_NOT_INITIALIZED);
  EXPECT_NE(std::string(sbc_last_error()).find("sbc_init"), std::string::npos) << sbc_last_error();
  mm().finalize();  // twice is harmless

  EXPECT_EQ(sbc_init(), 0);
  EXPECT_TRUE(mm().installed());
  subctx::Subcontext again = mm().request_map(basic_image());
  EXPECT_EQ(again.call<int64_t(int64_t)>("bump", 0), 100);
}

TEST_F(Lifecycle, CFinalizeThenInit) {
  int sc = sbc_request_map(basic_image().c_str());
  ASSERT_GE(sc, 0) << sbc_last_error();
  sbc_finalize();
  uint64_t arg = 3, ret = 0;
  EXPECT_EQ(sbc_request_call(sc, "square", &arg, 1, &ret), -SBC_E_NO_SUBCONTEXT);
  EXPECT_EQ(sbc_request_map(basic_image().c_str()), -SBC_E_NOT_INITIALIZED);
  ASSERT_EQ(sbc_init(), 0);
  sc = sbc_request_map(basic_image().c_str());
  ASSERT_GE(sc, 0) << sbc_last_error();
  EXPECT_EQ(sbc_request_call(sc, "square", &arg, 1, &ret), 0);
  EXPECT_EQ(ret, 9u);
  EXPECT_EQ(sbc_unmap(sc), 0);
}

TEST_F(Lifecycle, AtExitEverySubcontextIsUnmappedAndTheMatchmakerUninstalled) {
  // Static client: a destructor that runs after the library's looks at the
  // process once the Matchmaker has finalized.
  ProcessResult r = run({paths::kAtexitClient, basic_image(), feature_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  const std::string first = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(first.rfind("mapped ", 0), 0u) << r.out;
  const std::string n = first.substr(7, first.find(' ', 7) - 7);
  EXPECT_GT(std::stoi(n), 2);
  EXPECT_EQ(r.out, first + "\nat exit: all " + n + " ranges unmapped; request_map: NotInitialized\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(Lifecycle, ClientExitsCleanlyWithSubcontextsMapped) {
  // The shared library's destructor unmaps at exit; the output written by
  // the subcontext before is not lost or repeated.
  ProcessResult r = run({paths::kWorkerClient, "exit-mapped", basic_image(), feature_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "sub printf before exit 1\nreturning from main\n");
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace e2e
