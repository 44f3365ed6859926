// The Matchmaker's process-wide state: installed flag, limits, subcontexts.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/vdso.hpp"
#include "gate/gate.hpp"
#include "matchmaker/policy.hpp"
#include "matchmaker/subcontext_state.hpp"
#include "subctx/subctx.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::matchmaker {

// A vDSO forwarder's bytes written once into a sealed memfd: later maps of
// an image that needs the same bytes (they depend only on the image's vDSO
// symbols and this kernel's) map the file instead of writing a fresh page,
// and nothing is touched, so no page table made, until a call runs there.
struct ForwarderFile {
  std::vector<uint8_t> bytes;
  sys::UniqueFd fd;
  uint64_t dev = 0, ino = 0;
};

struct Registry {
  std::mutex mutex;  // map, unmap, finalize, limits
  bool installed = false;
  Limits limits;
  int next_handle = 0;
  std::map<int, std::shared_ptr<detail::SubcontextState>> subcontexts;
  std::optional<HostVdso> host_vdso;             // read on first map
  std::vector<ForwarderFile> forwarder_files;    // the last few made, newest last
  bool forwarder_files_refused = false;          // no memfd, or not executable here: pages are written
  std::shared_ptr<const policy::Policy> policy;  // null: none installed
  // SUBCTX_PROTECTION, SUBCTX_ON_FAULT, SUBCTX_CALL_TIMEOUT_MS,
  // SUBCTX_QUOTA_*, read at init (sys/env.hpp).
  Protection protection_default = Protection::Auto;
  OnFault on_fault_default = OnFault::Reset;
  uint32_t call_timeout_default = 0;
  Quota quota_default;
  // SUBCTX_PREFETCH: an image's hot pages at map (prefetch.hpp): 0 off,
  // 1 on (read in and populated when not in the page cache), 2 always populated.
  uint8_t prefetch = 1;
  // The malformed SUBCTX_* values found at init ("NAME=value is not ...");
  // while not empty every map fails with InvalidArgument saying so.
  std::string env_error;
};

// Bumped by every policy change.  A namespace-scope atomic, not a Registry
// member: the call path reads it on every call without reaching the registry.
extern std::atomic<uint64_t> g_policy_generation;
// Bumped by every change of Registry::subcontexts (map, unmap, finalize):
// the C API keeps the subcontext it found last per thread while this holds.
extern std::atomic<uint64_t> g_registry_generation;

Registry& registry();

// Unmaps every subcontext and uninstalls the Matchmaker (finalize()).
void finalize(bool at_exit);
// The library destructor: finalize(true) when the Matchmaker was used.
void finalize_at_exit();

// Installs a policy (null: none) and bumps the generation; mutex held.
void install_policy(Registry& r, std::shared_ptr<const policy::Policy> p);
// Reads and parses a policy file; throws InvalidArgument / IoError.
std::shared_ptr<const policy::Policy> read_policy_file(const std::string& path);
// Checks a call against the policy; caches an allowed decision.  A digest
// rule that allows it checks the whole image first (once).
void check_call_policy(detail::SubcontextState& s, uint32_t index);
// Sets s.may_spawn from policy::decide_spawn (the first spawn rule that
// matches the image, else its declaration, image::kFlagSpawns) and records
// the policy generation it was made at; r.mutex held.  At map, and again
// by check_call_policy at the first call after the policy changed.  An
// allowing rule that names the image's digest checks the whole image first
// (once): DigestMismatch names the rule, what starts it.
void update_may_spawn(Registry& r, detail::SubcontextState& s, const std::string& what);
// Checks every segment's data in the image open as fd against the digests
// in info (the header digest covers them): rule of p names the image's
// header digest.  Throws DigestMismatch naming the rule; what starts it
// ("cannot map image X").
void verify_pinned_image(const policy::Policy& p, const policy::Rule& rule, int fd, const image::ImageInfo& info,
                         const std::string& what);
// The call path's check: one number compared while the policy is unchanged.
inline void ensure_call_allowed(detail::SubcontextState& s, uint32_t index) {
  if (s.call_allowed_generation[index].load(std::memory_order_relaxed) !=
      g_policy_generation.load(std::memory_order_relaxed))
    check_call_policy(s, index);
}

// reset(), memory(), grant_fd() and the like wait for the call lock: from a
// signal handler that interrupted a call of the same subcontext on this
// thread, forever.  Throws InvalidArgument saying so instead.
void refuse_from_inside_call(const detail::SubcontextState& s, const char* what);

// The index of an export by name; throws NoSuchExport naming the image.
uint32_t find_export_index(const detail::SubcontextState& s, std::string_view name);
// The same for a NUL-terminated name (the C API: no strlen on a hint's hit).
uint32_t find_export_index(const detail::SubcontextState& s, const char* name);

// Reads every SUBCTX_* variable (sys/env.cpp): limits, defaults,
// SUBCTX_POLICY; malformed values into r.env_error.
void read_environment(Registry& r);
// Limits from SUBCTX_MAX_* environment variables over the defaults; a
// malformed value is added to *errors (its limit keeps the default).
Limits limits_from_environment(std::string* errors);
// SUBCTX_POLICY (policy_hooks.cpp): installs the policy file it names; an
// empty, unreadable or malformed one installs a policy that allows no map.
void install_policy_from_environment(Registry& r);

// Maps the image (all or nothing) and returns its state; called with the
// registry mutex held.
std::shared_ptr<detail::SubcontextState> map_image(Registry& r, const std::string& path, const MapOptions& options);

// Protection (protect.cpp): reads SUBCTX_PROTECTION into the registry;
// chooses and sets up the backend of a freshly mapped subcontext; gives its
// view the address map violation reports read (again when the protection
// plan was repaired).
void read_protection_environment(Registry& r);
void setup_protection(const Registry& r, detail::SubcontextState& s, const MapOptions& options);
void set_address_map(detail::SubcontextState& s);

// Containment (containment.cpp): reads the environment into the registry;
// sets a freshly mapped subcontext's fault policy, deadline, quotas and
// system call table from the map options over the environment.
void read_containment_environment(Registry& r);
void setup_containment(const Registry& r, detail::SubcontextState& s, const MapOptions& options);

// Unmaps one subcontext's memory.  Waits for a call in progress, or (at
// exit, wait_for_call false) leaves a subcontext that is in a call mapped
// and returns false.
bool unmap_state(detail::SubcontextState& s, bool wait_for_call = true);

}  // namespace subctx::matchmaker
