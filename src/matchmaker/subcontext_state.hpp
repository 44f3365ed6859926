// What the Matchmaker keeps per mapped subcontext.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

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

  // Calls into one subcontext are serialized: it has one server thread.
  std::mutex call_mutex;
  bool mapped = true;                  // guarded by call_mutex
  std::vector<sys::Mapping> mappings;  // segments, then the vDSO forwarder
  std::vector<bool> from_file;         // per mapping: a view of the image file

  uint64_t tcb = 0;
  uint64_t stack_top = 0;
  FILE* sub_stdout = nullptr;  // in the image; flushed after each call
  FILE* sub_stderr = nullptr;
  uint64_t fflush_fn = 0;
};

}  // namespace subctx::detail
