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
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/syscall_names.hpp"
#include "fault/signals.hpp"
#include "gate/gate.hpp"
#include "matchmaker/subcontext_state.hpp"
#include "sys/io.hpp"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif

#define SUBCTX_SIGNAL_CONTEXT __attribute__((no_sanitize("address", "undefined"), no_stack_protector))

namespace subctx::fault {

namespace {

std::atomic<int> g_available{-1};  // -1 unknown, 0 no, 1 yes
std::string g_unavailable_why;
char g_selector_probe;

bool probe_dispatch() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("SUBCTX_SYSCALLS");
    if (env && !std::strcmp(env, "off")) {
      g_unavailable_why = "SUBCTX_SYSCALLS=off";
      g_available = 0;
      return;
    }
    // Turned on and off again on this thread: does the kernel have it?
    const auto lo = reinterpret_cast<unsigned long>(subctx_allowed_begin);
    const auto len = static_cast<unsigned long>(subctx_allowed_end - subctx_allowed_begin);
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, lo, len, &g_selector_probe) != 0) {
      g_unavailable_why = "prctl(PR_SET_SYSCALL_USER_DISPATCH) failed: " + sys::errno_text(errno) +
                          " (Linux 5.11 or later with CONFIG_GENERIC_ENTRY has it)";
      g_available = 0;
      return;
    }
    prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    g_available = 1;
  });
  return g_available.load() == 1;
}

// 0 allowed, 1 blocked: written by the gate, read by the kernel.
thread_local uint8_t t_selector = 0;
thread_local int8_t t_dispatch = 0;  // 0 not yet, 1 on, -1 off

void forget_dispatch_in_child() { t_dispatch = 0; }  // fork: the kernel turned it off

// ---- signal context -----------------------------------------------------

SUBCTX_SIGNAL_CONTEXT long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  return subctx_allowed_syscall(nr, a, b, c, d, e, f);
}
SUBCTX_SIGNAL_CONTEXT long sys3(long nr, long a = 0, long b = 0, long c = 0) { return sys6(nr, a, b, c, 0, 0, 0); }

SUBCTX_SIGNAL_CONTEXT bool overlaps(uint64_t a, uint64_t b, uint64_t lo, uint64_t hi) { return a < hi && lo < b; }

SUBCTX_SIGNAL_CONTEXT bool touches_image(const detail::SubcontextState& s, uint64_t lo, uint64_t hi) {
  for (const sys::Mapping& m : s.mappings)
    if (overlaps(lo, hi, m.begin(), m.end())) return true;
  return false;
}

SUBCTX_SIGNAL_CONTEXT uint64_t page_up(uint64_t v) { return (v + 4095) & ~uint64_t{4095}; }

SUBCTX_SIGNAL_CONTEXT void track_add(detail::SubMappings& t, uint64_t lo, uint64_t hi) {
  t.bytes += hi - lo;  // counted for the quota even when the table is full
  if (t.bytes > t.peak) t.peak = t.bytes;
  if (t.count == detail::SubMappings::kMax) {
    t.lost = true;
    return;
  }
  t.ranges[t.count++] = {lo, hi};
}

SUBCTX_SIGNAL_CONTEXT void track_remove(detail::SubMappings& t, uint64_t lo, uint64_t hi) {
  for (uint32_t i = 0; i < t.count;) {
    auto [a, b] = t.ranges[i];
    if (!overlaps(a, b, lo, hi)) {
      ++i;
      continue;
    }
    t.bytes -= std::min(b, hi) - std::max(a, lo);
    if (a < lo && b > hi) {  // a hole in the middle: two pieces
      t.ranges[i] = {a, lo};
      if (t.count < detail::SubMappings::kMax) t.ranges[t.count++] = {hi, b};
      else t.lost = true;
      ++i;
    } else if (a < lo) {
      t.ranges[i++] = {a, lo};
    } else if (b > hi) {
      t.ranges[i++] = {hi, b};
    } else {
      t.ranges[i] = t.ranges[--t.count];
    }
  }
}

