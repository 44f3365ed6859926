// The subcontext's descriptor namespace, applied to its system calls
// (fd_syscalls.hpp).  Signal context, on the subcontext's thread pointer:
// no libc, no TLS, no allocation; memory named by system call arguments is
// read and written through the kernel (copy_in/copy_out), never directly.
#include "fault/fd_syscalls.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <cerrno>
#include <climits>

#include "fault/cmsg_rights.hpp"
#include "fault/fd_spec.hpp"
#include "fault/signal_context.h"

namespace subctx::fault {

namespace {

constexpr int kAtFdcwd = -100;
constexpr size_t kMaxControl = 8192;  // control data of one message (SCM_RIGHTS: 253 descriptors at most)
constexpr size_t kMaxPath = 4096;

struct Args {
  long a[6];
};

SUBCTX_SIGNAL_CONTEXT Args args_of(const greg_t* g) {
  return {{g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]}};
}

long descriptor_syscall_args(FdTable& t, SyscallCall& c, long nr, const Args& x);

SUBCTX_SIGNAL_CONTEXT long make(SyscallCall& c, long nr, const Args& x) {
  return make_syscall(c, nr, x.a[0], x.a[1], x.a[2], x.a[3], x.a[4], x.a[5]);
}

// Descriptor arguments are ints: the kernel reads the low 32 bits.
SUBCTX_SIGNAL_CONTEXT int as_fd(long v) { return static_cast<int>(v); }

// A directory descriptor argument: AT_FDCWD is the subcontext's working
// directory; a number it does not have becomes -1 (the kernel then ignores
// it for an absolute path and says EBADF for a relative one, as it would).
SUBCTX_SIGNAL_CONTEXT long dir_real(const FdTable& t, long v) {
  if (as_fd(v) == kAtFdcwd) return t.cwd >= 0 ? t.cwd : kAtFdcwd;
  const int r = fd_real(t, as_fd(v));
  return r >= 0 ? r : -1;
}

// ---- writing the table while threads run (fd_table.hpp) ----------------

// Its writers' lock, held only while threads run.
struct TableWrite : SpinGuard {
  SUBCTX_SIGNAL_INLINE explicit TableWrite(FdTable& t)
      : SpinGuard(t.threaded.load(std::memory_order_acquire) ? &t.lock : nullptr) {}
};

// A real descriptor the subcontext no longer has (table lock held): closed;
// while threads run, made dead and kept for the next new one.
SUBCTX_SIGNAL_CONTEXT void release_real(FdTable& t, int real) {
  if (!t.threaded.load(std::memory_order_relaxed) || t.n_dead >= static_cast<uint32_t>(kMaxFds)) {
    sys6(SYS_close, real);
    return;
  }
  // Out of descriptors, it stays open as it is (its number is what matters;
  // a pipe's reader then sees no end of file until the number is reused).
  // /dev/null, not a directory: a stale directory argument resolves nothing.
  const long dead = sys6(SYS_openat, kAtFdcwd, reinterpret_cast<long>("/dev/null"), O_PATH | O_CLOEXEC, 0);
  if (!is_syscall_error(dead)) {
    sys6(SYS_dup3, dead, real, O_CLOEXEC);
    sys6(SYS_close, dead);
  }
  t.dead[t.n_dead++] = real;
}

// A new real descriptor the subcontext keeps (table lock held): while
// threads run, moved onto a dead number it owns, if it has one.
SUBCTX_SIGNAL_CONTEXT int adopt_real(FdTable& t, int real) {
  if (t.n_dead == 0) return real;
  const int number = t.dead[t.n_dead - 1];
  if (is_syscall_error(sys6(SYS_dup3, real, number, O_CLOEXEC))) return real;
  --t.n_dead;
  sys6(SYS_close, real);  // new: no translation of the subcontext's can hold it
  return number;
}

// A new real descriptor becomes the subcontext's lowest free number.
SUBCTX_SIGNAL_CONTEXT long install(FdTable& t, long real, bool cloexec) {
  if (is_syscall_error(real)) return real;
  TableWrite w(t);
  const int v = fd_lowest_free(t, 0);
  if (v < 0) {
    sys6(SYS_close, real);
    return -EMFILE;
  }
  fd_set(t, v, adopt_real(t, static_cast<int>(real)), FdOrigin::Opened, cloexec);
  return v;
}

SUBCTX_SIGNAL_CONTEXT void close_taken_locked(FdTable& t, int v) {
  const int r = fd_take(t, v);
  if (r >= 0) release_real(t, r);
}

SUBCTX_SIGNAL_CONTEXT void close_taken(FdTable& t, int v) {
  TableWrite w(t);
  close_taken_locked(t, v);
}

SUBCTX_SIGNAL_CONTEXT long plain(FdTable& t, SyscallCall& c, long nr, const FdSpec& s, Args x) {
  for (int i = 0; i < 6; ++i) {
    if (s.fds & (1 << i)) {
      const int r = fd_real(t, as_fd(x.a[i]));
      if (r < 0) return -EBADF;
      x.a[i] = r;
    }
    if (s.dirfds & (1 << i)) x.a[i] = dir_real(t, x.a[i]);
  }
  bool cloexec = true;  // calls without a flag make close-on-exec descriptors
  if (s.cloexec_arg >= 0) {
    cloexec = (x.a[s.cloexec_arg] & s.cloexec_mask) != 0;
    x.a[s.cloexec_arg] |= s.cloexec_mask;  // the client's exec never inherits the subcontext's files
  }
  if (s.mode_arg >= 0) x.a[s.mode_arg] &= ~static_cast<long>(t.umask);
  const long r = make(c, nr, x);
  return s.new_fd ? install(t, r, cloexec) : r;
}

// ---- opening and the working directory ---------------------------------

SUBCTX_SIGNAL_CONTEXT long openat(FdTable& t, SyscallCall& c, long dirfd, long path, long flags, long mode) {
  const bool cloexec = flags & O_CLOEXEC;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) mode &= ~static_cast<long>(t.umask);
  const Args x{{dir_real(t, dirfd), path, flags | O_CLOEXEC, mode, 0, 0}};
  return install(t, make(c, SYS_openat, x), cloexec);
}

