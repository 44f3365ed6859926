#include "external/tracee.hpp"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::external {

namespace {

[[noreturn]] void refuse(const std::string& msg) { throw SnapshotRefused("snapshot refused: " + msg); }

// A field of /proc/PID/status ("Uid:"), its value without leading blanks; "" if absent.
std::string status_field(pid_t pid, const std::string& key) {
  std::string text;
  try {
    text = sys::read_text_file("/proc/" + std::to_string(pid) + "/status");
  } catch (const Error&) {
    return "";
  }
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, key.size(), key) == 0) {
      std::string v = text.substr(at + key.size(), end - at - key.size());
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
    at = end + 1;
  }
  return "";
}

std::string first_word(const std::string& s) { return s.substr(0, s.find_first_of(" \t")); }

bool has_cap_sys_ptrace() {
  const std::string eff = status_field(getpid(), "CapEff:");
  if (eff.empty()) return false;
  const unsigned long long caps = std::strtoull(eff.c_str(), nullptr, 16);
  return (caps >> 19) & 1;  // CAP_SYS_PTRACE
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

std::string explain_ptrace_failure(pid_t pid, int err) {
  const std::string who = "process " + std::to_string(pid);
  if (err == ESRCH) return who + " does not exist (or has exited)";
  if (err != EPERM && err != EACCES) return "cannot trace " + who + ": " + sys::errno_text(err);
  std::string msg = "not allowed to trace " + who + " (ptrace: " + sys::errno_text(err) + "): ";
  const std::string tracer = first_word(status_field(pid, "TracerPid:"));
  if (!tracer.empty() && tracer != "0")
    return msg + "it is already traced by process " + tracer + " (a debugger?); detach that first";
  // Real, effective, saved and file uid of the target, against ours.
  const std::string uids = status_field(pid, "Uid:");
  const std::string target_uid = first_word(uids);
  const bool privileged = has_cap_sys_ptrace();
  if (!privileged && !target_uid.empty() && target_uid != std::to_string(geteuid()))
    return msg + "credentials: it runs as uid " + target_uid + " and this command as uid " + std::to_string(geteuid()) +
           "; run it as the target's user or as root (CAP_SYS_PTRACE)";
  std::string scope;
  try {
    scope = sys::read_text_file("/proc/sys/kernel/yama/ptrace_scope");
  } catch (const Error&) {
  }
  while (!scope.empty() && (scope.back() == '\n' || scope.back() == ' ')) scope.pop_back();
  if (!scope.empty() && scope != "0") {
    if (scope == "3") return msg + "Yama's kernel.yama.ptrace_scope is 3: no process may be traced until reboot";
    if (scope == "2")
      return msg + "Yama's kernel.yama.ptrace_scope is 2 (admin only): run this command as root (CAP_SYS_PTRACE)";
    if (!privileged)
      return msg +
             "Yama's kernel.yama.ptrace_scope is 1: only a process's ancestors may trace it; run this command "
             "as root, or let the target allow it (prctl(PR_SET_PTRACER, ...)), or set the sysctl to 0";
  }
  if (!privileged && uids.find_first_not_of("0123456789 \t") == std::string::npos) {
    // All four uids equal ours, so the target is not dumpable (set-user-ID, or PR_SET_DUMPABLE 0).
    return msg +
           "credentials: the target is not dumpable (a set-user-ID or set-group-ID program, changed "
           "credentials, or prctl(PR_SET_DUMPABLE, 0)); run this command as root";
  }
  return msg + "a security module (SELinux, AppArmor, seccomp) or the credentials forbid it";
}

Tracee::Tracee(pid_t pid) : pid_(pid) {
  if (ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) refuse(explain_ptrace_failure(pid, errno));
  attached_ = true;
  try {
    if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0)
      refuse("cannot stop process " + std::to_string(pid) + ": " + sys::errno_text(errno));
    // The first stop may be a signal arriving: keep it for the detach, wait for ours.
    while (true) {
      const int status = wait_stop(5000);
      if (status < 0) refuse("process " + std::to_string(pid) + " did not stop within 5 s of PTRACE_INTERRUPT");
      if ((status >> 16) == PTRACE_EVENT_STOP) break;
      if ((status >> 16) == 0 && WSTOPSIG(status) != SIGSTOP && WSTOPSIG(status) != SIGTRAP)
        pending_signal_ = WSTOPSIG(status);
      ptrace(PTRACE_CONT, pid_, nullptr, nullptr);
    }
    if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs_) != 0)
      refuse("cannot read the registers of process " + std::to_string(pid) + ": " + sys::errno_text(errno));
  } catch (...) {
    detach();
    throw;
  }
}

Tracee::~Tracee() {
  if (attached_) detach();
}

int Tracee::wait_stop(int timeout_ms) {
  const int64_t deadline = now_ms() + timeout_ms;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, __WALL | WNOHANG);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      attached_ = false;
      refuse("process " + std::to_string(pid_) + " vanished during the snapshot: " + sys::errno_text(errno));
    }
    if (r == pid_) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        attached_ = false;
        refuse("process " + std::to_string(pid_) + " exited during the snapshot (" +
               (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                  : "signal " + std::to_string(WTERMSIG(status))) +
               "); nothing was written");
      }
      if (WIFSTOPPED(status)) return status;
      continue;
    }
    if (now_ms() >= deadline) return -1;
    usleep(200);
  }
}

