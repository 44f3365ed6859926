#include "instruction_count.hpp"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace bench {

namespace {

// A ceiling on steps: an operation that never returns is an error, not a hang.
constexpr uint64_t kMaxSteps = 50'000'000;

// The child: stops itself once prepared; the tracer single-steps from there.
[[noreturn]] void child(void (*prepare)(void*), void (*operation)(void*), void* ctx) {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(120);
  prepare(ctx);
  raise(SIGSTOP);
  operation(ctx);
  _exit(0);
}

const char* syscall_name(long nr) {
  switch (nr) {
    case SYS_read: return "read";
    case SYS_write: return "write";
    case SYS_mprotect: return "mprotect";
    case SYS_rt_sigprocmask: return "rt_sigprocmask";
    case SYS_rt_sigreturn: return "rt_sigreturn";
    case SYS_arch_prctl: return "arch_prctl";
    case SYS_prctl: return "prctl";
    case SYS_futex: return "futex";
    case SYS_pkey_mprotect: return "pkey_mprotect";
    case SYS_timer_settime: return "timer_settime";
    case SYS_ioctl: return "ioctl";
    case SYS_pread64: return "pread64";
    case SYS_madvise: return "madvise";
    case SYS_getpid: return "getpid";
    case SYS_gettid: return "gettid";
    case SYS_sigaltstack: return "sigaltstack";
    case SYS_mmap: return "mmap";
    case SYS_munmap: return "munmap";
    case SYS_lseek: return "lseek";
    case SYS_fcntl: return "fcntl";
    case SYS_fstat: return "fstat";
    case SYS_newfstatat: return "newfstatat";
    case SYS_close: return "close";
    case SYS_openat: return "openat";
    default: return nullptr;
  }
}

class Tracer {
 public:
  Tracer(pid_t pid, uint64_t entry, std::FILE* trace) : pid_(pid), entry_(entry), trace_(trace) {}
  InstructionCount run();

 private:
  bool step(int signal);  // false: the child is gone (error_ says why)
  bool regs(user_regs_struct* r);
  void note_syscall(const user_regs_struct& r);

  pid_t pid_;
  uint64_t entry_;
  std::FILE* trace_;  // the address of each instruction counted, or null
  int stop_signal_ = 0;
  InstructionCount count_;
};

bool Tracer::regs(user_regs_struct* r) {
  if (ptrace(PTRACE_GETREGS, pid_, nullptr, r) == 0) return true;
  count_.error = std::string("PTRACE_GETREGS: ") + std::strerror(errno);
  return false;
}

bool Tracer::step(int signal) {
  if (ptrace(PTRACE_SINGLESTEP, pid_, nullptr, reinterpret_cast<void*>(static_cast<long>(signal))) != 0) {
    count_.error = std::string("PTRACE_SINGLESTEP: ") + std::strerror(errno);
    return false;
  }
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_ || !WIFSTOPPED(status)) {
    count_.error = "the child ended inside the operation (status " + std::to_string(status) + ")";
    return false;
  }
  stop_signal_ = WSTOPSIG(status);
  return true;
}

void Tracer::note_syscall(const user_regs_struct& r) {
  errno = 0;
  const long word = ptrace(PTRACE_PEEKTEXT, pid_, reinterpret_cast<void*>(r.rip), nullptr);
  if (errno == 0 && (word & 0xffff) == 0x050f) {  // syscall
    ++count_.syscalls;
    ++count_.by_nr[static_cast<long>(r.rax)];
  }
}

// From the SIGSTOP to the operation's entry without counting, then each
// instruction until the operation returns (to its return address, with the
// stack pointer just above it).
InstructionCount Tracer::run() {
  user_regs_struct r{};
  bool counting = false;
  uint64_t return_to = 0, return_sp = 0;
  int deliver = 0;
  for (uint64_t steps = 0; steps < kMaxSteps; ++steps) {
    if (!regs(&r)) return count_;
    if (!counting && r.rip == entry_) {
      counting = true;
      errno = 0;
      return_to = static_cast<uint64_t>(ptrace(PTRACE_PEEKDATA, pid_, reinterpret_cast<void*>(r.rsp), nullptr));
      return_sp = r.rsp + 8;
    } else if (counting && r.rip == return_to && r.rsp == return_sp) {
      return count_;
    }
    if (counting) {
      note_syscall(r);
      if (trace_) std::fprintf(trace_, "%llx\n", static_cast<unsigned long long>(r.rip));
    }
    if (!step(deliver)) return count_;
    const bool delivered_before = deliver != 0;
    deliver = 0;
    if (stop_signal_ == SIGTRAP) {
      // A step after a signal was handed in stops at the handler's first
      // instruction without executing one.
      if (counting && !delivered_before) ++count_.instructions;
    } else {
      // A signal stop: the instruction raised it (a dispatched system call,
      // a fault); hand the signal in, as the kernel would deliver it.
      if (counting) ++count_.instructions, ++count_.signals;
      deliver = stop_signal_;
    }
  }
  count_.error = "more than " + std::to_string(kMaxSteps) + " steps";
  return count_;
}

// $BENCH_ICOUNT_TRACE=FILE: the addresses of the instructions counted go to
// FILE (the last operation counted), the child's memory map to FILE.maps;
// bench/icount_profile.py turns them into instructions per function.
std::FILE* open_trace(pid_t pid) {
  const char* file = std::getenv("BENCH_ICOUNT_TRACE");
  if (!file || !*file) return nullptr;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::ofstream(std::string(file) + ".maps") << maps.rdbuf();
  return std::fopen(file, "w");
}

}  // namespace

std::string InstructionCount::syscall_list() const {
  std::string out;
  for (const auto& [nr, n] : by_nr) {
    if (!out.empty()) out += ' ';
    const char* name = syscall_name(nr);
    out += name ? name : "#" + std::to_string(nr);
    out += "x" + std::to_string(n);
  }
  return out.empty() ? "-" : out;
}

InstructionCount count_instructions(void (*prepare)(void*), void (*operation)(void*), void* ctx) {
  std::fflush(nullptr);  // the child's exit must not write our buffers again
  InstructionCount result;
  const pid_t pid = fork();
  if (pid < 0) {
    result.error = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) child(prepare, operation, ctx);
  int status = 0;
  // Signals before the stop (a raw call's SIGSEGV, a dispatched system
  // call's SIGSYS) go on to the child's handlers.
  while (waitpid(pid, &status, 0) == pid && WIFSTOPPED(status) && WSTOPSIG(status) != SIGSTOP)
    ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(WSTOPSIG(status))));
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
    result.error = "the child did not stop before the operation (status " + std::to_string(status) +
                   "; ptrace refused? /proc/sys/kernel/yama/ptrace_scope)";
  } else {
    std::FILE* trace = open_trace(pid);
    result = Tracer(pid, reinterpret_cast<uint64_t>(operation), trace).run();
    if (trace) std::fclose(trace);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return result;
}

}  // namespace bench
