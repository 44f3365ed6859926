// Containment (docs/containment.md): what faults, resets and mediated system
// calls cost, against baselines measured in the same run.  Every subcontext
// is mapped with Protection::None (containment costs, not protection costs)
// unless a name ends in /mprotect.
//
//   call/...        add1(x) through a Function<Sig> handle, and called
//                   directly in this binary (the baseline for faults)
//   fault/...       a call that faults, caught as SubcontextFault: a null
//                   pointer (SIGSEGV) with on_fault = Keep (the fault path
//                   alone) and Reset (fault + automatic reset), division by
//                   zero (SIGFPE) and abort() (SIGABRT, raised through the
//                   mediated tgkill) with Keep
//   reset/dirty/... dirty(N) writes N pages of a zero-initialized array of
//                   the image, then reset(); the time is reset() alone
//                   (manual timing), dirty_ns the call that wrote them
//   floor/madvise/pages:N  the baseline: MADV_DONTNEED of N written pages of
//                   a plain anonymous mapping (manual timing, madvise alone)
//   floor/pagemap_scan/...  the baseline of a clean reset: one PAGEMAP_SCAN
//                   ioctl over one clean page (call), and one per run of
//                   adjacent segments of the mapped image, nothing dirty
//                   (image: what scanning this layout costs, counter scans)
//   reset/image/... reset() of images with FILL MiB of heap data (8, 64,
//                   256; 0 is the plain image) after 0 or 100 dirtied pages;
//                   reset/image_present: 0 dirtied, every page of the data
//                   read once (present in this client, clean)
//   syscall/...     getppid_loop(100): 100 getppid() calls in an export
//                   (each one a SIGSYS round trip through the Matchmaker),
//                   and the same loop in this client on a fresh thread that
//                   never called a subcontext (dispatch off) and on a thread
//                   that called one first (dispatch on: the kernel's slow
//                   path on the thread's own system calls)
//   dispatch_off/...  the same benchmarks in a child process of this binary
//                   started with SUBCTX_SYSCALLS=off (Syscall User Dispatch
//                   off for the whole process; the export's getppid is then
//                   a direct system call); each repetition here reports the
//                   child's repetition of the same index
//
// Counters: syscalls (per iteration; reset rows: of one reset, counted in a
// forked child, syscall_count.hpp), dirty_ns, pages_restored (per
// iteration, from ResetInfo), touch_ns (floor: writing the pages),
// present_pages (pages of the image present in this client), faults and
// resets (Subcontext::memory(), whole benchmark), frames (of the fault),
// image_MB, segments (of the image).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <subctx/subctx.hpp>
#include <thread>
#include <vector>

#include "add1_chain.hpp"
#include "clock.hpp"
#include "getppid_loop.hpp"
#include "support.hpp"
#include "syscall_count.hpp"

extern char** environ;