size_t Tracee::read(uint64_t addr, void* out, size_t len) {
  size_t done = 0;
  while (done < len) {
    iovec local{static_cast<uint8_t*>(out) + done, len - done};
    iovec remote{reinterpret_cast<void*>(addr + done), len - done};
    const ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  if (done == len) return done;
  // Where process_vm_readv cannot read (a VM_IO mapping, a seccomp filter,
  // a kernel without it): /proc/PID/mem, which reads what ptrace may.
  if (!mem_) mem_ = sys::UniqueFd(open(("/proc/" + std::to_string(pid_) + "/mem").c_str(), O_RDWR | O_CLOEXEC));
  if (!mem_) mem_ = sys::UniqueFd(open(("/proc/" + std::to_string(pid_) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  while (mem_ && done < len) {
    const ssize_t n = pread(mem_.get(), static_cast<uint8_t*>(out) + done, len - done, static_cast<off_t>(addr + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

std::string Tracee::read_c_string(uint64_t addr, size_t max) {
  std::string out(max, '\0');
  const size_t n = read(addr, out.data(), max);
  out.resize(n);
  const size_t nul = out.find('\0');
  if (nul != std::string::npos) out.resize(nul);
  return out;
}

bool Tracee::write(uint64_t addr, const void* data, size_t len) {
  iovec local{const_cast<void*>(data), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_writev(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len)) return true;
  if (!mem_) mem_ = sys::UniqueFd(open(("/proc/" + std::to_string(pid_) + "/mem").c_str(), O_RDWR | O_CLOEXEC));
  return mem_ && sys::pwrite_exact(mem_.get(), data, len, static_cast<off_t>(addr));
}

uint64_t Tracee::call(uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, const std::string& data, int timeout_ms) {
  // The whole extended state (x87, SSE, the AVX and AVX-512 registers, the
  // mask registers, PKRU): the target may be stopped in vector code, and
  // the called function's string functions use those registers.  Without
  // XSAVE support, the FXSAVE area (x87, SSE).
  std::vector<uint8_t> xstate(64 * 1024);
  iovec xiov{xstate.data(), xstate.size()};
  const bool have_xstate = ptrace(PTRACE_GETREGSET, pid_, reinterpret_cast<void*>(NT_X86_XSTATE), &xiov) == 0;
  user_fpregs_struct fp{};
  const bool have_fp = !have_xstate && ptrace(PTRACE_GETFPREGS, pid_, nullptr, &fp) == 0;
  if (!have_xstate && !have_fp)
    refuse("cannot save the target's FPU and vector registers (" + sys::errno_text(errno) +
           "): a call of its own code would change them");
  // Below the red zone (128 bytes) and a margin; the data above the frame.
  const uint64_t data_at = data_address(data.size());
  const uint64_t sp = data_at - 8;  // rsp % 16 == 8 at a function's entry: the return address is pushed
  const uint64_t ret = 0;           // returns to address 0: a SIGSEGV stop ends the call
  if ((!data.empty() && !write(data_at, data.data(), data.size())) || !write(sp, &ret, 8))
    refuse("cannot write to the target's stack: " + sys::errno_text(errno));
  user_regs_struct r = regs_;
  r.rip = fn;
  r.rdi = a0;
  r.rsi = a1;
  r.rdx = a2;
  r.rax = 0;
  r.rsp = sp;
  r.orig_rax = static_cast<uint64_t>(-1);  // not in a system call: no restart on resume
  r.eflags &= ~uint64_t{0x400};            // direction flag clear, as the ABI wants at a call
  if (ptrace(PTRACE_SETREGS, pid_, nullptr, &r) != 0)
    refuse("cannot set the target's registers: " + sys::errno_text(errno));
  auto restore = [&] {
    ptrace(PTRACE_SETREGS, pid_, nullptr, &regs_);
    if (have_xstate) ptrace(PTRACE_SETREGSET, pid_, reinterpret_cast<void*>(NT_X86_XSTATE), &xiov);
    if (have_fp) ptrace(PTRACE_SETFPREGS, pid_, nullptr, &fp);
  };
  if (ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) refuse("cannot resume the target: " + sys::errno_text(errno));
  while (true) {
    const int status = wait_stop(timeout_ms);
    if (status < 0) {
      ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr);
      while (true) {
        const int s = wait_stop(5000);
        if (s < 0 || (s >> 16) == PTRACE_EVENT_STOP) break;
        ptrace(PTRACE_CONT, pid_, nullptr, nullptr);
      }
      restore();
      refuse("a call of the target's own code (at " + sys::hex(fn) + ") did not return within " +
             std::to_string(timeout_ms) + " ms; is the target holding a lock?");
    }
    const int sig = WSTOPSIG(status);
    if ((status >> 16) == 0 && sig == SIGSEGV) {
      user_regs_struct out{};
      ptrace(PTRACE_GETREGS, pid_, nullptr, &out);
      if (out.rip == ret) {
        restore();
        return out.rax;
      }
      restore();
      refuse("a call of the target's own code (at " + sys::hex(fn) + ") faulted at " + sys::hex(out.rip));
    }
    // Another signal, or a group stop: keep it for later and go on.
    if ((status >> 16) == 0 && sig != SIGSTOP && sig != SIGTRAP) pending_signal_ = sig;
    ptrace(PTRACE_CONT, pid_, nullptr, nullptr);
  }
}

void Tracee::detach() {
  if (!attached_) return;
  attached_ = false;
  ptrace(PTRACE_DETACH, pid_, nullptr, reinterpret_cast<void*>(static_cast<intptr_t>(pending_signal_)));
}

void Tracee::kill() {
  if (!attached_) return;
  attached_ = false;
  ::kill(pid_, SIGKILL);
  // The tracer sees the exit too; the parent still reaps the process.
  for (int i = 0; i < 5000; ++i) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, __WALL | WNOHANG);
    if (r < 0 || (r == pid_ && (WIFEXITED(status) || WIFSIGNALED(status)))) return;
    usleep(1000);
  }
}

}  // namespace subctx::external
