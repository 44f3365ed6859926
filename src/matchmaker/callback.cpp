// Callbacks (docs/callbacks.md): an import called by subcontext code reaches
// subctx_callback_dispatch through the callback entry (gate.S), on the
// client's stack with the client's thread pointer.  It finds what the client
// bound, runs it as client code (under pkey the subcontext's key closed,
// the client's signal mask, the client's system calls) and returns its
// result to the subcontext -- or abandons the call the import was called in
// when it cannot run or the callback threw.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "gate/gate.hpp"
#include "gate/pkru.hpp"
#include "matchmaker/enter.hpp"
#include "subctx/subctx.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace subctx::detail {

namespace {

// Callbacks running on this thread, over every subcontext, and the user
// pointer of the innermost (sbc_callback_user).
__thread uint32_t t_callback_depth = 0;
__thread void* t_callback_user = nullptr;

enum class Outcome { Returned, Abandon };

// The import call could not run: the call it was made in fails, reported
// where the subcontext called the import from.
Outcome import_failed(gate::Frame& f, const gate::CallbackRecord& r, gate::ImportProblem problem) {
  f.abort = gate::AbortRecord{};
  f.abort.kind = gate::AbortKind::Import;
  f.abort.code = static_cast<int32_t>(problem);
  f.abort.value = r.index;
  f.abort.pc = *reinterpret_cast<const uint64_t*>(r.sub_sp);  // the return address (the stub's call pushed it)
  f.abort.sp = r.sub_sp + 8;
  f.abort.bp = r.sub_bp;
  return Outcome::Abandon;
}

// While a callback runs: the subcontext waits in an import (calls from the
// callback enter below its stack pointer), and the depth and user pointer
// of this thread's callbacks.
class CallbackScope {
 public:
  CallbackScope(SubcontextState& s, const gate::CallbackRecord& r, void* user)
      : s_(s), saved_sp_(s.callback_sp), saved_user_(t_callback_user) {
    ++s.callbacks_out;
    s.callback_sp = r.sub_sp;
    ++t_callback_depth;
    t_callback_user = user;
  }
  ~CallbackScope() {
    --s_.callbacks_out;
    s_.callback_sp = saved_sp_;
    --t_callback_depth;
    t_callback_user = saved_user_;
  }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  SubcontextState& s_;
  uint64_t saved_sp_;
  void* saved_user_;
};

// The client's rights while its callback runs: under pkey the subcontext's
// key as outside calls (no access, or read-only for a readable map), and
// the client's signal mask where subcontext code changed the thread's.
// Under mprotect the memory stays open (docs/callbacks.md).
class ClientRights {
 public:
  ClientRights(const SubcontextState& s, const gate::Frame& f) : f_(f) {
    if (s.protection.backend() == gate::Backend::Pkey) {
      pkey_ = true;
      saved_pkru_ = gate::pkru::read();
      const int key = s.protection.pkey();
      const uint32_t closed = s.protection.readable() ? gate::pkru::allow(saved_pkru_, key) |
                                                            gate::pkru::bits(key, gate::pkru::kWriteDisable)
                                                      : gate::pkru::deny(saved_pkru_, key);
      gate::pkru::write(closed);
    }
    if (f.mask_changed) [[unlikely]]
      syscall(SYS_rt_sigprocmask, SIG_SETMASK, &f.client_mask, &subcontext_mask_, 8);
  }
  ~ClientRights() {
    if (f_.mask_changed) [[unlikely]]
      syscall(SYS_rt_sigprocmask, SIG_SETMASK, &subcontext_mask_, nullptr, 8);
    if (pkey_) gate::pkru::write(saved_pkru_);
  }
  ClientRights(const ClientRights&) = delete;
  ClientRights& operator=(const ClientRights&) = delete;

