#include "gate/protection.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "gate/gate.hpp"
#include "gate/pkru.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"
#include "sys/proc_maps.hpp"

namespace subctx::gate {

using sys::hex;

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::None: return "none";
    case Backend::Mprotect: return "mprotect";
    case Backend::Pkey: return "pkey";
  }
  return "?";
}

bool pkeys_available(std::string* why) {
  static std::once_flag once;
  static int probe_errno = 0;
  std::call_once(once, [] {
    int key = pkey_alloc(0, 0);
    if (key < 0)
      probe_errno = errno ? errno : ENOSYS;
    else
      pkey_free(key);
  });
  if (probe_errno && why)
    *why = "pkey_alloc failed: " + sys::errno_text(probe_errno) +
           (probe_errno == EINVAL || probe_errno == ENOSPC ? " (this CPU or kernel has no protection keys free)" : "");
  return probe_errno == 0;
}

namespace {

// Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false
// positive) on "[" + std::string temporaries here.
std::string describe(const ProtectOp& op) {
  std::string s = "[";
  s += hex(op.lo);
  s += '-';
  s += hex(op.hi);
  s += ") to ";
  s += (op.prot & PROT_READ) ? 'r' : '-';
  s += (op.prot & PROT_WRITE) ? 'w' : '-';
  s += (op.prot & PROT_EXEC) ? 'x' : '-';
  return s;
}

bool reserve_gap(uint64_t lo, uint64_t hi, std::vector<sys::Mapping>& out) {
  void* want = reinterpret_cast<void*>(lo);
  void* p = mmap(want, hi - lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return false;
  sys::Mapping m(p, hi - lo);
  if (p != want) return false;  // kernels without NOREPLACE: m unmaps it
  out.push_back(std::move(m));
  return true;
}

}  // namespace

bool Protection::apply(const std::vector<ProtectOp>& ops, int* failed_errno) {
  bool ok = true;
  for (const ProtectOp& op : ops)
    if (mprotect(reinterpret_cast<void*>(op.lo), op.hi - op.lo, op.prot) != 0) {
      if (ok && failed_errno) *failed_errno = errno;
      ok = false;
    }
  return ok;
}

void Protection::setup_mprotect(const std::vector<Piece>& segments, const PlanOptions& options,
                                const std::string& path) {
  backend_ = Backend::Mprotect;
  options_ = options;
  std::vector<Piece> sorted = segments;
  std::sort(sorted.begin(), sorted.end(), [](const Piece& a, const Piece& b) { return a.lo < b.lo; });
  plan_ = build_protection_plan(sorted, options_,
                                [this](uint64_t lo, uint64_t hi) { return reserve_gap(lo, hi, reservations_); });
  int err = 0;
  if (!options_.exact && !apply(plan_.open, &err)) {
    // Merged permissions refused (a security module forbidding writable
    // code?): each segment gets its own permissions in calls instead.
    options_.exact = true;
    plan_.open = plan_ops(plan_.clusters, options_, true);
    plan_.close = plan_ops(plan_.clusters, options_, false);
  }
  if (!apply(plan_.close, &err))
    throw SystemError("cannot protect the memory of image " + path + ": mprotect: " + sys::errno_text(err));
}

void Protection::setup_pkey(const std::vector<Piece>& segments, int key, const std::string& path) {
  backend_ = Backend::Pkey;
  pkey_ = key;
  subctx_pkeys_in_use = 1;  // signal entries now open keys before using a stack
  for (const Piece& s : segments)
    if (pkey_mprotect(reinterpret_cast<void*>(s.lo), s.hi - s.lo, s.prot, key) != 0)
      throw SystemError("cannot tag segment [" + hex(s.lo) + "-" + hex(s.hi) + ") of image " + path +
                        " with protection key " + std::to_string(key) + ": " + sys::errno_text(errno));
}

ProtectionStats Protection::stats() const {
  ProtectionStats st;
  st.clusters = plan_.clusters.size();
  st.open_calls = backend_ == Backend::Mprotect ? plan_.open.size() : 0;
  st.close_calls = backend_ == Backend::Mprotect ? plan_.close.size() : 0;
  st.pkey = pkey_;
  return st;
}

// Subcontext code unmapped part of a cluster during a call (free() of a
// large block): the plan is rebuilt from what is still mapped, and the freed
// range stays free -- the client may map its own memory there, which no
// later mprotect of ours touches.
void Protection::repair() {
  std::vector<sys::MapEntry> maps;
  try {
    std::string text = sys::read_text_file("/proc/self/maps");
    if (!sys::parse_proc_maps(text, maps, 1u << 22, nullptr)) return;
  } catch (const Error&) {
    return;
  }
  std::vector<Piece> still;
  for (const Cluster& c : plan_.clusters)
    for (const Piece& p : c.pieces)
      for (const auto& m : maps) {
        const uint64_t lo = std::max<uint64_t>(p.lo, m.start), hi = std::min<uint64_t>(p.hi, m.end);
        if (lo < hi) still.push_back({lo, hi, p.prot, p.hole});
      }
  plan_ = build_protection_plan(still, options_, [](uint64_t, uint64_t) { return false; });
}

uint32_t Protection::open() {
  if (backend_ == Backend::Pkey) {
    const uint32_t saved = pkru::read();
    pkru::write(pkru::allow(saved, pkey_));
    return saved;
  }
  int err = 0;
  if (apply(plan_.open, &err)) return 0;
  if (err == ENOMEM) {
    repair();
    if (apply(plan_.open, &err)) return 0;
  }
  apply(plan_.close, nullptr);  // nothing stays open
  throw SystemError("cannot open the subcontext's memory for the call: mprotect " + describe(plan_.open.front()) +
                    "...: " + sys::errno_text(err));
}

void Protection::close(uint32_t saved_pkru) {
  if (backend_ == Backend::Pkey) {
    pkru::write(saved_pkru);
    return;
  }
  int err = 0;
  if (apply(plan_.close, &err)) return;
  if (err == ENOMEM) {
    repair();
    if (apply(plan_.close, &err)) return;
  }
  // Still failing: protect segment by segment, whatever exists.
  for (const Cluster& c : plan_.clusters)
    for (const Piece& p : c.pieces) mprotect(reinterpret_cast<void*>(p.lo), p.hi - p.lo, outside_prot(p, options_));
}

void Protection::reset() {
  reservations_.clear();
  if (pkey_ >= 0) pkey_free(pkey_);
  pkey_ = -1;
}

}  // namespace subctx::gate
