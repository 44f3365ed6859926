// The server of a payload, and the same payload run natively:
//
//   payload_<name>_server snapshot IMAGE   init(), then snapshot into IMAGE
//   payload_<name>_server native INPUTS    init(), then run() on every input,
//                                          outputs framed on stdout
//   payload_<name>_server first INPUTS     init() and run() on the first input
//                                          only (the warm-start benchmark's cold side)
//
// "init()" is payload::init() then, where the payload has one,
// payload::server_init() (its exports.cpp).  Clients call the export "run"
// (str(str)); its result lives in the subcontext until the next call.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <subctx/server.hpp>

#include "inputs.hpp"
#include "payload.hpp"

namespace {

const char* run_export(const char* input) {
  static std::string result;
  result = payload::run(input);
  return result.c_str();
}
SUBCTX_EXPORT_AS("run", run_export);

void init_all() {
  payload::init();
  if (payload::server_init) payload::server_init();
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s snapshot IMAGE | native INPUTS | first INPUTS\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage(argv[0]);
  const std::string mode = argv[1];
  try {
    if (mode == "snapshot") {
      init_all();
      if (payload::warm_up_inputs)
        for (const std::string& input : payload::warm_up_inputs()) payload::run(input);
      subctx::snapshot_and_exit(argv[2]);
    }
    if (mode != "native" && mode != "first") return usage(argv[0]);
    const auto inputs = payload::read_inputs(argv[2]);
    init_all();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string out = payload::frame_output(i, payload::run(inputs[i]));
      std::fwrite(out.data(), 1, out.size(), stdout);
      if (mode == "first") break;
    }
    return std::fflush(stdout) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "payload %s: %s\n", payload::kName, e.what());
    return 1;
  }
}
