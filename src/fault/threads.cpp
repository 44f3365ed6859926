// Threads started by subcontext code (threads.hpp).
#include "fault/threads.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

#include "fault/alt_stack.hpp"
#include "fault/children.hpp"
#include "fault/deadline.hpp"
#include "fault/fd_syscalls.hpp"
#include "fault/signal_context.h"
#include "fault/signal_entry.hpp"
#include "fault/signals.hpp"
#include "fault/syscall_make.hpp"

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL  // clone3 only (Linux 5.5); glibc 2.36's sched.h lacks it
#endif

namespace subctx::fault {

namespace {

// Constant-initialized (in .bss, no constructor at load: 1,024 slots
// would otherwise touch their pages in every client's start-up).
constinit SubcontextThread g_threads[kMaxThreadSlots];
constinit std::atomic<int> g_threads_used{0};  // slots ever used: lookups scan only these

// The deadline signal (SIGRTMAX; the macro calls libc) stops a thread.
constexpr int kStopSignal = 64;

// What clone must ask for to make a thread, and what else it may ask.
// CLONE_FILES and CLONE_FS too: a thread with a table of descriptors (or a
// working directory) of its own would give the shared namespace numbers
// that mean other files in the client's table.
constexpr uint64_t kThreadNeeds = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SETTLS | CLONE_FILES | CLONE_FS;
constexpr uint64_t kThreadMay =
    kThreadNeeds | CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_DETACHED;

// The kernel's struct clone_args up to cgroup (CLONE_ARGS_SIZE_VER2).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

// What a child process must ask for (posix_spawn, vfork), and what else it
// may: it shares the memory and runs only until its exec or exit, the
// parent waiting (children.hpp).  Its own descriptor table and working
// directory: the subcontext's are made real in it.
constexpr uint64_t kChildNeeds = CLONE_VM | CLONE_VFORK;
constexpr uint64_t kChildMay = kChildNeeds | CLONE_CLEAR_SIGHAND;

// A thread of the subcontext's, as glibc's pthread_create asks for one, or
// a child process, as posix_spawn and vfork ask for one: 0, or -errno
// (EPERM: neither; a fork).
SUBCTX_SIGNAL_CONTEXT long parse_clone(long nr, const greg_t* g, CloneRequest* rq) {
  uint64_t& exit_signal = rq->exit_signal;
  if (nr == SYS_vfork) {
    rq->flags = kChildNeeds;
    exit_signal = SIGCHLD;
    rq->stack = static_cast<uint64_t>(g[REG_RSP]);
  } else if (nr == SYS_clone) {
    rq->flags = static_cast<uint64_t>(g[REG_RDI]) & ~uint64_t{0xff};
    exit_signal = static_cast<uint64_t>(g[REG_RDI]) & 0xff;
    rq->stack = static_cast<uint64_t>(g[REG_RSI]);
    rq->ptid = static_cast<uint64_t>(g[REG_RDX]);
    rq->ctid = static_cast<uint64_t>(g[REG_R10]);
    rq->tls = static_cast<uint64_t>(g[REG_R8]);
  } else {
    const auto size = static_cast<uint64_t>(g[REG_RSI]);
    if (size < 64) return -EINVAL;
    if (size > 4096) return -E2BIG;  // the kernel's limit: a page
    CloneArgs a;
    zero_bytes(&a, sizeof a);
    const uint64_t known = size < sizeof a ? size : sizeof a;
    if (!copy_in(&a, static_cast<uint64_t>(g[REG_RDI]), known)) return -EFAULT;
    // A newer libc's larger struct: as the kernel, E2BIG unless the fields
    // this Matchmaker does not know (a shadow stack, say) are zero.
    for (uint64_t at = known; at < size; at += 8) {
      uint64_t word = 0;
      const uint64_t n = size - at < 8 ? size - at : 8;
      if (!copy_in(&word, static_cast<uint64_t>(g[REG_RDI]) + at, n)) return -EFAULT;
      if (word) return -E2BIG;
    }
    // pidfd is read only with CLONE_PIDFD (glibc fills it in anyway).
    if (a.set_tid_size) return -EPERM;
    if (!a.stack != !a.stack_size) return -EINVAL;
    rq->flags = a.flags;
    exit_signal = a.exit_signal;
    rq->stack = a.stack ? a.stack + a.stack_size : 0;
    rq->ptid = a.parent_tid;
    rq->ctid = a.child_tid;
    rq->tls = a.tls;
  }
  if ((rq->flags & kChildNeeds) == kChildNeeds && !(rq->flags & CLONE_THREAD)) {
    // No other exit signal: the kernel would send it to the client.
    if ((rq->flags & ~kChildMay) || (exit_signal != 0 && exit_signal != SIGCHLD)) return -EPERM;
    rq->child = true;
    if (!rq->stack) rq->stack = static_cast<uint64_t>(g[REG_RSP]);  // the parent's, as vfork
    return 0;
  }
  if ((rq->flags & kThreadNeeds) != kThreadNeeds || (rq->flags & ~kThreadMay) || exit_signal) return -EPERM;
  if (!rq->stack || !rq->tls) return -EINVAL;
  return 0;
}

// Frees th if it is in state `from` (and, for Exited, its parent is done).
SUBCTX_SIGNAL_CONTEXT bool free_slot_from(SubcontextThread& th, ThreadState from) {
  if (from == ThreadState::Exited && !th.parent_done.load(std::memory_order_acquire)) return false;
  if (!th.state.compare_exchange_strong(from, ThreadState::Claimed, std::memory_order_acq_rel)) return false;
  th.tls = 0;
  set_view(th, nullptr);
  th.state.store(ThreadState::Free, std::memory_order_release);
  return true;
}

}  // namespace

// A free slot, marked taken (an Exited one is freed first: nothing of its
// thread runs or touches memory any more, end_thread); null when all are in use.
SUBCTX_SIGNAL_CONTEXT SubcontextThread* claim_slot() {
  for (int i = 0; i < kMaxThreadSlots; ++i) {
    SubcontextThread& th = g_threads[i];
    if (th.state.load(std::memory_order_acquire) == ThreadState::Exited) free_slot_from(th, ThreadState::Exited);
    ThreadState st = ThreadState::Free;
    if (!th.state.compare_exchange_strong(st, ThreadState::Claimed, std::memory_order_acq_rel)) continue;
    int used = g_threads_used.load(std::memory_order_relaxed);
    while (used <= i && !g_threads_used.compare_exchange_weak(used, i + 1, std::memory_order_release)) {
    }
    return &th;
  }
  return nullptr;
}

SUBCTX_SIGNAL_CONTEXT void prepare_start(SubcontextThread& th, const SubcontextView& v, const ucontext_t* uc,
                                         const CloneRequest& rq, uint64_t parent_mask) {
  ThreadStart& s = th.start;
  copy_bytes(s.regs, uc->uc_mcontext.gregs, sizeof s.regs);
  s.regs[REG_RAX] = 0;  // the child's clone result
  s.regs[REG_RSP] = rq.stack;
  s.mask = thread_signal_mask();
  s.pkru = v.thread_pkru;
  s.mxcsr = uc->uc_mcontext.fpregs ? uc->uc_mcontext.fpregs->mxcsr : 0x1f80;
  s.tid = 0;
  s.selector = 1;
  if (!s.ss_sp) {  // the slot's first thread: its alternate signal stack, a guard page below
    const long m = sys6(SYS_mmap, 0, kAltStackGuard + kAltStackSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!is_syscall_error(m) &&
        !is_syscall_error(sys6(SYS_mprotect, m + kAltStackGuard, kAltStackSize, PROT_READ | PROT_WRITE))) {
      s.ss_sp = static_cast<uint64_t>(m) + kAltStackGuard;
      s.ss_size = kAltStackSize;
    }
  }
  th.tid.store(0, std::memory_order_relaxed);
  th.parent_done.store(false, std::memory_order_relaxed);
  th.tls = rq.tls;
  th.ctid = (rq.flags & CLONE_CHILD_CLEARTID) ? rq.ctid : 0;
  th.kind = SlotKind::Thread;
  th.alt_sp = th.alt_size = 0;
  th.alt_flags = SS_DISABLE;
  s.prepare = 0;
  s.save_hi = s.save_lo = s.save_len = s.save_buf = s.save_cap = 0;
  th.mask = parent_mask;
  th.stop.store(false, std::memory_order_relaxed);
  zero_bytes(&th.frame, sizeof th.frame);
  th.frame.selector = &s.selector;
  set_view(th, const_cast<SubcontextView*>(&v));
}

// The parent's slot after a failed clone (state Starting, nobody else's).
SUBCTX_SIGNAL_CONTEXT void release_unstarted(SubcontextThread& th) {
  th.tls = 0;
  set_view(th, nullptr);
  th.state.store(ThreadState::Free, std::memory_order_release);
}

SUBCTX_SIGNAL_CONTEXT uint64_t thread_signal_mask() { return ~kCallSignals; }

namespace {

SUBCTX_SIGNAL_CONTEXT bool live(ThreadState st) { return st == ThreadState::Starting || st == ThreadState::Running; }

SUBCTX_SIGNAL_CONTEXT int32_t tid_of(const SubcontextThread& th) {
  const int32_t tid = th.tid.load(std::memory_order_acquire);
  return tid ? tid : static_cast<const volatile int32_t&>(th.start.tid);  // the child writes it first thing
}

// The first live slot (a thread or child starting or running) that match
// accepts, or null.
template <class Match>
SUBCTX_SIGNAL_INLINE inline SubcontextThread* live_slot(Match match) {
  const int used = g_threads_used.load(std::memory_order_acquire);
  for (int i = 0; i < used; ++i) {
    SubcontextThread& th = g_threads[i];
    if (live(th.state.load(std::memory_order_acquire)) && match(th)) return &th;
  }
  return nullptr;
}

// A thread pointer no call and no live subcontext thread has.
SUBCTX_SIGNAL_CONTEXT bool tls_taken(uint64_t tls) {
  return view_with_tcb(tls) || live_slot([tls](const SubcontextThread& th) { return th.tls == tls; });
}

// Where the range of v's memory holding address a starts (its segments,
// and what its code mapped), or a + 1 when none holds it.
SUBCTX_SIGNAL_CONTEXT uint64_t owned_from(SubcontextView& v, uint64_t a) {
  uint64_t from = a + 1;
  for (const sys::Mapping& m : v.segments.mappings())
    if (a >= m.begin() && a < m.end() && m.begin() < from) from = m.begin();
  const MappedRange* ranges = v.sub_maps.ranges.get();
  for (uint32_t i = 0; i < v.sub_maps.count; ++i)
    if (a >= ranges[i].first && a < ranges[i].second && ranges[i].first < from) from = ranges[i].first;
  return from;
}

// Whether [lo, hi) lies in memory of v's (the kernel writes there for
// clone, under the handler's rights), in one range or in adjacent ones: a
// segment's file view and its anonymous tail, a reservation its code
// filled piece by piece.
SUBCTX_SIGNAL_CONTEXT bool owned_by(SubcontextView& v, uint64_t lo, uint64_t hi) {
  const uint64_t ranges = v.segments.mappings().size() + v.sub_maps.count;
  for (uint64_t step = 0; hi > lo && step <= ranges; ++step) {  // each step moves below one range
    const uint64_t from = owned_from(v, hi - 1);
    if (from >= hi) return false;
    hi = from;
  }
  return hi <= lo;
}

SUBCTX_SIGNAL_CONTEXT bool owned_or_null(SubcontextView& v, uint64_t at, uint64_t size) {
  return at == 0 || owned_by(v, at, at + size);
}

// kThreadStackForHandler and the kernel's signal frame (set at map:
// prepare_threads; the default until then is generous).
std::atomic<uint64_t> g_min_thread_stack{kThreadStackForHandler + 16 * 1024};

// What of a clone the kernel writes or the thread runs on: memory of the
// subcontext's only (the parent's handler runs with every key open); the
// stack with room for the SIGSYS handler below its start.
SUBCTX_SIGNAL_CONTEXT bool addresses_owned(SubcontextView& v, const CloneRequest& rq) {
  const uint64_t stack_need = g_min_thread_stack.load(std::memory_order_relaxed);
  if (rq.stack < stack_need) return false;
  SpinGuard locked(&v.tables_lock);
  const bool ok = owned_by(v, rq.stack - stack_need, rq.stack) && owned_by(v, rq.tls, rq.tls + 8) &&
                  owned_or_null(v, rq.ptid, 4) && owned_or_null(v, rq.ctid, 4);
  return ok;
}

}  // namespace

SUBCTX_SIGNAL_CONTEXT bool any_subcontext_threads() { return g_threads_used.load(std::memory_order_acquire) != 0; }

SUBCTX_SIGNAL_CONTEXT SubcontextThread* current_subcontext_thread() {
  if (!any_subcontext_threads()) return nullptr;  // no system call while none ever ran
  const auto tid = static_cast<int32_t>(sys6(SYS_gettid));
  return live_slot([tid](const SubcontextThread& th) { return tid_of(th) == tid; });
}

// linux/signal.h's (glibc's signal.h lacks it).
constexpr int kSsAutodisarm = static_cast<int>(1u << 31);

SUBCTX_SIGNAL_CONTEXT long thread_sigaltstack(SubcontextThread& th, const greg_t* g) {
  stack_t want{};
  if (g[REG_RDI] && !copy_in(&want, static_cast<uint64_t>(g[REG_RDI]), sizeof want)) return -EFAULT;
  if (g[REG_RDI]) {  // checked as the kernel checks it, before anything changes
    const int mode = want.ss_flags & ~kSsAutodisarm;
    if (mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK) return -EINVAL;
    constexpr size_t kMinSize = 2048;  // the kernel's MINSIGSTKSZ (glibc's may be a sysconf call)
    if (mode != SS_DISABLE && want.ss_size < kMinSize) return -ENOMEM;
  }
  if (g[REG_RSI]) {
    stack_t old{};
    old.ss_sp = reinterpret_cast<void*>(th.alt_sp);
    old.ss_size = th.alt_size;
    old.ss_flags = th.alt_flags;
    if (!copy_out(static_cast<uint64_t>(g[REG_RSI]), &old, sizeof old)) return -EFAULT;
  }
  if (g[REG_RDI]) {
    const bool off = (want.ss_flags & ~kSsAutodisarm) == SS_DISABLE;
    th.alt_sp = off ? 0 : reinterpret_cast<uint64_t>(want.ss_sp);
    th.alt_size = off ? 0 : want.ss_size;
    th.alt_flags = off ? SS_DISABLE : (want.ss_flags & kSsAutodisarm);
  }
  return 0;
}

SUBCTX_SIGNAL_CONTEXT bool is_thread_of(const SubcontextView& v, int32_t tid) {
  if (tid <= 0 || !any_subcontext_threads()) return false;
  return live_slot([&](const SubcontextThread& th) {
    return th.kind == SlotKind::Thread && tid_of(th) == tid && view_of(th) == &v;
  });
}

SUBCTX_SIGNAL_CONTEXT long start_thread(SubcontextView& v, long nr, const ucontext_t* uc, uint64_t parent_mask,
                                        uint64_t deadline_ns) {
  CloneRequest rq;
  if (const long bad = parse_clone(nr, uc->uc_mcontext.gregs, &rq)) return bad;
  if (rq.child) return start_child(v, rq, uc, parent_mask, deadline_ns);
  if (!v.max_threads) return -EPERM;
  if (tls_taken(rq.tls) || !addresses_owned(v, rq)) return -EINVAL;
  if (v.threads.fetch_add(1, std::memory_order_acq_rel) >= v.max_threads) {
    v.threads.fetch_sub(1, std::memory_order_relaxed);
    return -EAGAIN;  // pthread_create: "insufficient resources"
  }
  SubcontextThread* th = claim_slot();
  if (!th) {
    v.threads.fetch_sub(1, std::memory_order_relaxed);
    return -EAGAIN;
  }
  prepare_start(*th, v, uc, rq, parent_mask);
  v.threads_ran.store(true, std::memory_order_relaxed);
  v.fds.threaded.store(true, std::memory_order_seq_cst);  // before a second thread can touch the table
  th->state.store(ThreadState::Starting, std::memory_order_seq_cst);
  // Against stop_threads: it raises threads_stopping, then scans; this
  // publishes the slot, then looks (both seq_cst): one of the two sees the other.
  long r = -EAGAIN;
  if (th->start.ss_sp && !v.threads_stopping.load(std::memory_order_seq_cst))
    r = subctx_clone_thread(rq.flags, rq.stack, rq.ptid, rq.ctid, rq.tls, &th->start);
  if (r < 0) {
    v.threads.fetch_sub(1, std::memory_order_relaxed);
    release_unstarted(*th);
    return r;
  }
  th->tid.store(static_cast<int32_t>(r), std::memory_order_release);
  ThreadState st = ThreadState::Starting;
  th->state.compare_exchange_strong(st, ThreadState::Running, std::memory_order_acq_rel);  // unless it ended already
  th->parent_done.store(true, std::memory_order_release);
  return r;
}

SUBCTX_SIGNAL_CONTEXT long thread_sigprocmask(SubcontextThread& th, const greg_t* g) {
  const long how = g[REG_RDI];
  const auto set = static_cast<uint64_t>(g[REG_RSI]), old = static_cast<uint64_t>(g[REG_RDX]);
  if (g[REG_R10] != 8) return -EINVAL;
  uint64_t mask = th.mask, given = 0;
  if (set) {
    if (!copy_in(&given, set, 8)) return -EFAULT;
    if (how == SIG_BLOCK) mask |= given;
    else if (how == SIG_UNBLOCK) mask &= ~given;
    else if (how == SIG_SETMASK) mask = given;
    else return -EINVAL;
  }
  if (old && !copy_out(old, &th.mask, 8)) return -EFAULT;
  th.mask = mask & ~((uint64_t{1} << (SIGKILL - 1)) | (uint64_t{1} << (SIGSTOP - 1)));
  return 0;
}

SUBCTX_SIGNAL_CONTEXT void end_thread(SubcontextThread& th, int status) {
  if (th.kind == SlotKind::Child) child_exits(status);  // a process of its own: the parent frees the slot
  // Nothing of the thread touches memory once it is Exited, so reset and
  // unmap need not wait for the kernel to let it go (nor trust a thread id
  // that may be reused): no robust list is walked, and the kernel's clearing
  // of the child tid, which glibc's join waits on, is done by the last
  // instructions (subctx_thread_exit: after it the joiner may reuse this
  // stack), where the word is still writable (the subcontext may have
  // unmapped it: a fault there would end the process).
  uint64_t ctid = th.ctid;
  int32_t word;
  if (ctid && !(copy_in(&word, ctid, sizeof word) && copy_out(ctid, &word, sizeof word))) ctid = 0;
  sys6(SYS_set_tid_address, 0);
  sys6(SYS_set_robust_list, 0, 24 /* sizeof(struct robust_list_head) */);
  if (SubcontextView* v = view_of(th)) v->threads.fetch_sub(1, std::memory_order_acq_rel);
  th.state.store(ThreadState::Exited, std::memory_order_release);
  subctx_thread_exit(ctid, status);
}

SUBCTX_SIGNAL_CONTEXT void thread_failed(SubcontextThread& th, const gate::AbortRecord& why) {
  if (th.kind == SlotKind::Child) child_failed(th, why);  // as a process of its own would: the parent sees it
  if (SubcontextView* v = view_of(th)) {
    int none = 0;
    if (v->thread_fault_state.compare_exchange_strong(none, 1, std::memory_order_acq_rel)) {
      copy_bytes(&v->thread_fault.why, &why, sizeof why);
      v->thread_fault.tid = static_cast<int32_t>(sys6(SYS_gettid));
      v->thread_fault_state.store(2, std::memory_order_release);
    }
  }
  end_thread(th, 0);
}

// ---- normal code ---------------------------------------------------------

uint32_t thread_count(const SubcontextView& v) { return v.threads.load(std::memory_order_acquire); }

namespace {
void forget_threads_in_child() {
  const int used = g_threads_used.load(std::memory_order_acquire);
  for (int i = 0; i < used; ++i) {
    SubcontextThread& th = g_threads[i];
    if (SubcontextView* v = view_of(th)) {
      v->threads.store(0, std::memory_order_relaxed);
      v->fds.threaded.store(false, std::memory_order_relaxed);  // one thread now; the dead descriptors stay until reset
      v->fds.lock.store(0, std::memory_order_relaxed);          // perhaps held by a thread that is not here
      v->tables_lock.store(0, std::memory_order_relaxed);
    }
    th.tls = 0;
    set_view(th, nullptr);
    th.state.store(ThreadState::Free, std::memory_order_relaxed);
  }
  forget_children_in_child();
}
}  // namespace

void prepare_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr, forget_threads_in_child);
    const unsigned long frame = getauxval(AT_MINSIGSTKSZ);  // 0 where the kernel does not say (before 5.14)
    g_min_thread_stack.store(kThreadStackForHandler + (frame ? frame : 16 * 1024), std::memory_order_relaxed);
  });
}

