// Monotonic wall clock in seconds, for the timings the bench servers report.
#pragma once

#include <ctime>

namespace bench {

inline double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace bench
