// Syscall User Dispatch for subcontext code (syscalls.hpp).
//
// The SIGSYS handler runs in signal context on the subcontext's thread
// pointer: no libc, no TLS, no allocation; its own system calls go through
// subctx_allowed_syscall once AllowSyscalls has opened the selector.
#include "fault/syscalls.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>

#include "fault/children.hpp"
#include "fault/fd_syscalls.hpp"
#include "fault/signal_context.h"
#include "fault/signal_entry.hpp"
#include "fault/signals.hpp"
#include "fault/syscall_make.hpp"
#include "fault/threads.hpp"
#include "fault/view.hpp"
#include "gate/gate.hpp"
#include "sys/io.hpp"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif

namespace subctx::fault {

__thread uint8_t t_selector = 0;
__thread int8_t t_dispatch = 0;

namespace {

void forget_dispatch_in_child() { t_dispatch = 0; }  // fork: the kernel turned it off

// ---- signal context -----------------------------------------------------

SUBCTX_SIGNAL_CONTEXT bool overlaps(uint64_t a, uint64_t b, uint64_t lo, uint64_t hi) { return a < hi && lo < b; }

SUBCTX_SIGNAL_CONTEXT bool touches_image(const SubcontextView& s, uint64_t lo, uint64_t hi) {
  for (const sys::Mapping& m : s.segments.mappings())
    if (overlaps(lo, hi, m.begin(), m.end())) return true;
  return false;
}

SUBCTX_SIGNAL_CONTEXT uint64_t page_up(uint64_t v) { return (v + 4095) & ~uint64_t{4095}; }

// (The table through get(): unique_ptr's operator[] asserts through libstdc++
// under _GLIBCXX_ASSERTIONS.)
SUBCTX_SIGNAL_CONTEXT void track_add(SubMappings& t, uint64_t lo, uint64_t hi) {
  MappedRange* const ranges = t.ranges.get();
  t.bytes += hi - lo;  // counted for the quota even when the table is full
  if (t.bytes > t.peak) t.peak = t.bytes;
  if (t.count == SubMappings::kMax) {
    t.lost = true;
    return;
  }
  ranges[t.count++] = {lo, hi};
}

SUBCTX_SIGNAL_CONTEXT void track_remove(SubMappings& t, uint64_t lo, uint64_t hi) {
  MappedRange* const ranges = t.ranges.get();
  for (uint32_t i = 0; i < t.count;) {
    auto [a, b] = ranges[i];
    if (!overlaps(a, b, lo, hi)) {
      ++i;
      continue;
    }
    t.bytes -= std::min(b, hi) - std::max(a, lo);
    if (a < lo && b > hi) {  // a hole in the middle: two pieces
      ranges[i] = {a, lo};
      if (t.count < SubMappings::kMax) ranges[t.count++] = {hi, b};
      else t.lost = true;
      ++i;
    } else if (a < lo) {
      ranges[i++] = {a, lo};
    } else if (b > hi) {
      ranges[i++] = {hi, b};
    } else {
      ranges[i] = ranges[--t.count];
    }
  }
}

}  // namespace

SUBCTX_SIGNAL_CONTEXT bool refused_by_argument(long nr, const greg_t* g) {
  // The thread pointer is how the Matchmaker knows a call is in progress.
  if (nr == SYS_arch_prctl) return g[REG_RDI] == 0x1002 /* ARCH_SET_FS */ || g[REG_RDI] == 0x1001 /* GS */;
  // prctl options that would turn mediation off or change the process.
  const long option = g[REG_RDI];
  return nr == SYS_prctl && (option == PR_SET_SYSCALL_USER_DISPATCH || option == PR_SET_SECCOMP || option == PR_SET_MM);
}

SUBCTX_SIGNAL_CONTEXT bool changes_client_process(long nr, const greg_t* g) {
  if (nr == SYS_prlimit64) return g[REG_RDX] != 0;                                     // new_limit
  if (nr == SYS_personality) return static_cast<uint32_t>(g[REG_RDI]) != 0xffffffffu;  // the query
  return true;
}

SUBCTX_SIGNAL_CONTEXT bool ends_a_process(long sig) {
  // clang-format off
  switch (sig) {
    case 0: case SIGCHLD: case SIGURG: case SIGWINCH: case SIGCONT:
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
      return false;
  }
  // clang-format on
  return sig > 0 && sig < 65;
}

namespace {

// rt_sigprocmask of subcontext code: applied to the mask the thread gets
// back when the handler returns (made here, it would be undone then).  The
// kernel makes the copies (a bad pointer is EFAULT, as for the real call),
// on the thread's mask set for the moment to the interrupted one.  Signals
// a call needs stay unblocked; the client's mask is saved the first time,
// for after the call.
SUBCTX_SIGNAL_CONTEXT long emulate_sigprocmask(gate::Frame* f, ucontext_t* uc, const greg_t* g) {
  uint64_t mask;
  __builtin_memcpy(&mask, &uc->uc_sigmask, 8);
  if (g[REG_RSI] && !f->mask_changed) {
    f->client_mask = mask;
    f->mask_changed = true;
  }
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&mask), 0, 8, 0, 0);
  const long r = sys6(SYS_rt_sigprocmask, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], 0, 0);
  uint64_t now = mask;
  sys6(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&now), 8, 0, 0);
  now &= ~kCallSignals;
  __builtin_memcpy(&uc->uc_sigmask, &now, 8);
  const uint64_t all = ~uint64_t{0};
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8, 0, 0);
  return r;
}

