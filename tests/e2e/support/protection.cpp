// Shared helpers of the protection tests (support/protection.hpp).
#include "support/protection.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace e2e {

using subctx::Protection;

// ---- images, machine ----------------------------------------------------

const std::string& protection_image() {
  static const std::string path = build_image(paths::kProtectionServer, "protection.img");
  return path;
}

const std::string& policy_image() {
  static const std::string path = build_image(paths::kPolicyServer, "policy.img");
  return path;
}

subctx::MapOptions with(Protection p, bool readable, bool exact) {
  subctx::MapOptions o;
  o.protection = p;
  o.readable = readable;
  o.exact_permissions = exact;
  return o;
}

uint64_t export_address(const subctx::Subcontext& sc, const std::string& name) {
  for (const auto& e : sc.exports())
    if (e.name == name) return e.address;
  ADD_FAILURE() << "no export " << name;
  return 0;
}

bool inside_image(const std::string& image, uint64_t a) {
  for (const Range& r : read_layout(image).all_ranges())
    if (a >= r.lo && a < r.hi) return true;
  return false;
}

int protection_key_at(uint64_t a) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  while (std::getline(f, line)) {
    unsigned long lo, hi;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      in = a >= lo && a < hi;
      continue;
    }
    if (in && line.rfind("ProtectionKey:", 0) == 0) return std::atoi(line.c_str() + 14);
  }
  return -1;
}

std::string maps_line_at(uint64_t a) {
  auto lines = lines_overlapping(read_self_maps(), {{a, a + 1}});
  return lines.size() == 1 ? lines[0] : "(" + std::to_string(lines.size()) + " lines)";
}

// ---- the helper and what it prints --------------------------------------

ProcessResult client(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv{paths::kProtectionClient};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions o;
  o.env = env;
  return run(argv, o, Millis(40000));
}

Expectation expectation(const std::string& out, const std::string& prefix) {
  const std::string key = prefix + "expect ";
  size_t at = out.rfind(key, 0) == 0 ? 0 : out.find("\n" + key);
  if (at != 0 && at != std::string::npos) ++at;  // past the newline
  Expectation e;
  if (at == std::string::npos) {
    ADD_FAILURE() << "no \"" << key << "\" line in:\n" << out;
    return e;
  }
  std::istringstream in(out.substr(at + key.size(), out.find('\n', at) - at - key.size()));
  in >> e.address >> e.handle >> e.nearest >> e.offset;
  return e;
}

std::string field(const std::string& out, const std::string& key) {
  const size_t at = out.find(key + " ");
  if (at == std::string::npos) return "";
  std::istringstream in(out.substr(at + key.size() + 1));
  std::string w;
  in >> w;
  return w;
}

std::vector<std::string> violation_lines(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line))
    if (line.find("subctx: violation:") != std::string::npos) out.push_back(line);
  return out;
}

void expect_contains(const std::string& text, const std::string& word, const std::string& what) {
  EXPECT_NE(text.find(word), std::string::npos) << what << " lacks \"" << word << "\":\n" << text;
}

std::string expect_violation_death(const ProcessResult& r, std::initializer_list<std::string> words) {
  EXPECT_FALSE(r.exited) << r.describe();
  EXPECT_EQ(r.signal, SIGSEGV) << r.describe();
  const auto lines = violation_lines(r.err);
  EXPECT_EQ(lines.size(), 1u) << r.describe();
  if (lines.empty()) return "";
  const std::string& l = lines[0];
  EXPECT_EQ(l.rfind("subctx: violation: client ", 0), 0u) << l;
  const std::string tail = "; stopping the process with SIGSEGV";
  EXPECT_TRUE(l.size() >= tail.size() && l.compare(l.size() - tail.size(), tail.size(), tail) == 0) << l;
  for (const auto& w : words) expect_contains(l, w, "the diagnostic");
  return l;
}

}  // namespace e2e
