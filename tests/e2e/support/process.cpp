#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace e2e {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string ProcessResult::describe() const {
  std::string s = timed_out ? "timed out (killed)"
                  : exited  ? "exit " + std::to_string(exit_code)
                            : "killed by signal " + std::to_string(signal);
  s += "\n--- stdout ---\n" + out.substr(0, 4000) + "\n--- stderr ---\n" + err.substr(0, 4000);
  return s;
}

Child::Child(const std::vector<std::string>& argv, const SpawnOptions& options) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2];
  if (options.stdin_pipe && pipe2(in, O_CLOEXEC) != 0) die("pipe");
  if (options.stdout_file.empty() && pipe2(out, O_CLOEXEC) != 0) die("pipe");
  if (pipe2(err, O_CLOEXEC) != 0) die("pipe");

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (options.stdin_pipe) posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  else posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (options.stdout_file.empty()) posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  else
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, options.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
  // Nothing else of this process's: a server would have to restore (or
  // refuse) every descriptor it inherited (docs/identity.md).
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "SUBCTX_", 7) != 0) env.emplace_back(*e);
  env.insert(env.end(), options.env.begin(), options.env.end());
  std::vector<char*> envp, args;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (options.stdin_pipe) close(in[0]);
  if (options.stdout_file.empty()) close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  if (rc != 0) {
    errno = rc;
    pid_ = -1;
    close_fd(in_);
    close_fd(out_);
    close_fd(err_);
    die("posix_spawn " + argv[0]);
  }
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_), in_(o.in_), out_(o.out_), err_(o.err_), out_buf_(std::move(o.out_buf_)),
      err_buf_(std::move(o.err_buf_)), out_consumed_(o.out_consumed_) {
  o.pid_ = -1;
  o.in_ = o.out_ = o.err_ = -1;
}

Child::~Child() {
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Child::close_stdin() { close_fd(in_); }

void Child::pump(int timeout_ms) {
  pollfd fds[2];
  int n = 0;
  if (out_ >= 0) fds[n++] = {out_, POLLIN, 0};
  if (err_ >= 0) fds[n++] = {err_, POLLIN, 0};
  if (n == 0) return;
  int r = poll(fds, static_cast<nfds_t>(n), timeout_ms);
  if (r < 0 && errno == EINTR) return;
  if (r < 0) die("poll");
  for (int i = 0; i < n; ++i) {
    if (!fds[i].revents) continue;
    char buf[65536];
    ssize_t got = read(fds[i].fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    const bool is_out = fds[i].fd == out_;
    if (got <= 0) {
      close_fd(is_out ? out_ : err_);
      continue;
    }
    (is_out ? out_buf_ : err_buf_).append(buf, static_cast<size_t>(got));
  }
}

bool Child::read_line(std::string* line, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    size_t nl = out_buf_.find('\n', out_consumed_);
    if (nl != std::string::npos) {
      *line = out_buf_.substr(out_consumed_, nl - out_consumed_);
      out_consumed_ = nl + 1;
      return true;
    }
    if (out_ < 0 || Clock::now() >= deadline) return false;
    pump(remaining_ms(deadline));
  }
}

ProcessResult Child::finish(Millis timeout) {
  ProcessResult r;
  const auto deadline = Clock::now() + timeout;
  while ((out_ >= 0 || err_ >= 0) && Clock::now() < deadline) pump(remaining_ms(deadline));
  int status = 0;
  while (true) {
    pid_t w = waitpid(pid_, &status, WNOHANG);
    if (w == pid_) break;
    if (w < 0 && errno != EINTR) die("waitpid");
    if (Clock::now() >= deadline) {
      r.timed_out = true;
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(Millis(2));
  }
  pid_ = -1;
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
  r.exited = WIFEXITED(status);
  r.exit_code = r.exited ? WEXITSTATUS(status) : -1;
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  r.out = out_buf_;
  r.err = err_buf_;
  return r;
}

ProcessResult run(const std::vector<std::string>& argv, const SpawnOptions& options, Millis timeout) {
  Child c(argv, options);
  if (options.stdin_pipe) c.close_stdin();
  return c.finish(timeout);
}

}  // namespace e2e