// System calls that do not block: made with signals still blocked (the
// two rt_sigprocmask around a blocking one cost as much as the call here).
// newfstatat with AT_EMPTY_PATH is glibc's fstat().
SUBCTX_SIGNAL_CONTEXT bool never_blocks(long nr, long r10) {
  if (nr == SYS_newfstatat) return r10 & AT_EMPTY_PATH;
  // clang-format off
  switch (nr) {
    case SYS_getpid: case SYS_gettid: case SYS_getuid: case SYS_geteuid: case SYS_getgid: case SYS_getegid:
    case SYS_getppid: case SYS_mmap: case SYS_munmap: case SYS_mremap: case SYS_mprotect: case SYS_madvise:
    case SYS_lseek: case SYS_fstat: case SYS_clock_gettime: case SYS_gettimeofday: case SYS_time:
    case SYS_getrandom: case SYS_close: case SYS_brk: case SYS_getcpu: case SYS_uname:
      return true;
  }
  // clang-format on
  return false;
}

// Signals the kernel raises for a system call's own failure: held back
// while it runs, then the server's disposition applies (docs/identity.md).
constexpr uint64_t kRaisedBySyscalls = (uint64_t{1} << (SIGPIPE - 1)) | (uint64_t{1} << (SIGXFSZ - 1));

// Takes a pending SIGPIPE or SIGXFSZ of this thread (raised by the call
// that just failed with EPIPE or EFBIG); 0 if none.
SUBCTX_SIGNAL_CONTEXT int take_raised_signal() {
  const struct timespec now = {0, 0};
  const long sig =
      sys6(SYS_rt_sigtimedwait, reinterpret_cast<long>(&kRaisedBySyscalls), 0, reinterpret_cast<long>(&now), 8);
  return sig > 0 ? static_cast<int>(sig) : 0;
}

// Whether the call may have raised SIGPIPE or SIGXFSZ: it failed with EPIPE
// or EFBIG, or it is a write that stopped short (a pipe's reader gone half
// way: the kernel signals and returns what it wrote) or whose length the
// handler does not know (vectors, splices).
SUBCTX_SIGNAL_CONTEXT bool may_have_raised(long nr, long r, long count) {
  if (r == -EPIPE || r == -EFBIG) return true;
  if (is_syscall_error(r)) return false;
  // clang-format off
  switch (nr) {
    case SYS_write: case SYS_pwrite64: case SYS_sendto:
      return r < count;
    case SYS_writev: case SYS_pwritev: case SYS_pwritev2: case SYS_sendmsg: case SYS_sendmmsg: case SYS_splice:
    case SYS_tee: case SYS_vmsplice: case SYS_sendfile: case SYS_copy_file_range:
      return true;
  }
  // clang-format on
  return false;
}

