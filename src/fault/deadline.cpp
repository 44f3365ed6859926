#include "fault/deadline.hpp"

#include <signal.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <pthread.h>

#include <atomic>
#include <mutex>

#include "fault/raw_syscall.hpp"
#include "fault/signal_context.h"
#include "fault/signal_entry.hpp"
#include "fault/signals.hpp"
#include "fault/threads.hpp"
#include "fault/view.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::fault {

namespace {

// Marks the expiries of our timers (sigev_value), told apart from the
// client's own use of the signal.
char g_deadline_marker;

struct ThreadTimer {
  timer_t id{};
  bool made = false;
  ~ThreadTimer() {
    if (made) timer_delete(id);
  }
};
thread_local ThreadTimer t_timer;

SUBCTX_SIGNAL_CONTEXT uint64_t monotonic_ns() {
  struct timespec ts {};
  raw::syscall4(SYS_clock_gettime, CLOCK_MONOTONIC, reinterpret_cast<long>(&ts), 0, 0);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t now_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void forget_timer_in_child() { t_timer.made = false; }  // fork: timers are not inherited

void make_timer() {
  install_deadline_handler();  // in place before any timer can fire
  struct sigevent ev {};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev._sigev_un._tid = gettid();
  ev.sigev_signo = deadline_signal();
  ev.sigev_value.sival_ptr = &g_deadline_marker;
  if (timer_create(CLOCK_MONOTONIC, &ev, &t_timer.id) != 0)
    throw SystemError("cannot create the timer for call deadlines: " + sys::errno_text(errno));
  t_timer.made = true;
}

}  // namespace

int deadline_signal() { return SIGRTMAX; }

void install_deadline_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    take_over_signal(deadline_signal(), subctx_deadline_entry);
    pthread_atfork(nullptr, nullptr, forget_timer_in_child);
  });
}

void CallDeadline::arm(uint32_t timeout_ms, gate::Frame& frame) {
  if (!t_timer.made) make_timer();
  frame.deadline_ns = now_ns() + uint64_t{timeout_ms} * 1000000u;
  struct itimerspec when {};
  when.it_value.tv_sec = timeout_ms / 1000;
  when.it_value.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000;
  // Past the deadline the call is stopped; while the handler waits for the
  // thread to come back into subcontext code, expiries repeat.
  when.it_interval.tv_nsec = 10 * 1000000;
  // A call from a client signal handler during another call: the outer
  // deadline is put back by disarm().
  if (timer_settime(t_timer.id, 0, &when, &previous_) != 0)
    throw SystemError("cannot arm the call deadline timer: " + sys::errno_text(errno));
  armed_ = true;
}

void CallDeadline::disarm_slow() {
  armed_ = false;
  timer_settime(t_timer.id, 0, &previous_, nullptr);
}

}  // namespace subctx::fault

// Entered through subctx_deadline_entry (signal_entry.S) with the handler's PKRU.
extern "C" SUBCTX_SIGNAL_CONTEXT __attribute__((visibility("hidden"))) void subctx_deadline_handler(
    int sig, siginfo_t* info, void* ucv, uint32_t pkru) {
  using namespace subctx;
  using namespace subctx::fault;
  const bool ours = info->si_code == SI_TIMER && info->si_value.sival_ptr == &g_deadline_marker;
  // A thread subcontext code started (by thread id: its registers may pose
  // as a call's): the signal stops it (stop_threads); it has no client side.
  if (SubcontextThread* th = any_subcontext_threads() ? current_subcontext_thread() : nullptr) {
    if (th->stop.load(std::memory_order_acquire)) end_thread(*th, 0);
    return;
  }
  if (SubcontextView* s = view_of_current_thread()) {
    gate::Frame* f = s->current_frame;
    AllowSyscalls allow(f);
    if (ours) {
      if (f->deadline_ns && monotonic_ns() >= f->deadline_ns) {
        auto* uc = static_cast<ucontext_t*>(ucv);
        gate::AbortRecord why;
        why.kind = gate::AbortKind::Timeout;
        why.value = f->timeout_ms;
        if (f->syscall_pc) {  // waiting in a system call the SIGSYS handler makes for it
          why.pc = f->syscall_pc;
          why.sp = f->syscall_sp;
          why.bp = f->syscall_bp;
        } else {
          why.pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
          why.sp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RSP]);
          why.bp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RBP]);
        }
        allow.keep_allowed();
        abandon_call(*s, ucv, why);
      }
      return;  // an expiry of an earlier call's deadline
    }
    chain_to_client(sig, info, ucv, pkru);
    return;
  }
  if (!ours) chain_to_client(sig, info, ucv, pkru);
  // Ours outside a call: the call ended (or is in the Matchmaker's code
  // between its switches); the repeat brings it back if not.
}