namespace {

using Sig = int64_t(int64_t);
using bench::keep;

constexpr int64_t kPage = 4096;
constexpr int64_t kSyscallsPerCall = 100;  // getppid_loop(N)
const int kFills[] = {8, 64, 256};         // MiB of heap data, reset/image

// Set in the child started with SUBCTX_SYSCALLS=off: the parent's image.
std::string g_child_image;

struct Image {
  std::string path;
  std::vector<bench::Range> ranges;
  bench::ImageStats stats;
};

const Image& image(int fill_mb) {
  static std::map<int, Image> images;
  auto it = images.find(fill_mb);
  if (it != images.end()) return it->second;
  Image img;
  if (fill_mb == 0 && !g_child_image.empty()) {
    img.path = g_child_image;
  } else {
    img.path = bench::temp_dir().file("containment_" + std::to_string(fill_mb) + ".img");
    std::vector<std::string> argv = {bench::sibling_program("bench_containment_server"), img.path};
    if (fill_mb) argv.insert(argv.end(), {"--fill-mb", std::to_string(fill_mb)});
    bench::make_image(img.path, argv);
  }
  img.ranges = bench::image_ranges(img.path);
  img.stats = bench::image_stats(img.path);
  return images.emplace(fill_mb, std::move(img)).first->second;
}

// At most one subcontext is mapped at a time: the images come from
// different server processes, whose addresses may overlap.
subctx::Subcontext current;

subctx::MapOptions with(subctx::Protection p, subctx::OnFault on_fault = subctx::OnFault::Reset) {
  subctx::MapOptions o;
  o.protection = p;
  o.on_fault = on_fault;
  return o;
}

const char* prot_name(subctx::Protection p) { return p == subctx::Protection::None ? "none" : "mprotect"; }

// Maps the image with FILL MiB afresh; on failure reports the error and
// returns an invalid Subcontext.
subctx::Subcontext map_fresh(benchmark::State& state, int fill_mb, const subctx::MapOptions& o) {
  auto& mm = subctx::Matchmaker::instance();
  if (current.valid()) {
    mm.unmap(current);
    current = {};
  }
  try {
    current = mm.request_map(image(fill_mb).path, o);
  } catch (const subctx::Error& e) {
    state.SkipWithError(e.what());
    return {};
  }
  return current;
}

void image_counters(benchmark::State& state, const subctx::Subcontext& sc, int fill_mb) {
  const Image& img = image(fill_mb);
  state.counters["present_pages"] = static_cast<double>(bench::present_pages(img.ranges));
  state.counters["image_MB"] = static_cast<double>(img.stats.file_bytes) / 1e6;
  state.counters["segments"] = img.stats.segments;
  const subctx::MemoryInfo m = sc.memory();
  state.counters["faults"] = static_cast<double>(m.faults);
  state.counters["resets"] = static_cast<double>(m.resets);
}

// ---- calls ----

void BM_direct(benchmark::State& state) { bench::time_add1_chain(state, add1); }

void BM_call(benchmark::State& state, subctx::Protection p) {
  subctx::Subcontext sc = map_fresh(state, 0, with(p));
  if (!sc.valid()) return;
  const auto fn = sc.function<Sig>("add1");
  int64_t x = 0;
  for (int i = 0; i < 100; ++i) x = fn(x);  // warm: first-touch faults
  bench::time_add1_chain(state, fn);
  image_counters(state, sc, 0);
}

// ---- faults ----

enum class Fault { Segv, Fpe, Abort };

void BM_fault(benchmark::State& state, Fault kind, subctx::OnFault policy, subctx::Protection p) {
  subctx::Subcontext sc = map_fresh(state, 0, with(p, policy));
  if (!sc.valid()) return;
  const auto crash_null = sc.function<Sig>("crash_null");
  const auto divide = sc.function<int64_t(int64_t, int64_t)>("divide");
  const auto do_abort = sc.function<int64_t()>("do_abort");
  const auto once = [&]() -> int {  // the signal, or 0 when nothing faulted
    try {
      int64_t v = kind == Fault::Segv ? crash_null(0) : kind == Fault::Fpe ? divide(1, 0) : do_abort();
      keep(v);
      return 0;
    } catch (const subctx::SubcontextFault& e) {
      return e.signal();
    }
  };
  const int expected = kind == Fault::Segv ? SIGSEGV : kind == Fault::Fpe ? SIGFPE : SIGABRT;
  // Warm-up, and a check of what the fault says.
  try {
    if (kind == Fault::Segv) crash_null(0);
    else if (kind == Fault::Fpe) divide(1, 0);
    else do_abort();
    state.SkipWithError("the export did not fault");
    return;
  } catch (const subctx::SubcontextFault& e) {
    if (e.signal() != expected || e.reset_done() != (policy == subctx::OnFault::Reset)) {
      state.SkipWithError(("unexpected fault: " + std::string(e.what())).c_str());
      return;
    }
    state.counters["frames"] = static_cast<double>(e.frames().size());
    state.SetLabel(e.frames().empty() ? "" : "in " + e.frames().front().symbol);
  } catch (const subctx::Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  int64_t wrong = 0;
  for (auto _ : state) wrong += once() != expected;
  if (wrong) state.SkipWithError("a call did not fault as expected");
  // The subcontext still works.
  if (!state.error_occurred() && sc.function<Sig>("add1")(1) != 2) state.SkipWithError("add1 fails after the faults");
  image_counters(state, sc, 0);
}

// ---- reset ----

// reset() after dirty(N) (N = 0: no call at all); manual time: reset alone.
// present: the image's heap data read once first (clean present pages).
void BM_reset(benchmark::State& state, subctx::Protection p, int fill_mb, int64_t pages, bool present) {
  subctx::Subcontext sc = map_fresh(state, fill_mb, with(p));
  if (!sc.valid()) return;
  const auto dirty = sc.function<Sig>("dirty");
  if (present && sc.function<int64_t()>("read_fill")() < 0) {
    state.SkipWithError("read_fill failed");
    return;
  }
  if (dirty(pages) != pages) {  // warm: the client's first touch of the pages
    state.SkipWithError("dirty failed");
    return;
  }
  sc.reset();
  double dirty_s = 0;
  uint64_t restored = 0;
  for (auto _ : state) {
    const double t0 = bench::now_seconds();
    if (pages && dirty(pages) != pages) {
      state.SkipWithError("dirty failed");
      break;
    }
    const double t1 = bench::now_seconds();
    const subctx::ResetInfo r = sc.reset();
    const double t2 = bench::now_seconds();
    state.SetIterationTime(t2 - t1);
    dirty_s += t1 - t0;
    restored += r.pages_restored;
  }
  state.counters["dirty_ns"] = benchmark::Counter(dirty_s * 1e9, benchmark::Counter::kAvgIterations);
  state.counters["pages_restored"] =
      benchmark::Counter(static_cast<double>(restored), benchmark::Counter::kAvgIterations);
  state.counters["dirtied"] = static_cast<double>(pages);
  image_counters(state, sc, fill_mb);
  // One reset's system calls, in a child that maps the image afresh (a fork
  // after the map would make every reset put the restored descriptors back)
  // and resets once before (its pagemap descriptor is its own).
  const bench::SyscallCount c = bench::count_syscalls(
      [&] {
        subctx::Subcontext fresh = map_fresh(state, fill_mb, with(p));
        if (present) fresh.function<int64_t()>("read_fill")();
        fresh.reset();
        if (pages) fresh.function<Sig>("dirty")(pages);
      },
      [&] { current.reset(); });
  if (c.error.empty()) state.counters["syscalls"] = static_cast<double>(c.total);
  state.SetLabel(c.error.empty() ? c.list() : c.error);
}

// The floor of a clean reset: PAGEMAP_SCAN ioctls (Linux 6.7) asking for
// what a reset asks for (anonymous pages: written or swapped), over one
// clean page (image = false) or over each run of adjacent segments of the
// mapped image, nothing written (image = true).
void BM_pagemap_scan(benchmark::State& state, bool over_image) {
  struct Arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
        category_anyof_mask, return_mask;
  };
  struct Region {
    uint64_t start, end, categories;
  };
  constexpr uint64_t kFile = 1u << 2, kPresent = 1u << 3, kSwapped = 1u << 4, kPfnZero = 1u << 5;
  const unsigned long kScan = _IOWR('f', 16, Arg);
  std::vector<bench::Range> runs;
  void* page = nullptr;
  if (over_image) {
    subctx::Subcontext sc = map_fresh(state, 0, with(subctx::Protection::None));
    if (!sc.valid()) return;
    for (const bench::Range& r : image(0).ranges) {
      if (!runs.empty() && runs.back().hi == r.lo) runs.back().hi = r.hi;
      else runs.push_back(r);
    }
  } else {
    page = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
      state.SkipWithError("mmap failed");
      return;
    }
    runs.push_back({reinterpret_cast<uint64_t>(page), reinterpret_cast<uint64_t>(page) + kPage});
  }
  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  Region vec[256];
  uint64_t found = 0;
  for (auto _ : state) {
    for (const bench::Range& r : runs) {
      Arg a{};
      a.size = sizeof a;
      a.start = r.lo;
      a.end = r.hi;
      a.vec = reinterpret_cast<uint64_t>(vec);
      a.vec_len = 256;
      a.category_inverted = kFile | kPfnZero;
      a.category_mask = kFile | kPfnZero;
      a.category_anyof_mask = kPresent | kSwapped;
      a.return_mask = kPresent | kSwapped;
      const int n = ioctl(fd, kScan, &a);
      if (n < 0) {
        state.SkipWithError("PAGEMAP_SCAN failed (Linux 6.7 or later)");
        break;
      }
      found += static_cast<uint64_t>(n);
    }
  }
  close(fd);
  if (page) munmap(page, kPage);
  state.counters["scans"] = static_cast<double>(runs.size());
  state.counters["found"] = benchmark::Counter(static_cast<double>(found), benchmark::Counter::kAvgIterations);
}

