#include "external/tracee.hpp"

#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "external/ptrace_refusal.hpp"
#include "server/refuse.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::external {

namespace {

using server::refuse;

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

constexpr uint64_t kScratchSize = 256 * 1024;  // the calls' stack: dlsym needs a few KiB of it
constexpr int kHoldTimeoutMs = 5000;           // for a stop the kernel owes us
constexpr int kExitReportMs = 500;             // for the exit of a target that failed a read

constexpr uint64_t bit(int sig) { return uint64_t{1} << (sig - 1); }

// Left unblocked while a call runs: a fault in the called code must reach
// the tracer as the fault it is (blocked, the kernel would reset the
// target's handler for it to SIG_DFL before forcing it on the target).
constexpr uint64_t kSynchronous = bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE) | bit(SIGTRAP);

bool is_event_stop(int status) { return (status >> 16) == PTRACE_EVENT_STOP; }
bool is_syscall_stop(int status) { return WSTOPSIG(status) == (SIGTRAP | 0x80); }  // PTRACE_O_TRACESYSGOOD
bool is_signal_stop(int status) { return (status >> 16) == 0 && !is_syscall_stop(status); }

// Sent by a process (kill, tgkill, sigqueue), not by the kernel for a fault.
bool sent_by_process(const siginfo_t& si) { return si.si_code <= 0; }

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

Interrupted::Interrupted(int sig) : std::runtime_error("interrupted by " + signal_name(sig)), signal_(sig) {}

StopRequests::StopRequests() {
  sigemptyset(&requests_);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    // One this process ignores (a background job's SIGINT) stays ignored:
    // blocked, it would be queued and taken for a request.
    struct sigaction sa {};
    if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN) continue;
    sigaddset(&requests_, sig);
  }
  pthread_sigmask(SIG_BLOCK, &requests_, &old_);
}

// A request that came after the last check() is too late to act on (the
// image is written, the target let go, or the command is failing anyway):
// taken here, so it cannot end the command after its work is done.
StopRequests::~StopRequests() {
  const timespec now{};
  while (sigtimedwait(&requests_, nullptr, &now) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

void StopRequests::check() {
  const timespec now{};
  const int sig = sigtimedwait(&requests_, nullptr, &now);
  if (sig > 0) throw Interrupted(sig);
}

std::string explain_ptrace_failure(pid_t pid, int err) {
  PtraceFacts f;
  f.pid = pid;
  f.err = err;
  f.tracer_pid = first_word(status_field(pid, "TracerPid:"));
  f.uids = status_field(pid, "Uid:");
  f.our_uid = geteuid();
  f.privileged = has_cap_sys_ptrace();
  try {
    f.yama_scope = sys::read_text_file("/proc/sys/kernel/yama/ptrace_scope");
  } catch (const Error&) {
  }
  while (!f.yama_scope.empty() && (f.yama_scope.back() == '\n' || f.yama_scope.back() == ' ')) f.yama_scope.pop_back();
  return ptrace_refusal_message(f);
}

// What a call (or an injected system call) borrows from the target, put
// back by the destructor at an event stop: the registers, the extended
// state (x87, SSE, AVX, AVX-512, mask registers, PKRU: the target may be
// stopped in vector code, and the called function's string functions use
// them), the signal mask, and the tracer options (PTRACE_O_EXITKILL only
// while the target runs borrowed code: should this process die then, the
// target would go on in a half-made call, so the kernel kills it instead).
class Tracee::Borrowed {
 public:
  explicit Borrowed(Tracee& t) : t_(t), xstate_(64 * 1024), xiov_{xstate_.data(), xstate_.size()} {
    have_xstate_ = ptrace(PTRACE_GETREGSET, t.pid_, reinterpret_cast<void*>(NT_X86_XSTATE), &xiov_) == 0;
    have_fp_ = !have_xstate_ && ptrace(PTRACE_GETFPREGS, t.pid_, nullptr, &fp_) == 0;
    if (!have_xstate_ && !have_fp_)
      refuse("cannot save the target's FPU and vector registers (" + sys::errno_text(errno) +
             "): a call of its own code would change them");
    mask_ = t.get_sigmask();
    t.set_sigmask(~kSynchronous);  // SIGKILL and SIGSTOP cannot be blocked; the kernel leaves them out
    set_options(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
  }
  ~Borrowed() {
    try {
      if (t_.running_ || t_.stop_ == Stop::Syscall) t_.interrupt_and_hold();
    } catch (const Error&) {  // exited, or not stopping: nothing more can be put back
    }
    if (!t_.attached_ || t_.running_) return;
    ptrace(PTRACE_SETREGS, t_.pid_, nullptr, &t_.regs_);
    if (have_xstate_) ptrace(PTRACE_SETREGSET, t_.pid_, reinterpret_cast<void*>(NT_X86_XSTATE), &xiov_);
    if (have_fp_) ptrace(PTRACE_SETFPREGS, t_.pid_, nullptr, &fp_);
    ptrace(PTRACE_SETSIGMASK, t_.pid_, reinterpret_cast<void*>(sizeof mask_), &mask_);
    set_options(PTRACE_O_TRACESYSGOOD);
  }
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;

 private:
  void set_options(long options) { ptrace(PTRACE_SETOPTIONS, t_.pid_, nullptr, reinterpret_cast<void*>(options)); }
  Tracee& t_;
  std::vector<uint8_t> xstate_;
  iovec xiov_;
  bool have_xstate_ = false, have_fp_ = false;
  user_fpregs_struct fp_{};
  uint64_t mask_ = 0;
};

Tracee::Tracee(pid_t pid) : pid_(pid) {
  sigemptyset(&sigchld_);
  sigaddset(&sigchld_, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &sigchld_, &old_mask_);
  if (ptrace(PTRACE_SEIZE, pid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) != 0) {
    const int err = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    refuse(explain_ptrace_failure(pid, err));
  }
  attached_ = true;
  running_ = true;
  try {
    if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0)
      refuse("cannot stop process " + std::to_string(pid) + ": " + sys::errno_text(errno));
    // A signal arriving first goes back to the target's queue (pass_back).
    if (!wait_event_stop(kHoldTimeoutMs))
      refuse("process " + std::to_string(pid) + " did not stop within " + std::to_string(kHoldTimeoutMs / 1000) +
             " s of PTRACE_INTERRUPT");
    if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs_) != 0)
      refuse("cannot read the registers of process " + std::to_string(pid) + ": " + sys::errno_text(errno));
  } catch (...) {
    detach();
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    throw;
  }
}

