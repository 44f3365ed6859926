// Client signal handlers during calls (signals.hpp).
//
// The trampoline runs in signal context, possibly with the subcontext's
// thread pointer: it uses no libc, no TLS, no locks and no stack protector
// (this file is built with -fno-stack-protector: the canary lives in the TLS
// that the trampoline switches).
#include "fault/signals.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <ucontext.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <atomic>
#include <mutex>
#include <vector>

#include "fault/fault_handler.hpp"
#include "fault/raw_syscall.hpp"
#include "fault/signal_context.h"
#include "fault/signal_entry.hpp"
#include "fault/view.hpp"
#include "gate/gate.hpp"
#include "gate/pkru.hpp"
#include "subctx/visibility.h"  // the interposed functions below are exported

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace subctx::fault {

namespace {

constexpr int kMaxSignal = 65;

// The client's action per signal; null: not wrapped.  Replaced actions are
// never freed: a trampoline on another thread may still be reading one.
std::atomic<const struct sigaction*> g_client_action[kMaxSignal];
std::mutex g_sigaction_mutex;  // normal code only (sigaction/signal)
// Signals the fault handler took over (SIGSEGV, SIGBUS): the client's action
// is only recorded, in g_taken_action (never freed, as above).
std::atomic<bool> g_taken[kMaxSignal];
std::atomic<const struct sigaction*> g_taken_action[kMaxSignal];

// Every action the two tables above ever pointed to, each once: a client
// that switches between a few handlers (install, restore, install again)
// reuses them instead of leaving a copy behind per sigaction() call.
// Mutex held.
const struct sigaction* kept_action(const struct sigaction& a) {
  // Never destroyed: handlers may run during exit.
  static auto& kept = *new std::vector<const struct sigaction*>;
  // Equal as the kernel sees them: the restorer only where SA_RESTORER asks
  // for it, the mask's first 64 signals (the rest of glibc's 128 bytes may
  // be whatever the client's stack held).
  for (const struct sigaction* k : kept)
    if (k->sa_sigaction == a.sa_sigaction && k->sa_flags == a.sa_flags &&
        (!(a.sa_flags & 0x04000000 /* SA_RESTORER */) || k->sa_restorer == a.sa_restorer) &&
        std::memcmp(&k->sa_mask, &a.sa_mask, 8) == 0)
      return k;
  kept.push_back(new struct sigaction(a));
  return kept.back();
}
const struct sigaction g_default_action {};  // SIG_DFL is 0
bool g_fsgsbase = false;

bool wrappable(int sig) {
  // clang-format off
  switch (sig) {
    case SIGKILL: case SIGSTOP:
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS: case SIGABRT:
      return false;
    default:
      return sig > 0 && sig < kMaxSignal && !(sig >= 32 && sig < SIGRTMIN);  // glibc's internal signals
  }
  // clang-format on
}

bool is_custom(const struct sigaction& a) {
  return (a.sa_flags & SA_SIGINFO) ? a.sa_sigaction != nullptr : (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN);
}

// The kernel's struct sigaction (x86-64).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
constexpr unsigned long kSaRestorer = 0x04000000;

// sigaction() with the Matchmaker's restorer (subctx_sigreturn, signal_entry.S):
// glibc's would be a system call Syscall User Dispatch blocks when the
// handler returns into a subcontext.
int install_with_our_restorer(int sig, const struct sigaction& act, struct sigaction* old) {
  KernelSigaction k{}, prev{};
  k.handler = reinterpret_cast<void*>(act.sa_sigaction);
  k.flags = static_cast<unsigned long>(act.sa_flags) | kSaRestorer;
  k.restorer = reinterpret_cast<void*>(&subctx_sigreturn);
  std::memcpy(&k.mask, &act.sa_mask, 8);
  const long rc = raw::syscall4(SYS_rt_sigaction, sig, reinterpret_cast<long>(&k), reinterpret_cast<long>(&prev), 8);
  if (rc < 0) {
    errno = static_cast<int>(-rc);
    return -1;
  }
  if (old) {
    std::memset(old, 0, sizeof *old);
    old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(prev.handler);
    old->sa_flags = static_cast<int>(prev.flags);
    old->sa_restorer = reinterpret_cast<void (*)()>(prev.restorer);
    std::memcpy(&old->sa_mask, &prev.mask, 8);
  }
  return 0;
}

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
SigactionFn real_sigaction() {
  static SigactionFn fn = [] {
    auto f = reinterpret_cast<SigactionFn>(dlsym(RTLD_NEXT, "sigaction"));
    return f ? f : &__sigaction;
  }();
  return fn;
}

SUBCTX_SIGNAL_CONTEXT void write_fs(uint64_t v) {
  if (g_fsgsbase) {
    __asm__ volatile("wrfsbase %0" ::"r"(v) : "memory");
  } else {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(158L), "D"(0x1002L), "S"(v) : "rcx", "r11", "memory");
  }
}

SUBCTX_SIGNAL_CONTEXT void set_signal_mask(const uint64_t* mask) {
  long ret;
  register long sigset_size __asm__("r10") = 8;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(14L /* rt_sigprocmask */), "D"(2L /* SIG_SETMASK */), "S"(mask), "d"(0L), "r"(sigset_size)
                   : "rcx", "r11", "memory");
  (void)ret;
}

