// e2e_protection_client: client signal handlers during a long call
// (test_protection_during_call.cpp).
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "../main_stack.hpp"
#include "protection_client.hpp"

namespace prot_client {

namespace {

constexpr uint64_t kMarker = 0x5c1e47c11e47ull;
thread_local uint64_t t_marker = 0;
e2e_client::StackRange g_main_stack;

// The main thread's stack, or its alternate signal stack (the Matchmaker's
// SIGSEGV/SIGBUS handler runs there, and a client handler it chains to for a
// signal sent during a call stays there): the client's memory either way,
// never the gate stack.
__attribute__((noinline)) bool on_main_stack() {
  char probe;
  const auto p = reinterpret_cast<uintptr_t>(&probe);
  stack_t alt{};
  const bool on_alt = sigaltstack(nullptr, &alt) == 0 && (alt.ss_flags & SS_ONSTACK);
  return g_main_stack.contains(p) || on_alt;
}

}  // namespace

// ---- 1. a signal handler that calls the subcontext it interrupted ---------

namespace {

Subcontext* g_sc = nullptr;
subctx::Function<int64_t(int64_t, int64_t)>* g_add_fn = nullptr;
int64_t (*g_add_raw)(int64_t, int64_t) = nullptr;

struct Reentry {
  int tried = 0, threw = 0, invalid_argument = 0, signal_handler = 0, wait_for_itself = 0;
  int64_t returned = 0;
  char message[512] = "";
};
Reentry g_by_call, g_by_function;
volatile sig_atomic_t g_reentry_runs = 0;
volatile sig_atomic_t g_raw_returned = 0;
volatile int64_t g_raw_result = 0;

template <typename F>
void try_reentry(Reentry& r, F&& call) {
  r.tried = 1;
  try {
    r.returned = call();
  } catch (const subctx::Error& e) {
    r.threw = 1;
    r.invalid_argument = e.code() == subctx::Errc::InvalidArgument;
    r.signal_handler = std::strstr(e.what(), "signal handler") != nullptr;
    r.wait_for_itself = std::strstr(e.what(), "would wait for itself") != nullptr;
    copy_text(r.message, sizeof r.message, e.what());
  } catch (...) {
    r.threw = 2;
  }
}

void reenter_by_call(int) {
  g_reentry_runs = g_reentry_runs + 1;
  try_reentry(g_by_call, [] { return g_sc->call<int64_t(int64_t, int64_t)>("pure_add", 2, 3); });
  try_reentry(g_by_function, [] { return (*g_add_fn)(20, 30); });
  let_the_call_return();
}

void reenter_by_raw(int) {
  g_reentry_runs = g_reentry_runs + 1;
  static const char msg[] = "handler makes the raw call\n";
  (void)!write(1, msg, sizeof msg - 1);
  sigjmp_buf jump;
  sigjmp_buf* volatile saved = t_jump;
  t_jump = &jump;
  if (sigsetjmp(jump, 1) == 0) {  // a violation handler may jump back here
    g_raw_result = g_add_raw(2, 3);
    g_raw_returned = 1;
  }
  t_jump = saved;
  let_the_call_return();
}

void print_reentry(const char* what, const Reentry& r) {
  say("%s: tried %d threw %d InvalidArgument %d \"signal handler\" %d \"would wait for itself\" %d\n", what, r.tried,
      r.threw, r.invalid_argument, r.signal_handler, r.wait_for_itself);
  if (r.threw != 1) say("%s: returned %" PRId64 "\n", what, r.returned);
  std::fprintf(stderr, "%s: %s\n", what, r.message);
}

}  // namespace

// SIGALRM, sent while the main thread is inside rendezvous, whose handler
// calls the same subcontext: through call<> and a Function handle (how:
// "call"), through a raw pointer ("raw"), or through a raw pointer with a
// violation handler that jumps back into the signal handler ("raw-handler").
int reentry_mode(const std::string& how, const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto add = sc.function<int64_t(int64_t, int64_t)>("pure_add");
  g_sc = &sc;
  g_add_fn = &add;
  g_add_raw = sc.raw<int64_t(int64_t, int64_t)>("pure_add");
  say("raw 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(g_add_raw), sc.handle());
  if (how == "raw-handler") Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  struct sigaction sa {};
  sa.sa_handler = how == "call" ? reenter_by_call : reenter_by_raw;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, nullptr) != 0) fail("sigaction");
  std::thread kicker(signal_when_inside, pthread_self(), SIGALRM);
  const int64_t r = long_call(sc);
  kicker.join();
  say("handler runs %d\n", static_cast<int>(g_reentry_runs));
  if (how == "call") {
    print_reentry("call", g_by_call);
    print_reentry("function", g_by_function);
  } else {
    say("raw returned %d\n", static_cast<int>(g_raw_returned));
    if (g_raw_returned) say("raw result %" PRId64 "\n", static_cast<int64_t>(g_raw_result));
    print_record("raw", reinterpret_cast<uintptr_t>(g_add_raw));
    say("raw detail: %s\n", g_rec.detail);
  }
  say("result %" PRId64 "\n", r);
  // Nothing is left held: the same calls work outside the handler.
  say("after: call %" PRId64 " function %" PRId64 " raw %" PRId64 "\n",
      sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3), add(20, 30), g_add_raw(4, 5));
  g_sc = nullptr;
  g_add_fn = nullptr;
  return 0;
}

