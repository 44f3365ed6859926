// Child processes started by subcontext code (children.hpp).
#include "fault/children.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

#include "fault/signal_entry.hpp"
#include "fault/signals.hpp"
#include "fault/syscalls.hpp"

namespace subctx::fault {

namespace {

static_assert(offsetof(SubcontextThread, start) == 0, "prepare_child finds its slot from the ThreadStart");

SUBCTX_SIGNAL_INLINE constexpr uint64_t bit(long sig) { return uint64_t{1} << (sig - 1); }

constexpr int kByPidfd = 3;  // waitid's P_PIDFD (Linux 5.4; glibc 2.36's sys/wait.h lacks it)

// The kernel's struct sigaction, as rt_sigaction reads and writes it.
struct KernelSigaction {
  uint64_t handler = 0, flags = 0, restorer = 0, mask = 0;
};
constexpr uint64_t kSigDfl = 0, kSigIgn = 1;

// ---- the parent, in its SIGSYS handler ----------------------------------

SUBCTX_SIGNAL_CONTEXT ChildArea* child_area(SubcontextThread& th) {
  if (!th.child) {
    const long m = sys6(SYS_mmap, 0, sizeof(ChildArea), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (is_syscall_error(m)) return nullptr;
    th.child = reinterpret_cast<ChildArea*>(m);
  }
  return th.child;
}

// What the child makes real: the subcontext's descriptors as they are now,
// its working directory and umask, the server's ignored signals.
SUBCTX_SIGNAL_CONTEXT void leave_for_child(SubcontextView& v, ChildArea& a) {
  FdTable& t = v.fds;
  {
    SpinGuard locked(t.threaded.load(std::memory_order_acquire) ? &t.lock : nullptr);
    a.n_fds = 0;
    if (t.active)
      for (int n = 0; n < kMaxFds; ++n)
        if (t.entries[n].origin != FdOrigin::Free) a.fds[a.n_fds++] = {n, t.entries[n].real, t.entries[n].cloexec};
    a.translate = t.active;
    a.cwd = t.active ? t.cwd : -1;
    a.umask = t.umask;
  }
  for (int sig = 1; sig <= 64; ++sig) a.handler[sig] = (v.ignored_signals & bit(sig)) ? kSigIgn : kSigDfl;
}

// A place in v's table for the child about to start (pid 0 until known).
SUBCTX_SIGNAL_CONTEXT bool reserve_child(ChildTable& t) {
  SpinGuard locked(&t.lock);
  if (t.count >= ChildTable::kMax) return false;
  t.list[t.count++] = {0, -1};
  return true;
}

// Fills a reserved place with the child (pid <= 0: gives it back).
SUBCTX_SIGNAL_CONTEXT void note_child(ChildTable& t, int pid, int pidfd, int died_of) {
  SpinGuard locked(&t.lock);
  for (uint32_t i = 0; i < t.count; ++i)
    if (t.list[i].pid == 0) {
      if (pid > 0) t.list[i] = {pid, pidfd, died_of};
      else t.list[i] = t.list[--t.count];
      return;
    }
}

SUBCTX_SIGNAL_CONTEXT void forget_child(ChildTable& t, int pid) {
  SpinGuard locked(&t.lock);
  for (uint32_t i = 0; i < t.count; ++i)
    if (t.list[i].pid == pid) {
      sys6(SYS_close, t.list[i].pidfd);
      t.list[i] = t.list[--t.count];
      return;
    }
}

// ---- the child's first instructions (on the Matchmaker's stack) ---------

SUBCTX_SIGNAL_CONTEXT void sort_ints(int32_t* a, uint32_t n) {
  for (uint32_t i = 1; i < n; ++i)
    for (uint32_t j = i; j > 0 && a[j - 1] > a[j]; --j) {
      const int32_t t = a[j];
      a[j] = a[j - 1];
      a[j - 1] = t;
    }
}

// Only the subcontext's descriptors stay, each at the subcontext's number
// (close-on-exec as the subcontext sees it): every other -- the client's
// files -- is closed.  The real ones go above the highest number first, so
// that no number is taken when its own descriptor moves there.
SUBCTX_SIGNAL_CONTEXT bool descriptors_made_real(ChildArea& a) {
  int32_t* const sorted = a.scratch;
  for (uint32_t i = 0; i < a.n_fds; ++i) sorted[i] = a.fds[i].real;
  sort_ints(sorted, a.n_fds);
  long from = 0;
  for (uint32_t i = 0; i < a.n_fds; ++i) {
    if (sorted[i] > from && is_syscall_error(sys6(SYS_close_range, from, sorted[i] - 1, 0))) return false;
    if (sorted[i] + 1 > from) from = sorted[i] + 1;
  }
  if (is_syscall_error(sys6(SYS_close_range, from, ~0U, 0))) return false;
  long top = 3;
  for (uint32_t i = 0; i < a.n_fds; ++i)
    if (a.fds[i].number + 1 > top) top = a.fds[i].number + 1;
  int32_t* const moved = a.scratch;
  for (uint32_t i = 0; i < a.n_fds; ++i) {
    const long t = sys6(SYS_fcntl, a.fds[i].real, F_DUPFD_CLOEXEC, top);
    if (is_syscall_error(t)) return false;
    moved[i] = static_cast<int32_t>(t);
  }
  sys6(SYS_close_range, 0, top - 1, 0);
  for (uint32_t i = 0; i < a.n_fds; ++i)
    if (is_syscall_error(sys6(SYS_dup3, moved[i], a.fds[i].number, a.fds[i].cloexec ? O_CLOEXEC : 0))) return false;
  sys6(SYS_close_range, top, ~0U, 0);
  return true;
}

// The call's deadline holds in the child too: its parent waits for its exec
// (CLONE_VFORK) where no signal reaches it, the deadline's neither.  A
// timer of the child's own process (POSIX timers end at an exec) kills it
// at the deadline if it is still running subcontext code then.
SUBCTX_SIGNAL_CONTEXT void deadline_kills_child(uint64_t deadline_ns) {
  struct sigevent ev {};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGKILL;
  int timer = -1;
  if (is_syscall_error(sys6(SYS_timer_create, CLOCK_MONOTONIC, reinterpret_cast<long>(&ev),
                            reinterpret_cast<long>(&timer))))
    return;
  struct itimerspec at {};
  at.it_value.tv_sec = static_cast<time_t>(deadline_ns / 1000000000);
  at.it_value.tv_nsec = static_cast<long>(deadline_ns % 1000000000);
  sys6(SYS_timer_settime, timer, TIMER_ABSTIME, reinterpret_cast<long>(&at), 0);
}

// Called by subctx_clone_thread in the child (start->prepare), before any
// code of the subcontext's: 0, or the child exits with 127.
SUBCTX_SIGNAL_CONTEXT long prepare_child(ThreadStart* start) {
  ChildArea& a = *reinterpret_cast<SubcontextThread*>(start)->child;
  // (No timer to be had, RLIMIT_SIGPENDING spent: the child runs without;
  // only one that waits before its exec would hold the call past it.)
  if (a.deadline_ns) deadline_kills_child(a.deadline_ns);
  if (a.cwd >= 0 && is_syscall_error(sys6(SYS_fchdir, a.cwd))) return 1;
  sys6(SYS_umask, a.umask);
  return a.translate && !descriptors_made_real(a) ? 1 : 0;
}

// ---- the child's system calls -------------------------------------------

// Signals whose default action dumps core: the dump of a process sharing
// the client's memory would be the client's whole memory (and kernels
// before 5.16 kill every process sharing it).
constexpr uint64_t kDumpsCore = bit(SIGQUIT) | bit(SIGILL) | bit(SIGTRAP) | bit(SIGABRT) | bit(SIGBUS) | bit(SIGFPE) |
                                bit(SIGSEGV) | bit(SIGXCPU) | bit(SIGXFSZ) | bit(SIGSYS);

// The child ends as the signal would end a process of its own; one that
// would dump core is recorded (the parent's waits report it) and the child
// dies of SIGKILL instead, which dumps nothing.
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void die_by(ChildArea& a, int sig) {
  if (kDumpsCore & bit(sig)) {
    a.died_of = sig;
    sig = SIGKILL;
  }
  const KernelSigaction dfl{};
  sys6(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, 8);
  const uint64_t set = bit(sig);
  sys6(SYS_rt_sigprocmask, SIG_UNBLOCK, reinterpret_cast<long>(&set), 0, 8);
  sys6(SYS_tgkill, sys6(SYS_getpid), sys6(SYS_gettid), sig);
  child_exits(128 + sig);
}

// rt_sigaction: the child's own dispositions, emulated (its real ones are
// the client's and the Matchmaker's until the exec).
SUBCTX_SIGNAL_CONTEXT long child_sigaction(ChildArea& a, const greg_t* g) {
  const long sig = g[REG_RDI];
  const auto act = static_cast<uint64_t>(g[REG_RSI]), old = static_cast<uint64_t>(g[REG_RDX]);
  if (g[REG_R10] != 8 || sig < 1 || sig > 64) return -EINVAL;
  KernelSigaction k;
  if (act && !copy_in(&k, act, sizeof k)) return -EFAULT;
  if (act && (sig == SIGKILL || sig == SIGSTOP)) return -EINVAL;
  KernelSigaction was;
  was.handler = a.handler[sig];
  if (old && !copy_out(old, &was, sizeof was)) return -EFAULT;
  if (act) a.handler[sig] = k.handler;
  return 0;
}

// A signal to itself acts as on a process of its own; other processes: EPERM.
SUBCTX_SIGNAL_CONTEXT long child_signal(SubcontextThread& th, long nr, const greg_t* g) {
  const bool by_pid = nr == SYS_kill || nr == SYS_rt_sigqueueinfo;
  const bool by_tid = nr == SYS_tkill;
  const int target = static_cast<int>(by_tid                                            ? g[REG_RDI]
                                      : nr == SYS_tgkill || nr == SYS_rt_tgsigqueueinfo ? g[REG_RSI]
                                                                                        : g[REG_RDI]);
  const long sig = static_cast<int>(by_tid || by_pid ? g[REG_RSI] : g[REG_RDX]);
  const long self = sys6(SYS_getpid);  // the child's only thread: pid and tid are one
  if (!(target == self || (by_pid && target == 0))) return -EPERM;
  if (sig < 0 || sig > 64) return -EINVAL;
  if (!ends_a_process(sig) || th.child->handler[sig] == kSigIgn || (th.mask & bit(sig))) return 0;
  die_by(*th.child, static_cast<int>(sig));
}

// execve/execveat: the program starts with the dispositions and mask the
// child's code left (a handler becomes SIG_DFL, as an exec makes it; the
// Matchmaker's signals are left to the exec, which resets them), and
// without Syscall User Dispatch (an exec turns it off).
SUBCTX_SIGNAL_CONTEXT long child_exec(SubcontextThread& th, SubcontextView& v, long nr, const greg_t* g) {
  if (!v.may_spawn.load(std::memory_order_acquire)) return -EPERM;
  const ChildArea& a = *th.child;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || (kCallSignals & bit(sig))) continue;
    KernelSigaction k;
    k.handler = a.handler[sig] == kSigIgn ? kSigIgn : kSigDfl;
    sys6(SYS_rt_sigaction, sig, reinterpret_cast<long>(&k), 0, 8);
  }
  const uint64_t mask = th.mask, all = ~uint64_t{0};
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&mask), 0, 8);
  const long r = nr == SYS_execve ? sys6(SYS_execve, g[REG_RDI], g[REG_RSI], g[REG_RDX])
                                  : sys6(SYS_execveat, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8]);
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8);
  return r;  // it failed: the child's code goes on (the next path, or _exit)
}

