// Parser of /proc/PID/maps text (pure, tested on captured fixtures), and
// the reader of this process's own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace subctx::sys {

struct MapEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  int prot = 0;         // PROT_READ | PROT_WRITE | PROT_EXEC
  bool shared = false;  // 's' in the permissions
  uint64_t offset = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string_view path;  // as the kernel prints it (escapes kept), without " (deleted)"
  bool deleted = false;
  std::string_view line;  // the whole line, for error messages

  bool is_special() const { return path.size() >= 2 && path.front() == '[' && path.back() == ']'; }
  bool overlaps(uint64_t lo, uint64_t hi) const { return start < hi && lo < end; }
};

// Appends one entry per line of text to out; the entries point into text.
// Never appends more than max_entries in total (so a caller that reserved
// that many never allocates).  Returns false and sets *why on a malformed
// line or when max_entries is reached.
bool parse_proc_maps(std::string_view text, std::vector<MapEntry>& out, size_t max_entries, std::string* why);

// "7f00-7f10 r-xp ... /path" of the entry overlapping [lo, hi), or "" if none.
std::string describe_overlap(const std::vector<MapEntry>& maps, uint64_t lo, uint64_t hi);

// "r-x" for PROT_READ | PROT_EXEC.
std::string perm_string(int prot);

// This process's /proc/self/maps, read and parsed (the entries point into
// text).  False when it cannot be read or parsed (*why says why, if given).
struct SelfMaps {
  std::string text;
  std::vector<MapEntry> entries;
};
bool read_self_maps(SelfMaps* out, std::string* why = nullptr, size_t max_entries = 1u << 22);

}  // namespace subctx::sys
