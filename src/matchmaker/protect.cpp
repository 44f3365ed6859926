// Protection of a freshly mapped subcontext: which backend, its setup, and
// what the fault handler is told (docs/protection.md).
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "fault/fault_handler.hpp"
#include "fault/threads.hpp"
#include "gate/pkru.hpp"
#include "image/format.hpp"
#include "matchmaker/registry.hpp"
#include "sys/env.hpp"
#include "sys/io.hpp"
#include "sys/proc_maps.hpp"

namespace subctx {

const char* protection_name(Protection p) {
  switch (p) {
    case Protection::Auto: return "auto";
    case Protection::None: return "none";
    case Protection::Mprotect: return "mprotect";
    case Protection::Pkey: return "pkey";
  }
  return "?";
}

namespace matchmaker {

namespace {

std::vector<gate::Piece> pieces_of(const detail::SubcontextState& s) {
  std::vector<gate::Piece> out;
  for (const auto& seg : s.info.segments) {
    const uint64_t file_part = std::min(image::page_round_up(seg.filesz), seg.memsz);
    out.push_back({seg.vaddr, seg.vaddr + seg.memsz, seg.prot, false, seg.vaddr + file_part, seg.offset});
  }
  if (s.info.vdso.base)
    out.push_back({s.info.vdso.base, s.info.vdso.base + s.info.vdso.size, PROT_READ | PROT_EXEC, false,
                   s.info.vdso.base, 0});
  return out;
}

}  // namespace

void read_protection_environment(Registry& r) {
  static constexpr Protection kByWord[] = {Protection::Pkey, Protection::Mprotect, Protection::None, Protection::Auto};
  int word = 3;
  env::read_word("SUBCTX_PROTECTION", {"pkey", "mprotect", "none", "auto"}, "a protection backend", &word,
                 &r.env_error);
  r.protection_default = kByWord[word];
}

namespace {

// Threads of subcontext code (docs/threads.md): at most the limit, with the
// rights client threads have (PKRU as this thread's now) plus the
// subcontext's own key, if it has one.
void allow_threads(const Registry& r, detail::SubcontextState& s, int key) {
  s.max_threads = static_cast<uint32_t>(r.limits.threads);
  fault::prepare_threads();  // its fork handler forgets children too (docs/threads.md)
  s.thread_pkru = gate::kNoPkru;
  if (gate::pkeys_available(nullptr)) {
    const uint32_t client = gate::pkru::read();
    s.thread_pkru = key >= 0 ? gate::pkru::allow(client, key) : client;
  }
}

}  // namespace

void setup_protection(const Registry& r, detail::SubcontextState& s, const MapOptions& options) {
  Protection want = options.protection;
  const char* chosen_by = "the map options";
  if (want == Protection::Auto) {
    want = r.protection_default;
    chosen_by = "SUBCTX_PROTECTION";
  }
  const bool automatic = want == Protection::Auto;
  if (automatic) want = !options.readable && gate::pkeys_available(nullptr) ? Protection::Pkey : Protection::Mprotect;

  if (want == Protection::Pkey) {
    std::string why;
    if (options.readable)
      throw Unsupported("cannot map image " + s.path + " readable with the pkey backend (" + chosen_by +
                        "): a protection key's rights are per thread and the Matchmaker can only set the "
                        "calling thread's; use the mprotect backend for readable maps");
    if (!gate::pkeys_available(&why))
      throw Unsupported("cannot map image " + s.path + " with the pkey backend (" + chosen_by + "): " + why +
                        "; use SUBCTX_PROTECTION=mprotect (or none for trusted images)");
    const int key = pkey_alloc(0, PKEY_DISABLE_ACCESS);
    if (key >= 0) {
      s.protection.setup_pkey(pieces_of(s), key, s.path);
      allow_threads(r, s, key);
      return;
    }
    if (!automatic)
      throw LimitExceeded("cannot map image " + s.path + " with the pkey backend: no protection key is free (" +
                          sys::errno_text(errno) +
                          "; a process has at most 15, each subcontext takes one); unmap a subcontext, or map this "
                          "one with Protection::Mprotect (SBC_PROTECT_MPROTECT, SUBCTX_PROTECTION=mprotect)");
    want = Protection::Mprotect;  // keys used up: the next best
  }
  if (want == Protection::Mprotect) {
    gate::PlanOptions po;
    po.readable = options.readable;
    po.exact = options.exact_permissions;
    s.protection.set_forwarder_file(s.forwarder_dev, s.forwarder_ino);
    s.protection.setup_mprotect(pieces_of(s), po, s.path, s.dev, s.ino);
    s.protection.watch_made_executable(&s.sub_maps.made_executable);
    // Its memory closes when a call returns, under any thread still running
    // there: no threads (clone is EPERM; docs/threads.md).  A child process
    // (within the call) gets the client threads' rights.
    allow_threads(r, s, -1);
    s.max_threads = 0;
    return;
  }
  s.protection.setup_none();
  allow_threads(r, s, -1);
}

void set_address_map(detail::SubcontextState& s) {
  auto v = std::make_unique<fault::AddressMap>();
  v->handle = s.handle;
  v->path = v->keep(s.path);
  for (size_t i = 0; i < s.info.segments.size(); ++i) {
    const auto& seg = s.info.segments[i];
    std::string what = seg.origin.empty() ? std::string(image::segment_kind_name(seg.kind)) : seg.origin;
    if (auto slash = what.rfind('/'); slash != std::string::npos && what[0] == '/') what = what.substr(slash + 1);
    what = "segment " + std::to_string(i) + " " + sys::printable(what) + " " + sys::perm_string(seg.prot);
    const char* text = v->keep(what);
    // Minus what the subcontext gave up during calls (mprotect's repair).
    std::vector<std::pair<uint64_t, uint64_t>> parts{{seg.vaddr, seg.vaddr + seg.memsz}};
    for (const auto& [lo, hi] : s.protection.released()) {
      std::vector<std::pair<uint64_t, uint64_t>> next;
      for (const auto& [a, b] : parts) {
        if (hi <= a || lo >= b) {
          next.emplace_back(a, b);
          continue;
        }
        if (a < lo) next.emplace_back(a, lo);
        if (hi < b) next.emplace_back(hi, b);
      }
      parts.swap(next);
    }
    for (const auto& [a, b] : parts) v->ranges.push_back({a, b, text});
  }
  if (s.info.vdso.base) v->ranges.push_back({s.info.vdso.base, s.info.vdso.base + s.info.vdso.size, "vDSO forwarder"});
  for (const auto& m : s.protection.reservations()) v->ranges.push_back({m.begin(), m.end(), "reserved gap"});
  std::sort(v->ranges.begin(), v->ranges.end(), [](const auto& a, const auto& b) { return a.lo < b.lo; });
  if (!v->ranges.empty()) {
    v->lo = v->ranges.front().lo;
    for (const auto& r : v->ranges) v->hi = std::max(v->hi, r.hi);
  }
  for (uint32_t i = 0; i < s.exports.size(); ++i)
    v->exports.push_back({s.exports[i].record.address, v->keep(s.exports[i].record.name), i});
  std::sort(v->exports.begin(), v->exports.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  v->raw_lo = s.raw_lo;
  v->raw_hi = s.raw_lo + std::max<size_t>(s.exports.size(), 1);
  v->forward_export_addresses = s.protection.backend() == gate::Backend::Mprotect;
  fault::set_address_map(s, std::move(v));  // replaces the map a repaired plan outdated
}

}  // namespace matchmaker
}  // namespace subctx
