// External snapshot throughput (`subctx snapshot --pid`, docs/external-
// snapshot.md): a plain program (bench_external_target, no subctx code)
// with a heap of SUBCTX_BENCH_HEAP_MB MiB (default 1024), half of it data
// and half zero pages (64 KiB runs alternating), snapshotted from outside by
// external::snapshot_process (what the command runs); in the same iteration
//   * the in-process snapshot of the same heap: bench_image_server, which
//     links subctx_server and calls snapshot() (its own timing), and
//   * plain process_vm_readv of the image's ranges from the same target,
//     into a buffer and nowhere else (the copy's floor, without the writes).
// Counters: each one's heap throughput, the ratios (ext_vs_inproc: goal
// >= 0.8), and the images' allocated blocks (zero pages cost no disk).
// Both snapshots write into prewarmed memory (heap_layout.hpp's
// prewarm_memory, then a file of the data's size written and removed), as
// bench_snapshot's do: the page cache the first write into a fresh file
// allocates costs up to twice as much in this VM.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <subctx/subctx.hpp>

#include "clock.hpp"
#include "external/external_snapshot.hpp"
#include "heap_layout.hpp"
#include "support.hpp"

namespace {

uint64_t heap_mb() {
  const char* e = std::getenv("SUBCTX_BENCH_HEAP_MB");
  const unsigned long long v = e ? std::strtoull(e, nullptr, 10) : 0;
  return v ? v : 1024;
}

// The target, started and ready (its "ready" line read); killed at the end.
class Target {
 public:
  explicit Target(const std::vector<std::string>& argv) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(p[1], STDOUT_FILENO);
      close_range(3, ~0u, 0);  // the target's descriptors are part of its image
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(p[1]);
    char buf[256];
    size_t got = 0;
    while (got < sizeof buf - 1) {
      const ssize_t n = read(p[0], buf + got, 1);
      if (n <= 0 || buf[got] == '\n') break;
      got += static_cast<size_t>(n);
    }
    close(p[0]);
    if (got < 5 || std::string(buf, 5) != "ready") throw std::runtime_error("bench_external_target did not start");
    wait_sleeping();
  }
  ~Target() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;
  pid_t pid() const { return pid_; }

