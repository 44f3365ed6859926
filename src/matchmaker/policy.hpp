// The client policy: which images may be mapped, which exports called,
// which files an image may reopen and which images may start programs.
// Parsed from text (a policy file is untrusted input: bounded lines,
// bounded rule count, every error names its line); decisions are pure
// functions.  docs/policy.md.
//
//   # comment
//   allow map  path=/opt/images/*.img owner=root
//   deny  map  path=/tmp/*
//   allow map  digest=0x5b472d61229ed6a5
//   allow map  path=/opt/big.img max-dirty-pages=10000 max-mapped-bytes=67108864
//   deny  call path=* export=debug_*
//   allow call path=/opt/images/cities.img export=admin_reset   # a grant
//   allow reopen file=/var/lib/app/*
//   deny  reopen path=/tmp/*.img file=/etc/*
//   allow spawn path=/opt/images/report.img
//
// Map: the first matching map rule decides; with a policy installed and no
// rule matching, the map is denied.  Call: the first matching call rule
// decides; with none, public exports may be called and restricted ones may
// not.  A restricted export needs a grant: an allow rule whose export= names
// it exactly (no wildcard).  Reopen: at map the client reopens by path the
// files, directories and devices the server had open, and its working
// directory; each path goes through decide_reopen.  The first reopen rule
// whose image keys and file= match decides; with none, the reopen is
// allowed (a map-only policy keeps working).  Spawn: may the image's code
// start programs (posix_spawn, vfork + execve)?  The first spawn rule
// whose image keys match decides; with none, the image's declaration
// (image::kFlagSpawns) does.  Without any policy: every image may be
// mapped, public exports called, restricted ones not, every file reopened,
// and an image starts programs if it declares that it does.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subctx::policy {

inline constexpr size_t kMaxPolicyBytes = 1 << 20;
inline constexpr size_t kMaxLineBytes = 4096;
inline constexpr size_t kMaxRules = 10000;

// What a rule decides: mapping an image, calling one of its exports,
// reopening one of its files at map, or letting its code start programs.
enum class RuleKind { Map, Call, Reopen, Spawn };

struct Rule {
  bool allow = false;
  RuleKind kind = RuleKind::Map;
  std::string path = "*";          // path pattern over the image's canonical path (path_glob)
  std::optional<uid_t> owner;      // the image file's owner
  std::optional<uint64_t> digest;  // the image's header digest
  std::string export_name = "*";   // fnmatch pattern; call rules only
  std::string file = "*";          // path pattern over the absolute path to reopen; reopen rules only
  // allow map rules: quotas for what they allow (docs/containment.md).
  std::optional<uint64_t> max_dirty_pages, max_mapped_bytes;
  int line = 0;
  std::string text;  // the rule as written, for messages
};

struct Policy {
  std::string origin;  // "policy file /etc/x.policy" or "policy set by the API"
  std::vector<Rule> rules;
};

// Resolves a user name for owner=; nullopt if unknown.  Replaceable in tests.
using UserLookup = std::optional<uid_t> (*)(std::string_view name);
std::optional<uid_t> lookup_user(std::string_view name);

// Parses policy text; returns false and sets *why ("ORIGIN line N: ...").
bool parse_policy(std::string_view text, const std::string& origin, Policy* out, std::string* why,
                  UserLookup users = lookup_user);

struct ImageFacts {
  std::string_view path;  // canonical
  uid_t owner = 0;
  uint64_t digest = 0;
};

struct Decision {
  bool allowed = true;
  const Rule* rule = nullptr;  // the deciding rule; null: the default decided
  std::string why;             // for a denial: what denied it and how to allow it
};

Decision decide_map(const Policy* policy, const ImageFacts& image);
Decision decide_call(const Policy* policy, const ImageFacts& image, std::string_view export_name, bool restricted);
// May the image reopen `file` (absolute: a descriptor's path, or the working
// directory) at map?  Allowed unless a reopen rule denies it.
Decision decide_reopen(const Policy* policy, const ImageFacts& image, std::string_view file);
// May the image's code start programs (posix_spawn, vfork + execve)?  The
// first spawn rule whose keys match decides; with none (or no policy),
// `declared` (the image's kFlagSpawns) does.
Decision decide_spawn(const Policy* policy, const ImageFacts& image, bool declared);

// The first rule whose digest= is this image's header digest, of any kind;
// null if none.  A digest rule pins the whole image: the Matchmaker checks
// every segment's data against the digests (which the header digest
// covers) before such a rule may decide (docs/policy.md).
const Rule* rule_naming_digest(const Policy* policy, uint64_t digest);

// A path= or file= pattern against an absolute path: `*` alone matches
// every path; otherwise `*`, `?` and `[...]` match within one component
// (never across `/`), `**` as a whole component matches any number of
// components, and `.`, `..` and empty components are matched only by the
// same literal component, never by a wildcard.
bool path_glob(const std::string& pattern, std::string_view path);

}  // namespace subctx::policy
