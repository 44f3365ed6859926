#include "server/identity.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <string>

#include "common/cpu_features.hpp"
#include "server/refuse.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::server {

namespace {

using image::FdKind;
using image::FdRecord;
using image::kMaxFds;
using image::kMaxPathBytes;

constexpr size_t kMaxListed = 20;  // descriptors named in one refusal; the rest are counted
constexpr std::string_view kDeleted = " (deleted)";

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Digits in `base` (8 or 10), surrounded by blanks only, at most max.
bool parse_number(std::string_view s, unsigned base, uint64_t max, uint64_t* out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.empty() || s.size() > 24) return false;
  uint64_t v = 0;
  for (char c : s) {
    const unsigned d = static_cast<unsigned>(c - '0');
    if (c < '0' || d >= base || d > max || v > (max - d) / base) return false;
    v = v * base + d;
  }
  *out = v;
  return true;
}

// The rest of the first line that starts with `key` ("pos:"), or false.
bool find_field(std::string_view text, std::string_view key, std::string_view* value) {
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    if (line.substr(0, key.size()) == key) {
      *value = line.substr(key.size());
      return true;
    }
    at = end + 1;
  }
  return false;
}

// A signal mask as /proc/PID/status prints it: 16 hex digits.
bool parse_hex_mask(std::string_view s, uint64_t* out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// The target of a /proc symlink, exactly as the kernel prints it; false
// when it cannot be read.  A target longer than kMaxPathBytes comes back
// cut to kMaxPathBytes + 1 bytes, so that the caller sees it is too long.
bool read_link(const std::string& path, std::string* out) {
  std::string buf(kMaxPathBytes + 1, '\0');
  const ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) return false;
  buf.resize(static_cast<size_t>(n));
  *out = std::move(buf);
  return true;
}

// Every open descriptor, without the one reading the directory.
std::vector<int> open_fds(const IdentitySource& src) {
  const std::string dir = src.proc_dir + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d)
    refuse("cannot list " + std::string(src.self ? "this process's" : "the target's") + " descriptors: " + dir + ": " +
           sys::errno_text(errno) + " (is /proc mounted?)");
  std::vector<int> fds;
  const int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    uint64_t n = 0;
    if (parse_number(e->d_name, 10, INT32_MAX, &n) && (!src.self || static_cast<int>(n) != own))
      fds.push_back(static_cast<int>(n));
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}

FdKind classify(const struct stat& st, std::string_view link) {
  if (S_ISREG(st.st_mode) && link.substr(0, 7) == "/memfd:") return FdKind::Memfd;
  if (S_ISREG(st.st_mode)) return FdKind::File;
  if (S_ISDIR(st.st_mode)) return FdKind::Directory;
  if (S_ISCHR(st.st_mode)) return FdKind::CharDevice;
  if (S_ISFIFO(st.st_mode)) return FdKind::Pipe;
  if (S_ISSOCK(st.st_mode)) return FdKind::Socket;
  if (link == "anon_inode:[eventfd]") return FdKind::Eventfd;
  return FdKind::Other;
}

// Why a client could not reopen this descriptor, or "" when it can.
std::string why_not_restorable(const FdRecord& f, const struct stat& st) {
  if (!image::fd_kind_restorable(f.kind)) return "";  // the kind says it all
  if (f.path.empty() || f.path[0] != '/') return "no absolute path names it";
  if (f.path.size() > kMaxPathBytes) return "its path is longer than " + std::to_string(kMaxPathBytes) + " bytes";
  if (f.kind != FdKind::CharDevice && (ends_with(f.path, kDeleted) || st.st_nlink == 0))
    return "deleted: no path names it any more";
  if (f.kind == FdKind::CharDevice &&
      std::none_of(std::begin(image::kRestorableDevices), std::end(image::kRestorableDevices),
                   [&](const char* d) { return f.path == d; }))
    return "only /dev/null, /dev/zero, /dev/full, /dev/random and /dev/urandom are reopened";
  return "";
}

// "fd 5: pipe (pipe:[12345])", with the reason when the kind alone does not say it.
std::string describe(const FdRecord& f, const std::string& why) {
  std::string s =
      "fd " + std::to_string(f.number) + ": " + image::fd_kind_name(f.kind) + " (" + sys::printable(f.path) + ")";
  return why.empty() ? s : s + ": " + why;
}

