#include "matchmaker/policy.hpp"

#include <fnmatch.h>
#include <pwd.h>

#include <cerrno>
#include <cstdio>
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

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  for (size_t at = 0;;) {
    const size_t slash = path.find('/', at);
    out.push_back(path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at));
    if (slash == std::string_view::npos) return out;
    at = slash + 1;
  }
}

// `.`, `..` and an empty component (`//`, a trailing `/`) but the root's:
// matched only by the same literal component, never by a wildcard.
bool literal_only(std::string_view c, size_t index) { return c == "." || c == ".." || (c.empty() && index > 0); }

// A path pattern (docs/policy.md): `*` alone matches every path; otherwise
// pattern and path are compared component by component (fnmatch within
// one: `*` does not cross `/`), and a `**` component matches any number of
// whole components, none of them literal_only.
bool path_matches(const std::string& pattern, std::string_view path) {
  if (pattern == "*") return true;
  const std::vector<std::string_view> p = components(pattern), t = components(path);
  // tail[i][j]: p[i..] matches t[j..]; filled from the ends.
  std::vector<std::vector<char>> tail(p.size() + 1, std::vector<char>(t.size() + 1, 0));
  tail[p.size()][t.size()] = 1;
  for (size_t i = p.size(); i-- > 0;) {
    for (size_t j = t.size() + 1; j-- > 0;) {
      const bool more = j < t.size();
      if (p[i] == "**") {
        tail[i][j] = tail[i + 1][j] || (more && !literal_only(t[j], j) && tail[i][j + 1]);
      } else if (more) {
        const bool one = literal_only(t[j], j) ? p[i] == t[j] : glob(std::string(p[i]), t[j]);
        tail[i][j] = one && tail[i + 1][j + 1];
      }
    }
  }
  return tail[0][0];
}

