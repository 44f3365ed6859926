// The Lua payload: a real client process's outputs equal a fresh native
// process's for every input (and backend); in-process checks of what the
// snapshot holds, errors, private state and reset.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <subctx/subctx.hpp>

#include "inputs.hpp"
#include "payload_test.hpp"

namespace {

using payload::testing::image;

PAYLOAD_COMPARISON_TESTS(LuaPayload);

std::string eval(const subctx::Subcontext& sc, const std::string& expr) {
  return sc.call<const char*(const char*)>("run", expr.c_str());
}

class LuaInProcess : public ::testing::Test {
 protected:
  void SetUp() override { sc_ = subctx::Matchmaker::instance().request_map(image()); }
  void TearDown() override { subctx::Matchmaker::instance().unmap(sc_); }
  subctx::Subcontext sc_;
};

TEST_F(LuaInProcess, TheLibraryWasLoadedBeforeTheSnapshot) {
  EXPECT_EQ(eval(sc_, "loaded_at_snapshot"), "168");  // primes below 1000, computed by init()
  EXPECT_EQ(eval(sc_, "type(calc), type(Vector), type(Stack)"), "\"function\", \"table\", \"table\"");
  EXPECT_EQ(eval(sc_, "calc('(1 + 2) * 3')"), "9");
}

TEST_F(LuaInProcess, ErrorsAreResultsAndTheInterpreterGoesOn) {
  EXPECT_EQ(eval(sc_, "error('boom', 0)"), "error: boom");
  EXPECT_EQ(eval(sc_, "Stack.new():pop()"), "error: {code=\"EMPTY\",message=\"pop from an empty stack\"}");
  EXPECT_EQ(eval(sc_, "this is not lua"), "error: input:1: syntax error near 'is'");
  EXPECT_EQ(eval(sc_, "1 + 1"), "2");
}

TEST_F(LuaInProcess, StateIsPrivateToTheClientAndResetBringsTheSnapshotBack) {
  EXPECT_EQ(eval(sc_, "visit()"), "1");
  EXPECT_EQ(eval(sc_, "visit()"), "2");
  EXPECT_EQ(eval(sc_, "answer = 42"), "(no value)");
  // A second client process sees the snapshot's state, not ours.
  const std::string inputs = payload::testing::temp_dir() + "/second.txt";
  std::ofstream(inputs) << "visit()\n%%\ntype(answer)\n";
  e2e::ProcessResult r = payload::testing::run_client("mprotect", {PAYLOAD_CLIENT, image(), inputs});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(payload::parse_outputs(r.out), (std::vector<std::string>{"1", "\"nil\""}));
  // Ours goes on, until a reset.
  EXPECT_EQ(eval(sc_, "visit(), answer"), "3, 42");
  sc_.reset();
  EXPECT_EQ(eval(sc_, "visit(), answer"), "1, nil");
}

TEST_F(LuaInProcess, MemoryGrowsInsideTheSubcontextAndComesBackAtReset) {
  EXPECT_EQ(eval(sc_, "1"), "1");  // a small call's pages: the level a client sees after its first call
  const subctx::MemoryInfo before = sc_.memory();
  EXPECT_EQ(eval(sc_, "big = {} for i = 1, 1000000 do big[i] = i end return #big"), "1000000");
  const subctx::MemoryInfo grown = sc_.memory();
  auto pages = [](const subctx::MemoryInfo& m) { return m.dirty_pages + m.mapped_bytes / 4096; };
  EXPECT_GT(pages(grown), pages(before) + 1000) << "a million-slot table takes thousands of pages";
  sc_.reset();
  const subctx::MemoryInfo after = sc_.memory();
  EXPECT_LE(after.dirty_pages, before.dirty_pages);
  EXPECT_LE(after.mapped_bytes, before.mapped_bytes);
  EXPECT_EQ(eval(sc_, "big"), "nil");
}

}  // namespace
