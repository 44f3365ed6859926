// Shared helpers of the end-to-end tests (the gtest binary is itself a
// client: it links subctx_client and maps images in-process).
#pragma once

#include <gtest/gtest.h>

#include <subctx/subctx.h>
#include <initializer_list>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "pkeys.hpp"
#include "support/images.hpp"
#include "support/maps.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace e2e {

inline subctx::Matchmaker& mm() { return subctx::Matchmaker::instance(); }

// True when e is the subclass of subctx::Error that code names.
bool is_error_class(const subctx::Error& e, subctx::Errc code);

// Runs fn, which must throw the subctx::Error for code whose message holds
// every word; returns the message ("" after a failed expectation).
template <class Fn>
std::string expect_error(Fn&& fn, subctx::Errc code, std::initializer_list<std::string> words) {
  try {
    fn();
  } catch (const subctx::Error& e) {
    EXPECT_EQ(subctx::errc_name(e.code()), std::string(subctx::errc_name(code))) << e.what();
    EXPECT_TRUE(is_error_class(e, code)) << "exception class does not match code " << subctx::errc_name(code);
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "message lacks \"" << w << "\": " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error thrown; expected " << subctx::errc_name(code);
  return "";
}

// Calls fn inside a frame with a sentinel; expects a SubcontextFault (or the
// subclass for code) whose message holds every word, and the client's frame
// unwound on the way out.  Returns it (an empty one after a failure).
template <class Fn>
subctx::SubcontextFault expect_fault(Fn&& fn, subctx::Errc code, std::initializer_list<std::string> words) {
  struct Sentinel {
    int* destroyed;
    ~Sentinel() { ++*destroyed; }
  };
  int destroyed = 0;
  try {
    Sentinel s{&destroyed};
    fn();
  } catch (const subctx::SubcontextFault& f) {
    EXPECT_EQ(destroyed, 1) << "the client's frame did not unwind";
    EXPECT_EQ(f.code(), code) << f.what();
    for (const auto& w : words)
      EXPECT_NE(std::string(f.what()).find(w), std::string::npos) << "message lacks \"" << w << "\": " << f.what();
    return f;
  }
  ADD_FAILURE() << "no SubcontextFault thrown";
  return subctx::SubcontextFault("", {});
}

// request_map(path) must be refused with code and words, both through the
// C++ API and sbc_request_map(); the client must be unchanged afterwards
// (/proc/self/maps as before) and none of `ranges` mapped (lines that
// contain `except`, e.g. a test's own blocker mapping, aside).
void expect_map_refused(const std::string& path, subctx::Errc code, std::initializer_list<std::string> words,
                        const std::vector<Range>& ranges, const std::string& except = "");

using subctx::testing::pkeys_work;  // the pkey backend's tests skip where it fails

// Maps the pristine basic image, calls square(7), unmaps.
void expect_valid_map_works();

// Restores the Matchmaker's limits (and installs it) when a test ends.
class LimitsGuard {
 public:
  LimitsGuard() : saved_(mm().limits()) {}
  ~LimitsGuard() {
    mm().init();
    mm().set_limits(saved_);
  }

 private:
  subctx::Limits saved_;
};

// Unmaps every subcontext a test left mapped (tests share one process when
// the binary runs without ctest).
class E2eTest : public ::testing::Test {
 protected:
  void TearDown() override;
};

}  // namespace e2e
