#include "common/syscall_names.hpp"

#include <algorithm>

#include "sys/io.hpp"

namespace subctx {

namespace {

struct NamedSyscall {
  const char* name;
  long nr;
};
// The names rules and messages use (x86-64 numbers).
constexpr NamedSyscall kSyscalls[] = {
    {"read", 0}, {"write", 1}, {"open", 2}, {"close", 3}, {"stat", 4}, {"fstat", 5}, {"lstat", 6}, {"poll", 7},
    {"lseek", 8}, {"mmap", 9}, {"mprotect", 10}, {"munmap", 11}, {"brk", 12}, {"rt_sigaction", 13},
    {"rt_sigprocmask", 14}, {"rt_sigreturn", 15}, {"ioctl", 16}, {"pread64", 17}, {"pwrite64", 18}, {"readv", 19},
    {"writev", 20}, {"access", 21}, {"pipe", 22}, {"select", 23}, {"sched_yield", 24}, {"mremap", 25},
    {"msync", 26}, {"madvise", 28}, {"dup", 32}, {"dup2", 33}, {"nanosleep", 35}, {"getpid", 39},
    {"sendfile", 40}, {"socket", 41}, {"connect", 42}, {"accept", 43}, {"sendto", 44}, {"recvfrom", 45},
    {"bind", 49}, {"listen", 50}, {"clone", 56}, {"fork", 57}, {"vfork", 58}, {"execve", 59}, {"exit", 60},
    {"wait4", 61}, {"kill", 62}, {"uname", 63}, {"fcntl", 72}, {"flock", 73}, {"fsync", 74}, {"truncate", 76},
    {"ftruncate", 77}, {"getcwd", 79}, {"chdir", 80}, {"rename", 82}, {"mkdir", 83}, {"rmdir", 84},
    {"unlink", 87}, {"readlink", 89}, {"chmod", 90}, {"chown", 92}, {"umask", 95}, {"gettimeofday", 96},
    {"getrlimit", 97}, {"getrusage", 98}, {"sysinfo", 99}, {"getuid", 102}, {"getgid", 104}, {"setuid", 105},
    {"setgid", 106}, {"geteuid", 107}, {"getegid", 108}, {"getppid", 110}, {"setsid", 112}, {"prctl", 157},
    {"arch_prctl", 158}, {"setrlimit", 160}, {"chroot", 161}, {"mount", 165}, {"reboot", 169},
    {"gettid", 186}, {"tkill", 200}, {"time", 201}, {"futex", 202}, {"sched_getaffinity", 204},
    {"getdents64", 217}, {"clock_gettime", 228}, {"clock_nanosleep", 230}, {"exit_group", 231},
    {"epoll_wait", 232}, {"tgkill", 234}, {"openat", 257}, {"mkdirat", 258}, {"newfstatat", 262},
    {"unlinkat", 263}, {"renameat", 264}, {"readlinkat", 267}, {"ppoll", 271}, {"pselect6", 270},
    {"set_robust_list", 273}, {"epoll_pwait", 281}, {"eventfd2", 290}, {"epoll_create1", 291}, {"dup3", 292},
    {"pipe2", 293}, {"prlimit64", 302}, {"getcpu", 309}, {"execveat", 322}, {"getrandom", 318},
    {"memfd_create", 319}, {"statx", 332}, {"rseq", 334}, {"pidfd_open", 434}, {"clone3", 435},
    {"openat2", 437}, {"faccessat2", 439},
};

}  // namespace

const char* syscall_name(long nr) {
  for (const auto& s : kSyscalls)
    if (s.nr == nr) return s.name;
  return "";
}

long syscall_number(const std::string& name) {
  for (const auto& s : kSyscalls)
    if (name == s.name) return s.nr;
  if (!name.empty() && name.size() < 5 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const long nr = std::stol(name);
    if (nr < kMaxRuleSyscall) return nr;
  }
  return -1;
}

std::string syscall_rule_problem(const SyscallRule& r) {
  const long nr = syscall_number(r.syscall);
  if (nr < 0) return "unknown system call \"" + sys::printable(r.syscall) + "\"; use its x86-64 name or number";
  if (nr == 15) return "rt_sigreturn cannot be changed";  // the Matchmaker's handlers return through it
  switch (r.action) {
    case SyscallRule::Action::Allow:
    case SyscallRule::Action::Fault: return "";
    case SyscallRule::Action::Deny:
      if (r.error <= 0 || r.error >= 4096)
        return "errno " + std::to_string(r.error) + " for " + r.syscall + " is not in 1..4095";
      return "";
  }
  return "unknown action for " + r.syscall;
}

}  // namespace subctx
