// Whether Syscall User Dispatch works in this process, and the default
// table of what happens to subcontext code's system calls (syscalls.hpp).
// Apart from the rest of syscalls.cpp: the `subctx` tool (inspect) links
// this file of its own, not the client library's internals.
#include <sys/prctl.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "fault/syscalls.hpp"
#include "matchmaker/environment.hpp"
#include "sys/io.hpp"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif

namespace subctx::fault {

namespace {

// Trivially initialized: nothing of this file runs before main.
std::atomic<int> g_available{-1};  // -1 unknown, 0 no, 1 yes
bool g_off = false;                // SUBCTX_SYSCALLS=off
int g_prctl_errno = 0;             // else why prctl() refused
char g_selector_probe;

bool probe_dispatch() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = subctx::env::value("SUBCTX_SYSCALLS");  // checked at init (read_environment)
    if (env && !std::strcmp(env, "off")) {
      g_off = true;
      g_available = 0;
      return;
    }
    // Turned on and off again on this thread: does the kernel have it?  The
    // allowed range does not matter: the selector stays "allow" meanwhile.
    const auto lo = reinterpret_cast<unsigned long>(&g_selector_probe);
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, lo, 1UL, &g_selector_probe) != 0) {
      g_prctl_errno = errno;
      g_available = 0;
      return;
    }
    prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    g_available = 1;
  });
  return g_available.load() == 1;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> default_syscall_policy() {
  return {
      {"exit, exit_group", "the call fails with SubcontextFault (exit status); the client goes on"},
      {"brk", "ENOMEM: the subcontext's malloc uses mmap, never the client's heap"},
      {"clone, clone3, fork, vfork, execve, execveat", "EPERM"},
      {"rt_sigaction", "EPERM: signal dispositions are the client's"},
      {"alarm, setitimer, getitimer, timer_create, timer_settime, timer_gettime, timer_getoverrun, timer_delete",
       "EPERM: timers and their signals are the client process's"},
      {"unshare, setns, seccomp, landlock_restrict_self, chroot", "EPERM: they would change the client's thread"},
      {"pidfd_open, pidfd_send_signal, pidfd_getfd, process_madvise, process_mrelease, kcmp, mq_notify",
       "EPERM: other processes are not the subcontext's to signal or inspect"},
      {"wait4, waitid", "ECHILD: the client's children are not the subcontext's"},
      {"prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SET_SECCOMP, PR_SET_MM)", "EPERM: mediation stays on"},
      {"rt_sigprocmask", "applied to the calling thread's mask for the call (never SIGSYS, fault or deadline signals); the client's mask comes back after it"},
      {"arch_prctl(ARCH_SET_FS/GS)", "EPERM: the thread pointer is the Matchmaker's to switch"},
      {"tgkill, tkill, rt_tgsigqueueinfo; kill, rt_sigqueueinfo of its own pid, the server's pid or its group",
       "act on the calling thread: a signal the server ignored is ignored, one that would end a process ends the "
       "call (SubcontextFault), others are ignored; other processes: EPERM (an allow rule lets them through)"},
      {"system calls with the x32 bit", "ENOSYS"},
      {"mmap, munmap, mremap, mprotect", "made; tracked for reset and the mapped-bytes quota"},
      {"read, write, openat, close, dup, fcntl, socket, poll, select, sendmsg, recvmsg (SCM_RIGHTS), *at, getcwd, "
       "chdir, umask, ... (every call that takes or makes descriptors or resolves relative paths)",
       "made in the subcontext's own descriptor namespace and working directory (docs/identity.md): a number "
       "it does not hold is EBADF; reset and unmap close what calls opened"},
      {"io_uring_*, io_setup/io_submit..., bpf, fsopen/fsmount/open_tree..., landlock_*, execveat, chroot, mount, "
       "and system calls this Matchmaker does not know",
       "ENOSYS (or EPERM above): their descriptors cannot be translated"},
      {"everything else", "made as asked (getpid and gettid return the calling thread's ids)"},
  };
}

bool syscall_dispatch_available(std::string* why) {
  const bool ok = probe_dispatch();
  if (!ok && why)
    *why = g_off ? "SUBCTX_SYSCALLS=off"
                 : "prctl(PR_SET_SYSCALL_USER_DISPATCH) failed: " + sys::errno_text(g_prctl_errno) +
                       " (Linux 5.11 or later with CONFIG_GENERIC_ENTRY has it)";
  return ok;
}

}  // namespace subctx::fault
