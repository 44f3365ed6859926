// The Matchmaker: installed at its first use (before main when a SUBCTX_*
// variable is set); maps, finds and unmaps subcontexts; finalize() at exit.
#include "subctx/subctx.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "fault/fault_handler.hpp"
#include "fault/signals.hpp"
#include "fault/syscalls.hpp"
#include "fault/threads.hpp"
#include "matchmaker/registry.hpp"
#include "matchmaker/symbolize.hpp"

namespace subctx {

namespace {
void install(matchmaker::Registry& r);
std::atomic<bool> g_registry_made{false};
std::atomic<bool> g_exited{false};  // the library's destructor has run
}  // namespace

namespace matchmaker {
std::atomic<uint64_t> g_registry_generation{1};

Registry& registry() {
  // Made, and the Matchmaker installed, at its first use (issue 15: a
  // process that links the library and never uses it pays nothing for
  // it), or by the library constructor when a SUBCTX_* variable is set.
  // After the destructor at exit it stays uninstalled, as finalize() leaves
  // it.  Never destroyed: finalize() runs from a destructor at exit,
  // possibly after other static objects are gone.
  static Registry* r = [] {
    auto* made = new Registry;
    if (!g_exited.load(std::memory_order_relaxed)) install(*made);
    g_registry_made.store(true, std::memory_order_release);
    return made;
  }();
  return *r;
}
}  // namespace matchmaker

using matchmaker::registry;

namespace {

// fork() (docs/containment.md): the child has only the forking thread.  The
// registry's lock is taken around the fork (map and unmap hold it briefly),
// so the child's registry is whole.  A call lock cannot be waited for (a
// call may run for long, or wait for the forking thread): in the child, one
// held by a thread the child does not have is made anew, and its
// subcontext, whose memory that thread left mid-call (or mid-reset), is
// poisoned until reset() or unmap().
void registry_before_fork() { registry().mutex.lock(); }
void registry_after_fork_in_parent() { registry().mutex.unlock(); }
void registry_after_fork_in_child() {
  auto& r = registry();
  for (auto& [handle, s] : r.subcontexts) {
    // Threads its code started are not here either (a fork keeps only the
    // forking thread; fault/threads.cpp's own fork handler, registered at
    // the first map and so run after this one, forgets them): what they
    // were doing, and a pool its code counts on, are gone.
    if (const uint32_t threads = fault::thread_count(*s))
      s->poisoned = detail::subcontext_name(*s) + " is poisoned in this child process: the " + std::to_string(threads) +
                    " threads its code started do not exist here (a fork keeps only the forking thread), and its "
                    "memory is as they left it; reset() it (sbc_reset) or unmap it";
    // A client signal handler that forked inside a call of its own thread:
    // that call goes on in the child.
    if (s->call_lock.held_by_this_thread()) continue;
    if (s->call_lock.try_lock()) {
      s->call_lock.unlock();
      continue;
    }
    const bool in_call = s->call_lock.in_call();
    s->call_lock.forget();  // held by a thread that is not here
    s->current_frame = nullptr;
    // Nor are that thread's calls, callbacks and protection windows.
    s->call_depth = 0;
    s->callbacks_out = 0;
    s->callback_sp = 0;
    s->failure_in_callback = nullptr;
    s->protection.forget_windows();
    // Its symbol tables' lock may be held by that thread too: left behind.
    if (s->symbolizer) new std::shared_ptr<const matchmaker::Symbolizer>(std::move(s->symbolizer));
    s->poisoned = detail::subcontext_name(*s) +
                  " is poisoned in this child process: another thread of the parent was " +
                  (in_call ? "inside a call of it" : "resetting, unmapping or inspecting it") +
                  " when the process forked, and its memory here is as that thread left it; reset() it (sbc_reset) "
                  "or unmap it";
  }
  r.mutex.unlock();
}

// Reads every SUBCTX_* variable, SUBCTX_POLICY too (sys/env.cpp), and
// registers the fork handlers of the registry's lock and of the fault
// views': the views' first, as a fork takes the locks in the reverse order
// of registration (the registry's, the views', then sigaction()'s, which is
// registered before main: the interposed sigaction() takes it from the
// start).  The signal handlers wait for the first map (install_handlers).
// Registry mutex held, or the registry not yet shared (registry()).
void install(matchmaker::Registry& r) {
  matchmaker::read_environment(r);
  fault::prepare_signal_forwarding();  // done before main: idempotent
  fault::prepare_fault_handler();
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    pthread_atfork(registry_before_fork, registry_after_fork_in_parent, registry_after_fork_in_child);
  });
  r.installed = true;
}

