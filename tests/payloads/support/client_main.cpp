// A client of any payload image: maps it and runs every input through the
// export "run", printing the outputs framed exactly as the native runner
// does (server_main.cpp), so the two streams compare byte for byte.
//
//   payload_client IMAGE INPUTS
//
// The protection backend comes from SUBCTX_PROTECTION (the tests set it).
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
    subctx::Matchmaker& mm = subctx::Matchmaker::instance();
    subctx::Subcontext sc = mm.request_map(argv[1]);
    auto run = sc.function<const char*(const char*)>("run");
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string out = payload::frame_output(i, run(inputs[i].c_str()));
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    mm.unmap(sc);
    return std::fflush(stdout) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "payload_client: %s\n", e.what());
    return 1;
  }
}