SUBCTX_SIGNAL_CONTEXT long child_dispatch(SubcontextThread& th, SubcontextView& v, SyscallCall& c, long nr, greg_t* g) {
  // clang-format off
  switch (nr) {
    case SYS_execve: case SYS_execveat: return child_exec(th, v, nr, g);
    case SYS_exit: case SYS_exit_group: child_exits(static_cast<int>(g[REG_RDI] & 0xff));
    case SYS_rt_sigprocmask: return thread_sigprocmask(th, g);
    case SYS_rt_sigaction: return child_sigaction(*th.child, g);
    case SYS_kill: case SYS_tkill: case SYS_tgkill: case SYS_rt_sigqueueinfo: case SYS_rt_tgsigqueueinfo:
      return child_signal(th, nr, g);
    case SYS_clone: case SYS_clone3: case SYS_fork: case SYS_vfork: return -EPERM;
    case SYS_wait4: case SYS_waitid: return -ECHILD;
    // Memory it mapped would outlive it in the client, untracked.
    case SYS_mmap: case SYS_mremap: case SYS_munmap: case SYS_mprotect: case SYS_brk: return -ENOMEM;
  }
  // clang-format on
  if (refused_by_argument(nr, g)) return -EPERM;
  const int16_t action = nr >= 0 && nr < kSyscallTableSize ? v.syscall_action[nr] : ENOSYS;
  if (action > 0) return -action;  // the table's errno (a default, the image's or the client's rule)
  if (action == kEndCall) {        // a rule's fault: the child dies of it
    gate::AbortRecord why;
    why.kind = gate::AbortKind::Signal;
    why.signal = SIGSYS;
    child_failed(th, why);
  }
  // Its own process: credentials, session, limits and its thread's state
  // are its own (posix_spawn's POSIX_SPAWN_SETSID, RESETIDS, ...).
  if (action != kAllow && action != kDescriptors && action != kClientProcess && action != kThreadState) return -EPERM;
  // Its descriptors, working directory and umask are real: made as asked.
  return make_syscall(c, nr, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
}

// ---- waiting -------------------------------------------------------------

// A child's pidfd, duplicated under the lock (another thread's wait may
// close the table's meanwhile, and its number be another's then): closed
// with the ChildRef.  -ECHILD when pid is not one of v's.
struct ChildRef {
  long pidfd = -ECHILD;
  int32_t died_of = 0;
  SUBCTX_SIGNAL_CONTEXT ChildRef() = default;
  ChildRef(const ChildRef&) = delete;
  ChildRef& operator=(const ChildRef&) = delete;
  SUBCTX_SIGNAL_CONTEXT ~ChildRef() {
    if (pidfd >= 0) sys6(SYS_close, pidfd);
  }
};

SUBCTX_SIGNAL_CONTEXT void find_child(SubcontextView& v, int pid, ChildRef* ref) {
  if (pid <= 0) return;
  SpinGuard locked(&v.children.lock);
  for (uint32_t i = 0; i < v.children.count; ++i)
    if (v.children.list[i].pid == pid) {
      ref->pidfd = sys6(SYS_fcntl, v.children.list[i].pidfd, F_DUPFD_CLOEXEC, 0);
      ref->died_of = v.children.list[i].died_of;
      return;
    }
}

// The wait status wait4 reports for what waitid said.
SUBCTX_SIGNAL_CONTEXT int wait_status(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED: return (info.si_status & 0xff) << 8;
    case CLD_KILLED: return info.si_status & 0x7f;
    case CLD_DUMPED: return (info.si_status & 0x7f) | 0x80;
    case CLD_STOPPED:
    case CLD_TRAPPED: return ((info.si_status & 0xff) << 8) | 0x7f;
    case CLD_CONTINUED: return 0xffff;
  }
  return 0;
}

