// The image format (docs/format.md): an ELF64 ET_CORE file with one PT_LOAD
// per segment and one PT_NOTE holding notes owned by "SUBCTX".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace subctx::image {

// 2: the identity note (descriptors, working directory); 3: imports (the
// import note, the frame slot at the gate stack's top: docs/callbacks.md).
inline constexpr uint32_t kFormatVersion = 3;
// Bits of the version note's flags (ImageInfo::flags).  The reader keeps
// bits it does not know: they are covered by the header digest like every
// note, and old images have none set.
// The image's code starts programs (posix_spawn, vfork + execve): clients
// allow it unless their policy denies it (SnapshotOptions::spawns,
// docs/policy.md).
inline constexpr uint32_t kFlagSpawns = 1;
inline constexpr char kNoteOwner[] = "SUBCTX";  // 6 chars + NUL
inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kUserSpaceEnd = uint64_t{1} << 47;
inline constexpr uint64_t kMaxNotesSize = uint64_t{64} << 20;

// Lengths of the strings in notes: the reader refuses a longer one
// ("malformed ... note"); the writer cuts the informational ones (creator,
// provenance, origins, system call names) to them, so that what it writes
// is always read back.  Export and import names are never cut: the server
// refuses longer ones when they are declared.
inline constexpr size_t kMaxName = 255;   // export/import names and signatures, build id, kernel, libc, vDSO symbols
inline constexpr size_t kMaxText = 4096;  // the creator's path, a segment's origin
inline constexpr size_t kMaxSyscallName = 64;  // a system call rule's name or number
inline constexpr uint32_t kMaxVdsoSymbols = 256;

// Types in their own range ("SC" << 16) so that readelf, which reads ET_CORE
// note types 1..n as NT_PRSTATUS and friends, does not mislabel them.
enum NoteType : uint32_t {
  kNoteVersion = 0x53430001,     // u32 format version, u32 flags
  kNoteCreator = 0x53430002,     // str executable path, str build-id (hex)
  kNoteProvenance = 0x53430003,  // u64 creation time (ns since epoch), str kernel, str libc
  kNoteCpu = 0x53430004,         // u64 required CPU feature bits (cpu_features.hpp)
  kNoteThread = 0x53430005,      // thread record: tcb, gate stack, stdio hooks
  kNoteExports = 0x53430006,     // u32 count, then {u64 address, u8 visibility, str name, str signature}
  kNoteVdso = 0x53430007,        // u64 base, u64 size, u32 count, then {u64 offset, str name}
  kNoteSegments = 0x53430008,    // u32 count, then {u8 kind, str origin} per PT_LOAD, in order
  kNoteDigests = 0x53430009,     // u64 header digest, u32 count, u32 0, u64 digest per PT_LOAD; always last
  kNoteSyscalls = 0x5343000a,    // optional: u32 count, then {str syscall, u8 action, u32 errno}
  // Required from version 2, written just before the digests: u32 umask, u32 pid, str cwd, u32 count,
  // then {u32 number, u8 kind, u8 dropped, u32 flags, u64 offset, u32 same_as, str path}, then
  // u32 count, {u8 signal, u8 action}.  The server's files, working directory, umask, pid, signals.
  kNoteIdentity = 0x5343000b,
  // Optional (an image without imports has none): u32 count, then {str name, str signature}; an
  // import's index is its place in the list, the number its stub hands the client (docs/callbacks.md).
  kNoteImports = 0x5343000c,
  // Optional: u32 count, then count x {u64 vaddr, u32 pages}: the pages first calls touched
  // (`subctx train`), populated at map (docs/prefetch.md).
  kNoteHotPages = 0x5343000d,
};

// Where a segment came from in the server (shown by `subctx inspect`).
enum class SegmentKind : uint8_t { File = 0, Heap = 1, Stack = 2, Anon = 3, GateStack = 4, GateGuard = 5 };
const char* segment_kind_name(SegmentKind kind);

struct SegmentRecord {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t offset = 0;  // in the file; page-aligned
  uint64_t filesz = 0;
  int prot = 0;  // PROT_READ | PROT_WRITE | PROT_EXEC
  SegmentKind kind = SegmentKind::Anon;
  std::string origin;   // the server's mapping name ("/usr/lib/.../libc.so.6", "[heap]", "")
  uint64_t digest = 0;  // xxh3 of the segment's memsz bytes

  uint64_t end() const { return vaddr + memsz; }
  bool contains(uint64_t a, uint64_t len = 1) const { return a >= vaddr && len <= memsz && a - vaddr <= memsz - len; }
};

struct ExportRecord {
  std::string name;
  uint64_t address = 0;
  std::string signature;
  uint8_t visibility = 0;  // 0 public, 1 restricted
};

// A function the subcontext calls and the client provides (sbc_import on the
// server, sbc_bind in the client): docs/callbacks.md.
struct ImportRecord {
  std::string name;
  std::string signature;
};
// Imports per image: the server library has this many stubs.
inline constexpr uint32_t kMaxImports = 256;
// The word at the gate stack's top where the Matchmaker leaves the frame of
// the call in progress: gate_stack_hi - kImportSlotBelowTop.  The server's
// import stubs read it (their copy of the address is patched into the
// image), and calls enter below it.
inline constexpr uint64_t kImportSlotBelowTop = 16;
// The inaccessible guard below the gate stack (a GateGuard segment): a call
// that overflows its stack faults there, and the fault is reported so.
inline constexpr uint64_t kGateGuardSize = 64 * 1024;

