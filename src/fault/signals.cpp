// Client signal handlers during calls (signals.hpp).
//
// The trampoline runs in signal context, possibly with the subcontext's
// thread pointer: it uses no libc, no TLS, no locks and no stack protector
// (this file is built with -fno-stack-protector: the canary lives in the TLS
// that the trampoline switches).
#include "fault/signals.hpp"

#include <dlfcn.h>
#include <signal.h>
#include <sys/auxv.h>
#include <ucontext.h>

#include <cstring>

#include <atomic>
#include <mutex>

#include "gate/gate.hpp"
#include "matchmaker/subcontext_state.hpp"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

// Code that may run with the subcontext's thread pointer: no sanitizer
// instrumentation (it keeps per-thread state in TLS), no stack protector.
#define SUBCTX_SIGNAL_CONTEXT __attribute__((no_sanitize("address", "undefined"), no_stack_protector))

namespace subctx::fault {

namespace {

constexpr int kMaxSignal = 65;

struct ActiveSlot {
  std::atomic<uint64_t> tcb{0};
  std::atomic<detail::SubcontextState*> state{nullptr};
};
ActiveSlot g_active[kMaxActive];
std::atomic<int> g_active_used{0};  // slots ever used: a signal scans only these

// The client's action per signal; null: not wrapped.  Replaced actions are
// never freed: a trampoline on another thread may still be reading one.
std::atomic<const struct sigaction*> g_client_action[kMaxSignal];
std::mutex g_sigaction_mutex;  // normal code only (sigaction/signal)
bool g_fsgsbase = false;

bool wrappable(int sig) {
  switch (sig) {
    case SIGKILL: case SIGSTOP:
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS: case SIGABRT:
      return false;
    default:
      return sig > 0 && sig < kMaxSignal && !(sig >= 32 && sig < SIGRTMIN);  // glibc's internal signals
  }
}

bool is_custom(const struct sigaction& a) {
  return (a.sa_flags & SA_SIGINFO) ? a.sa_sigaction != nullptr
                                   : (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN);
}

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
SigactionFn real_sigaction() {
  static SigactionFn fn = [] {
    auto f = reinterpret_cast<SigactionFn>(dlsym(RTLD_NEXT, "sigaction"));
    return f ? f : &__sigaction;
  }();
  return fn;
}

SUBCTX_SIGNAL_CONTEXT uint64_t read_fs() {
  uint64_t v;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(v));  // glibc: the TCB's first word is its address
  return v;
}

SUBCTX_SIGNAL_CONTEXT void write_fs(uint64_t v) {
  if (g_fsgsbase) {
    __asm__ volatile("wrfsbase %0" ::"r"(v) : "memory");
  } else {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(158L), "D"(0x1002L), "S"(v) : "rcx", "r11", "memory");
  }
}

SUBCTX_SIGNAL_CONTEXT detail::SubcontextState* find_active(uint64_t tcb) {
  const int used = g_active_used.load(std::memory_order_acquire);
  for (int i = 0; i < used; ++i)
    if (g_active[i].tcb.load(std::memory_order_acquire) == tcb) return g_active[i].state.load(std::memory_order_relaxed);
  return nullptr;
}

SUBCTX_SIGNAL_CONTEXT void set_signal_mask(const uint64_t* mask) {
  long ret;
  register long sigset_size __asm__("r10") = 8;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(14L /* rt_sigprocmask */), "D"(2L /* SIG_SETMASK */), "S"(mask), "d"(0L),
                     "r"(sigset_size)
                   : "rcx", "r11", "memory");
  (void)ret;
}

// Runs the client's handler with the signal mask it asked for: the mask at
// the interruption, plus its sa_mask, plus the signal itself (unless
// SA_NODEFER).  The trampoline runs with every signal blocked, so nothing
// nests while it switches thread pointer and stack.
SUBCTX_SIGNAL_CONTEXT void run_client_handler(uint64_t sig, uint64_t info, uint64_t uc) {
  const struct sigaction* a = g_client_action[sig].load(std::memory_order_acquire);
  if (!a) return;
  uint64_t mask;
  std::memcpy(&mask, &reinterpret_cast<const ucontext_t*>(uc)->uc_sigmask, 8);
  uint64_t extra;
  std::memcpy(&extra, &a->sa_mask, 8);
  mask |= extra;
  if (!(a->sa_flags & SA_NODEFER)) mask |= uint64_t{1} << (sig - 1);
  set_signal_mask(&mask);
  if (a->sa_flags & SA_SIGINFO)
    a->sa_sigaction(static_cast<int>(sig), reinterpret_cast<siginfo_t*>(info), reinterpret_cast<void*>(uc));
  else
    a->sa_handler(static_cast<int>(sig));
  const uint64_t all = ~uint64_t{0};
  set_signal_mask(&all);  // back to the trampoline's mask until sigreturn
}

