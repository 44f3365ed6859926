// The pinned C API over the C++ Matchmaker.
#include <cstring>

#include "common/c_error.hpp"
#include "matchmaker/registry.hpp"
#include "subctx/subctx.h"
#include "subctx/subctx.hpp"

using subctx::Errc;
using subctx::Error;
using subctx::Matchmaker;
using subctx::detail::c_call;

extern "C" {

int sbc_init(void) {
  return c_call([] {
    Matchmaker::instance().init();
    return 0;
  });
}

int sbc_request_map(const char* image_path) {
  return c_call([&] {
    if (!image_path) throw Error(Errc::InvalidArgument, "sbc_request_map: image_path is NULL");
    return Matchmaker::instance().request_map(image_path).handle();
  });
}

}  // extern "C"

namespace {

using subctx::ValueType;
using subctx::detail::CallArgs;
using subctx::detail::CallResult;

// The subcontext a handle names, for the calls of the C API.  Handles are
// not reused, so each thread keeps the one it found last while the registry
// is unchanged (its generation): the registry's lookup takes its mutex and
// copies a shared_ptr, two atomic operations and about 100 instructions of a
// call (bench_icount).  An unmap changes the generation; one racing with a
// call is seen by the call lock ("was unmapped"), as before.  What a cache
// keeps alive after an unmap is bookkeeping: the memory, the descriptors and
// the image file went at unmap.
subctx::detail::SubcontextState& find_state(int sc) {
  struct Found {
    int handle = -1;
    uint64_t generation = 0;
    std::shared_ptr<subctx::detail::SubcontextState> state;
  };
  thread_local Found last;
  const uint64_t generation = subctx::matchmaker::g_registry_generation.load(std::memory_order_acquire);
  if (last.handle != sc || last.generation != generation || !last.state) [[unlikely]] {
    last.state = Matchmaker::instance().find(sc).state();
    last.handle = sc;
    last.generation = generation;
  }
  return *last.state;
}

// The export of sc named export_name, after checking that nargs matches.
uint32_t c_export(subctx::detail::SubcontextState& state, const char* fn, const char* export_name, size_t nargs,
                  const uint64_t* args, size_t rows) {
  if (!export_name) throw Error(Errc::InvalidArgument, std::string(fn) + ": export_name is NULL");
  if (nargs && rows && !args) throw Error(Errc::InvalidArgument, std::string(fn) + ": args is NULL");
  const uint32_t index = subctx::matchmaker::find_export_index(state, export_name);
  const auto& e = state.exports[index];
  if (nargs != e.signature.args.size())
    throw subctx::SignatureMismatch("export \"" + e.record.name + "\" has signature " + e.record.signature + " (" +
                                    std::to_string(e.signature.args.size()) + " arguments); called with " +
                                    std::to_string(nargs));
  return index;
}

// One row of C arguments into argument registers: f64s as bit patterns.
void pack_row(const subctx::Signature& sig, const uint64_t* row, CallArgs& ca) {
  ca.n_ints = ca.n_f64s = 0;
  for (size_t i = 0; i < sig.args.size(); ++i) {
    if (sig.args[i] == ValueType::F64) {
      double d;
      std::memcpy(&d, &row[i], 8);
      ca.f64s[ca.n_f64s++] = d;
    } else {
      ca.ints[ca.n_ints++] = row[i];
    }
  }
}

// A result as the C API gives it: i32/u32 extended, f64 as its bits.
uint64_t c_result(ValueType type, const CallResult& r) {
  switch (type) {
    case ValueType::Void: return 0;
    case ValueType::I32: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(r.rax)));
    case ValueType::U32: return static_cast<uint32_t>(r.rax);
    case ValueType::F64: {
      uint64_t bits;
      std::memcpy(&bits, &r.xmm0, 8);
      return bits;
    }
    default: return r.rax;
  }
}

struct BatchIn {
  const subctx::Signature* sig;
  const uint64_t* args;
  size_t nargs;
};
struct BatchOut {
  ValueType type;
  uint64_t* rets;
};

}  // namespace

