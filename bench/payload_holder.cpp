// One client of bench_payload_pss: maps a payload image, runs the first
// input of an inputs file through the export "run", prints "ready" and
// holds the mapping until its stdin reaches EOF (the parent then reads its
// memory from /proc/PID/smaps_rollup).
//
//   bench_payload_holder IMAGE INPUTS
//
// On failure it prints "error: <why>" instead of "ready" and exits 1.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>
#include <subctx/subctx.hpp>

#include "inputs.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IMAGE INPUTS\n", argv[0]);
    return 2;
  }
  try {
    const auto inputs = payload::read_inputs(argv[2]);
    if (inputs.empty()) throw std::runtime_error(std::string(argv[2]) + ": no inputs");
    auto& mm = subctx::Matchmaker::instance();
    subctx::Subcontext sc = mm.request_map(argv[1]);
    const std::string out = sc.call<const char*(const char*)>("run", inputs[0].c_str());
    if (out.rfind("error: ", 0) == 0) throw std::runtime_error("the first input failed: " + out);
    std::printf("ready\n");
    std::fflush(stdout);
    char buf[256];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    mm.unmap(sc);
    return 0;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
