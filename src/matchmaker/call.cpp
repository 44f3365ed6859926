// request_call: find the export, check the signature, enter through the gate,
// and make the subcontext's output reach the client's stdout in order.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "fault/alt_stack.hpp"
#include "fault/deadline.hpp"
#include "fault/fault_handler.hpp"
#include "fault/signals.hpp"
#include "fault/syscalls.hpp"
#include "gate/gate.hpp"
#include "matchmaker/call_fault.hpp"
#include "matchmaker/enter.hpp"
#include "matchmaker/registry.hpp"

namespace subctx::detail {

void fault_reading(gate::Frame* f, fault::ProbeFault p, uint64_t address) {
  f->abort = gate::AbortRecord{};
  f->abort.kind = gate::AbortKind::Signal;
  f->abort.signal = p.signal;
  f->abort.code = p.code;
  f->abort.address = address;
}

bool probed_strlen(const char* s, size_t* len, gate::Frame* f) {
  constexpr uint64_t kPage = 4096;
  const auto lo = reinterpret_cast<uint64_t>(s);
  for (uint64_t at = lo;;) {
    const long r = subctx_probe_byte(reinterpret_cast<const void*>(at));
    if (r < 0) {
      fault_reading(f, fault::probe_fault(r), at);
      return false;
    }
    const uint64_t page_end = (at | (kPage - 1)) + 1;
    if (const void* z = std::memchr(reinterpret_cast<const void*>(at), 0, page_end - at)) {
      *len = static_cast<size_t>(static_cast<const char*>(z) - s);
      return true;
    }
    at = page_end;
  }
}

void publish_frame_for_imports(SubcontextState& s, gate::Frame* f) {
  static const uint64_t callback_entry = gate::select_callback_entry();
  f->callback_entry = callback_entry;
  f->state = &s;
  *reinterpret_cast<gate::Frame**>(s.import_slot) = f;
}

namespace {
// A frame for one call: its argument record and result slot are the frame's own.
void point_at_own_slots(gate::Frame& f) {
  f.batch_args = reinterpret_cast<uint64_t>(&f.ints);
  f.batch_results = reinterpret_cast<uint64_t>(&f.rax);
  f.batch_count = 1;
}
}  // namespace

bool flush_pending(SubcontextState& s, FILE* stream, long pending, gate::Frame* abandoned) {
  if (pending < 0) {
    fault_reading(abandoned, fault::probe_fault(pending), reinterpret_cast<uint64_t>(stream));
    return false;
  }
  gate::Frame f{};
  f.fn = s.fflush_fn;
  f.ints[0] = reinterpret_cast<uint64_t>(stream);
  point_at_own_slots(f);
  f.selector = abandoned->selector;
  f.deadline_ns = abandoned->deadline_ns;  // the call's deadline covers its output
  f.timeout_ms = abandoned->timeout_ms;
  if (enter(s, f)) return true;
  abandoned->abort = f.abort;
  return false;
}

namespace {

[[noreturn]] void throw_unmediated_thread(const SubcontextState& s) {
  throw Unsupported("cannot call into " + detail::subcontext_name(s) +
                    " on this thread: Syscall User Dispatch could not be turned on for it, and the subcontext's "
                    "descriptor numbers are translated only through it (docs/identity.md)");
}

}  // namespace

ResolvedExport resolve_export(const std::shared_ptr<SubcontextState>& state, std::string_view name,
                              const Signature& expected) {
  return ResolvedExport{state, resolve_index(state.get(), name, expected)};
}

uint64_t export_address(const SubcontextState& state, uint32_t index) { return state.exports[index].record.address; }

namespace {
// Calls by name (sc.call<Sig>("name", ...), sbc_request_call): the last
// names this thread looked up, by where the name lies (a literal at a call
// site, mostly).  Only a hint: a hit
// is one whose export in *this* subcontext has that very name (names are
// unique in an image), so a reused address or a state freed and another
// made where it was never gives a wrong export.
struct NameHint {
  const SubcontextState* state = nullptr;
  const char* name = nullptr;
  uint32_t index = 0;
};
constexpr size_t kNameHints = 4;  // direct-mapped by the name's address
__thread NameHint t_name_hints[kNameHints];

NameHint& hint_for(const char* name) { return t_name_hints[(reinterpret_cast<uintptr_t>(name) >> 3) % kNameHints]; }

bool hint_holds(const NameHint& h, const SubcontextState& s, std::string_view name) {
  if (h.state != &s || h.name != name.data() || h.index >= s.exports.size()) return false;
  const std::string& actual = s.exports[h.index].record.name;
  return actual.size() == name.size() && std::memcmp(actual.data(), name.data(), name.size()) == 0;
}

// The same for a C string (the C API), compared as far as the export's name
// and its terminator: no strlen of the caller's name first, and never a
// byte read past its NUL.
bool hint_holds(const NameHint& h, const SubcontextState& s, const char* name) {
  if (h.state != &s || h.name != name || h.index >= s.exports.size()) return false;
  // (Copied out: a char* may alias the string's own fields, which the
  // compiler would otherwise read again for every character.)
  const char* const actual = s.exports[h.index].record.name.data();
  const size_t n = s.exports[h.index].record.name.size();
  for (size_t i = 0; i < n; ++i)
    if (name[i] != actual[i]) return false;  // also stops at the caller's NUL (names hold none)
  return name[n] == '\0';
}
}  // namespace

uint32_t resolve_index(const SubcontextState* state, std::string_view name, const Signature& expected) {
  if (!state) throw NoSuchSubcontext("call on an empty Subcontext");
  const uint32_t index = matchmaker::find_export_index(*state, name);
  const ExportEntry& e = state->exports[index];
  if (!(e.signature == expected))
    throw SignatureMismatch("export \"" + e.record.name + "\" of " + state->path + " has signature " +
                            e.record.signature + "; called as " + expected.str());
  return index;
}

void throw_batch_size(size_t args, size_t results) {
  throw Error(Errc::InvalidArgument, "call_each: " + std::to_string(args) + " arguments but room for " +
                                         std::to_string(results) + " results: give one result slot per call");
}

void throw_empty_function() { throw NoSuchSubcontext("call through an empty subctx::Function"); }

namespace {

[[noreturn, gnu::cold]] void throw_call_from_handler(const SubcontextState& s) {
  throw Error(Errc::InvalidArgument,
              "call into " + detail::subcontext_name(s) +
                  " from a signal handler that interrupted a call of the same subcontext on this thread: it "
                  "would wait for itself; calls are not async-signal-safe, make them outside signal handlers");
}

[[noreturn, gnu::cold]] void throw_not_callable(const SubcontextState& s) {
  if (!s.mapped) detail::throw_unmapped(s);
  // A call from a callback after a nested call of this subcontext failed:
  // its memory is as that left it (the outermost call resets it).
  if (s.failure_in_callback) std::rethrow_exception(s.failure_in_callback);
  throw SubcontextPoisoned(s.poisoned);
}

// The call lock, taken for a call (std::lock_guard cannot tell a call), and
// the calls in progress counted.  A thread that holds it already may call
// in again only from a callback of the subcontext (docs/callbacks.md): the
// subcontext waits in an import then, not in the middle of its own code.
class LockedForCall {
 public:
  explicit LockedForCall(SubcontextState& s) : s_(s) {
    if (!s.call_lock.lock_for_call()) [[unlikely]] {
      if (!s.callbacks_out) throw_call_from_handler(s);
      reentered_ = true;
    }
    ++s.call_depth;
  }
  ~LockedForCall() {
    --s_.call_depth;
    if (!reentered_) s_.call_lock.unlock();
  }
  LockedForCall(const LockedForCall&) = delete;
  LockedForCall& operator=(const LockedForCall&) = delete;