// waitid's options for a wait4 or waitid of subcontext code (extra added).
SUBCTX_SIGNAL_CONTEXT long waitid_options(long nr, const greg_t* g, long extra) {
  long options = static_cast<int>(nr == SYS_wait4 ? g[REG_RDX] : g[REG_R10]) | extra | __WALL;
  if (nr == SYS_wait4)
    options = (options & ~(WUNTRACED | WCONTINUED)) | WEXITED | (options & WUNTRACED ? WSTOPPED : 0) |
              (options & WCONTINUED ? WCONTINUED : 0);
  return options;
}

// wait4 or waitid of one child (extra: options added, WNOHANG for a scan):
// the result, *reported when there was something to report.  Through its
// pidfd (P_PIDFD), never its pid: the client may have reaped it, and its
// pid may be another process's now -- a child of the client's, even.
SUBCTX_SIGNAL_CONTEXT long wait_one(SubcontextView& v, SyscallCall& c, long nr, int pid, const greg_t* g, long extra,
                                    bool* reported) {
  *reported = false;
  ChildRef child;
  find_child(v, pid, &child);
  if (child.pidfd < 0) return child.pidfd;  // not its child (ECHILD), or no descriptor left for the dup
  const long options = waitid_options(nr, g, extra);
  siginfo_t info;
  zero_bytes(&info, sizeof info);
  const long rusage = nr == SYS_wait4 ? g[REG_R10] : g[REG_R8];
  const long r = make_syscall(c, SYS_waitid, kByPidfd, child.pidfd, reinterpret_cast<long>(&info), options, rusage, 0);
  *reported = (r != 0 && r != -ECHILD) || (r == 0 && info.si_pid != 0);
  if (r == 0 && child.died_of && info.si_code == CLD_KILLED && info.si_status == SIGKILL)
    info.si_status = child.died_of;  // what it died of (die_by)
  const bool ended = info.si_code == CLD_EXITED || info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  if (r == -ECHILD || (r == 0 && info.si_pid == pid && ended && !(options & WNOWAIT))) forget_child(v.children, pid);
  if (r != 0) return r;
  if (nr == SYS_waitid)  // nothing to report (WNOHANG): a zeroed siginfo, as the kernel writes
    return g[REG_RDX] && !copy_out(static_cast<uint64_t>(g[REG_RDX]), &info, sizeof info) ? -EFAULT : 0;
  if (!*reported) return 0;
  const int status = wait_status(info);
  if (g[REG_RSI] && !copy_out(static_cast<uint64_t>(g[REG_RSI]), &status, sizeof status)) return -EFAULT;
  return pid;
}

