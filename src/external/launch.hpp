// The launcher form of `subctx snapshot` (docs/external-snapshot.md): the
// program is started by this process, runs untraced until it is ready (a
// time, a signal it sends its parent, or a line on a descriptor), and is
// then snapshotted like any --pid target.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "external/tracee.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::external {

struct LaunchOptions {
  std::vector<std::string> argv;  // PROGRAM ARGS..., PROGRAM found in PATH as execvp does
  enum class Ready { After, Signal, Fd };
  Ready ready = Ready::After;
  double after_s = 0;          // --after SECONDS
  int signal = 0;              // --on-signal SIG: the program sends it to its parent
  int fd = -1;                 // --ready-fd N: the program writes a line containing `text` to it
  std::string text = "ready";  // --ready-text
  double timeout_s = 60;       // --timeout: how long --on-signal and --ready-fd wait
};

// A program this process started, and its child.  The destructor kills and
// reaps it unless release() was called: a program started for a snapshot
// that did not happen is not left running.
class Launched {
 public:
  // Starts it and returns once it is ready.  Throws SnapshotRefused when it
  // cannot be started, exits first, or is not ready in time; Interrupted
  // (through stop) when this process is asked to stop meanwhile.
  Launched(const LaunchOptions& o, StopRequests& stop);
  ~Launched();
  Launched(const Launched&) = delete;
  Launched& operator=(const Launched&) = delete;

  pid_t pid() const { return pid_; }
  void release() { pid_ = -1; }  // it lives on, or has been reaped already
  // Whether it has exited, reaping it; *how: "exit status 3", "killed by SIGKILL".
  bool exited(std::string* how);

 private:
  void start(const LaunchOptions& o, int ready_write, const sigset_t& child_mask);
  void cleanup();
  void wait_ready(const LaunchOptions& o, StopRequests& stop);
  bool said_ready(const LaunchOptions& o);
  bool line_is_ready(const LaunchOptions& o);  // reads what the program wrote to its descriptor

  pid_t pid_ = -1;
  std::string name_;       // the program, for messages
  sys::UniqueFd ready_;    // the read end of --ready-fd's pipe
  std::string ready_buf_;  // what was read from it, not yet a whole line
  int ready_signal_ = 0;   // --on-signal's, blocked in this process meanwhile
  sigset_t old_mask_{};    // this process's, before it was blocked
  // SIGCHLD's disposition before (SIG_IGN, inherited, would have the kernel
  // reap the program: its exit unseen, its pid perhaps reused): SIG_DFL
  // while it runs; the program gets the original.
  struct sigaction old_chld_ {};
  bool chld_set_ = false;
};

// "USR1", "SIGUSR1", "RTMIN+2", "10": a signal number, or 0.
int parse_signal(const std::string& text);

}  // namespace subctx::external
