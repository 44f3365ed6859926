// The warm-start showcase (issue 5) for one payload of tests/payloads/:
// built once per payload as bench_payload_<name>, linked with the payload's
// library so that it can also run the payload natively in this process.
// PAYLOAD_NAME, PAYLOAD_SERVER, PAYLOAD_CLIENT and PAYLOAD_INPUTS come from
// CMake.  FIRST below is a one-entry inputs file holding the first input.
//
//   cold/process       (a) a fresh process doing init + the first operation:
//                      `payload_<name>_server first FIRST`, spawned and waited for
//   cold/exec_only     the same program started without arguments (it prints
//                      its usage and exits): exec + dynamic loading, no init
//   warm/process       (b') a fresh `payload_client IMAGE FIRST`: maps the
//                      image and runs the first input (process vs process)
//   warm/in_process/B  (b) request_map + run(first input) + unmap in this
//                      process, protection backend B (auto, none)
//   steady/gate/B      (c) operations per second through sc.function("run"),
//                      cycling through every input of inputs.txt
//   steady/native      (c) the same sequence with payload::run called
//                      directly, after payload::init() in this process
//
// Every first-operation output is checked against the native process's;
// the untimed first pass of each steady benchmark is compared with the
// native one (counter mismatched_outputs: 0 when identical).  Steady
// benchmarks run a fixed number of whole passes (same sequence on both
// sides; inputs that write, e.g. SQL INSERTs, write the same rows), chosen so
// that the gate's run lasts about --payload_steady_s seconds.
//
// Order matters: this process maps the image (at the server's addresses),
// and payload::init() fills this process's own memory; the native side is
// registered last so that its allocations cannot take the image's place
// before the gate benchmarks have mapped it.
#include <benchmark/benchmark.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "inputs.hpp"
#include "payload.hpp"
#include "support.hpp"

namespace {

using RunSig = const char*(const char*);
using Clock = std::chrono::steady_clock;

using bench::spawn;
using bench::Spawned;

bool exited_ok(const Spawned& r) { return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0; }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// What every benchmark shares, set up once in main().
struct Setup {
  std::vector<std::string> inputs;
  std::string image;           // written by the payload's server
  std::string first_inputs;    // a one-entry inputs file: inputs[0]
  std::string first_expected;  // framed output of `server first FIRST` (a native process)
  std::string setup_error;     // set when the image could not be written or mapped here
  bench::ImageStats stats;
  double gate_pass_s = 0;  // one pass over all inputs through the gate
  int64_t passes = 1;      // timed passes of each steady benchmark
};
Setup setup;

std::string frame_first(const std::string& output) { return payload::frame_output(0, output); }

void image_counters(benchmark::State& state) {
  state.counters["image_file_MB"] = static_cast<double>(setup.stats.file_bytes) / 1e6;
  state.counters["image_disk_MB"] = static_cast<double>(setup.stats.disk_bytes) / 1e6;
}

bool setup_ok(benchmark::State& state) {
  if (setup.setup_error.empty()) return true;
  state.SkipWithError(setup.setup_error.c_str());
  return false;
}

subctx::MapOptions with(subctx::Protection p) {
  subctx::MapOptions o;
  o.protection = p;
  return o;
}

// Maps the image; on failure (an address conflict with this process's own
// memory, above all) reports why and returns an invalid Subcontext.
subctx::Subcontext map_or_skip(benchmark::State& state, const subctx::MapOptions& options) {
  return bench::map_or_skip(state, setup.image, options);
}

// ---- (a) cold start ----

void BM_cold_process(benchmark::State& state) {
  const std::vector<std::string> argv = {PAYLOAD_SERVER, "first", setup.first_inputs};
  for (auto _ : state) {
    const Spawned r = spawn(argv);
    if (!exited_ok(r) || r.out != setup.first_expected) {
      state.SkipWithError("the server's first operation failed or printed another output");
      break;
    }
  }
}

void BM_cold_exec_only(benchmark::State& state) {
  const std::vector<std::string> argv = {PAYLOAD_SERVER};
  for (auto _ : state) {
    const Spawned r = spawn(argv, true);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 2) {
      state.SkipWithError("the server without arguments did not exit with its usage status 2");
      break;
    }
  }
}

