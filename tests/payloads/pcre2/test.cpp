// The PCRE2 payload: a real client process's outputs equal a fresh native
// process's for every command (and backend); in process, the pointer
// exports match this test's own strings with the patterns compiled before
// the snapshot, and give the results the same patterns compiled here give.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <string>
#include <subctx/subctx.hpp>
#include <tuple>
#include <vector>

#include "patterns.hpp"
#include "payload_test.hpp"

namespace {

using payload::testing::protection_named;

namespace pp = pcre2_payload;
using namespace std::string_literals;
using payload::testing::image;

PAYLOAD_COMPARISON_TESTS(Pcre2Payload);

// kPatterns compiled in this process the way payload::init() compiles them.
struct NativePatterns {
  std::vector<pcre2_code*> codes;
  std::vector<bool> jit;
  pcre2_match_context* context = nullptr;

  NativePatterns() {
    for (const pp::PatternDef& def : pp::kPatterns) {
      int error = 0;
      PCRE2_SIZE offset = 0;
      pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(def.regex), PCRE2_ZERO_TERMINATED, def.options,
                                     &error, &offset, nullptr);
      EXPECT_NE(re, nullptr) << def.name << " does not compile here";
      codes.push_back(re);
      jit.push_back(re && pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0);
    }
    context = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(context, pp::kMatchLimit);
    if (pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr))
      pcre2_jit_stack_assign(context, nullptr, stack);
  }
  uint32_t captures(int index) const {
    uint32_t n = 0;
    pcre2_pattern_info(codes[index], PCRE2_INFO_CAPTURECOUNT, &n);
    return n;
  }
};

const NativePatterns& native() {
  static const NativePatterns patterns;  // kept for the whole test process
  return patterns;
}

// Texts for every pattern: matches for most, UTF-8 of several scripts, a
// NUL byte, an empty subject.
const std::vector<std::string>& subjects() {
  static const std::vector<std::string> texts = {
      "Contact john.doe@example.com or ana@sub.mail.pt on 2024-02-29 at 9:05:30, 12/31/1999",
      "Καλημέρα κόσμε! Ἀθῆναι 😀🎉 naïve café — Zürich, Élodie, Ωmega",
      "hosts 192.168.1.1 and 2001:0db8:85a3:0000:0000:8a2e:0370:7334, #C0FFEE #fff, $12.50 and $3",
      "see https://example.com:8080/a/b?x=1 id 123e4567-e89b-12d3-a456-426614174000 +1 (555) 123-4567",
      "# Title\n## Sub\nkey = value\nERROR: the the disk is full\nwarning w=1",
      R"({"name": "Ana \"Q\"", "n": -7, "ok": true} f(a, (b + (c))) /* note */ 1.2.3-rc.1+b5)",
      "<p>Hello <b>world</b></p><DIV>x</div> 3 -4 5.5 67",
      "aaaaaaaaaa",
      "nul\0byte 12:30 a1b22"s,
      "",
  };
  return texts;
}

constexpr uint64_t kSentinel = 0x5ca1ab1e5ca1ab1e;

struct MatchResult {
  int64_t rc = 0;
  std::vector<uint64_t> ovector;
  friend bool operator==(const MatchResult&, const MatchResult&) = default;
};

std::ostream& operator<<(std::ostream& os, const MatchResult& r) {
  os << "rc " << r.rc << " ovector";
  for (uint64_t v : r.ovector) os << ' ' << (v == kSentinel ? "-" : v == PCRE2_UNSET ? "unset" : std::to_string(v));
  return os;
}

// pcre2_match here with a match data of `pairs` pairs, its ovector filled
// with kSentinel first (what pcre2_match does not write stays so).
MatchResult native_match(int index, const std::string& subject, uint64_t start, uint32_t pairs) {
  pcre2_match_data* md = pcre2_match_data_create(pairs, nullptr);
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  std::fill(ov, ov + 2 * pairs, kSentinel);
  MatchResult r;
  r.rc = pcre2_match(native().codes[index], reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start, 0, md,
                     native().context);
  r.ovector.assign(ov, ov + 2 * pairs);
  pcre2_match_data_free(md);
  return r;
}

