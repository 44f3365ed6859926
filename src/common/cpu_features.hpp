// CPU features an image may depend on: the server's libc and libraries chose
// their code paths (ifuncs: memcpy, strlen, ...) from the server's CPU, so a
// client CPU must have every feature the server had.
#pragma once

#include <cstdint>
#include <string>

namespace subctx {

// Bit set of the features below that this CPU (and OS) provides.
uint64_t host_cpu_features();

// Space-separated names of the features in mask, e.g. "avx2 bmi2".
std::string cpu_feature_names(uint64_t mask);

}  // namespace subctx