 private:
  SubcontextState& s_;
  bool reentered_ = false;
};

// A call from a callback without a deadline of its own runs under the
// deadline of the call waiting in the callback (the thread's timer is still
// armed for it).
[[gnu::cold]] void inherit_deadline(const SubcontextState& s, gate::Frame& f) {
  if (const gate::Frame* outer = s.current_frame) {
    f.deadline_ns = outer->deadline_ns;
    f.timeout_ms = outer->timeout_ms;
  }
}

// The argument and result layout the gate's loop walks (gate.hpp).
static_assert(sizeof(CallArgs) == gate::kBatchArgsStride && offsetof(CallArgs, f64s) == gate::kBatchArgsF64s &&
              sizeof(CallResult) == gate::kBatchResultStride && offsetof(CallResult, xmm0) == 8);
static_assert(offsetof(gate::Frame, f64s) - offsetof(gate::Frame, ints) == gate::kBatchArgsF64s &&
              offsetof(gate::Frame, xmm0) - offsetof(gate::Frame, rax) == 8);

// Calls per gate entry in a batch: their records live on the heap for the
// batch (136 KiB at most), converted from the caller's arguments inside the
// protection window.  Where the thread pointer is switched by arch_prctl
// (no FSGSBASE, 3 us a switch on some VMs) this many calls share a switch.
constexpr size_t kBatchChunk = 1024;

// Everything a call does around entering the subcontext: the policy, the
// call mutex, the client's pending output, signals, the deadline, the
// protection window, the subcontext's own output, a fault's report and the
// dirty quota.  run(f) enters (once or more) inside the window and returns
// false when a call was abandoned (f.abort says why); *place, when given,
// says which call of a batch that was.
template <class Run>
void around_call(SubcontextState& s, uint32_t index, gate::Frame& f, matchmaker::BatchPlace* place, Run&& run) {
  matchmaker::ensure_call_allowed(s, index);
  f.fn = s.exports[index].record.address;
  fault::ensure_alt_stack();
  LockedForCall lock(s);
  if (!s.mapped || !s.poisoned.empty() || s.failure_in_callback) [[unlikely]]
    throw_not_callable(s);
  // (Reported by the outermost call: a nested one, from a callback, must not
  // reset the memory the call waiting in the callback runs on.)
  if (s.thread_fault_state.load(std::memory_order_acquire) == 2 && s.call_depth == 1) [[unlikely]]
    matchmaker::thread_failed(s, index);
  f.selector = fault::syscall_selector();
  // Its descriptor numbers are translated only where its system calls reach
  // the Matchmaker: never run it on a thread where they would not.
  if (s.fds.active && !f.selector) [[unlikely]]
    throw_unmediated_thread(s);
  // Client output written before the call comes out before the subcontext's.
  if (has_pending_output(stdout)) std::fflush(stdout);
  if (has_pending_output(stderr)) std::fflush(stderr);
  fault::CallSignalsUnblocked unblocked;
  fault::CallDeadline deadline(s.call_timeout_ms.load(std::memory_order_relaxed), f);
  if (s.callbacks_out && !f.deadline_ns) [[unlikely]]
    inherit_deadline(s, f);
  std::vector<FaultFrame> frames;
  bool completed;
  {
    // The subcontext's memory is open to this thread in this scope: the
    // stdio checks and the str copy read it.
    gate::ProtectionWindow window(s.protection);
    completed = run(f) && flush_subcontext_output(s, &f);
    if (!completed) frames = matchmaker::fault_frames(s, f.abort);  // reads the stack as the fault left it
  }
  deadline.disarm();
  // The call gave memory back (mprotect's plan was repaired when closing):
  // the fault handler's view of the subcontext follows.
  if (s.protection.take_repaired()) matchmaker::set_address_map(s);
  if (!completed) matchmaker::call_abandoned(s, index, f.abort, std::move(frames), place);  // throws
  if (s.max_dirty_pages.load(std::memory_order_relaxed)) matchmaker::check_dirty_quota(s, index, place);
}

}  // namespace

CallResult invoke(SubcontextState& s, uint32_t index, const CallArgs& args) {
  gate::Frame f;
  // The gate reads the arguments where the caller packed them (a batch
  // record's layout) and stores the result in the frame's own slot.
  f.batch_args = reinterpret_cast<uint64_t>(&args);
  f.batch_results = reinterpret_cast<uint64_t>(&f.rax);
  f.batch_count = 1;
  around_call(s, index, f, nullptr, [&](gate::Frame& frame) {
    if (!enter(s, frame)) return false;
    if (s.exports[index].signature.result == ValueType::Str && frame.rax && !s.protection.client_may_read()) {
      // The client cannot read the subcontext's memory after the call.
      thread_local std::string str_result;
      size_t len = 0;
      if (!probed_strlen(reinterpret_cast<const char*>(frame.rax), &len, &frame)) return false;
      str_result.assign(reinterpret_cast<const char*>(frame.rax), len);
      frame.rax = reinterpret_cast<uint64_t>(str_result.c_str());
    }
    return true;
  });
  return CallResult{f.rax, f.xmm0};
}

void invoke_batch(SubcontextState& s, uint32_t index, size_t count, const BatchIo& io) {
  // An empty batch calls nothing but is checked as a call is (policy,
  // unmapped, poisoned).
  const size_t chunk = std::min(count, kBatchChunk);
  std::vector<CallArgs> args(chunk);
  std::vector<CallResult> results(chunk);
  gate::Frame f;
  f.batch_args = reinterpret_cast<uint64_t>(args.data());
  f.batch_results = reinterpret_cast<uint64_t>(results.data());
  matchmaker::BatchPlace place{0, count};
  around_call(s, index, f, &place, [&](gate::Frame& frame) {
    // After the policy decided, before any call.
    if (s.exports[index].signature.result == ValueType::Str && io.unpack && !s.protection.client_may_read())
      throw Error(Errc::InvalidArgument,
                  "export \"" + s.exports[index].record.name + "\" of " + s.path +
                      " returns a string, which the client cannot read after the call (" +
                      protection_name(s.protection.backend()) +
                      " backend): batches of it are refused; call it one by one (a single call copies the string), or "
                      "map the image readable");
    for (size_t first = 0; first < count; first += chunk) {
      const size_t n = std::min(chunk, count - first);
      io.pack(io.in, first, n, args.data());
      frame.batch_count = n;
      const bool returned = enter(s, frame);
      const size_t done = std::min<size_t>(frame.batch_done, n);
      place.call = first + done;
      if (io.unpack) io.unpack(io.out, first, done, results.data());
      if (!returned) return false;
    }
    return true;
  });
}

}  // namespace subctx::detail

namespace subctx::matchmaker {

namespace {
// A name the hint did not hold: the index's answer, remembered.  (Out of
// line: the hits, the calls' common case, stay short.)
[[gnu::noinline]] uint32_t find_and_hint(const detail::SubcontextState& s, std::string_view name) {
  const uint32_t index = s.export_index.find(name);
  if (index == detail::ExportIndex::kNone) [[unlikely]]
    throw NoSuchExport("image " + s.path + " has no export \"" + std::string(name) + "\" (" +
                       std::to_string(s.exports.size()) + " exports; `subctx inspect " + s.path + "` lists them)");
  detail::hint_for(name.data()) = detail::NameHint{&s, name.data(), index};
  return index;
}
}  // namespace

uint32_t find_export_index(const detail::SubcontextState& s, const char* name) {
  const detail::NameHint& hint = detail::hint_for(name);
  if (detail::hint_holds(hint, s, name)) return hint.index;
  return find_and_hint(s, std::string_view(name));
}

uint32_t find_export_index(const detail::SubcontextState& s, std::string_view name) {
  const detail::NameHint& hint = detail::hint_for(name.data());
  if (detail::hint_holds(hint, s, name)) return hint.index;
  return find_and_hint(s, name);
}

}  // namespace subctx::matchmaker