SUBCTX_SIGNAL_CONTEXT long make(SyscallCall& c, long nr, const greg_t* g) {
  return make_syscall(c, nr, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
}

}  // namespace

SUBCTX_SIGNAL_CONTEXT long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  return subctx_allowed_syscall(nr, a, b, c, d, e, f);
}

namespace {

// A signal mask or set at *arg, copied to *local without the Matchmaker's
// signals (kCallSignals), *arg pointed at the copy; false: unreadable.
SUBCTX_SIGNAL_CONTEXT bool without_call_signals(long* arg, uint64_t* local) {
  if (!*arg) return true;
  if (!copy_in(local, static_cast<uint64_t>(*arg), sizeof *local)) return false;
  *local &= ~kCallSignals;
  *arg = reinterpret_cast<long>(local);
  return true;
}

}  // namespace

SUBCTX_SIGNAL_CONTEXT long make_syscall(SyscallCall& c, long nr, long a, long b, long d, long r10, long r8, long r9) {
  // The masks subcontext code has the kernel apply while it waits, and the
  // set sigtimedwait takes signals from, never hold the Matchmaker's
  // signals: a wait with the deadline signal blocked, or taking it, would
  // hold up a deadline or the stop of its threads (docs/threads.md).
  uint64_t stripped = 0;
  struct {
    long set, size;
  } pselect_mask{0, 0};
  bool readable = true;
  switch (nr) {
    case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait: readable = without_call_signals(&a, &stripped); break;
    case SYS_ppoll: readable = without_call_signals(&r10, &stripped); break;
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2: readable = without_call_signals(&r8, &stripped); break;
    case SYS_pselect6:
      if (r9) {
        readable = copy_in(&pselect_mask, static_cast<uint64_t>(r9), sizeof pselect_mask) &&
                   without_call_signals(&pselect_mask.set, &stripped);
        r9 = reinterpret_cast<long>(&pselect_mask);
      }
      break;
  }
  if (!readable) return -EFAULT;
  long r;
  if (never_blocks(nr, r10)) {
    r = sys6(nr, a, b, d, r10, r8, r9);
  } else {
    // Signals may interrupt it as they would the subcontext: a deadline, a
    // client's itimer.
    uint64_t mask, all = ~uint64_t{0};
    __builtin_memcpy(&mask, &c.uc->uc_sigmask, 8);
    if (c.frame) c.frame->held_signals = kRaisedBySyscalls & ~mask;
    mask |= kRaisedBySyscalls;
    sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&mask), 0, 8);
    r = sys6(nr, a, b, d, r10, r8, r9);
    sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8);
    if (c.frame) c.frame->held_signals = 0;
  }
  if (!c.raised && may_have_raised(nr, r, d)) c.raised = take_raised_signal();
  return r;
}

// Where process_vm_readv/writev are refused (a seccomp profile, a kernel
// without them): a plain copy, which faults on a bad pointer instead of
// failing with EFAULT.
SUBCTX_SIGNAL_CONTEXT void plain_copy(void* to, const void* from, size_t n) {
  auto* d = static_cast<volatile unsigned char*>(to);
  const auto* s = static_cast<const volatile unsigned char*>(from);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}

SUBCTX_SIGNAL_CONTEXT static bool copy_self(bool in, void* local, uint64_t remote, size_t n) {
  if (n == 0) return true;
  struct iovec l = {local, n}, rem = {reinterpret_cast<void*>(remote), n};
  const long tid = sys6(SYS_gettid);  // its memory: the process's leader may have exited
  const long r = sys6(in ? SYS_process_vm_readv : SYS_process_vm_writev, tid, reinterpret_cast<long>(&l), 1,
                      reinterpret_cast<long>(&rem), 1, 0);
  if (r == -EPERM || r == -ENOSYS) {
    if (in) plain_copy(local, reinterpret_cast<const void*>(remote), n);
    else plain_copy(reinterpret_cast<void*>(remote), local, n);
    return true;
  }
  return r == static_cast<long>(n);
}

SUBCTX_SIGNAL_CONTEXT bool copy_in(void* dst, uint64_t src, size_t n) { return copy_self(true, dst, src, n); }