// openat2's struct open_how (24 bytes in its first version).
struct OpenHow {
  uint64_t flags, mode, resolve;
};

SUBCTX_SIGNAL_CONTEXT long openat2(FdTable& t, SyscallCall& c, const Args& x) {
  const auto size = static_cast<size_t>(x.a[2]);
  if (size < sizeof(OpenHow)) return -EINVAL;
  uint64_t how[8] = {};
  if (size > sizeof how) return -E2BIG;  // later versions' fields: none we could pass on
  if (!copy_in(how, static_cast<uint64_t>(x.a[1]), size)) return -EFAULT;
  for (size_t i = 3; i < size / 8; ++i)
    if (how[i]) return -E2BIG;
  OpenHow h{how[0], how[1], how[2]};
  const bool cloexec = h.flags & O_CLOEXEC;
  if ((h.flags & O_CREAT) || (h.flags & O_TMPFILE) == O_TMPFILE) h.mode &= ~uint64_t{t.umask};
  h.flags |= O_CLOEXEC;
  const Args y{{dir_real(t, x.a[0]), x.a[1], reinterpret_cast<long>(&h), sizeof h, 0, 0}};
  return install(t, make(c, SYS_openat2, y), cloexec);
}

SUBCTX_SIGNAL_CONTEXT char* put_decimal(char* p, long v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0) *p++ = digits[--n];
  return p;
}

// "/proc/thread-self/fd/N" of a real descriptor (the calling thread's
// table: the process's leader may have exited).
SUBCTX_SIGNAL_CONTEXT void proc_fd_path(char (&out)[40], int real) {
  const char prefix[] = "/proc/thread-self/fd/";
  char* p = out;
  for (const char* q = prefix; *q; ++q) *p++ = *q;
  p = put_decimal(p, real);
  *p = 0;
}

SUBCTX_SIGNAL_CONTEXT long getcwd(const FdTable& t, const Args& x) {
  char link[40];
  proc_fd_path(link, t.cwd);
  char path[kMaxPath + 16];
  const long n = sys6(SYS_readlink, reinterpret_cast<long>(link), reinterpret_cast<long>(path), sizeof path);
  if (is_syscall_error(n)) return n;
  if (n >= static_cast<long>(sizeof path)) return -ENAMETOOLONG;
  const char deleted[] = " (deleted)";
  const long dl = sizeof deleted - 1;
  bool gone = n >= dl;
  for (long i = 0; gone && i < dl; ++i) gone = path[n - dl + i] == deleted[i];
  if (n == 0 || path[0] != '/' || gone) return -ENOENT;
  if (n + 1 > x.a[1]) return -ERANGE;
  path[n] = 0;
  return copy_out(static_cast<uint64_t>(x.a[0]), path, static_cast<size_t>(n + 1)) ? n + 1 : -EFAULT;
}

// The new working directory (a real descriptor of a directory, ours to
// keep) after chdir's own check: search permission.
SUBCTX_SIGNAL_CONTEXT long set_cwd(FdTable& t, long dir) {
  if (is_syscall_error(dir)) return dir;
  const long ok = sys6(SYS_faccessat2, dir, reinterpret_cast<long>(""), X_OK, AT_EMPTY_PATH | AT_EACCESS);
  if (is_syscall_error(ok) && ok != -EINVAL && ok != -ENOSYS) {
    sys6(SYS_close, dir);
    return ok;
  }
  TableWrite w(t);
  if (t.cwd_owned) release_real(t, t.cwd);
  t.cwd = adopt_real(t, static_cast<int>(dir));
  t.cwd_owned = true;
  return 0;
}

SUBCTX_SIGNAL_CONTEXT long chdir(FdTable& t, SyscallCall& c, const Args& x) {
  const Args y{{dir_real(t, kAtFdcwd), x.a[0], O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0, 0}};
  return set_cwd(t, make(c, SYS_openat, y));
}

SUBCTX_SIGNAL_CONTEXT long fchdir(FdTable& t, const Args& x) {
  const int real = fd_real(t, as_fd(x.a[0]));
  if (real < 0) return -EBADF;
  struct stat st;
  const long r = sys6(SYS_fstat, real, reinterpret_cast<long>(&st));
  if (is_syscall_error(r)) return r;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  return set_cwd(t, sys6(SYS_fcntl, real, F_DUPFD_CLOEXEC, 0));
}

// A path argument of a call without an *at form: a relative one is made
// to resolve against the subcontext's working directory through
// /proc/self/fd.  Returns the pointer to pass (the original, or buf), or
// -errno.
SUBCTX_SIGNAL_CONTEXT long resolve_path(const FdTable& t, long user, char (&buf)[kMaxPath + 48]) {
  char path[kMaxPath];
  const long n = copy_in_path(path, sizeof path, static_cast<uint64_t>(user));
  if (n < 0) return n;
  if (n == 0 || path[0] == '/') return user;
  char prefix[40];
  proc_fd_path(prefix, t.cwd);
  char* p = buf;
  for (const char* q = prefix; *q; ++q) *p++ = *q;
  *p++ = '/';
  for (long i = 0; i <= n; ++i) *p++ = path[i];
  return reinterpret_cast<long>(buf);
}

