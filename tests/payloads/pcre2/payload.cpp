// The PCRE2 payload: the patterns of patterns.hpp compiled and JIT-compiled
// before the snapshot, with one match context (kMatchLimit, a JIT stack) and
// one match data, driven by a small command language.  An input holds one
// command per line; its output is the commands' outputs, one after another.
//
//   match NAME SUBJECT          every match of a global search: offsets, groups
//   first NAME OFFSET SUBJECT   one match from byte OFFSET (lookbehinds may
//                               look before it): what the export "match" does
//   count NAME SUBJECT          how many matches a global search finds
//   split NAME SUBJECT          the pieces between the matches
//   replace NAME REPL SUBJECT   pcre2_substitute, GLOBAL | EXTENDED
//   replace1 NAME REPL SUBJECT  the same, first match only
//   info NAME                   capture count, group names, options, JIT
//   list | version
//
// SUBJECT is the rest of the line after one space (spaces in it are kept)
// with these escapes: \n \t \r \\ and \xHH (any byte, NUL and invalid UTF-8
// included).  REPL is one word without spaces, given to pcre2_substitute as
// it is: its extended syntax has escapes of its own (\x{20} is a space).
// "match" prints how many matches, then each one's span START-END "text"
// and its groups below it (by number and name; "unset" when not set).
// Output strings are quoted, with \n \t \r \\ \" and \xHH for other control
// bytes; other bytes (UTF-8) are printed as they are.  Offsets are in bytes.
//
// Outputs depend only on the input: never on addresses, nor on whether a
// pattern was JIT-compiled (only "info" says that).  A library error (match
// limit exceeded, invalid UTF-8, bad replacement) is the line
// "error: " + pcre2_get_error_message's text; ours (unknown pattern or
// command) are "error: ..." lines too.
#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <string>
#include <vector>

#include "payload.hpp"
#include "pcre2_state.hpp"

const char* const payload::kName = "pcre2";

namespace pcre2_payload {
namespace {

static_assert(sizeof(PCRE2_SIZE) == sizeof(uint64_t), "exports hand PCRE2_SIZE offsets out as uint64_t");

struct Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Compiled g_patterns[kPatternCount];
pcre2_match_context* g_match_context;
pcre2_jit_stack* g_jit_stack;
pcre2_match_data* g_match_data;

// JIT code runs on this stack (made before the snapshot, like the rest):
// PCRE2's default is 32 KiB on the machine stack, small enough for deep
// recursion ("balanced") to fail under the JIT where the interpreter, whose
// frames are on the heap, would not; a large one keeps both the same.
constexpr size_t kJitStackStart = 32 * 1024;
constexpr size_t kJitStackMax = 4 * 1024 * 1024;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

uint32_t info_u32(const pcre2_code* re, uint32_t what) {
  uint32_t v = 0;
  pcre2_pattern_info(re, what, &v);
  return v;
}

// ---- text in and out ----

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A subject as written in an input (see the top of this file).
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    if (++i == s.size()) throw Failure("subject ends with a lone backslash");
    switch (s[i]) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case '\\': out.push_back('\\'); break;
      case 'x': {
        const int hi = i + 1 < s.size() ? hex_digit(s[i + 1]) : -1;
        const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) throw Failure("\\x needs two hex digits");
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        break;
      }
      default: throw Failure(std::string("unknown escape \\") + s[i]);
    }
  }
  return out;
}

std::string quote(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string span(const PCRE2_SIZE* pair, std::string_view subject) {
  if (pair[0] == PCRE2_UNSET) return "unset";
  return std::to_string(pair[0]) + "-" + std::to_string(pair[1]) + " " +
         quote(subject.substr(pair[0], pair[1] - pair[0]));
}

// ---- patterns ----

int32_t pattern_of(std::string_view name) {
  const int32_t index = find_pattern(name);
  if (index < 0) throw Failure("no pattern named '" + std::string(name) + "'");
  return index;
}

// Group names by number ("" for unnamed groups), from the name table.
std::vector<std::string> group_names(const pcre2_code* re) {
  std::vector<std::string> names(info_u32(re, PCRE2_INFO_CAPTURECOUNT) + 1);
  const uint32_t count = info_u32(re, PCRE2_INFO_NAMECOUNT);
  const uint32_t entry_size = info_u32(re, PCRE2_INFO_NAMEENTRYSIZE);
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
  for (uint32_t i = 0; i < count; ++i) {
    PCRE2_SPTR entry = table + i * entry_size;  // a big-endian group number, then the name
    const uint32_t group = (uint32_t{entry[0]} << 8) | entry[1];
    if (group < names.size()) names[group] = reinterpret_cast<const char*>(entry + 2);
  }
  return names;
}

std::string option_names(uint32_t options) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {PCRE2_CASELESS, "caseless"}, {PCRE2_MULTILINE, "multiline"},
      {PCRE2_DOTALL, "dotall"},     {PCRE2_EXTENDED, "extended"},
      {PCRE2_UTF, "utf"},           {PCRE2_UCP, "ucp"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames)
    if (options & bit) out += (out.empty() ? "" : " ") + std::string(name);
  return out.empty() ? "none" : out;
}

