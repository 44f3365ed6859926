// Protection backends: what a call into a subcontext costs with each backend
// (none, mprotect merged, mprotect exact_permissions, pkey), against two
// baselines measured in the same run: add1() called directly in this binary,
// and a round trip of 8 bytes over a pipe to a forked helper process that
// runs add1 (write request + read reply).
//
//   call/...        add1 on a small image (bench_image_server, 1 MB heap),
//                   through a Function<Sig> handle
//   raw/...         the same export through Subcontext::raw<Sig>(): a plain
//                   function pointer whose call faults into the Matchmaker
//   sqlite_lua/...  the SQLite + Lua image (bench_protection_server): add1
//                   after a warm-up of real queries (the present-page working
//                   set of a client in use), a SQLite point query and a Lua
//                   call; the direct rows run the same code in this process
//   pages/...       add1 on the SQLite + Lua image after touch_pages(N) made
//                   N more pages of it present (mprotect cost grows with them)
//   batch/...       Function::call_each: `calls` calls of add1 (small image),
//                   or of add1 and lookup on the SQLite + Lua image, per
//                   iteration, in one protection window; the time is per
//                   batch, the per-call time is time / calls
//
//   floor/...       a pair of plain mprotect calls: 1 page, and 2 MiB with 1
//                   or 64 pages present (what the mprotect backend is made of)
//
// Counters: syscalls_per_call (ProtectionInfo open + close), clusters,
// present_pages (pages of the image present in this client's page tables,
// from /proc/self/pagemap, after the timed loop), blocks_2m (2 MiB blocks
// holding a present page: page tables mprotect walks), vmas (mappings in the
// image's span while closed), threads, segments, image_MB.
// Each benchmark maps the image afresh with its backend (outside the timed
// loop): every repetition starts from the same state.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "add1_chain.hpp"
#include "sqlite_lua.hpp"
#include "support.hpp"

namespace {

using Sig = int64_t(int64_t);

using bench::keep;

struct Backend {
  const char* name;
  subctx::MapOptions options;
};

subctx::MapOptions with(subctx::Protection p, bool exact = false) {
  subctx::MapOptions o;
  o.protection = p;
  o.exact_permissions = exact;
  return o;
}

const std::vector<Backend>& backends() {
  static const std::vector<Backend> all = {
      {"none", with(subctx::Protection::None)},
      {"mprotect", with(subctx::Protection::Mprotect)},
      {"mprotect_exact", with(subctx::Protection::Mprotect, true)},
      {"pkey", with(subctx::Protection::Pkey)},
  };
  return all;
}

struct Image {
  std::string path;
  std::vector<bench::Range> ranges;
  bench::ImageStats stats;
  bench::Report report;
};

Image make(const std::string& file, std::vector<std::string> argv) {
  Image img;
  img.path = bench::temp_dir().file(file);
  argv.insert(argv.begin() + 1, img.path);
  img.report = bench::make_image(img.path, argv);
  img.ranges = bench::image_ranges(img.path);
  img.stats = bench::image_stats(img.path);
  return img;
}

const Image& small_image() {
  static const Image img = make("add1.img", {bench::sibling_program("bench_image_server"), "--heap-mb", "1"});
  return img;
}

const Image& workload_image() {
  static const Image img = make("sqlite_lua.img", {bench::sibling_program("bench_protection_server")});
  return img;
}

// At most one subcontext is mapped at a time: the two images come from
// different server processes, whose addresses may overlap.
subctx::Subcontext current;

// Maps img afresh with backend b; on failure (pkey unsupported here...)
// reports the error and returns an invalid Subcontext.
subctx::Subcontext map_fresh(benchmark::State& state, const Image& img, const Backend& b) {
  auto& mm = subctx::Matchmaker::instance();
  if (current.valid()) {
    mm.unmap(current);
    current = {};
  }
  try {
    current = mm.request_map(img.path, b.options);
  } catch (const subctx::Error& e) {
    state.SkipWithError(e.what());
    return {};
  }
  return current;
}

// Mappings (/proc/self/maps lines) in the image's span: its segments and
// the gaps of at most 1 GiB between them (what the mprotect backend's
// clusters cover).  An mprotect pays per VMA it changes, not per call.
size_t vmas_in_span(const Image& img) {
  std::vector<bench::Range> spans;
  for (const bench::Range& r : img.ranges) {
    if (!spans.empty() && r.lo >= spans.back().hi && r.lo - spans.back().hi <= (uint64_t{1} << 30))
      spans.back().hi = std::max(spans.back().hi, r.hi);
    else spans.push_back(r);
  }
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return 0;
  size_t n = 0;
  unsigned long lo, hi;
  char line[4096];
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "%lx-%lx", &lo, &hi) == 2)
      for (const bench::Range& r : spans)
        if (lo < r.hi && hi > r.lo) {
          ++n;
          break;
        }
  std::fclose(f);
  return n;
}

