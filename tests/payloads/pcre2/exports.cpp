// The PCRE2 payload's pointer exports: match subjects owned by the client
// with the patterns compiled before the snapshot (payload.cpp).  The
// subcontext reads the client's subject and writes the client's ovector
// during the call; nothing of the client's is kept after it.
//
//   int32_t pattern_count()                  patterns compiled by init()
//   int32_t pattern_index(const char* name)  index, or kNoSuchPattern (kBadBuffer: null)
//   int32_t capture_count(int32_t pattern)   PCRE2_INFO_CAPTURECOUNT, or kNoSuchPattern
//   int64_t match(int32_t pattern, const char* subject, uint64_t length, uint64_t start,
//                 uint64_t* ovector, uint32_t ovector_pairs)
//       one pcre2_match from `start`: what pcre2_match returns with a match
//       data of ovector_pairs pairs (the number of pairs set, 0 when they
//       do not all fit, or a negative PCRE2 code), the offsets written to
//       the client's ovector as pcre2_match writes its own (pairs past the
//       pattern's groups are left alone; nothing is written without a match),
//       or kNoSuchPattern / kBadBuffer
//   int64_t count_matches(int32_t pattern, const char* subject, uint64_t length)
//       non-overlapping matches, as pcre2_substitute's GLOBAL finds them
//   const char* error_message(int64_t code)  pcre2_get_error_message's text
//
// Every match runs under the image's match context (kMatchLimit).
#include <algorithm>
#include <cstdint>
#include <string>
#include <subctx/server.hpp>

#include "pcre2_state.hpp"

namespace {

namespace pp = pcre2_payload;

// A subject the client claims to have: null only when empty, and a length
// that is a size (PCRE2_ZERO_TERMINATED, ~0, would make PCRE2 look for a NUL).
bool bad_subject(const char* subject, uint64_t length) {
  return (!subject && length) || length > static_cast<uint64_t>(PTRDIFF_MAX);
}

int32_t pattern_count() { return pp::compiled_count(); }

int32_t pattern_index(const char* name) {
  if (!name) return static_cast<int32_t>(pp::kBadBuffer);
  return pp::find_pattern(name);
}

int32_t capture_count(int32_t pattern) { return pp::capture_count(pattern); }

int64_t match(int32_t pattern, const char* subject, uint64_t length, uint64_t start, uint64_t* ovector,
              uint32_t ovector_pairs) {
  if (!pp::code(pattern)) return pp::kNoSuchPattern;
  if (bad_subject(subject, length) || (!ovector && ovector_pairs)) return pp::kBadBuffer;
  // The image's match data has room for every group, so the match is the
  // one a client's own match data would give; what fits is copied out.
  const int rc = pp::match_at(pattern, std::string_view(subject ? subject : "", length), start);
  if (rc < 0) return rc;
  const uint32_t groups = static_cast<uint32_t>(pp::capture_count(pattern)) + 1;
  // pcre2_match_data_create makes at least one pair: a client asking for
  // none gets what a one-pair match data would say, without the pair.
  const uint32_t pairs = std::min(groups, ovector_pairs);
  const PCRE2_SIZE* ours = pcre2_get_ovector_pointer(pp::match_data());
  std::copy(ours, ours + 2 * pairs, ovector);
  return static_cast<uint32_t>(rc) > std::max<uint32_t>(ovector_pairs, 1) ? 0 : rc;
}

int64_t count_matches(int32_t pattern, const char* subject, uint64_t length) {
  if (!pp::code(pattern)) return pp::kNoSuchPattern;
  if (bad_subject(subject, length)) return pp::kBadBuffer;
  return pp::count_matches(pattern, std::string_view(subject ? subject : "", length));
}

const char* error_message(int64_t code) {
  static std::string message;  // read by the client before its next call
  message = pp::error_message(code);
  return message.c_str();
}

SUBCTX_EXPORT(pattern_count);
SUBCTX_EXPORT(pattern_index);
SUBCTX_EXPORT(capture_count);
SUBCTX_EXPORT_AS("match", match);
SUBCTX_EXPORT(count_matches);
SUBCTX_EXPORT(error_message);

}  // namespace
