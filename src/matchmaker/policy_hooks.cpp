// Where the Matchmaker consults the policy: installing one, reading a policy
// file (SUBCTX_POLICY too), the (cached) check before a call, and checking
// a whole image against its digests when a digest= rule names it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "image/open_image.hpp"
#include "image/reader.hpp"
#include "matchmaker/registry.hpp"
#include "sys/env.hpp"
#include "sys/io.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::matchmaker {

std::atomic<uint64_t> g_policy_generation{1};

namespace {

// Never blocks (a FIFO), reads only a regular file, and stops past the
// size limit (/dev/zero, a file that keeps growing).
std::string read_policy_text(const std::string& path, const std::string& shown) {
  sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) throw IoError("cannot read the policy: cannot open " + shown + ": " + sys::errno_text(errno));
  struct stat st;
  if (fstat(fd.get(), &st) != 0)
    throw IoError("cannot read the policy: cannot stat " + shown + ": " + sys::errno_text(errno));
  if (!S_ISREG(st.st_mode))
    throw NotRegularFile("cannot read the policy: " + shown + " is " + image::file_kind(st.st_mode) +
                         ", not a regular file; give the path of a policy file");
  std::string text;
  char buf[16384];
  while (text.size() <= policy::kMaxPolicyBytes) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("cannot read the policy: cannot read " + shown + ": " + sys::errno_text(errno));
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
  throw Error(Errc::InvalidArgument, "policy file " + shown + " is larger than 1 MiB; a policy has at most 1 MiB");
}

}  // namespace

void install_policy(Registry& r, std::shared_ptr<const policy::Policy> p) {
  r.policy = std::move(p);
  g_policy_generation.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<const policy::Policy> read_policy_file(const std::string& path) {
  const std::string shown = sys::printable_path(path);
  const std::string text = read_policy_text(path, shown);
  auto p = std::make_shared<policy::Policy>();
  std::string why;
  if (!policy::parse_policy(text, "policy file " + shown, p.get(), &why)) throw Error(Errc::InvalidArgument, why);
  return p;
}

void install_policy_from_environment(Registry& r) {
  const char* file = env::value("SUBCTX_POLICY");
  if (!file || r.policy) return;
  try {
    if (!*file)
      throw Error(Errc::InvalidArgument,
                  "SUBCTX_POLICY is set but empty: name a policy file, or unset it for no policy at all");
    install_policy(r, read_policy_file(file));
  } catch (const Error& e) {
    // Fail closed: a policy that cannot be read allows no map.
    auto deny_all = std::make_shared<policy::Policy>();
    deny_all->origin = "SUBCTX_POLICY=" + sys::printable_path(file) + " (unusable: " + e.what() + ")";
    install_policy(r, std::move(deny_all));
    std::fprintf(stderr, "subctx: %s; no image can be mapped until a valid policy is set\n", e.what());
  }
}

void verify_pinned_image(const policy::Policy& p, const policy::Rule& rule, int fd, const image::ImageInfo& info,
                         const std::string& what) {
  struct stat st;
  if (fstat(fd, &st) != 0) throw IoError(what + ": cannot stat the image: " + sys::errno_text(errno));
  const std::string mismatch = image::verify_segments(image::FileSource(fd, static_cast<uint64_t>(st.st_size)), info);
  if (!mismatch.empty())
    throw DigestMismatch(what + ": " + p.origin + " line " + std::to_string(rule.line) + " (" + rule.text +
                         ") names its header digest, so its whole contents were checked, and " + mismatch +
                         ": the image is not the one the rule names (changed or corrupted after it was written); "
                         "snapshot the server again, or fix the rule");
}

void update_may_spawn(Registry& r, detail::SubcontextState& s, const std::string& what) {
  const policy::Decision d = policy::decide_spawn(r.policy.get(), {s.canonical_path, s.owner, s.info.header_digest},
                                                  (s.info.flags & image::kFlagSpawns) != 0);
  if (d.allowed && d.rule && d.rule->digest && !s.segments_verified.load(std::memory_order_acquire)) {
    s.may_spawn.store(false, std::memory_order_relaxed);  // until the image is the one the rule names
    verify_pinned_image(*r.policy, *d.rule, s.image_fd.get(), s.info, what);
    s.segments_verified.store(true, std::memory_order_release);
  }
  s.may_spawn.store(d.allowed, std::memory_order_relaxed);
  s.spawn_decided_generation.store(g_policy_generation.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void check_call_policy(detail::SubcontextState& s, uint32_t index) {
  auto& r = registry();
  const auto& e = s.exports[index].record;
  const std::string what = "cannot call export \"" + sys::printable(e.name) + "\" of image " + s.path;
  std::shared_ptr<const policy::Policy> p;
  uint64_t generation;
  {
    std::lock_guard lock(r.mutex);
    p = r.policy;
    generation = g_policy_generation.load(std::memory_order_relaxed);
    // The first call after a policy change decides spawning again, before
    // this call's own decision (a denied call leaves it current too).
    if (s.spawn_decided_generation.load(std::memory_order_relaxed) != generation) update_may_spawn(r, s, what);
  }
  policy::Decision d = policy::decide_call(p.get(), {s.canonical_path, s.owner, s.info.header_digest}, e.name,
                                           e.visibility == static_cast<uint8_t>(Visibility::Restricted));
  if (!d.allowed) throw PolicyDenied(what + ": " + d.why);
  // A digest rule installed after the map: the whole image is checked once.
  if (d.rule && d.rule->digest && !s.segments_verified.load(std::memory_order_acquire)) {
    verify_pinned_image(*p, *d.rule, s.image_fd.get(), s.info, what);
    s.segments_verified.store(true, std::memory_order_release);
  }
  s.call_allowed_generation[index].store(generation, std::memory_order_relaxed);
}

}  // namespace subctx::matchmaker