void stop_threads(SubcontextView& v) {
  if (!v.threads_ran.load(std::memory_order_acquire)) return;
  install_deadline_handler();  // kStopSignal's handler ends them
  v.threads_stopping.store(true, std::memory_order_seq_cst);
  const long pid = sys6(SYS_getpid);
  // Until every thread of v has ended (Exited, its parent done): each is
  // marked and signalled, again now and then (subcontext code may have
  // waited for the signal instead of taking it); slots are read afresh
  // each round (a thread being started meanwhile is seen here or sees
  // threads_stopping).
  for (int round = 0;; ++round) {
    bool running = false;
    const int used = g_threads_used.load(std::memory_order_seq_cst);
    for (int i = 0; i < used; ++i) {
      SubcontextThread& th = g_threads[i];
      if (view_of(th) != &v) continue;
      const ThreadState st = th.state.load(std::memory_order_acquire);
      if (st == ThreadState::Free || st == ThreadState::Claimed || free_slot_from(th, ThreadState::Exited)) continue;
      running = true;
      if (st == ThreadState::Exited) continue;  // its parent is finishing the clone
      th.stop.store(true, std::memory_order_seq_cst);
      const int32_t tid = tid_of(th);
      // A child (before its exec: its parent, a thread, waits for it) is
      // killed; the parent frees the slot.
      if (tid && th.kind == SlotKind::Child) {
        if (th.child && th.child->pidfd >= 0) sys6(SYS_pidfd_send_signal, th.child->pidfd, SIGKILL, 0, 0);
        else sys6(SYS_kill, tid, SIGKILL);  // the clone has not returned: not reaped, its pid its own
      } else if (tid && round % 64 == 0) sys6(SYS_tgkill, pid, tid, kStopSignal);
    }
    if (!running) break;
    const struct timespec pause = {0, 100 * 1000};
    nanosleep(&pause, nullptr);
  }
  v.threads.store(0, std::memory_order_release);
  v.threads_ran.store(false, std::memory_order_release);
  v.threads_stopping.store(false, std::memory_order_release);
  stop_sharing_descriptors(v.fds);
}

}  // namespace subctx::fault