// Its children's pids and pidfds now (duplicates: the caller closes them);
// *starting: places being filled (a child its other thread is starting).
SUBCTX_SIGNAL_CONTEXT uint32_t children_now(ChildTable& t, int32_t* pids, struct pollfd* polls, uint32_t* starting) {
  SpinGuard locked(&t.lock);
  uint32_t n = 0;
  *starting = 0;
  for (uint32_t i = 0; i < t.count; ++i) {
    if (t.list[i].pid <= 0) {
      ++*starting;
      continue;
    }
    pids[n] = t.list[i].pid;
    polls[n] = {static_cast<int>(sys6(SYS_fcntl, t.list[i].pidfd, F_DUPFD_CLOEXEC, 0)), POLLIN, 0};
    ++n;
  }
  return n;
}

// A wait for any of its children: each asked in turn (WNOHANG); then, unless
// WNOHANG, their pidfds polled for an exit (a pidfd says nothing of a stop)
// a tenth of a second at most, and again.
SUBCTX_SIGNAL_CONTEXT long wait_any(SubcontextView& v, SyscallCall& c, long nr, const greg_t* g) {
  const long options = waitid_options(nr, g, 0);
  int32_t pids[ChildTable::kMax];
  struct pollfd polls[ChildTable::kMax];
  for (;;) {
    uint32_t starting;
    const uint32_t n = children_now(v.children, pids, polls, &starting);
    long found = 0;
    bool reported = false;
    for (uint32_t i = 0; i < n && !reported; ++i) found = wait_one(v, c, nr, pids[i], g, WNOHANG, &reported);
    if (!reported && !(options & WNOHANG) && (n || starting)) {
      const struct timespec tenth = {0, 100 * 1000 * 1000};
      if ((options & WEXITED) && n) make_syscall(c, SYS_poll, reinterpret_cast<long>(polls), n, 100, 0, 0, 0);
      else make_syscall(c, SYS_nanosleep, reinterpret_cast<long>(&tenth), 0, 0, 0, 0, 0);
    }
    for (uint32_t i = 0; i < n; ++i)
      if (polls[i].fd >= 0) sys6(SYS_close, polls[i].fd);
    if (reported) return found;
    if (n == 0 && starting == 0) return -ECHILD;
    if (options & WNOHANG) return found;  // 0; a waitid's siginfo zeroed by wait_one
  }
}

}  // namespace