SUBCTX_SIGNAL_CONTEXT bool copy_out(uint64_t dst, const void* src, size_t n) {
  return copy_self(false, const_cast<void*>(src), dst, n);
}

SUBCTX_SIGNAL_CONTEXT long copy_in_path(char* buf, size_t cap, uint64_t src) {
  // A page at a time: the string may end just before an unmapped page.
  for (size_t done = 0; done < cap;) {
    const size_t in_page = 4096 - ((src + done) & 4095);
    const size_t n = in_page < cap - done ? in_page : cap - done;
    if (!copy_in(buf + done, src + done, n)) return -EFAULT;
    for (size_t i = done; i < done + n; ++i)
      if (buf[i] == 0) return static_cast<long>(i);
    done += n;
  }
  return -ENAMETOOLONG;
}

volatile uint8_t* syscall_selector_slow() {
  if (t_dispatch < 0) return nullptr;
  t_dispatch = -1;
  if (!syscall_dispatch_available()) return nullptr;
  static std::once_flag atfork;
  std::call_once(atfork, [] { pthread_atfork(nullptr, nullptr, forget_dispatch_in_child); });
  const auto lo = reinterpret_cast<unsigned long>(subctx_allowed_begin);
  const auto len = static_cast<unsigned long>(subctx_allowed_end - subctx_allowed_begin);
  t_selector = 0;
  if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, lo, len, &t_selector) != 0) return nullptr;
  t_dispatch = 1;
  return &t_selector;
}

void install_syscall_handler() { take_over_signal(SIGSYS, subctx_syscall_entry); }

}  // namespace subctx::fault

