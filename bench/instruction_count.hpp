// Counting the user-space instructions of one operation without hardware
// counters (none on the guests we get): a forked child runs the operation
// once, single-stepped by this process with ptrace(PTRACE_SINGLESTEP), from
// the operation's first instruction to its return.  Deterministic for a
// given build and machine; signal handlers that run inside the operation
// (Syscall User Dispatch's SIGSYS) are counted, the kernel's work is not:
// system calls are counted separately, by number.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace bench {

struct InstructionCount {
  uint64_t instructions = 0;
  uint64_t syscalls = 0;             // syscall instructions executed (dispatched ones too)
  std::map<long, uint64_t> by_nr;    // system call number -> how many
  uint64_t signals = 0;              // signals delivered inside the operation
  std::string error;                 // non-empty: no count (why)
  std::string syscall_list() const;  // "arch_prctl×2 rt_sigprocmask×1"
};

// Forks; the child runs prepare(ctx) (warm-up: what the operation's first
// run does once per thread or process), then operation(ctx) once, traced.
// The child is killed afterwards: the operation's effects stay there.
InstructionCount count_instructions(void (*prepare)(void*), void (*operation)(void*), void* ctx);

}  // namespace bench
