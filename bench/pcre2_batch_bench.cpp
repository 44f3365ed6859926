// Batches on a real payload: PCRE2's count_matches export (tests/payloads/
// pcre2/exports.cpp) over every pattern of the image (the catastrophic one
// aside) and every input of inputs.txt used as a subject: one pass = some
// ten thousand matches of a few microseconds each, the gate's cost per call
// in plain view.
//
//   native            pcre2_payload::count_matches in this process, after
//                     payload::init() compiled the same patterns here
//   gate/B            one call of the export per job, backend B (auto, none)
//   batch/B           Function::call_each over all the jobs: one policy check,
//                     one protection window, a gate entry per 1024 calls
//
// Time per pass; counters: jobs, ns_per_job.  The native benchmark runs
// last (the image is mapped at its addresses before payload::init() fills
// this process's memory, see payload_bench.cpp) and compares every gate
// benchmark's counts with its own: counter gate_mismatches, 0 when equal.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <subctx/subctx.hpp>
#include <tuple>
#include <vector>

#include "inputs.hpp"
#include "payload.hpp"
#include "pcre2_state.hpp"
#include "support.hpp"

namespace {

namespace pp = pcre2_payload;
using CountSig = int64_t(int32_t, const char*, uint64_t);
using Job = std::tuple<int32_t, const char*, uint64_t>;

std::vector<std::string> g_subjects;
std::vector<Job> g_jobs;
std::vector<std::vector<int64_t>> g_gate_counts;  // each gate benchmark's last pass
std::string g_image, g_error;

void prepare() {
  g_subjects = payload::read_inputs(PAYLOAD_INPUTS);
  for (int32_t p = 0; p < pp::kPatternCount; ++p) {
    if (std::string(pp::kPatterns[p].name) == "catastrophic") continue;  // the match limit, not matching
    for (const std::string& s : g_subjects) g_jobs.emplace_back(p, s.data(), s.size());
  }
  g_image = bench::temp_dir().file("pcre2.img");
  try {
    bench::make_image(g_image, {PAYLOAD_SERVER, "snapshot", g_image});
  } catch (const std::exception& e) {
    g_error = std::string("image ") + g_image + ": " + e.what();
  }
}

void per_job(benchmark::State& state) {
  state.counters["jobs"] = static_cast<double>(g_jobs.size());
  state.counters["ns_per_job"] =
      benchmark::Counter(static_cast<double>(g_jobs.size()) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

subctx::Subcontext map_or_skip(benchmark::State& state, subctx::Protection p) {
  if (!g_error.empty()) {
    state.SkipWithError(g_error.c_str());
    return {};
  }
  subctx::MapOptions o;
  o.protection = p;
  return bench::map_or_skip(state, g_image, o);
}

void BM_gate(benchmark::State& state, subctx::Protection p, bool batch) {
  subctx::Subcontext sc = map_or_skip(state, p);
  if (!sc.valid()) return;
  const auto count = sc.function<CountSig>("count_matches");
  std::vector<int64_t> counts(g_jobs.size());
  for (auto _ : state) {
    if (batch) {
      count.call_each(g_jobs, counts);
    } else {
      for (size_t i = 0; i < g_jobs.size(); ++i) {
        const auto& [pattern, subject, length] = g_jobs[i];
        counts[i] = count(pattern, subject, length);
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetLabel(subctx::protection_name(sc.protection().backend));
  per_job(state);
  g_gate_counts.push_back(counts);
  subctx::Matchmaker::instance().unmap(sc);
}

void BM_native(benchmark::State& state) {
  static bool initialized = [] {
    payload::init();
    return true;
  }();
  (void)initialized;
  std::vector<int64_t> counts(g_jobs.size());
  for (auto _ : state) {
    for (size_t i = 0; i < g_jobs.size(); ++i) {
      const auto& [pattern, subject, length] = g_jobs[i];
      counts[i] = pp::count_matches(pattern, std::string_view(subject, length));
    }
    benchmark::ClobberMemory();
  }
  per_job(state);
  size_t bad = 0;
  for (const auto& gate : g_gate_counts)
    for (size_t i = 0; i < counts.size(); ++i) bad += gate[i] != counts[i];
  state.counters["gate_mismatches"] = static_cast<double>(bad);
  if (bad) state.SkipWithError("the gate's counts differ from the native ones");
}

}  // namespace

int main(int argc, char** argv) {
  prepare();
  using subctx::Protection;
  for (auto [name, p] : {std::pair{"auto", Protection::Auto}, std::pair{"none", Protection::None}}) {
    benchmark::RegisterBenchmark((std::string("gate/") + name).c_str(), BM_gate, p, false)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("batch/") + name).c_str(), BM_gate, p, true)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("native", BM_native)->UseRealTime()->Unit(benchmark::kMillisecond);
  return bench::benchmark_main(argc, argv);
}