// The server thread a call runs as: its thread pointer and the gate stack.
// stdout/stderr/fflush let the gate flush the subcontext's stdio after calls.
struct ThreadRecord {
  uint64_t tcb = 0;
  uint64_t gate_stack_lo = 0;
  uint64_t gate_stack_hi = 0;
  uint64_t stdout_file = 0;  // FILE* of the server's stdout (0: none)
  uint64_t stderr_file = 0;
  uint64_t fflush_fn = 0;  // the server libc's fflush
};

struct VdsoSymbol {
  uint64_t offset = 0;  // from the server vDSO's base
  std::string name;
};

struct VdsoRecord {
  uint64_t base = 0;  // 0: the server had no vDSO
  uint64_t size = 0;
  std::vector<VdsoSymbol> symbols;
};

// A server's rule for the image's system calls (SnapshotOptions::syscalls).
struct SyscallRuleRecord {
  std::string syscall;  // name or number, checked by the Matchmaker at map
  uint8_t action = 1;   // 0 allow, 1 deny, 2 fault (SyscallRule::Action)
  uint32_t error = 1;   // deny: the errno
};
inline constexpr uint32_t kMaxSyscallRules = 512;
// An image is untrusted input: its rules narrow the Matchmaker's defaults
// (deny, fault), never widen them.  Allowing is the client's alone.
inline constexpr char kImageRulesNarrowOnly[] =
    "an image's rules may only deny or fault a system call; allowing one would widen the Matchmaker's defaults "
    "(exit ending the client, a handler removed), which only the client's own rules may do (MapOptions::syscalls)";

// The kernel-side identity of the server (docs/identity.md): what its
// memory's descriptor numbers, relative paths and pid meant.  A client
// reopens the files and directories by path at map and gives the
// subcontext its own descriptor namespace.
enum class FdKind : uint8_t {
  File = 0,        // regular file: reopened by path, offset put back
  Directory = 1,   // reopened by path
  CharDevice = 2,  // reopened by path: only the harmless ones (kRestorableDevices)
  Pipe = 3,
  Socket = 4,
  Eventfd = 5,
  Memfd = 6,
  Other = 7,  // epoll, timerfd, signalfd, inotify, pidfd, a terminal, ...
};
const char* fd_kind_name(FdKind kind);
inline bool fd_kind_restorable(FdKind k) {
  return k == FdKind::File || k == FdKind::Directory || k == FdKind::CharDevice;
}
// Character devices that mean the same in every client.
inline constexpr const char* kRestorableDevices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                                     "/dev/urandom"};

// Descriptor numbers a subcontext can have: 0 .. kMaxFds - 1.
inline constexpr uint32_t kMaxFds = 1024;
inline constexpr uint32_t kMaxPathBytes = 4096;
// Signal records in the identity note: SIGPIPE and SIGXFSZ are recorded, each once.
inline constexpr uint32_t kMaxSignalRecords = 8;

struct FdRecord {
  int32_t number = -1;  // the server's number: the subcontext's number for it
  FdKind kind = FdKind::Other;
  bool dropped = false;  // declared dropped at snapshot: EBADF inside the subcontext
  uint32_t flags = 0;    // open flags as /proc/self/fdinfo shows them (O_CLOEXEC included)
  uint64_t offset = 0;   // file offset (fdinfo "pos")
  int32_t same_as = -1;  // an earlier record sharing this one's open file description (dup), or -1
  std::string path;      // what /proc/self/fd/N says ("/var/log/x.log", "pipe:[123]")
};

// The server's dispositions for signals its code raises synchronously.
struct SignalRecord {
  uint8_t signal = 0;  // SIGPIPE, SIGXFSZ
  uint8_t action = 0;  // 0 default (ends the process), 1 ignored, 2 a handler
};

struct IdentityRecord {
  std::string cwd;  // absolute
  uint32_t umask = 022;
  int32_t pid = 0;            // the server's pid: kill() of it is the subcontext itself
  std::vector<FdRecord> fds;  // sorted by number, 0-2 never listed
  std::vector<SignalRecord> signals;
};

// A run of hot pages: [vaddr, vaddr + pages * kPageSize), inside the file
// part of one segment.  Runs are sorted and disjoint.
struct HotRun {
  uint64_t vaddr = 0;
  uint32_t pages = 0;
};
// Bounds of the hot-pages note, for reader, writer (`subctx train`) and
// docs: populating is work done at every map, so an image may ask for at
// most this much of it.
inline constexpr uint32_t kMaxHotRuns = 4096;
inline constexpr uint64_t kMaxHotPages = 65536;  // 256 MiB

struct ImageInfo {
  uint32_t version = kFormatVersion;
  uint32_t flags = 0;  // kFlag* bits
  std::string creator_path;
  std::string build_id;  // hex, "" if the executable has none
  uint64_t created_ns = 0;
  std::string kernel;
  std::string libc;
  uint64_t cpu_features = 0;
  ThreadRecord thread;
  std::vector<ExportRecord> exports;
  std::vector<ImportRecord> imports;
  VdsoRecord vdso;
  std::vector<SegmentRecord> segments;
  std::vector<SyscallRuleRecord> syscall_rules;
  IdentityRecord identity;
  std::vector<HotRun> hot_pages;  // optional note; empty: none
  uint64_t header_digest = 0;
  uint64_t file_size = 0;

  uint64_t virtual_size() const {
    uint64_t n = 0;
    for (const auto& s : segments) n += s.memsz;
    return n;
  }
  const SegmentRecord* segment_at(uint64_t addr) const {
    for (const auto& s : segments)
      if (s.contains(addr)) return &s;
    return nullptr;
  }
};

inline uint64_t page_round_up(uint64_t v) { return (v + kPageSize - 1) & ~(kPageSize - 1); }
inline uint64_t page_round_down(uint64_t v) { return v & ~(kPageSize - 1); }

}  // namespace subctx::image
