// The PCRE2 payload's patterns: compiled (and JIT-compiled) by the server
// before its snapshot; the test compiles the same table natively to compare
// the pointer export's matches with its own.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>

namespace pcre2_payload {

struct PatternDef {
  const char* name;
  const char* regex;
  uint32_t options;
};

inline constexpr uint32_t kUtf = PCRE2_UTF | PCRE2_UCP;

inline constexpr PatternDef kPatterns[] = {
    {"email", R"((?<user>[A-Za-z0-9._%+-]+)@(?<domain>[A-Za-z0-9.-]+\.[A-Za-z]{2,}))", 0},
    {"date_iso", R"(\b(?<year>\d{4})-(?<month>0[1-9]|1[0-2])-(?<day>0[1-9]|[12]\d|3[01])\b)", 0},
    {"date_us", R"(\b(?<month>1[0-2]|0?[1-9])/(?<day>3[01]|[12]\d|0?[1-9])/(?<year>\d{4})\b)", 0},
    {"time", R"(\b(?<h>[01]?\d|2[0-3]):(?<m>[0-5]\d)(?::(?<s>[0-5]\d))?\b)", 0},
    {"ipv4", R"(\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b)", 0},
    {"ipv6", R"(\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b)", PCRE2_CASELESS},
    {"url", R"((?<scheme>https?)://(?<host>[^/\s:?#]+)(?::(?<port>\d+))?(?<path>/[^\s?#]*)?(?:\?(?<query>[^\s#]*))?)",
     0},
    {"uuid", R"(\b[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\b)", PCRE2_CASELESS},
    {"hex_color", R"(#(?:[0-9a-fA-F]{3}){1,2}\b)", 0},
    {"phone", R"((?:\+(?<cc>\d{1,3})[ -]?)?\(?(?<area>\d{3})\)?[-. ]?(?<num>\d{3}[-. ]?\d{4})\b)", 0},
    {"utf8_word", R"(\p{L}+)", kUtf},
    {"cap_word", R"(\b\p{Lu}\p{Ll}+\b)", kUtf},
    {"greek", R"(\p{Greek}+)", kUtf},
    {"emoji", R"(\p{Extended_Pictographic}+)", kUtf},
    {"price", R"((?<=\$)\d+(?:\.\d{2})?)", 0},
    {"not_negative", R"((?<![-\d.])\b\d+\b(?!\.\d))", 0},
    {"key_before_eq", R"(\b(?<key>\w+)(?=\s*=))", 0},
    {"severity", R"(\b(?:error|warn(?:ing)?|fatal)\b)", PCRE2_CASELESS},
    {"heading", R"(^#{1,6}\s*(?<title>.+)$)", PCRE2_MULTILINE},
    {"repeated_word", R"(\b(?<word>\w+)\s+\k<word>\b)", PCRE2_CASELESS},
    // A delimiter of its own: the regex holds )" which would end R"(...)".
    {"json_kv", R"re("(?<key>[^"\\]*)"\s*:\s*(?<value>"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null))re", 0},
    {"balanced", R"(\((?:[^()]++|(?R))*\))", 0},
    {"c_comment", R"(/\*.*?\*/)", PCRE2_DOTALL},
    {"semver", R"((?<major>0|[1-9]\d*) \. (?<minor>0|[1-9]\d*) \. (?<patch>0|[1-9]\d*)
                  (?:-(?<pre>[0-9A-Za-z.-]+))?   # pre-release
                  (?:\+(?<build>[0-9A-Za-z.-]+))?  # build metadata)",
     PCRE2_EXTENDED},
    {"html_tag", R"(<(?<tag>[a-z][a-z0-9]*)\b[^>]*>(?<body>.*?)</\k<tag>>)", PCRE2_CASELESS | PCRE2_DOTALL},
    {"catastrophic", R"(^(a+)+$)", 0},
    // Patterns that match the empty string: a global search must step over
    // each empty match (one character; in UTF mode, one whole code point).
    {"digits_opt", R"(\d*)", 0},
    {"word_start", R"(\b(?=\w))", kUtf},
};
inline constexpr int kPatternCount = static_cast<int>(sizeof(kPatterns) / sizeof(kPatterns[0]));

// The match limit every match runs under (the catastrophic pattern hits it).
inline constexpr uint32_t kMatchLimit = 100000;

// Results of the exports beyond PCRE2's own negative codes.
inline constexpr int64_t kNoSuchPattern = -1000;
inline constexpr int64_t kBadBuffer = -1001;

}  // namespace pcre2_payload
