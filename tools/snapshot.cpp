// `subctx snapshot --pid PID -o IMAGE --export NAME:SIGNATURE [...]
// [--then continue|kill] [--drop-fd N ...]`: the image of another, unmodified
// running process (src/external/, docs/external-snapshot.md).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli.hpp"
#include "external/external_snapshot.hpp"
#include "sys/io.hpp"

namespace subctx::tool {

namespace {

// A whole decimal number in [min, max], or a usage error naming the option.
long parse_number(const std::string& option, const std::string& text, long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || v < min || v > max)
    throw UsageError("snapshot", option + " \"" + sys::printable(text) + "\": not a number from " +
                                     std::to_string(min) + " to " + std::to_string(max));
  return v;
}

}  // namespace

int run_snapshot(const std::vector<std::string>& args) {
  external::ExternalOptions o;
  bool have_pid = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError("snapshot", a + " needs a value");
      return args[++i];
    };
    if (a == "--pid") {
      o.pid = static_cast<pid_t>(parse_number(a, value(), 1, 0x7fffffff));
      have_pid = true;
    } else if (a == "-o" || a == "--output") {
      o.image_path = value();
    } else if (a == "--export") {
      const std::string& v = value();
      const size_t colon = v.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
        throw UsageError("snapshot",
                         "--export \"" + sys::printable(v) + "\": give NAME:SIGNATURE, e.g. lookup:i64(str)");
      o.exports.push_back({v.substr(0, colon), v.substr(colon + 1)});
    } else if (a == "--then") {
      const std::string& v = value();
      if (v == "continue") o.then = external::Then::Continue;
      else if (v == "kill") o.then = external::Then::Kill;
      else throw UsageError("snapshot", "--then \"" + sys::printable(v) + "\": give continue or kill");
    } else if (a == "--drop-fd") {
      o.dropped_fds.push_back(static_cast<int>(parse_number(a, value(), 3, 1 << 20)));
    } else if (a == "--mode") {
      const std::string& v = value();
      char* end = nullptr;
      const unsigned long m = std::strtoul(v.c_str(), &end, 8);
      if (v.empty() || *end || m > 0777)
        throw UsageError("snapshot", "--mode \"" + sys::printable(v) + "\": an octal mode such as 0640");
      o.mode = static_cast<unsigned>(m);
    } else {
      throw UsageError("snapshot", "unknown argument \"" + sys::printable(a) + "\"");
    }
  }
  if (!have_pid) throw UsageError("snapshot", "--pid PID is required");
  if (o.image_path.empty()) throw UsageError("snapshot", "-o IMAGE is required");
  if (o.exports.empty()) throw UsageError("snapshot", "at least one --export NAME:SIGNATURE is required");
  const external::ExternalReport r = external::snapshot_process(o);
  for (const auto& note : r.notes) std::fprintf(stderr, "subctx: note: %s\n", note.c_str());
  std::printf(
      "wrote %s: %zu segments, %.1f MiB virtual, %.1f MiB of data; %zu lazy PLT slots resolved; process %d %s\n",
      sys::printable(o.image_path, sys::kNoLimit).c_str(), r.segments, r.virtual_size / 1048576.0,
      r.data_bytes / 1048576.0, r.plt_slots_resolved, static_cast<int>(o.pid),
      o.then == external::Then::Kill ? "killed" : "continues");
  for (const auto& [name, addr] : r.exports) std::printf("  export %s at %s\n", name.c_str(), sys::hex(addr).c_str());
  return kExitOk;
}

}  // namespace subctx::tool