bool has_wildcard(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

bool image_matches(const Rule& r, const ImageFacts& image) {
  return path_matches(r.path, image.path) && (!r.owner || *r.owner == image.owner) &&
         (!r.digest || *r.digest == image.digest);
}

std::string where(const Policy& p, const Rule& r) {
  return p.origin + " line " + std::to_string(r.line) + " (" + r.text + ")";
}

// The keys a rule has given so far (each may be given once).
struct Seen {
  bool path = false, owner = false, digest = false, export_name = false, file = false;
};

// Marks a key seen; false if it already was.
bool first_time(bool* seen) {
  const bool was = *seen;
  *seen = true;
  return !was;
}

std::string given_twice(std::string_view key) { return std::string(key) + "= given twice"; }

std::optional<RuleKind> parse_kind(std::string_view word) {
  if (word == "map") return RuleKind::Map;
  if (word == "call") return RuleKind::Call;
  if (word == "reopen") return RuleKind::Reopen;
  if (word == "spawn") return RuleKind::Spawn;
  return std::nullopt;
}

// "allow|deny map|call|reopen|spawn"; returns an error, empty if none.
std::string parse_head(const std::vector<std::string_view>& w, Rule* r) {
  if (w[0] == "allow") r->allow = true;
  else if (w[0] != "deny") return "expected 'allow' or 'deny', found '" + sys::printable(w[0], 40) + "'";
  if (w.size() < 2) return "expected 'map', 'call', 'reopen' or 'spawn' after '" + std::string(w[0]) + "'";
  std::optional<RuleKind> kind = parse_kind(w[1]);
  if (!kind) return "expected 'map', 'call', 'reopen' or 'spawn', found '" + sys::printable(w[1], 40) + "'";
  r->kind = *kind;
  return {};
}

std::string set_path(std::string_view value, Rule* r) {
  if (value[0] != '/' && value[0] != '*')
    return "path= is matched against the image's absolute path: start it with '/' or '*', e.g. path=/opt/images/*";
  r->path = std::string(value);
  return {};
}

std::string set_owner(std::string_view value, UserLookup users, Rule* r) {
  uint64_t uid;
  if (parse_uint(value, 10, &uid) && uid < UINT32_MAX) {
    r->owner = static_cast<uid_t>(uid);
  } else if (auto u = users(value)) {
    r->owner = *u;
  } else {
    return "owner '" + sys::printable(value, 64) + "' is neither a uid nor a known user";
  }
  return {};
}

std::string set_digest(std::string_view value, Rule* r) {
  uint64_t d;
  if (value.size() < 3 || value.substr(0, 2) != "0x" || !parse_uint(value.substr(2), 16, &d))
    return "digest must be 0x and up to 16 hex digits, as `subctx inspect` prints it";
  r->digest = d;
  return {};
}

std::string set_export(std::string_view value, Rule* r) {
  if (r->kind != RuleKind::Call) return "export= belongs in 'call' rules";
  r->export_name = std::string(value);
  return {};
}

std::string set_file(std::string_view value, Rule* r) {
  if (r->kind != RuleKind::Reopen) return "file= belongs in 'reopen' rules";
  if (value[0] != '/' && value[0] != '*')
    return "file= is matched against absolute paths: start it with '/' or '*', e.g. file=/etc/*";
  r->file = std::string(value);
  return {};
}

std::string set_quota(std::string_view key, std::string_view value, Rule* r) {
  auto& field = key == "max-dirty-pages" ? r->max_dirty_pages : r->max_mapped_bytes;
  if (field) return given_twice(key);
  if (r->kind != RuleKind::Map || !r->allow) return std::string(key) + "= belongs in 'allow map' rules";
  uint64_t n;
  if (!parse_uint(value, 10, &n)) return std::string(key) + " must be a decimal number";
  field = n;
  return {};
}

// One key=value word of a rule; returns an error, empty if none.
std::string parse_key(std::string_view word, UserLookup users, Rule* r, Seen* seen) {
  const size_t eq = word.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == word.size())
    return "expected key=value, found '" + sys::printable(word, 80) + "'";
  const std::string_view key = word.substr(0, eq), value = word.substr(eq + 1);
  if (key == "path") return first_time(&seen->path) ? set_path(value, r) : given_twice(key);
  if (key == "owner") return first_time(&seen->owner) ? set_owner(value, users, r) : given_twice(key);
  if (key == "digest") return first_time(&seen->digest) ? set_digest(value, r) : given_twice(key);
  if (key == "export") return first_time(&seen->export_name) ? set_export(value, r) : given_twice(key);
  if (key == "file") return first_time(&seen->file) ? set_file(value, r) : given_twice(key);
  if (key == "max-dirty-pages" || key == "max-mapped-bytes") return set_quota(key, value, r);
  return "unknown key '" + sys::printable(key, 40) +
         "' (keys: path owner digest export file max-dirty-pages max-mapped-bytes)";
}

// The words of one rule; returns an error, empty if none.
std::string parse_rule(const std::vector<std::string_view>& w, UserLookup users, Rule* r) {
  if (std::string e = parse_head(w, r); !e.empty()) return e;
  Seen seen;
  for (size_t i = 2; i < w.size(); ++i)
    if (std::string e = parse_key(w[i], users, r, &seen); !e.empty()) return e;
  // The rule as written, without the comment, single-spaced.
  for (size_t i = 0; i < w.size(); ++i) r->text += (i ? " " : "") + std::string(w[i]);
  return {};
}

// Takes the next line off text.
std::string_view next_line(std::string_view* text) {
  const size_t nl = text->find('\n');
  std::string_view line = text->substr(0, nl);
  text->remove_prefix(nl == std::string_view::npos ? text->size() : nl + 1);
  return line;
}

// What is wrong with a line before it is read as a rule; empty if nothing.
// UTF-8 is welcome (comments, paths); control characters are not.
std::string check_line(std::string_view line) {
  if (line.size() > kMaxLineBytes) return "longer than 4096 characters";
  for (size_t i = 0; i < line.size();) {
    const size_t n = line[i] == '\t' ? 1 : sys::printable_utf8_length(line.substr(i));
    if (n) {
      i += n;
      continue;
    }
    const std::string column = " at column " + std::to_string(i + 1);
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == '\r') return "carriage return (CRLF line end?)" + column + ": save the file with LF line ends";
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", c);
    if (c < 0x80 || c == 0x7f) return "control character " + std::string(byte) + column;
    return "byte " + std::string(byte) + column + " is not part of a printable UTF-8 character";
  }
  return {};
}

std::string_view without_comment(std::string_view line) { return line.substr(0, line.find('#')); }

