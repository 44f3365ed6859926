// The default policy for system calls of subcontext code, written once, as
// data (rr's syscalls.py is the model): kSyscallDefaults in
// syscall_defaults.cpp, one row per line of the table in docs/containment.md
// ("System calls of subcontext code").  Everything else derives from it:
//   - each subcontext's action table, which the SIGSYS handler reads
//     (syscall_table.cpp, at map);
//   - `subctx inspect`'s system call section (tools/inspect.cpp);
//   - the docs table, which a unit test compares with the markdown made
//     here (tests/unit/syscall_table_test.cpp), so neither can drift.
// Here, in matchmaker/, because what subcontext code may do is the
// Matchmaker's decision; fault/ only reads the finished table in signal
// context, and common/ goes into the server library, which never needs it.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace subctx::matchmaker {

// What happens by default to a system call of subcontext code.
enum class SyscallDefault : uint8_t {
  EndCall,         // the call fails with SubcontextFault, carrying the exit status
  Deny,            // fails with the row's errno
  SignalItself,    // a signal to itself acts on the calling thread; others refused
  TrackMemory,     // made, and tracked for reset and the mapped-bytes quota
  Sigreturn,       // made from the Matchmaker's allowed range
  Descriptors,     // made in the subcontext's descriptor namespace
  Allow,           // made as asked
  Emulated,        // allowed in the table; the SIGSYS handler does it its own way
  DenyByArgument,  // allowed in the table; the handler refuses some arguments with the row's errno
  Threads,         // a thread of the subcontext (fault/threads.hpp), a child process (fault/children.hpp); forks: EPERM
  Children,        // waits for the subcontext's own children only
  ClientProcess,   // the client process's state (credentials, limits, session): the row's errno in calls and
                   // threads; made in a child process before its exec (its own)
  ThreadState,     // the calling thread's kernel state: made on a thread of the subcontext (and in a child);
                   // the row's errno on a client thread in a call
};

// Which system calls a row covers.  The first row that covers a number
// decides, and rows that list numbers come before the classes (checked at
// compile time), so a listed number is never decided by its class.
enum class SyscallSet : uint8_t {
  Listed,          // the row's numbers
  X32,             // numbers with the x32 bit: past the table, the handler refuses them
  Translated,      // fault::fd_class() says Translated
  Untranslatable,  // fd_class() says Untranslatable or Unknown
  Others,          // fd_class() says None
};

// Up to eight system call numbers, in the order the docs name them.
struct SyscallList {
  static constexpr size_t kMax = 8;
  std::array<int16_t, kMax> numbers{};
  uint8_t count = 0;

  constexpr SyscallList() = default;
  // A ninth number makes the array index fail to compile (constexpr).
  constexpr SyscallList(std::initializer_list<long> list) {
    for (long nr : list) numbers[count++] = static_cast<int16_t>(nr);
  }
  constexpr std::span<const int16_t> view() const { return {numbers.data(), count}; }
  constexpr bool contains(long nr) const {
    for (int16_t n : view())
      if (n == nr) return true;
    return false;
  }
};

struct SyscallDefaultRow {
  SyscallSet set = SyscallSet::Listed;
  SyscallList listed;  // set == Listed: the system calls
  SyscallDefault action = SyscallDefault::Allow;
  int16_t error = 0;  // Deny, DenyByArgument, ClientProcess, ThreadState: the errno
  // The "system call" cell (markdown) where the listed names alone would
  // not say it (arguments, classes); empty: the names, "`exit`, `exit_group`".
  std::string_view shown;
  std::string_view what;  // what happens and why (markdown), one line
};

// kSyscallDefaults, in docs order.
std::span<const SyscallDefaultRow> syscall_defaults();

// The row's "system call" cell, markdown.
std::string syscall_default_cell(const SyscallDefaultRow& row);

// The docs table, as docs/containment.md has it: header, rule, one line per row.
std::string syscall_defaults_markdown();

// Markdown text without its markup (`code`, **bold**), for a terminal.
std::string without_markup(std::string_view markdown);

}  // namespace subctx::matchmaker