SUBCTX_SIGNAL_CONTEXT long with_resolved_path(const FdTable& t, SyscallCall& c, long nr, Args x, int path_arg) {
  char buf[kMaxPath + 48];
  const long p = resolve_path(t, x.a[path_arg], buf);
  if (is_syscall_error(p)) return p;
  x.a[path_arg] = p;
  return make(c, nr, x);
}

// ---- duplicating and closing -------------------------------------------

// real duplicated as the subcontext's number v, or (v < 0) its lowest free
// one from min, chosen under the table's lock.
SUBCTX_SIGNAL_CONTEXT long dup_to(FdTable& t, int real, int v, long min, bool cloexec) {
  const long d = sys6(SYS_fcntl, real, F_DUPFD_CLOEXEC, 0);
  if (is_syscall_error(d)) return d;
  TableWrite w(t);
  if (v < 0) v = fd_lowest_free(t, min);
  if (v < 0) {
    sys6(SYS_close, d);
    return -EMFILE;
  }
  close_taken_locked(t, v);
  fd_set(t, v, adopt_real(t, static_cast<int>(d)), FdOrigin::Opened, cloexec);
  return v;
}

SUBCTX_SIGNAL_CONTEXT long dup2(FdTable& t, long nr, const Args& x) {
  const int from = as_fd(x.a[0]), to = as_fd(x.a[1]);
  const int real = fd_real(t, from);
  if (real < 0) return -EBADF;
  if (to < 0 || to >= kMaxFds) return -EBADF;
  if (nr == SYS_dup3) {
    if (x.a[2] & ~static_cast<long>(O_CLOEXEC)) return -EINVAL;
    if (from == to) return -EINVAL;
  } else if (from == to) {
    return to;
  }
  return dup_to(t, real, to, 0, nr == SYS_dup3 && (x.a[2] & O_CLOEXEC));
}

SUBCTX_SIGNAL_CONTEXT long dup_lowest(FdTable& t, int real, long min, bool cloexec) {
  return dup_to(t, real, -1, min, cloexec);
}

SUBCTX_SIGNAL_CONTEXT long close_range(FdTable& t, const Args& x) {
  const auto first = static_cast<unsigned>(x.a[0]), last = static_cast<unsigned>(x.a[1]);
  const auto flags = static_cast<unsigned>(x.a[2]);
  if (flags & ~static_cast<unsigned>(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) return -EINVAL;
  if (first > last) return -EINVAL;
  // CLOSE_RANGE_UNSHARE would unshare the client's descriptor table: the
  // subcontext's is its own already.
  TableWrite w(t);
  for (unsigned v = first; v <= last && v < static_cast<unsigned>(kMaxFds); ++v) {
    FdEntry& e = t.entries[v];
    if (e.origin == FdOrigin::Free) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) e.cloexec = true;
    else close_taken_locked(t, static_cast<int>(v));
  }
  return 0;
}

SUBCTX_SIGNAL_CONTEXT long fcntl(FdTable& t, SyscallCall& c, Args x) {
  const int v = as_fd(x.a[0]);
  const int real = fd_real(t, v);
  if (real < 0) return -EBADF;
  const int cmd = static_cast<int>(x.a[1]);
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      if (x.a[2] < 0 || x.a[2] >= kMaxFds) return -EINVAL;
      return dup_lowest(t, real, x.a[2], cmd == F_DUPFD_CLOEXEC);
    case F_GETFD: return t.entries[v].cloexec ? FD_CLOEXEC : 0;
    case F_SETFD: t.entries[v].cloexec = x.a[2] & FD_CLOEXEC; return 0;
    case F_SETOWN:
    case F_SETOWN_EX:
      if (x.a[2]) return -EPERM;  // SIGIO to a process: signals to others are refused
      break;
    case F_NOTIFY: return -EPERM;  // dnotify signals the client process
    case F_SETFL:
      if (t.entries[v].origin == FdOrigin::ClientStd) return -EPERM;  // the client's open file's status
      break;
    case F_SETLEASE:
      if (x.a[2] != F_UNLCK) return -EPERM;  // a lease break signals the client process
      break;
    case 1027: {  // F_DUPFD_QUERY: its argument is a descriptor too
      const int other = fd_real(t, as_fd(x.a[2]));
      if (other < 0) return -EBADF;
      x.a[2] = other;
      break;
    }
    default: break;
  }
  x.a[0] = real;
  return make(c, SYS_fcntl, x);
}

// ---- ioctl ---------------------------------------------------------------

constexpr unsigned long kFioclex = 0x5451, kFionclex = 0x5450, kFionbio = 0x5421, kFioasync = 0x5452,
                        kFiclone = 0x40049409;

// Requests that take and make no descriptor and change nothing of the
// client's: by exact number (a request family may hide descriptors in its
// structures: EXT4_IOC_MOVE_EXT, SIOCKCMCLONE, TUNSETFILTEREBPF, ...).
constexpr unsigned long kIoctlAllowed[] = {
    // terminal attributes and sizes (not TIOCSTI, TIOCSCTTY, TIOCSPGRP, ...)
    0x5401, 0x5402, 0x5403, 0x5404, 0x5405, 0x5406, 0x5407, 0x5408, 0x5409, 0x540A, 0x540B, 0x540F, 0x5411, 0x5413,
    0x5414, 0x5415, 0x541B, 0x5424, 0x5425, 0x5429, 0x802C542A, 0x402C542B, 0x402C542C, 0x402C542D, 0x80045430,
    0x40045431, 0x5460 /* FIOQSIZE */,
    // sockets: queue sizes, timestamps, interface queries
    0x8905, 0x8906, 0x8907, 0x894B, 0x8910, 0x8912, 0x8913, 0x8915, 0x8917, 0x8919, 0x891B, 0x891D, 0x8921, 0x8927,
    0x8933, 0x8942,
    // files: flags, version, extents, block sizes; block devices: sizes
    0x80086601, 0x40086602, 0x80087601, 0x801C581F, 0x401C5820, 0xC020660B, 0x1, 0x2, 0x80081272, 0x1260, 0x1268,
    0x80081270, 0x127B, 0x1278, 0x1279, 0x125E, 0x127C};

