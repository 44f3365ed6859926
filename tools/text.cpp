#include "text.hpp"

#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace subctx::tool {

std::string human_size(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof kUnits / sizeof kUnits[0]) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string size_and_bytes(uint64_t bytes) { return human_size(bytes) + " (" + std::to_string(bytes) + " bytes)"; }

std::string utc_time(uint64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000u);
  struct tm tm;
  char date[64];
  if (!gmtime_r(&secs, &tm) || !std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm))
    return std::to_string(ns) + " ns since the epoch";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s.%03u UTC", date, static_cast<unsigned>(ns / 1000000u % 1000u));
  return buf;
}

std::string address(uint64_t a) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%012" PRIx64, a);
  return buf;
}

}  // namespace subctx::tool