Tracee::~Tracee() {
  if (attached_) detach();
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

int Tracee::wait_stop(int timeout_ms) {
  const int64_t deadline = now_ms() + timeout_ms;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, __WALL | WNOHANG);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      attached_ = running_ = false;
      refuse("process " + std::to_string(pid_) + " vanished during the snapshot (" + sys::errno_text(errno) +
             "); no image was written");
    }
    if (r == pid_ && (WIFEXITED(status) || WIFSIGNALED(status))) {
      attached_ = running_ = false;
      refuse("process " + std::to_string(pid_) + " exited during the snapshot (" +
             (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                : "killed by " + signal_name(WTERMSIG(status))) +
             "); no image was written");
    }
    if (r == pid_ && WIFSTOPPED(status)) {
      running_ = false;
      stop_ = is_event_stop(status) ? Stop::Event : is_syscall_stop(status) ? Stop::Syscall : Stop::Signal;
      return status;
    }
    const int64_t left = deadline - now_ms();
    if (left <= 0) return -1;
    // Until the SIGCHLD of its next stop or exit (blocked here for the
    // hold), or 10 ms.
    const timespec wait{0, std::min<int64_t>(left, 10) * 1000000};
    sigtimedwait(&sigchld_, nullptr, &wait);
  }
}

namespace {

// Whether pid may be on its way out: no /proc entry, exiting (PF_EXITING,
// the ninth field of its stat), a zombie, or SIGKILL pending -- else a
// failure is the snapshot's own, reported at once.
bool may_be_exiting(pid_t pid) {
  try {
    const std::string stat = sys::read_text_file("/proc/" + std::to_string(pid) + "/stat");
    const size_t paren = stat.rfind(')');
    if (paren != std::string::npos) {
      const char* p = stat.c_str() + paren + 1;
      for (int field = 3; field < 9 && *p; ++field) p = std::strchr(p + 1, ' ') ? std::strchr(p + 1, ' ') : "";
      constexpr unsigned long kPfExiting = 0x4;
      if (*p && (std::strtoul(p, nullptr, 10) & kPfExiting)) return true;
    }
  } catch (const Error&) {
    return true;
  }
  std::string status;
  try {
    status = sys::read_text_file("/proc/" + std::to_string(pid) + "/status");
  } catch (const Error&) {
    return true;
  }
  const size_t state = status.find("\nState:\t");
  if (state != std::string::npos && state + 8 < status.size() && (status[state + 8] == 'Z' || status[state + 8] == 'X'))
    return true;
  for (const char* key : {"\nShdPnd:\t", "\nSigPnd:\t"}) {
    const size_t at = status.find(key);
    if (at == std::string::npos) continue;
    const uint64_t pending = std::strtoull(status.c_str() + at + std::strlen(key), nullptr, 16);
    if (pending & (uint64_t{1} << (SIGKILL - 1))) return true;
  }
  return false;
}

}  // namespace

