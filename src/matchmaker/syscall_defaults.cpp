// The default system call policy (syscall_defaults.hpp): the one table, and
// its markdown.  Linked by the client library and, on its own, by the
// `subctx` tool (inspect).
#include "matchmaker/syscall_defaults.hpp"

#include <sys/syscall.h>

#include <cerrno>

#include "common/syscall_names.hpp"

namespace subctx::matchmaker {

namespace {

using enum SyscallDefault;
using enum SyscallSet;

// One row per line of docs/containment.md's table, in its order:
//   {set, listed numbers, action, errno, "system call" cell, what happens}
// (the cell "" for the listed names).  Edit here; the unit test
// SyscallDefaults.DocsTableIsThisTable prints the new markdown for the docs.
// clang-format off
constexpr SyscallDefaultRow kSyscallDefaults[] = {
    {Listed, {SYS_exit, SYS_exit_group}, EndCall, 0,
     "",
     "the call fails with `SubcontextFault` (`exit_status()`); the client goes on. In a thread subcontext code "
     "started, `exit` ends that thread and `exit_group` is its failure, which the next call reports "
     "(docs/threads.md)"},
    {Listed, {SYS_brk}, Deny, ENOMEM,
     "",
     "`ENOMEM`: the subcontext's malloc uses mmap, never the client's heap (the snapshot already makes its "
     "`sbrk` fail)"},
    {Listed, {SYS_clone, SYS_clone3, SYS_vfork}, Threads, 0,
     "",
     "a thread (`CLONE_VM`, `CLONE_THREAD`, `CLONE_SETTLS`: `pthread_create`) runs as part of the subcontext, "
     "mediated from its first instruction, up to `SUBCTX_MAX_THREADS` (`EAGAIN` past it; under the mprotect "
     "backend `EPERM`); a child process (`CLONE_VM`, `CLONE_VFORK`: `posix_spawn`, `vfork`) runs until its "
     "exec with the subcontext's descriptors and working directory made real, if the policy lets the image "
     "start programs (`EPERM` if not; docs/threads.md); any other clone (a fork) `EPERM`"},
    {Listed, {SYS_fork}, Deny, EPERM,
     "",
     "`EPERM`: a fork would copy the client; use `posix_spawn` (or `vfork` + `execve`)"},
    {Listed, {SYS_execve, SYS_execveat}, Deny, EPERM,
     "",
     "`EPERM`: it would replace the client; a child process the subcontext started makes its exec"},
    {Listed, {SYS_rt_sigaction}, Deny, EPERM,
     "",
     "`EPERM`: signal dispositions belong to the client"},
    {Listed, {SYS_rt_sigprocmask}, Emulated, 0,
     "",
     "applied to the calling thread's mask for the rest of the call (never blocking SIGSYS, fault or "
     "deadline signals); the client's mask comes back after the call"},
    {Listed, {SYS_rt_sigreturn}, Sigreturn, 0,
     "",
     "the return of a signal handler glibc installed: made from the Matchmaker's allowed range, on the "
     "same stack; no rule can change it"},
    {Listed, {SYS_arch_prctl}, DenyByArgument, EPERM,
     "`arch_prctl(ARCH_SET_FS/GS)`",
     "`EPERM`: the thread pointer is how the Matchmaker knows a call is in progress"},
    {Listed, {SYS_tgkill, SYS_tkill, SYS_rt_tgsigqueueinfo, SYS_kill, SYS_rt_sigqueueinfo}, SignalItself, 0,
     "`tgkill`, `tkill`, `rt_tgsigqueueinfo`; `kill`, `rt_sigqueueinfo` of itself (the client's pid, the "
     "server's pid from the image, 0, its process group)",
     "act on the calling thread: a signal the server ignored is ignored; one that would end a process ends "
     "the call (`SubcontextFault` with that signal); ignored-by-default and stop signals, and signal 0, "
     "return 0. A subcontext has one thread, so any thread id it holds is its own or stale from the "
     "snapshot: a stale id is never signalled. `kill(-1)` and other processes: `EPERM` (a rule allowing "
     "`kill` lets other processes be signalled), but for its own children (docs/threads.md)"},
    {Listed, {SYS_alarm, SYS_setitimer, SYS_getitimer, SYS_timer_create, SYS_timer_settime, SYS_timer_gettime,
              SYS_timer_getoverrun, SYS_timer_delete}, Deny, EPERM,
     "",
     "`EPERM`: timers and their signals are the client process's (docs/identity.md)"},
    {Listed, {SYS_unshare, SYS_setns, SYS_seccomp, SYS_landlock_restrict_self, SYS_chroot}, Deny, EPERM,
     "",
     "`EPERM`: they would change the client's thread or turn mediation off"},
    {Listed, {SYS_prctl}, DenyByArgument, EPERM,
     "`prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SET_SECCOMP, PR_SET_MM)`",
     "`EPERM`: they would turn mediation off or change the client's process (other options are made as "
     "asked)"},
    {Listed, {SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid, SYS_setgroups,
              SYS_capset}, ClientProcess, EPERM,
     "",
     "`EPERM`: credentials are the client process's (a subcontext in a root client must not drop or change "
     "them); in a child process before its exec, its own: made"},
    {Listed, {SYS_setfsuid, SYS_setfsgid, SYS_setsid, SYS_setpgid, SYS_setrlimit, SYS_prlimit64,
              SYS_setpriority, SYS_personality}, ClientProcess, EPERM,
     "`setfsuid`, `setfsgid`, `setsid`, `setpgid`, `setrlimit`, `prlimit64` with a new limit, `setpriority`, "
     "`personality` but its query",
     "`EPERM`: the client process's session, process group, resource limits, priority and personality; in a "
     "child process before its exec, its own: made. Reading them (`getrlimit`, `prlimit64` without a new limit) "
     "is made"},
    {Listed, {SYS_sigaltstack, SYS_set_tid_address, SYS_set_robust_list, SYS_sched_setaffinity,
              SYS_sched_setscheduler, SYS_sched_setparam, SYS_sched_setattr}, ThreadState, EPERM,
     "",
     "on a thread subcontext code started and in a child process: made (glibc's thread start makes the "
     "second and third), but a thread's `sigaltstack` is recorded and reported, not made (its real one "
     "runs the Matchmaker's fault handler); on the client's thread in a call `EPERM` (its alternate signal "
     "stack, exit futex, robust list and scheduling are the client's), but a `sigaltstack` query (no new "
     "stack) is answered; the scheduler calls that name a thread may name one of the subcontext's from any "
     "of its threads (`pthread_create`'s affinity and policy attributes)"},
    {Listed, {SYS_rseq}, Deny, EPERM,
     "",
     "`EPERM`: a restartable sequence's abort address would let subcontext code move a thread out of the "
     "Matchmaker's handler; glibc runs without one (`sched_getcpu` asks the vDSO)"},
    {Listed, {SYS_sethostname, SYS_setdomainname, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime,
              SYS_reboot, SYS_kexec_load, SYS_kexec_file_load}, Deny, EPERM,
     "",
     "`EPERM`: the system's, which a privileged client's rights would let a subcontext change"},
    {Listed, {SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_swapon, SYS_swapoff, SYS_iopl,
              SYS_ioperm, SYS_acct}, Deny, EPERM,
     "",
     "`EPERM`: the same (kernel modules, swap, I/O ports, process accounting)"},
    {Listed, {SYS_pidfd_open, SYS_pidfd_send_signal, SYS_pidfd_getfd, SYS_process_madvise, SYS_process_mrelease,
              SYS_kcmp, SYS_mq_notify}, Deny, EPERM,
     "",
     "`EPERM`: other processes are not the subcontext's to signal or inspect"},
    {Listed, {SYS_wait4, SYS_waitid}, Children, 0,
     "",
     "wait for the subcontext's own children only (`ECHILD` when it has none): the client's children stay "
     "invisible to it"},
    {Listed, {SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect}, TrackMemory, 0,
     "",
     "made; tracked for reset and the mapped-bytes quota (a file mapping's descriptor is translated)"},
    {X32, {}, Deny, ENOSYS,
     "system calls with the x32 bit",
     "`ENOSYS`"},
    {Translated, {}, Descriptors, 0,
     "every system call that takes or makes descriptors or resolves a relative path (`read`, `write`, "
     "`openat`, `close`, `dup*`, `fcntl`, `socket`, `poll`, `select`, `sendmsg`/`recvmsg` with "
     "`SCM_RIGHTS`, the `*at` calls, `getcwd`, `chdir`, `umask`, ...)",
     "made in the subcontext's **own descriptor namespace** and working directory (docs/identity.md): its "
     "numbers are not the client's, a number it does not hold is `EBADF`; a reset closes what calls opened "
     "(up to 1,024 descriptors per subcontext) and puts the server's restored descriptors back; `unmap` "
     "closes all"},
    {Untranslatable, {}, Deny, ENOSYS,
     "`io_uring_*`, AIO, `bpf`, the mount API, `landlock_*`, `mount`, and system calls this Matchmaker "
     "does not know",
     "`ENOSYS`: their descriptors cannot be translated; no rule can allow them"},
    {Others, {}, Allow, 0,
     "everything else",
     "made as asked; `getpid`/`gettid` return the calling thread's ids"},
};
// clang-format on

// The first row that covers a number decides: rows listing numbers first,
// and each number listed once (a second listing would never apply).
constexpr bool listed_rows_come_first() {
  bool classes_began = false;
  for (const SyscallDefaultRow& row : kSyscallDefaults) {
    if (row.set != Listed) classes_began = true;
    else if (classes_began) return false;
  }
  return true;
}
static_assert(listed_rows_come_first(), "a listed row after a class row would be shadowed by the class");

constexpr bool each_number_listed_once() {
  for (size_t i = 0; i < std::size(kSyscallDefaults); ++i)
    for (int16_t nr : kSyscallDefaults[i].listed.view())
      for (size_t j = i + 1; j < std::size(kSyscallDefaults); ++j)
        if (kSyscallDefaults[j].listed.contains(nr)) return false;
  return true;
}
static_assert(each_number_listed_once(), "a system call listed in two rows: the second would never apply");

constexpr bool errors_where_denied() {
  for (const SyscallDefaultRow& row : kSyscallDefaults) {
    const bool denies =
        row.action == Deny || row.action == DenyByArgument || row.action == ClientProcess || row.action == ThreadState;
    if (denies != (row.error > 0) || row.error > 4095) return false;
  }
  return true;
}
static_assert(errors_where_denied(), "rows that refuse need an errno (1..4095), the others none");

}  // namespace

std::span<const SyscallDefaultRow> syscall_defaults() { return kSyscallDefaults; }

std::string syscall_default_cell(const SyscallDefaultRow& row) {
  if (!row.shown.empty()) return std::string(row.shown);
  std::string cell;
  for (int16_t nr : row.listed.view()) cell += (cell.empty() ? "`" : ", `") + std::string(syscall_name(nr)) + "`";
  return cell;
}

std::string syscall_defaults_markdown() {
  std::string md = "| system call of subcontext code | what happens |\n| --- | --- |\n";
  for (const SyscallDefaultRow& row : kSyscallDefaults)
    md += "| " + syscall_default_cell(row) + " | " + std::string(row.what) + " |\n";
  return md;
}

std::string without_markup(std::string_view markdown) {
  std::string text;
  for (size_t i = 0; i < markdown.size(); ++i) {
    if (markdown[i] == '`') continue;
    if (markdown.substr(i, 2) == "**") {
      ++i;
      continue;
    }
    text += markdown[i];
  }
  return text;
}

}  // namespace subctx::matchmaker