// ---- (b) warm start ----

void BM_warm_process(benchmark::State& state) {
  if (!setup_ok(state)) return;
  const std::vector<std::string> argv = {PAYLOAD_CLIENT, setup.image, setup.first_inputs};
  for (auto _ : state) {
    const Spawned r = spawn(argv);
    if (!exited_ok(r) || r.out != setup.first_expected) {
      state.SkipWithError("payload_client failed or printed another output than the native process");
      break;
    }
  }
  image_counters(state);
}

void BM_warm_in_process(benchmark::State& state, subctx::Protection p) {
  if (!setup_ok(state)) return;
  auto& mm = subctx::Matchmaker::instance();
  const char* first = setup.inputs[0].c_str();
  std::string backend;
  for (auto _ : state) {
    subctx::Subcontext sc = map_or_skip(state, with(p));
    if (!sc.valid()) return;
    const std::string out = sc.call<RunSig>("run", first);
    if (backend.empty()) backend = subctx::protection_name(sc.protection().backend);
    mm.unmap(sc);
    if (frame_first(out) != setup.first_expected) {
      state.SkipWithError("run(first input) through the gate printed another output than the native process");
      return;
    }
  }
  state.SetLabel(backend);
  image_counters(state);
}

// ---- (c) steady state ----

// Outputs of the untimed first pass: the gate's are compared with these.
std::vector<std::string> native_first_pass;
std::vector<std::string> gate_first_pass;

// mine: this side's first pass (kept from its first run); other: the other side's.
template <class Run>
void steady(benchmark::State& state, Run&& run, std::vector<std::string>& mine, const std::vector<std::string>& other) {
  const size_t n = setup.inputs.size();
  std::vector<std::string> outs;
  for (const auto& in : setup.inputs) outs.push_back(run(in.c_str()));  // warm: first-touch faults, caches
  if (mine.empty()) mine = outs;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string out = run(setup.inputs[i].c_str());
    bytes += out.size();
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["inputs"] = static_cast<double>(n);
  state.counters["passes"] = static_cast<double>(state.iterations()) / static_cast<double>(n);
  state.counters["output_bytes_per_op"] = static_cast<double>(bytes) / static_cast<double>(state.iterations());
  if (!other.empty()) {
    size_t bad = 0;
    for (size_t k = 0; k < n; ++k) bad += outs[k] != other[k];
    state.counters["mismatched_outputs"] = static_cast<double>(bad);
    if (bad)
      std::fprintf(stderr, "bench_payload_%s: %zu outputs of the gate differ from native ones\n", payload::kName, bad);
  }
}

void BM_steady_gate(benchmark::State& state, subctx::Protection p) {
  if (!setup_ok(state)) return;
  subctx::Subcontext sc = map_or_skip(state, with(p));
  if (!sc.valid()) return;
  const auto run = sc.function<RunSig>("run");
  steady(
      state, [&](const char* in) { return std::string(run(in)); }, gate_first_pass, native_first_pass);
  state.SetLabel(subctx::protection_name(sc.protection().backend));
  subctx::Matchmaker::instance().unmap(sc);
}

void BM_steady_native(benchmark::State& state) {
  static double init_s = -1;
  static std::string init_error;
  if (init_s < 0 && init_error.empty()) {
    const auto t0 = Clock::now();
    try {
      payload::init();
      init_s = seconds_since(t0);
    } catch (const std::exception& e) {
      init_error = std::string("payload::init() failed: ") + e.what();
    }
  }
  if (!init_error.empty()) {
    state.SkipWithError(init_error.c_str());
    return;
  }
  steady(
      state, [](const char* in) { return payload::run(in); }, native_first_pass, gate_first_pass);
  state.counters["init_ms"] = init_s * 1e3;  // init() in this process, once
}

// ---- setup ----

