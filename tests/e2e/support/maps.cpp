#include "support/maps.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace e2e {

std::string read_self_maps() {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open /proc/self/maps");
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fd);
  return text;
}

namespace {
template <class Fn>
void each_line(const std::string& maps, Fn fn) {
  std::istringstream in(maps);
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx", &lo, &hi) == 2) fn(line, uint64_t{lo}, uint64_t{hi});
  }
}
}  // namespace

std::vector<std::string> lines_overlapping(const std::string& maps, const std::vector<Range>& ranges,
                                           const std::string& except) {
  std::vector<std::string> out;
  each_line(maps, [&](const std::string& line, uint64_t lo, uint64_t hi) {
    if (!except.empty() && line.find(except) != std::string::npos) return;
    for (const Range& r : ranges)
      if (lo < r.hi && r.lo < hi) {
        out.push_back(line);
        return;
      }
  });
  return out;
}

std::string comparable_maps(const std::string& maps) {
  std::string out;
  each_line(maps, [&](const std::string& line, uint64_t lo, uint64_t hi) {
#ifdef __SANITIZE_ADDRESS__
    // AddressSanitizer's allocator carves its fixed region as it allocates,
    // and its own anonymous mappings come and go: not the client's doing.
    constexpr uint64_t kAsanAllocLo = 0x600000000000, kAsanAllocHi = 0x640000000000;
    if (lo >= kAsanAllocLo && hi <= kAsanAllocHi) return;
    if (line.find(" 00:00 0 ") != std::string::npos && line.find('[') == std::string::npos) return;
#else
    (void)hi;
#endif
    if (line.find("[heap]") != std::string::npos) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%" PRIx64 "-? [heap]\n", lo);
      out += buf;
    } else {
      out += line + "\n";
    }
  });
  return out;
}

std::string line_containing(const std::string& maps, const std::string& needle) {
  std::string found;
  each_line(maps, [&](const std::string& line, uint64_t, uint64_t) {
    if (found.empty() && line.find(needle) != std::string::npos) found = line;
  });
  return found;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace e2e
