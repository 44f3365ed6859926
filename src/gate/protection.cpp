#include "gate/protection.hpp"

#include <sys/mman.h>
#include <sys/sysmacros.h>

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

bool pkeys_available(std::string* why) {
  static std::once_flag once;
  static int probe_errno = 0;
  std::call_once(once, [] {
    int key = pkey_alloc(0, 0);
    if (key < 0) probe_errno = errno ? errno : ENOSYS;
    else pkey_free(key);
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
  s += sys::perm_string(op.prot);
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

bool Protection::apply(const std::vector<ProtectOp>& ops, int* failed_errno, ProtectOp* failed_op) {
  bool ok = true;
  for (const ProtectOp& op : ops)
    if (mprotect(reinterpret_cast<void*>(op.lo), op.hi - op.lo, op.prot) != 0) {
      if (ok && failed_errno) *failed_errno = errno;
      if (ok && failed_op) *failed_op = op;
      ok = false;
    }
  return ok;
}

void Protection::setup_mprotect(const std::vector<Piece>& segments, const PlanOptions& options, const std::string& path,
                                uint64_t image_dev, uint64_t image_ino) {
  backend_ = Backend::Mprotect;
  options_ = options;
  image_dev_ = image_dev;
  image_ino_ = image_ino;
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
  ProtectOp op;
  if (!apply(plan_.close, &err, &op))
    throw SystemError("cannot protect the memory of image " + path + ": mprotect " + describe(op) + ": " +
                      sys::errno_text(err) +
                      (err == ENOMEM ? " (the process may be at its limit of mappings, sysctl vm.max_map_count)" : ""));
}

void Protection::setup_pkey(const std::vector<Piece>& segments, int key, const std::string& path) {
  backend_ = Backend::Pkey;
  pkey_ = key;
  subctx_pkeys_in_use = 1;  // signal entries now open keys before using a stack
  // One call per run of adjacent segments with the same permissions.
  std::vector<Piece> runs = segments;
  std::sort(runs.begin(), runs.end(), [](const Piece& a, const Piece& b) { return a.lo < b.lo; });
  size_t n = 0;
  for (const Piece& s : runs) {
    if (n && runs[n - 1].hi == s.lo && runs[n - 1].prot == s.prot) runs[n - 1].hi = s.hi;
    else runs[n++] = s;
  }
  runs.resize(n);
  for (const Piece& s : runs)
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
// large block): the plan is rebuilt from what is still the subcontext's --
// views of the image file at their own offsets, anonymous memory where the
// subcontext had some -- and what it gave up is never touched again, so the
// client may map its own memory there.  (A client *anonymous* mapping made
// by another thread, during the call, exactly where the subcontext had
// anonymous memory cannot be told apart: docs/protection.md.)
void Protection::repair() {
  sys::SelfMaps self;
  if (!sys::read_self_maps(&self)) return;
  const std::vector<sys::MapEntry>& maps = self.entries;
  std::vector<Piece> still;
  for (const Cluster& c : plan_.clusters)
    for (const Piece& p : c.pieces) {
      uint64_t kept = p.lo;  // [p.lo, kept) handled
      auto keep = [&](uint64_t lo, uint64_t hi) {
        if (lo > kept) released_.emplace_back(kept, lo);
        Piece q = p;
        q.lo = lo;
        q.hi = hi;
        q.file_offset = p.file_offset + (lo - p.lo);
        still.push_back(q);
        kept = hi;
      };
      for (const auto& m : maps) {
        const uint64_t lo = std::max<uint64_t>(p.lo, m.start), hi = std::min<uint64_t>(p.hi, m.end);
        if (lo >= hi) continue;
        const bool image_view = m.inode == image_ino_ && makedev(m.dev_major, m.dev_minor) == image_dev_ &&
                                m.offset + (lo - m.start) == p.file_offset + (lo - p.lo);
        const bool anonymous =
            (m.inode == 0 && m.dev_major == 0 && m.dev_minor == 0) ||
            (forwarder_ino_ && m.inode == forwarder_ino_ && makedev(m.dev_major, m.dev_minor) == forwarder_dev_);
        // A piece's file part must still be that view; its anonymous part
        // (and a reserved gap) anonymous memory.
        const uint64_t split = std::clamp(p.file_end, lo, hi);
        if (lo < split && image_view) keep(lo, split);
        if (split < hi && anonymous) keep(split, hi);
      }
      if (kept < p.hi) released_.emplace_back(kept, p.hi);
    }
  plan_ = build_protection_plan(still, options_, [](uint64_t, uint64_t) { return false; });
  repaired_ = true;
}

uint32_t Protection::open() {
  if (backend_ == Backend::Pkey) {
    const uint32_t saved = pkru::read();
    pkru::write(pkru::allow(saved, pkey_));
    return saved;
  }
  // A call from a callback of this subcontext (docs/callbacks.md): the
  // memory is open already, and must stay open when the inner call ends.
  if (open_depth_++) return 0;
  int err = 0;
  ProtectOp op;
  if (apply(plan_.open, &err, &op)) return 0;
  if (err == ENOMEM) {
    repair();
    if (apply(plan_.open, &err, &op)) return 0;
  }
  apply(plan_.close, nullptr);  // nothing stays open
  open_depth_ = 0;
  throw SystemError("cannot open the subcontext's memory for the call: mprotect " + describe(op) + ": " +
                    sys::errno_text(err) + "; the call was not made" +
                    (err == ENOMEM ? " (the process may be at its limit of mappings, sysctl vm.max_map_count)" : ""));
}

void Protection::close(uint32_t saved_pkru) {
  if (backend_ == Backend::Pkey) {
    pkru::write(saved_pkru);
    return;
  }
  if (open_depth_ && --open_depth_) return;
  if (made_executable_ && *made_executable_ && !options_.exact && !options_.all_code && !all_code_refused_) [[unlikely]]
    open_code_everywhere();
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

// Subcontext code made part of its image executable itself (a JIT): its own
// mprotect held during the call, but the merged plan would open that data
// read-write only (a stretch without code).  From the next call on every
// stretch opens executable -- tried here, before the close that follows
// closes whatever it opened: a kernel that refuses it (a security module
// against writable code) leaves the plan as it was.
void Protection::open_code_everywhere() {
  PlanOptions o = options_;
  o.all_code = true;
  std::vector<ProtectOp> open = plan_ops(plan_.clusters, o, true);
  if (!apply(open, nullptr)) {
    all_code_refused_ = true;
    return;
  }
  options_ = o;
  plan_.open = std::move(open);
}

void Protection::reset() {
  reservations_.clear();
  released_.clear();
  repaired_ = false;
  all_code_refused_ = false;
  if (pkey_ >= 0) pkey_free(pkey_);
  pkey_ = -1;
}

}  // namespace subctx::gate