// Whether the environment holds a SUBCTX_* variable (set or empty).
bool subctx_environment() {
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "SUBCTX_", 7) == 0) return true;
  return false;
}

// What only a mapped subcontext needs, done at the first map rather than
// before main, so that a process linked with the library pays nothing for it
// until it maps (issue 15: about 70 system calls): the client's handlers
// installed so far go behind the trampoline, and the fault, raw-call and
// SIGSYS handlers take over their signals (a client's action is recorded and
// chained to, as when it installs one later).  Until then no subcontext
// exists for a signal to concern.  Registry mutex held; once per process
// (finalize() leaves the handlers in place).
void install_handlers() {
  static bool installed = false;
  if (installed) return;
  fault::install_signal_forwarding();
  fault::install_fault_handler();
  fault::install_syscall_handler();
  installed = true;
}

}  // namespace

Matchmaker& Matchmaker::instance() {
  static Matchmaker m;
  return m;
}

void Matchmaker::init() {
  auto& r = registry();  // installs it at the first use
  std::lock_guard lock(r.mutex);
  if (!r.installed) install(r);
}

bool Matchmaker::installed() const {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.installed;
}

Subcontext Matchmaker::request_map(const std::string& image_path, const MapOptions& options) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.installed)
    throw NotInitialized("the Matchmaker is not installed (finalize() was called); call init() or sbc_init() first");
  install_handlers();
  auto state = matchmaker::map_image(r, image_path, options);
  state->handle = r.next_handle;
  matchmaker::set_address_map(*state);
  const auto entry = r.subcontexts.emplace(state->handle, state).first;  // first: nothing can fail after publishing
  if (!fault::publish_view(*state)) {
    r.subcontexts.erase(entry);
    throw LimitExceeded("cannot map image " + state->path + ": " + std::to_string(fault::kMaxViews) +
                        " subcontexts are mapped, the most the signal handlers can track");
  }
  ++r.next_handle;
  matchmaker::g_registry_generation.fetch_add(1, std::memory_order_release);
  return Subcontext(state);
}

Subcontext Matchmaker::find(int handle) const {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.subcontexts.find(handle);
  if (it == r.subcontexts.end())
    throw NoSuchSubcontext("no subcontext with handle " + std::to_string(handle) + " is mapped");
  return Subcontext(it->second);
}

void Matchmaker::unmap(int handle) {
  auto& r = registry();
  std::shared_ptr<detail::SubcontextState> s;
  {
    std::lock_guard lock(r.mutex);
    auto it = r.subcontexts.find(handle);
    if (it == r.subcontexts.end())
      throw NoSuchSubcontext("cannot unmap: no subcontext with handle " + std::to_string(handle) + " is mapped");
    s = it->second;
  }
  // Memory first, registry entry after: until the ranges are free, mapping
  // the image again is AlreadyMapped, not a conflict with itself.
  matchmaker::unmap_state(*s);
  std::lock_guard lock(r.mutex);
  auto it = r.subcontexts.find(handle);
  if (it != r.subcontexts.end() && it->second == s) r.subcontexts.erase(it);
  matchmaker::g_registry_generation.fetch_add(1, std::memory_order_release);
}

void Matchmaker::unmap(const Subcontext& sc) {
  if (!sc.valid()) throw NoSuchSubcontext("cannot unmap an empty Subcontext");
  unmap(sc.handle());
}

void Matchmaker::finalize() { matchmaker::finalize(/*at_exit=*/false); }

