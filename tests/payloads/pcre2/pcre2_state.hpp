// What the PCRE2 payload's pieces share: the state payload::init() builds
// before the snapshot (payload.cpp) and the matching helpers the pointer
// exports (exports.cpp) call with the client's buffers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "patterns.hpp"

namespace pcre2_payload {

// Valid after payload::init(): every kPatterns entry compiled, JIT-compiled
// where the JIT would take it.
const pcre2_code* code(int32_t index);  // null when index is out of range
bool jit_compiled(int32_t index);       // false for an out-of-range index
int32_t compiled_count();               // kPatternCount once init() ran
int32_t capture_count(int32_t index);   // PCRE2_INFO_CAPTURECOUNT, or kNoSuchPattern

// The index of a pattern by name, or kNoSuchPattern.
int32_t find_pattern(std::string_view name);

// The match data every match uses: enough pairs for every pattern's groups,
// so a match never returns 0 for want of room.
pcre2_match_data* match_data();

// One pcre2_match of pattern `index` from `start` under the payload's match
// context (kMatchLimit), into match_data(): PCRE2's result.
int match_at(int32_t index, std::string_view subject, size_t start, uint32_t options = 0);

// How many non-overlapping matches a global search finds, stepping over
// empty matches exactly as pcre2_substitute's PCRE2_SUBSTITUTE_GLOBAL does;
// or PCRE2's negative code (PCRE2_ERROR_MATCHLIMIT...), or kNoSuchPattern.
int64_t count_matches(int32_t index, std::string_view subject);

// pcre2_get_error_message's text for a PCRE2 code; ours have theirs too.
std::string error_message(int64_t code);

}  // namespace pcre2_payload