bool Tracee::gone(std::string* how) {
  if (!attached_) return false;
  if (!may_be_exiting(pid_)) return false;  // alive: no wait for an exit report
  // A process being killed can fail a read or a /proc file a moment before
  // its exit is reported: give the report that moment.
  const int64_t deadline = now_ms() + kExitReportMs;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, __WALL | WNOHANG);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *how = "it vanished";
      break;
    }
    if (r == pid_ && (WIFEXITED(status) || WIFSIGNALED(status))) {
      *how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                               : "killed by " + signal_name(WTERMSIG(status));
      break;
    }
    // Still there (a stop it might report is not expected while held).
    const int64_t left = deadline - now_ms();
    if (left <= 0) return false;
    const timespec wait{0, std::min<int64_t>(left, 10) * 1000000};
    sigtimedwait(&sigchld_, nullptr, &wait);
  }
  attached_ = running_ = false;
  return true;
}

void Tracee::resume(__ptrace_request request, int sig) {
  if (ptrace(request, pid_, nullptr, reinterpret_cast<void*>(static_cast<intptr_t>(sig))) != 0)
    refuse("cannot resume process " + std::to_string(pid_) + ": " + sys::errno_text(errno));
  running_ = true;
}

uint64_t Tracee::get_sigmask() {
  uint64_t mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, pid_, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
    refuse("cannot read the signal mask of process " + std::to_string(pid_) + ": " + sys::errno_text(errno));
  return mask;
}