// ---- signal context: the entry points ------------------------------------

SUBCTX_SIGNAL_CONTEXT long start_child(SubcontextView& v, const CloneRequest& rq, const ucontext_t* uc,
                                       uint64_t parent_mask, uint64_t deadline_ns) {
  if (!v.may_spawn.load(std::memory_order_acquire)) return -EPERM;
  if (!reserve_child(v.children)) return -EAGAIN;
  SubcontextThread* th = claim_slot();
  ChildArea* a = th ? child_area(*th) : nullptr;
  if (!th || !a) {
    if (th) release_unstarted(*th);
    note_child(v.children, 0, -1, 0);
    return th ? -ENOMEM : -EAGAIN;
  }
  CloneRequest own = rq;
  own.tls = own.ptid = own.ctid = 0;  // the parent's thread pointer stays (vfork); no thread-id words
  prepare_start(*th, v, uc, own, parent_mask);
  th->kind = SlotKind::Child;
  leave_for_child(v, *a);
  ThreadStart& s = th->start;
  s.prepare = reinterpret_cast<uint64_t>(&prepare_child);
  s.save_hi = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RSP]);
  s.save_buf = reinterpret_cast<uint64_t>(a->saved_stack);
  s.save_cap = ChildArea::kSavedStack;
  th->state.store(ThreadState::Starting, std::memory_order_seq_cst);
  a->pidfd = -1;
  a->died_of = 0;
  a->deadline_ns = deadline_ns;
  long r = -EAGAIN;
  // Its pidfd made with it (CLONE_PIDFD, written at ptid): waits and kills
  // never name it by a pid the client may have reaped and another process
  // taken since.
  if (s.ss_sp && !v.threads_stopping.load(std::memory_order_seq_cst))
    r = subctx_clone_thread(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | own.exit_signal, own.stack,
                            reinterpret_cast<uint64_t>(&a->pidfd), 0, 0, &s);
  // Returned: the child made its exec or ended (CLONE_VFORK), and the
  // parent's stack is as it was.  Nothing of the child runs here any more.
  const int pidfd = a->pidfd, died_of = a->died_of;
  release_unstarted(*th);
  note_child(v.children, r > 0 ? static_cast<int>(r) : 0, pidfd, died_of);
  return r;
}