SUBCTX_SIGNAL_CONTEXT bool ioctl_allowed(unsigned long req) {
  for (unsigned long r : kIoctlAllowed)
    if (r == req) return true;
  return false;
}

SUBCTX_SIGNAL_CONTEXT long ioctl(FdTable& t, SyscallCall& c, Args x) {
  const int v = as_fd(x.a[0]);
  const int real = fd_real(t, v);
  if (real < 0) return -EBADF;
  const auto req = static_cast<unsigned long>(static_cast<unsigned>(x.a[1]));
  if (req == kFioclex || req == kFionclex) {
    t.entries[v].cloexec = req == kFioclex;
    return 0;
  }
  if (req == kFiclone) {
    const int src = fd_real(t, as_fd(x.a[2]));
    if (src < 0) return -EBADF;
    x.a[2] = src;
  } else if (req == kFionbio || req == kFioasync) {
    // The open file's status: the client's own for 0-2.
    if (t.entries[v].origin == FdOrigin::ClientStd) return -EPERM;
  } else if (!ioctl_allowed(req)) {
    return -EPERM;  // may take or make a descriptor this namespace would not see
  }
  x.a[0] = real;
  return make(c, SYS_ioctl, x);
}

// ---- pairs ---------------------------------------------------------------

// The two real descriptors a pipe or socketpair made, as the subcontext's
// (written to its int[2] at out).
SUBCTX_SIGNAL_CONTEXT long install_pair(FdTable& t, const int (&real)[2], long out, bool cloexec) {
  const long v0 = install(t, real[0], cloexec);
  if (v0 < 0) {
    sys6(SYS_close, real[1]);
    return v0;
  }
  const long v1 = install(t, real[1], cloexec);
  if (v1 < 0) {
    close_taken(t, static_cast<int>(v0));
    return v1;
  }
  const int v[2] = {static_cast<int>(v0), static_cast<int>(v1)};
  if (!copy_out(static_cast<uint64_t>(out), v, sizeof v)) {
    close_taken(t, v[0]);
    close_taken(t, v[1]);
    return -EFAULT;
  }
  return 0;
}

SUBCTX_SIGNAL_CONTEXT long pipe2(FdTable& t, SyscallCall& c, long out, long flags) {
  int real[2];
  const long r = make(c, SYS_pipe2, {{reinterpret_cast<long>(real), flags | O_CLOEXEC, 0, 0, 0, 0}});
  return is_syscall_error(r) ? r : install_pair(t, real, out, flags & O_CLOEXEC);
}

SUBCTX_SIGNAL_CONTEXT long socketpair(FdTable& t, SyscallCall& c, const Args& x) {
  int real[2];
  const long r = make(c, SYS_socketpair, {{x.a[0], x.a[1] | SOCK_CLOEXEC, x.a[2], reinterpret_cast<long>(real), 0, 0}});
  return is_syscall_error(r) ? r : install_pair(t, real, x.a[3], x.a[1] & SOCK_CLOEXEC);
}

// ---- poll and select -----------------------------------------------------

SUBCTX_SIGNAL_CONTEXT long poll(const FdTable& t, SyscallCall& c, long nr, Args x) {
  const auto n = static_cast<unsigned long>(x.a[1]);
  if (n > static_cast<unsigned long>(kMaxFds)) return -EINVAL;
  struct pollfd p[kMaxFds];
  int virt[kMaxFds];
  if (n && !copy_in(p, static_cast<uint64_t>(x.a[0]), n * sizeof *p)) return -EFAULT;
  for (unsigned long i = 0; i < n; ++i) {
    virt[i] = p[i].fd;
    if (p[i].fd < 0) continue;  // ignored, as by the kernel
    const int real = fd_real(t, p[i].fd);
    p[i].fd = real >= 0 ? real : INT_MAX;  // never open: POLLNVAL, as for a closed number
  }
  const long user = x.a[0];
  x.a[0] = reinterpret_cast<long>(p);
  const long r = make(c, nr, x);
  if (is_syscall_error(r)) return r;
  for (unsigned long i = 0; i < n; ++i) p[i].fd = virt[i];
  return n && !copy_out(static_cast<uint64_t>(user), p, n * sizeof *p) ? -EFAULT : r;
}

constexpr int kSetWords = kMaxFds / 64;
constexpr short kReadable = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR;
constexpr short kWritable = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR;

struct SelectSets {
  uint64_t in[3][kSetWords] = {};
  bool given[3] = {};
};

SUBCTX_SIGNAL_CONTEXT bool bit(const uint64_t* s, int v) { return (s[v / 64] >> (v % 64)) & 1; }