namespace subctx::fault {
namespace {

// What a successful mmap, munmap, mremap or mprotect of subcontext code did
// to the memory a reset releases and the segments it must put back.
SUBCTX_SIGNAL_CONTEXT void note_memory(SubcontextView& s, long nr, const greg_t* g, long result, uint64_t len) {
  SubMappings& t = s.sub_maps;
  const uint64_t a = static_cast<uint64_t>(g[REG_RDI]);
  const bool exec = (nr == SYS_mmap || nr == SYS_mprotect) && (g[REG_RDX] & PROT_EXEC);
  if (nr == SYS_mmap) {
    const auto r = static_cast<uint64_t>(result);
    if (touches_image(s, r, r + len)) {
      t.layout_changed = true;
      t.made_executable |= exec;
    }
    track_remove(t, r, r + len);  // MAP_FIXED replaced what was there
    track_add(t, r, r + len);
  } else if (nr == SYS_munmap) {
    if (touches_image(s, a, a + len)) t.layout_changed = true;
    track_remove(t, a, a + len);
  } else if (nr == SYS_mremap) {
    const auto r = static_cast<uint64_t>(result);
    const uint64_t new_len = page_up(static_cast<uint64_t>(g[REG_RDX]));
    if (touches_image(s, a, a + len) || touches_image(s, r, r + new_len)) t.layout_changed = true;
    if (!(g[REG_R10] & 4 /* MREMAP_DONTUNMAP: the old range stays */)) track_remove(t, a, a + len);
    track_remove(t, r, r + new_len);  // MREMAP_FIXED replaced what was there
    track_add(t, r, r + new_len);
  } else if (touches_image(s, a, a + len)) {  // mprotect
    t.layout_changed = true;
    t.made_executable |= exec;
  }
}

SUBCTX_SIGNAL_CONTEXT bool raised_blocked(const ucontext_t* uc, int sig) {
  uint64_t mask;
  __builtin_memcpy(&mask, &uc->uc_sigmask, 8);
  return (mask >> (sig - 1)) & 1;
}

// One intercepted system call of subcontext code: of a call (frame: the
// call's), or of a thread subcontext code started (thread; frame: its own).
struct Intercepted {
  SubcontextView& s;
  gate::Frame* frame;
  SubcontextThread* thread;
  ucontext_t* uc;
  greg_t* g;
  long nr;
  SyscallCall call;
  gate::AbortRecord end;  // where the subcontext is, for an abandoned call
};

// The call is abandoned; a thread's failure is recorded and ends it (exit
// ends only it).
SUBCTX_SIGNAL_CONTEXT void end_call(Intercepted& x, AllowSyscalls& allow, gate::AbortKind kind, int32_t signal,
                                    int32_t code) {
  x.end.kind = kind;
  x.end.signal = signal;
  x.end.code = code;
  allow.keep_allowed();
  if (!x.thread) return abandon_call(x.s, x.uc, x.end);
  if (kind == gate::AbortKind::Exit && x.nr == SYS_exit) end_thread(*x.thread, x.end.status);
  thread_failed(*x.thread, x.end);
}

// The view's tables of memory calls made (sub_maps) while threads run.
struct MemoryTableLock : SpinGuard {
  SUBCTX_SIGNAL_INLINE explicit MemoryTableLock(SubcontextView& s)
      : SpinGuard(s.threads_ran.load(std::memory_order_acquire) ? &s.tables_lock : nullptr) {}
};

// The ThreadState rows: a thread of the subcontext changes its own state;
// the scheduler calls name a thread (0: the caller), which must be one of
// the subcontext's (glibc's pthread_create sets a new thread's affinity and
// policy from the parent, by its tid); the client's thread in a call may
// only ask sigaltstack what its stack is.
SUBCTX_SIGNAL_CONTEXT bool thread_state_is_own(const Intercepted& x) {
  const greg_t* g = x.g;
  // clang-format off
  switch (x.nr) {
    case SYS_sched_setaffinity: case SYS_sched_setscheduler: case SYS_sched_setparam: case SYS_sched_setattr:
      return g[REG_RDI] == 0 ? x.thread != nullptr : is_thread_of(x.s, static_cast<int32_t>(g[REG_RDI]));
  }
  // clang-format on
  return x.thread || (x.nr == SYS_sigaltstack && g[REG_RDI] == 0);
}

SUBCTX_SIGNAL_CONTEXT long on_allowed(Intercepted& x);

// clone/clone3/vfork: a thread or a child process (threads.hpp), with the
// signal mask subcontext code set; a call's deadline holds in a child it
// starts (a thread of the subcontext has none).
SUBCTX_SIGNAL_CONTEXT long on_clone(Intercepted& x) {
  uint64_t mask;
  __builtin_memcpy(&mask, &x.uc->uc_sigmask, 8);
  return start_thread(x.s, x.nr, x.uc, x.thread ? x.thread->mask : mask, x.thread ? 0 : x.frame->deadline_ns);
}

// The client's process and thread state (kClientProcess, kThreadState):
// the row's EPERM, or made as asked where it changes nothing of the client.
SUBCTX_SIGNAL_CONTEXT long on_client_state(Intercepted& x, int16_t action) {
  const bool keeps_client = action == kClientProcess ? !changes_client_process(x.nr, x.g) : thread_state_is_own(x);
  if (!keeps_client) return -EPERM;
  if (x.nr == SYS_sigaltstack && x.thread) return thread_sigaltstack(*x.thread, x.g);
  return on_allowed(x);
}

SUBCTX_SIGNAL_CONTEXT long on_allowed(Intercepted& x) {
  const greg_t* g = x.g;
  if (x.nr == SYS_rt_sigprocmask)
    return x.thread ? thread_sigprocmask(*x.thread, g) : emulate_sigprocmask(x.frame, x.uc, g);
  if (refused_by_argument(x.nr, g)) return -EPERM;
  // Where the subcontext is while it waits: a deadline reports this.
  gate::Frame* f = x.frame;
  f->syscall_pc = x.end.pc;
  f->syscall_sp = x.end.sp;
  f->syscall_bp = x.end.bp;
  const long r = make(x.call, x.nr, g);
  f->syscall_pc = 0;
  return r;
}

// In the subcontext's descriptor namespace (or, unisolated, as asked).
SUBCTX_SIGNAL_CONTEXT long on_descriptors(Intercepted& x) {
  gate::Frame* f = x.frame;
  f->syscall_pc = x.end.pc;  // where the subcontext waits: a deadline reports this
  f->syscall_sp = x.end.sp;
  f->syscall_bp = x.end.bp;
  const long r = x.s.fds.active ? descriptor_syscall(x.s.fds, x.call, x.nr, x.g) : make(x.call, x.nr, x.g);
  f->syscall_pc = 0;
  return r;
}

// Whether pid names the subcontext itself: its client's pid, the server's
// (stale in the image), its process group.
SUBCTX_SIGNAL_CONTEXT bool is_itself(const SubcontextView& s, int pid) {
  if (pid == 0) return true;
  if (pid > 0) return pid == sys6(SYS_getpid) || (s.server_pid > 0 && pid == s.server_pid);
  return -pid == sys6(SYS_getpgid, 0);
}

// tgkill, tkill, rt_tgsigqueueinfo: a subcontext has one thread, so any
// thread id it holds is its own, or stale from the snapshot.  kill,
// rt_sigqueueinfo: itself as is_itself() says; -1 (everyone) is refused,
// other processes too unless a rule allowed them (kSignalAnyone).
// Returns true when the signal ends the call (*sig: which).
SUBCTX_SIGNAL_CONTEXT bool on_signal(Intercepted& x, bool anyone, long* result, int* sig) {
  const greg_t* g = x.g;
  const bool by_pid = x.nr == SYS_kill || x.nr == SYS_rt_sigqueueinfo;
  // pid_t and int arguments: the kernel reads their low 32 bits.
  const int pid = static_cast<int>(g[REG_RDI]);
  const long target_sig =
      static_cast<int>(x.nr == SYS_tgkill || x.nr == SYS_rt_tgsigqueueinfo ? g[REG_RDX] : g[REG_RSI]);
  *result = 0;
  // Its own children (children.hpp) it may signal; other processes only
  // when a rule allows kill.
  if (by_pid && (pid == -1 || (!anyone && !is_itself(x.s, pid) && !is_child_of(x.s, pid)))) {
    *result = -EPERM;
    return false;
  }
  if (by_pid && !is_itself(x.s, pid)) {
    *result = !anyone && is_child_of(x.s, pid) ? signal_child(x.s, x.call, x.nr, g) : make(x.call, x.nr, g);
    return false;
  }
  if (target_sig < 0 || target_sig >= 65) {
    *result = -EINVAL;
    return false;
  }
  if (!ends_a_process(target_sig) || ((x.s.ignored_signals >> (target_sig - 1)) & 1)) return false;
  *sig = static_cast<int>(target_sig);
  return true;
}

// mmap, munmap, mremap, mprotect: made and tracked.  Returns false when the
// mapped-bytes quota ends the call (x.end.value: the bytes asked for).
SUBCTX_SIGNAL_CONTEXT bool on_memory(Intercepted& x, long* result) {
  const greg_t* g = x.g;
  MemoryTableLock locked(x.s);  // mmap and co. do not block: held across
  SubMappings& t = x.s.sub_maps;
  const uint64_t len = page_up(static_cast<uint64_t>(g[REG_RSI]));
  const uint64_t max = x.s.max_mapped_bytes.load(std::memory_order_relaxed);
  uint64_t grows = 0;
  if (x.nr == SYS_mmap) grows = len;
  if (x.nr == SYS_mremap) {
    const uint64_t new_len = page_up(static_cast<uint64_t>(g[REG_RDX]));
    grows = new_len > len ? new_len - len : 0;
  }
  if (max && grows && t.bytes + grows > max) {
    x.end.value = t.bytes + grows;
    return false;
  }
  if (x.nr == SYS_mmap && x.s.fds.active) {  // a file mapping names a descriptor of the subcontext's
    const long fd = translate_mmap_fd(x.s.fds, g[REG_R10], g[REG_R8]);
    *result = is_syscall_error(fd)
                  ? fd
                  : make_syscall(x.call, SYS_mmap, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], fd, g[REG_R9]);
  } else {
    *result = make(x.call, x.nr, g);
  }
  if (!is_syscall_error(*result)) note_memory(x.s, x.nr, g, *result, len);
  return true;
}

}  // namespace
}  // namespace subctx::fault

