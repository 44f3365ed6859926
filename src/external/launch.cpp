#include "external/launch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "server/refuse.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::external {

namespace {

using server::refuse;

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  const char* abbrev = sigabbrev_np(WTERMSIG(status));
  return "killed by " + (abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(WTERMSIG(status)));
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace

int parse_signal(const std::string& text) {
  std::string t = text;
  if (t.rfind("SIG", 0) == 0) t = t.substr(3);
  if (!t.empty() && t.find_first_not_of("0123456789") == std::string::npos) {
    const long n = std::strtol(t.c_str(), nullptr, 10);
    return n >= 1 && n <= SIGRTMAX && n != SIGKILL && n != SIGSTOP ? static_cast<int>(n) : 0;
  }
  for (const char* base : {"RTMIN", "RTMAX"}) {
    if (t.rfind(base, 0) != 0) continue;
    const bool min = base[3] == 'I';
    long off = 0;
    const std::string rest = t.substr(5);
    if (!rest.empty()) {
      if (rest.size() < 2 || rest[0] != (min ? '+' : '-') ||
          rest.find_first_not_of("0123456789", 1) != std::string::npos)
        return 0;
      off = std::strtol(rest.c_str() + 1, nullptr, 10);
    }
    const long n = min ? SIGRTMIN + off : SIGRTMAX - off;
    return n >= SIGRTMIN && n <= SIGRTMAX ? static_cast<int>(n) : 0;
  }
  for (int sig = 1; sig < SIGRTMIN; ++sig)
    if (const char* a = sigabbrev_np(sig); a && t == a && sig != SIGKILL && sig != SIGSTOP) return sig;
  return 0;
}

Launched::Launched(const LaunchOptions& o, StopRequests& stop) : name_(o.argv.at(0)) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  chld_set_ = sigaction(SIGCHLD, &dfl, &old_chld_) == 0;
  int ready_write = -1;
  if (o.ready == LaunchOptions::Ready::Fd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) throw IoError("cannot make a pipe for --ready-fd: " + sys::errno_text(errno));
    ready_ = sys::UniqueFd(p[0]);
    ready_write = p[1];
  }
  if (o.ready == LaunchOptions::Ready::Signal) {
    // Blocked here from before the start, so that an early signal waits in
    // the queue (its default action would end this process).
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, o.signal);
    pthread_sigmask(SIG_BLOCK, &s, &old_mask_);
    ready_signal_ = o.signal;
  }
  try {
    start(o, ready_write, stop.original_mask());
    wait_ready(o, stop);
  } catch (...) {
    cleanup();
    throw;
  }
}

Launched::~Launched() { cleanup(); }

void Launched::cleanup() {
  if (pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = -1;
  }
  if (ready_signal_) {
    // The readiness signal, sent more than once, is not this process's to die of.
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, ready_signal_);
    const timespec now{};
    while (sigtimedwait(&s, nullptr, &now) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ready_signal_ = 0;
  }
  if (chld_set_) sigaction(SIGCHLD, &old_chld_, nullptr);
  chld_set_ = false;
}

// fork + execvp, with a close-on-exec pipe that carries execvp's errno back.
void Launched::start(const LaunchOptions& o, int ready_write, const sigset_t& child_mask) {
  sys::UniqueFd ready_w(ready_write);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw IoError("cannot make a pipe: " + sys::errno_text(errno));
  sys::UniqueFd err_r(p[0]), err_w(p[1]);
  if (ready_w && err_w.get() == o.fd) err_w = sys::UniqueFd(fcntl(err_w.get(), F_DUPFD_CLOEXEC, o.fd + 1));
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw IoError("cannot start " + name_ + ": fork: " + sys::errno_text(errno));
  if (pid_ == 0) {
    pthread_sigmask(SIG_SETMASK, &child_mask, nullptr);               // as this process's was before the snapshot
    if (chld_set_) sigaction(SIGCHLD, &old_chld_, nullptr);           // and SIGCHLD's disposition
    if (ready_w && ready_w.get() != o.fd) dup2(ready_w.get(), o.fd);  // without close-on-exec
    if (ready_w && ready_w.get() == o.fd) fcntl(o.fd, F_SETFD, 0);
    execvp(argv[0], argv.data());
    const int err = errno;
    (void)!::write(err_w.get(), &err, sizeof err);
    _exit(127);
  }
  err_w.reset();
  ready_w.reset();
  int err = 0;
  ssize_t n;
  while ((n = ::read(err_r.get(), &err, sizeof err)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof err)) {
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    refuse("cannot start " + name_ + ": " + sys::errno_text(err) + " (execvp); check the program's path");
  }
}