// select and pselect6, made as a ppoll over the real descriptors.
SUBCTX_SIGNAL_CONTEXT long select(const FdTable& t, SyscallCall& c, long nr, const Args& x) {
  if (x.a[0] < 0) return -EINVAL;
  const int n = x.a[0] > kMaxFds ? kMaxFds : static_cast<int>(x.a[0]);
  const size_t bytes = static_cast<size_t>((n + 63) / 64) * 8;
  SelectSets s;
  for (int k = 0; k < 3; ++k) {
    s.given[k] = x.a[1 + k] != 0;
    if (s.given[k] && bytes && !copy_in(s.in[k], static_cast<uint64_t>(x.a[1 + k]), bytes)) return -EFAULT;
  }
  struct pollfd p[kMaxFds];
  int virt[kMaxFds], count = 0;
  for (int v = 0; v < n; ++v) {
    const short ev =
        static_cast<short>((bit(s.in[0], v) ? POLLIN | POLLRDNORM | POLLRDBAND : 0) |
                           (bit(s.in[1], v) ? POLLOUT | POLLWRNORM | POLLWRBAND : 0) | (bit(s.in[2], v) ? POLLPRI : 0));
    if (!ev) continue;
    const int real = fd_real(t, v);
    if (real < 0) return -EBADF;
    p[count] = {real, ev, 0};
    virt[count++] = v;
  }
  struct timespec ts, *tsp = nullptr;
  if (x.a[4]) {
    if (nr == SYS_select) {
      struct timeval tv;
      if (!copy_in(&tv, static_cast<uint64_t>(x.a[4]), sizeof tv)) return -EFAULT;
      if (tv.tv_sec < 0 || tv.tv_usec < 0) return -EINVAL;
      ts = {tv.tv_sec + tv.tv_usec / 1000000, (tv.tv_usec % 1000000) * 1000};  // as the kernel normalizes it
    } else if (!copy_in(&ts, static_cast<uint64_t>(x.a[4]), sizeof ts)) {
      return -EFAULT;
    }
    tsp = &ts;
  }
  long mask[2] = {0, 0};  // pselect6: {const sigset_t *ss, size_t ss_len}
  if (nr == SYS_pselect6 && x.a[5] && !copy_in(mask, static_cast<uint64_t>(x.a[5]), sizeof mask)) return -EFAULT;
  const long r =
      make(c, SYS_ppoll, {{reinterpret_cast<long>(p), count, reinterpret_cast<long>(tsp), mask[0], mask[1], 0}});
  if (is_syscall_error(r)) return r;
  uint64_t out[3][kSetWords] = {};
  long ready = 0;
  for (int i = 0; i < count; ++i) {
    const int v = virt[i];
    const short re = p[i].revents;
    if (re & POLLNVAL) return -EBADF;
    const bool hit[3] = {(p[i].events & POLLIN) && (re & kReadable), (p[i].events & POLLOUT) && (re & kWritable),
                         (p[i].events & POLLPRI) && (re & POLLPRI)};
    for (int k = 0; k < 3; ++k)
      if (hit[k]) {
        out[k][v / 64] |= uint64_t{1} << (v % 64);
        ++ready;
      }
  }
  for (int k = 0; k < 3; ++k)
    if (s.given[k] && bytes && !copy_out(static_cast<uint64_t>(x.a[1 + k]), out[k], bytes)) return -EFAULT;
  if (tsp) {  // Linux writes back the time left
    if (nr == SYS_select) {
      struct timeval left = {ts.tv_sec, ts.tv_nsec / 1000};
      copy_out(static_cast<uint64_t>(x.a[4]), &left, sizeof left);
    } else {
      copy_out(static_cast<uint64_t>(x.a[4]), &ts, sizeof ts);
    }
  }
  return ready;
}

// ---- descriptors in messages (SCM_RIGHTS) --------------------------------
// (each_right, the walk over control data: cmsg_rights.hpp)

// One outgoing message: its control data copied and its descriptors made
// real, in ctl; m points at the copy.
SUBCTX_SIGNAL_CONTEXT long rights_out(const FdTable& t, struct msghdr& m, unsigned char (&ctl)[kMaxControl]) {
  if (!m.msg_control || !m.msg_controllen) return 0;
  if (m.msg_controllen > sizeof ctl) return -ENOBUFS;
  if (!copy_in(ctl, reinterpret_cast<uint64_t>(m.msg_control), m.msg_controllen)) return -EFAULT;
  m.msg_control = ctl;
  return each_right(ctl, m.msg_controllen, [&](int* fd) -> long {
    const int real = fd_real(t, *fd);
    if (real < 0) return -EBADF;
    // Any descriptor sent may share a restored one's open file (a dup of
    // it): the receiver can move its offset at any time.
    t.restored_shared = true;
    *fd = real;
    return 0;
  });
}

// The descriptors in control data the kernel wrote into the handler's own
// buffer become the subcontext's; a full table drops them (MSG_CTRUNC).
SUBCTX_SIGNAL_CONTEXT void rights_in(FdTable& t, struct msghdr& m, bool cloexec) {
  bool dropped = false;
  each_right(static_cast<unsigned char*>(m.msg_control), m.msg_controllen, [&](int* fd) -> long {
    const long v = install(t, *fd, cloexec);
    dropped |= v < 0;
    *fd = v < 0 ? -1 : static_cast<int>(v);
    return 0;
  });
  if (dropped) m.msg_flags |= MSG_CTRUNC;
}

// One message received into the subcontext's msghdr at user, its control
// data first into ctl (never read back from subcontext memory: only what
// the kernel wrote there is installed).
struct Received {
  struct msghdr m;
  uint64_t user_control;
  size_t user_controllen;
};

SUBCTX_SIGNAL_CONTEXT bool receive_prepare(uint64_t user, Received& r, unsigned char* ctl, size_t cap) {
  if (!copy_in(&r.m, user, sizeof r.m)) return false;
  r.user_control = reinterpret_cast<uint64_t>(r.m.msg_control);
  r.user_controllen = r.user_control ? r.m.msg_controllen : 0;
  r.m.msg_control = r.user_controllen ? ctl : nullptr;
  r.m.msg_controllen = r.user_controllen < cap ? r.user_controllen : cap;  // less: the kernel says MSG_CTRUNC
  return true;
}

