// The `subctx` command end to end: the real binary against an image that the
// real basic_server wrote (square i64(i64), bump i64(i64), hyp f64(f64,f64),
// say i32(str)), checking output and exit status.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <regex>

#include "image_files.hpp"
#include "run_command.hpp"

namespace subctx::test {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

class ToolTest : public ::testing::Test {
 protected:
  // One image for the whole suite: writing it takes a server run.  Tests
  // that damage it work on copies.
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>("subctx-tool-test");
    image_ = dir_->path() + "/basic.img";
    const CommandResult r = run_command({BASIC_SERVER, image_});
    ASSERT_EQ(r.exit_code, 0) << "basic_server could not write " << image_ << ": " << describe(r);
    write_file(image_, read_file(image_), 0600);  // whatever the umask was
  }
  static void TearDownTestSuite() { dir_.reset(); }

  void SetUp() override { ASSERT_TRUE(std::filesystem::exists(image_)) << "no image; see SetUpTestSuite"; }

  static CommandResult subctx(std::vector<std::string> args) {
    args.insert(args.begin(), SUBCTX_TOOL);
    return run_command(args);
  }

  // A copy of the image in the suite's directory, mode 0600.
  static std::string copy_image(const std::string& name) {
    const std::string path = dir_->path() + "/" + name;
    write_file(path, read_file(image_), 0600);
    return path;
  }

  static size_t segment_count() { return program_headers(image_).size() - 1; }

  static std::unique_ptr<TempDir> dir_;
  static std::string image_;
};

std::unique_ptr<TempDir> ToolTest::dir_;
std::string ToolTest::image_;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