// How many matches pcre2_substitute's GLOBAL replaces: the reference for
// count_matches, which finds them with its own loop.
int64_t native_count(int index, const std::string& subject) {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(native().codes[index], nullptr);
  std::string out(subject.size() + 1, '\0');  // an empty replacement only shortens
  PCRE2_SIZE length = out.size();
  const int rc = pcre2_substitute(native().codes[index], reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                                  0, PCRE2_SUBSTITUTE_GLOBAL, md, native().context, reinterpret_cast<PCRE2_SPTR>(""), 0,
                                  reinterpret_cast<PCRE2_UCHAR*>(out.data()), &length);
  pcre2_match_data_free(md);
  return rc;
}

// The image mapped in this process with each backend.
class Pcre2Exports : public ::testing::TestWithParam<const char*> {
 protected:
  using MatchSig = int64_t(int32_t, const char*, uint64_t, uint64_t, uint64_t*, uint32_t);
  using CountSig = int64_t(int32_t, const char*, uint64_t);
  static constexpr size_t kGuard = 8;  // ovector entries past the client's pairs that must stay untouched

  void SetUp() override {
    PAYLOAD_SKIP_UNLESS_BACKEND_WORKS(GetParam());
    subctx::MapOptions options;
    options.protection = protection_named(GetParam());
    sc_ = subctx::Matchmaker::instance().request_map(image(), options);
    match_ = sc_.function<MatchSig>("match");
    count_ = sc_.function<CountSig>("count_matches");
  }
  void TearDown() override {
    if (sc_.valid()) subctx::Matchmaker::instance().unmap(sc_);
  }

  MatchResult client_match(int index, const std::string& subject, uint64_t start, uint32_t pairs) {
    std::vector<uint64_t> ov(2 * pairs + kGuard, kSentinel);
    MatchResult r;
    r.rc = match_(index, subject.data(), subject.size(), start, ov.data(), pairs);
    EXPECT_EQ(std::vector<uint64_t>(ov.begin() + 2 * pairs, ov.end()), std::vector<uint64_t>(kGuard, kSentinel))
        << "written past the client's ovector";
    ov.resize(2 * pairs);
    r.ovector = std::move(ov);
    return r;
  }
  int64_t count(int index, const std::string& subject) { return count_(index, subject.data(), subject.size()); }
  std::string run(const std::string& input) { return sc_.call<const char*(const char*)>("run", input.c_str()); }
  std::string error_message(int64_t code) { return sc_.call<const char*(int64_t)>("error_message", code); }

  subctx::Subcontext sc_;
  subctx::Function<MatchSig> match_;
  subctx::Function<CountSig> count_;
};

// The state init() made is in the image: every pattern compiled, with the
// groups it has here, JIT-compiled where the JIT works here too.
TEST_P(Pcre2Exports, PatternsWereCompiledBeforeTheSnapshot) {
  EXPECT_EQ(sc_.call<int32_t()>("pattern_count"), pp::kPatternCount);
  const std::string list = run("list");
  EXPECT_EQ(list.substr(0, list.find('\n')), std::to_string(pp::kPatternCount) + " patterns");
  for (int i = 0; i < pp::kPatternCount; ++i) {
    const char* name = pp::kPatterns[i].name;
    SCOPED_TRACE(name);
    EXPECT_EQ(sc_.call<int32_t(const char*)>("pattern_index", name), i);
    EXPECT_EQ(sc_.call<int32_t(int32_t)>("capture_count", i), static_cast<int32_t>(native().captures(i)));
    const std::string info = run(std::string("info ") + name);
    EXPECT_NE(info.find("\n  captures: " + std::to_string(native().captures(i)) + "\n"), std::string::npos) << info;
    EXPECT_NE(info.find(std::string("\n  jit: ") + (native().jit[i] ? "yes" : "no")), std::string::npos) << info;
  }
  EXPECT_EQ(run("info email"),
            "pattern 0 email: "
            R"re("(?<user>[A-Za-z0-9._%+-]+)@(?<domain>[A-Za-z0-9.-]+\\.[A-Za-z]{2,})")re"
            "\n  options: none\n  captures: 2\n  names: user=1 domain=2\n  min_length: 6"
            "\n  backref_max: 0\n  jit: " +
                std::string(native().jit[0] ? "yes" : "no"));
}