// After the kernel filled r.m: descriptors installed, control data and the
// fields the kernel writes back copied to the subcontext's msghdr.
SUBCTX_SIGNAL_CONTEXT bool receive_finish(FdTable& t, uint64_t user, Received& r, bool cloexec) {
  if (r.user_controllen) rights_in(t, r.m, cloexec);
  const bool ok =
      (!r.m.msg_controllen || copy_out(r.user_control, r.m.msg_control, r.m.msg_controllen)) &&
      copy_out(user + offsetof(struct msghdr, msg_namelen), &r.m.msg_namelen, sizeof r.m.msg_namelen) &&
      copy_out(user + offsetof(struct msghdr, msg_controllen), &r.m.msg_controllen, sizeof r.m.msg_controllen) &&
      copy_out(user + offsetof(struct msghdr, msg_flags), &r.m.msg_flags, sizeof r.m.msg_flags);
  return ok;
}

SUBCTX_SIGNAL_CONTEXT long recvmsg(FdTable& t, SyscallCall& c, int real, uint64_t user, long flags) {
  Received r;
  unsigned char ctl[kMaxControl];
  if (!receive_prepare(user, r, ctl, sizeof ctl)) return -EFAULT;
  const long n = make(c, SYS_recvmsg, {{real, reinterpret_cast<long>(&r.m), flags | MSG_CMSG_CLOEXEC, 0, 0, 0}});
  if (is_syscall_error(n)) return n;
  if (!receive_finish(t, user, r, flags & MSG_CMSG_CLOEXEC)) return -EFAULT;
  return n;
}

// recvmmsg of at most kMaxBatch messages (fewer than asked is allowed),
// each with its control data in a buffer of the handler's.
constexpr unsigned kMaxBatch = 8;
constexpr size_t kBatchControl = 1040;  // SCM_RIGHTS of 253 descriptors, the kernel's most

SUBCTX_SIGNAL_CONTEXT long recvmmsg(FdTable& t, SyscallCall& c, int real, const Args& x) {
  const unsigned vlen = static_cast<unsigned>(x.a[2]) < kMaxBatch ? static_cast<unsigned>(x.a[2]) : kMaxBatch;
  const auto base = static_cast<uint64_t>(x.a[1]);
  struct mmsghdr v[kMaxBatch];
  Received r[kMaxBatch];
  unsigned char ctl[kMaxBatch][kBatchControl];
  for (unsigned i = 0; i < vlen; ++i) {
    if (!receive_prepare(base + i * sizeof(struct mmsghdr), r[i], ctl[i], kBatchControl)) return -EFAULT;
    v[i].msg_hdr = r[i].m;
    v[i].msg_len = 0;
  }
  const long n = make(c, SYS_recvmmsg, {{real, reinterpret_cast<long>(v), vlen, x.a[3] | MSG_CMSG_CLOEXEC, x.a[4], 0}});
  if (is_syscall_error(n)) return n;
  for (long i = 0; i < n; ++i) {
    r[i].m = v[i].msg_hdr;
    const uint64_t at = base + static_cast<uint64_t>(i) * sizeof(struct mmsghdr);
    if (!receive_finish(t, at, r[i], x.a[3] & MSG_CMSG_CLOEXEC) ||
        !copy_out(at + offsetof(struct mmsghdr, msg_len), &v[i].msg_len, sizeof v[i].msg_len))
      return -EFAULT;
  }
  return n;
}

SUBCTX_SIGNAL_CONTEXT long sendmsg(const FdTable& t, SyscallCall& c, int real, uint64_t user, long flags) {
  struct msghdr m;
  if (!copy_in(&m, user, sizeof m)) return -EFAULT;
  unsigned char ctl[kMaxControl];
  if (const long e = rights_out(t, m, ctl)) return e;
  return make(c, SYS_sendmsg, {{real, reinterpret_cast<long>(&m), flags, 0, 0, 0}});
}

// sendmmsg as one sendmsg per message (each may carry descriptors).
SUBCTX_SIGNAL_CONTEXT long sendmmsg(const FdTable& t, SyscallCall& c, int real, const Args& x) {
  const auto vlen = static_cast<unsigned>(x.a[2]) > 1024 ? 1024u : static_cast<unsigned>(x.a[2]);
  const auto base = static_cast<uint64_t>(x.a[1]);
  for (unsigned i = 0; i < vlen; ++i) {
    const uint64_t at = base + i * sizeof(struct mmsghdr);
    const long r = sendmsg(t, c, real, at, x.a[3]);
    if (is_syscall_error(r)) return i ? i : r;
    const auto sent = static_cast<unsigned>(r);
    if (!copy_out(at + offsetof(struct mmsghdr, msg_len), &sent, sizeof sent)) return i ? i : -EFAULT;
  }
  return vlen;
}

SUBCTX_SIGNAL_CONTEXT long messages(FdTable& t, SyscallCall& c, long nr, const Args& x) {
  const int real = fd_real(t, as_fd(x.a[0]));
  if (real < 0) return -EBADF;
  switch (nr) {
    case SYS_sendmsg: return sendmsg(t, c, real, static_cast<uint64_t>(x.a[1]), x.a[2]);
    case SYS_sendmmsg: return sendmmsg(t, c, real, x);
    case SYS_recvmsg: return recvmsg(t, c, real, static_cast<uint64_t>(x.a[1]), x.a[2]);
    default: return recvmmsg(t, c, real, x);
  }
}

// ---- the rest -------------------------------------------------------------

SUBCTX_SIGNAL_CONTEXT long signalfd4(FdTable& t, SyscallCall& c, Args x) {
  const int v = as_fd(x.a[0]);
  if (v == -1) {  // a new one
    const bool cloexec = x.a[3] & O_CLOEXEC;
    x.a[3] |= O_CLOEXEC;
    return install(t, make(c, SYS_signalfd4, x), cloexec);
  }
  const int real = fd_real(t, v);
  if (real < 0) return -EBADF;
  x.a[0] = real;
  const long r = make(c, SYS_signalfd4, x);
  return is_syscall_error(r) ? r : v;
}

