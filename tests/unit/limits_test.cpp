// Matchmaker limits: defaults, SUBCTX_MAX_* environment variables (a
// malformed value is an error naming it, never ignored), and the reader's
// defaults agreeing with them.
#include <stdlib.h>

#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "image/reader.hpp"
#include "matchmaker/registry.hpp"

namespace subctx::matchmaker {
namespace {

const char* const kVars[] = {"SUBCTX_MAX_SUBCONTEXTS", "SUBCTX_MAX_IMAGE_SIZE", "SUBCTX_MAX_EXPORTS",
                             "SUBCTX_MAX_SEGMENTS"};

// Clears the variables for one test and puts the old values back.
class LimitsEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      const char* old = getenv(v);
      saved_.push_back(old ? std::optional<std::string>(old) : std::nullopt);
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (size_t i = 0; i < std::size(kVars); ++i) {
      if (saved_[i]) {
        setenv(kVars[i], saved_[i]->c_str(), 1);
      } else {
        unsetenv(kVars[i]);
      }
    }
  }
  // Reads the limits with one variable set; returns the errors found
  // (nothing goes to stderr).
  std::string with(const char* var, const char* value, Limits* out) {
    setenv(var, value, 1);
    ::testing::internal::CaptureStderr();
    std::string errors;
    *out = limits_from_environment(&errors);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    unsetenv(var);
    return errors;
  }

 private:
  std::vector<std::optional<std::string>> saved_;
};

TEST_F(LimitsEnv, Defaults) {
  std::string errors;
  const Limits l = limits_from_environment(&errors);
  EXPECT_EQ(errors, "");
  EXPECT_EQ(l.subcontexts, 64u);
  EXPECT_EQ(l.image_size, uint64_t{64} << 30);
  EXPECT_EQ(l.exports, 4096u);
  EXPECT_EQ(l.segments, 4096u);
  // The reader's own defaults are the same limits.
  const image::ReadLimits r;
  EXPECT_EQ(r.max_segments, l.segments);
  EXPECT_EQ(r.max_exports, l.exports);
  EXPECT_EQ(r.max_image_size, l.image_size);
}

TEST_F(LimitsEnv, EachVariable) {
  Limits l;
  EXPECT_EQ(with("SUBCTX_MAX_SUBCONTEXTS", "3", &l), "");
  EXPECT_EQ(l.subcontexts, 3u);
  EXPECT_EQ(with("SUBCTX_MAX_IMAGE_SIZE", "1048576", &l), "");
  EXPECT_EQ(l.image_size, 1048576u);
  EXPECT_EQ(with("SUBCTX_MAX_EXPORTS", "1", &l), "");
  EXPECT_EQ(l.exports, 1u);
  EXPECT_EQ(with("SUBCTX_MAX_SEGMENTS", "18446744073709551615", &l), "");
  EXPECT_EQ(l.segments, UINT64_MAX);
  EXPECT_EQ(l.exports, 4096u);  // the others keep their defaults
}

TEST_F(LimitsEnv, SubcontextsAreAtMostWhatTheSignalHandlersTrack) {
  Limits l;
  EXPECT_EQ(with("SUBCTX_MAX_SUBCONTEXTS", "1024", &l), "");
  EXPECT_EQ(l.subcontexts, 1024u);
  Limits m;
  EXPECT_EQ(with("SUBCTX_MAX_SUBCONTEXTS", "1025", &m), "SUBCTX_MAX_SUBCONTEXTS=1025 is not a number from 1 to 1024");
  EXPECT_EQ(m.subcontexts, 64u);
}

TEST_F(LimitsEnv, BadValuesAreErrorsNamingTheVariable) {
  for (const char* bad : {"0", "-1", "abc", "12x", "1.5", "0x10", "1k", "99999999999999999999999"}) {
    SCOPED_TRACE(bad);
    Limits l;
    const std::string err = with("SUBCTX_MAX_EXPORTS", bad, &l);
    EXPECT_EQ(l.exports, 4096u);
    EXPECT_EQ(err, std::string("SUBCTX_MAX_EXPORTS=") + bad + " is not a number from 1 to 18446744073709551615");
  }
  Limits l;
  EXPECT_EQ(with("SUBCTX_MAX_IMAGE_SIZE", "", &l),
            "SUBCTX_MAX_IMAGE_SIZE= (empty) is not a number from 1 to 18446744073709551615");
  EXPECT_EQ(l.image_size, uint64_t{64} << 30);
  // Two bad values: both named.
  setenv("SUBCTX_MAX_SEGMENTS", "many", 1);
  EXPECT_EQ(with("SUBCTX_MAX_IMAGE_SIZE", "1k", &l),
            "SUBCTX_MAX_IMAGE_SIZE=1k is not a number from 1 to 18446744073709551615; "
            "SUBCTX_MAX_SEGMENTS=many is not a number from 1 to 18446744073709551615");
}

TEST_F(LimitsEnv, DigitsOnly) {
  // strtoull alone would skip the space and negate: no limit at all.
  for (const char* bad : {" -5", " 5", "5 ", "+5", "\t7"}) {
    SCOPED_TRACE(bad);
    Limits l;
    EXPECT_NE(with("SUBCTX_MAX_EXPORTS", bad, &l), "");
    EXPECT_EQ(l.exports, 4096u);
  }
}

}  // namespace
}  // namespace subctx::matchmaker
