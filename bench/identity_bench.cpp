// Identities (docs/identity.md): what the subcontext's own descriptor
// namespace costs, against baselines measured in the same run.  Every
// subcontext is mapped with Protection::None (not the protection backend's
// cost).  Images come from bench_identity_server with N files open at the
// snapshot (IMAGE.files/f0 .. f{N-1}), which each map reopens by path.
//
//   syscall/export_getppid  getppid_loop(100) in an export: a SIGSYS round
//                   trip each, no descriptor (what mediation cost before
//                   descriptors were translated)
//   syscall/export_getpgrp  getpgrp() x100 in an export: no descriptor
//                   either, but made as a system call that may block (the
//                   handler sets the interrupted signal mask around it: two
//                   more system calls), as fstat and pread are; getppid is
//                   made with signals still blocked
//   syscall/export_fstat    fstat(fd) x100 in an export, fd the server's f0
//                   (a restored descriptor: translated on each call; glibc
//                   makes fstat() a newfstatat(fd, "", AT_EMPTY_PATH))
//   syscall/export_pread    pread(fd, buf, 1, 0) x100, the same descriptor
//   syscall/client_getppid, client_getpgrp, client_fstat, client_pread
//                   the same loops in this client, on its own descriptor of
//                   the same file, on a fresh thread that never called a
//                   subcontext (dispatch off: native system calls)
//   map/fds:N       request_map + unmap of the image whose server had N = 0,
//                   16, 128 files open (N restored descriptors per map)
//   floor/open_close/fds:N  the same N files opened (O_RDONLY) and closed
//                   by this client: what reopening them cannot beat
//
// The translation's cost per system call: (export_fstat - client_fstat) -
// (export_getppid - client_getppid), and the same against getpgrp (the
// descriptor namespace alone); per restored descriptor at map:
// (map/fds:N - map/fds:0) / N.  bench/summarize.py prints both.
//
// Counters: syscalls (per iteration), fds (N), restored_fds
// (MemoryInfo::restored_fds of a mapping of the image).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <subctx/subctx.hpp>
#include <thread>
#include <vector>

#include "add1_chain.hpp"
#include "fd_loops.hpp"
#include "getppid_loop.hpp"
#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);
using bench::keep;

constexpr int64_t kSyscallsPerCall = 100;
constexpr int64_t kSyscallImageFds = 16;  // the image the syscall/ rows map
const int64_t kMapFds[] = {0, 16, 128};

enum class Loop { Getppid, Getpgrp, Fstat, Pread };
const char* const kExport[] = {"getppid_loop", "getpgrp_loop", "fstat_loop", "pread_loop"};

struct Image {
  std::string path;
  std::vector<std::string> files;  // IMAGE.files/f0 .. f{N-1}
};

// At most one subcontext is mapped at a time: the images come from
// different server processes, whose addresses may overlap.
subctx::Subcontext current;

void release() {
  if (current.valid()) subctx::Matchmaker::instance().unmap(current);
  current = {};
}

const Image& image(int64_t fds) {
  static std::map<int64_t, Image> images;
  auto it = images.find(fds);
  if (it != images.end()) return it->second;
  release();  // make_image maps the new image once: nothing else mapped
  Image img;
  img.path = bench::temp_dir().file("identity_" + std::to_string(fds) + ".img");
  bench::make_image(img.path,
                    {bench::sibling_program("bench_identity_server"), img.path, "--fds", std::to_string(fds)});
  for (int64_t i = 0; i < fds; ++i) img.files.push_back(img.path + ".files/f" + std::to_string(i));
  return images.emplace(fds, std::move(img)).first->second;
}

subctx::MapOptions options() {
  subctx::MapOptions o;
  o.protection = subctx::Protection::None;
  return o;
}

// The loop on descriptor fd (none for getppid), as this client runs it.
int64_t client_loop(Loop loop, int fd, int64_t n) {
  switch (loop) {
    case Loop::Getppid: return getppid_loop(n);
    case Loop::Getpgrp: return getpgrp_loop(n);
    case Loop::Fstat: return fstat_loop_fd(fd, n);
    case Loop::Pread: return pread_loop_fd(fd, n);
  }
  return -1;
}

// This client's own descriptor of the file the export uses (f0), or -1
// after SkipWithError.
int open_first(benchmark::State& state, const Image& img) {
  const int fd = open(img.files.at(0).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) state.SkipWithError(("cannot open " + img.files[0]).c_str());
  return fd;
}

// ---- system calls ----