size_t threads() {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec); !ec && it != std::filesystem::end(it);
       it.increment(ec))
    ++n;
  return n;
}

void counters(benchmark::State& state, const subctx::Subcontext& sc, const Image& img) {
  state.counters["vmas"] = static_cast<double>(vmas_in_span(img));
  state.counters["threads"] = static_cast<double>(threads());
  const subctx::ProtectionInfo p = sc.protection();
  state.counters["syscalls_per_call"] = static_cast<double>(p.open_syscalls + p.close_syscalls);
  state.counters["open_syscalls"] = static_cast<double>(p.open_syscalls);
  state.counters["clusters"] = static_cast<double>(p.clusters);
  uint64_t blocks = 0;
  state.counters["present_pages"] = static_cast<double>(bench::present_pages(img.ranges, &blocks));
  state.counters["blocks_2m"] = static_cast<double>(blocks);
  state.counters["segments"] = img.stats.segments;
  state.counters["image_MB"] = static_cast<double>(img.stats.file_bytes) / 1e6;
  state.SetLabel(std::string(subctx::protection_name(p.backend)) + (p.exact_permissions ? " exact" : "") +
                 (p.pkey >= 0 ? " key " + std::to_string(p.pkey) : ""));
}

// ---- baselines ----

void BM_direct(benchmark::State& state) { bench::time_add1_chain(state, add1); }

