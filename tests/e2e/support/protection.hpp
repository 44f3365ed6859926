// Shared helpers of the protection tests (test_protection_*.cpp,
// docs/protection.md): the images they map, the helper process
// e2e_protection_client and what it prints, the one-line violation
// diagnostic, and the fixtures more than one file uses.
//
// Everything that faults runs in e2e_protection_client, a helper process
// linked with the plain library (also under subctx_e2e_tests_asan): the test
// process only maps, calls and looks.  The helper gets its backend on its
// command line; SUBCTX_* variables of the test process are not passed on.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "protection_names.hpp"
#include "support/e2e_test.hpp"

namespace e2e {

// ---- images, machine ----------------------------------------------------

const std::string& protection_image();  // hits pure_add helper_addr data_addr data_byte motto
const std::string& policy_image();      // open_door, restricted admin_reset

#define SKIP_WITHOUT_PKEYS(backend)                                                     \
  do {                                                                                  \
    if (std::string(backend).rfind("pkey", 0) == 0 && !pkeys_work())                    \
      GTEST_SKIP() << "pkey_alloc fails here: no protection keys (the pkey backend is " \
                      "covered on machines that have them)";                            \
  } while (0)

using subctx::testing::protection_named;

subctx::MapOptions with(subctx::Protection p, bool readable = false, bool exact = false);
uint64_t export_address(const subctx::Subcontext& sc, const std::string& name);
bool inside_image(const std::string& image, uint64_t a);
// /proc/self/smaps: the "ProtectionKey:" of the mapping that holds a (-1: none found).
int protection_key_at(uint64_t a);
std::string maps_line_at(uint64_t a);

// ---- the helper and what it prints --------------------------------------

// Runs e2e_protection_client with args (MODE BACKEND IMAGE [IMAGE2]) and
// env, under a 40 s timeout.
ProcessResult client(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// The helper's "expect ADDR HANDLE NEAREST OFFSET" line (the first, or the
// one after `prefix`).
struct Expectation {
  std::string address, handle, nearest, offset;
};
Expectation expectation(const std::string& out, const std::string& prefix = "");

std::string field(const std::string& out, const std::string& key);  // the word after `key `
std::vector<std::string> violation_lines(const std::string& err);
void expect_contains(const std::string& text, const std::string& word, const std::string& what);

// Death by SIGSEGV with exactly one diagnostic that holds every word; returns it.
std::string expect_violation_death(const ProcessResult& r, std::initializer_list<std::string> words);

// ---- fixtures -------------------------------------------------------------

// In-process maps; clears the policy a test set.
class ProtectionApi : public E2eTest {
 protected:
  void TearDown() override {
    mm().clear_policy();
    E2eTest::TearDown();
  }
};

// ProtectionApi per backend (instantiated in test_protection_map_options.cpp;
// test_protection_freed_memory.cpp adds a test).
class ProtectionBackend : public ProtectionApi, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_PKEYS(GetParam()); }
};

}  // namespace e2e
