// The server's files, working directory and descriptor numbers in a client
// (identity.hpp, docs/identity.md), and the grants of Subcontext.
#include "matchmaker/identity.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "fault/fd_syscalls.hpp"
#include "fault/syscalls.hpp"
#include "matchmaker/registry.hpp"
#include "matchmaker/reset.hpp"
#include "sys/io.hpp"

namespace subctx {

namespace matchmaker {

namespace {

// Open flags that mean the same on a reopen.  Not O_CREAT, O_EXCL, O_TRUNC
// (a reopen must neither make nor empty the file) nor O_NOFOLLOW (the path
// is the one the descriptor resolved to).
constexpr uint32_t kReopenFlags =
    O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME | O_DIRECTORY | O_PATH | O_LARGEFILE;
// What F_SETFL can put back.
constexpr uint32_t kStatusFlags = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

std::string access_text(uint32_t flags) {
  if (flags & O_PATH) return "path only";
  std::string t = (flags & O_ACCMODE) == O_RDONLY ? "read" : (flags & O_ACCMODE) == O_WRONLY ? "write" : "read-write";
  if (flags & O_APPEND) t += ", append";
  return t;
}

std::string describe(const image::FdRecord& r) {
  return "descriptor " + std::to_string(r.number) + " (" + image::fd_kind_name(r.kind) + " " + sys::printable(r.path) +
         ", " + access_text(r.flags) + ")";
}

bool kind_matches(image::FdKind kind, mode_t mode) {
  switch (kind) {
    case image::FdKind::File: return S_ISREG(mode);
    case image::FdKind::Directory: return S_ISDIR(mode);
    case image::FdKind::CharDevice: return S_ISCHR(mode);
    default: return false;
  }
}

void check_reopen_allowed(const Registry& r, const detail::SubcontextState& s, const std::string& what,
                          const std::string& path) {
  const policy::Decision d =
      policy::decide_reopen(r.policy.get(), {s.canonical_path, s.owner, s.info.header_digest}, path);
  if (!d.allowed) throw PolicyDenied("cannot map image " + s.path + ": " + what + ": " + d.why);
}

[[noreturn]] void throw_reopen_failed(const detail::SubcontextState& s, const std::string& what, int err) {
  const std::string msg = "cannot map image " + s.path + ": cannot reopen its " + what + ": " + sys::errno_text(err) +
                          "; the server had it open when it was snapshotted: put it back (or let this client open "
                          "it), or snapshot the server again without it (docs/identity.md)";
  if (err == EACCES || err == EPERM) throw PermissionDenied(msg);
  throw IoError(msg);
}

// One descriptor of the server's, reopened by path (or shared with an
// earlier one, as dup had it in the server).
detail::RestoredFd reopen(const detail::SubcontextState& s, const image::FdRecord& rec,
                          const std::vector<detail::RestoredFd>& done) {
  detail::RestoredFd out;
  out.number = rec.number;
  out.cloexec = rec.flags & O_CLOEXEC;
  for (const auto& earlier : done)
    if (earlier.number == rec.same_as) {
      out.fd = sys::UniqueFd(fcntl(earlier.fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!out.fd)
        throw SystemError("cannot map image " + s.path + ": dup of a reopened descriptor: " + sys::errno_text(errno));
      out.offset = earlier.offset;
      out.status_flags = earlier.status_flags;
      out.seekable = earlier.seekable;
      return out;
    }
  int flags = static_cast<int>(rec.flags & kReopenFlags) | O_CLOEXEC | O_NOCTTY;
  // Non-blocking while it is checked: a path that is a FIFO now must not
  // hang the map.
  const int opening = flags | O_NONBLOCK;
  out.fd = sys::UniqueFd(open(rec.path.c_str(), opening));
  if (!out.fd && errno == EPERM && (flags & O_NOATIME)) {  // only the owner may: the access times move then
    flags &= ~O_NOATIME;
    out.fd = sys::UniqueFd(open(rec.path.c_str(), flags | O_NONBLOCK));
  }
  if (!out.fd) throw_reopen_failed(s, describe(rec), errno);
  struct stat st;
  if (fstat(out.fd.get(), &st) != 0) throw_reopen_failed(s, describe(rec), errno);
  if (!kind_matches(rec.kind, st.st_mode))
    throw IoError("cannot map image " + s.path + ": its " + describe(rec) + " is not a " +
                  image::fd_kind_name(rec.kind) + " any more; snapshot the server again (docs/identity.md)");
  if (!(flags & (O_NONBLOCK | O_PATH)) && fcntl(out.fd.get(), F_SETFL, flags & kStatusFlags) != 0)
    throw_reopen_failed(s, describe(rec), errno);
  out.status_flags = static_cast<uint32_t>(flags) & kStatusFlags;  // as opened (map cost: no F_GETFL)
  // Files at their offset; directories too (a DIR* the server was reading).
  out.seekable =
      (rec.kind == image::FdKind::File || rec.kind == image::FdKind::Directory) && !(rec.flags & (O_APPEND | O_PATH));
  out.offset = rec.offset;
  if (out.seekable && rec.offset && lseek(out.fd.get(), static_cast<off_t>(rec.offset), SEEK_SET) < 0)
    throw_reopen_failed(s, describe(rec) + " at offset " + std::to_string(rec.offset), errno);
  return out;
}

// What a reopened descriptor names once symlinks are resolved: the policy
// decides on that too (an image's path may be a link to a denied file).
std::string resolved_path(int fd) {
  char buf[image::kMaxPathBytes + 1];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = readlink(link.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool same_directory(const std::string& a, const char* b) {
  struct stat x, y;
  return stat(a.c_str(), &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

// Without mediation the numbers in the image name the client's
// descriptors: refused unless the client opted in.
void check_unisolated(const detail::SubcontextState& s, const MapOptions& options, const std::string& why) {
  const image::IdentityRecord& id = s.info.identity;
  std::string restoring;
  size_t n = 0;
  for (const auto& f : id.fds)
    if (!f.dropped && n++ < 3) restoring += (restoring.empty() ? "" : ", ") + describe(f);
  if (n > 3) restoring += ", ...";
  const bool elsewhere = !same_directory(id.cwd, ".");
  if (options.unisolated || (!n && !elsewhere)) return;
  std::string what = n ? std::to_string(n) + " descriptors of the server's (" + restoring + ")" : std::string();
  if (elsewhere) what += (n ? " and " : "") + std::string("its working directory ") + sys::printable(id.cwd);
  throw Unsupported("cannot map image " + s.path + ": it restores " + what +
                    ", but subcontext code's system calls are not mediated here (" + why +
                    "): its descriptor numbers would name this client's descriptors and its relative paths this "
                    "client's working directory; map it with MapOptions::unisolated (SBC_MAP_UNISOLATED) to accept "
                    "that (docs/identity.md)");
}

// Forks counted (glibc's fork() runs the handler in the parent first: the
// child starts with the count that includes its own fork).  A fork shares
// the restored descriptors' open files with the child.
std::atomic<uint64_t> g_forks{0};

bool forks_counted() {  // registers the handler once; false: forks cannot be counted
  static const bool ok = pthread_atfork(
                             +[] { g_forks.fetch_add(1, std::memory_order_relaxed); }, nullptr, nullptr) == 0;
  return ok;
}

void fill_table(detail::SubcontextState& s) {
  fault::FdTable& t = s.fds;
  for (int v = 0; v < 3; ++v) {
    fault::fd_set(t, v, v, fault::FdOrigin::ClientStd, false);
    t.reserve(v);
  }
  for (const auto& r : s.restored_fds) {
    fault::fd_set(t, r.number, r.fd.get(), fault::FdOrigin::Restored, r.cloexec);
    t.reserve(r.number);
  }
  for (const auto& rec : s.info.identity.fds)
    if (rec.dropped) t.drop(rec.number);
  t.cwd = s.cwd.get();
  t.cwd_owned = false;
  t.umask = s.info.identity.umask & 0777;
}

}  // namespace

void restore_identity(const Registry& r, detail::SubcontextState& s, const MapOptions& options) {
  const image::IdentityRecord& id = s.info.identity;
  s.server_pid = id.pid;
  s.pid_at_map = this_pid();
  s.forks_at_map = forks_counted() ? g_forks.load(std::memory_order_relaxed) : 0;
  for (const auto& sig : id.signals)  // ignored or handled: a handler in the image is not run (docs/identity.md)
    if (sig.action != 0) s.ignored_signals |= uint64_t{1} << (sig.signal - 1);
  std::string why;
  if (!fault::syscall_dispatch_available(&why)) return check_unisolated(s, options, why);
  for (const auto& rec : id.fds) {
    if (rec.dropped) continue;
    check_reopen_allowed(r, s, describe(rec), rec.path);
    s.restored_fds.push_back(reopen(s, rec, s.restored_fds));
    if (r.policy) check_reopen_allowed(r, s, describe(rec), resolved_path(s.restored_fds.back().fd.get()));
  }
  const std::string cwd_what = "working directory " + sys::printable(id.cwd);
  check_reopen_allowed(r, s, cwd_what, id.cwd);
  s.cwd = sys::UniqueFd(open(id.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!s.cwd) throw_reopen_failed(s, cwd_what, errno);
  if (r.policy) check_reopen_allowed(r, s, cwd_what, resolved_path(s.cwd.get()));
  fill_table(s);
  s.fds.active = true;
}

DescriptorReset reset_descriptors(detail::SubcontextState& s) {
  DescriptorReset out;
  fault::FdTable& t = s.fds;
  if (!t.active) return out;
  for (int v = 0; v < fault::kMaxFds; ++v) {
    const fault::FdOrigin o = t.entries[v].origin;
    if (o == fault::FdOrigin::Free || o == fault::FdOrigin::Granted) continue;
    if (o == fault::FdOrigin::Opened) ++out.closed;
    sys::UniqueFd(fault::fd_take(t, v)).reset();  // closes only what calls opened
  }
  if (t.cwd_owned) sys::UniqueFd(t.cwd).reset();
  fill_table(s);
  // Offsets and status flags go back only when they may have moved (an
  // lseek and an fcntl per descriptor were most of a clean reset's system
  // calls): a call used a restored number since the last reset, or others
  // may move them at any time (a duplicate sent away or claimed by the
  // client; a fork since the map shares them with another process).
  const bool may_have_moved = t.restored_used || t.restored_shared || !forks_counted() ||
                              g_forks.load(std::memory_order_relaxed) != s.forks_at_map || this_pid() != s.pid_at_map;
  for (const auto& r : s.restored_fds) {
    if (may_have_moved) {
      if (r.seekable) lseek(r.fd.get(), static_cast<off_t>(r.offset), SEEK_SET);
      fcntl(r.fd.get(), F_SETFL, r.status_flags);
    }
    ++out.restored;
  }
  t.restored_used = false;
  return out;
}

void close_descriptors(detail::SubcontextState& s) {
  fault::FdTable& t = s.fds;
  for (int v = 0; v < fault::kMaxFds; ++v)
    if (t.entries[v].origin != fault::FdOrigin::Free) sys::UniqueFd(fault::fd_take(t, v)).reset();
  if (t.cwd_owned) sys::UniqueFd(t.cwd).reset();
  t.cwd = -1;
  t.cwd_owned = false;
  t.active = false;
  s.restored_fds.clear();
  s.cwd.reset();
  s.image_fd.reset();  // nothing reads the image after unmap
}

}  // namespace matchmaker

namespace {

// The subcontext, mapped and mediated, its call mutex held by lock.
detail::SubcontextState& open_namespace(const std::shared_ptr<detail::SubcontextState>& p, const char* what,
                                        std::unique_lock<detail::CallLock>& lock) {
  if (!p) throw NoSuchSubcontext("empty Subcontext");
  detail::SubcontextState& s = *p;
  matchmaker::refuse_from_inside_call(s, what);
  lock = std::unique_lock(s.call_lock);
  if (!s.mapped) detail::throw_unmapped(s);
  if (!s.fds.active)
    throw Unsupported(std::string(what) + " on " + detail::subcontext_name(s) +
                      ": its system calls are not mediated here, so its descriptor numbers are this client's own "
                      "(docs/identity.md)");
  return s;
}

int subcontext_real(const detail::SubcontextState& s, int number, const char* what) {
  const int real = fault::fd_real(s.fds, number);
  if (real < 0)
    throw Error(Errc::InvalidArgument,
                std::string(what) + ": " + detail::subcontext_name(s) + " has no descriptor " + std::to_string(number));
  return real;
}

}  // namespace

int Subcontext::grant_fd(int fd) const {
  std::unique_lock<detail::CallLock> lock;
  detail::SubcontextState& s = open_namespace(state_, "grant_fd", lock);
  sys::UniqueFd d(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!d) {
    const int err = errno;
    if (err == EBADF)
      throw Error(Errc::InvalidArgument, "grant_fd: descriptor " + std::to_string(fd) + " is not open in this client");
    throw SystemError("grant_fd: cannot duplicate descriptor " + std::to_string(fd) + ": " + sys::errno_text(err));
  }
  // Under the table's lock: the subcontext's threads may be opening files.
  const int v = fault::fd_grant(s.fds, d.get());
  if (v < 0)
    throw LimitExceeded("grant_fd: " + detail::subcontext_name(s) + " has no free number: " +
                        std::to_string(fault::kMaxFds) + " descriptors is the most a subcontext has");
  d.release();
  return v;
}

void Subcontext::revoke_fd(int number) const {
  std::unique_lock<detail::CallLock> lock;
  detail::SubcontextState& s = open_namespace(state_, "revoke_fd", lock);
  subcontext_real(s, number, "revoke_fd");
  // Its real descriptor may be in a system call of one of the subcontext's
  // threads right now: made dead, not closed, while they run (fd_table.hpp).
  fault::fd_revoke(s.fds, number);
}

int Subcontext::claim_fd(int number) const {
  std::unique_lock<detail::CallLock> lock;
  detail::SubcontextState& s = open_namespace(state_, "claim_fd", lock);
  const int d = fcntl(subcontext_real(s, number, "claim_fd"), F_DUPFD_CLOEXEC, 0);
  // The client's duplicate shares the open file: a restored descriptor's
  // offset may move at any time from now on (reset_descriptors).
  if (s.fds.entries[number].origin == fault::FdOrigin::Restored) s.fds.restored_shared = true;
  if (d < 0)
    throw SystemError("claim_fd: cannot duplicate descriptor " + std::to_string(number) + ": " +
                      sys::errno_text(errno));
  return d;
}

}  // namespace subctx