size_t count_matches(const std::string& text, const std::regex& re) {
  return static_cast<size_t>(std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

// ---- inspect ---------------------------------------------------------------

TEST_F(ToolTest, InspectListsTheExportsWithSignatures) {
  const CommandResult r = subctx({"inspect", image_});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(contains(r.out, "exports (4):")) << r.out;
  for (const char* line :
       {R"(square\s+0x[0-9a-f]+\s+i64\(i64\)\s+public)", R"(bump\s+0x[0-9a-f]+\s+i64\(i64\)\s+public)",
        R"(hyp\s+0x[0-9a-f]+\s+f64\(f64,f64\)\s+public)", R"(say\s+0x[0-9a-f]+\s+i32\(str\)\s+public)"})
    EXPECT_TRUE(std::regex_search(r.out, std::regex(line))) << "no line matching " << line << " in\n" << r.out;
}

TEST_F(ToolTest, InspectListsEverySegment) {
  const CommandResult r = subctx({"inspect", image_});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const size_t n = segment_count();
  EXPECT_TRUE(contains(r.out, "segments (" + std::to_string(n) + "):")) << r.out;
  // "  12  0x7f0000000000  0x7f0000001000  r-x   file  ...": one row each.
  const std::regex row(R"(\n\s+\d+\s+0x[0-9a-f]{12}\s+0x[0-9a-f]{12}\s+[r-][w-][x-]\s+[a-z-]+\s)");
  EXPECT_EQ(count_matches(r.out, row), n) << r.out;
  for (const char* what : {"[heap]", "[stack]", "libc.so", "basic_server", "gate-stack", "gate-guard"})
    EXPECT_TRUE(contains(r.out, what)) << "no " << what << " in\n" << r.out;
}

TEST_F(ToolTest, InspectShowsMetadataThreadVdsoAndTotals) {
  const CommandResult r = subctx({"inspect", image_});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const char* re :
       {R"(format:\s+version 3)", R"(creator:\s+\S*basic_server \(build-id [0-9a-f]+\))",
        R"(created:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC)", R"(kernel:\s+Linux )", R"(libc:\s+glibc )",
        R"(thread pointer\s+0x[0-9a-f]+ \(segment \d+\))", R"(gate stack\s+0x[0-9a-f]+-0x[0-9a-f]+)",
        R"(vdso:\s+(0x|none))", R"(virtual size\s+\S+ \S+ \(\d+ bytes\) in \d+ segments)",
        R"(on disk\s+\S+ \S+ \(\d+ bytes\))", R"(file size\s+\S+ \S+ \(\d+ bytes\))"})
    EXPECT_TRUE(std::regex_search(r.out, std::regex(re))) << "no match for " << re << " in\n" << r.out;
  EXPECT_TRUE(contains(r.out, "\nprograms:  does not declare that it starts programs")) << r.out;
  const auto size = std::filesystem::file_size(image_);
  EXPECT_TRUE(contains(r.out, "(" + std::to_string(size) + " bytes)")) << r.out;
}

TEST_F(ToolTest, InspectReadsOnlyTheHeaderSoItWorksWhereMappingIsRefused) {
  // The Matchmaker refuses a group-writable image; inspect never maps.
  const std::string loose = copy_image("loose.img");
  ASSERT_EQ(chmod(loose.c_str(), 0664), 0);
  const CommandResult r = subctx({"inspect", loose});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  const CommandResult c = subctx({"call", loose, "square", "2"});
  EXPECT_EQ(c.exit_code, kExitError) << describe(c);
  EXPECT_TRUE(contains(c.err, "writable by group or others")) << describe(c);
}

// ---- call ------------------------------------------------------------------

TEST_F(ToolTest, CallSquarePrintsTheResult) {
  const CommandResult r = subctx({"call", image_, "square", "7"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "49\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(ToolTest, CallParsesNegativeAndHexIntegers) {
  EXPECT_EQ(subctx({"call", image_, "square", "-3"}).out, "9\n");
  EXPECT_EQ(subctx({"call", image_, "square", "0x10"}).out, "256\n");
}

TEST_F(ToolTest, CallHypTakesTwoDoubles) {
  const CommandResult r = subctx({"call", image_, "hyp", "3", "4"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "25\n");
  EXPECT_EQ(subctx({"call", image_, "hyp", "0.1", "0"}).out, "0.010000000000000002\n");  // %.17g
}

TEST_F(ToolTest, CallSayPrintsTheServersOutputBeforeTheResult) {
  const CommandResult r = subctx({"call", image_, "say", "hello"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "server says: hello\n19\n");  // printf's count: 19 characters
}

TEST_F(ToolTest, CallWritesStayPrivateAndTheImageIsUnchanged) {
  const std::vector<uint8_t> before = read_file(image_);
  // counter was 100 at the snapshot; each client starts from there.
  EXPECT_EQ(subctx({"call", image_, "bump", "5"}).out, "105\n");
  EXPECT_EQ(subctx({"call", image_, "bump", "5"}).out, "105\n");
  EXPECT_TRUE(read_file(image_) == before) << "the image file changed";
}

TEST_F(ToolTest, CallWithTooFewOrTooManyArgumentsIsAUsageError) {
  for (const auto& [args, got] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{{{}, "got 0"}, {{"1", "2"}, "got 2"}}) {
    std::vector<std::string> cmd = {"call", image_, "square"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    const CommandResult r = subctx(cmd);
    EXPECT_EQ(r.exit_code, kExitUsage) << describe(r);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(contains(r.err,
                         "export \"square\" of " + image_ + " has signature i64(i64): it takes 1 argument, " + got))
        << describe(r);
    EXPECT_TRUE(contains(r.err, "usage: subctx call [--memory] IMAGE EXPORT [ARGS...]")) << describe(r);
  }
}

TEST_F(ToolTest, CallWithAnUnparsableNumberIsAUsageError) {
  CommandResult r = subctx({"call", image_, "square", "abc"});
  EXPECT_EQ(r.exit_code, kExitUsage) << describe(r);
  EXPECT_TRUE(contains(r.err, "argument 1 of \"square\" (i64 in i64(i64)): \"abc\" is not a valid i64")) << describe(r);

  r = subctx({"call", image_, "square", "9223372036854775808"});
  EXPECT_EQ(r.exit_code, kExitUsage) << describe(r);
  EXPECT_TRUE(contains(r.err, "out of range for i64")) << describe(r);

  r = subctx({"call", image_, "hyp", "3", "four"});
  EXPECT_EQ(r.exit_code, kExitUsage) << describe(r);
  EXPECT_TRUE(contains(r.err, "argument 2 of \"hyp\" (f64 in f64(f64,f64)): \"four\" is not a valid f64"))
      << describe(r);
}

TEST_F(ToolTest, CallOfAnUnknownExportListsTheExports) {
  const CommandResult r = subctx({"call", image_, "cube", "2"});
  EXPECT_EQ(r.exit_code, kExitError) << describe(r);
  EXPECT_TRUE(contains(r.err,
                       "subctx: image " + image_ + " has no export \"cube\"; its exports are: square, bump, hyp, say"))
      << describe(r);
}

// What the tool quotes goes through sys::printable: a control character
// (an escape sequence for the terminal) and the backslash, as \xNN alike.
TEST_F(ToolTest, QuotedTextIsEscapedForTheTerminal) {
  CommandResult r = subctx({"call", image_, "a\\b\x1b[0m", "2"});
  EXPECT_EQ(r.exit_code, kExitError) << describe(r);
  EXPECT_TRUE(contains(r.err, "has no export \"a\\x5cb\\x1b[0m\"; its exports are")) << describe(r);

  r = subctx({"call", image_, "square", "1\\\n2"});
  EXPECT_EQ(r.exit_code, kExitUsage) << describe(r);
  EXPECT_TRUE(contains(r.err, "\"1\\x5c\\x0a2\" is not a valid i64")) << describe(r);
}

TEST_F(ToolTest, MissingImageSaysSoForEveryCommand) {
  const std::string missing = dir_->path() + "/missing.img";
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"call", missing, "square", "1"}, std::vector<std::string>{"inspect", missing},
        std::vector<std::string>{"verify", missing}}) {
    const CommandResult r = subctx(cmd);
    EXPECT_EQ(r.exit_code, kExitError) << describe(r);
    EXPECT_TRUE(contains(r.err, "subctx: image " + missing + " does not exist")) << describe(r);
    EXPECT_TRUE(contains(r.err, "check the path")) << describe(r);
  }
}

// ---- verify ----------------------------------------------------------------

TEST_F(ToolTest, VerifyPassesOnAFreshImage) {
  const CommandResult r = subctx({"verify", image_});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "OK: " + std::to_string(segment_count()) + " segments verified\n");
}

TEST_F(ToolTest, VerifyNamesTheSegmentWhoseDataChanged) {
  const std::string damaged = copy_image("segment-flip.img");
  const std::vector<Elf64_Phdr> ph = program_headers(damaged);
  size_t seg = 0;  // the first segment with data in the file
  while (seg + 1 < ph.size() && ph[seg + 1].p_filesz == 0) ++seg;
  ASSERT_LT(seg + 1, ph.size());
  flip_byte(damaged, ph[seg + 1].p_offset + ph[seg + 1].p_filesz / 2);

  const CommandResult r = subctx({"verify", damaged});
  EXPECT_EQ(r.exit_code, kExitError) << describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "segment " + std::to_string(seg) + " [")) << describe(r);
  EXPECT_TRUE(contains(r.err, "digest mismatch")) << describe(r);
  EXPECT_TRUE(contains(r.err, damaged)) << describe(r);
}