void Tracee::set_sigmask(uint64_t mask) {
  if (ptrace(PTRACE_SETSIGMASK, pid_, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
    refuse("cannot set the signal mask of process " + std::to_string(pid_) + ": " + sys::errno_text(errno));
}

// A signal sent to the target while it is held, at its delivery-stop.  One
// it may block goes back to its own queue with its siginfo: the kernel
// requeues a signal the tracer resumes with when the tracee blocks it, so
// it is blocked for that moment (and unblocked at the next event stop), and
// delivered when the target runs its own code again.  SIGSTOP, and the
// synchronous signals (left unblocked during a call), are kept and sent
// again after the detach.
void Tracee::pass_back(int sig, __ptrace_request request) {
  siginfo_t info{};
  ptrace(PTRACE_GETSIGINFO, pid_, nullptr, &info);
  // The target's own fault (the kernel's, outside a call of ours): its
  // handler runs now, as it would have (re-sent later, the instruction would
  // fault again and the handler see a second, sent signal).
  if (request == PTRACE_CONT && (bit(sig) & kSynchronous) && info.si_code > 0) {
    resume(request, sig);
    return;
  }
  if (sig == SIGSTOP || (bit(sig) & kSynchronous)) {
    kept_.push_back(info);
    resume(request, 0);
    return;
  }
  const uint64_t mask = get_sigmask();
  if (!(mask & bit(sig))) {
    set_sigmask(mask | bit(sig));
    unblock_after_requeue_ |= bit(sig);
  }
  resume(request, sig);
}

bool Tracee::wait_event_stop(int timeout_ms) {
  while (true) {
    const int status = wait_stop(timeout_ms);
    if (status < 0) return false;
    if (is_event_stop(status)) {
      if (unblock_after_requeue_) set_sigmask(get_sigmask() & ~unblock_after_requeue_);
      unblock_after_requeue_ = 0;
      return true;
    }
    if (is_signal_stop(status)) pass_back(WSTOPSIG(status), PTRACE_CONT);
    else resume(PTRACE_CONT, 0);
  }
}

// Back to an event stop, where the registers may be put back and the
// target detached: an interrupted system call of its own then restarts.
void Tracee::interrupt_and_hold() {
  if (!running_ && stop_ == Stop::Syscall) {
    user_regs_struct r{};
    ptrace(PTRACE_GETREGS, pid_, nullptr, &r);
    r.orig_rax = static_cast<uint64_t>(-1);  // at an entry: skipped; at an exit: no restart
    ptrace(PTRACE_SETREGS, pid_, nullptr, &r);
  }
  if (ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr) != 0)
    refuse("cannot stop process " + std::to_string(pid_) + ": " + sys::errno_text(errno));
  if (!running_) resume(PTRACE_CONT, 0);
  if (!wait_event_stop(kHoldTimeoutMs))
    refuse("process " + std::to_string(pid_) + " did not stop again within " + std::to_string(kHoldTimeoutMs / 1000) +
           " s");
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

// One system call made by the target, at the `syscall` instruction of its
// libc with PTRACE_SYSCALL: it needs no stack and delivers no signal.
uint64_t Tracee::inject_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  if (!syscall_insn_)
    refuse(
        "no system call instruction was found in the target's libc (glibc's syscall()); it is needed to map "
        "a stack for the calls in the target: run the target with LD_BIND_NOW=1 and a glibc that has one");
  Borrowed borrowed(*this);
  user_regs_struct r = regs_;
  r.rip = syscall_insn_;
  r.rax = static_cast<uint64_t>(nr);
  r.rdi = a0;
  r.rsi = a1;
  r.rdx = a2;
  r.r10 = a3;
  r.r8 = a4;
  r.r9 = a5;
  r.orig_rax = static_cast<uint64_t>(-1);  // not in a system call: no restart on resume
  if (ptrace(PTRACE_SETREGS, pid_, nullptr, &r) != 0)
    refuse("cannot set the target's registers: " + sys::errno_text(errno));
  resume(PTRACE_SYSCALL, 0);
  bool entered = false;
  while (true) {
    const int status = wait_stop(kHoldTimeoutMs);
    if (status < 0)
      refuse("a system call (" + std::to_string(nr) + ") made in the target did not end within " +
             std::to_string(kHoldTimeoutMs / 1000) + " s");
    if (is_syscall_stop(status)) {
      user_regs_struct out{};
      ptrace(PTRACE_GETREGS, pid_, nullptr, &out);
      if (entered) return out.rax;
      if (out.rip != syscall_insn_ + 2 || out.orig_rax != static_cast<uint64_t>(nr))
        refuse("a system call made in the target stopped at " + sys::hex(out.rip) + " (system call " +
               std::to_string(static_cast<int64_t>(out.orig_rax)) + "), not at " + sys::hex(syscall_insn_ + 2));
      entered = true;
    } else if (is_signal_stop(status)) {
      siginfo_t si{};
      ptrace(PTRACE_GETSIGINFO, pid_, nullptr, &si);
      if ((bit(WSTOPSIG(status)) & kSynchronous) && !sent_by_process(si))
        refuse("a system call made in the target faulted (" + signal_name(WSTOPSIG(status)) + ")");
      pass_back(WSTOPSIG(status), PTRACE_SYSCALL);
      continue;
    }
    resume(PTRACE_SYSCALL, 0);
  }
}

uint64_t Tracee::data_address(size_t size) {
  if (!scratch_) {
    const uint64_t a = inject_syscall(SYS_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, static_cast<uint64_t>(-1), 0);
    if (a > static_cast<uint64_t>(-4096))
      refuse("cannot map a stack for the calls in the target (mmap: " +
             sys::errno_text(static_cast<int>(-static_cast<int64_t>(a))) +
             "); the target is out of memory or address space: snapshot it with LD_BIND_NOW=1 set, which needs "
             "fewer calls, or free memory");
    scratch_ = a;
  }
  if (size > kScratchSize / 4)
    throw Error(Errc::InvalidArgument, "call data of " + std::to_string(size) + " bytes: at most 64 KiB");
  return (scratch_ + kScratchSize - size) & ~uint64_t{15};
}

// The loop of call_each(), entered as stub(table, count) with the stack
// aligned as at any call.  Each 40-byte entry: fn, a0, a1, a2, result.
//   push rbx; push r12; push r13; mov rbx,rdi; mov r12,rsi
//   loop: test r12,r12; jz done
//         mov rdi,[rbx+8]; mov rsi,[rbx+16]; mov rdx,[rbx+24]; xor eax,eax
//         call [rbx]; mov [rbx+32],rax; add rbx,40; dec r12; jmp loop
//   done: pop r13; pop r12; pop rbx; ret
constexpr uint8_t kBatchCode[] = {0x53, 0x41, 0x54, 0x41, 0x55, 0x48, 0x89, 0xfb, 0x49, 0x89, 0xf4, 0x4d, 0x85,
                                  0xe4, 0x74, 0x1d, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10, 0x48, 0x8b,
                                  0x53, 0x18, 0x31, 0xc0, 0xff, 0x13, 0x48, 0x89, 0x43, 0x20, 0x48, 0x83, 0xc3,
                                  0x28, 0x49, 0xff, 0xcc, 0xeb, 0xde, 0x41, 0x5d, 0x41, 0x5c, 0x5b, 0xc3};

std::vector<uint64_t> Tracee::call_each(const std::vector<Call>& calls, const std::string& data, int timeout_ms) {
  if (calls.empty()) return {};
  const size_t table_bytes = calls.size() * kBatchEntry;
  const uint64_t table_at = data_address(table_bytes + data.size());  // maps the scratch: its first page is the code's
  if (batch_code_ == 0) {
    // Written, then made read+execute: never writable and executable at once.
    batch_code_ = write(scratch_, kBatchCode, sizeof kBatchCode) &&
                          inject_syscall(SYS_mprotect, scratch_, 4096, PROT_READ | PROT_EXEC, 0, 0, 0) == 0
                      ? 1
                      : -1;
  }
  if (batch_code_ < 0) return {};
  std::string blob(table_bytes, '\0');
  for (size_t i = 0; i < calls.size(); ++i) {
    const uint64_t entry[4] = {calls[i].fn, calls[i].a0, calls[i].a1, calls[i].a2};
    std::memcpy(blob.data() + i * kBatchEntry, entry, sizeof entry);
  }
  blob += data;
  call(scratch_, table_at, calls.size(), 0, blob, timeout_ms);
  std::vector<uint64_t> out(calls.size());
  for (size_t i = 0; i < calls.size(); ++i)
    if (!read_value(table_at + i * kBatchEntry + 32, &out[i]))
      refuse("cannot read the results of the calls made in the target: " + sys::errno_text(errno));
  return out;
}

void Tracee::end_calls() {
  if (!scratch_) return;
  const uint64_t at = scratch_;
  scratch_ = 0;
  batch_code_ = 0;
  inject_syscall(SYS_munmap, at, kScratchSize, 0, 0, 0, 0);
}

uint64_t Tracee::call(uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, const std::string& data, int timeout_ms) {
  const uint64_t data_at = data_address(data.size());
  const uint64_t sp = data_at - 8;  // rsp % 16 == 8 at a function's entry: the return address is pushed
  // It returns to a `syscall` instruction: the system-call stop there ends
  // the call (the system call itself is skipped), and no signal is sent.
  const uint64_t ret = syscall_insn_;
  if ((!data.empty() && !write(data_at, data.data(), data.size())) || !write(sp, &ret, 8))
    refuse("cannot write to the stack mapped in the target for the calls: " + sys::errno_text(errno));
  Borrowed borrowed(*this);
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
  const std::string what = "a call of the target's own code (at " + sys::hex(fn) + ")";
  resume(PTRACE_SYSCALL, 0);
  const int64_t deadline = now_ms() + timeout_ms;
  while (true) {
    const int status = wait_stop(static_cast<int>(std::max<int64_t>(0, deadline - now_ms())));
    if (status < 0)
      refuse(what + " did not return within " + std::to_string(timeout_ms) +
             " ms; is the target holding a lock one of its functions needs? Snapshot it at another moment");
    if (is_syscall_stop(status)) {
      user_regs_struct out{};
      ptrace(PTRACE_GETREGS, pid_, nullptr, &out);
      // At the entry of the system call at `ret`, the function's rax is orig_rax.
      if (out.rip == ret + 2 && out.rsp == sp + 8) return out.orig_rax;
    } else if (is_signal_stop(status)) {
      siginfo_t si{};
      ptrace(PTRACE_GETSIGINFO, pid_, nullptr, &si);
      if ((bit(WSTOPSIG(status)) & kSynchronous) && !sent_by_process(si)) {
        user_regs_struct out{};
        ptrace(PTRACE_GETREGS, pid_, nullptr, &out);
        refuse(what + " faulted (" + signal_name(WSTOPSIG(status)) + ") at " + sys::hex(out.rip));
      }
      pass_back(WSTOPSIG(status), PTRACE_SYSCALL);
      continue;
    }
    resume(PTRACE_SYSCALL, 0);  // a system call of its own, or a group stop
  }
}

// A kept signal, sent again once the target is its own: with its siginfo
// where the kernel lets another process queue one (sigqueue's SI_QUEUE and
// the like), else as kill(2) from this process would send it.
void Tracee::resend(const siginfo_t& si) {
  if (si.si_code < 0 && si.si_code != SI_TKILL && syscall(SYS_rt_tgsigqueueinfo, pid_, pid_, si.si_signo, &si) == 0)
    return;
  syscall(SYS_tgkill, pid_, pid_, si.si_signo);
}

void Tracee::detach() {
  if (!attached_) return;
  try {
    if (running_ || stop_ == Stop::Syscall) interrupt_and_hold();
    end_calls();
  } catch (const Error&) {  // it exited, or would not stop: nothing more to put back
  }
  if (!attached_) return;
  attached_ = false;
  ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
  for (const siginfo_t& si : kept_) resend(si);
  kept_.clear();
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
