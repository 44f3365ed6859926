// The `subctx` command: look into, check and call images.
//
//   subctx inspect IMAGE               metadata, segments, exports, sizes
//   subctx call [--memory] IMAGE EXPORT [ARGS...]  map, call one export, print the result
//   subctx verify IMAGE                recompute every digest
//   subctx train IMAGE --call EXPORT[:ARG...]...  record the pages first calls touch
//   subctx snapshot --pid PID -o IMAGE --export NAME:SIG...  image of a running process
//   subctx snapshot -o IMAGE --export NAME:SIG... --after S -- PROGRAM ARGS...  (or one started for it)
//
// Exit status: 0 success, 1 error (bad image, refused map, failed call,
// digest mismatch), 2 bad command line.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli.hpp"
#include "subctx/error.hpp"

namespace subctx::tool {

namespace {

struct Command {
  const char* name;
  const char* synopsis;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"inspect", "inspect IMAGE",
     "show an image's metadata, thread record, segments, exports and sizes\n"
     "    (reads only the header; nothing is mapped)",
     run_inspect},
    {"call", "call [--memory] IMAGE EXPORT [ARGS...]",
     "map IMAGE, call EXPORT with ARGS typed by its signature, print the result (--memory: and what the subcontext "
     "used)",
     run_call},
    {"verify", "verify IMAGE", "check the header digest and every segment digest", run_verify},
    {"train", "train IMAGE --call EXPORT[:ARG...] [--call ...]",
     "map IMAGE in a fresh process, make the calls, record the pages they touched in the image\n"
     "    (its hot pages: read in at once by a map that finds the image evicted, docs/prefetch.md);\n"
     "    the image is rewritten in place",
     run_train},
    {"snapshot",
     "snapshot --pid PID -o IMAGE --export NAME:SIGNATURE [--export ...] [--then continue|kill] [--drop-fd N] [--mode "
     "0600]\n"
     "    [--spawns]\n"
     "  subctx snapshot -o IMAGE --export NAME:SIGNATURE [...] (--after SECONDS | --on-signal SIG | --ready-fd N\n"
     "    [--ready-text TEXT]) [--timeout SECONDS] [--then kill|continue] -- PROGRAM ARGS...",
     "stop a running process (ptrace), write its image with the named functions as exports, then let it go on\n"
     "    (or kill it); or start PROGRAM, wait until it is ready, snapshot it and kill it (--then kill, the\n"
     "    default there); the program needs no subctx code (docs/external-snapshot.md)",
     run_snapshot},
};

constexpr const char* kArgumentHelp =
    "arguments of call, by the export's signature:\n"
    "  i32 i64 u32 u64  decimal or 0x hex, optionally signed, must fit the type (-5, 0x7f)\n"
    "  f64              a C floating-point number (1.5, -2e3, 0x1p4, inf)\n"
    "  str              passed as given\n"
    "  ptr              an address, decimal or 0x hex\n"
    "results: integers in decimal, f64 with 17 significant digits, ptr in hex,\n"
    "str as the string; void prints nothing.\n";

constexpr const char* kExitHelp =
    "exit status: 0 success; 1 error (bad image, refused map, failed call, digest mismatch);\n"
    "2 bad command line.\n";

// Library messages say what happened; for the codes whose messages do not
// already say what to do, this adds it.
const char* hint_for(Errc code) {
  switch (code) {
    case Errc::NotFound: return "check the path, or run the server again to write the image";
    case Errc::BadImage: return "the file is not a subctx image or is damaged; write it again with its server";
    case Errc::Limit: return "raise the limit with the environment variable the message names";
    default: return nullptr;
  }
}

}  // namespace

std::string usage(const std::string& command) {
  std::string out;
  for (const auto& c : kCommands)
    if (command == c.name) return std::string("usage: subctx ") + c.synopsis + "\n";
  out = "usage: subctx COMMAND ARGS...\n\ncommands:\n";
  for (const auto& c : kCommands) out += std::string("  ") + c.synopsis + "\n    " + c.summary + "\n";
  out += std::string("\n") + kArgumentHelp + "\n" + kExitHelp;
  return out;
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "subctx: no command given\n%s", usage("").c_str());
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    std::fputs(usage("").c_str(), stdout);
    return kExitOk;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    for (const auto& c : kCommands)
      if (name == c.name) {
        // A help request after the command gets that command's usage; any
        // other dash argument is an image path or a negative number.
        if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
          std::fputs(usage(name).c_str(), stdout);
          return kExitOk;
        }
        const int status = c.run(args);
        if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
          std::fprintf(stderr, "subctx: cannot write the output: %s\n", std::strerror(errno));
          return kExitError;
        }
        return status;
      }
    throw UsageError("", "unknown command \"" + name + "\"");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "subctx: %s\n%s", e.what(), usage(e.command()).c_str());
    return kExitUsage;
  } catch (const Error& e) {
    std::fprintf(stderr, "subctx: %s\n", e.what());
    if (const char* hint = hint_for(e.code())) std::fprintf(stderr, "subctx: %s\n", hint);
    return kExitError;
  } catch (const std::exception& e) {
    // e.g. std::bad_alloc: still a message, never an abort.
    std::fprintf(stderr, "subctx: unexpected failure: %s\n", e.what());
    return kExitError;
  }
}

}  // namespace subctx::tool

int main(int argc, char** argv) { return subctx::tool::run(argc, argv); }
