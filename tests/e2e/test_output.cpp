// Subcontext output (printf, puts, iostreams, stderr) reaches the client's
// stdout/stderr in order with the client's own output, by the time each call
// returns: with stdout a pipe and a regular file (both fully buffered).
#include <fstream>
#include <sstream>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

std::string expected_stdout() {
  std::string s =
      "client line 1\n"
      "sub printf a 1\n"
      "client cout 2\n"
      "sub puts b\n"
      "client line 3\n"
      "sub cout c 3\n"
      "client partial [sub partial] end\n"
      "sub endl d\n"
      "sub printf e 5\n"
      "client write(2)\n";
  for (int i = 0; i < 300; ++i)
    s += "client loop " + std::to_string(i) + "\nsub printf loop " + std::to_string(i) + "\n";
  return s + "client last\n";
}

const char kExpectedStderr[] =
    "client stderr 1\n"
    "sub stderr x\n"
    "client cerr 2\n"
    "sub cerr y\n"
    "client stderr 3\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(OutputOrder, StdoutIsAPipe) {
  ProcessResult r = run({paths::kWorkerClient, "output", feature_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, expected_stdout());
  EXPECT_EQ(r.err, kExpectedStderr);
}

TEST(OutputOrder, StdoutIsAFile) {
  SpawnOptions o;
  o.stdout_file = temp_path("output.txt");
  ProcessResult r = run({paths::kWorkerClient, "output", feature_image()}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(read_file(o.stdout_file), expected_stdout());
  EXPECT_EQ(r.err, kExpectedStderr);
}

TEST(OutputOrder, ServerOutputIsFlushedOnceByTheSnapshotNeverByClients) {
  // The feature server leaves "feature server ready" unflushed (no newline,
  // stdout a pipe) when it snapshots: the snapshot flushes it, so it
  // appears once in the server's output and in no client's.
  ProcessResult server = run({paths::kFeatureServer, temp_path("flush.img")});
  ASSERT_TRUE(server.ok()) << server.describe();
  EXPECT_EQ(server.out, "feature server ready");
  ProcessResult client = run({paths::kWorkerClient, "output", temp_path("flush.img")});
  ASSERT_TRUE(client.ok()) << client.describe();
  EXPECT_EQ(client.out.find("ready"), std::string::npos) << client.out.substr(0, 200);
  EXPECT_EQ(client.out, expected_stdout());
}

}  // namespace
}  // namespace e2e