// Runs a client action for sig as the kernel would have: with the signal
// mask it asked for (the mask at the interruption, plus its sa_mask, plus
// the signal itself unless SA_NODEFER) and without any subcontext's key.
// The trampoline runs with every signal blocked, so nothing nests while it
// switches thread pointer and stack.
SUBCTX_SIGNAL_CONTEXT void run_action(const struct sigaction* a, uint32_t sig, uint32_t pkru, siginfo_t* info,
                                      void* uc) {
  uint64_t mask;
  __builtin_memcpy(&mask, &static_cast<const ucontext_t*>(uc)->uc_sigmask, 8);
  uint64_t extra;
  __builtin_memcpy(&extra, &a->sa_mask, 8);
  mask |= extra;
  if (!(a->sa_flags & SA_NODEFER)) mask |= uint64_t{1} << (sig - 1);
  set_signal_mask(&mask);
  if (pkru != gate::kNoPkru) gate::pkru::write(pkru);  // no subcontext key for client code
  if (a->sa_flags & SA_SIGINFO) a->sa_sigaction(static_cast<int>(sig), info, uc);
  else a->sa_handler(static_cast<int>(sig));
  if (pkru != gate::kNoPkru) gate::pkru::write(0);  // the trampoline's frame may carry a key
  const uint64_t all = ~uint64_t{0};
  set_signal_mask(&all);  // back to the trampoline's mask until sigreturn
}

// The two kinds of client action, called through subctx_call_on_stack:
// sig_pkru holds the signal and, in the high half, the PKRU value for
// client code (gate::kNoPkru: leave PKRU alone).
SUBCTX_SIGNAL_CONTEXT void run_client_handler(uint64_t sig_pkru, uint64_t info, uint64_t uc) noexcept {
  const auto sig = static_cast<uint32_t>(sig_pkru);
  if (const struct sigaction* a = g_client_action[sig].load(std::memory_order_acquire))
    run_action(a, sig, static_cast<uint32_t>(sig_pkru >> 32), reinterpret_cast<siginfo_t*>(info),
               reinterpret_cast<void*>(uc));
}

SUBCTX_SIGNAL_CONTEXT void run_taken_handler(uint64_t sig_pkru, uint64_t info, uint64_t uc) noexcept {
  const auto sig = static_cast<uint32_t>(sig_pkru);
  const struct sigaction* a = g_taken_action[sig].load(std::memory_order_acquire);
  if (!a || !is_custom(*a)) return;
  if (a->sa_flags & SA_RESETHAND) g_taken_action[sig].store(&g_default_action, std::memory_order_release);
  run_action(a, sig, static_cast<uint32_t>(sig_pkru >> 32), reinterpret_cast<siginfo_t*>(info),
             reinterpret_cast<void*>(uc));
}

using RunFn = void (*)(uint64_t, uint64_t, uint64_t) noexcept;

// The kernel's struct ucontext (glibc's ucontext_t is larger: a 128-byte
// signal set and room for the FPU state follow).
constexpr size_t kKernelUcontextSize = offsetof(ucontext_t, uc_sigmask) + 8;
// The FPU/xsave state's size, from its software-reserved bytes (the
// kernel's struct _fpx_sw_bytes at offset 464: magic1, extended_size).
SUBCTX_SIGNAL_CONTEXT size_t fpstate_size(const uint8_t* fp) {
  uint32_t magic, extended;
  __builtin_memcpy(&magic, fp + 464, 4);
  __builtin_memcpy(&extended, fp + 468, 4);
  return magic == 0x46505853u /* FP_XSTATE_MAGIC1 */ && extended >= 512 && extended <= (64u << 10) ? extended : 512;
}