extern "C" SUBCTX_SIGNAL_CONTEXT void subctx_signal_trampoline(int sig, siginfo_t* info, void* uc) {
  const uint64_t fs = read_fs();
  detail::SubcontextState* s = find_active(fs);
  gate::Frame* f = s ? s->current_frame : nullptr;
  const struct sigaction* a = g_client_action[sig].load(std::memory_order_acquire);
  if (!f || !a) {  // in client code: nothing to switch
    run_client_handler(static_cast<uint64_t>(sig), reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(uc));
    return;
  }
  // Inside a subcontext: the client's thread pointer, and, when the signal
  // came on the gate stack, the client's stack below the gate's frame.  (On
  // the client's stack already -- the gate between its two switches -- or on
  // an alternate stack the handler asked for, it stays where the kernel put
  // its frame.)
  write_fs(f->client_fs);
  uint64_t sp;
  __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
  if (sp < s->stack_lo || sp >= s->stack_top) {
    run_client_handler(static_cast<uint64_t>(sig), reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(uc));
  } else {
    const uint64_t stack = (f->client_sp - 256) & ~uint64_t{15};
    subctx_call_on_stack(reinterpret_cast<void*>(&run_client_handler), static_cast<uint64_t>(sig),
                         reinterpret_cast<uint64_t>(info), reinterpret_cast<uint64_t>(uc), stack);
  }
  write_fs(fs);
}

// Installs act for sig behind the trampoline (or directly when it is not a
// custom handler); *previous gets the client's previous action.  Mutex held.
int set_action(int sig, const struct sigaction* act, struct sigaction* previous) {
  struct sigaction installed;
  const struct sigaction* wrapped_before = g_client_action[sig].load(std::memory_order_relaxed);
  int rc;
  if (act && is_custom(*act)) {
    auto* copy = new struct sigaction(*act);
    struct sigaction t = *act;
    t.sa_sigaction = subctx_signal_trampoline;
    t.sa_flags |= SA_SIGINFO;
    t.sa_flags &= ~SA_NODEFER;
    sigfillset(&t.sa_mask);  // the handler's own mask is set by run_client_handler
    g_client_action[sig].store(copy, std::memory_order_release);
    rc = real_sigaction()(sig, &t, &installed);
    if (rc != 0) g_client_action[sig].store(wrapped_before, std::memory_order_release);
  } else {
    rc = real_sigaction()(sig, act, &installed);
    if (rc == 0 && act) g_client_action[sig].store(nullptr, std::memory_order_release);
  }
  if (rc == 0 && previous) *previous = wrapped_before ? *wrapped_before : installed;
  return rc;
}

}  // namespace

void install_signal_forwarding() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_fsgsbase = getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE;
    std::lock_guard lock(g_sigaction_mutex);
    for (int sig = 1; sig < kMaxSignal; ++sig) {
      if (!wrappable(sig)) continue;
      struct sigaction current;
      if (real_sigaction()(sig, nullptr, &current) == 0 && is_custom(current)) set_action(sig, &current, nullptr);
    }
  });
}

// Called with the registry mutex held: one writer at a time.
bool register_active(uint64_t tcb, detail::SubcontextState* state) {
  for (int i = 0; i < kMaxActive; ++i) {
    ActiveSlot& slot = g_active[i];
    if (slot.tcb.load(std::memory_order_relaxed) != 0) continue;
    slot.state.store(state, std::memory_order_relaxed);
    slot.tcb.store(tcb, std::memory_order_release);
    if (g_active_used.load(std::memory_order_relaxed) <= i) g_active_used.store(i + 1, std::memory_order_release);
    return true;
  }
  return false;
}

void unregister_active(uint64_t tcb) {
  for (auto& slot : g_active)
    if (slot.tcb.load(std::memory_order_relaxed) == tcb) slot.tcb.store(0, std::memory_order_release);
}

}  // namespace subctx::fault

// Interposed on libc's: the client's handlers go behind the trampoline.
extern "C" int sigaction(int sig, const struct sigaction* act, struct sigaction* oact) noexcept {
  using namespace subctx::fault;
  if (!wrappable(sig)) return real_sigaction()(sig, act, oact);
  std::lock_guard lock(g_sigaction_mutex);
  return set_action(sig, act, oact);
}

extern "C" sighandler_t signal(int sig, sighandler_t handler) noexcept {
  // BSD semantics, as glibc's signal(): restart system calls, block sig
  // while its handler runs.
  struct sigaction act{}, old{};
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, sig);
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;  // one union with sa_sigaction in glibc's struct sigaction
}
