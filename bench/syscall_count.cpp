#include "syscall_count.hpp"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace bench {

namespace {

const char* name_of(long nr) {
  switch (nr) {
    case SYS_read: return "read";
    case SYS_close: return "close";
    case SYS_newfstatat: return "newfstatat";
    case SYS_fstat: return "fstat";
    case SYS_lseek: return "lseek";
    case SYS_mmap: return "mmap";
    case SYS_mprotect: return "mprotect";
    case SYS_munmap: return "munmap";
    case SYS_ioctl: return "ioctl";
    case SYS_pread64: return "pread64";
    case SYS_madvise: return "madvise";
    case SYS_getpid: return "getpid";
    case SYS_fcntl: return "fcntl";
    case SYS_geteuid: return "geteuid";
    case SYS_readlink: return "readlink";
    case SYS_openat: return "openat";
    case SYS_prlimit64: return "prlimit64";
    case SYS_pkey_mprotect: return "pkey_mprotect";
    case SYS_pkey_alloc: return "pkey_alloc";
    case SYS_pkey_free: return "pkey_free";
    case SYS_futex: return "futex";
    case SYS_rt_sigprocmask: return "rt_sigprocmask";
    case SYS_process_madvise: return "process_madvise";
    default: return nullptr;
  }
}

// The child: stops itself once prepared (kill(), not raise(): its own
// system calls after the stop would be counted), then runs the operation.
[[noreturn]] void child(const std::function<void()>& prepare, const std::function<void()>& operation) {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(120);
  prepare();
  syscall(SYS_kill, getpid(), SIGSTOP);
  operation();
  syscall(SYS_exit_group, 0);
  _exit(0);
}

}  // namespace

std::string SyscallCount::list() const {
  std::vector<std::pair<uint64_t, long>> v;
  for (const auto& [nr, n] : by_nr) v.emplace_back(n, nr);
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  for (const auto& [n, nr] : v) {
    const char* name = name_of(nr);
    out += (out.empty() ? "" : " ") + (name ? std::string(name) : "#" + std::to_string(nr)) + "×" + std::to_string(n);
  }
  return out;
}

SyscallCount count_syscalls(const std::function<void()>& prepare, const std::function<void()>& operation) {
  SyscallCount out;
  const pid_t pid = fork();
  if (pid < 0) {
    out.error = "fork failed";
    return out;
  }
  if (pid == 0) child(prepare, operation);
  int status = 0;
  // Up to the child's SIGSTOP (signal-delivery stop: its kill() has returned).
  if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
    out.error = "the child did not stop before the operation";
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return out;
  }
  ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
  int deliver = 0;
  bool entering = true;
  for (;;) {
    if (ptrace(PTRACE_SYSCALL, pid, nullptr, deliver) != 0) break;
    deliver = 0;
    if (waitpid(pid, &status, 0) != pid) break;
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    if (!WIFSTOPPED(status)) continue;
    if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
      if (entering) {
        user_regs_struct r;
        ptrace(PTRACE_GETREGS, pid, nullptr, &r);
        const long nr = static_cast<long>(r.orig_rax);
        if (nr == SYS_exit_group) {  // the end of the operation
          kill(pid, SIGKILL);
          waitpid(pid, &status, 0);
          return out;
        }
        ++out.total;
        ++out.by_nr[nr];
      }
      entering = !entering;
    } else {
      deliver = WSTOPSIG(status);  // a signal of the operation's own: passed on
    }
  }
  out.error = "the child ended before the operation did";
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return out;
}

}  // namespace bench
