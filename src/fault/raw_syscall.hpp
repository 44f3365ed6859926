// System calls for signal context: no libc, no errno (errno lives in TLS,
// and the thread pointer may be a subcontext's when a fault arrives).
#pragma once

#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

namespace subctx::fault::raw {

#define SUBCTX_RAW_SYSCALL_ATTRS __attribute__((always_inline, no_sanitize("address", "undefined"))) inline

SUBCTX_RAW_SYSCALL_ATTRS long syscall4(long n, long a, long b, long c, long d) {
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(ret) : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

SUBCTX_RAW_SYSCALL_ATTRS void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    long w = syscall4(SYS_write, fd, reinterpret_cast<long>(p), static_cast<long>(n), 0);
    if (w == -4 /* EINTR */) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Resets sig to its default action, unblocks it and sends it to this
// thread: the process ends as the kernel ends it for that signal.
[[noreturn]] SUBCTX_RAW_SYSCALL_ATTRS void die_of(int sig) {
  struct {
    uint64_t handler, flags, restorer, mask;
  } dfl = {0, 0, 0, 0};
  syscall4(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, 8);
  uint64_t unblock = uint64_t{1} << (sig - 1);
  syscall4(SYS_rt_sigprocmask, 1 /* SIG_UNBLOCK */, reinterpret_cast<long>(&unblock), 0, 8);
  syscall4(SYS_tgkill, syscall4(SYS_getpid, 0, 0, 0, 0), syscall4(SYS_gettid, 0, 0, 0, 0), sig, 0);
  for (;;) syscall4(SYS_exit_group, 128 + sig, 0, 0, 0);
}

#undef SUBCTX_RAW_SYSCALL_ATTRS

}  // namespace subctx::fault::raw