// The floor: N written pages of a plain anonymous mapping dropped with one
// MADV_DONTNEED (manual time: madvise alone; touch_ns: the writes).
void BM_madvise(benchmark::State& state) {
  const int64_t pages = state.range(0);
  const size_t len = static_cast<size_t>(pages * kPage);
  auto* p =
      static_cast<volatile uint8_t*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  double touch_s = 0;
  for (auto _ : state) {
    const double t0 = bench::now_seconds();
    for (int64_t i = 0; i < pages; ++i) p[i * kPage] = 1;
    const double t1 = bench::now_seconds();
    if (madvise(const_cast<uint8_t*>(p), len, MADV_DONTNEED) != 0) {
      state.SkipWithError("madvise failed");
      break;
    }
    const double t2 = bench::now_seconds();
    state.SetIterationTime(t2 - t1);
    touch_s += t1 - t0;
  }
  state.counters["touch_ns"] = benchmark::Counter(touch_s * 1e9, benchmark::Counter::kAvgIterations);
  munmap(const_cast<uint8_t*>(p), len);
}

// ---- system calls ----

void BM_export_syscalls(benchmark::State& state) {
  subctx::Subcontext sc = map_fresh(state, 0, with(subctx::Protection::None));
  if (!sc.valid()) return;
  const auto fn = sc.function<Sig>("getppid_loop");
  const int64_t want = getppid_loop(kSyscallsPerCall);
  if (fn(kSyscallsPerCall) != want) {  // the subcontext's getppid is the client's
    state.SkipWithError("getppid_loop in the subcontext does not return the client's parent");
    return;
  }
  int64_t bad = 0;
  for (auto _ : state) {
    int64_t v = fn(kSyscallsPerCall);
    keep(v);
    bad += v != want;
  }
  if (bad) state.SkipWithError("wrong result from getppid_loop");
  state.counters["syscalls"] = kSyscallsPerCall;
}

