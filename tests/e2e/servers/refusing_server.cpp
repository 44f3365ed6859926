// A server that asks for snapshots the library must refuse.
//
//   e2e_refusing_server threads IMAGE
//       a second thread runs: snapshot() throws SnapshotRefused (printed as
//       "refused <code>: <message>" on stdout); then the thread is joined
//       and snapshot_and_exit() writes a working image.
//   e2e_refusing_server threads-exit IMAGE
//       a second thread runs during snapshot_and_exit(): exit status 1.
//   e2e_refusing_server no-exports IMAGE
//       nothing exported: snapshot_and_exit() exits with status 1.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <subctx/server.hpp>
#include <thread>

namespace {

int64_t triple(int64_t x) { return 3 * x; }

// A thread that waits until released.
class Sleeper {
 public:
  Sleeper()
      : thread_([this] {
          std::unique_lock lock(mutex_);
          cv_.wait(lock, [this] { return released_; });
        }) {}
  void release_and_join() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool released_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s threads|threads-exit|no-exports IMAGE\n", argv[0]);
    return 2;
  }
  const char* mode = argv[1];
  const char* image = argv[2];
  if (std::strcmp(mode, "no-exports") == 0) subctx::snapshot_and_exit(image);

  subctx::export_function("triple", reinterpret_cast<void*>(&triple), subctx::signature_of<int64_t(int64_t)>());
  Sleeper sleeper;
  if (std::strcmp(mode, "threads-exit") == 0) subctx::snapshot_and_exit(image);
  if (std::strcmp(mode, "threads") != 0) return 2;
  try {
    subctx::snapshot(image);
    std::printf("snapshot was not refused\n");
    return 3;
  } catch (const subctx::SnapshotRefused& e) {
    std::printf("refused %s: %s\n", subctx::errc_name(e.code()), e.what());
  }
  std::fflush(stdout);
  sleeper.release_and_join();
  subctx::snapshot_and_exit(image);
}