// Flags and offset from /proc/self/fdinfo/N; false when unreadable.
bool read_fdinfo(const IdentitySource& src, int fd, FdRecord* f) {
  std::string text;
  try {
    text = sys::read_text_file(src.proc_dir + "/fdinfo/" + std::to_string(fd));
  } catch (const Error&) {
    return false;
  }
  return parse_fdinfo(text, &f->offset, &f->flags);
}

struct Collected {
  std::vector<FdRecord> fds;
  std::vector<std::string> problems;  // one line per descriptor a client could not reopen
};

// One descriptor: recorded, omitted (dropped and out of range) or a problem.
void inspect_fd(const IdentitySource& src, int fd, bool dropped, Collected* out) {
  FdRecord f;
  f.number = fd;
  f.dropped = dropped;
  struct stat st {};
  const std::string proc = src.proc_dir + "/fd/" + std::to_string(fd);
  // Another process's descriptor: stat() follows the /proc link to the open file itself.
  if ((src.self ? fstat(fd, &st) : stat(proc.c_str(), &st)) != 0 || !read_link(proc, &f.path)) {
    const int err = errno;
    if (err == EBADF || err == ENOENT) return;  // closed since it was listed: nothing to restore
    f.kind = FdKind::Other;
    if (!dropped) out->problems.push_back(describe(f, "cannot inspect it: " + sys::errno_text(err)));
    return;
  }
  f.kind = classify(st, f.path);
  const std::string why = why_not_restorable(f, st);
  const bool restorable = image::fd_kind_restorable(f.kind) && why.empty();
  if (fd >= static_cast<int>(kMaxFds)) {
    if (!dropped)
      out->problems.push_back(describe(f, "numbers from " + std::to_string(kMaxFds) +
                                              " up are not restored: move it below " + std::to_string(kMaxFds) +
                                              " with dup2 or drop it"));
    return;
  }
  if (!restorable && !dropped) {
    out->problems.push_back(describe(f, why));
    return;
  }
  if (!read_fdinfo(src, fd, &f) && !dropped) {
    out->problems.push_back(describe(f, "cannot read " + src.proc_dir + "/fdinfo/" + std::to_string(fd)));
    return;
  }
  if (f.path.size() > kMaxPathBytes) f.path.resize(kMaxPathBytes);  // dropped: only shown by inspect
  out->fds.push_back(std::move(f));
}

// kcmp(2) says whether two descriptors share one open file description
// (dup, or inherited): a client then opens it once, so that they keep
// sharing an offset.  Only records of the same path can share one.
void link_shared(const IdentitySource& src, std::vector<FdRecord>& fds) {
  const pid_t self = src.self ? getpid() : src.pid;
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].dropped) continue;
    for (size_t j = 0; j < i; ++j) {
      const FdRecord& e = fds[j];
      if (e.dropped || e.same_as != -1 || e.kind != fds[i].kind || e.path != fds[i].path) continue;
      const long r = syscall(SYS_kcmp, self, self, KCMP_FILE, e.number, fds[i].number);
      if (r < 0 && (errno == ENOSYS || errno == EPERM)) return;  // no kcmp here: nothing known to share
      if (r == 0) {
        fds[i].same_as = e.number;
        break;
      }
    }
  }
}

std::string refusal(const IdentitySource& src, const Collected& c) {
  std::string msg = std::to_string(c.problems.size()) + (c.problems.size() == 1 ? " descriptor" : " descriptors") +
                    " cannot be restored in a client:";
  for (size_t i = 0; i < c.problems.size() && i < kMaxListed; ++i) msg += "\n  " + c.problems[i];
  if (c.problems.size() > kMaxListed) msg += "\n  ... and " + std::to_string(c.problems.size() - kMaxListed) + " more";
  return msg + "\n" + src.drop_advice + ": a dropped descriptor is EBADF inside the subcontext";
}

std::vector<FdRecord> collect_fds(const IdentitySource& src, const std::vector<int>& dropped) {
  Collected c;
  for (int fd : open_fds(src)) {
    if (fd < 3) continue;  // the client's own stdio
    inspect_fd(src, fd, std::find(dropped.begin(), dropped.end(), fd) != dropped.end(), &c);
  }
  if (!c.problems.empty()) refuse(refusal(src, c));
  link_shared(src, c.fds);
  return std::move(c.fds);
}

