// Another process held still with ptrace (`subctx snapshot --pid`):
// PTRACE_SEIZE + PTRACE_INTERRUPT (no signal is sent to it), its registers,
// its memory read with process_vm_readv (/proc/PID/mem where that fails,
// never PTRACE_PEEKDATA), a function of its own called in it (the snapshot
// resolves lazily bound PLT slots with the target's dlsym, as the in-process
// snapshot does), then detached (it goes on) or killed.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <string>

#include "sys/unique_fd.hpp"

namespace subctx::external {

class Tracee {
 public:
  // Attaches and stops the process.  Throws SnapshotRefused saying why it
  // may not be traced (no such process, credentials, Yama's ptrace_scope,
  // another tracer, not dumpable).
  explicit Tracee(pid_t pid);
  ~Tracee();  // detaches if still attached (the registers as they were)
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

  // Calls fn(a0, a1, a2) in the target on its own stack, below the red
  // zone, with `data` copied first to data_address(data.size()); returns rax.
  // The registers are put back afterwards.  Throws SnapshotRefused if the
  // call does not return within timeout_ms or the target dies.
  uint64_t call(uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, const std::string& data = {},
                int timeout_ms = 5000);

  // Where call() puts `size` bytes of data: known before the call, so that
  // its arguments can point at them.
  uint64_t data_address(size_t size) const { return (regs_.rsp - 1024 - size) & ~uint64_t{15}; }

  void detach();  // let it go on
  void kill();    // SIGKILL, and wait until it is gone

 private:
  bool write(uint64_t addr, const void* data, size_t len);
  int wait_stop(int timeout_ms);  // status of the next stop; throws if the target exits

  pid_t pid_;
  bool attached_ = false;
  user_regs_struct regs_{};
  int pending_signal_ = 0;  // a signal that arrived while stopped: delivered at detach
  sys::UniqueFd mem_;       // /proc/PID/mem, opened on first need
};

// Why PTRACE_SEIZE of pid failed with err: credentials, ptrace_scope, a tracer.
std::string explain_ptrace_failure(pid_t pid, int err);

}  // namespace subctx::external
