// `subctx snapshot`: the image of another, unmodified process
// (src/external/, docs/external-snapshot.md), running already
//   subctx snapshot --pid PID -o IMAGE --export NAME:SIGNATURE [...] [--then continue|kill] [--drop-fd N ...]
//                   [--spawns]
// or started for it (the launcher form)
//   subctx snapshot -o IMAGE --export ... (--after S | --on-signal SIG | --ready-fd N [--ready-text T])
//                   [--timeout S] [--then kill|continue] -- PROGRAM ARGS...
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli.hpp"
#include "external/external_snapshot.hpp"
#include "external/launch.hpp"
#include "subctx/error.hpp"
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

// Seconds, fractions allowed: "0.5", "60".
double parse_seconds(const std::string& option, const std::string& text, double min) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || errno || !std::isfinite(v) || v < min || v > 86400)
    throw UsageError("snapshot", option + " \"" + sys::printable(text) + "\": seconds, such as 0.5 or 60");
  return v;
}

struct Command {
  external::ExternalOptions o;
  external::LaunchOptions launch;
  bool have_pid = false, have_then = false, have_ready = false, have_timeout = false;
};

void set_ready(Command& c, external::LaunchOptions::Ready r) {
  if (c.have_ready) throw UsageError("snapshot", "give one of --after, --on-signal and --ready-fd");
  c.have_ready = true;
  c.launch.ready = r;
}

// One option at args[i] (advancing i past its value); false when it is not one.
bool parse_option(Command& c, const std::vector<std::string>& args, size_t& i) {
  const std::string& a = args[i];
  auto value = [&]() -> const std::string& {
    if (i + 1 >= args.size()) throw UsageError("snapshot", a + " needs a value");
    return args[++i];
  };
  if (a == "--pid") {
    c.o.pid = static_cast<pid_t>(parse_number(a, value(), 1, 0x7fffffff));
    c.have_pid = true;
  } else if (a == "-o" || a == "--output") {
    c.o.image_path = value();
  } else if (a == "--export") {
    const std::string& v = value();
    const size_t colon = v.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
      throw UsageError("snapshot", "--export \"" + sys::printable(v) + "\": give NAME:SIGNATURE, e.g. lookup:i64(str)");
    c.o.exports.push_back({v.substr(0, colon), v.substr(colon + 1)});
  } else if (a == "--then") {
    const std::string& v = value();
    if (v == "continue") c.o.then = external::Then::Continue;
    else if (v == "kill") c.o.then = external::Then::Kill;
    else throw UsageError("snapshot", "--then \"" + sys::printable(v) + "\": give continue or kill");
    c.have_then = true;
  } else if (a == "--spawns") {
    c.o.spawns = true;
  } else if (a == "--drop-fd") {
    c.o.dropped_fds.push_back(static_cast<int>(parse_number(a, value(), 3, 1 << 20)));
  } else if (a == "--mode") {
    const std::string& v = value();
    char* end = nullptr;
    const unsigned long m = std::strtoul(v.c_str(), &end, 8);
    if (v.empty() || *end || m > 0777)
      throw UsageError("snapshot", "--mode \"" + sys::printable(v) + "\": an octal mode such as 0640");
    c.o.mode = static_cast<unsigned>(m);
  } else if (a == "--after") {
    set_ready(c, external::LaunchOptions::Ready::After);
    c.launch.after_s = parse_seconds(a, value(), 0);
  } else if (a == "--on-signal") {
    set_ready(c, external::LaunchOptions::Ready::Signal);
    const std::string& v = value();
    c.launch.signal = external::parse_signal(v);
    if (!c.launch.signal)
      throw UsageError("snapshot",
                       "--on-signal \"" + sys::printable(v) + "\": a signal such as USR1, SIGUSR2, RTMIN+1");
  } else if (a == "--ready-fd") {
    set_ready(c, external::LaunchOptions::Ready::Fd);
    c.launch.fd = static_cast<int>(parse_number(a, value(), 1, 1023));
  } else if (a == "--ready-text") {
    c.launch.text = value();
    if (c.launch.text.empty() || c.launch.text.find('\n') != std::string::npos)
      throw UsageError("snapshot", "--ready-text: give a non-empty text without a newline");
  } else if (a == "--timeout") {
    c.launch.timeout_s = parse_seconds(a, value(), 0.001);
    c.have_timeout = true;
  } else {
    return false;
  }
  return true;
}