// One line of a policy: a comment, blank, or a rule added to p; returns an
// error, empty if none.
std::string add_line(std::string_view line, int line_no, UserLookup users, Policy* p) {
  if (std::string error = check_line(line); !error.empty()) return error;
  const std::vector<std::string_view> w = words(without_comment(line));
  if (w.empty()) return {};
  if (p->rules.size() >= kMaxRules) return "more than 10000 rules";
  Rule r;
  r.line = line_no;
  if (std::string error = parse_rule(w, users, &r); !error.empty()) return error;
  p->rules.push_back(std::move(r));
  return {};
}

// The decision of a rule that matched.
Decision decided_by(const Policy& p, const Rule& r) {
  Decision d;
  d.allowed = r.allow;
  d.rule = &r;
  if (!r.allow) d.why = "denied by " + where(p, r);
  return d;
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

bool parse_policy(std::string_view text, const std::string& origin, Policy* out, std::string* why, UserLookup users) {
  if (text.size() > kMaxPolicyBytes) {
    if (why) *why = origin + ": " + std::to_string(text.size()) + " bytes; a policy has at most 1 MiB";
    return false;
  }
  Policy p;
  p.origin = origin;
  for (int line_no = 1; !text.empty(); ++line_no) {
    if (std::string error = add_line(next_line(&text), line_no, users, &p); !error.empty()) {
      if (why) *why = origin + " line " + std::to_string(line_no) + ": " + error;
      return false;
    }
  }
  *out = std::move(p);
  return true;
}

Decision decide_map(const Policy* policy, const ImageFacts& image) {
  Decision d;
  if (!policy) return d;
  for (const Rule& r : policy->rules)
    if (r.kind == RuleKind::Map && image_matches(r, image)) return decided_by(*policy, r);
  d.allowed = false;
  d.why = "no rule of " + policy->origin +
          " allows mapping it (maps are denied unless a rule allows them); add e.g. \"allow map path=" +
          sys::printable_path(image.path) + "\"";
  return d;
}

Decision decide_call(const Policy* policy, const ImageFacts& image, std::string_view export_name, bool restricted) {
  if (policy) {
    for (const Rule& r : policy->rules) {
      if (r.kind != RuleKind::Call || !image_matches(r, image) || !glob(r.export_name, export_name)) continue;
      if (r.allow && restricted && has_wildcard(r.export_name)) continue;  // a wildcard grants nothing restricted
      return decided_by(*policy, r);
    }
  }
  Decision d;
  if (restricted) {
    const std::string grant =
        "\"allow call path=" + sys::printable_path(image.path) + " export=" + sys::printable(export_name) + "\"";
    d.allowed = false;
    d.why = "the export is restricted and " + (policy ? "no rule of " + policy->origin : std::string("no policy")) +
            " grants it; a grant names it exactly, e.g. " + grant;
  }
  return d;
}

bool path_glob(const std::string& pattern, std::string_view path) { return path_matches(pattern, path); }

const Rule* rule_naming_digest(const Policy* policy, uint64_t digest) {
  if (policy)
    for (const Rule& r : policy->rules)
      if (r.digest == digest) return &r;
  return nullptr;
}

Decision decide_reopen(const Policy* policy, const ImageFacts& image, std::string_view file) {
  if (policy) {
    for (const Rule& r : policy->rules)
      if (r.kind == RuleKind::Reopen && image_matches(r, image) && path_matches(r.file, file))
        return decided_by(*policy, r);
  }
  return {};  // no rule decides: reopens are allowed
}

Decision decide_spawn(const Policy* policy, const ImageFacts& image, bool declared) {
  if (policy) {
    for (const Rule& r : policy->rules)
      if (r.kind == RuleKind::Spawn && image_matches(r, image)) return decided_by(*policy, r);
  }
  Decision d;  // no rule decides: the image's declaration does
  d.allowed = declared;
  if (!declared)
    d.why = "the image does not declare that it starts programs (SnapshotOptions::spawns) and " +
            (policy ? "no rule of " + policy->origin : std::string("no policy")) +
            " allows it; add e.g. \"allow spawn path=" + sys::printable_path(image.path) + "\"";
  return d;
}

}  // namespace subctx::policy
