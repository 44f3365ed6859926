// Containment settings and the public calls over them: fault policy,
// deadline, quotas, reset, memory (docs/containment.md).
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "fault/syscalls.hpp"
#include "fault/threads.hpp"
#include "matchmaker/registry.hpp"
#include "matchmaker/reset.hpp"
#include "matchmaker/syscall_table.hpp"
#include "sys/env.hpp"
#include "sys/io.hpp"

namespace subctx {

const char* on_fault_name(OnFault p) {
  switch (p) {
    case OnFault::Reset: return "reset";
    case OnFault::Poison: return "poison";
    case OnFault::Keep: return "keep";
  }
  return "?";
}

namespace matchmaker {

void read_containment_environment(Registry& r) {
  static constexpr OnFault kByWord[] = {OnFault::Reset, OnFault::Poison, OnFault::Keep};
  int word = 0;
  env::read_word("SUBCTX_ON_FAULT", {"reset", "poison", "keep"}, "a fault policy", &word, &r.env_error);
  r.on_fault_default = kByWord[word];
  uint64_t ms = 0;
  env::read_number("SUBCTX_CALL_TIMEOUT_MS", 0, UINT32_MAX, &ms, &r.env_error);
  r.call_timeout_default = static_cast<uint32_t>(ms);
  r.quota_default = {};
  env::read_number("SUBCTX_QUOTA_DIRTY_PAGES", 0, UINT64_MAX, &r.quota_default.max_dirty_pages, &r.env_error);
  env::read_number("SUBCTX_QUOTA_MAPPED_BYTES", 0, UINT64_MAX, &r.quota_default.max_mapped_bytes, &r.env_error);
}

void read_environment(Registry& r) {
  r.env_error.clear();
  r.limits = limits_from_environment(&r.env_error);
  read_protection_environment(r);
  read_containment_environment(r);
  // Read where they act (fault/syscalls.cpp, reset.cpp); checked here.
  int unused = 0;
  env::read_word("SUBCTX_SYSCALLS", {"on", "off"}, "a switch", &unused, &r.env_error);
  env::read_word("SUBCTX_PAGEMAP_SCAN", {"on", "off"}, "a switch", &unused, &r.env_error);
  static constexpr uint8_t kPrefetchByWord[] = {1, 0, 2};
  int prefetch = 0;
  env::read_word("SUBCTX_PREFETCH", {"on", "off", "always"}, "a prefetch mode", &prefetch, &r.env_error);
  r.prefetch = kPrefetchByWord[prefetch];
  install_policy_from_environment(r);
}

void setup_containment(const Registry& r, detail::SubcontextState& s, const MapOptions& options) {
  const OnFault policy = options.on_fault.value_or(r.on_fault_default);
  if (policy != OnFault::Reset && policy != OnFault::Poison && policy != OnFault::Keep)
    throw Error(Errc::InvalidArgument,
                "cannot map image " + s.path + ": unknown fault policy " + std::to_string(static_cast<int>(policy)));
  s.on_fault = static_cast<uint8_t>(policy);
  s.call_timeout_ms = options.call_timeout_ms.value_or(r.call_timeout_default);
  const Quota q = options.quota.value_or(r.quota_default);
  s.max_dirty_pages = q.max_dirty_pages;
  s.max_mapped_bytes = q.max_mapped_bytes;
  build_syscall_table(s.syscall_action, s.path, s.info.syscall_rules, options.syscalls);
  std::string why;
  if (!options.syscalls.empty() && !fault::syscall_dispatch_available(&why))
    throw Unsupported("cannot map image " + s.path +
                      " with system call rules: subcontext code's system calls are "
                      "not mediated here (" +
                      why + ")");
}

void refuse_from_inside_call(const detail::SubcontextState& s, const char* what) {
  if (s.call_lock.held_by_this_thread())
    throw Error(Errc::InvalidArgument, std::string(what) + " of " + detail::subcontext_name(s) +
                                           " from inside a call of it on this thread (a callback, or a signal "
                                           "handler that interrupted the call): it would wait for itself");
}

}  // namespace matchmaker

namespace {

detail::SubcontextState& state_of(const std::shared_ptr<detail::SubcontextState>& s) {
  if (!s) throw NoSuchSubcontext("empty Subcontext");
  return *s;
}

}  // namespace

ResetInfo Subcontext::reset() const {
  detail::SubcontextState& s = state_of(state_);
  matchmaker::refuse_from_inside_call(s, "reset()");
  std::lock_guard lock(s.call_lock);
  try {
    return matchmaker::reset_state(s);
  } catch (const Error& e) {
    s.poisoned = detail::subcontext_name(s) + " is poisoned: its reset failed: " + e.what();
    throw;
  }
}

MemoryInfo Subcontext::memory() const {
  detail::SubcontextState& s = state_of(state_);
  matchmaker::refuse_from_inside_call(s, "memory()");
  std::lock_guard lock(s.call_lock);
  if (!s.mapped) detail::throw_unmapped(s);
  matchmaker::note_dirty(s, matchmaker::scan_dirty(s).pages);
  MemoryInfo m;
  m.dirty_pages = s.dirty_pages;
  m.peak_dirty_pages = s.peak_dirty_pages;
  m.mapped_bytes = s.sub_maps.bytes;
  m.peak_mapped_bytes = s.sub_maps.peak;
  m.quota = {s.max_dirty_pages, s.max_mapped_bytes};
  m.faults = s.faults;
  m.resets = s.resets;
  m.open_fds = s.fds.opened;
  m.granted_fds = s.fds.granted;
  m.restored_fds = s.restored_fds.size();
  m.threads = fault::thread_count(s);
  return m;
}

void Subcontext::set_on_fault(OnFault policy) const {
  if (policy != OnFault::Reset && policy != OnFault::Poison && policy != OnFault::Keep)
    throw Error(Errc::InvalidArgument,
                "unknown fault policy " + std::to_string(static_cast<int>(policy)) + " (reset, poison or keep)");
  state_of(state_).on_fault = static_cast<uint8_t>(policy);
}

void Subcontext::set_call_timeout(uint32_t milliseconds) const { state_of(state_).call_timeout_ms = milliseconds; }

void Subcontext::set_quota(const Quota& quota) const {
  detail::SubcontextState& s = state_of(state_);
  s.max_dirty_pages = quota.max_dirty_pages;
  s.max_mapped_bytes = quota.max_mapped_bytes;
}

}  // namespace subctx
