#include "matchmaker/call_fault.hpp"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>
#include <exception>

#include "fault/threads.hpp"
#include "matchmaker/backtrace.hpp"
#include "matchmaker/reset.hpp"
#include "matchmaker/symbolize.hpp"
#include "sys/io.hpp"

namespace subctx::matchmaker {

namespace {

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// What si_code says, for the signals that end a call.
const char* code_meaning(int sig, int code) {
  switch (sig) {
    case SIGSEGV:
      if (code == SEGV_MAPERR) return "address not mapped";
      if (code == SEGV_ACCERR) return "access not permitted";
      if (code == SEGV_PKUERR) return "protection key";
      break;
    case SIGBUS:
      if (code == BUS_ADRERR) return "no such address in the file: was the image file truncated?";
      if (code == BUS_ADRALN) return "misaligned address";
      break;
    case SIGFPE:
      if (code == FPE_INTDIV) return "integer division by zero";
      if (code == FPE_INTOVF) return "integer overflow";
      return "arithmetic exception";
    case SIGILL: return "illegal instruction";
    case SIGTRAP: return "breakpoint or trap";
    case SIGABRT: return "abort()";
  }
  return nullptr;
}

std::string import_name(const detail::SubcontextState& s, const gate::AbortRecord& why) {
  return why.value < s.imports.size() ? s.imports[why.value].name : "";
}

std::string describe_import(const detail::SubcontextState& s, const gate::AbortRecord& why) {
  if (why.value >= s.imports.size())
    return "called import #" + std::to_string(why.value) + ", which the image does not declare (it has " +
           std::to_string(s.imports.size()) + "): the image is damaged";
  const detail::ImportBinding& b = s.imports[why.value];
  const std::string name = "import \"" + b.name + "\" (" + b.signature_text + ")";
  if (static_cast<gate::ImportProblem>(why.code) == gate::ImportProblem::OtherThread)
    return "called " + name +
           ": imports run only on the thread of a call, not on threads its code starts (docs/threads.md)";
  if (static_cast<gate::ImportProblem>(why.code) == gate::ImportProblem::TooDeep)
    return "called " + name + " with " + std::to_string(SBC_MAX_CALLBACK_DEPTH) +
           " callbacks already running on this thread, the limit (SBC_MAX_CALLBACK_DEPTH)";
  return "called " + name + ", which this client has not bound: bind it before calling (Subcontext::bind, sbc_bind)";
}

std::string describe(const detail::SubcontextState& s, const gate::AbortRecord& why) {
  switch (why.kind) {
    case gate::AbortKind::Exit: return "called exit(" + std::to_string(why.status) + ")";
    case gate::AbortKind::Timeout:
      return "ran past its deadline of " + std::to_string(why.value) + " ms and was stopped";
    case gate::AbortKind::Import: return describe_import(s, why);
    case gate::AbortKind::Quota:
      return "went over the memory quota: " + std::to_string(why.value) +
             (why.code ? " dirty pages" : " bytes mapped") + " (limit " +
             std::to_string(why.code ? s.max_dirty_pages.load() : s.max_mapped_bytes.load()) + ")";
    default: break;
  }
  std::string text = "faulted: " + signal_name(why.signal);
  if (const char* meaning = code_meaning(why.signal, why.code)) text += std::string(" (") + meaning + ")";
  if (why.signal == SIGSEGV || why.signal == SIGBUS) {
    text += " at " + sys::hex(why.address);
    if (!why.pc) {  // a read the Matchmaker made after the call (call.cpp's probes)
      const uint64_t out = reinterpret_cast<uint64_t>(s.sub_stdout), err = reinterpret_cast<uint64_t>(s.sub_stderr);
      text += why.address == out   ? ", reading the subcontext's stdout stream after the call"
              : why.address == err ? ", reading the subcontext's stderr stream after the call"
                                   : ", reading the string the call returned";
    }
    if (why.signal == SIGSEGV && why.address < s.stack_lo && why.address >= s.stack_guard_lo)
      text += ", the guard page below the gate stack: the call overflowed its stack (" +
              std::to_string((s.stack_top - s.stack_lo) >> 10) + " KiB; SnapshotOptions::gate_stack_size)";
  }
  return text;
}

}  // namespace

namespace {

// The modules of the image (segments by origin), for naming frames.
std::shared_ptr<const matchmaker::Symbolizer> make_symbolizer(const detail::SubcontextState& s) {
  std::vector<matchmaker::Module> modules;
  for (const auto& seg : s.info.segments) {
    if (seg.origin.empty() || seg.origin[0] != '/') continue;
    auto it = std::find_if(modules.begin(), modules.end(), [&](const auto& m) { return m.path == seg.origin; });
    if (it == modules.end()) {
      // The executable's build-id is in the image: a rebuilt one names nothing.
      modules.push_back({seg.origin, seg.vaddr, seg.vaddr + seg.memsz,
                         seg.origin == s.info.creator_path ? s.info.build_id : std::string()});
    } else {
      it->lo = std::min(it->lo, seg.vaddr);
      it->hi = std::max(it->hi, seg.vaddr + seg.memsz);
    }
  }
  return std::make_shared<const matchmaker::Symbolizer>(std::move(modules));
}

}  // namespace

std::vector<FaultFrame> fault_frames(detail::SubcontextState& s, const gate::AbortRecord& why) {
  std::vector<FaultFrame> out;
  if (why.kind == gate::AbortKind::Quota || !why.pc) return out;
  matchmaker::FrameScanInput in;
  in.pc = why.pc;
  in.sp = why.sp;
  in.rbp = why.bp;
  in.stack_lo = s.stack_lo;
  in.stack_hi = s.stack_top;
  for (const auto& seg : s.info.segments)
    if (seg.prot & PROT_EXEC) in.code.push_back({seg.vaddr, seg.vaddr + seg.memsz});
  // Symbol tables are read at the first fault and kept (call mutex held).
  if (!s.symbolizer) s.symbolizer = make_symbolizer(s);
  const matchmaker::Symbolizer& names = *s.symbolizer;
  const std::vector<uint64_t> pcs = matchmaker::subcontext_frames(in);
  // Return addresses name the call before them (a noreturn call may end its function).
  for (size_t i = 0; i < pcs.size(); ++i) out.push_back({pcs[i], names.name(i ? pcs[i] - 1 : pcs[i])});
  return out;
}

namespace {

// The fault policy, applied by the outermost call of the subcontext on this
// thread; returns what to add to the message.  reason: why, for a poison.
std::string fault_policy_outcome(detail::SubcontextState& s, const std::string& reason, bool* reset_done) {
  const auto policy = static_cast<OnFault>(s.on_fault.load(std::memory_order_relaxed));
  const std::string name = detail::subcontext_name(s);
  // A truncated or overwritten image file faults calls where its pages went;
  // nothing can be reset onto it.
  if (const std::string changed = image_change(s); !changed.empty()) {
    if (policy == OnFault::Keep) return "; " + changed + "; the subcontext was kept as the fault left it";
    s.poisoned = name + " is poisoned: " + changed + "; unmap it and map the image again";
    return "; " + changed + "; the subcontext is poisoned";
  }
  if (policy == OnFault::Reset) {
    try {
      reset_state(s);
      *reset_done = true;
      return "; the subcontext was reset to its snapshot";
    } catch (const Error& e) {
      s.poisoned = name + " is poisoned: a reset after a fault failed: " + e.what();
      return "; resetting it failed, so it is poisoned: " + std::string(e.what());
    }
  }
  if (policy == OnFault::Poison) {
    s.poisoned = name + " is poisoned: " + reason + "; reset() it (sbc_reset) or unmap it";
    return "; the subcontext is poisoned until reset";
  }
  return "; the subcontext was kept as the fault left it";
}

// A poisoned subcontext runs none of its code: the threads its code started
// are stopped too (docs/threads.md).
std::string apply_fault_policy(detail::SubcontextState& s, const std::string& reason, bool* reset_done) {
  std::string outcome = fault_policy_outcome(s, reason, reset_done);
  if (!s.poisoned.empty()) fault::stop_threads(s);
  return outcome;
}

// A callback threw, or a call of this subcontext from a callback failed
// (docs/callbacks.md): the calls waiting in callbacks are abandoned one
// after another, and the outermost applies the fault policy; each call site
// gets the same exception.
[[noreturn]] void callback_failed(detail::SubcontextState& s, uint32_t index) {
  std::exception_ptr failure = s.failure_in_callback;
  if (s.call_depth <= 1) {
    s.failure_in_callback = nullptr;
    s.faults.fetch_add(1, std::memory_order_relaxed);
    bool reset_done = false;
    apply_fault_policy(s, "export \"" + s.exports[index].record.name + "\" was abandoned when its callback failed",
                       &reset_done);
  }
  std::rethrow_exception(failure);
}

}  // namespace

namespace {
// What a SubcontextFault carries of why, for a call of export index.
SubcontextFault::Details fault_details(const detail::SubcontextState& s, uint32_t index, const gate::AbortRecord& why) {
  SubcontextFault::Details d;
  d.signal = why.kind == gate::AbortKind::Signal ? why.signal : 0;
  d.exit_status = why.kind == gate::AbortKind::Exit ? why.status : -1;
  d.address = why.address;
  d.pc = why.pc;
  d.export_name = s.exports[index].record.name;
  return d;
}
}  // namespace

void call_abandoned(detail::SubcontextState& s, uint32_t index, const gate::AbortRecord& why,
                    std::vector<FaultFrame> frames, const BatchPlace* batch) {
  if (why.kind == gate::AbortKind::Callback) callback_failed(s, index);
  SubcontextFault::Details d = fault_details(s, index, why);
  if (why.kind == gate::AbortKind::Import) d.import_name = import_name(s, why);
  d.frames = std::move(frames);
  const std::string what = describe(s, why);
  std::string message = "export \"" + d.export_name + "\" of " + detail::subcontext_name(s) + " " + what;
  if (!d.frames.empty()) message += "; in " + d.frames.front().symbol;
  if (batch) {
    d.completed = batch->call;
    message += batch->call < batch->total
                   ? "; in call " + std::to_string(batch->call + 1) + " of a batch of " + std::to_string(batch->total) +
                         " (the results of the " + std::to_string(batch->call) + " before it are stored)"
                   : "; after all " + std::to_string(batch->total) + " calls of the batch returned (results stored)";
  }
  const bool nested = s.call_depth > 1;  // called from a callback of this subcontext
  if (nested) {
    message +=
        "; the call of this subcontext waiting in the callback fails too (the fault policy applies when the "
        "outermost call ends)";
  } else {
    s.faults.fetch_add(1, std::memory_order_relaxed);
    message += apply_fault_policy(s, "export \"" + d.export_name + "\" " + what, &d.reset_done);
  }
  std::exception_ptr e;
  switch (why.kind) {
    case gate::AbortKind::Timeout: e = std::make_exception_ptr(Timeout(message, std::move(d))); break;
    case gate::AbortKind::Quota: e = std::make_exception_ptr(QuotaExceeded(message, std::move(d))); break;
    default: e = std::make_exception_ptr(SubcontextFault(message, std::move(d))); break;
  }
  if (nested) s.failure_in_callback = e;
  std::rethrow_exception(e);
}

void thread_failed(detail::SubcontextState& s, uint32_t index) {
  const fault::ThreadFault& failed = s.thread_fault;
  const gate::AbortRecord why = failed.why;
  SubcontextFault::Details d = fault_details(s, index, why);
  if (why.pc) {
    if (!s.symbolizer) s.symbolizer = make_symbolizer(s);
    d.frames.push_back({why.pc, s.symbolizer->name(why.pc)});
  }
  const std::string what =
      why.kind == gate::AbortKind::Exit ? "called exit_group(" + std::to_string(why.status) + ")" : describe(s, why);
  std::string message = "a thread " + detail::subcontext_name(s) + "'s code started (thread id " +
                        std::to_string(failed.tid) + ") " + what;
  if (!d.frames.empty()) message += "; in " + d.frames.front().symbol;
  message += "; export \"" + d.export_name + "\" was not called";
  s.faults.fetch_add(1, std::memory_order_relaxed);
  s.thread_fault_state.store(0, std::memory_order_release);  // reported once
  message += apply_fault_policy(s, "a thread of its code " + what, &d.reset_done);
  throw SubcontextFault(message, std::move(d));
}

void check_dirty_quota(detail::SubcontextState& s, uint32_t index, const BatchPlace* batch) {
  const DirtyScan scan = scan_dirty(s);
  note_dirty(s, scan.pages);
  const uint64_t max = s.max_dirty_pages.load(std::memory_order_relaxed);
  if (!max || scan.pages <= max) return;
  gate::AbortRecord why;
  why.kind = gate::AbortKind::Quota;
  why.code = 1;  // dirty pages
  why.value = scan.pages;
  call_abandoned(s, index, why, {}, batch);
}

}  // namespace subctx::matchmaker