// Every pattern on every subject from several start offsets (mid-character
// ones and one past the end included: errors compare too), into ovectors
// smaller and larger than the pattern's groups.
TEST_P(Pcre2Exports, MatchGivesTheOvectorOfANativeMatch) {
  for (int i = 0; i < pp::kPatternCount; ++i) {
    const uint32_t groups = native().captures(i) + 1;
    for (const std::string& subject : subjects()) {
      std::vector<uint64_t> starts = {0, 1, 7, subject.size() / 2, subject.size(), subject.size() + 1};
      starts.erase(std::remove_if(starts.begin(), starts.end(), [&](uint64_t s) { return s > subject.size() + 1; }),
                   starts.end());
      for (uint64_t start : starts) {
        for (uint32_t pairs : {1u, 2u, groups, groups + 3}) {
          SCOPED_TRACE(std::string(pp::kPatterns[i].name) + " start " + std::to_string(start) + " pairs " +
                       std::to_string(pairs) + " subject \"" + subject + "\"");
          ASSERT_EQ(client_match(i, subject, start, pairs), native_match(i, subject, start, pairs));
        }
      }
    }
  }
}

TEST_P(Pcre2Exports, CountMatchesEqualsANativeGlobalSubstitution) {
  for (int i = 0; i < pp::kPatternCount; ++i) {
    for (const std::string& subject : subjects()) {
      SCOPED_TRACE(std::string(pp::kPatterns[i].name) + " subject \"" + subject + "\"");
      EXPECT_EQ(count(i, subject), native_count(i, subject));
    }
  }
  // Empty matches: stepped over one code point at a time in UTF mode.
  const int word_start = sc_.call<int32_t(const char*)>("pattern_index", "word_start");
  EXPECT_EQ(count(word_start, "Καλημέρα κόσμε, hi-there café"), 5);
  const int digits = sc_.call<int32_t(const char*)>("pattern_index", "digits_opt");
  EXPECT_EQ(count(digits, "a12bc3"), 6);
}

// A batch (Function::call_each) of every pattern on every subject, the
// subjects the client's: the counts pcre2_substitute gives natively, in
// order, the match-limit errors of the catastrophic pattern included.
TEST_P(Pcre2Exports, ABatchOfCountsEqualsTheNativeCounts) {
  std::vector<std::tuple<int32_t, const char*, uint64_t>> jobs;
  std::vector<int64_t> expect;
  for (int i = 0; i < pp::kPatternCount; ++i)
    for (const std::string& subject : subjects()) {
      jobs.emplace_back(i, subject.data(), subject.size());
      expect.push_back(native_count(i, subject));
    }
  std::vector<int64_t> got(jobs.size(), -12345);
  count_.call_each(jobs, got);
  EXPECT_EQ(got, expect);
}

// The catastrophic pattern runs into the image's match limit (kMatchLimit
// in its match context), as it does here; the subcontext goes on.
TEST_P(Pcre2Exports, TheMatchLimitIsAnErrorAndTheNextCallWorks) {
  const int index = sc_.call<int32_t(const char*)>("pattern_index", "catastrophic");
  ASSERT_GE(index, 0);
  const std::string subject = std::string(30, 'a') + "!";
  const MatchResult r = client_match(index, subject, 0, 2);
  EXPECT_EQ(r.rc, PCRE2_ERROR_MATCHLIMIT);
  EXPECT_EQ(r, native_match(index, subject, 0, 2));
  EXPECT_EQ(count(index, subject), PCRE2_ERROR_MATCHLIMIT);
  EXPECT_EQ(error_message(PCRE2_ERROR_MATCHLIMIT), "match limit exceeded");
  EXPECT_EQ(run("count catastrophic " + subject), "error: match limit exceeded");

  const std::string fine(30, 'a');
  EXPECT_EQ(client_match(index, fine, 0, 2), native_match(index, fine, 0, 2));
  EXPECT_EQ(count(index, fine), 1);
}

