// The external snapshot's copy in two threads: process_vm_readv is a copy
// the in-process snapshot does not make (it hashes and writes its own
// memory in place), so a reader thread fills the next chunks from the
// target while the snapshot's thread digests and writes the one before.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace subctx::external {

class Tracee;

class ChunkReader {
 public:
  struct Job {
    uint64_t addr = 0;       // page-aligned
    uint64_t pages = 0;      // at most kChunkPages
    bool anonymous = false;  // never-touched pages (pagemap) are not read: zeros
  };
  struct Chunk {
    const Job* job = nullptr;
    std::vector<uint8_t> data;     // job->pages pages; what is not present is left as it was
    std::vector<uint8_t> present;  // per page: read (1), or never touched (0)
    uint64_t failed_at = 0;        // the address a read stopped at, 0 if none did
    int err = 0;                   // its errno
  };
  static constexpr uint64_t kChunkPages = 256;  // 1 MiB

  // Starts the reader thread on `jobs`, in order.  The tracee's read() is
  // used by that thread only until the destructor has joined it.
  ChunkReader(Tracee& t, int pagemap_fd, std::vector<Job> jobs);
  ~ChunkReader();  // stops and joins the thread
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // The next chunk, once read; valid until the next call.  nullptr after
  // the last job.
  const Chunk* next();

 private:
  static constexpr size_t kSlots = 3;  // read ahead by two chunks
  void run();
  void read_chunk(const Job& job, Chunk* c);

  Tracee& t_;
  int pagemap_fd_;
  std::vector<Job> jobs_;
  Chunk slots_[kSlots];
  std::mutex mu_;
  std::condition_variable cv_;
  size_t produced_ = 0;  // jobs read into slots
  size_t released_ = 0;  // slots given back by next()
  bool holding_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace subctx::external