void BM_export(benchmark::State& state, Loop loop) {
  const Image& img = image(kSyscallImageFds);
  release();
  current = bench::map_or_skip(state, img.path, options());
  if (!current.valid()) return;
  const int fd = open_first(state, img);
  if (fd < 0) return;
  // What the export must return: the client's loop on the same file (same
  // inode, same first byte).  A wrong translation shows here.
  const int64_t want = client_loop(loop, fd, kSyscallsPerCall);
  close(fd);
  const auto fn = current.function<Sig>(kExport[static_cast<int>(loop)]);
  int64_t got = 0;
  try {
    got = fn(kSyscallsPerCall);
  } catch (const subctx::Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  if (got != want) {
    state.SkipWithError(
        ("the export returned " + std::to_string(got) + ", the client's loop " + std::to_string(want)).c_str());
    return;
  }
  int64_t bad = 0;
  for (auto _ : state) {
    int64_t v = fn(kSyscallsPerCall);
    keep(v);
    bad += v != want;
  }
  if (bad) state.SkipWithError("wrong result from the export");
  state.counters["syscalls"] = kSyscallsPerCall;
  state.counters["restored_fds"] = static_cast<double>(current.memory().restored_fds);
}

// The same loop in this client on a fresh thread (it never called a
// subcontext: its system calls are not dispatched).
void BM_client(benchmark::State& state, Loop loop) {
  const Image& img = image(kSyscallImageFds);
  const int fd = open_first(state, img);
  if (fd < 0) return;
  const int64_t want = client_loop(loop, fd, kSyscallsPerCall);
  int64_t bad = want < 0;
  std::thread t([&] {
    for (auto _ : state) {
      int64_t v = client_loop(loop, fd, kSyscallsPerCall);
      keep(v);
      bad += v != want;
    }
  });
  t.join();
  close(fd);
  if (bad) state.SkipWithError("wrong result from the client's loop");
  state.counters["syscalls"] = kSyscallsPerCall;
}

// ---- map ----

void BM_map(benchmark::State& state) {
  const int64_t fds = state.range(0);
  const Image& img = image(fds);
  release();
  auto& mm = subctx::Matchmaker::instance();
  uint64_t restored = 0;
  {
    subctx::Subcontext sc = bench::map_or_skip(state, img.path, options());
    if (!sc.valid()) return;
    restored = sc.memory().restored_fds;
    mm.unmap(sc);
  }
  if (restored != static_cast<uint64_t>(fds)) {
    state.SkipWithError(("restored_fds " + std::to_string(restored) + ", expected " + std::to_string(fds)).c_str());
    return;
  }
  const subctx::MapOptions o = options();
  try {
    for (auto _ : state) mm.unmap(mm.request_map(img.path, o));
  } catch (const subctx::Error& e) {
    state.SkipWithError(e.what());
  }
  state.counters["fds"] = static_cast<double>(fds);
  state.counters["restored_fds"] = static_cast<double>(restored);
}

// The floor: open() + close() of the same N files, in this client.
void BM_open_close(benchmark::State& state) {
  const int64_t fds = state.range(0);
  const Image& img = image(fds);
  std::vector<const char*> paths;
  for (const auto& f : img.files) paths.push_back(f.c_str());
  int64_t failed = 0;
  for (auto _ : state) {
    for (const char* p : paths) {
      const int fd = open(p, O_RDONLY | O_CLOEXEC);
      failed += fd < 0;
      close(fd);
    }
  }
  if (failed) state.SkipWithError("open failed");
  state.counters["fds"] = static_cast<double>(fds);
}

void register_all() {
  const struct {
    const char* name;
    Loop loop;
  } loops[] = {{"getppid", Loop::Getppid}, {"getpgrp", Loop::Getpgrp}, {"fstat", Loop::Fstat}, {"pread", Loop::Pread}};
  for (const auto& l : loops) {
    benchmark::RegisterBenchmark(("syscall/export_" + std::string(l.name)).c_str(), BM_export, l.loop)->UseRealTime();
    benchmark::RegisterBenchmark(("syscall/client_" + std::string(l.name)).c_str(), BM_client, l.loop)->UseRealTime();
  }
  auto* map = benchmark::RegisterBenchmark("map", BM_map)->ArgName("fds")->Unit(benchmark::kMicrosecond);
  for (int64_t n : kMapFds) map->Arg(n);
  auto* floor =
      benchmark::RegisterBenchmark("floor/open_close", BM_open_close)->ArgName("fds")->Unit(benchmark::kMicrosecond);
  for (int64_t n : kMapFds)
    if (n) floor->Arg(n);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  const int rc = bench::benchmark_main(argc, argv);
  release();
  return rc;
}