 private:
  // Until it sleeps in pause() (state S in /proc/PID/stat), up to 2 s.
  void wait_sleeping() const {
    for (int i = 0; i < 2000; ++i) {
      char text[512] = {};
      const int fd = open(("/proc/" + std::to_string(pid_) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
      const ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
      if (fd >= 0) close(fd);
      const char* paren = n > 0 ? std::strrchr(text, ')') : nullptr;
      if (paren && paren[1] && paren[2] == 'S') return;
      usleep(1000);
    }
  }
  pid_t pid_ = -1;
};

// process_vm_readv of every range, 1 MiB at a time; what cannot be read (the
// image's gate stack, which the target does not have) is skipped.
double readv_ranges(pid_t pid, const std::vector<bench::Range>& ranges, uint64_t* bytes) {
  static std::vector<char> buf(1 << 20);
  *bytes = 0;
  const double t0 = bench::now_seconds();
  for (const auto& r : ranges)
    for (uint64_t a = r.lo; a < r.hi; a += buf.size()) {
      const size_t len = std::min<uint64_t>(buf.size(), r.hi - a);
      iovec local{buf.data(), len}, remote{reinterpret_cast<void*>(a), len};
      const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (n <= 0) break;
      *bytes += static_cast<uint64_t>(n);
    }
  return bench::now_seconds() - t0;
}

// What bench_image_server's --floor does before its snapshot: `bytes`
// written to a file that is then removed, so that the snapshot's writes get
// page cache from pages just freed (in a VM, fresh pages cost far more).
void write_and_remove(const std::string& path, uint64_t bytes) {
  static const std::vector<char> buf(1 << 20, 1);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  for (uint64_t at = 0; at < bytes; at += buf.size())
    if (pwrite(fd, buf.data(), std::min<uint64_t>(buf.size(), bytes - at), static_cast<off_t>(at)) < 0) break;
  close(fd);
  unlink(path.c_str());
}

uint64_t disk_bytes(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

// The image must work, not just be written: map it and call into it.
void check_image(benchmark::State& state, const std::string& image) {
  auto& mm = subctx::Matchmaker::instance();
  try {
    subctx::Subcontext sc = mm.request_map(image);
    if (sc.call<int64_t(int64_t)>("bench_add1", 1) != 2) state.SkipWithError("wrong result from bench_add1");
    mm.unmap(sc);
  } catch (const subctx::AddressConflict&) {
    // The target's random layout collides with this process's: not a snapshot fault.
  }
}

void external_snapshot(benchmark::State& state, const char* zero_mode) {
  const std::string mb = std::to_string(heap_mb());
  const std::string in_image = bench::temp_dir().file(std::string("inproc_") + zero_mode + ".img");
  const std::string ext_image = bench::temp_dir().file(std::string("external_") + zero_mode + ".img");
  const std::vector<std::string> heap_args = {"--heap-mb", mb,   "--fill-pct", "50",
                                              "--run-kb",  "64", "--zero",     zero_mode};
  // --floor: the server prewarms memory before its snapshot (and times the
  // floor): both snapshots then write into page cache of pages the host
  // has already backed (in a VM a first touch costs several times more).
  std::vector<std::string> server = {bench::sibling_program("bench_image_server"), in_image, "--floor"};
  server.insert(server.end(), heap_args.begin(), heap_args.end());
  std::vector<std::string> target = {bench::sibling_program("bench_external_target")};
  target.insert(target.end(), heap_args.begin(), heap_args.end());
  double ext_s = 0, in_s = 0, readv_s = 0, heap = 0, ext_file = 0, ext_disk = 0, in_disk = 0, ext_data = 0;
  bool first = true;
  for (auto _ : state) {
    const bench::Report r = bench::run_server(server);
    in_s += bench::report_value(r, "snapshot_s");
    heap = bench::report_value(r, "heap_bytes");
    in_disk = static_cast<double>(disk_bytes(in_image));

    Target t(target);
    const uint64_t data = static_cast<uint64_t>(bench::report_value(r, "data_bytes"));
    bench::prewarm_memory(data + (data >> 1) + (64 << 20));  // as the server did,
    write_and_remove(ext_image + ".floor", data);            // and its floor file
    subctx::external::ExternalOptions o;
    o.pid = t.pid();
    o.image_path = ext_image;
    o.exports = {{"bench_add1", "i64(i64)"}};
    const double t0 = bench::now_seconds();
    const subctx::external::ExternalReport rep = subctx::external::snapshot_process(o);
    const double s = bench::now_seconds() - t0;
    state.SetIterationTime(s);
    ext_s += s;
    ext_file = static_cast<double>(rep.file_size);
    ext_data = static_cast<double>(rep.data_bytes);
    ext_disk = static_cast<double>(disk_bytes(ext_image));
    uint64_t bytes = 0;
    readv_s += readv_ranges(t.pid(), bench::image_ranges(ext_image), &bytes);
    if (first) check_image(state, ext_image);
    first = false;
    // Both removed only now: freeing one file's blocks while the other is
    // written would slow the second.
    unlink(in_image.c_str());
    unlink(ext_image.c_str());
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["heap_MB"] = heap / 1e6;
  state.counters["ext_MB_per_s"] = heap / (ext_s / n) / 1e6;
  state.counters["inproc_MB_per_s"] = heap / (in_s / n) / 1e6;
  state.counters["readv_MB_per_s"] = heap / (readv_s / n) / 1e6;
  state.counters["inproc_s"] = in_s / n;
  state.counters["readv_s"] = readv_s / n;
  state.counters["ext_vs_inproc"] = in_s / ext_s;  // throughput ratio: goal >= 0.8
  state.counters["ext_vs_readv"] = readv_s / ext_s;
  state.counters["ext_data_MB"] = ext_data / 1e6;
  state.counters["ext_file_MB"] = ext_file / 1e6;
  state.counters["ext_disk_MB"] = ext_disk / 1e6;
  state.counters["inproc_disk_MB"] = in_disk / 1e6;
}

}  // namespace

BENCHMARK_CAPTURE(external_snapshot, untouched, "untouched")
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(external_snapshot, touched, "touched")->UseManualTime()->Iterations(2)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) { return bench::benchmark_main(argc, argv); }