// Delivers sig to client code through run: when the thread is inside a
// subcontext, with the client's thread pointer, and, when the signal came
// on the gate stack, on the client's stack below the gate's frame.  (On the
// client's stack already -- the gate between its two switches -- or on an
// alternate stack the handler asked for, it stays where the kernel put its
// frame.)
// Signal context: the subcontext the thread a client signal interrupted is
// inside a call of, or null.  Cheap where it is certain (view_from_stacks);
// else exact (a system call without FSGSBASE) where the thread may be in a
// call off the gate stack -- the gate between its two switches, subcontext
// code on a stack of its own -- and otherwise (client code: by far the most
// signals) from the thread pointer's first word, the client's own TCB.
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_for_delivery(const void* ucv) {
  bool sure;
  SubcontextView* s = view_from_stacks(ucv, &sure);
  if (sure) return s;
  const auto pc = static_cast<uint64_t>(static_cast<const ucontext_t*>(ucv)->uc_mcontext.gregs[REG_RIP]);
  const auto enter_a = reinterpret_cast<uint64_t>(&subctx_gate_enter_fsgsbase),
             enter_b = reinterpret_cast<uint64_t>(&subctx_gate_enter_syscall),
             gate_end = reinterpret_cast<uint64_t>(&subctx_gate_abort);  // next in gate.S
  const uint64_t gate_lo = enter_a < enter_b ? enter_a : enter_b;
  if (!(gate_lo < gate_end) || (pc >= gate_lo && pc < gate_end) || address_in_subcontext(pc))
    return view_of_current_thread();
  s = view_with_tcb(gate::thread_pointer());
  return s && s->current_frame ? s : nullptr;
}

SUBCTX_SIGNAL_CONTEXT void deliver(int sig, siginfo_t* info, void* ucv, uint32_t pkru, RunFn run) {
  const uint64_t sig_pkru = static_cast<uint32_t>(sig) | (uint64_t{pkru} << 32);
  SubcontextView* s = view_for_delivery(ucv);
  const uint64_t fs = s ? s->tcb : 0;  // inside a call: the subcontext's thread pointer
  gate::Frame* f = s ? s->current_frame : nullptr;
  if (!f) {  // in client code: nothing to switch
    run(sig_pkru, reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(ucv));
    return;
  }
  AllowSyscalls client_code(f);  // the client's handler makes system calls
  write_fs(f->client_fs);
  uint64_t sp;
  __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
  // Not on the gate stack: stay.  (On the alternate signal stack -- the
  // fault handler runs there -- the handler must stay too: a signal taken
  // after leaving it would put its frame at the top of the alternate stack,
  // over the frames still live there.)
  if (sp < s->stack_lo || sp >= s->stack_top) {
    run(sig_pkru, reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(ucv));
    write_fs(fs);
    return;
  }
  // The kernel's siginfo, ucontext and FPU state are on the gate stack,
  // which client code may not read (pkey): the handler gets copies on its
  // own stack, and what it changes in them is copied back.  (The registers
  // in the context are the subcontext's: its stack pointer points into
  // memory the client cannot read.)
  auto* uc = static_cast<ucontext_t*>(ucv);
  auto* fp = reinterpret_cast<uint8_t*>(uc->uc_mcontext.fpregs);
  const size_t fp_size = fp ? fpstate_size(fp) : 0;
  uint64_t at = f->client_sp - 256;
  at = (at - fp_size) & ~uint64_t{63};
  auto* fp_copy = reinterpret_cast<uint8_t*>(at);
  at = (at - sizeof(ucontext_t)) & ~uint64_t{63};
  auto* uc_copy = reinterpret_cast<ucontext_t*>(at);
  at = (at - sizeof(siginfo_t)) & ~uint64_t{63};
  auto* info_copy = reinterpret_cast<siginfo_t*>(at);
  zero_bytes(uc_copy, sizeof(ucontext_t));
  copy_bytes(uc_copy, uc, kKernelUcontextSize);
  if (fp) {
    copy_bytes(fp_copy, fp, fp_size);
    uc_copy->uc_mcontext.fpregs = reinterpret_cast<fpregset_t>(fp_copy);
  }
  copy_bytes(info_copy, info, sizeof(siginfo_t));
  subctx_call_on_stack(reinterpret_cast<void*>(run), sig_pkru, reinterpret_cast<uint64_t>(info_copy),
                       reinterpret_cast<uint64_t>(uc_copy), (at - 64) & ~uint64_t{15});
  copy_bytes(uc, uc_copy, kKernelUcontextSize);
  uc->uc_mcontext.fpregs = reinterpret_cast<fpregset_t>(fp);
  if (fp) copy_bytes(fp, fp_copy, fp_size);
  write_fs(fs);
}

}  // namespace
}  // namespace subctx::fault