extern "C" {

int sbc_request_call(int sc, const char* export_name, const uint64_t* args, size_t nargs, uint64_t* ret) {
  return c_call([&] {
    auto& state = find_state(sc);
    const uint32_t index = c_export(state, "sbc_request_call", export_name, nargs, args, 1);
    const subctx::Signature& sig = state.exports[index].signature;
    CallArgs ca;
    pack_row(sig, args, ca);
    const CallResult r = subctx::detail::invoke(state, index, ca);
    if (ret) *ret = c_result(sig.result, r);
    return 0;
  });
}

int sbc_request_call_batch(int sc, const char* export_name, const uint64_t* args, size_t nargs, size_t ncalls,
                           uint64_t* rets, size_t* completed) {
  if (completed) *completed = 0;
  return c_call([&] {
    auto& state = find_state(sc);
    const uint32_t index = c_export(state, "sbc_request_call_batch", export_name, nargs, args, ncalls);
    const subctx::Signature& sig = state.exports[index].signature;
    BatchIn in{&sig, args, nargs};
    BatchOut out{sig.result, rets};
    subctx::detail::BatchIo io;
    io.in = &in;
    io.out = &out;
    io.pack = [](const void* p, size_t first, size_t n, CallArgs* ca) {
      const auto* b = static_cast<const BatchIn*>(p);
      for (size_t i = 0; i < n; ++i) pack_row(*b->sig, b->args + (first + i) * b->nargs, ca[i]);
    };
    if (rets)
      io.unpack = [](void* p, size_t first, size_t n, const CallResult* r) {
        auto* b = static_cast<BatchOut*>(p);
        for (size_t i = 0; i < n; ++i) b->rets[first + i] = c_result(b->type, r[i]);
      };
    try {
      subctx::detail::invoke_batch(state, index, ncalls, io);
    } catch (const subctx::SubcontextFault& e) {
      if (completed) *completed = e.completed();
      throw;
    }
    if (completed) *completed = ncalls;
    return 0;
  });
}

int sbc_request_map_with(const char* image_path, int protection, unsigned flags) {
  return c_call([&] {
    if (!image_path) throw Error(Errc::InvalidArgument, "sbc_request_map_with: image_path is NULL");
    if (protection < SBC_PROTECT_AUTO || protection > SBC_PROTECT_PKEY)
      throw Error(Errc::InvalidArgument, "sbc_request_map_with: unknown protection " + std::to_string(protection) +
                                             " (SBC_PROTECT_AUTO, _NONE, _MPROTECT or _PKEY)");
    if (flags & ~unsigned{SBC_MAP_READABLE | SBC_MAP_EXACT_PERMISSIONS | SBC_MAP_UNISOLATED})
      throw Error(Errc::InvalidArgument, "sbc_request_map_with: unknown flags " + std::to_string(flags));
    subctx::MapOptions o;
    o.protection = static_cast<subctx::Protection>(protection);
    o.readable = flags & SBC_MAP_READABLE;
    o.exact_permissions = flags & SBC_MAP_EXACT_PERMISSIONS;
    o.unisolated = flags & SBC_MAP_UNISOLATED;
    return Matchmaker::instance().request_map(image_path, o).handle();
  });
}

int sbc_protection(int sc) {
  return c_call([&] { return static_cast<int>(Matchmaker::instance().find(sc).protection().backend); });
}

int sbc_lookup(int sc, const char* export_name, void** fn) {
  return c_call([&] {
    if (!export_name || !fn) throw Error(Errc::InvalidArgument, "sbc_lookup: export_name or fn is NULL");
    subctx::Subcontext s = Matchmaker::instance().find(sc);
    *fn = subctx::detail::raw_address(s.state().get(), export_name, nullptr);
    return 0;
  });
}

int sbc_set_violation_handler(sbc_violation_handler handler, void* user) {
  Matchmaker::instance().set_violation_handler(handler, user);
  return 0;
}

int sbc_set_on_fault(int sc, int policy) {
  return c_call([&] {
    if (policy < SBC_ON_FAULT_RESET || policy > SBC_ON_FAULT_KEEP)
      throw Error(Errc::InvalidArgument, "sbc_set_on_fault: unknown policy " + std::to_string(policy) +
                                             " (SBC_ON_FAULT_RESET, _POISON or _KEEP)");
    Matchmaker::instance().find(sc).set_on_fault(static_cast<subctx::OnFault>(policy));
    return 0;
  });
}

int sbc_set_call_timeout(int sc, uint32_t milliseconds) {
  return c_call([&] {
    Matchmaker::instance().find(sc).set_call_timeout(milliseconds);
    return 0;
  });
}

int sbc_reset(int sc) {
  return c_call([&] {
    Matchmaker::instance().find(sc).reset();
    return 0;
  });
}

int sbc_memory(int sc, sbc_memory_info* info) {
  return c_call([&] {
    if (!info) throw Error(Errc::InvalidArgument, "sbc_memory: info is NULL");
    const subctx::MemoryInfo m = Matchmaker::instance().find(sc).memory();
    *info = {m.dirty_pages,           m.peak_dirty_pages,       m.mapped_bytes, m.peak_mapped_bytes,
             m.quota.max_dirty_pages, m.quota.max_mapped_bytes, m.faults,       m.resets};
    return 0;
  });
}

int sbc_set_quota(int sc, uint64_t max_dirty_pages, uint64_t max_mapped_bytes) {
  return c_call([&] {
    Matchmaker::instance().find(sc).set_quota({max_dirty_pages, max_mapped_bytes});
    return 0;
  });
}

int sbc_grant_fd(int sc, int fd) {
  return c_call([&] { return Matchmaker::instance().find(sc).grant_fd(fd); });
}

int sbc_revoke_fd(int sc, int number) {
  return c_call([&] {
    Matchmaker::instance().find(sc).revoke_fd(number);
    return 0;
  });
}

int sbc_claim_fd(int sc, int number) {
  return c_call([&] { return Matchmaker::instance().find(sc).claim_fd(number); });
}

int sbc_unmap(int sc) {
  return c_call([&] {
    Matchmaker::instance().unmap(sc);
    return 0;
  });
}

void sbc_finalize(void) { Matchmaker::instance().finalize(); }

int sbc_set_limit(int limit, uint64_t value) {
  return c_call([&] {
    subctx::Limits l = Matchmaker::instance().limits();
    switch (limit) {
      case SBC_LIMIT_SUBCONTEXTS: l.subcontexts = value; break;
      case SBC_LIMIT_IMAGE_SIZE: l.image_size = value; break;
      case SBC_LIMIT_EXPORTS: l.exports = value; break;
      case SBC_LIMIT_SEGMENTS: l.segments = value; break;
      default: throw Error(Errc::InvalidArgument, "unknown limit " + std::to_string(limit));
    }
    Matchmaker::instance().set_limits(l);
    return 0;
  });
}

int sbc_get_limit(int limit, uint64_t* value) {
  return c_call([&] {
    if (!value) throw Error(Errc::InvalidArgument, "sbc_get_limit: value is NULL");
    subctx::Limits l = Matchmaker::instance().limits();
    switch (limit) {
      case SBC_LIMIT_SUBCONTEXTS: *value = l.subcontexts; break;
      case SBC_LIMIT_IMAGE_SIZE: *value = l.image_size; break;
      case SBC_LIMIT_EXPORTS: *value = l.exports; break;
      case SBC_LIMIT_SEGMENTS: *value = l.segments; break;
      default: throw Error(Errc::InvalidArgument, "unknown limit " + std::to_string(limit));
    }
    return 0;
  });
}

int sbc_set_policy(const char* policy_text) {
  return c_call([&] {
    if (policy_text) Matchmaker::instance().set_policy(policy_text);
    else Matchmaker::instance().clear_policy();
    return 0;
  });
}

int sbc_load_policy(const char* path) {
  return c_call([&] {
    if (!path) throw Error(Errc::InvalidArgument, "sbc_load_policy: path is NULL");
    Matchmaker::instance().load_policy(path);
    return 0;
  });
}

int sbc_export_signature(int sc, const char* export_name, char* buf, size_t size) {
  return c_call([&] {
    if (!export_name || !buf || !size) throw Error(Errc::InvalidArgument, "sbc_export_signature: bad arguments");
    subctx::Subcontext s = Matchmaker::instance().find(sc);
    const uint32_t index = subctx::matchmaker::find_export_index(*s.state(), export_name);
    const std::string& sig = s.state()->exports[index].record.signature;
    if (sig.size() + 1 > size) throw Error(Errc::InvalidArgument, "sbc_export_signature: buffer too small");
    std::memcpy(buf, sig.c_str(), sig.size() + 1);
    return 0;
  });
}

}  // extern "C"
