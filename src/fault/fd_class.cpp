// Which x86-64 system calls involve descriptors (fd_syscalls.hpp): one
// table, built at compile time, read by the SIGSYS handler and by the
// Matchmaker when it builds a subcontext's system call table.
#include <sys/syscall.h>

#include <array>

#include "fault/fd_spec.hpp"
#include "fault/fd_syscalls.hpp"

namespace subctx::fault {

namespace {

// System calls after the ones Debian 12's headers know (Linux 6.1).
// clang-format off
constexpr long kCachestat = 451, kFchmodat2 = 452, kMapShadowStack = 453, kFutexWake = 454, kFutexWait = 455,
               kFutexRequeue = 456, kStatmount = 457, kListmount = 458, kLsmGetSelfAttr = 459,
               kLsmSetSelfAttr = 460, kLsmListModules = 461, kMseal = 462, kSetxattrat = 463, kGetxattrat = 464,
               kListxattrat = 465, kRemovexattrat = 466, kOpenTreeAttr = 467, kFileGetattr = 468,
               kFileSetattr = 469;

constexpr long kNone[] = {
    SYS_mmap, SYS_mprotect, SYS_munmap, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn,
    SYS_sched_yield, SYS_mremap, SYS_msync, SYS_mincore, SYS_madvise, SYS_shmget, SYS_shmat, SYS_shmctl, SYS_pause,
    SYS_nanosleep, SYS_getitimer, SYS_alarm, SYS_setitimer, SYS_getpid, SYS_fork, SYS_vfork, SYS_exit,
    SYS_wait4, SYS_kill, SYS_uname, SYS_semget, SYS_semop, SYS_semctl, SYS_shmdt, SYS_msgget, SYS_msgsnd,
    SYS_msgrcv, SYS_msgctl, SYS_gettimeofday, SYS_getrlimit, SYS_getrusage, SYS_sysinfo, SYS_times, SYS_ptrace,
    SYS_getuid, SYS_syslog, SYS_getgid, SYS_setuid, SYS_setgid, SYS_geteuid, SYS_getegid, SYS_setpgid,
    SYS_getppid, SYS_getpgrp, SYS_setsid, SYS_setreuid, SYS_setregid, SYS_getgroups, SYS_setgroups,
    SYS_setresuid, SYS_getresuid, SYS_setresgid, SYS_getresgid, SYS_getpgid, SYS_setfsuid, SYS_setfsgid,
    SYS_getsid, SYS_capget, SYS_capset, SYS_rt_sigpending, SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo,
    SYS_rt_sigsuspend, SYS_sigaltstack, SYS_personality, SYS_ustat, SYS_sysfs, SYS_getpriority, SYS_setpriority,
    SYS_sched_setparam, SYS_sched_getparam, SYS_sched_setscheduler, SYS_sched_getscheduler,
    SYS_sched_get_priority_max, SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_mlock, SYS_munlock,
    SYS_mlockall, SYS_munlockall, SYS_vhangup, SYS_modify_ldt, SYS__sysctl, SYS_prctl, SYS_arch_prctl,
    SYS_adjtimex, SYS_setrlimit, SYS_sync, SYS_settimeofday, SYS_reboot, SYS_sethostname, SYS_setdomainname,
    SYS_iopl, SYS_ioperm, SYS_create_module, SYS_init_module, SYS_delete_module, SYS_get_kernel_syms,
    SYS_query_module, SYS_nfsservctl, SYS_getpmsg, SYS_putpmsg, SYS_afs_syscall, SYS_tuxcall, SYS_security,
    SYS_gettid, SYS_tkill, SYS_time, SYS_futex, SYS_sched_setaffinity, SYS_sched_getaffinity,
    SYS_set_thread_area, SYS_get_thread_area, SYS_remap_file_pages, SYS_set_tid_address, SYS_restart_syscall,
    SYS_semtimedop, SYS_timer_create, SYS_timer_settime, SYS_timer_gettime, SYS_timer_getoverrun,
    SYS_timer_delete, SYS_clock_settime, SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep,
    SYS_exit_group, SYS_tgkill, SYS_vserver, SYS_mbind, SYS_set_mempolicy, SYS_get_mempolicy, SYS_mq_unlink,
    SYS_kexec_load, SYS_add_key, SYS_request_key, SYS_ioprio_set, SYS_ioprio_get, SYS_migrate_pages,
    SYS_unshare, SYS_set_robust_list, SYS_get_robust_list, SYS_move_pages, SYS_rt_tgsigqueueinfo, SYS_prlimit64,
    SYS_clock_adjtime, SYS_getcpu, SYS_process_vm_readv, SYS_process_vm_writev, SYS_sched_setattr,
    SYS_sched_getattr, SYS_getrandom, SYS_membarrier, SYS_mlock2, SYS_pkey_mprotect, SYS_pkey_alloc,
    SYS_pkey_free, SYS_rseq, SYS_futex_waitv, SYS_set_mempolicy_home_node, kMapShadowStack,
    kFutexWake, kFutexWait, kFutexRequeue, kLsmGetSelfAttr, kLsmSetSelfAttr,
    kLsmListModules, kMseal};

// Descriptors the namespace cannot follow (inside structures, rings,
// programs, mount trees), or paths it cannot resolve for the subcontext.
constexpr long kUntranslatable[] = {
    SYS_execve, SYS_execveat, SYS_uselib, SYS_chroot, SYS_pivot_root, SYS_mount, SYS_umount2, SYS_acct,
    SYS_swapon, SYS_swapoff, SYS_quotactl, SYS_io_setup, SYS_io_destroy, SYS_io_getevents, SYS_io_submit,
    SYS_io_cancel, SYS_io_pgetevents, SYS_lookup_dcookie, SYS_epoll_ctl_old, SYS_epoll_wait_old, SYS_kcmp,
    SYS_seccomp, SYS_bpf, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register, SYS_open_tree,
    SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_mount_setattr,
    SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self, kOpenTreeAttr,
    // CLONE_PIDFD writes a descriptor, CLONE_INTO_CGROUP takes one; a pidfd's
    // target table; fanotify events carry descriptors; mount ids by fd.
    SYS_clone, SYS_clone3, SYS_pidfd_getfd, SYS_fanotify_init, kStatmount, kListmount};

constexpr uint8_t A0 = 1, A1 = 2, A2 = 4, A3 = 8;
constexpr uint32_t kCloexec = 02000000;  // O_CLOEXEC = SOCK_CLOEXEC = EFD_/TFD_/IN_/EPOLL_CLOEXEC

constexpr FdSpec kPlain[] = {
    // descriptor arguments
    {SYS_read, A0}, {SYS_write, A0}, {SYS_fstat, A0}, {SYS_lseek, A0}, {SYS_pread64, A0}, {SYS_pwrite64, A0},
    {SYS_readv, A0}, {SYS_writev, A0}, {SYS_connect, A0}, {SYS_sendto, A0}, {SYS_recvfrom, A0},
    {SYS_shutdown, A0}, {SYS_bind, A0}, {SYS_listen, A0}, {SYS_getsockname, A0}, {SYS_getpeername, A0},
    {SYS_flock, A0}, {SYS_fsync, A0}, {SYS_fdatasync, A0}, {SYS_ftruncate, A0},
    {SYS_getdents, A0}, {SYS_fchmod, A0}, {SYS_fchown, A0}, {SYS_fstatfs, A0}, {SYS_readahead, A0},
    {SYS_fsetxattr, A0}, {SYS_fgetxattr, A0}, {SYS_flistxattr, A0}, {SYS_fremovexattr, A0},
    {SYS_getdents64, A0}, {SYS_fadvise64, A0}, {SYS_epoll_wait, A0}, {SYS_mq_timedsend, A0},
    {SYS_mq_timedreceive, A0}, {SYS_mq_notify, A0}, {SYS_mq_getsetattr, A0}, {SYS_inotify_rm_watch, A0},
    {SYS_sync_file_range, A0}, {SYS_vmsplice, A0}, {SYS_epoll_pwait, A0}, {SYS_fallocate, A0},
    {SYS_timerfd_settime, A0}, {SYS_timerfd_gettime, A0}, {SYS_preadv, A0}, {SYS_pwritev, A0}, {SYS_syncfs, A0},
    {SYS_setns, A0}, {SYS_finit_module, A0}, {SYS_preadv2, A0}, {SYS_pwritev2, A0},
    {SYS_pidfd_send_signal, A0}, {SYS_process_madvise, A0}, {SYS_epoll_pwait2, A0}, {SYS_quotactl_fd, A0},
    {SYS_process_mrelease, A0}, {kCachestat, A0},
    {SYS_sendfile, A0 | A1}, {SYS_tee, A0 | A1}, {SYS_kexec_file_load, A0 | A1},
    {SYS_epoll_ctl, A0 | A2}, {SYS_splice, A0 | A2}, {SYS_copy_file_range, A0 | A2},
    // new descriptors (the flag that asks for close-on-exec: forced on the real one)
    {SYS_socket, 0, 0, true, 1, kCloexec}, {SYS_accept4, A0, 0, true, 3, kCloexec},
    {SYS_timerfd_create, 0, 0, true, 1, kCloexec}, {SYS_eventfd2, 0, 0, true, 1, kCloexec},
    {SYS_epoll_create1, 0, 0, true, 0, kCloexec}, {SYS_inotify_init1, 0, 0, true, 0, kCloexec},
    {SYS_memfd_create, 0, 0, true, 1, 1 /* MFD_CLOEXEC */},
    {SYS_userfaultfd, 0, 0, true, 0, kCloexec}, {SYS_memfd_secret, 0, 0, true, 0, kCloexec},
    {SYS_mq_open, 0, 0, true, -1, 0, 2}, {SYS_pidfd_open, 0, 0, true},
    {SYS_open_by_handle_at, 0, A0, true, 2, kCloexec},
    // directory descriptors (AT_FDCWD: the subcontext's working directory)
    {SYS_mkdirat, 0, A0, false, -1, 0, 2}, {SYS_mknodat, 0, A0, false, -1, 0, 2}, {SYS_fchownat, 0, A0},
    {SYS_futimesat, 0, A0}, {SYS_newfstatat, 0, A0}, {SYS_unlinkat, 0, A0}, {SYS_renameat, 0, A0 | A2},
    {SYS_renameat2, 0, A0 | A2}, {SYS_linkat, 0, A0 | A2}, {SYS_symlinkat, 0, A1}, {SYS_readlinkat, 0, A0},
    {SYS_fchmodat, 0, A0}, {SYS_faccessat, 0, A0}, {SYS_utimensat, 0, A0}, {SYS_fanotify_mark, A0, A3},
    {SYS_name_to_handle_at, 0, A0}, {SYS_statx, 0, A0}, {SYS_faccessat2, 0, A0}, {kFchmodat2, 0, A0},
    {kSetxattrat, 0, A0}, {kGetxattrat, 0, A0}, {kListxattrat, 0, A0}, {kRemovexattrat, 0, A0},
    {kFileGetattr, 0, A0}, {kFileSetattr, 0, A0},
};

// Emulated or rewritten by fd_syscalls.cpp (a case each there).
constexpr long kSpecial[] = {
    SYS_open, SYS_close, SYS_stat, SYS_lstat, SYS_poll, SYS_ioctl, SYS_access, SYS_pipe, SYS_select, SYS_dup,
    SYS_dup2, SYS_accept, SYS_sendmsg, SYS_recvmsg, SYS_socketpair, SYS_setsockopt, SYS_fcntl, SYS_truncate,
    SYS_getcwd, SYS_chdir, SYS_fchdir, SYS_rename, SYS_mkdir, SYS_rmdir, SYS_creat, SYS_link, SYS_unlink,
    SYS_symlink, SYS_readlink, SYS_chmod, SYS_chown, SYS_lchown, SYS_umask, SYS_utime, SYS_mknod, SYS_statfs,
    SYS_setxattr, SYS_lsetxattr, SYS_getxattr, SYS_lgetxattr, SYS_listxattr, SYS_llistxattr, SYS_removexattr,
    SYS_lremovexattr, SYS_epoll_create, SYS_utimes, SYS_waitid, SYS_inotify_init, SYS_inotify_add_watch,
    SYS_openat, SYS_pselect6, SYS_ppoll, SYS_signalfd, SYS_eventfd, SYS_signalfd4, SYS_dup3, SYS_pipe2,
    SYS_perf_event_open, SYS_recvmmsg, SYS_sendmmsg, SYS_close_range, SYS_openat2, SYS_getsockopt, SYS_keyctl};

struct Tables {
  std::array<FdClass, kFdTableSize> cls{};
  std::array<FdSpec, kFdTableSize> plain{};
};
// clang-format on

constexpr Tables build() {
  Tables t;
  for (auto& c : t.cls) c = FdClass::Unknown;
  for (long nr : kNone) t.cls[nr] = FdClass::None;
  for (long nr : kUntranslatable) t.cls[nr] = FdClass::Untranslatable;
  for (const FdSpec& s : kPlain) {
    t.cls[s.nr] = FdClass::Translated;
    t.plain[s.nr] = s;
  }
  for (long nr : kSpecial) t.cls[nr] = FdClass::Translated;
  return t;
}

constexpr Tables kTables = build();

// Each system call in one list only.
constexpr bool listed_once() {
  std::array<int, kFdTableSize> seen{};
  for (long nr : kNone) ++seen[nr];
  for (long nr : kUntranslatable) ++seen[nr];
  for (const FdSpec& s : kPlain) ++seen[s.nr];
  for (long nr : kSpecial) ++seen[nr];
  for (int n : seen)
    if (n > 1) return false;
  return true;
}
static_assert(listed_once(), "a system call is classified twice");

}  // namespace

FdClass fd_class(long nr) { return nr >= 0 && nr < kFdTableSize ? kTables.cls[nr] : FdClass::Unknown; }

SUBCTX_SIGNAL_CONTEXT const FdSpec* plain_fd_spec(long nr) {
  if (nr < 0 || nr >= kFdTableSize) return nullptr;
  const FdSpec* s = &kTables.plain[nr];
  return s->nr == nr && kTables.cls[nr] == FdClass::Translated && (s->fds || s->dirfds || s->new_fd) ? s : nullptr;
}

}  // namespace subctx::fault