// The client's own loop on a new thread; called: the thread calls add1 in a
// subcontext first (a thread's first call turns dispatch on for it).
void BM_client_syscalls(benchmark::State& state, bool called) {
  subctx::Function<Sig> fn;
  if (called) {
    subctx::Subcontext sc = map_fresh(state, 0, with(subctx::Protection::None));
    if (!sc.valid()) return;
    fn = sc.function<Sig>("add1");
  }
  std::string error;
  std::thread t([&] {
    try {
      if (called && fn(1) != 2) error = "add1 failed";
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) return;
    for (auto _ : state) {
      int64_t v = getppid_loop(kSyscallsPerCall);
      keep(v);
    }
  });
  t.join();
  if (!error.empty()) state.SkipWithError(error.c_str());
  state.counters["syscalls"] = kSyscallsPerCall;
}

// ---- SUBCTX_SYSCALLS=off: a child process of this binary ----

// The benchmarks the child runs (same functions, same names).
void register_dispatch_subset() {
  benchmark::RegisterBenchmark("call/direct", BM_direct)->UseRealTime();
  benchmark::RegisterBenchmark("call/none", BM_call, subctx::Protection::None)->UseRealTime();
  benchmark::RegisterBenchmark("fault/segv_keep/none", BM_fault, Fault::Segv, subctx::OnFault::Keep,
                               subctx::Protection::None)
      ->UseRealTime();
  benchmark::RegisterBenchmark("fault/segv_reset/none", BM_fault, Fault::Segv, subctx::OnFault::Reset,
                               subctx::Protection::None)
      ->UseRealTime();
  benchmark::RegisterBenchmark("syscall/export_getppid", BM_export_syscalls)->UseRealTime();
  benchmark::RegisterBenchmark("syscall/client_getppid/called_thread", BM_client_syscalls, true)->UseRealTime();
}
const char* const kDispatchSubset[] = {"call/direct",
                                       "call/none",
                                       "fault/segv_keep/none",
                                       "fault/segv_reset/none",
                                       "syscall/export_getppid",
                                       "syscall/client_getppid/called_thread"};