void prepare() {
  setup.inputs = payload::read_inputs(PAYLOAD_INPUTS);
  if (setup.inputs.empty()) throw std::runtime_error(std::string(PAYLOAD_INPUTS) + ": no inputs");
  setup.first_inputs = bench::temp_dir().file("first.txt");
  {
    std::ofstream f(setup.first_inputs, std::ios::binary);
    f << setup.inputs[0] << '\n';
    if (!f) throw std::runtime_error("cannot write " + setup.first_inputs);
  }
  const Spawned native = spawn({PAYLOAD_SERVER, "first", setup.first_inputs});
  if (!exited_ok(native)) throw std::runtime_error(std::string(PAYLOAD_SERVER) + " first: failed");
  setup.first_expected = native.out;

  setup.image = bench::temp_dir().file(std::string(payload::kName) + ".img");
  try {
    // Rewrites the image (new server addresses) when it conflicts with ours.
    bench::make_image(setup.image, {PAYLOAD_SERVER, "snapshot", setup.image});
    setup.stats = bench::image_stats(setup.image);
    // One pass through the gate: sizes the steady benchmarks.
    auto& mm = subctx::Matchmaker::instance();
    subctx::Subcontext sc = mm.request_map(setup.image);
    const auto run = sc.function<RunSig>("run");
    const auto t0 = Clock::now();
    for (const auto& in : setup.inputs) benchmark::DoNotOptimize(run(in.c_str()));
    setup.gate_pass_s = seconds_since(t0);
    mm.unmap(sc);
  } catch (const std::exception& e) {
    setup.setup_error = std::string("image ") + setup.image + ": " + e.what();
    std::fprintf(stderr, "bench_payload_%s: %s\n", payload::kName, setup.setup_error.c_str());
  }
}

void register_all(double steady_s) {
  using benchmark::RegisterBenchmark;
  const auto ms = benchmark::kMillisecond;
  RegisterBenchmark("cold/process", BM_cold_process)->UseRealTime()->Unit(ms);
  RegisterBenchmark("cold/exec_only", BM_cold_exec_only)->UseRealTime()->Unit(ms);
  RegisterBenchmark("warm/process", BM_warm_process)->UseRealTime()->Unit(ms);
  RegisterBenchmark("warm/in_process/auto", BM_warm_in_process, subctx::Protection::Auto)->UseRealTime()->Unit(ms);
  RegisterBenchmark("warm/in_process/none", BM_warm_in_process, subctx::Protection::None)->UseRealTime()->Unit(ms);

  setup.passes = setup.gate_pass_s > 0
                     ? std::clamp<int64_t>(static_cast<int64_t>(std::ceil(steady_s / setup.gate_pass_s)), 1, 50)
                     : 1;
  const auto iterations = static_cast<benchmark::IterationCount>(setup.passes * setup.inputs.size());
  const auto us = benchmark::kMicrosecond;
  RegisterBenchmark("steady/gate/auto", BM_steady_gate, subctx::Protection::Auto)
      ->Iterations(iterations)
      ->Repetitions(1)
      ->UseRealTime()
      ->Unit(us);
  RegisterBenchmark("steady/gate/none", BM_steady_gate, subctx::Protection::None)
      ->Iterations(iterations)
      ->Repetitions(1)
      ->UseRealTime()
      ->Unit(us);
  // Last: payload::init() in this process (see the top of this file).
  RegisterBenchmark("steady/native", BM_steady_native)->Iterations(iterations)->Repetitions(1)->UseRealTime()->Unit(us);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // Our own flag: --payload_steady_s=S, the gate's steady run (default 0.5 s).
  double steady_s = 0.5;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--payload_steady_s=", 0) == 0) steady_s = std::atof(a.c_str() + 19);
    else argv[kept++] = argv[i];
  }
  argc = kept;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  try {
    prepare();
    register_all(steady_s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  benchmark::AddCustomContext("payload", payload::kName);
  benchmark::AddCustomContext("payload_inputs", std::to_string(setup.inputs.size()));
  return bench::run_benchmarks(argv[0]);
}