// Entered through subctx_syscall_entry (signal_entry.S) with the handler's PKRU.
extern "C" SUBCTX_SIGNAL_CONTEXT __attribute__((visibility("hidden"))) void subctx_syscall_handler(
    int sig, siginfo_t* info, void* ucv, uint32_t pkru) {
  using namespace subctx;
  using namespace subctx::fault;
  auto* uc = static_cast<ucontext_t*>(ucv);
  greg_t* g = uc->uc_mcontext.gregs;
  SubcontextView* s = view_of_current_thread();
  gate::Frame* frame = s ? s->current_frame : nullptr;
  // A thread subcontext code started can set its thread pointer or stack
  // pointer to a call's: once any ran, the thread id decides what it is.
  SubcontextThread* thread = any_subcontext_threads() ? current_subcontext_thread() : nullptr;
  if (thread) {
    s = view_of(*thread);
    frame = &thread->frame;
  }
  AllowSyscalls allow(frame);                            // before any system call
  if (info->si_code != SYS_USER_DISPATCH) {              // seccomp's, or sent: the client's
    if (!thread) chain_to_client(sig, info, ucv, pkru);  // a subcontext thread has no client side
    return;
  }
  const long nr = info->si_syscall;
  SyscallCall call{uc, frame, 0};
  if (!s) {  // not inside a call (cannot happen: the gate allows on the way out)
    g[REG_RAX] = make(call, nr, g);
    return;
  }
  // A child process before its exec: a table of its own (children.hpp).
  if (thread && thread->kind == SlotKind::Child && nr != SYS_rt_sigreturn) {
    g[REG_RAX] = child_syscall(*thread, *s, call, nr, g);
    return;
  }
  // x32 system calls (bit 30) have their own numbers: none for subcontexts.
  const int16_t action = nr >= 0 && nr < kSyscallTableSize ? s->syscall_action[nr] : ENOSYS;
  Intercepted x{*s, frame, thread, uc, g, nr, call, {}};
  x.end.pc = static_cast<uint64_t>(g[REG_RIP]);
  x.end.sp = static_cast<uint64_t>(g[REG_RSP]);
  x.end.bp = static_cast<uint64_t>(g[REG_RBP]);
  x.end.value = static_cast<uint64_t>(nr);
  long result = 0;
  int ending = 0;
  switch (action) {
    case kAllow: result = on_allowed(x); break;
    case kDescriptors: result = on_descriptors(x); break;
    case kEndCallExit:
      x.end.status = static_cast<int32_t>(g[REG_RDI] & 0xff);
      return end_call(x, allow, gate::AbortKind::Exit, 0, 0);
    case kEndCall: return end_call(x, allow, gate::AbortKind::Signal, SIGSYS, SYS_USER_DISPATCH);
    case kSelfSignal:
    case kSignalAnyone:
      if (on_signal(x, action == kSignalAnyone, &result, &ending))
        return end_call(x, allow, gate::AbortKind::Signal, ending, SI_TKILL);
      break;
    case kTrackMemory:
      if (!on_memory(x, &result)) return end_call(x, allow, gate::AbortKind::Quota, 0, 0 /* mapped bytes */);
      break;
    case kChildren: result = wait_children(*s, x.call, nr, g); break;
    case kClientProcess:
    case kThreadState: result = on_client_state(x, action); break;
    case kThreads: result = on_clone(x); break;
    case kSigreturn:
      // rt_sigreturn of a handler installed behind the Matchmaker's back
      // (glibc's own): made from the allowed range, on the same stack.
      g[REG_RIP] = reinterpret_cast<greg_t>(&subctx_sigreturn);
      return;
    default:  // deny with an errno
      result = -static_cast<long>(action);
      break;
  }
  // SIGPIPE or SIGXFSZ the call raised: the server's disposition (blocked by
  // subcontext code itself: it would have stayed pending, harmless).
  // (A thread's mask is the one its code set: its real one blocks it always.)
  if (x.call.raised && !((s->ignored_signals >> (x.call.raised - 1)) & 1) &&
      !(thread ? (thread->mask >> (x.call.raised - 1)) & 1 : raised_blocked(uc, x.call.raised)))
    return end_call(x, allow, gate::AbortKind::Signal, x.call.raised, SI_KERNEL);
  g[REG_RAX] = result;
}