SUBCTX_SIGNAL_CONTEXT long child_syscall(SubcontextThread& th, SubcontextView& v, SyscallCall& c, long nr, greg_t* g) {
  const long r = child_dispatch(th, v, c, nr, g);
  // SIGPIPE, SIGXFSZ the call raised: what they would do to the process.
  if (c.raised && th.child->handler[c.raised] != kSigIgn && !(th.mask & bit(c.raised))) die_by(*th.child, c.raised);
  return r;
}

SUBCTX_SIGNAL_CONTEXT void child_exits(int status) {
  for (;;) sys6(SYS_exit_group, status);
}

SUBCTX_SIGNAL_CONTEXT void child_failed(SubcontextThread& th, const gate::AbortRecord& why) {
  if (why.kind == gate::AbortKind::Signal && why.signal > 0 && why.signal < 65) die_by(*th.child, why.signal);
  child_exits(127);
}

SUBCTX_SIGNAL_CONTEXT bool is_child_of(SubcontextView& v, int pid) {
  if (pid <= 0) return false;
  SpinGuard locked(&v.children.lock);
  for (uint32_t i = 0; i < v.children.count; ++i)
    if (v.children.list[i].pid == pid) return true;
  return false;
}

SUBCTX_SIGNAL_CONTEXT long signal_child(SubcontextView& v, SyscallCall& c, long nr, const greg_t* g) {
  ChildRef child;
  find_child(v, static_cast<int>(g[REG_RDI]), &child);
  if (child.pidfd == -ECHILD) return -ESRCH;
  if (child.pidfd < 0) return child.pidfd;
  const long info = nr == SYS_rt_sigqueueinfo ? g[REG_RDX] : 0;
  return make_syscall(c, SYS_pidfd_send_signal, child.pidfd, g[REG_RSI], info, 0, 0, 0);
}

