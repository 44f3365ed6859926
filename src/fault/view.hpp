// What signal-context code knows of one mapped subcontext, and the one
// table through which it finds them.
//
// The handlers (SIGSEGV & co., SIGSYS, the deadline signal, the client
// signal trampoline) read a SubcontextView and nothing else of the
// Matchmaker: the call in progress, the gate stack, the segments, the
// system call table, the memory and descriptors subcontext code made, the
// mapped-bytes quota, and what an address in the subcontext is (for
// violation reports).  The subcontext's state (the Matchmaker's
// subcontext_state.hpp) derives from it, so normal code reads and writes
// these fields as its own; fault/ never sees the rest.
//
// Published once at map (publish_view) and withdrawn once at unmap
// (withdraw_view).  A handler finds its own thread's call's view by thread
// pointer or stack without reading any other view (view_with_tcb,
// view_on_stacks); one that reads other subcontexts' views (their address
// maps, for a violation) holds a ViewReader, and withdraw_view returns only
// once none does.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fault/fd_table.hpp"
#include "fault/signal_context.h"
#include "gate/gate.hpp"
#include "sys/segments.hpp"

namespace subctx::fault {

// One range [first, second) of memory subcontext code mapped.  Trivial, so
// the table below is allocated without being written: a client that maps
// an image pays for the pages its calls' mappings use, not 64 KiB of page
// faults at every map.
struct MappedRange {
  uint64_t first, second;
};

// Memory mapped by subcontext code during calls, kept by the SIGSYS
// handler (fixed capacity, allocated at map; entries [0, count) valid).
struct SubMappings {
  static constexpr uint32_t kMax = 4096;
  std::unique_ptr<MappedRange[]> ranges = std::make_unique_for_overwrite<MappedRange[]>(kMax);
  uint32_t count = 0;
  uint64_t bytes = 0, peak = 0;
  bool lost = false;             // the table overflowed: some mappings are not known
  bool layout_changed = false;   // calls unmapped, moved or re-protected part of the segments
  bool made_executable = false;  // calls gave part of the segments PROT_EXEC (mprotect, mmap over them)
};

// What the SIGSYS handler does with a system call of subcontext code,
// indexed by number (fault/syscalls.hpp: the action codes).
inline constexpr int kSyscallTableSize = 512;

// What an address inside a subcontext is, for a violation report: its
// ranges (segments minus what calls gave back, the vDSO forwarder, reserved
// gaps), its exports, its raw-call addresses.  Immutable once set; replaced
// whole when the protection plan is repaired (set_address_map).
struct ViewRange {
  uint64_t lo = 0, hi = 0;
  const char* what = "";  // "segment 3 libc.so.6 r-x", "reserved gap"
};
struct ViewExport {
  uint64_t address = 0;
  const char* name = "";
  uint32_t index = 0;
};
struct AddressMap {
  int handle = -1;
  const char* path = "";
  uint64_t lo = 0, hi = 0;                            // span of the ranges
  std::vector<ViewRange> ranges;                      // sorted
  std::vector<ViewExport> exports;                    // sorted by address
  uint64_t raw_lo = 0, raw_hi = 0;                    // raw-call addresses: raw_lo + export index
  bool forward_export_addresses = false;              // a fetch at an export's address is a raw call
  std::vector<std::unique_ptr<std::string>> strings;  // owns the text above

  const char* keep(std::string s) {
    strings.push_back(std::make_unique<std::string>(std::move(s)));
    return strings.back()->c_str();
  }
};

// Child processes subcontext code started (fault/children.hpp) and has not
// waited for yet: only these its wait4/waitid/kill may name.
struct ChildRecord {
  int32_t pid = 0;
  int32_t pidfd = -1;   // the Matchmaker's (never in the subcontext's namespace): waits and kills go through it
  int32_t died_of = 0;  // the signal a fault before its exec ended it with (it died of SIGKILL: children.cpp)
};
struct ChildTable {
  static constexpr uint32_t kMax = 64;  // past it, vfork/posix_spawn fail with EAGAIN (docs/threads.md)
  ChildRecord list[kMax];
  uint32_t count = 0;
  std::atomic<int> lock{0};  // a spin lock: calls and the subcontext's threads spawn and wait at once
};

// What ended a subcontext thread that faulted (the next call's report).
struct ThreadFault {
  gate::AbortRecord why;
  int32_t tid = 0;
};

struct SubcontextView {
  SubcontextView() = default;
  SubcontextView(const SubcontextView&) = delete;
  SubcontextView& operator=(const SubcontextView&) = delete;
  ~SubcontextView();