TEST_P(Pcre2Exports, UnknownPatternsAndBadBuffersAreRefused) {
  const std::string subject = "x@y.io";
  for (int index : {-1, pp::kPatternCount, 1 << 30}) {
    SCOPED_TRACE(index);
    EXPECT_EQ(client_match(index, subject, 0, 3).rc, pp::kNoSuchPattern);
    EXPECT_EQ(count(index, subject), pp::kNoSuchPattern);
    EXPECT_EQ(sc_.call<int32_t(int32_t)>("capture_count", index), pp::kNoSuchPattern);
  }
  EXPECT_EQ(sc_.call<int32_t(const char*)>("pattern_index", "no_such_pattern"), pp::kNoSuchPattern);
  EXPECT_EQ(sc_.call<int32_t(const char*)>("pattern_index", nullptr), pp::kBadBuffer);
  EXPECT_EQ(error_message(pp::kNoSuchPattern), "no such pattern");
  EXPECT_EQ(run("count no_such_pattern x"), "error: no pattern named 'no_such_pattern'");

  uint64_t ov[2] = {kSentinel, kSentinel};
  EXPECT_EQ(match_(0, nullptr, 10, 0, ov, 1), pp::kBadBuffer);
  EXPECT_EQ(match_(0, subject.data(), subject.size(), 0, nullptr, 1), pp::kBadBuffer);
  EXPECT_EQ(match_(0, subject.data(), ~uint64_t{0}, 0, ov, 1), pp::kBadBuffer);
  EXPECT_EQ(count_(0, nullptr, 10), pp::kBadBuffer);
  EXPECT_EQ(ov[0], kSentinel);
  // An empty subject may be null; \d* matches it, empty.
  const int digits = sc_.call<int32_t(const char*)>("pattern_index", "digits_opt");
  EXPECT_EQ(match_(digits, nullptr, 0, 0, ov, 1), 1);
  EXPECT_EQ(ov[0], 0u);
  EXPECT_EQ(ov[1], 0u);
  // No pairs asked for: the return code alone.
  EXPECT_EQ(match_(0, subject.data(), subject.size(), 0, nullptr, 0), 0);
  EXPECT_EQ(match_(digits, "12", 2, 0, nullptr, 0), 1);
}

// A subject the client cannot read: the read inside faults, the call fails
// at the call site, the client goes on and so does the subcontext (reset to
// its snapshot by the default fault policy).
TEST_P(Pcre2Exports, UnreadableSubjectFaultsTheCallNotTheClient) {
  const size_t page = 4096;
  void* hidden = mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hidden, MAP_FAILED);
  const auto* subject = static_cast<const char*>(hidden);
  const int utf8_word = sc_.call<int32_t(const char*)>("pattern_index", "utf8_word");
  uint64_t ov[4] = {};
  EXPECT_THROW(match_(utf8_word, subject, page, 0, ov, 2), subctx::SubcontextFault);
  EXPECT_THROW(count_(0, subject, page), subctx::SubcontextFault);
  munmap(hidden, page);

  const std::string text = subjects()[1];
  EXPECT_EQ(client_match(utf8_word, text, 0, 2), native_match(utf8_word, text, 0, 2)) << "the call after the fault";
  EXPECT_EQ(count(utf8_word, text), native_count(utf8_word, text));
  EXPECT_EQ(sc_.call<int32_t()>("pattern_count"), pp::kPatternCount);
}

INSTANTIATE_TEST_SUITE_P(Backends, Pcre2Exports, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
