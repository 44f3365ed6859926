#include "sys/proc_maps.hpp"

#include <sys/mman.h>

#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::sys {

namespace {

bool parse_hex(std::string_view& s, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else break;
    if (i >= 16) return false;  // more than 64 bits
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  if (i == 0) return false;
  s.remove_prefix(i);
  *out = v;
  return true;
}

bool parse_dec(std::string_view& s, uint64_t* out) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (i == 0) return false;
  s.remove_prefix(i);
  *out = v;
  return true;
}

bool expect(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
}

bool parse_line(std::string_view line, MapEntry* e) {
  std::string_view s = line;
  if (!parse_hex(s, &e->start) || !expect(s, '-') || !parse_hex(s, &e->end) || !expect(s, ' ')) return false;
  if (e->end <= e->start || s.size() < 4) return false;
  e->prot = 0;
  if (s[0] == 'r') e->prot |= PROT_READ;
  else if (s[0] != '-') return false;
  if (s[1] == 'w') e->prot |= PROT_WRITE;
  else if (s[1] != '-') return false;
  if (s[2] == 'x') e->prot |= PROT_EXEC;
  else if (s[2] != '-') return false;
  if (s[3] == 's') e->shared = true;
  else if (s[3] == 'p') e->shared = false;
  else return false;
  s.remove_prefix(4);
  uint64_t major, minor;
  if (!expect(s, ' ') || !parse_hex(s, &e->offset) || !expect(s, ' ') || !parse_hex(s, &major) || !expect(s, ':') ||
      !parse_hex(s, &minor) || !expect(s, ' ') || !parse_dec(s, &e->inode))
    return false;
  e->dev_major = static_cast<uint32_t>(major);
  e->dev_minor = static_cast<uint32_t>(minor);
  if (!s.empty() && s.front() != ' ') return false;
  skip_spaces(s);
  // The rest of the line is the path; it may contain spaces.
  constexpr std::string_view kDeleted = " (deleted)";
  e->deleted = s.size() > kDeleted.size() && s.substr(s.size() - kDeleted.size()) == kDeleted;
  if (e->deleted) s.remove_suffix(kDeleted.size());
  e->path = s;
  e->line = line;
  return true;
}

}  // namespace

bool parse_proc_maps(std::string_view text, std::vector<MapEntry>& out, size_t max_entries, std::string* why) {
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty()) continue;
    if (out.size() >= max_entries) {
      if (why) *why = "more than " + std::to_string(max_entries) + " mappings";
      return false;
    }
    MapEntry e;
    if (!parse_line(line, &e)) {
      if (why)
        *why = "malformed maps line " + std::to_string(line_no) + ": \"" + std::string(line.substr(0, 200)) + "\"";
      return false;
    }
    out.push_back(e);
  }
  return true;
}

std::string describe_overlap(const std::vector<MapEntry>& maps, uint64_t lo, uint64_t hi) {
  for (const auto& m : maps)
    if (m.overlaps(lo, hi)) return std::string(m.line);
  return {};
}

std::string perm_string(int prot) {
  std::string s = "---";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

bool read_self_maps(SelfMaps* out, std::string* why, size_t max_entries) {
  out->entries.clear();
  try {
    out->text = read_text_file("/proc/self/maps");
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
  std::string parse_why;
  if (parse_proc_maps(out->text, out->entries, max_entries, &parse_why)) return true;
  if (why) *why = "/proc/self/maps: " + parse_why;
  return false;
}

}  // namespace subctx::sys