SUBCTX_SIGNAL_CONTEXT long perf_event_open(FdTable& t, SyscallCall& c, Args x) {
  constexpr long kPidCgroup = 4, kFdCloexec = 8;  // PERF_FLAG_PID_CGROUP, PERF_FLAG_FD_CLOEXEC
  if (as_fd(x.a[3]) != -1) {
    const int group = fd_real(t, as_fd(x.a[3]));
    if (group < 0) return -EBADF;
    x.a[3] = group;
  }
  if (x.a[4] & kPidCgroup) {  // pid is a cgroup directory's descriptor
    const int cg = fd_real(t, as_fd(x.a[1]));
    if (cg < 0) return -EBADF;
    x.a[1] = cg;
  }
  const bool cloexec = x.a[4] & kFdCloexec;
  x.a[4] |= kFdCloexec;
  return install(t, make(c, SYS_perf_event_open, x), cloexec);
}

SUBCTX_SIGNAL_CONTEXT long waitid(const FdTable& t, SyscallCall& c, Args x) {
  if (static_cast<int>(x.a[0]) == P_PIDFD) {
    const int real = fd_real(t, as_fd(x.a[1]));
    if (real < 0) return -EBADF;
    x.a[1] = real;
  }
  return make(c, SYS_waitid, x);
}

SUBCTX_SIGNAL_CONTEXT long setsockopt(const FdTable& t, SyscallCall& c, Args x) {
  const int real = fd_real(t, as_fd(x.a[0]));
  if (real < 0) return -EBADF;
  // SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_EBPF: their value is a descriptor;
  // SO_PASSPIDFD: messages would bring pidfds (SCM_PIDFD) in.
  const int level = static_cast<int>(x.a[1]), name = static_cast<int>(x.a[2]);
  if (level == SOL_SOCKET && (name == 50 || name == 52 || name == 76)) return -EPERM;
  x.a[0] = real;
  return make(c, SYS_setsockopt, x);
}

SUBCTX_SIGNAL_CONTEXT long getsockopt(const FdTable& t, SyscallCall& c, Args x) {
  const int real = fd_real(t, as_fd(x.a[0]));
  if (real < 0) return -EBADF;
  // SO_PEERPIDFD makes a pidfd in the client's table.
  if (static_cast<int>(x.a[1]) == SOL_SOCKET && static_cast<int>(x.a[2]) == 77) return -EPERM;
  x.a[0] = real;
  return make(c, SYS_getsockopt, x);
}

SUBCTX_SIGNAL_CONTEXT long keyctl(SyscallCall& c, const Args& x) {
  if (static_cast<int>(x.a[0]) == 32) return -EPERM;  // KEYCTL_WATCH_KEY: a watch queue's descriptor
  return make(c, SYS_keyctl, x);
}

// The old calls without a directory argument, as their *at forms.
SUBCTX_SIGNAL_CONTEXT bool as_at_form(long nr, const Args& x, long* at_nr, Args* y) {
  const long a = x.a[0], b = x.a[1], c = x.a[2], cwd = kAtFdcwd;
  switch (nr) {
    case SYS_stat:
      *at_nr = SYS_newfstatat;
      *y = {{cwd, a, b, 0, 0, 0}};
      return true;
    case SYS_lstat:
      *at_nr = SYS_newfstatat;
      *y = {{cwd, a, b, AT_SYMLINK_NOFOLLOW, 0, 0}};
      return true;
    case SYS_access:
      *at_nr = SYS_faccessat;
      *y = {{cwd, a, b, 0, 0, 0}};
      return true;
    case SYS_mkdir:
      *at_nr = SYS_mkdirat;
      *y = {{cwd, a, b, 0, 0, 0}};
      return true;
    case SYS_rmdir:
      *at_nr = SYS_unlinkat;
      *y = {{cwd, a, AT_REMOVEDIR, 0, 0, 0}};
      return true;
    case SYS_unlink:
      *at_nr = SYS_unlinkat;
      *y = {{cwd, a, 0, 0, 0, 0}};
      return true;
    case SYS_rename:
      *at_nr = SYS_renameat;
      *y = {{cwd, a, cwd, b, 0, 0}};
      return true;
    case SYS_link:
      *at_nr = SYS_linkat;
      *y = {{cwd, a, cwd, b, 0, 0}};
      return true;
    case SYS_symlink:
      *at_nr = SYS_symlinkat;
      *y = {{a, cwd, b, 0, 0, 0}};
      return true;
    case SYS_readlink:
      *at_nr = SYS_readlinkat;
      *y = {{cwd, a, b, c, 0, 0}};
      return true;
    case SYS_chmod:
      *at_nr = SYS_fchmodat;
      *y = {{cwd, a, b, 0, 0, 0}};
      return true;
    case SYS_chown:
      *at_nr = SYS_fchownat;
      *y = {{cwd, a, b, c, 0, 0}};
      return true;
    case SYS_lchown:
      *at_nr = SYS_fchownat;
      *y = {{cwd, a, b, c, AT_SYMLINK_NOFOLLOW, 0}};
      return true;
    case SYS_mknod:
      *at_nr = SYS_mknodat;
      *y = {{cwd, a, b, c, 0, 0}};
      return true;
    case SYS_utimes:
      *at_nr = SYS_futimesat;
      *y = {{cwd, a, b, 0, 0, 0}};
      return true;
    case SYS_accept:
      *at_nr = SYS_accept4;
      *y = {{a, b, c, 0, 0, 0}};
      return true;
    case SYS_eventfd:
      *at_nr = SYS_eventfd2;
      *y = {{a, 0, 0, 0, 0, 0}};
      return true;
    case SYS_inotify_init:
      *at_nr = SYS_inotify_init1;
      *y = {{0, 0, 0, 0, 0, 0}};
      return true;
  }
  return false;
}

