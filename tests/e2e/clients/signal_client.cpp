// Client signal handlers that fire while a thread is inside a subcontext:
// SIGALRM from a 1 ms interval timer (installed with signal() after the
// Matchmaker) and SIGUSR1 sent by a second thread (installed with
// __sigaction before the Matchmaker, in a constructor that runs first: the
// Matchmaker wraps it at its first map).  Every handler run checks that
// it has the client's thread pointer (a thread_local marker) and, on the
// main thread, the client's stack; the long calls must return the right
// results.  Prints one line the test compares.  Linked with the static
// library so that the early constructor runs before the Matchmaker's.
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

#include <subctx/subctx.hpp>

#include "main_stack.hpp"

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace {

constexpr uint64_t kMarker = 0x5c1e47c11e47ull;
thread_local uint64_t t_marker = 0;
thread_local bool t_main = false;
std::atomic<int> g_alrm{0}, g_usr1{0}, g_bad{0}, g_bad_tls{0};
std::atomic<uintptr_t> g_bad_sp{0};
e2e_client::StackRange g_main_stack;

void check_context() {
  if (t_marker != kMarker) {  // not this thread's TLS: the subcontext's
    g_bad.fetch_add(1);
    g_bad_tls.fetch_add(1);
    return;
  }
  char probe;
  const auto p = reinterpret_cast<uintptr_t>(&probe);
  if (t_main && !g_main_stack.contains(p)) {
    g_bad.fetch_add(1);
    g_bad_sp.store(p);
  }
}

void on_alrm(int) {
  check_context();
  g_alrm.fetch_add(1);
}

void on_usr1(int, siginfo_t*, void*) {
  check_context();
  g_usr1.fetch_add(1);
}

__attribute__((constructor(101))) void install_early_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  __sigaction(SIGUSR1, &sa, nullptr);  // libc's own: the Matchmaker finds it at its first map
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  t_marker = kMarker;
  t_main = true;
  g_main_stack = e2e_client::find_main_stack();
  signal(SIGALRM, on_alrm);
  auto sc = subctx::Matchmaker::instance().request_map(argv[1]);
  auto lua = sc.function<int64_t(const char*)>("lua_int");
  auto sql = sc.function<int64_t(const char*)>("sql_int");

  const pthread_t main_thread = pthread_self();
  std::atomic<bool> done{false};
  // The kicker inherits SIGALRM blocked: the timer's signals go to the main
  // thread, never to a thread too young to have set its marker.
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, nullptr);
  std::thread kicker([&] {
    t_marker = kMarker;
    while (!done.load()) {
      pthread_kill(main_thread, SIGUSR1);
      usleep(700);
    }
  });
  pthread_sigmask(SIG_UNBLOCK, &alrm, nullptr);
  itimerval timer{{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &timer, nullptr);

  int wrong = 0, calls = 0;
  for (int i = 0; i < 6; ++i, calls += 2) {
    if (lua("fib(24)") != 46368) ++wrong;
    if (sql("SELECT sum(a) FROM t WHERE b LIKE '%7%'") <= 0) ++wrong;
  }
  timer = {};
  setitimer(ITIMER_REAL, &timer, nullptr);
  done.store(true);
  kicker.join();
  // The test checks the counts are non-zero and nothing was wrong.
  std::printf("calls %d wrong %d bad %d alrm>0 %d usr1>0 %d\n", calls, wrong, g_bad.load(), g_alrm.load() > 0,
              g_usr1.load() > 0);
  if (g_bad.load())  // what went wrong, for the test's failure message
    std::fprintf(stderr, "wrong thread pointer %d times; last stack outside [%#lx, %#lx): %#lx\n", g_bad_tls.load(),
                 static_cast<unsigned long>(g_main_stack.lo), static_cast<unsigned long>(g_main_stack.hi),
                 static_cast<unsigned long>(g_bad_sp.load()));
  return 0;
}
