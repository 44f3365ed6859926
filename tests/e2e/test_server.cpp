// Server-side refusals: a snapshot while a second thread runs, and a
// snapshot with no exports.  A refused snapshot writes no image (nor a
// leftover temporary file).
#include <dirent.h>
#include <sys/stat.h>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Names in temp_dir() that start with prefix.
std::vector<std::string> files_starting(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* d = opendir(temp_dir().c_str());
  while (dirent* e = d ? readdir(d) : nullptr)
    if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(e->d_name);
  if (d) closedir(d);
  return out;
}

class ServerRefusals : public E2eTest {};

TEST_F(ServerRefusals, SnapshotWhileASecondThreadRunsThenAfterJoin) {
  const std::string image = temp_path("threads.img");
  ProcessResult r = run({paths::kRefusingServer, "threads", image});
  ASSERT_TRUE(r.ok()) << r.describe();
  // snapshot() threw SnapshotRefused naming the threads and the fix.
  EXPECT_EQ(r.out.rfind("refused SnapshotRefused: snapshot refused: 2 threads are running", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("single-threaded"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("join or stop the other threads"), std::string::npos) << r.out;
  // After the join, snapshot_and_exit() wrote a working image.
  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("triple", 14), 42);
  EXPECT_EQ(files_starting("threads.img.tmp"), std::vector<std::string>{});
}

TEST_F(ServerRefusals, SnapshotAndExitWithASecondThreadExitsWithStatus1) {
  const std::string image = temp_path("threads-exit.img");
  ProcessResult r = run({paths::kRefusingServer, "threads-exit", image});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("subctx: snapshot refused: 2 threads are running"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(image));
  EXPECT_EQ(files_starting("threads-exit.img"), std::vector<std::string>{});
}

TEST_F(ServerRefusals, SnapshotWithNoExports) {
  const std::string image = temp_path("no-exports.img");
  ProcessResult r = run({paths::kRefusingServer, "no-exports", image});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  EXPECT_NE(r.err.find("snapshot refused: no exports declared"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SUBCTX_EXPORT"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(image));
  EXPECT_EQ(files_starting("no-exports.img"), std::vector<std::string>{});
}

TEST_F(ServerRefusals, ServersExitWithStatus0AndWriteAnImage) {
  for (const char* server : {paths::kBasicServer, paths::kFeatureServer, paths::kCServer}) {
    const std::string image = temp_path(std::string("status-") + std::to_string(std::hash<std::string>{}(server)));
    ProcessResult r = run({server, image});
    EXPECT_TRUE(r.ok()) << server << ": " << r.describe();
    EXPECT_TRUE(exists(image)) << server;
    EXPECT_EQ(r.err, "") << server;
  }
}

}  // namespace
}  // namespace e2e