SUBCTX_SIGNAL_CONTEXT bool is_error(long r) { return r < 0 && r > -4096; }

SUBCTX_SIGNAL_CONTEXT bool fd_tracked(const detail::SubFds& t, long fd) {
  for (uint32_t i = 0; i < t.count; ++i)
    if (t.fds[i] == fd) return true;
  return false;
}

SUBCTX_SIGNAL_CONTEXT void fd_add(detail::SubFds& t, long fd) {
  if (fd < 0 || fd_tracked(t, fd)) return;
  if (t.count == detail::SubFds::kMax) {
    t.lost = true;
    return;
  }
  t.fds[t.count++] = static_cast<int>(fd);
}

// Forgets descriptors in [lo, hi].
SUBCTX_SIGNAL_CONTEXT void fd_remove(detail::SubFds& t, unsigned long lo, unsigned long hi) {
  for (uint32_t i = 0; i < t.count;) {
    const auto fd = static_cast<unsigned long>(t.fds[i]);
    if (fd >= lo && fd <= hi) t.fds[i] = t.fds[--t.count];
    else ++i;
  }
}

// The descriptors an SCM_RIGHTS message brought in, from the control data
// the kernel wrote back into a msghdr of subcontext code (msg_controllen is
// what it filled).  Walked by hand, within the bounds the header gives: the
// buffer is the subcontext's, and CMSG_NXTHDR is a libc call.
SUBCTX_SIGNAL_CONTEXT void fd_note_rights(detail::SubFds& t, const struct msghdr* m) {
  if (!m->msg_control) return;
  const auto* p = static_cast<const unsigned char*>(m->msg_control);
  const size_t len = m->msg_controllen;
  for (size_t at = 0; at + sizeof(struct cmsghdr) <= len;) {
    struct cmsghdr c;
    std::memcpy(&c, p + at, sizeof c);
    if (c.cmsg_len < sizeof(struct cmsghdr) || c.cmsg_len > len - at) return;
    if (c.cmsg_level == SOL_SOCKET && c.cmsg_type == SCM_RIGHTS) {
      const size_t n = (c.cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, p + at + CMSG_LEN(0) + i * sizeof(int), sizeof fd);
        fd_add(t, fd);
      }
    }
    at += CMSG_ALIGN(c.cmsg_len);
  }
}

// The descriptors a successful fd-making system call made: its result, or
// the two it wrote (pipe, pipe2, socketpair), or those received with
// SCM_RIGHTS (recvmsg, recvmmsg: the result is a length or a count).  dup2/dup3 onto a descriptor
// that was open before the call (the client's, or one from the snapshot)
// took it over: the client may still count on that number, so it is not
// the subcontext's to close.
SUBCTX_SIGNAL_CONTEXT void fd_note(detail::SubFds& t, long nr, const greg_t* g, long result, bool target_was_open) {
  switch (nr) {
    case SYS_pipe:
    case SYS_pipe2:
    case SYS_socketpair: {
      const int* pair = reinterpret_cast<const int*>(nr == SYS_socketpair ? g[REG_R10] : g[REG_RDI]);
      fd_add(t, pair[0]);
      fd_add(t, pair[1]);
      return;
    }
    case SYS_dup2:
    case SYS_dup3:
      if (!target_was_open) fd_add(t, result);
      return;
    case SYS_fcntl:
      if (g[REG_RSI] == F_DUPFD || g[REG_RSI] == F_DUPFD_CLOEXEC) fd_add(t, result);
      return;
    case SYS_recvmsg:
      fd_note_rights(t, reinterpret_cast<const struct msghdr*>(g[REG_RSI]));
      return;
    case SYS_recvmmsg: {
      const auto* v = reinterpret_cast<const struct mmsghdr*>(g[REG_RSI]);
      for (long i = 0; i < result; ++i) fd_note_rights(t, &v[i].msg_hdr);
      return;
    }
    case SYS_close_range:
      if (!(g[REG_RDX] & CLOSE_RANGE_CLOEXEC))
        fd_remove(t, static_cast<unsigned long>(g[REG_RDI]), static_cast<unsigned long>(g[REG_RSI]));
      return;
    default:
      fd_add(t, result);
  }
}