// The child's output: "NAME#REPETITION NS" per run (NS < 0: an error).
class LineReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration) continue;
      std::string name = r.benchmark_name();
      const std::string suffix = "/real_time";
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        name.resize(name.size() - suffix.size());
      if (r.error_occurred) std::fprintf(stderr, "dispatch-off child: %s: %s\n", name.c_str(), r.error_message.c_str());
      const double ns = r.error_occurred ? -1 : r.GetAdjustedRealTime();  // time unit: ns (the default)
      std::printf("%s#%lld %.6f\n", name.c_str(), static_cast<long long>(std::max<int64_t>(r.repetition_index, 0)), ns);
    }
    std::fflush(stdout);
  }
};

int child_main(int argc, char** argv) {
  g_child_image = argv[2];
  std::vector<char*> args = {argv[0]};
  for (int i = 3; i < argc; ++i) args.push_back(argv[i]);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  register_dispatch_subset();
  benchmark::Initialize(&n, args.data());
  LineReporter reporter;
  try {
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dispatch-off child: %s\n", e.what());
    return 1;
  }
  if (current.valid()) subctx::Matchmaker::instance().unmap(current);
  current = {};
  return 0;
}

std::vector<std::string> g_child_flags;  // --benchmark_min_time, --benchmark_repetitions

// Runs the child once: NAME -> its times by repetition.
const std::map<std::string, std::vector<double>>& child_results() {
  static std::map<std::string, std::vector<double>> results;
  static bool done = false;
  if (done) return results;
  done = true;
  std::vector<std::string> argv = {"/proc/self/exe", "--child-dispatch-off", image(0).path};
  argv.insert(argv.end(), g_child_flags.begin(), g_child_flags.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "SUBCTX_SYSCALLS=", 16) != 0) env_strings.emplace_back(*e);
  env_strings.emplace_back("SUBCTX_SYSCALLS=off");
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  pid_t pid;
  const int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    throw std::runtime_error(std::string("cannot start the dispatch-off child: ") + std::strerror(err));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    std::fprintf(stderr, "bench_containment: the dispatch-off child failed (status %d)\n", status);
  std::istringstream lines(out);
  std::string key;
  double ns;
  while (lines >> key >> ns) {
    const size_t hash = key.rfind('#');
    if (hash == std::string::npos) continue;
    const size_t rep = std::stoul(key.substr(hash + 1));
    auto& v = results[key.substr(0, hash)];
    if (v.size() <= rep) v.resize(rep + 1, -1);
    v[rep] = ns;
  }
  return results;
}

