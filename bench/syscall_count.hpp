// Counting the system calls of one operation, by number: a forked child
// runs prepare(), then operation() once, stopped by this process at each
// system call it enters (ptrace PTRACE_SYSCALL).  What a VM makes dear,
// counted the same on every machine: the map and reset rows print it
// beside their times.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace bench {

struct SyscallCount {
  uint64_t total = 0;
  std::map<long, uint64_t> by_nr;  // system call number -> how many
  std::string error;               // non-empty: no count (why)
  std::string list() const;        // "mmap×45 munmap×8 ..." (most first)
};

// The child is killed afterwards: the operation's effects stay there.
SyscallCount count_syscalls(const std::function<void()>& prepare, const std::function<void()>& operation);

}  // namespace bench