SUBCTX_SIGNAL_CONTEXT long wait_children(SubcontextView& v, SyscallCall& c, long nr, const greg_t* g) {
  int pid;
  if (nr == SYS_waitid) {
    const long idtype = g[REG_RDI];
    if (idtype == P_PID) pid = static_cast<int>(g[REG_RSI]);
    else if (idtype == P_ALL || idtype == P_PGID) pid = -1;
    else return -EINVAL;  // P_PIDFD: a subcontext holds no pidfd of a child (pidfd_open is refused)
    if (pid <= 0 && idtype == P_PID) return -EINVAL;
  } else {
    pid = static_cast<int>(g[REG_RDI]);  // -1, 0, -pgid: any of its children
    if (g[REG_RDX] & ~static_cast<long>(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL))
      return -EINVAL;  // as the kernel's wait4 (WNOWAIT is waitid's)
  }
  if (pid <= 0) return wait_any(v, c, nr, g);
  if (!is_child_of(v, pid)) return -ECHILD;
  bool reported;
  return wait_one(v, c, nr, pid, g, 0, &reported);
}

// ---- normal code ---------------------------------------------------------

void stop_children(SubcontextView& v) {
  ChildTable& t = v.children;
  SpinGuard locked(&t.lock);  // its threads are stopped: nobody else spawns or waits now
  for (uint32_t i = 0; i < t.count; ++i) {
    const ChildRecord& c = t.list[i];
    if (c.pid <= 0) continue;
    // By pidfd: the client may have reaped it and its pid be another's now.
    syscall(SYS_pidfd_send_signal, c.pidfd, SIGKILL, nullptr, 0);
    siginfo_t info;
    while (waitid(static_cast<idtype_t>(kByPidfd), static_cast<id_t>(c.pidfd), &info, WEXITED | __WALL) < 0 &&
           errno == EINTR) {
    }
    close(c.pidfd);
  }
  t.count = 0;
}

void forget_children_in_child() {
  for (int i = 0; i < views_used(); ++i)
    if (SubcontextView* v = view_at(i)) {
      for (uint32_t k = 0; k < v->children.count; ++k)
        if (v->children.list[k].pid > 0) close(v->children.list[k].pidfd);
      v->children.count = 0;
      v->children.lock.store(0, std::memory_order_relaxed);
    }
}

}  // namespace subctx::fault