// Calls on_match() for each match of a global search from offset 0 (the
// ovector is match_data()'s), stepping as pcre2_substitute's GLOBAL does:
// after an empty match the same offset is tried again for a non-empty
// anchored match, and when there is none the search moves on one character
// (a whole code point in UTF mode, a whole CRLF where that is a newline).
// Returns the number of matches or PCRE2's negative code.
template <class OnMatch>
int64_t each_match(int32_t index, std::string_view subject, OnMatch&& on_match) {
  const pcre2_code* re = code(index);
  if (!re) return kNoSuchPattern;
  const bool utf = info_u32(re, PCRE2_INFO_ALLOPTIONS) & PCRE2_UTF;
  const uint32_t newline = info_u32(re, PCRE2_INFO_NEWLINE);
  const bool crlf_is_one = newline != PCRE2_NEWLINE_CR && newline != PCRE2_NEWLINE_LF;
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(g_match_data);
  size_t start = 0;
  uint32_t retry = 0;  // the options of the retry after an empty match
  int64_t n = 0;
  for (;;) {
    const int rc = match_at(index, subject, start, retry);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (retry == 0 || start >= subject.size()) break;
      ++start;
      if (crlf_is_one && subject[start - 1] == '\r' && start < subject.size() && subject[start] == '\n') ++start;
      else if (utf)
        while (start < subject.size() && (static_cast<unsigned char>(subject[start]) & 0xc0) == 0x80) ++start;
      retry = 0;
      continue;
    }
    if (rc < 0) return rc;
    // \K can end a match before its start, or start it before `start`:
    // no pattern here does, and the loop would not move on from one.
    if (ovector[1] < ovector[0] || ovector[0] < start) return PCRE2_ERROR_BADSUBSPATTERN;
    ++n;
    on_match();
    retry = ovector[0] == ovector[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    start = ovector[1];
  }
  return n;
}

// ---- commands ----

// One command line: words separated by spaces, of which the last one
// (SUBJECT) is the rest of the line, spaces and all.
struct Line {
  std::string_view text;

  // Word i (0: the command), or throws naming what is missing.
  std::string_view word(size_t i, const char* what) const {
    size_t pos = 0;
    for (size_t k = 0;; ++k) {
      while (pos < text.size() && text[pos] == ' ') ++pos;
      if (pos == text.size()) throw Failure(std::string("missing ") + what);
      const size_t end = std::min(text.find(' ', pos), text.size());
      if (k == i) return text.substr(pos, end - pos);
      pos = end;
    }
  }
  // Everything after word i and the single space after it ("" when none).
  std::string_view rest_after(size_t i) const {
    const std::string_view w = word(i, "word");
    const size_t end = static_cast<size_t>(w.data() + w.size() - text.data());
    return end < text.size() ? text.substr(end + 1) : std::string_view();
  }
};

[[noreturn]] void fail_pcre2(int64_t rc) { throw Failure(error_message(rc)); }

// The whole match, then every group (named ones by name) of match_data().
std::string match_report(std::string_view subject, const std::vector<std::string>& names) {
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(g_match_data);
  std::string out = span(ovector, subject);
  for (size_t g = 1; g < names.size(); ++g) {
    out +=
        "\n  " + std::to_string(g) + (names[g].empty() ? "" : " " + names[g]) + ": " + span(ovector + 2 * g, subject);
  }
  return out;
}

std::string cmd_match(const Line& line) {
  const int32_t index = pattern_of(line.word(1, "NAME"));
  const std::string subject = unescape(line.rest_after(1));
  const std::vector<std::string> names = group_names(code(index));
  std::string body;
  const int64_t n = each_match(index, subject, [&] { body += "\n" + match_report(subject, names); });
  if (n < 0) fail_pcre2(n);
  if (n == 0) return "no match";
  return std::to_string(n) + (n == 1 ? " match" : " matches") + body;
}