namespace matchmaker {
void finalize_at_exit() {
  g_exited.store(true, std::memory_order_relaxed);
  if (g_registry_made.load(std::memory_order_acquire)) finalize(/*at_exit=*/true);
}

void finalize(bool at_exit) {
  auto& r = registry();
  std::map<int, std::shared_ptr<detail::SubcontextState>> all;
  {
    std::lock_guard lock(r.mutex);
    // From a callback (or a signal handler inside a call): unmapping that
    // subcontext would wait for itself; refused before anything changes.
    if (!at_exit)
      for (const auto& [h, s] : r.subcontexts) refuse_from_inside_call(*s, "finalize()");
    all.swap(r.subcontexts);
    g_registry_generation.fetch_add(1, std::memory_order_release);
    r.installed = false;
  }
  // At exit a thread may still be inside a call that never returns: its
  // subcontext stays mapped (the kernel reclaims it) rather than hang exit,
  // and its state alive (published: the handlers may still read it).
  for (auto& [h, s] : all)
    if (!matchmaker::unmap_state(*s, /*wait_for_call=*/!at_exit)) new std::shared_ptr<detail::SubcontextState>(s);
}
}  // namespace matchmaker

Limits Matchmaker::limits() const {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.limits;
}

void Matchmaker::set_limits(const Limits& limits) {
  if (!limits.subcontexts || !limits.image_size || !limits.exports || !limits.segments)
    throw Error(Errc::InvalidArgument, "limits must be positive");
  if (limits.subcontexts > static_cast<uint64_t>(fault::kMaxViews))
    throw Error(Errc::InvalidArgument, "Limits::subcontexts is " + std::to_string(limits.subcontexts) + "; at most " +
                                           std::to_string(fault::kMaxViews) +
                                           " subcontexts can be mapped at once (the signal handlers' table)");
  if (limits.threads > static_cast<uint64_t>(fault::kMaxThreadSlots))
    throw Error(Errc::InvalidArgument, "Limits::threads is " + std::to_string(limits.threads) + "; at most " +
                                           std::to_string(fault::kMaxThreadSlots) +
                                           " threads of subcontext code can run at once (the signal handlers' table)");
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.limits = limits;
}

void Matchmaker::set_policy(const std::string& policy_text) {
  auto p = std::make_shared<policy::Policy>();
  std::string why;
  if (!policy::parse_policy(policy_text, "policy set by the API", p.get(), &why))
    throw Error(Errc::InvalidArgument, why);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  matchmaker::install_policy(r, std::move(p));
}

void Matchmaker::load_policy(const std::string& path) {
  auto p = matchmaker::read_policy_file(path);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  matchmaker::install_policy(r, std::move(p));
}

void Matchmaker::clear_policy() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  matchmaker::install_policy(r, nullptr);
}

std::vector<ExportInfo> Subcontext::exports() const {
  if (!state_) throw NoSuchSubcontext("empty Subcontext");
  std::vector<ExportInfo> out;
  for (const auto& e : state_->exports)
    out.push_back({e.record.name, e.record.address, e.record.signature, static_cast<Visibility>(e.record.visibility)});
  return out;
}

ProtectionInfo Subcontext::protection() const {
  if (!state_) throw NoSuchSubcontext("empty Subcontext");
  const gate::Protection& p = state_->protection;
  const gate::ProtectionStats st = p.stats();
  ProtectionInfo info;
  info.backend = p.backend();
  info.readable = p.readable();
  info.exact_permissions = p.exact();
  info.clusters = st.clusters;
  info.open_syscalls = st.open_calls;
  info.close_syscalls = st.close_calls;
  info.pkey = st.pkey;
  return info;
}

void Matchmaker::set_violation_handler(ViolationHandler handler, void* user) {
  fault::set_violation_handler(handler, user);
}

int Subcontext::handle() const { return state_ ? state_->handle : -1; }

const std::string& Subcontext::path() const {
  static const std::string empty;
  return state_ ? state_->given_path : empty;
}

}  // namespace subctx

namespace {
// Before main only what cannot wait: the fork handler of the interposed
// sigaction()'s lock, and the environment when a SUBCTX_* variable is set
// (read at start-up, as documented: a program's own setenv() or chdir()
// does not change what it says).  Without one the Matchmaker is installed
// at its first use.  Torn down at exit (unmaps every subcontext) when it
// was used.
__attribute__((constructor)) void subctx_client_install() {
  subctx::fault::prepare_signal_forwarding();
  if (subctx::subctx_environment()) subctx::matchmaker::registry();
}
__attribute__((destructor)) void subctx_client_uninstall() { subctx::matchmaker::finalize_at_exit(); }
}  // namespace
