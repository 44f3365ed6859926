// Child processes for the end-to-end tests: servers that write images and
// client helpers, started with posix_spawn, their output captured through
// pipes (or a file), every wait bounded by a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace e2e {

using Millis = std::chrono::milliseconds;

struct ProcessResult {
  bool exited = false;  // normal exit (exit_code valid)
  int exit_code = -1;
  int signal = 0;  // killed by this signal
  bool timed_out = false;
  std::string out;  // stdout (empty when it went to a file)
  std::string err;  // stderr

  bool ok() const { return exited && exit_code == 0 && !timed_out; }
  // "exit 0" / "signal 11" / "timed out", then the output: for failure messages.
  std::string describe() const;
};

struct SpawnOptions {
  std::vector<std::string> env;  // extra "NAME=value" entries
  bool stdin_pipe = false;       // else stdin is /dev/null
  std::string stdout_file;       // if set, stdout goes to this file, not a pipe
};

class Child {
 public:
  // argv[0] is the executable's path.  SUBCTX_* variables of this process
  // are not passed on (only those in options.env).
  Child(const std::vector<std::string>& argv, const SpawnOptions& options = {});
  ~Child();  // kills and reaps a child not yet finished
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept;

  pid_t pid() const { return pid_; }
  // One line of stdout (without the newline); false at EOF or timeout.
  bool read_line(std::string* line, Millis timeout);
  void close_stdin();
  // Reads stdout and stderr to EOF, waits for the exit; SIGKILL at timeout.
  ProcessResult finish(Millis timeout);

 private:
  void pump(int timeout_ms);  // one poll round over the open pipes
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string out_buf_, err_buf_;
  size_t out_consumed_ = 0;  // bytes of out_buf_ returned by read_line
};

// Spawns, waits, returns the result.
ProcessResult run(const std::vector<std::string>& argv, const SpawnOptions& options = {},
                  Millis timeout = Millis(30000));

}  // namespace e2e