// A signal the subcontext sends itself: what it would do to a process.
SUBCTX_SIGNAL_CONTEXT bool ends_a_process(long sig) {
  switch (sig) {
    case 0: case SIGCHLD: case SIGURG: case SIGWINCH: case SIGCONT:
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
      return false;
  }
  return sig > 0 && sig < 65;
}

// rt_sigprocmask of subcontext code: applied to the mask the thread gets
// back when the handler returns (made here, it would be undone then).  The
// kernel makes the copies (a bad pointer is EFAULT, as for the real call),
// on the thread's mask set for the moment to the interrupted one.  Signals
// a call needs stay unblocked; the client's mask is saved the first time,
// for after the call.
SUBCTX_SIGNAL_CONTEXT long emulate_sigprocmask(gate::Frame* f, ucontext_t* uc, const greg_t* g) {
  uint64_t mask;
  std::memcpy(&mask, &uc->uc_sigmask, 8);
  if (g[REG_RSI] && !f->mask_changed) {
    f->client_mask = mask;
    f->mask_changed = true;
  }
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&mask), 0, 8, 0, 0);
  const long r = sys6(SYS_rt_sigprocmask, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], 0, 0);
  uint64_t now = mask;
  sys6(SYS_rt_sigprocmask, SIG_BLOCK, 0, reinterpret_cast<long>(&now), 8, 0, 0);
  now &= ~kCallSignals;
  std::memcpy(&uc->uc_sigmask, &now, 8);
  const uint64_t all = ~uint64_t{0};
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8, 0, 0);
  return r;
}

// System calls that do not block: made with signals still blocked.
SUBCTX_SIGNAL_CONTEXT bool never_blocks(long nr) {
  switch (nr) {
    case SYS_getpid: case SYS_gettid: case SYS_getuid: case SYS_geteuid: case SYS_getgid: case SYS_getegid:
    case SYS_getppid: case SYS_mmap: case SYS_munmap: case SYS_mremap: case SYS_mprotect: case SYS_madvise:
    case SYS_lseek: case SYS_fstat: case SYS_clock_gettime: case SYS_gettimeofday: case SYS_time:
    case SYS_getrandom: case SYS_close: case SYS_brk: case SYS_getcpu: case SYS_uname:
      return true;
  }
  return false;
}

SUBCTX_SIGNAL_CONTEXT long make(long nr, const greg_t* g, const ucontext_t* uc) {
  const long a = g[REG_RDI], b = g[REG_RSI], c = g[REG_RDX], d = g[REG_R10], e = g[REG_R8], f = g[REG_R9];
  if (never_blocks(nr)) return sys6(nr, a, b, c, d, e, f);
  // Signals may interrupt it as they would the subcontext: a deadline, a
  // client's itimer.
  uint64_t mask, all = ~uint64_t{0};
  std::memcpy(&mask, &uc->uc_sigmask, 8);
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&mask), 0, 8, 0, 0);
  const long r = sys6(nr, a, b, c, d, e, f);
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all), 0, 8, 0, 0);
  return r;
}

}  // namespace