std::string cmd_first(const Line& line) {
  const int32_t index = pattern_of(line.word(1, "NAME"));
  const std::string_view offset_text = line.word(2, "OFFSET");
  uint64_t offset = 0;
  const auto [end, ec] = std::from_chars(offset_text.data(), offset_text.data() + offset_text.size(), offset);
  if (ec != std::errc() || end != offset_text.data() + offset_text.size())
    throw Failure("bad offset '" + std::string(offset_text) + "'");
  const std::string subject = unescape(line.rest_after(2));
  const int rc = match_at(index, subject, offset);
  if (rc == PCRE2_ERROR_NOMATCH) return "no match";
  if (rc < 0) fail_pcre2(rc);
  return "rc " + std::to_string(rc) + ": " + match_report(subject, group_names(code(index)));
}

std::string cmd_count(const Line& line) {
  const int32_t index = pattern_of(line.word(1, "NAME"));
  const int64_t n = count_matches(index, unescape(line.rest_after(1)));
  if (n < 0) fail_pcre2(n);
  return std::to_string(n);
}

std::string cmd_split(const Line& line) {
  const int32_t index = pattern_of(line.word(1, "NAME"));
  const std::string subject = unescape(line.rest_after(1));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(g_match_data);
  std::vector<std::string_view> pieces;
  size_t from = 0;
  const int64_t n = each_match(index, subject, [&] {
    pieces.push_back(std::string_view(subject).substr(from, ovector[0] - from));
    from = ovector[1];
  });
  if (n < 0) fail_pcre2(n);
  pieces.push_back(std::string_view(subject).substr(from));
  std::string out = std::to_string(pieces.size()) + (pieces.size() == 1 ? " piece" : " pieces");
  for (const std::string_view p : pieces) out += "\n  " + quote(p);
  return out;
}

std::string cmd_replace(const Line& line, bool global) {
  const int32_t index = pattern_of(line.word(1, "NAME"));
  const std::string_view replacement = line.word(2, "REPLACEMENT");
  const std::string subject = unescape(line.rest_after(2));
  const uint32_t options =
      PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | (global ? PCRE2_SUBSTITUTE_GLOBAL : 0);
  // Twice the subject is room for most replacements; when it is not,
  // OVERFLOW_LENGTH says how much is needed, and the second try fits.
  std::string out(subject.size() * 2 + 64, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    PCRE2_SIZE length = out.size();
    const int rc =
        pcre2_substitute(code(index), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, options,
                         g_match_data, g_match_context, reinterpret_cast<PCRE2_SPTR>(replacement.data()),
                         replacement.size(), reinterpret_cast<PCRE2_UCHAR*>(out.data()), &length);
    if (rc == PCRE2_ERROR_NOMEMORY && attempt == 0) {
      out.resize(length);
      continue;
    }
    if (rc < 0) fail_pcre2(rc);
    out.resize(length);
    return std::to_string(rc) + (rc == 1 ? " replacement: " : " replacements: ") + quote(out);
  }
  throw Failure("replacement did not fit");
}

std::string cmd_info(const Line& line) {
  const int32_t index = pattern_of(line.word(1, "NAME"));
  const pcre2_code* re = code(index);
  const std::vector<std::string> names = group_names(re);
  std::string named;
  for (size_t g = 1; g < names.size(); ++g)
    if (!names[g].empty()) named += " " + names[g] + "=" + std::to_string(g);
  return "pattern " + std::to_string(index) + " " + kPatterns[index].name + ": " + quote(kPatterns[index].regex) +
         "\n  options: " + option_names(info_u32(re, PCRE2_INFO_ARGOPTIONS)) +
         "\n  captures: " + std::to_string(info_u32(re, PCRE2_INFO_CAPTURECOUNT)) +
         "\n  names:" + (named.empty() ? " none" : named) +
         "\n  min_length: " + std::to_string(info_u32(re, PCRE2_INFO_MINLENGTH)) +
         "\n  backref_max: " + std::to_string(info_u32(re, PCRE2_INFO_BACKREFMAX)) +
         "\n  jit: " + (jit_compiled(index) ? "yes" : "no");
}

std::string cmd_list() {
  std::string out = std::to_string(compiled_count()) + " patterns";
  for (int32_t i = 0; i < kPatternCount; ++i)
    out += "\n  " + std::to_string(i) + " " + kPatterns[i].name +
           " captures=" + std::to_string(info_u32(code(i), PCRE2_INFO_CAPTURECOUNT));
  return out;
}

std::string cmd_version() {
  char version[64] = {}, unicode[64] = {};
  pcre2_config(PCRE2_CONFIG_VERSION, version);
  pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, unicode);
  return std::string("PCRE2 ") + version + ", Unicode " + unicode;
}

