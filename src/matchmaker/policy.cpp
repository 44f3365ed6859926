#include "matchmaker/policy.hpp"

#include <fnmatch.h>
#include <pwd.h>

#include <cerrno>
#include <cstdlib>

#include "sys/io.hpp"

namespace subctx::policy {

namespace {

bool parse_uint(std::string_view s, int base, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  std::string copy(s);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(copy.c_str(), &end, base);
  if (errno || *end || copy[0] == '-' || copy[0] == '+' || copy[0] == ' ') return false;
  *out = v;
  return true;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool glob(const std::string& pattern, std::string_view text) {
  return fnmatch(pattern.c_str(), std::string(text).c_str(), 0) == 0;
}

bool has_wildcard(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

bool image_matches(const Rule& r, const ImageFacts& image) {
  return glob(r.path, image.path) && (!r.owner || *r.owner == image.owner) &&
         (!r.digest || *r.digest == image.digest);
}

std::string where(const Policy& p, const Rule& r) {
  return p.origin + " line " + std::to_string(r.line) + " (" + r.text + ")";
}

}  // namespace

std::optional<uid_t> lookup_user(std::string_view name) {
  std::string n(name);
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  if (getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &result) != 0 || !result) return std::nullopt;
  return result->pw_uid;
}

bool parse_policy(std::string_view text, const std::string& origin, Policy* out, std::string* why,
                  UserLookup users) {
  Policy p;
  p.origin = origin;
  int line_no = 0;
  auto fail = [&](const std::string& msg) {
    if (why) *why = origin + " line " + std::to_string(line_no) + ": " + msg;
    return false;
  };
  if (text.size() > kMaxPolicyBytes) {
    if (why) *why = origin + ": " + std::to_string(text.size()) + " bytes; a policy has at most 1 MiB";
    return false;
  }
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.size() > kMaxLineBytes) return fail("longer than 4096 characters");
    for (char c : line)
      if ((c < ' ' && c != '\t') || c == 0x7f) return fail("control character in the line");
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> w = words(line);
    if (w.empty()) continue;
    if (p.rules.size() >= kMaxRules) return fail("more than 10000 rules");
    Rule r;
    r.line = line_no;
    if (w[0] == "allow") r.allow = true;
    else if (w[0] != "deny") return fail("expected 'allow' or 'deny', found '" + sys::printable(w[0], 40) + "'");
    if (w.size() < 2) return fail("expected 'map' or 'call' after '" + std::string(w[0]) + "'");
    if (w[1] == "call") r.call = true;
    else if (w[1] != "map") return fail("expected 'map' or 'call', found '" + sys::printable(w[1], 40) + "'");
    bool seen_path = false, seen_owner = false, seen_digest = false, seen_export = false;
    for (size_t i = 2; i < w.size(); ++i) {
      size_t eq = w[i].find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == w[i].size())
        return fail("expected key=value, found '" + sys::printable(w[i], 80) + "'");
      std::string_view key = w[i].substr(0, eq), value = w[i].substr(eq + 1);
      auto once = [&](bool& seen) {
        if (seen) return false;
        seen = true;
        return true;
      };
      if (key == "path") {
        if (!once(seen_path)) return fail("path= given twice");
        r.path = std::string(value);
      } else if (key == "owner") {
        if (!once(seen_owner)) return fail("owner= given twice");
        uint64_t uid;
        if (parse_uint(value, 10, &uid) && uid < UINT32_MAX) {
          r.owner = static_cast<uid_t>(uid);
        } else if (auto u = users(value)) {
          r.owner = *u;
        } else {
          return fail("owner '" + sys::printable(value, 64) + "' is neither a uid nor a known user");
        }
      } else if (key == "digest") {
        if (!once(seen_digest)) return fail("digest= given twice");
        uint64_t d;
        if (value.size() < 3 || value.substr(0, 2) != "0x" || !parse_uint(value.substr(2), 16, &d))
          return fail("digest must be 0x and up to 16 hex digits, as `subctx inspect` prints it");
        r.digest = d;
      } else if (key == "export") {
        if (!once(seen_export)) return fail("export= given twice");
        if (!r.call) return fail("export= belongs in 'call' rules");
        r.export_name = std::string(value);
      } else if (key == "max-dirty-pages" || key == "max-mapped-bytes") {
        auto& field = key == "max-dirty-pages" ? r.max_dirty_pages : r.max_mapped_bytes;
        if (field) return fail(std::string(key) + "= given twice");
        if (r.call || !r.allow) return fail(std::string(key) + "= belongs in 'allow map' rules");
        uint64_t n;
        if (!parse_uint(value, 10, &n)) return fail(std::string(key) + " must be a decimal number");
        field = n;
      } else {
        return fail("unknown key '" + sys::printable(key, 40) +
                    "' (keys: path owner digest export max-dirty-pages max-mapped-bytes)");
      }
    }
    // The rule as written, without the comment, single-spaced.
    for (size_t i = 0; i < w.size(); ++i) r.text += (i ? " " : "") + std::string(w[i]);
    p.rules.push_back(std::move(r));
  }
  *out = std::move(p);
  return true;
}

Decision decide_map(const Policy* policy, const ImageFacts& image) {
  Decision d;
  if (!policy) return d;
  for (const Rule& r : policy->rules) {
    if (r.call || !image_matches(r, image)) continue;
    d.allowed = r.allow;
    d.rule = &r;
    if (!r.allow) d.why = "denied by " + where(*policy, r);
    return d;
  }
  d.allowed = false;
  d.why = "no rule of " + policy->origin + " allows mapping it (maps are denied unless a rule allows them); add e.g. \"allow map path=" +
          std::string(image.path) + "\"";
  return d;
}

Decision decide_call(const Policy* policy, const ImageFacts& image, std::string_view export_name, bool restricted) {
  Decision d;
  const std::string grant = "\"allow call path=" + std::string(image.path) + " export=" + std::string(export_name) + "\"";
  if (policy) {
    for (const Rule& r : policy->rules) {
      if (!r.call || !image_matches(r, image) || !glob(r.export_name, export_name)) continue;
      if (r.allow && restricted && has_wildcard(r.export_name)) continue;  // a wildcard grants nothing restricted
      d.allowed = r.allow;
      d.rule = &r;
      if (!r.allow) d.why = "denied by " + where(*policy, r);
      return d;
    }
  }
  if (restricted) {
    d.allowed = false;
    d.why = "the export is restricted and " + (policy ? "no rule of " + policy->origin : std::string("no policy")) +
            " grants it; a grant names it exactly, e.g. " + grant;
  }
  return d;
}

}  // namespace subctx::policy
