// Deterministic data for the compress payload: the same (kind, size, seed)
// gives the same bytes in the server, in a native run and in the test, so
// compressed sizes and checksums compare byte for byte.  Header-only: the
// test binary builds the zstd dictionary's samples itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace compress_data {

// Knuth's MMIX LCG; the high bits are the useful ones.
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed * 2862933555777941757ULL + 3037000493ULL) {}
  uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
  uint32_t below(uint32_t n) { return next() % n; }
};

inline constexpr std::string_view kWords[] = {
    "the",     "quick",  "brown",      "fox",    "jumps",  "over",    "lazy",    "dog",    "subcontext",
    "memory",  "image",  "snapshot",   "client", "server", "page",    "mapping", "kernel", "deflate",
    "inflate", "window", "dictionary", "frame",  "block",  "literal", "match",   "offset", "length",
    "Zürich",  "naïve",  "café",       "über",   "of",     "and",     "a",       "in",     "to"};
inline constexpr std::string_view kCities[] = {"Berlin", "Paris", "Lisbon", "Oslo", "Kyiv", "Porto", "Lyon", "Graz"};
inline constexpr std::string_view kTags[] = {"admin", "beta", "trial", "vip", "legacy", "mobile", "eu", "us"};

// Words with punctuation and line breaks: compresses like prose.
inline std::string text(size_t size, uint64_t seed) {
  Lcg r(seed);
  std::string out;
  out.reserve(size + 32);
  size_t line = 0;
  while (out.size() < size) {
    std::string_view w = kWords[r.below(std::size(kWords))];
    out += w;
    line += w.size() + 1;
    const uint32_t p = r.below(20);
    if (p == 0) out += '.';
    if (p == 1) out += ',';
    if (line > 60) {
      out += '\n';
      line = 0;
    } else {
      out += ' ';
    }
  }
  out.resize(size);
  return out;
}

// One JSON record, the shape the dictionary is trained on.
inline std::string record(Lcg& r) {
  const uint32_t id = r.below(1000000);
  std::string s = "{\"id\":" + std::to_string(id) + ",\"user\":\"user" + std::to_string(r.below(5000)) +
                  "\",\"email\":\"u" + std::to_string(r.below(5000)) + "@example.org\",\"city\":\"" +
                  std::string(kCities[r.below(std::size(kCities))]) +
                  "\",\"score\":" + std::to_string(r.below(100000)) + ",\"active\":" + (r.below(2) ? "true" : "false") +
                  ",\"tags\":[";
  const uint32_t n = r.below(4);
  for (uint32_t i = 0; i < n; ++i) s += (i ? ",\"" : "\"") + std::string(kTags[r.below(std::size(kTags))]) + "\"";
  return s + "]}\n";
}

inline std::string records(size_t size, uint64_t seed) {
  Lcg r(seed);
  std::string out;
  while (out.size() < size) out += record(r);
  out.resize(size);
  return out;
}

// Small integers in runs, like a sensor log or an image row: compressible
// but not text.
inline std::string binary(size_t size, uint64_t seed) {
  Lcg r(seed);
  std::string out;
  out.reserve(size);
  uint8_t v = 0;
  while (out.size() < size) {
    const uint32_t run = 1 + r.below(8);
    v = static_cast<uint8_t>(v + r.below(7) - 3);
    for (uint32_t i = 0; i < run && out.size() < size; ++i) out += static_cast<char>(v);
  }
  return out;
}

// Uniform bytes: incompressible.
inline std::string random(size_t size, uint64_t seed) {
  Lcg r(seed);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(r.next() >> 24);
  return out;
}

// The data of a kind by name; false for an unknown kind.
inline bool make(std::string_view kind, size_t size, uint64_t seed, std::string* out) {
  if (kind == "text") *out = text(size, seed);
  else if (kind == "records") *out = records(size, seed);
  else if (kind == "binary") *out = binary(size, seed);
  else if (kind == "random") *out = random(size, seed);
  else if (kind == "zeros") *out = std::string(size, '\0');
  else return false;
  return true;
}

// The zstd dictionary's training set: many small records, as a dictionary
// is meant for.  Flattened with their sizes, as ZDICT_trainFromBuffer wants.
inline constexpr size_t kDictCapacity = 16 * 1024;
inline constexpr uint64_t kDictSeed = 20240501;
inline constexpr size_t kDictSamples = 2000;

struct Samples {
  std::string bytes;
  std::vector<size_t> sizes;
};

inline Samples dictionary_samples() {
  Lcg r(kDictSeed);
  Samples s;
  for (size_t i = 0; i < kDictSamples; ++i) {
    std::string rec;
    for (uint32_t k = 0, n = 1 + r.below(3); k < n; ++k) rec += record(r);
    s.bytes += rec;
    s.sizes.push_back(rec.size());
  }
  return s;
}

}  // namespace compress_data