// Entered through subctx_signal_entry (signal_entry.S) with the handler's PKRU.
extern "C" SUBCTX_SIGNAL_CONTEXT __attribute__((visibility("hidden"))) void subctx_signal_trampoline(
    int sig, siginfo_t* info, void* uc, uint32_t pkru) {
  subctx::fault::deliver(sig, info, uc, pkru, subctx::fault::run_client_handler);
}

namespace subctx::fault {
namespace {

// Installs act for sig behind the trampoline (or directly when it is not a
// custom handler); *previous gets the client's previous action.  Mutex held.
int set_action(int sig, const struct sigaction* act, struct sigaction* previous) {
  struct sigaction installed;
  const struct sigaction* wrapped_before = g_client_action[sig].load(std::memory_order_relaxed);
  int rc;
  if (act && is_custom(*act)) {
    const struct sigaction* copy = kept_action(*act);
    struct sigaction t = *act;
    t.sa_sigaction = subctx_signal_entry;
    t.sa_flags |= SA_SIGINFO;
    t.sa_flags &= ~SA_NODEFER;
    sigfillset(&t.sa_mask);  // the handler's own mask is set by run_client_handler
    g_client_action[sig].store(copy, std::memory_order_release);
    rc = install_with_our_restorer(sig, t, &installed);
    if (rc != 0) g_client_action[sig].store(wrapped_before, std::memory_order_release);
  } else {
    rc = real_sigaction()(sig, act, &installed);
    if (rc == 0 && act) g_client_action[sig].store(nullptr, std::memory_order_release);
  }
  if (rc == 0 && previous) *previous = wrapped_before ? *wrapped_before : installed;
  return rc;
}

// For a signal the fault handler owns: the client's action is recorded, not
// installed.  Mutex held.
int record_taken_action(int sig, const struct sigaction* act, struct sigaction* previous) {
  const struct sigaction* before = g_taken_action[sig].load(std::memory_order_relaxed);
  if (previous) {
    if (before) {
      *previous = *before;
    } else {
      std::memset(previous, 0, sizeof *previous);
      previous->sa_handler = SIG_DFL;
    }
  }
  if (act) g_taken_action[sig].store(kept_action(*act), std::memory_order_release);
  return 0;
}

}  // namespace

void take_over_signal(int sig, void (*handler)(int, siginfo_t*, void*), bool on_alt_stack) {
  std::lock_guard lock(g_sigaction_mutex);
  if (g_taken[sig].load(std::memory_order_relaxed)) return;
  struct sigaction ours {
  }, current{};
  ours.sa_sigaction = handler;
  // The alternate stack only for faults (a stack overflow leaves no other):
  // a handler that runs there must not leave it (see deliver()).
  // SA_RESTART: the client's own uses of the signal keep their restarts.
  ours.sa_flags = SA_SIGINFO | SA_RESTART | (on_alt_stack ? SA_ONSTACK : 0);
  sigfillset(&ours.sa_mask);  // chain_to_client sets the client's own mask
  if (real_sigaction()(sig, nullptr, &current) != 0) return;
  // A client handler already behind the trampoline is recorded as itself.
  if (const struct sigaction* wrapped = g_client_action[sig].load(std::memory_order_relaxed)) current = *wrapped;
  g_taken_action[sig].store(kept_action(current), std::memory_order_release);
  if (install_with_our_restorer(sig, ours, nullptr) == 0) g_taken[sig].store(true, std::memory_order_release);
}

SUBCTX_SIGNAL_CONTEXT uint64_t current_thread_pointer() {
  uint64_t v = 0;
  if (g_fsgsbase) {
    __asm__ volatile("rdfsbase %0" : "=r"(v));
  } else {
    subctx_allowed_syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, reinterpret_cast<long>(&v), 0, 0, 0, 0);
  }
  return v;
}