TEST_F(ToolTest, ADamagedHeaderIsADigestMismatchForEveryCommand) {
  // Change one character of the creator path in the notes: the header still
  // parses, so only its digest can catch it.
  const std::string damaged = copy_image("header-flip.img");
  const std::vector<Elf64_Phdr> ph = program_headers(damaged);
  const std::vector<uint8_t> bytes = read_file(damaged);
  const std::string header(bytes.begin(), bytes.begin() + static_cast<long>(ph[0].p_offset + ph[0].p_filesz));
  const size_t at = header.find("basic_server");
  ASSERT_NE(at, std::string::npos) << "creator path not found in the notes";
  flip_byte(damaged, at);

  for (const char* command : {"verify", "inspect"}) {
    const CommandResult r = subctx({command, damaged});
    EXPECT_EQ(r.exit_code, kExitError) << command << ": " << describe(r);
    EXPECT_TRUE(contains(r.err, "subctx: " + damaged + ": header digest mismatch")) << command << ": " << describe(r);
  }
  const CommandResult c = subctx({"call", damaged, "square", "2"});
  EXPECT_EQ(c.exit_code, kExitError) << describe(c);
  EXPECT_TRUE(contains(c.err, "header digest mismatch")) << describe(c);
}

TEST_F(ToolTest, AFileThatIsNotAnImageIsRefused) {
  const std::string text = dir_->path() + "/notes.txt";
  write_file(text, {'h', 'e', 'l', 'l', 'o', '\n'});
  const CommandResult r = subctx({"verify", text});
  EXPECT_EQ(r.exit_code, kExitError) << describe(r);
  EXPECT_TRUE(contains(r.err, text + ": truncated")) << describe(r);

  const CommandResult d = subctx({"inspect", dir_->path()});
  EXPECT_EQ(d.exit_code, kExitError) << describe(d);
  EXPECT_TRUE(contains(d.err, "is a directory, not a regular file")) << describe(d);
}

// ---- usage -----------------------------------------------------------------

TEST_F(ToolTest, UsageErrorsExitWithTwo) {
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{}, std::vector<std::string>{"frobnicate"}, std::vector<std::string>{"inspect"},
        std::vector<std::string>{"verify", "a.img", "b.img"}, std::vector<std::string>{"call", "a.img"}}) {
    const CommandResult r = subctx(cmd);
    EXPECT_EQ(r.exit_code, kExitUsage) << describe(r);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(contains(r.err, "usage: subctx")) << describe(r);
  }
  EXPECT_TRUE(contains(subctx({"frobnicate"}).err, "unknown command \"frobnicate\""));
}

TEST_F(ToolTest, HelpGoesToStdout) {
  const CommandResult r = subctx({"--help"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  for (const char* what :
       {"usage: subctx COMMAND", "inspect IMAGE", "call [--memory] IMAGE EXPORT [ARGS...]", "verify IMAGE"})
    EXPECT_TRUE(contains(r.out, what)) << r.out;
  EXPECT_EQ(subctx({"call", "--help"}).out, "usage: subctx call [--memory] IMAGE EXPORT [ARGS...]\n");
}

}  // namespace
}  // namespace subctx::test