Command parse(const std::vector<std::string>& args) {
  Command c;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i)
    if (!parse_option(c, args, i)) throw UsageError("snapshot", "unknown argument \"" + sys::printable(args[i]) + "\"");
  if (i < args.size()) c.launch.argv.assign(args.begin() + static_cast<long>(i) + 1, args.end());
  const bool launching = i < args.size();
  if (launching && c.launch.argv.empty()) throw UsageError("snapshot", "-- must be followed by PROGRAM [ARGS...]");
  if (c.have_pid == launching)
    throw UsageError("snapshot",
                     "give either --pid PID (a running process) or -- PROGRAM ARGS... (one started for this)");
  if (launching && !c.have_ready)
    throw UsageError("snapshot", "say when PROGRAM is ready: --after SECONDS, --on-signal SIG or --ready-fd N");
  if (!launching && (c.have_ready || c.have_timeout))
    throw UsageError("snapshot", "--after, --on-signal, --ready-fd and --timeout go with -- PROGRAM, not --pid");
  if (c.launch.text != "ready" && c.launch.ready != external::LaunchOptions::Ready::Fd)
    throw UsageError("snapshot", "--ready-text goes with --ready-fd N");
  if (c.o.image_path.empty()) throw UsageError("snapshot", "-o IMAGE is required");
  if (c.o.exports.empty()) throw UsageError("snapshot", "at least one --export NAME:SIGNATURE is required");
  // A program started just for the snapshot is not left behind by default.
  if (launching && !c.have_then) c.o.then = external::Then::Kill;
  // The readiness pipe, if the program keeps it, is this command's: no
  // client could reopen it, so the image has it dropped (EBADF inside).
  if (launching && c.launch.ready == external::LaunchOptions::Ready::Fd && c.launch.fd >= 3)
    c.o.dropped_fds.push_back(c.launch.fd);
  return c;
}

void print_report(const external::ExternalOptions& o, const external::ExternalReport& r) {
  for (const auto& note : r.notes) std::fprintf(stderr, "subctx: note: %s\n", note.c_str());
  std::printf(
      "wrote %s: %zu segments, %.1f MiB virtual, %.1f MiB of data; %zu lazy PLT slots resolved; process %d %s\n",
      sys::printable(o.image_path, sys::kNoLimit).c_str(), r.segments, r.virtual_size / 1048576.0,
      r.data_bytes / 1048576.0, r.plt_slots_resolved, static_cast<int>(o.pid),
      o.then == external::Then::Kill ? "killed" : "continues");
  for (const auto& [name, addr] : r.exports) std::printf("  export %s at %s\n", name.c_str(), sys::hex(addr).c_str());
}

}  // namespace

int run_snapshot(const std::vector<std::string>& args) {
  Command c = parse(args);
  // SIGINT, SIGTERM, SIGHUP: taken at safe points, the target put back first.
  external::StopRequests stop;
  std::unique_ptr<external::Launched> launched;
  try {
    if (!c.launch.argv.empty()) {
      launched = std::make_unique<external::Launched>(c.launch, stop);
      c.o.pid = launched->pid();
    }
    external::ExternalReport r;
    try {
      r = external::snapshot_process(c.o);
    } catch (const SnapshotRefused&) {
      std::string how;
      if (launched && launched->exited(&how))
        throw SnapshotRefused("snapshot refused: " + c.launch.argv[0] + " (process " + std::to_string(c.o.pid) +
                              ") exited during the snapshot (" + how + "); no image was written");
      throw;
    }
    if (launched) launched->release();  // killed and reaped, or going on
    print_report(c.o, r);
    return kExitOk;
  } catch (const external::Interrupted& e) {
    std::string what;
    if (!c.launch.argv.empty()) what = c.launch.argv[0] + ", started for the snapshot, was killed";
    else
      what = "process " + std::to_string(c.o.pid) +
             " was given back as it was (registers, signal mask, memory) and detached";
    launched.reset();
    std::fprintf(stderr, "subctx: %s: %s; no image was written\n", e.what(), what.c_str());
    return 128 + e.signal();
  }
}

}  // namespace subctx::tool
