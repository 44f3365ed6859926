// What the Matchmaker keeps per mapped subcontext.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gate/gate.hpp"
#include "gate/protection.hpp"
#include "image/format.hpp"
#include "subctx/signature.hpp"
#include "subctx/subctx.hpp"
#include "sys/mapping.hpp"

namespace subctx::detail {

struct ExportEntry {
  image::ExportRecord record;
  Signature signature;
};

struct SubcontextState {
  int handle = -1;
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  image::ImageInfo info;
  std::vector<ExportEntry> exports;
  std::map<std::string, uint32_t, std::less<>> export_index;

  // What the policy looks at, and per export the policy generation at which
  // a call was last allowed (calls check one number while nothing changes).
  std::string canonical_path;
  uid_t owner = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> call_allowed_generation;

  // Calls into one subcontext are serialized: it has one server thread.
  std::mutex call_mutex;
  bool mapped = true;                  // guarded by call_mutex
  // The thread (its thread pointer) holding call_mutex: a signal handler
  // that calls in again on that thread would wait for itself.
  std::atomic<uint64_t> call_owner{0};
  // Declared before the mappings: destroyed after them (a protection key
  // is freed only when no page carries it any more).
  gate::Protection protection;  // opened and closed under call_mutex
  uint64_t raw_lo = 0;                 // raw-call address of export 0
  std::vector<sys::Mapping> mappings;  // segments, then the vDSO forwarder
  std::vector<bool> from_file;         // per mapping: a view of the image file

  uint64_t tcb = 0;
  uint64_t stack_top = 0;
  uint64_t stack_lo = 0;
  // The frame of the call in progress (its client thread pointer and stack),
  // for client signal handlers that interrupt it (fault/signals.cpp).
  gate::Frame* volatile current_frame = nullptr;

  FILE* sub_stdout = nullptr;  // in the image; flushed after each call
  FILE* sub_stderr = nullptr;
  uint64_t fflush_fn = 0;
};

}  // namespace subctx::detail
