// Another process held still with ptrace (`subctx snapshot --pid`):
// PTRACE_SEIZE + PTRACE_INTERRUPT (no signal is sent to it), its registers,
// its memory read with process_vm_readv (/proc/PID/mem where that fails,
// never PTRACE_PEEKDATA), a function of its own called in it (the snapshot
// resolves lazily bound PLT slots with the target's dlsym, as the in-process
// snapshot does), then detached (it goes on) or killed.
//
// Signals sent to the target while it is held are not lost
// (docs/external-snapshot.md, "Signals"): the ones it may block go back to
// its own queue, siginfo and all; SIGSTOP and the few left unblocked during
// a call are kept here and sent again after the detach.
#pragma once

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sys/unique_fd.hpp"

namespace subctx::external {

// SIGINT, SIGTERM or SIGHUP reached this process while it held a target:
// thrown at the next safe point, after which everything the snapshot
// changed in the target has been put back and the target detached.
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int sig);
  int signal() const { return signal_; }

 private:
  int signal_;
};

// For its lifetime, SIGINT, SIGTERM and SIGHUP are blocked in this process
// and taken only at safe points (check()), so that a target is never left
// with borrowed registers, a changed signal mask or a scratch stack.
class StopRequests {
 public:
  StopRequests();
  ~StopRequests();  // the old mask back; a request not taken by check() by then is dropped (too late)
  StopRequests(const StopRequests&) = delete;
  StopRequests& operator=(const StopRequests&) = delete;
  // Throws Interrupted if one of the three is pending (and takes it).
  void check();
  // This process's mask from before: what a program it starts should get.
  const sigset_t& original_mask() const { return old_; }

 private:
  sigset_t requests_{};  // the three, less any this process ignores
  sigset_t old_{};
};

class Tracee {
 public:
  // Attaches and stops the process.  Throws SnapshotRefused saying why it
  // may not be traced (no such process, credentials, Yama's ptrace_scope,
  // another tracer, not dumpable).
  explicit Tracee(pid_t pid);
  ~Tracee();  // detaches if still attached (registers, mask and memory as they were)
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;

  pid_t pid() const { return pid_; }
  const user_regs_struct& regs() const { return regs_; }  // as stopped

  // Reads len bytes at addr.  Returns how many were read from the start
  // (process_vm_readv, then /proc/PID/mem for what it could not read).
  size_t read(uint64_t addr, void* out, size_t len);
  bool read_exact(uint64_t addr, void* out, size_t len) { return read(addr, out, len) == len; }
  template <class T>
  bool read_value(uint64_t addr, T* out) {
    return read_exact(addr, out, sizeof *out);
  }
  std::string read_c_string(uint64_t addr, size_t max);

  // The address of a `syscall` instruction in the target (glibc's
  // syscall()): calls return to it, and system calls are made with it.
  void set_syscall_instruction(uint64_t addr) { syscall_insn_ = addr; }

  // Calls fn(a0, a1, a2) in the target, with `data` copied first to
  // data_address(data.size()); returns rax.  It runs on a scratch stack
  // mapped in the target for the calls (its own stack is not touched: it
  // may be a sigaltstack or a coroutine's), with every signal but the
  // synchronous ones blocked; registers, extended state and signal mask
  // are put back afterwards.  Throws SnapshotRefused if the call does not
  // return within timeout_ms, faults, or the target dies.
  uint64_t call(uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, const std::string& data = {},
                int timeout_ms = 5000);

  // Where call() puts `size` bytes of data (maps the scratch stack first).
  uint64_t data_address(size_t size);

  // fn(a0, a1, a2) for each entry, in turn, in one resumption of the target
  // (each call is a round trip of several stops otherwise): a loop of 51
  // bytes, written to the scratch mapping and made executable for it, walks
  // a table placed with `data` after it at data_address(table + data).  So
  // the arguments may point into `data` at batch_data_address(n, size).
  // Returns each rax; an empty vector where the loop cannot be made
  // executable (a security module's W^X), and then the caller calls one by one.
  struct Call {
    uint64_t fn = 0, a0 = 0, a1 = 0, a2 = 0;
  };
  std::vector<uint64_t> call_each(const std::vector<Call>& calls, const std::string& data, int timeout_ms = 10000);
  uint64_t batch_data_address(size_t calls, size_t data_size) {
    return data_address(calls * kBatchEntry + data_size) + calls * kBatchEntry;
  }
  static constexpr size_t kBatchEntry = 40;  // fn, a0, a1, a2, result

  // Unmaps the scratch stack: after the last call, before memory is copied.
  void end_calls();

  // Whether the target has exited (or vanished) meanwhile; *how: "exit
  // status 3", "killed by SIGKILL".  Waits up to half a second for the
  // report (called after something failed, which a dying target causes).
  bool gone(std::string* how);

  void detach();  // let it go on; kept signals sent again
  void kill();    // SIGKILL, and wait until it is gone

  // Signals kept during the hold (SIGSTOP and the synchronous ones sent by
  // another process), sent again by detach().
  size_t kept_signals() const { return kept_.size(); }

 private:
  enum class Stop { Event, Signal, Syscall };
  class Borrowed;  // registers, extended state, signal mask: put back after a call
  friend class Borrowed;
  bool write(uint64_t addr, const void* data, size_t len);
  int wait_stop(int timeout_ms);  // status of the next stop, -1 at timeout; throws if the target exits
  void resume(__ptrace_request request, int sig);
  void pass_back(int sig, __ptrace_request request);  // a signal for the target, seen at its delivery-stop
  bool wait_event_stop(int timeout_ms);               // through signal and system call stops
  void interrupt_and_hold();                          // a running target back to an event stop
  uint64_t inject_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);
  void set_sigmask(uint64_t mask);
  void resend(const siginfo_t& si);
  uint64_t get_sigmask();

  pid_t pid_;
  bool attached_ = false;
  bool running_ = false;
  Stop stop_ = Stop::Event;
  user_regs_struct regs_{};
  uint64_t syscall_insn_ = 0;
  uint64_t scratch_ = 0;                // the calls' stack in the target, mapped on first need
  int batch_code_ = 0;                  // the loop of call_each(): 0 not yet written, 1 ready, -1 refused
  uint64_t unblock_after_requeue_ = 0;  // signals blocked only so that the kernel requeued them
  std::vector<siginfo_t> kept_;         // sent again after the detach
  sys::UniqueFd mem_;                   // /proc/PID/mem, opened on first need
  sigset_t sigchld_{};                  // blocked while attached: a stop of the target wakes wait_stop()
  sigset_t old_mask_{};                 // this process's mask before
};

// Why PTRACE_SEIZE of pid failed with err: credentials, ptrace_scope, a tracer
// (gathers the facts of ptrace_refusal.hpp from /proc).
std::string explain_ptrace_failure(pid_t pid, int err);

}  // namespace subctx::external