SUBCTX_SIGNAL_CONTEXT long special(FdTable& t, SyscallCall& c, long nr, const Args& x) {
  switch (nr) {
    case SYS_open: return openat(t, c, kAtFdcwd, x.a[0], x.a[1], x.a[2]);
    case SYS_creat: return openat(t, c, kAtFdcwd, x.a[0], O_CREAT | O_WRONLY | O_TRUNC, x.a[1]);
    case SYS_openat: return openat(t, c, x.a[0], x.a[1], x.a[2], x.a[3]);
    case SYS_openat2: return openat2(t, c, x);
    case SYS_close: {
      const int v = as_fd(x.a[0]);
      TableWrite w(t);
      if (fd_real(t, v) < 0) return -EBADF;
      const int r = fd_take(t, v);
      if (r >= 0) release_real(t, r);
      return 0;
    }
    case SYS_close_range: return close_range(t, x);
    case SYS_dup: {
      const int real = fd_real(t, as_fd(x.a[0]));
      return real < 0 ? -EBADF : dup_lowest(t, real, 0, false);
    }
    case SYS_dup2:
    case SYS_dup3: return dup2(t, nr, x);
    case SYS_fcntl: return fcntl(t, c, x);
    case SYS_ioctl: return ioctl(t, c, x);
    case SYS_pipe: return pipe2(t, c, x.a[0], 0);
    case SYS_pipe2: return pipe2(t, c, x.a[0], x.a[1]);
    case SYS_socketpair: return socketpair(t, c, x);
    case SYS_poll:
    case SYS_ppoll: return poll(t, c, nr, x);
    case SYS_select:
    case SYS_pselect6: return select(t, c, nr, x);
    case SYS_sendmsg:
    case SYS_recvmsg:
    case SYS_sendmmsg:
    case SYS_recvmmsg: return messages(t, c, nr, x);
    case SYS_setsockopt: return setsockopt(t, c, x);
    case SYS_getsockopt: return getsockopt(t, c, x);
    case SYS_keyctl: return keyctl(c, x);
    case SYS_getcwd: return getcwd(t, x);
    case SYS_chdir: return chdir(t, c, x);
    case SYS_fchdir: return fchdir(t, x);
    case SYS_umask: {
      const long old = t.umask;
      t.umask = static_cast<uint32_t>(x.a[0]) & 0777;
      return old;
    }
    case SYS_epoll_create:
      return x.a[0] <= 0 ? -EINVAL : descriptor_syscall_args(t, c, SYS_epoll_create1, {{0, 0, 0, 0, 0, 0}});
    case SYS_signalfd: return signalfd4(t, c, {{x.a[0], x.a[1], x.a[2], 0, 0, 0}});
    case SYS_signalfd4: return signalfd4(t, c, x);
    case SYS_perf_event_open: return perf_event_open(t, c, x);
    case SYS_waitid: return waitid(t, c, x);
    case SYS_truncate:
    case SYS_statfs:
    case SYS_utime:
    case SYS_setxattr:
    case SYS_lsetxattr:
    case SYS_getxattr:
    case SYS_lgetxattr:
    case SYS_listxattr:
    case SYS_llistxattr:
    case SYS_removexattr:
    case SYS_lremovexattr: return with_resolved_path(t, c, nr, x, 0);
    case SYS_inotify_add_watch: {
      const int real = fd_real(t, as_fd(x.a[0]));
      if (real < 0) return -EBADF;
      return with_resolved_path(t, c, nr, {{real, x.a[1], x.a[2], 0, 0, 0}}, 1);
    }
  }
  return -ENOSYS;
}

SUBCTX_SIGNAL_CONTEXT long descriptor_syscall_args(FdTable& t, SyscallCall& c, long nr, const Args& x) {
  long at_nr;
  Args y;
  if (as_at_form(nr, x, &at_nr, &y)) return descriptor_syscall_args(t, c, at_nr, y);
  if (const FdSpec* s = plain_fd_spec(nr)) return plain(t, c, nr, *s, x);
  return special(t, c, nr, x);
}

}  // namespace

SUBCTX_SIGNAL_CONTEXT long descriptor_syscall(FdTable& t, SyscallCall& c, long nr, const greg_t* g) {
  return descriptor_syscall_args(t, c, nr, args_of(g));
}

int fd_grant(FdTable& t, int real) {
  TableWrite w(t);
  const int v = fd_lowest_free(t, 0, /*skip_reserved=*/true);
  if (v >= 0) fd_set(t, v, adopt_real(t, real), FdOrigin::Granted, false);
  return v;
}

bool fd_revoke(FdTable& t, int v) {
  TableWrite w(t);
  if (fd_real(t, v) < 0) return false;
  close_taken_locked(t, v);
  return true;
}

void stop_sharing_descriptors(FdTable& t) {
  for (uint32_t i = 0; i < t.n_dead; ++i) sys6(SYS_close, t.dead[i]);
  t.n_dead = 0;
  t.threaded.store(false, std::memory_order_release);
}

SUBCTX_SIGNAL_CONTEXT long translate_mmap_fd(const FdTable& t, long flags, long fd) {
  if (flags & MAP_ANONYMOUS) return fd;
  const int real = fd_real(t, as_fd(fd));
  return real >= 0 ? real : -EBADF;
}

}  // namespace subctx::fault