namespace {
// The system calls that make or close file descriptors (kTrackFd).
constexpr long kFdSyscalls[] = {
    SYS_open, SYS_openat, SYS_openat2, SYS_creat, SYS_open_by_handle_at, SYS_socket, SYS_socketpair, SYS_accept,
    SYS_accept4, SYS_pipe, SYS_pipe2, SYS_dup, SYS_dup2, SYS_dup3, SYS_fcntl, SYS_eventfd, SYS_eventfd2,
    SYS_epoll_create, SYS_epoll_create1, SYS_timerfd_create, SYS_signalfd, SYS_signalfd4, SYS_inotify_init,
    SYS_inotify_init1, SYS_fanotify_init, SYS_memfd_create, SYS_memfd_secret, SYS_userfaultfd, SYS_perf_event_open,
    SYS_pidfd_open, SYS_pidfd_getfd, SYS_io_uring_setup, SYS_recvmsg, SYS_recvmmsg, SYS_close, SYS_close_range};

// What an allowed system call does: made, and tracked where a reset must
// undo it (memory, descriptors).
int16_t allowed_action(long nr) {
  switch (nr) {
    case SYS_mmap: case SYS_munmap: case SYS_mremap: case SYS_mprotect:
      return kTrackMemory;
    default:
      return std::find(std::begin(kFdSyscalls), std::end(kFdSyscalls), nr) != std::end(kFdSyscalls) ? kTrackFd
                                                                                                      : kAllow;
  }
}

// One rule into the table; why: empty, or what is wrong with it.  Allow
// gives back the default tracking, whatever an earlier rule (the image's)
// set.
std::string apply_rule(std::array<int16_t, detail::kSyscallTableSize>& t, const SyscallRule& r) {
  if (std::string why = syscall_rule_problem(r); !why.empty()) return why;
  const long nr = syscall_number(r.syscall);
  t[nr] = r.action == SyscallRule::Action::Allow ? allowed_action(nr)
          : r.action == SyscallRule::Action::Fault ? kEndCall
                                                   : static_cast<int16_t>(r.error);
  return "";
}
}  // namespace

void build_syscall_table(detail::SubcontextState& s, const std::vector<SyscallRule>& client_rules) {
  auto& t = s.syscall_action;
  for (long nr = 0; nr < detail::kSyscallTableSize; ++nr) t[nr] = allowed_action(nr);
  t[SYS_exit] = t[SYS_exit_group] = kEndCallExit;
  t[SYS_brk] = ENOMEM;
  t[SYS_clone] = t[SYS_clone3] = t[SYS_fork] = t[SYS_vfork] = t[SYS_execve] = t[SYS_execveat] = EPERM;
  t[SYS_rt_sigaction] = EPERM;
  t[SYS_tgkill] = t[SYS_tkill] = t[SYS_kill] = t[SYS_rt_sigqueueinfo] = t[SYS_rt_tgsigqueueinfo] = kSelfSignal;
  t[SYS_rt_sigreturn] = kSigreturn;
  for (const auto& r : s.info.syscall_rules) {
    const SyscallRule rule{r.syscall, static_cast<SyscallRule::Action>(r.action), static_cast<int>(r.error)};
    if (std::string why = apply_rule(t, rule); !why.empty())
      throw BadImage("image " + s.path + ": its system call rule: " + why);
  }
  for (const SyscallRule& r : client_rules)
    if (std::string why = apply_rule(t, r); !why.empty())
      throw Error(Errc::InvalidArgument, "syscall rule for image " + s.path + ": " + why);
}

std::vector<std::pair<std::string, std::string>> default_syscall_policy() {
  return {
      {"exit, exit_group", "the call fails with SubcontextFault (exit status); the client goes on"},
      {"brk", "ENOMEM: the subcontext's malloc uses mmap, never the client's heap"},
      {"clone, clone3, fork, vfork, execve, execveat", "EPERM"},
      {"rt_sigaction", "EPERM: signal dispositions are the client's"},
      {"rt_sigprocmask", "applied to the calling thread's mask for the call (never SIGSYS, fault or deadline signals); the client's mask comes back after it"},
      {"arch_prctl(ARCH_SET_FS/GS)", "EPERM: the thread pointer is the Matchmaker's to switch"},
      {"tgkill, tkill, rt_tgsigqueueinfo; kill, rt_sigqueueinfo of its own pid or group",
       "act on the calling thread: a signal that would end a process ends the call (SubcontextFault), others are ignored; kill(-1): EPERM"},
      {"system calls with the x32 bit", "ENOSYS"},
      {"mmap, munmap, mremap, mprotect", "made; tracked for reset and the mapped-bytes quota"},
      {"open, openat, socket, pipe, dup, fcntl(F_DUPFD), accept, eventfd, memfd_create... ; close, close_range",
       "made; the descriptors are tracked: reset and unmap close those still open"},
      {"everything else", "made as asked (getpid and gettid return the calling thread's ids)"},
  };
}