 private:
  const gate::Frame& f_;
  bool pkey_ = false;
  uint32_t saved_pkru_ = 0;
  uint64_t subcontext_mask_ = 0;
};

// str arguments the callback could not read (pkey, not readable): copied
// into client memory for the callback's duration.
struct StrCopies {
  CallArgs args;
  std::string strings[kMaxIntArgs];
};
bool copy_str_args(const ImportBinding& b, const gate::CallbackRecord& r, StrCopies& c, gate::Frame& f) {
  CallArgs& args = c.args;
  std::string* copies = c.strings;
  for (int i = 0; i < kMaxIntArgs; ++i) args.ints[i] = r.ints[i];
  for (int i = 0; i < kMaxF64Args; ++i) args.f64s[i] = r.f64s[i];
  for (int i = 0; i < kMaxIntArgs; ++i) {
    if (!(b.str_args & (1u << i)) || !r.ints[i]) continue;
    const char* str = reinterpret_cast<const char*>(r.ints[i]);
    size_t len = 0;
    if (!probed_strlen(str, &len, &f)) return false;
    copies[i].assign(str, len);
    args.ints[i] = reinterpret_cast<uint64_t>(copies[i].c_str());
  }
  return true;
}

bool needs_str_copies(const SubcontextState& s, const ImportBinding& b) {
  return b.str_args && s.protection.backend() == gate::Backend::Pkey && !s.protection.readable();
}

// Everything with a destructor lives here: the caller may leave for good.
Outcome run_callback(SubcontextState& s, gate::CallbackRecord& r) {
  gate::Frame& f = *r.frame;
  if (r.index >= s.imports.size()) return import_failed(f, r, gate::ImportProblem::NoSuchImport);
  const ImportBinding& b = s.imports[r.index];
  if (!b.fn) return import_failed(f, r, gate::ImportProblem::Unbound);
  if (t_callback_depth >= SBC_MAX_CALLBACK_DEPTH) return import_failed(f, r, gate::ImportProblem::TooDeep);
  CallbackScope scope(s, r, b.user);
  // What the subcontext printed before the import comes out before the callback's output.
  if (!flush_subcontext_output(s, &f)) return Outcome::Abandon;
  const void* args = &r;            // ints at 0, f64s at 48: a CallArgs' layout
  std::optional<StrCopies> copied;  // built only where the callback cannot read them
  if (needs_str_copies(s, b)) [[unlikely]] {
    if (!copy_str_args(b, r, copied.emplace(), f)) return Outcome::Abandon;
    args = &copied->args;
  }
  std::exception_ptr thrown;
  {
    ClientRights rights(s, f);
    try {
      subctx_call_with_registers(b.fn, args, &r.rax);
    } catch (...) {
      thrown = std::current_exception();
    }
    // The callback's output before the subcontext's that follows.
    if (has_pending_output(stdout)) std::fflush(stdout);
    if (has_pending_output(stderr)) std::fflush(stderr);
  }
  if (thrown) s.failure_in_callback = std::move(thrown);
  if (!s.failure_in_callback) return Outcome::Returned;
  f.abort = gate::AbortRecord{};
  f.abort.kind = gate::AbortKind::Callback;
  return Outcome::Abandon;
}

// Leaves the callback for the Matchmaker's code after the gate, as a
// signal handler's abandon does: the client's mask as before the call.
[[noreturn]] void abandon(gate::Frame& f) {
  if (f.mask_changed) syscall(SYS_rt_sigprocmask, SIG_SETMASK, &f.client_mask, nullptr, 8);
  f.held_signals = 0;
#if defined(__SANITIZE_ADDRESS__)
  __asan_handle_no_return();  // the frames left behind are not returned from
#endif
  subctx_callback_abandon(&f);
}

}  // namespace

}  // namespace subctx::detail

extern "C" __attribute__((visibility("hidden"))) void subctx_callback_dispatch(subctx::gate::CallbackRecord* r) {
  using namespace subctx::detail;
  subctx::gate::Frame& f = *r->frame;
  auto& s = *static_cast<SubcontextState*>(f.state);
  if (run_callback(s, *r) == Outcome::Returned) return;
  abandon(f);
}

extern "C" void* sbc_callback_user(void) { return subctx::detail::t_callback_user; }
