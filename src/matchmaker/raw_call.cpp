// Raw calls: a plain function pointer to an export.  The pointer is a
// raw-call address, inaccessible: calling it faults, the fault handler
// (fault/fault_handler.cpp) sends the thread to subctx_raw_entry (gate.S),
// which lands here with the argument registers; the call goes through the
// same checks and gate as any other and returns to the raw caller.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "fault/fault_handler.hpp"
#include "matchmaker/registry.hpp"

namespace subctx::detail {

void* raw_address(const SubcontextState* state, std::string_view name, const Signature* expected) {
  if (!state) throw NoSuchSubcontext("raw lookup on an empty Subcontext");
  const uint32_t index = expected ? resolve_index(state, name, *expected) : matchmaker::find_export_index(*state, name);
  // A denied export is refused here already; the call is checked again
  // (the policy may change in between).
  matchmaker::ensure_call_allowed(const_cast<SubcontextState&>(*state), index);
  return reinterpret_cast<void*>(state->raw_lo + index);
}

}  // namespace subctx::detail

namespace {

// Reports a refused raw call.  The texts are copied to this frame and the
// subcontext's state is let go first: the client's violation handler may
// leave by siglongjmp.
[[noreturn]] void refuse(sbc_violation v, std::shared_ptr<subctx::detail::SubcontextState>& s, const char* export_name,
                         const std::string& why) {
  char path[512] = "", name[160] = "", detail[512] = "";
  if (s) std::snprintf(path, sizeof path, "%s", s->path.c_str());
  if (export_name) std::snprintf(name, sizeof name, "%s", export_name);
  std::snprintf(detail, sizeof detail, "%s", why.c_str());
  s.reset();
  v.image_path = path[0] ? path : nullptr;
  v.nearest_export = name[0] ? name : nullptr;
  v.detail = detail;
  subctx::fault::violation_from_normal_code(v);
}

}  // namespace

// Never throws: the raw caller may be C code with no unwind information.
extern "C" subctx_raw_result subctx_raw_dispatch(uint64_t key, const uint64_t* regs) noexcept {
  using namespace subctx;
  const int handle = static_cast<int>(key >> 32);
  const uint32_t index = static_cast<uint32_t>(key);
  sbc_violation v{};
  v.kind = SBC_VIOLATION_DENIED_CALL;
  v.signal = SIGSEGV;
  v.subcontext = handle;
  v.pc = regs[15];  // the raw caller's return address (above the saved %rbp in subctx_raw_entry's frame)
  std::shared_ptr<detail::SubcontextState> s;
  std::string why;
  try {
    s = Matchmaker::instance().find(handle).state();
  } catch (...) {
  }
  if (!s) {
    v.kind = SBC_VIOLATION_STALE_CALL;
    refuse(v, s, nullptr, "the subcontext was unmapped");
  }
  v.address = s->raw_lo + index;
  if (index >= s->exports.size()) refuse(v, s, nullptr, "no export at this raw-call address");
  const std::string export_name = s->exports[index].record.name;
  detail::CallArgs args;
  for (int i = 0; i < kMaxIntArgs; ++i) args.ints[i] = regs[i];
  std::memcpy(args.f64s, regs + 6, sizeof(double) * kMaxF64Args);
  try {
    detail::CallResult r = detail::invoke(*s, index, args);
    return {r.rax, r.xmm0};
  } catch (const NoSuchSubcontext& e) {
    v.kind = SBC_VIOLATION_STALE_CALL;
    why = e.what();
  } catch (const SubcontextFault& e) {  // a raw call has no error channel
    v.kind = SBC_VIOLATION_CALL_FAULT;
    why = e.what();
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "the call failed with an exception that is not a std::exception";
  }
  refuse(v, s, export_name.c_str(), why);
}