std::string run_line(std::string_view text) {
  const Line line{text};
  const std::string_view cmd = line.word(0, "command");
  if (cmd == "match") return cmd_match(line);
  if (cmd == "first") return cmd_first(line);
  if (cmd == "count") return cmd_count(line);
  if (cmd == "split") return cmd_split(line);
  if (cmd == "replace") return cmd_replace(line, true);
  if (cmd == "replace1") return cmd_replace(line, false);
  if (cmd == "info") return cmd_info(line);
  if (cmd == "list") return cmd_list();
  if (cmd == "version") return cmd_version();
  throw Failure("unknown command '" + std::string(cmd) + "'");
}

}  // namespace

const pcre2_code* code(int32_t index) { return index >= 0 && index < kPatternCount ? g_patterns[index].code : nullptr; }

bool jit_compiled(int32_t index) { return index >= 0 && index < kPatternCount && g_patterns[index].jit; }

int32_t compiled_count() {
  int32_t n = 0;
  for (const Compiled& p : g_patterns) n += p.code != nullptr;
  return n;
}

int32_t capture_count(int32_t index) {
  const pcre2_code* re = code(index);
  return re ? static_cast<int32_t>(info_u32(re, PCRE2_INFO_CAPTURECOUNT)) : static_cast<int32_t>(kNoSuchPattern);
}

int32_t find_pattern(std::string_view name) {
  for (int32_t i = 0; i < kPatternCount; ++i)
    if (name == kPatterns[i].name) return i;
  return static_cast<int32_t>(kNoSuchPattern);
}

pcre2_match_data* match_data() { return g_match_data; }

int match_at(int32_t index, std::string_view subject, size_t start, uint32_t options) {
  const pcre2_code* re = code(index);
  if (!re) return static_cast<int>(kNoSuchPattern);
  // pcre2_match uses the JIT code when there is some and the options allow it.
  return pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start, options, g_match_data,
                     g_match_context);
}

int64_t count_matches(int32_t index, std::string_view subject) {
  return each_match(index, subject, [] {});
}

std::string error_message(int64_t code) {
  if (code == kNoSuchPattern) return "no such pattern";
  if (code == kBadBuffer) return "bad buffer";
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(static_cast<int>(code), buffer, sizeof buffer);
  if (n < 0) return "unknown error " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace pcre2_payload

namespace pp = pcre2_payload;

void payload::init() {
  uint32_t most_pairs = 1;
  for (int i = 0; i < pp::kPatternCount; ++i) {
    const pp::PatternDef& def = pp::kPatterns[i];
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(def.regex), PCRE2_ZERO_TERMINATED, def.options, &error,
                                   &offset, nullptr);
    if (!re)
      throw std::runtime_error(std::string("pattern ") + def.name + " at offset " + std::to_string(offset) + ": " +
                               pp::error_message(error));
    // The JIT can be missing (a build without it) or refused (no executable
    // memory); the interpreter then matches the same, only slower.
    pp::g_patterns[i] = {re, pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0};
    most_pairs = std::max(most_pairs, pp::info_u32(re, PCRE2_INFO_CAPTURECOUNT) + 1);
  }

  pp::g_match_context = pcre2_match_context_create(nullptr);
  if (!pp::g_match_context) throw std::runtime_error("pcre2_match_context_create failed");
  pcre2_set_match_limit(pp::g_match_context, pp::kMatchLimit);
  // Null when there is no JIT: pcre2_match then never needs one.
  pp::g_jit_stack = pcre2_jit_stack_create(pp::kJitStackStart, pp::kJitStackMax, nullptr);
  if (pp::g_jit_stack) pcre2_jit_stack_assign(pp::g_match_context, nullptr, pp::g_jit_stack);
  pp::g_match_data = pcre2_match_data_create(most_pairs, nullptr);
  if (!pp::g_match_data) throw std::runtime_error("pcre2_match_data_create failed");

  // One match per pattern, as a server would warm up before its snapshot:
  // the interpreter's backtracking frames (kept in the match data) exist in
  // the image.
  const std::string_view warm = "warm-up 2024-01-02 12:34 x@y.io (a(b)c) aaa";
  for (int i = 0; i < pp::kPatternCount; ++i) {
    if (pp::count_matches(i, warm) < 0)
      throw std::runtime_error(std::string("warm-up match failed: ") + pp::kPatterns[i].name);
  }
}

std::string payload::run(std::string_view input) {
  // One command per line; an error is that line's output, the others go on.
  std::string out;
  size_t pos = 0;
  while (pos <= input.size()) {
    const size_t end = std::min(input.find('\n', pos), input.size());
    const std::string_view line = input.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(' ') == std::string_view::npos) continue;
    if (!out.empty()) out.push_back('\n');
    try {
      out += pp::run_line(line);
    } catch (const std::exception& e) {
      out += std::string("error: ") + e.what();
    }
  }
  return out;
}