  int handle = -1;
  // The subcontext's thread pointer and gate stack: a thread whose thread
  // pointer is tcb, or whose stack pointer is in [stack_guard_lo,
  // stack_top), is inside this subcontext's call (only the call's thread
  // runs there).  Set at map, before publish_view.
  uint64_t tcb = 0;
  uint64_t stack_lo = 0, stack_top = 0;
  uint64_t stack_guard_lo = 0;  // the guard below the gate stack: an overflow faults there
  // The frame of the call in progress (its client thread pointer and
  // stack); null between calls.
  gate::Frame* volatile current_frame = nullptr;

  // The image's segments, then the vDSO forwarder, owned (normal code:
  // under the call lock; the SIGSYS handler: of the thread holding it).
  sys::Segments segments;
  // Per system call number: kAllow, a positive errno, or an emulation.
  std::array<int16_t, kSyscallTableSize> syscall_action{};
  SubMappings sub_maps;                       // mmap & co. of calls
  FdTable fds;                                // the descriptor namespace
  std::atomic<uint64_t> max_mapped_bytes{0};  // 0: no quota
  // Signals the server ignored (bit sig-1), and its pid (kill() of it is
  // the subcontext itself).
  uint64_t ignored_signals = 0;
  int32_t server_pid = 0;

  // For violation reports (set_address_map); null until set.
  std::atomic<const AddressMap*> address_map{nullptr};

  // Threads subcontext code starts (fault/threads.hpp), set at map:
  // max_threads 0 refuses clone (EPERM), thread_pkru is their PKRU
  // (gate::kNoPkru: none).
  uint32_t max_threads = 0;
  uint32_t thread_pkru = ~uint32_t{0};
  std::atomic<uint32_t> threads{0};           // running
  std::atomic<bool> threads_ran{false};       // since the map or the last reset: they may have written anywhere
  std::atomic<bool> threads_stopping{false};  // stop_threads runs: no new thread starts
  // While threads run, their memory and descriptor system calls and the
  // call's take this lock for the tables above (sub_maps, fds): a spin
  // lock, held only around table updates, never across a blocking call.
  std::atomic<int> tables_lock{0};
  // A thread's failure (fault/threads.hpp): written by the first thread
  // that fails (thread_fault_state 0 -> 1), then published (2); the next
  // call reports it, a reset clears it (0).
  ThreadFault thread_fault;
  std::atomic<int> thread_fault_state{0};

  // Child processes (fault/children.hpp): may_spawn is the policy's
  // decision (a spawn rule, else the image's declaration), set at map and
  // again at the first call after the policy changed; false refuses vfork
  // and posix_spawn (EPERM).
  std::atomic<bool> may_spawn{false};
  ChildTable children;
};

// The most subcontexts mapped at once (the view table's size); the
// SUBCTX_MAX_SUBCONTEXTS limit cannot exceed it.
inline constexpr int kMaxViews = 1024;

// Normal code.  publish_view returns false when the table is full; v's
// tcb and stack bounds are set before and stay while it is published.
// withdraw_view: the handlers stop finding v, and none is reading it when
// it returns (v may be destroyed).
bool publish_view(SubcontextView& v);
void withdraw_view(SubcontextView& v);
// Sets v's address map, freeing the previous one once no handler reads it.
void set_address_map(SubcontextView& v, std::unique_ptr<AddressMap> map);

// When the Matchmaker is installed: the fork handler of the table's lock
// (publish and withdraw are short: a fork waits for them).  Idempotent.
void prepare_views();

// ---- signal side (fault/ only) -------------------------------------------
// A handler scanning the table for a view other than its own call's holds a
// ViewReader while it reads what it found.  (The view of a call this thread
// is in needs none: it cannot be unmapped under the call.)
struct ViewReader {
  SUBCTX_SIGNAL_CONTEXT ViewReader();
  SUBCTX_SIGNAL_CONTEXT ~ViewReader();
  ViewReader(const ViewReader&) = delete;
  ViewReader& operator=(const ViewReader&) = delete;
  // Stops reading early (before code that may not return: a client's
  // violation handler may leave by siglongjmp).
  SUBCTX_SIGNAL_CONTEXT void leave();

 private:
  bool reading_ = true;
};
// Slots 0 .. views_used()-1 may hold views (null: free); read what
// view_at gives with a ViewReader held.
SUBCTX_SIGNAL_CONTEXT int views_used();
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_at(int i);
// The view whose thread pointer is tcb; the view whose gate stack or the
// guard below it holds with_guard, or whose gate stack holds
// without_guard.  Given the calling thread's own thread pointer or stack
// pointers, the view found is its own call's: safe to read without a
// ViewReader.  (Subcontext code controls both registers: what a handler
// does with the view found must be right for any subcontext's call.)
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_with_tcb(uint64_t tcb);
SUBCTX_SIGNAL_CONTEXT SubcontextView* view_on_stacks(uint64_t with_guard, uint64_t without_guard);

}  // namespace subctx::fault
