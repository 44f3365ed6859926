// request_call: find the export, check the signature, enter through the gate,
// and make the subcontext's output reach the client's stdout in order.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "fault/alt_stack.hpp"
#include "fault/deadline.hpp"
#include "fault/signals.hpp"
#include "fault/syscalls.hpp"
#include "gate/gate.hpp"
#include "matchmaker/call_fault.hpp"
#include "matchmaker/registry.hpp"

namespace subctx::detail {

namespace {

// glibc's FILE keeps pending output between _IO_write_base and _IO_write_ptr.
bool has_pending_output(FILE* f) { return f && f->_IO_write_ptr > f->_IO_write_base; }

// Returns false when a signal handler abandoned the call (f.abort says why).
bool enter(SubcontextState& s, gate::Frame& f) {
  f.tcb = s.tcb;
  f.stack_top = s.stack_top;
  f.selector = fault::syscall_selector();
  f.abort.kind = gate::AbortKind::None;
  s.current_frame = &f;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // visible to a handler on this thread
  // Chosen once: the CPU and kernel do not change under a running process.
  static const gate::EnterFn enter_fn = gate::select_enter();
  enter_fn(&f);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (f.abort.kind != gate::AbortKind::None) return false;  // the mask came back with the abandon
  // Subcontext code changed the thread's signal mask: the client's comes back.
  // (The kernel's 8-byte set, as the SIGSYS handler saved it; the same
  // mask as before the call, so the thread's noted mask stays right.)
  if (f.mask_changed) syscall(SYS_rt_sigprocmask, SIG_SETMASK, &f.client_mask, nullptr, 8);
  return true;
}

// Runs the subcontext's own fflush() on its stream, inside the subcontext;
// a fault there is the call's fault (*abandoned gets the record).
bool flush_subcontext_stream(SubcontextState& s, FILE* stream, gate::Frame* abandoned) {
  if (!s.fflush_fn || !has_pending_output(stream)) return true;
  gate::Frame f{};
  f.fn = s.fflush_fn;
  f.ints[0] = reinterpret_cast<uint64_t>(stream);
  f.deadline_ns = abandoned->deadline_ns;  // the call's deadline covers its output
  f.timeout_ms = abandoned->timeout_ms;
  if (enter(s, f)) return true;
  abandoned->abort = f.abort;
  return false;
}

}  // namespace

ResolvedExport resolve_export(const std::shared_ptr<SubcontextState>& state, std::string_view name,
                              const Signature& expected) {
  return ResolvedExport{state, resolve_index(state.get(), name, expected)};
}

uint64_t export_address(const SubcontextState& state, uint32_t index) { return state.exports[index].record.address; }

uint32_t resolve_index(const SubcontextState* state, std::string_view name, const Signature& expected) {
  if (!state) throw NoSuchSubcontext("call on an empty Subcontext");
  const uint32_t index = matchmaker::find_export_index(*state, name);
  const ExportEntry& e = state->exports[index];
  if (!(e.signature == expected))
    throw SignatureMismatch("export \"" + e.record.name + "\" of " + state->path + " has signature " +
                            e.record.signature + "; called as " + expected.str());
  return index;
}

void throw_empty_function() { throw NoSuchSubcontext("call through an empty subctx::Function"); }

CallResult invoke(SubcontextState& s, uint32_t index, const CallArgs& args) {
  matchmaker::ensure_call_allowed(s, index);
  gate::Frame f;
  f.fn = s.exports[index].record.address;
  for (int i = 0; i < kMaxIntArgs; ++i) f.ints[i] = args.ints[i];
  for (int i = 0; i < kMaxF64Args; ++i) f.f64s[i] = args.f64s[i];
  const uint64_t me = gate::thread_pointer();
  if (s.call_owner.load(std::memory_order_relaxed) == me)
    throw Error(Errc::InvalidArgument,
                "call into subcontext " + std::to_string(s.handle) + " (" + s.path +
                    ") from a signal handler that interrupted a call of the same subcontext on this thread: it "
                    "would wait for itself; calls are not async-signal-safe, make them outside signal handlers");
  fault::ensure_alt_stack();
  std::lock_guard lock(s.call_mutex);
  struct Owner {  // cleared before the mutex is released
    std::atomic<uint64_t>& owner;
    ~Owner() { owner.store(0, std::memory_order_relaxed); }
  } owner{s.call_owner};
  s.call_owner.store(me, std::memory_order_relaxed);
  if (!s.mapped)
    throw NoSuchSubcontext("subcontext " + std::to_string(s.handle) + " (" + s.path + ") was unmapped");
  if (!s.poisoned.empty()) throw SubcontextPoisoned(s.poisoned);
  // Client output written before the call comes out before the subcontext's.
  if (has_pending_output(stdout)) std::fflush(stdout);
  if (has_pending_output(stderr)) std::fflush(stderr);
  fault::CallSignalsUnblocked unblocked;
  fault::CallDeadline deadline(s.call_timeout_ms.load(std::memory_order_relaxed), f);
  std::vector<FaultFrame> frames;
  bool completed;
  {
    // The subcontext's memory is open to this thread in this scope: the
    // stdio checks and the str copy read it.
    gate::ProtectionWindow window(s.protection);
    completed = enter(s, f) && flush_subcontext_stream(s, s.sub_stdout, &f) &&
                flush_subcontext_stream(s, s.sub_stderr, &f);
    if (!completed) {
      frames = matchmaker::fault_frames(s, f.abort);  // reads the stack as the fault left it
    } else if (s.exports[index].signature.result == ValueType::Str && f.rax && !s.protection.client_may_read()) {
      // The client cannot read the subcontext's memory after the call.
      thread_local std::string str_result;
      str_result.assign(reinterpret_cast<const char*>(f.rax));
      f.rax = reinterpret_cast<uint64_t>(str_result.c_str());
    }
  }
  deadline.disarm();
  // The call gave memory back (mprotect's plan was repaired when closing):
  // the fault handler's view of the subcontext follows.
  if (s.protection.take_repaired()) matchmaker::publish_fault_view(s);
  if (!completed) matchmaker::call_abandoned(s, index, f.abort, std::move(frames));  // throws
  if (s.max_dirty_pages.load(std::memory_order_relaxed)) matchmaker::check_dirty_quota(s, index);
  return CallResult{f.rax, f.xmm0};
}

}  // namespace subctx::detail

namespace subctx::matchmaker {

uint32_t find_export_index(const detail::SubcontextState& s, std::string_view name) {
  auto it = s.export_index.find(name);
  if (it == s.export_index.end())
    throw NoSuchExport("image " + s.path + " has no export \"" + std::string(name) + "\" (" +
                       std::to_string(s.exports.size()) + " exports; `subctx inspect " + s.path + "` lists them)");
  return it->second;
}

}  // namespace subctx::matchmaker