bool transfer(int fd, void* buf, bool writing) {
  for (;;) {
    ssize_t n = writing ? write(fd, buf, 8) : read(fd, buf, 8);
    if (n == 8) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// add1 in a forked helper: the request and the reply are 8 bytes each.
// same_cpu: this thread and the helper are pinned to the CPU this thread is
// on (no wake-up of an idle vCPU); otherwise the scheduler places them.
void BM_pipe(benchmark::State& state, bool same_cpu) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  sched_getaffinity(0, sizeof saved, &saved);
  if (same_cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof one, &one);
  }
  int req[2], rsp[2];
  if (pipe2(req, O_CLOEXEC) != 0 || pipe2(rsp, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2 failed");
    return;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(req[1]);
    close(rsp[0]);
    int64_t v;
    while (transfer(req[0], &v, false)) {
      v = add1(v);
      if (!transfer(rsp[1], &v, true)) break;
    }
    _exit(0);
  }
  close(req[0]);
  close(rsp[1]);
  int64_t x = 0;
  bool ok = pid > 0;
  if (!ok) state.SkipWithError("fork failed");
  for (auto _ : state) {
    if (!ok) break;
    if (!transfer(req[1], &x, true) || !transfer(rsp[0], &x, false)) {
      state.SkipWithError("pipe round trip failed");
      ok = false;
    }
    keep(x);
  }
  close(req[1]);
  close(rsp[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  sched_setaffinity(0, sizeof saved, &saved);
  if (ok) bench::check_add1_count(state, x);
}

// The floor of the mprotect backend's work: a pair of mprotect calls
// (PROT_NONE, then back to read-write) over one anonymous VMA of
// range(0) pages of which range(1) are present.  The kernel walks every
// page-table entry in the range, present or not: a 512-page (2 MiB) range
// with one present page shows the cost of one page table.
void BM_mprotect_pair(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0)) * 4096;
  char* p = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  for (int64_t i = 0; i < state.range(1); ++i) p[i * 4096] = 1;
  for (auto _ : state) {
    if (mprotect(p, len, PROT_NONE) != 0 || mprotect(p, len, PROT_READ | PROT_WRITE) != 0) {
      state.SkipWithError("mprotect failed");
      break;
    }
  }
  uint64_t blocks = 0;
  state.counters["present_pages"] = static_cast<double>(
      bench::present_pages({{reinterpret_cast<uint64_t>(p), reinterpret_cast<uint64_t>(p) + len}}, &blocks));
  state.counters["blocks_2m"] = static_cast<double>(blocks);
  munmap(p, len);
}

// ---- the small image: handle and raw-call path ----

void BM_call(benchmark::State& state, const Backend& b) {
  const Image& img = small_image();
  subctx::Subcontext sc = map_fresh(state, img, b);
  if (!sc.valid()) return;
  const auto fn = sc.function<Sig>("add1");
  int64_t x = 0;
  for (int i = 0; i < 100; ++i) x = fn(x);  // warm: first-touch faults
  bench::time_add1_chain(state, fn);
  counters(state, sc, img);
}

void BM_raw(benchmark::State& state, const Backend& b) {
  const Image& img = small_image();
  subctx::Subcontext sc = map_fresh(state, img, b);
  if (!sc.valid()) return;
  Sig* fn;
  try {
    fn = sc.raw<Sig>("add1");
  } catch (const subctx::Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  int64_t x = 0;
  for (int i = 0; i < 100; ++i) x = fn(x);
  if (x != 100) {
    state.SkipWithError("wrong result from a raw call of add1");
    return;
  }
  bench::time_add1_chain(state, fn);
  counters(state, sc, img);
}

// ---- the SQLite + Lua image ----

int64_t rows() { return static_cast<int64_t>(bench::report_value(workload_image().report, "rows")); }
int64_t key_step(int64_t n) { return n / 1000 * 7 + 1; }  // visits the whole table over a run

// A client in use: 1000 lookups spread over the table and 1000 Lua calls.
bool warm_workload(benchmark::State& state, const subctx::Subcontext& sc) {
  const auto lookup = sc.function<Sig>("lookup");
  const auto score = sc.function<Sig>("lua_score");
  const int64_t n = rows();
  for (int64_t i = 0; i < 1000; ++i)
    if (lookup(i * n / 1000) < 0 || score(i) < 0) {
      state.SkipWithError("a warm-up query failed");
      return false;
    }
  return true;
}

enum class Work { Add1, Lookup, LuaScore };

void BM_workload(benchmark::State& state, const Backend* b, Work w) {
  const Image& img = workload_image();
  const int64_t n = rows();
  subctx::Subcontext sc;
  subctx::Function<Sig> fn;
  if (b) {
    sc = map_fresh(state, img, *b);
    if (!sc.valid() || !warm_workload(state, sc)) return;
    fn = sc.function<Sig>(w == Work::Add1 ? "add1" : w == Work::Lookup ? "lookup" : "lua_score");
  } else if (w != Work::Add1) {
    static const bool initialized = [n] {  // the same state, built in this process
      bench::sqlite_lua::init(n);
      return true;
    }();
    (void)initialized;
  }
  int64_t bad = 0;
  if (w == Work::Add1) {
    bench::time_add1_chain(state, [&](int64_t x) { return b ? fn(x) : add1(x); });
  } else {
    const int64_t step = key_step(n);
    int64_t i = 0;
    for (auto _ : state) {
      int64_t v;
      if (w == Work::Lookup) v = b ? fn(i) : bench::sqlite_lua::lookup(i);
      else v = b ? fn(i) : bench::sqlite_lua::lua_score(i);
      keep(v);
      bad += v < 0;
      i += step;
      if (i >= n) i -= n;
    }
    if (bad) state.SkipWithError("a query failed");
  }
  if (b) counters(state, sc, img);
}

// add1 after touch_pages(N): N pages of the image's array present.
void BM_pages(benchmark::State& state, const Backend& b) {
  const Image& img = workload_image();
  subctx::Subcontext sc = map_fresh(state, img, b);
  if (!sc.valid()) return;
  const auto fn = sc.function<Sig>("add1");
  const int64_t pages = state.range(0);
  int64_t x = 0;
  for (int i = 0; i < 100; ++i) x = fn(x);
  if (sc.function<Sig>("touch_pages")(pages) < 0) {
    state.SkipWithError("touch_pages failed");
    return;
  }
  bench::time_add1_chain(state, fn);
  counters(state, sc, img);
  state.counters["touched_pages"] = static_cast<double>(pages);
}

// ---- batches: call_each ----

// One batch of state.range(0) calls per iteration; every result checked.
void BM_batch(benchmark::State& state, const Backend& b, bool workload, Work w) {
  const Image& img = workload ? workload_image() : small_image();
  subctx::Subcontext sc = map_fresh(state, img, b);
  if (!sc.valid() || (workload && !warm_workload(state, sc))) return;
  const auto fn = sc.function<Sig>(w == Work::Add1 ? "add1" : "lookup");
  const size_t calls = static_cast<size_t>(state.range(0));
  std::vector<int64_t> in(calls), out(calls), expect(calls);
  const int64_t n = workload ? rows() : 0, step = workload ? key_step(n) : 0;
  for (size_t i = 0; i < calls; ++i) {
    in[i] = w == Work::Add1 ? static_cast<int64_t>(i) : static_cast<int64_t>(i) * step % n;
    expect[i] = fn(in[i]);  // one by one, before the timed loop
  }
  for (auto _ : state) {
    fn.call_each(in, out);
    benchmark::ClobberMemory();
  }
  if (out != expect) state.SkipWithError("a batch's results differ from one-by-one calls");
  counters(state, sc, img);
  state.counters["calls"] = static_cast<double>(calls);
}

void register_all() {
  benchmark::RegisterBenchmark("call/direct", BM_direct)->UseRealTime();
  benchmark::RegisterBenchmark("call/pipe_any_cpu", BM_pipe, false)->UseRealTime();
  benchmark::RegisterBenchmark("call/pipe_same_cpu", BM_pipe, true)->UseRealTime();
  benchmark::RegisterBenchmark("floor/mprotect_pair", BM_mprotect_pair)
      ->ArgNames({"pages", "present"})
      ->Args({1, 1})
      ->Args({512, 1})
      ->Args({512, 64})
      ->UseRealTime();
  for (const Backend& b : backends())
    benchmark::RegisterBenchmark(("call/" + std::string(b.name)).c_str(), BM_call, b)->UseRealTime();
  for (const Backend& b : backends())
    benchmark::RegisterBenchmark(("raw/" + std::string(b.name)).c_str(), BM_raw, b)->UseRealTime();
  const struct {
    const char* name;
    Work w;
  } works[] = {{"add1", Work::Add1}, {"lookup", Work::Lookup}, {"lua_score", Work::LuaScore}};
  for (const auto& work : works) {
    benchmark::RegisterBenchmark(("sqlite_lua/" + std::string(work.name) + "/direct").c_str(), BM_workload, nullptr,
                                 work.w)
        ->UseRealTime();
    for (const Backend& b : backends())
      benchmark::RegisterBenchmark(("sqlite_lua/" + std::string(work.name) + "/" + b.name).c_str(), BM_workload, &b,
                                   work.w)
          ->UseRealTime();
  }
  for (const Backend& b : backends())
    benchmark::RegisterBenchmark(("batch/add1/" + std::string(b.name)).c_str(), BM_batch, b, false, Work::Add1)
        ->ArgName("calls")
        ->Arg(16)
        ->Arg(256)
        ->Arg(4096)
        ->UseRealTime();
  for (const char* work : {"add1", "lookup"})
    for (const Backend& b : backends())
      benchmark::RegisterBenchmark(("batch/sqlite_lua_" + std::string(work) + "/" + b.name).c_str(), BM_batch, b, true,
                                   std::string(work) == "add1" ? Work::Add1 : Work::Lookup)
          ->ArgName("calls")
          ->Arg(256)
          ->UseRealTime();
  for (const Backend& b : backends())
    benchmark::RegisterBenchmark(("pages/" + std::string(b.name)).c_str(), BM_pages, b)
        ->ArgName("N")
        ->Arg(1)
        ->Arg(10)
        ->Arg(100)
        ->Arg(1000)
        ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  const int rc = bench::benchmark_main(argc, argv);
  if (current.valid()) subctx::Matchmaker::instance().unmap(current);
  current = {};
  return rc;
}