// One row per repetition: the child's time of that repetition.
void BM_dispatch_off(benchmark::State& state, const std::string& name) {
  static std::map<std::string, size_t> calls;
  const size_t rep = calls[name]++;
  double ns = -1;
  try {
    const auto& r = child_results();
    auto it = r.find(name);
    if (it != r.end() && !it->second.empty()) ns = it->second[rep % it->second.size()];
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  for (auto _ : state) state.SetIterationTime(ns > 0 ? ns * 1e-9 : 0);
  if (ns <= 0 && !state.error_occurred()) state.SkipWithError("no result from the dispatch-off child");
  if (name.rfind("syscall/", 0) == 0) state.counters["syscalls"] = kSyscallsPerCall;
  state.SetLabel("child, SUBCTX_SYSCALLS=off");
}

void register_all() {
  using subctx::OnFault;
  using subctx::Protection;
  benchmark::RegisterBenchmark("call/direct", BM_direct)->UseRealTime();
  for (Protection p : {Protection::None, Protection::Mprotect})
    benchmark::RegisterBenchmark((std::string("call/") + prot_name(p)).c_str(), BM_call, p)->UseRealTime();

  for (Protection p : {Protection::None, Protection::Mprotect}) {
    benchmark::RegisterBenchmark((std::string("fault/segv_keep/") + prot_name(p)).c_str(), BM_fault, Fault::Segv,
                                 OnFault::Keep, p)
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("fault/segv_reset/") + prot_name(p)).c_str(), BM_fault, Fault::Segv,
                                 OnFault::Reset, p)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("fault/fpe_keep/none", BM_fault, Fault::Fpe, OnFault::Keep, Protection::None)
      ->UseRealTime();
  benchmark::RegisterBenchmark("fault/abort_keep/none", BM_fault, Fault::Abort, OnFault::Keep, Protection::None)
      ->UseRealTime();

  benchmark::RegisterBenchmark("floor/madvise", BM_madvise)
      ->ArgName("pages")
      ->Arg(1)
      ->Arg(100)
      ->Arg(10000)
      ->UseManualTime();
  benchmark::RegisterBenchmark("floor/pagemap_scan/call", BM_pagemap_scan, false)->UseRealTime();
  benchmark::RegisterBenchmark("floor/pagemap_scan/image", BM_pagemap_scan, true)->UseRealTime();
  for (int64_t n : {0, 1, 100, 10000})
    benchmark::RegisterBenchmark(("reset/dirty/none/pages:" + std::to_string(n)).c_str(), BM_reset, Protection::None, 0,
                                 n, false)
        ->UseManualTime();
  for (int64_t n : {0, 100})
    benchmark::RegisterBenchmark(("reset/dirty/mprotect/pages:" + std::to_string(n)).c_str(), BM_reset,
                                 Protection::Mprotect, 0, n, false)
        ->UseManualTime();
  for (int fill : kFills)
    for (int64_t n : {0, 100})
      benchmark::RegisterBenchmark(
          ("reset/image/fill_mb:" + std::to_string(fill) + "/dirty:" + std::to_string(n)).c_str(), BM_reset,
          Protection::None, fill, n, false)
          ->UseManualTime();
  for (int fill : kFills)
    benchmark::RegisterBenchmark(("reset/image_present/fill_mb:" + std::to_string(fill)).c_str(), BM_reset,
                                 Protection::None, fill, int64_t{0}, true)
        ->UseManualTime();

  benchmark::RegisterBenchmark("syscall/export_getppid", BM_export_syscalls)->UseRealTime();
  benchmark::RegisterBenchmark("syscall/client_getppid/fresh_thread", BM_client_syscalls, false)->UseRealTime();
  benchmark::RegisterBenchmark("syscall/client_getppid/called_thread", BM_client_syscalls, true)->UseRealTime();

  for (const char* name : kDispatchSubset)
    benchmark::RegisterBenchmark(("dispatch_off/" + std::string(name)).c_str(), BM_dispatch_off, std::string(name))
        ->Iterations(1)
        ->UseManualTime();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && !std::strcmp(argv[1], "--child-dispatch-off")) return child_main(argc, argv);
  for (int i = 1; i < argc; ++i)
    for (const char* flag : {"--benchmark_min_time=", "--benchmark_repetitions="})
      if (!std::strncmp(argv[i], flag, std::strlen(flag))) g_child_flags.emplace_back(argv[i]);
  register_all();
  const int rc = bench::benchmark_main(argc, argv);
  if (current.valid()) subctx::Matchmaker::instance().unmap(current);
  current = {};
  return rc;
}