bool Launched::line_is_ready(const LaunchOptions& o) {
  char buf[4096];
  const ssize_t n = ::read(ready_.get(), buf, sizeof buf);
  if (n <= 0) {
    if (n == 0 || errno != EINTR) ready_.reset();  // closed: readiness can no longer come this way
    return false;
  }
  ready_buf_.append(buf, static_cast<size_t>(n));
  for (size_t nl; (nl = ready_buf_.find('\n')) != std::string::npos;) {
    if (ready_buf_.compare(0, nl, o.text) == 0 || ready_buf_.substr(0, nl).find(o.text) != std::string::npos)
      return true;
    ready_buf_.erase(0, nl + 1);
  }
  if (ready_buf_.size() > 65536) ready_buf_.erase(0, ready_buf_.size() - 4096);  // no newline: keep a tail
  return false;
}

// Whether the program has said it is ready, by its signal or its line.
bool Launched::said_ready(const LaunchOptions& o) {
  if (o.ready == LaunchOptions::Ready::Signal) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, o.signal);
    siginfo_t si{};
    const timespec now{};
    // Only the program's own signal counts (not one from elsewhere).
    while (sigtimedwait(&s, &si, &now) > 0)
      if (si.si_pid == pid_) return true;
  }
  pollfd pfd{ready_.get(), POLLIN, 0};
  while (ready_ && poll(&pfd, 1, 0) > 0)
    if (line_is_ready(o)) return true;
  return false;
}

void Launched::wait_ready(const LaunchOptions& o, StopRequests& stop) {
  const double start = now_s();
  const bool had_fd = static_cast<bool>(ready_);
  while (true) {
    stop.check();
    const double elapsed = now_s() - start;
    if (o.ready == LaunchOptions::Ready::After && elapsed >= o.after_s) return;
    if (said_ready(o)) return;
    // After the readiness checks: a program that says ready and exits at
    // once said it first.
    std::string how;
    if (exited(&how)) refuse(name_ + " exited before it was ready (" + how + "); nothing to snapshot");
    if (o.ready != LaunchOptions::Ready::After && elapsed >= o.timeout_s) {
      const std::string fd_name = "descriptor " + std::to_string(o.fd);
      const std::string what =
          o.ready == LaunchOptions::Ready::Signal
              ? "no SIG" + std::string(sigabbrev_np(o.signal) ? sigabbrev_np(o.signal) : "?") + " from it"
              : (had_fd && !ready_ ? "it closed " + fd_name + " without a line containing"
                                   : "no line on " + fd_name + " containing") +
                    " \"" + sys::printable(o.text) + "\"";
      refuse(name_ + " was not ready within " + seconds(o.timeout_s) + " s (" + what +
             "); it was killed. Give it longer with --timeout SECONDS, or check how it signals readiness");
    }
    pollfd pfd{ready_ ? ready_.get() : -1, POLLIN, 0};
    poll(&pfd, 1, 10);  // a line wakes it; a signal or an exit is seen within 10 ms
  }
}

bool Launched::exited(std::string* how) {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r != pid_ || !(WIFEXITED(status) || WIFSIGNALED(status))) return false;
  *how = describe_status(status);
  pid_ = -1;
  return true;
}

}  // namespace subctx::external