SUBCTX_SIGNAL_CONTEXT SubcontextView* view_from_stacks(const void* ucv, bool* sure) {
  *sure = true;
  if (g_fsgsbase) return view_of_current_thread();
  uint64_t own;
  __asm__ volatile("mov %%rsp, %0" : "=r"(own));
  const auto interrupted = static_cast<uint64_t>(static_cast<const ucontext_t*>(ucv)->uc_mcontext.gregs[REG_RSP]);
  // The guard below a gate stack counts: a call that overflowed faults there.
  if (SubcontextView* v = view_on_stacks(interrupted, own)) return v->current_frame ? v : nullptr;
  *sure = false;
  return nullptr;
}

SUBCTX_SIGNAL_CONTEXT SubcontextView* view_of_current_thread() {
  SubcontextView* v = nullptr;
  if (!g_fsgsbase) {
    // Without FSGSBASE the thread pointer costs a system call (arch_prctl,
    // microseconds on some guests), on every mediated system call: a
    // handler on a gate stack (SIGSYS has no alternate stack) says it first.
    uint64_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    v = view_on_stacks(~uint64_t{0}, sp);
  }
  if (!v) v = view_with_tcb(current_thread_pointer());
  return v && v->current_frame ? v : nullptr;
}

SUBCTX_SIGNAL_CONTEXT void abandon_call(SubcontextView& s, void* ucv, const gate::AbortRecord& why) {
  gate::Frame* f = s.current_frame;
  if (f->selector) *f->selector = 0;  // the Matchmaker's code runs next
  f->abort = why;
  write_fs(f->client_fs);
  auto* uc = static_cast<ucontext_t*>(ucv);
  greg_t* g = uc->uc_mcontext.gregs;
  g[REG_RIP] = reinterpret_cast<greg_t>(&subctx_gate_abort);
  g[REG_RSP] = static_cast<greg_t>(f->client_sp);
  // What sigreturn restores besides: the flags (no direction, alignment
  // check or trap flag a subcontext set: the ABI says DF is clear), the
  // FPU control state and the signal mask, as the client had them.
  g[REG_EFL] &= ~static_cast<greg_t>(0x400 | 0x40000 | 0x100);
  if (fpregset_t fp = uc->uc_mcontext.fpregs) {
    fp->mxcsr = f->client_mxcsr;
    fp->cwd = f->client_fpucw;
  }
  if (f->mask_changed) {
    __builtin_memcpy(&uc->uc_sigmask, &f->client_mask, 8);
  } else if (f->held_signals) {  // abandoned inside a system call the SIGSYS handler made
    uint64_t mask;
    __builtin_memcpy(&mask, &uc->uc_sigmask, 8);
    mask &= ~f->held_signals;
    __builtin_memcpy(&uc->uc_sigmask, &mask, 8);
  }
  f->held_signals = 0;
}

SUBCTX_SIGNAL_CONTEXT void chain_to_client(int sig, siginfo_t* info, void* uc, uint32_t pkru) {
  const struct sigaction* a = g_taken_action[sig].load(std::memory_order_acquire);
  const bool fault = info->si_code > 0;  // sent by the kernel, not by kill()
  if (!a || (!is_custom(*a) && (a->sa_handler == SIG_DFL || fault))) raw::die_of(sig);
  if (!is_custom(*a)) return;  // SIG_IGN of a signal someone sent
  deliver(sig, info, uc, pkru, run_taken_handler);
}

void prepare_signal_forwarding() {
  static std::once_flag once;
  std::call_once(once, [] {
    // fork(): the child must not inherit the lock of sigaction() held by a
    // thread it does not have (held briefly: the fork waits for it).
    pthread_atfork([] { g_sigaction_mutex.lock(); }, [] { g_sigaction_mutex.unlock(); },
                   [] { g_sigaction_mutex.unlock(); });
    g_fsgsbase = getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE;
  });
}

