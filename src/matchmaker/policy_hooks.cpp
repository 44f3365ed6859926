// Where the Matchmaker consults the policy: installing one, reading a policy
// file, and the (cached) check before a call.
#include "matchmaker/registry.hpp"
#include "sys/io.hpp"

namespace subctx::matchmaker {

std::atomic<uint64_t> g_policy_generation{1};

void install_policy(Registry& r, std::shared_ptr<const policy::Policy> p) {
  r.policy = std::move(p);
  g_policy_generation.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<const policy::Policy> read_policy_file(const std::string& path) {
  std::string text;
  try {
    text = sys::read_text_file(path);
  } catch (const Error& e) {
    throw IoError(std::string("cannot read the policy: ") + e.what());
  }
  auto p = std::make_shared<policy::Policy>();
  std::string why;
  if (!policy::parse_policy(text, "policy file " + path, p.get(), &why)) throw Error(Errc::InvalidArgument, why);
  return p;
}

void check_call_policy(detail::SubcontextState& s, uint32_t index) {
  auto& r = registry();
  std::shared_ptr<const policy::Policy> p;
  uint64_t generation;
  {
    std::lock_guard lock(r.mutex);
    p = r.policy;
    generation = g_policy_generation.load(std::memory_order_relaxed);
  }
  const auto& e = s.exports[index].record;
  policy::Decision d = policy::decide_call(p.get(), {s.canonical_path, s.owner, s.info.header_digest}, e.name,
                                           e.visibility == 1);
  if (!d.allowed)
    throw PolicyDenied("cannot call export \"" + e.name + "\" of image " + s.path + ": " + d.why);
  s.call_allowed_generation[index].store(generation, std::memory_order_relaxed);
}

}  // namespace subctx::matchmaker
