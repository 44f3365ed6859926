// Where request_map and unmap spend their time, phase by phase: for
// bench_map (linked to the static library), never for clients.  While
// map_phase_sink is null (always, outside that benchmark) a phase mark is a
// load and a branch.
#pragma once

#include <time.h>

#include <cstddef>
#include <cstdint>

namespace subctx::matchmaker {

enum class MapPhase : uint8_t {
  Open,         // open, fstat, owner, the opened path and its directories, already mapped?
  Read,         // headers and notes read, parsed, validated, the header digest
  Decide,       // digest pin, policy, CPU features
  Prepare,      // the vDSO forwarder built, the stack growth room checked
  Segments,     // the segments mmapped
  Vdso,         // the vDSO forwarder mapped, written, protected
  Prefetch,     // the hot pages read in and populated (prefetch.hpp)
  State,        // exports, thread record, raw-call addresses
  Containment,  // fault policy, quotas, the system call table
  Identity,     // the server's descriptors reopened, its working directory
  Protection,   // the backend's setup (pkey tags, mprotect plan)
  UnmapLayout,  // unmap: which ranges are still the subcontext's
  UnmapMemory,  // unmap: munmap of them and of what calls mapped
  UnmapRest,    // unmap: descriptors closed, reservations and key freed
  Count
};

inline constexpr const char* kMapPhaseNames[] = {
    "open",  "read",        "decide",   "prepare",    "segments",     "vdso",         "prefetch",
    "state", "containment", "identity", "protection", "unmap_layout", "unmap_memory", "unmap_rest"};
static_assert(sizeof kMapPhaseNames / sizeof *kMapPhaseNames == static_cast<size_t>(MapPhase::Count));

struct MapPhaseTimes {
  uint64_t ns[static_cast<size_t>(MapPhase::Count)] = {};
};

// Set by bench_map around its phase rows; added to by every map and unmap.
extern MapPhaseTimes* map_phase_sink;

// Marks the end of each phase: adds the time since the last mark.
class PhaseClock {
 public:
  PhaseClock() : sink_(map_phase_sink) {
    if (sink_) last_ = now();
  }
  void mark(MapPhase p) {
    if (!sink_) return;
    const uint64_t t = now();
    sink_->ns[static_cast<size_t>(p)] += t - last_;
    last_ = t;
  }

 private:
  static uint64_t now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  }
  MapPhaseTimes* sink_;
  uint64_t last_ = 0;
};

}  // namespace subctx::matchmaker
