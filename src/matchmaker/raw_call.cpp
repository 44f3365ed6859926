// Raw calls: a plain function pointer to an export.  The pointer is a
// raw-call address, inaccessible: calling it faults, the fault handler
// (fault/fault_handler.cpp) sends the thread to subctx_raw_entry (gate.S),
// which lands here with the argument registers; the call goes through the
// same checks and gate as any other and returns to the raw caller.
#include <signal.h>

#include <cstring>

#include "fault/fault_handler.hpp"
#include "matchmaker/registry.hpp"

namespace subctx::detail {

void* raw_address(const SubcontextState* state, std::string_view name, const Signature* expected) {
  if (!state) throw NoSuchSubcontext("raw lookup on an empty Subcontext");
  uint32_t index;
  if (expected) {
    index = resolve_index(state, name, *expected);
  } else {
    auto it = state->export_index.find(name);
    if (it == state->export_index.end())
      throw NoSuchExport("image " + state->path + " has no export \"" + std::string(name) + "\"");
    index = it->second;
  }
  // A denied export is refused here already; the call is checked again
  // (the policy may change in between).
  auto& s = const_cast<SubcontextState&>(*state);
  if (s.call_allowed_generation[index].load(std::memory_order_relaxed) !=
      matchmaker::g_policy_generation.load(std::memory_order_relaxed))
    matchmaker::check_call_policy(s, index);
  return reinterpret_cast<void*>(state->raw_lo + index);
}

}  // namespace subctx::detail

extern "C" subctx_raw_result subctx_raw_dispatch(uint64_t key, const uint64_t* regs) {
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
  } catch (const Error&) {
    v.kind = SBC_VIOLATION_STALE_CALL;
    v.detail = "the subcontext was unmapped";
    fault::violation_from_normal_code(v);
  }
  v.image_path = s->path.c_str();
  v.address = s->raw_lo + index;
  if (index >= s->exports.size()) {
    v.detail = "no export at this raw-call address";
    fault::violation_from_normal_code(v);
  }
  v.nearest_export = s->exports[index].record.name.c_str();
  detail::CallArgs args;
  for (int i = 0; i < kMaxIntArgs; ++i) args.ints[i] = regs[i];
  std::memcpy(args.f64s, regs + 6, sizeof(double) * kMaxF64Args);
  try {
    detail::CallResult r = detail::invoke(*s, index, args);
    return {r.rax, r.xmm0};
  } catch (const Error& e) {
    why = e.what();  // kept alive for the report
  }
  v.detail = why.c_str();
  fault::violation_from_normal_code(v);
}