void install_signal_forwarding() {
  prepare_signal_forwarding();
  static std::once_flag once;
  std::call_once(once, [] {
    std::lock_guard lock(g_sigaction_mutex);
    for (int sig = 1; sig < kMaxSignal; ++sig) {
      if (!wrappable(sig)) continue;
      struct sigaction current;
      if (real_sigaction()(sig, nullptr, &current) != 0 || !is_custom(current)) continue;
      // Installed through sigaction() or signal() since the library was
      // loaded: behind the trampoline already, the client's action recorded.
      if (reinterpret_cast<void*>(current.sa_sigaction) == reinterpret_cast<void*>(&subctx_signal_entry)) continue;
      set_action(sig, &current, nullptr);
    }
  });
}

}  // namespace subctx::fault

namespace subctx::fault {

__thread bool t_blocks_call_signals = false;

namespace {
long kernel_sigprocmask(int how, const uint64_t* set, uint64_t* old) {
  return raw::syscall4(SYS_rt_sigprocmask, how, reinterpret_cast<long>(set), reinterpret_cast<long>(old), 8);
}
void note_mask(uint64_t mask) { t_blocks_call_signals = (mask & kCallSignals) != 0; }
}  // namespace

void note_thread_signal_mask() {
  uint64_t mask = 0;
  if (kernel_sigprocmask(SIG_BLOCK, nullptr, &mask) == 0) note_mask(mask);
}

void CallSignalsUnblocked::unblock() {
  const uint64_t unblock = kCallSignals;
  restore_ = kernel_sigprocmask(SIG_UNBLOCK, &unblock, &saved_) == 0;
}

void CallSignalsUnblocked::restore() { kernel_sigprocmask(SIG_SETMASK, &saved_, nullptr); }

}  // namespace subctx::fault

namespace {
// Runs a mask change through libc's function and notes whether the thread
// now blocks a signal calls need.
template <class Fn>
int change_mask(Fn real, int how, const sigset_t* set, sigset_t* old) {
  sigset_t before;
  const int rc = real(how, set, &before);
  if (rc != 0) return rc;
  if (old) *old = before;
  uint64_t was, change = 0;
  std::memcpy(&was, &before, 8);
  if (set) std::memcpy(&change, set, 8);
  const uint64_t now = !set ? was : how == SIG_BLOCK ? was | change : how == SIG_UNBLOCK ? was & ~change : change;
  subctx::fault::note_mask(now);
  return 0;
}

using MaskFn = int (*)(int, const sigset_t*, sigset_t*);
int raw_mask(int how, const sigset_t* set, sigset_t* old) {
  const long r = subctx::fault::raw::syscall4(SYS_rt_sigprocmask, how, reinterpret_cast<long>(set),
                                              reinterpret_cast<long>(old), 8);
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return 0;
}
MaskFn next_mask_fn(const char* name) {
  auto f = reinterpret_cast<MaskFn>(dlsym(RTLD_NEXT, name));
  return f ? f : raw_mask;
}
}  // namespace

// Interposed on libc's: whether a thread blocks a signal calls need is
// known without a system call per call.
extern "C" SUBCTX_API int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  static const MaskFn real = next_mask_fn("sigprocmask");
  return change_mask(real, how, set, old);
}

extern "C" SUBCTX_API int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  static const MaskFn real = next_mask_fn("pthread_sigmask");
  const int rc = change_mask(
      [](int h, const sigset_t* s, sigset_t* o) {
        const int e = real(h, s, o);  // returns the error, not -1 + errno
        if (e) errno = e;
        return e ? -1 : 0;
      },
      how, set, old);
  return rc == 0 ? 0 : errno;
}

// Interposed on libc's: the client's handlers go behind the trampoline.
extern "C" SUBCTX_API int sigaction(int sig, const struct sigaction* act, struct sigaction* oact) noexcept {
  using namespace subctx::fault;
  if (sig > 0 && sig < kMaxSignal && g_taken[sig].load(std::memory_order_acquire)) {
    std::lock_guard lock(g_sigaction_mutex);
    return record_taken_action(sig, act, oact);
  }
  if (!wrappable(sig)) return real_sigaction()(sig, act, oact);
  std::lock_guard lock(g_sigaction_mutex);
  return set_action(sig, act, oact);
}

extern "C" SUBCTX_API sighandler_t signal(int sig, sighandler_t handler) noexcept {
  // BSD semantics, as glibc's signal(): restart system calls, block sig
  // while its handler runs.
  struct sigaction act {
  }, old{};
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, sig);
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;  // one union with sa_sigaction in glibc's struct sigaction
}