std::string working_directory(const IdentitySource& src) {
  std::string cwd;
  if (!read_link(src.proc_dir + "/cwd", &cwd))
    refuse("cannot read the working directory (" + src.proc_dir + "/cwd): " + sys::errno_text(errno));
  if (ends_with(cwd, kDeleted))
    refuse("the working directory " + sys::printable(cwd) +
           " was removed; chdir() to an existing directory "
           "before " +
           src.moment);
  if (cwd.empty() || cwd[0] != '/' || cwd.size() > kMaxPathBytes)
    refuse("the working directory \"" + sys::printable(cwd) + "\" has no absolute path of at most " +
           std::to_string(kMaxPathBytes) + " bytes (outside this process's root?); chdir() elsewhere before " +
           src.moment);
  return cwd;
}

uint32_t current_umask(const IdentitySource& src) {
  uint32_t mask = 0;
  try {
    if (parse_status_umask(sys::read_text_file(src.proc_dir + "/status"), &mask)) return mask;
  } catch (const Error&) {
  }
  if (!src.self)
    refuse("cannot read the target's umask from " + src.proc_dir + "/status (Linux 4.7 or later prints it)");
  const mode_t old = umask(022);  // the only way to read it: set, then put back
  umask(old);
  return static_cast<uint32_t>(old) & 0777;
}

// Another process's dispositions: the SigIgn and SigCgt masks of its status.
std::vector<image::SignalRecord> signal_dispositions_of(const IdentitySource& src) {
  std::vector<image::SignalRecord> out;
  std::string_view ign, cgt;
  uint64_t ignored = 0, caught = 0;
  const std::string status = sys::read_text_file(src.proc_dir + "/status");
  if (!find_field(status, "SigIgn:", &ign) || !find_field(status, "SigCgt:", &cgt) || !parse_hex_mask(ign, &ignored) ||
      !parse_hex_mask(cgt, &caught))
    refuse("cannot read the target's signal dispositions from " + src.proc_dir + "/status");
  for (int sig : {SIGPIPE, SIGXFSZ}) {
    const uint64_t bit = uint64_t{1} << (sig - 1);
    out.push_back({static_cast<uint8_t>(sig), static_cast<uint8_t>(caught & bit ? 2 : ignored & bit ? 1 : 0)});
  }
  return out;
}

std::vector<image::SignalRecord> signal_dispositions(const IdentitySource& src) {
  if (!src.self) return signal_dispositions_of(src);
  std::vector<image::SignalRecord> out;
  for (int sig : {SIGPIPE, SIGXFSZ}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0) continue;
    const uint8_t action = old.sa_handler == SIG_DFL ? 0 : old.sa_handler == SIG_IGN ? 1 : 2;
    out.push_back({static_cast<uint8_t>(sig), action});
  }
  return out;
}

}  // namespace

bool parse_fdinfo(std::string_view text, uint64_t* pos, uint32_t* flags) {
  std::string_view p, f;
  uint64_t pv = 0, fv = 0;
  if (!find_field(text, "pos:", &p) || !find_field(text, "flags:", &f)) return false;
  if (!parse_number(p, 10, UINT64_MAX, &pv) || !parse_number(f, 8, UINT32_MAX, &fv)) return false;
  *pos = pv;
  *flags = static_cast<uint32_t>(fv);
  return true;
}

bool parse_status_umask(std::string_view text, uint32_t* umask) {
  std::string_view v;
  uint64_t m = 0;
  if (!find_field(text, "Umask:", &v) || !parse_number(v, 8, 0777, &m)) return false;
  *umask = static_cast<uint32_t>(m);
  return true;
}

image::IdentityRecord collect_identity(const IdentitySource& src, const std::vector<int>& dropped) {
  image::IdentityRecord id;
  id.fds = collect_fds(src, dropped);
  id.cwd = working_directory(src);
  id.umask = current_umask(src);
  id.pid = static_cast<int32_t>(src.self ? getpid() : src.pid);
  id.signals = signal_dispositions(src);
  return id;
}

image::IdentityRecord collect_identity(const std::vector<int>& dropped) {
  return collect_identity(IdentitySource{}, dropped);
}

void stamp_machine(image::ImageInfo& info) {
  info.created_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  utsname u{};
  uname(&u);
  info.kernel = std::string(u.sysname) + " " + u.release;
  info.cpu_features = host_cpu_features();
}

}  // namespace subctx::server