// ---- 2. SIGSEGV sent with pthread_kill to a thread inside a call -----------

namespace {

struct Seen {
  volatile sig_atomic_t runs = 0, tls_ok = 0, stack_ok = 0, signo_ok = 0, tkill = 0;
  volatile sig_atomic_t fpregs = 0, mask_ok = 0;
  volatile uint32_t mxcsr = 0;
};
Seen g_seen_segv, g_seen_usr1, g_seen_alrm;

void see(Seen& s, int sig, const siginfo_t* info) {
  s.runs = s.runs + 1;
  s.tls_ok = t_marker == kMarker;
  s.stack_ok = on_main_stack();
  s.signo_ok = info->si_signo == sig;
  s.tkill = info->si_code == SI_TKILL;
}

void segv_sent(int sig, siginfo_t* info, void*) {
  see(g_seen_segv, sig, info);
  let_the_call_return();
}

}  // namespace

int sent_segv_mode(const std::string& backend, const std::string& image) {
  t_marker = kMarker;
  g_main_stack = e2e_client::find_main_stack();
  struct sigaction sa {};
  sa.sa_sigaction = segv_sent;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, nullptr) != 0) fail("sigaction");
  Subcontext sc = map(image, backend);
  std::thread kicker(signal_when_inside, pthread_self(), SIGSEGV);
  const int64_t r = long_call(sc);
  kicker.join();
  const Seen& s = g_seen_segv;
  say("handler runs %d client thread pointer %d client stack %d si_signo %d SI_TKILL %d\n", static_cast<int>(s.runs),
      static_cast<int>(s.tls_ok), static_cast<int>(s.stack_ok), static_cast<int>(s.signo_ok),
      static_cast<int>(s.tkill));
  say("result %" PRId64 "\n", r);
  say("after %" PRId64 "\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3));
  return 0;
}

// ---- 3. an SA_SIGINFO handler that reads its siginfo and ucontext ----------
// SIGUSR1, then SIGALRM, both from another thread, while the main thread is
// inside rendezvous with SIGUSR2 blocked.

namespace {

volatile sig_atomic_t g_stage = 0;

void read_context(int sig, siginfo_t* info, void* ucv) {
  Seen& s = sig == SIGUSR1 ? g_seen_usr1 : g_seen_alrm;
  see(s, sig, info);
  const auto* uc = static_cast<const ucontext_t*>(ucv);
  if (uc->uc_mcontext.fpregs) {
    s.fpregs = 1;
    s.mxcsr = uc->uc_mcontext.fpregs->mxcsr;
  }
  s.mask_ok = sigismember(&uc->uc_sigmask, SIGUSR2) == 1 && sigismember(&uc->uc_sigmask, sig) == 0;
  if (sig == SIGUSR1) g_stage = 1;
  else let_the_call_return();
}

void kick_twice(pthread_t to) {
  signal_when_inside(to, SIGUSR1);
  for (int i = 0; i < kMaxWaitMs && !g_stage; ++i) usleep(1000);
  pthread_kill(to, SIGALRM);
}

}  // namespace

int context_mode(const std::string& backend, const std::string& image) {
  t_marker = kMarker;
  g_main_stack = e2e_client::find_main_stack();
  Subcontext sc = map(image, backend);
  struct sigaction sa {};
  sa.sa_sigaction = read_context;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, nullptr) != 0 || sigaction(SIGALRM, &sa, nullptr) != 0) fail("sigaction");
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
  std::thread kicker(kick_twice, pthread_self());
  const int64_t r = long_call(sc);
  kicker.join();
  for (const auto& [name, s] :
       {std::pair<const char*, const Seen*>{"SIGUSR1", &g_seen_usr1}, {"SIGALRM", &g_seen_alrm}}) {
    say("%s: runs %d client thread pointer %d client stack %d si_signo %d SI_TKILL %d fpregs %d mxcsr-default %d "
        "uc_sigmask %d\n",
        name, static_cast<int>(s->runs), static_cast<int>(s->tls_ok), static_cast<int>(s->stack_ok),
        static_cast<int>(s->signo_ok), static_cast<int>(s->tkill), static_cast<int>(s->fpregs),
        (s->mxcsr & ~0x3fu) == 0x1f80u, static_cast<int>(s->mask_ok));
    std::fprintf(stderr, "%s: mxcsr %#x\n", name, static_cast<unsigned>(s->mxcsr));
  }
  say("result %" PRId64 "\n", r);
  say("after %" PRId64 "\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3));
  return 0;
}

}  // namespace prot_client