bool syscall_dispatch_available(std::string* why) {
  const bool ok = probe_dispatch();
  if (!ok && why) *why = g_unavailable_why;
  return ok;
}

volatile uint8_t* syscall_selector() {
  if (__builtin_expect(t_dispatch > 0, 1)) return &t_selector;
  if (t_dispatch < 0) return nullptr;
  t_dispatch = -1;
  if (!probe_dispatch()) return nullptr;
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

// Entered through subctx_syscall_entry (gate.S) with the handler's PKRU.
extern "C" SUBCTX_SIGNAL_CONTEXT __attribute__((visibility("hidden"))) void subctx_syscall_handler(
    int sig, siginfo_t* info, void* ucv, uint32_t pkru) {
  using namespace subctx;
  using namespace subctx::fault;
  auto* uc = static_cast<ucontext_t*>(ucv);
  greg_t* g = uc->uc_mcontext.gregs;
  detail::SubcontextState* s = state_of_current_thread();
  AllowSyscalls allow(s ? s->current_frame : nullptr);  // before any system call
  if (info->si_code != SYS_USER_DISPATCH) {  // seccomp's, or sent: the client's
    chain_to_client(sig, info, ucv, pkru);
    return;
  }
  const long nr = info->si_syscall;
  if (!s) {  // not inside a call (cannot happen: the gate allows on the way out)
    g[REG_RAX] = make(nr, g, uc);
    return;
  }
  gate::Frame* f = s->current_frame;
  // x32 system calls (bit 30) have their own numbers: none for subcontexts.
  const int16_t action = nr >= 0 && nr < detail::kSyscallTableSize ? s->syscall_action[nr] : ENOSYS;
  gate::AbortRecord end;
  end.pc = static_cast<uint64_t>(g[REG_RIP]);
  end.sp = static_cast<uint64_t>(g[REG_RSP]);
  end.bp = static_cast<uint64_t>(g[REG_RBP]);
  end.value = static_cast<uint64_t>(nr);
  long result = 0;
  switch (action) {
    case kAllow:
      if (nr == SYS_rt_sigprocmask) {
        result = emulate_sigprocmask(f, uc, g);
        break;
      }
      if (nr == SYS_arch_prctl && (g[REG_RDI] == 0x1002 /* ARCH_SET_FS */ || g[REG_RDI] == 0x1001 /* GS */)) {
        result = -EPERM;  // the thread pointer is how the Matchmaker knows a call is in progress
        break;
      }
      // Where the subcontext is while it waits: a deadline reports this.
      f->syscall_pc = end.pc;
      f->syscall_sp = end.sp;
      f->syscall_bp = end.bp;
      result = make(nr, g, uc);
      f->syscall_pc = 0;
      break;
    case kEndCallExit:
      end.kind = gate::AbortKind::Exit;
      end.status = static_cast<int32_t>(g[REG_RDI] & 0xff);
      allow.keep_allowed();
      abandon_call(*s, ucv, end);
      return;
    case kEndCall:
      end.kind = gate::AbortKind::Signal;
      end.signal = SIGSYS;
      end.code = SYS_USER_DISPATCH;
      allow.keep_allowed();
      abandon_call(*s, ucv, end);
      return;
    case kSelfSignal: {
      // tgkill, tkill, rt_tgsigqueueinfo: a subcontext has one thread, so
      // any thread id it holds is its own, or stale from the snapshot.
      // kill, rt_sigqueueinfo: its own pid or its process group is itself;
      // -1 (everyone) is refused; other processes are signalled as asked.
      const bool by_pid = nr == SYS_kill || nr == SYS_rt_sigqueueinfo;
      const long target_sig = nr == SYS_tgkill || nr == SYS_rt_tgsigqueueinfo ? g[REG_RDX] : g[REG_RSI];
      if (by_pid && g[REG_RDI] == -1) {
        result = -EPERM;
        break;
      }
      if (by_pid && g[REG_RDI] > 0 && g[REG_RDI] != sys3(SYS_getpid)) {
        result = make(nr, g, uc);
        break;
      }
      if (target_sig < 0 || target_sig >= 65) {
        result = -EINVAL;
        break;
      }
      if (!ends_a_process(target_sig)) break;  // 0: "does it exist" -- it does
      end.kind = gate::AbortKind::Signal;
      end.signal = static_cast<int32_t>(target_sig);
      end.code = SI_TKILL;
      allow.keep_allowed();
      abandon_call(*s, ucv, end);
      return;
    }
    case kTrackMemory: {
      detail::SubMappings& t = s->sub_maps;
      const uint64_t a = static_cast<uint64_t>(g[REG_RDI]), len = page_up(static_cast<uint64_t>(g[REG_RSI]));
      const uint64_t max = s->max_mapped_bytes.load(std::memory_order_relaxed);
      uint64_t grows = 0;
      if (nr == SYS_mmap) grows = len;
      if (nr == SYS_mremap) {
        const uint64_t new_len = page_up(static_cast<uint64_t>(g[REG_RDX]));
        grows = new_len > len ? new_len - len : 0;
      }
      if (max && grows && t.bytes + grows > max) {
        end.kind = gate::AbortKind::Quota;
        end.code = 0;  // mapped bytes
        end.value = t.bytes + grows;
        allow.keep_allowed();
        abandon_call(*s, ucv, end);
        return;
      }
      result = make(nr, g, uc);
      if (is_error(result)) break;
      if (nr == SYS_mmap) {
        const auto r = static_cast<uint64_t>(result);
        if (touches_image(*s, r, r + len)) t.layout_changed = true;
        track_remove(t, r, r + len);  // MAP_FIXED replaced what was there
        track_add(t, r, r + len);
      } else if (nr == SYS_munmap) {
        if (touches_image(*s, a, a + len)) t.layout_changed = true;
        track_remove(t, a, a + len);
      } else if (nr == SYS_mremap) {
        const auto r = static_cast<uint64_t>(result);
        const uint64_t new_len = page_up(static_cast<uint64_t>(g[REG_RDX]));
        if (touches_image(*s, a, a + len) || touches_image(*s, r, r + new_len)) t.layout_changed = true;
        if (!(g[REG_R10] & 4 /* MREMAP_DONTUNMAP: the old range stays */)) track_remove(t, a, a + len);
        track_remove(t, r, r + new_len);  // MREMAP_FIXED replaced what was there
        track_add(t, r, r + new_len);
      } else if (touches_image(*s, a, a + len)) {  // mprotect
        t.layout_changed = true;
      }
      break;
    }
    case kTrackFd: {
      detail::SubFds& t = s->sub_fds;
      bool target_was_open = false;
      if (nr == SYS_dup2 || nr == SYS_dup3)
        target_was_open = !fd_tracked(t, g[REG_RSI]) && !is_error(sys3(SYS_fcntl, g[REG_RSI], F_GETFD));
      // close: the number is free again whatever close returns (Linux
      // releases it before reporting EINTR or EIO).
      if (nr == SYS_close) fd_remove(t, static_cast<unsigned long>(g[REG_RDI]), static_cast<unsigned long>(g[REG_RDI]));
      result = make(nr, g, uc);
      if (nr != SYS_close && !is_error(result)) fd_note(t, nr, g, result, target_was_open);
      break;
    }
    case kSigreturn:
      // rt_sigreturn of a handler installed behind the Matchmaker's back
      // (glibc's own): made from the allowed range, on the same stack.
      g[REG_RIP] = reinterpret_cast<greg_t>(&subctx_sigreturn);
      return;
    default:  // deny with an errno
      result = -static_cast<long>(action);
      break;
  }
  g[REG_RAX] = result;
}
