#include "payload_test.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <stdexcept>

#include "inputs.hpp"
#include "temp_dir.hpp"

namespace payload::testing {

namespace {
constexpr e2e::Millis kTimeout{120000};

std::vector<std::string> outputs_of(const e2e::ProcessResult& r, const std::string& what) {
  if (!r.ok()) throw std::runtime_error(what + " failed: " + r.describe());
  return parse_outputs(r.out);
}
}  // namespace

const std::string& temp_dir() {
  static subctx::testing::TempDir dir(std::string("subctx-payload-") + PAYLOAD_NAME, "TMPDIR", "SUBCTX_E2E_KEEP");
  return dir.path();
}

const std::string& image() {
  static const std::string path = [] {
    const std::string p = temp_dir() + "/" + PAYLOAD_NAME + ".img";
    // ASLR may place the server where this process already has a mapping
    // (its [stack] and ours, say): such an image is written again.
    for (int attempt = 1;; ++attempt) {
      e2e::ProcessResult r = e2e::run({PAYLOAD_SERVER, "snapshot", p}, {}, kTimeout);
      struct stat st;
      if (!r.ok() || stat(p.c_str(), &st) != 0)
        throw std::runtime_error(std::string("server ") + PAYLOAD_SERVER + " wrote no image: " + r.describe());
      try {
        auto& mm = subctx::Matchmaker::instance();
        mm.unmap(mm.request_map(p));
        return p;
      } catch (const subctx::AddressConflict& e) {
        if (attempt == 5) throw;
        std::fprintf(stderr, "payload: %s; writing the image again\n", e.what());
      }
    }
  }();
  return path;
}

const std::vector<std::string>& inputs() {
  static const std::vector<std::string> entries = read_inputs(PAYLOAD_INPUTS);
  return entries;
}

const std::vector<std::string>& native_outputs() {
  static const std::vector<std::string> outputs =
      outputs_of(e2e::run({PAYLOAD_SERVER, "native", PAYLOAD_INPUTS}, {}, kTimeout), "native run");
  return outputs;
}

e2e::ProcessResult run_client(const std::string& backend, const std::vector<std::string>& args) {
  e2e::SpawnOptions options;
  options.env = {"SUBCTX_PROTECTION=" + backend};
  return e2e::run(args, options, kTimeout);
}

std::vector<std::string> client_outputs(const std::string& backend) {
  return outputs_of(run_client(backend, {PAYLOAD_CLIENT, image(), PAYLOAD_INPUTS}), "client (" + backend + ")");
}

void expect_same_outputs(const std::vector<std::string>& native, const std::vector<std::string>& client) {
  ASSERT_EQ(native.size(), inputs().size()) << "the native run did not answer every input";
  ASSERT_EQ(client.size(), native.size()) << "the client did not answer every input";
  int shown = 0;
  for (size_t i = 0; i < native.size(); ++i)
    if (client[i] != native[i] && shown++ < 5)
      ADD_FAILURE() << "input " << i << ":\n"
                    << inputs()[i] << "\n--- native ---\n"
                    << native[i] << "\n--- client ---\n"
                    << client[i];
  EXPECT_EQ(shown, 0) << shown << " of " << native.size() << " outputs differ";
}

}  // namespace payload::testing
