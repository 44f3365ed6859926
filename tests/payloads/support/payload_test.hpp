// What every payload's tests share: the image built by the payload's real
// server, its outputs from a fresh native process and from a real client
// process, and their comparison.  Paths come from CMake (PAYLOAD_SERVER,
// PAYLOAD_CLIENT, PAYLOAD_INPUTS, PAYLOAD_NAME).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "pkeys.hpp"
#include "process.hpp"
#include "protection_names.hpp"

namespace payload::testing {

// The directory this test process writes into (removed at exit unless
// SUBCTX_E2E_KEEP is set).
const std::string& temp_dir();
// The payload's image, built once per test process by its server.
const std::string& image();
// The entries of the payload's inputs file.
const std::vector<std::string>& inputs();
// Outputs of `payload_<name>_server native INPUTS` in a fresh process
// (computed once per test process).
const std::vector<std::string>& native_outputs();
// Outputs of payload_client mapping the image with this protection backend.
std::vector<std::string> client_outputs(const std::string& backend);
// Any program of the test with the payload's protection env; e.g. a second client.
e2e::ProcessResult run_client(const std::string& backend, const std::vector<std::string>& args);

// Same number of outputs, each byte-identical; a mismatch names the input.
void expect_same_outputs(const std::vector<std::string>& native, const std::vector<std::string>& client);

using subctx::testing::pkeys_work;
using subctx::testing::protection_named;
// Skips the current test for a backend this machine cannot run.
#define PAYLOAD_SKIP_UNLESS_BACKEND_WORKS(backend) \
  if (std::string(backend) == "pkey" && !::payload::testing::pkeys_work()) GTEST_SKIP() << "no protection keys here"

// A test of the payload's image mapped in this process with the backend
// its parameter names (skipped where it cannot run), unmapped after; the
// derived fixture binds its imports in bind_defaults().
class MappedImageTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    PAYLOAD_SKIP_UNLESS_BACKEND_WORKS(GetParam());
    subctx::MapOptions options;
    options.protection = protection_named(GetParam());
    sc_ = subctx::Matchmaker::instance().request_map(image(), options);
    bind_defaults();
  }
  void TearDown() override {
    if (sc_.valid()) subctx::Matchmaker::instance().unmap(sc_);
  }
  virtual void bind_defaults() {}
  subctx::Subcontext sc_;
};

}  // namespace payload::testing

// The comparison every payload has: for each backend, a real client
// process's outputs equal a fresh native process's, byte for byte.
#define PAYLOAD_COMPARISON_TESTS(Suite)                                                      \
  class Suite : public ::testing::TestWithParam<const char*> {};                             \
  TEST_P(Suite, ClientOutputsEqualANativeProcess) {                                          \
    PAYLOAD_SKIP_UNLESS_BACKEND_WORKS(GetParam());                                           \
    ::payload::testing::expect_same_outputs(::payload::testing::native_outputs(),            \
                                            ::payload::testing::client_outputs(GetParam())); \
  }                                                                                          \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::Values("none", "mprotect", "pkey"),   \
                           [](const auto& info) { return std::string(info.param); })
