// snapshot(): writes the whole process into an image file.
//
// Two phases.  Prepare (may allocate): checks, bind-now, metadata, the region
// list, the encoded header, the file and every buffer.  Copy (allocates
// nothing, writes no snapshotted memory): re-reads /proc/self/maps into a
// preallocated buffer, checks the layout is the one prepared (else prepares
// again), then writes the non-zero pages and the sealed header.  A heap
// captured while the writer itself was growing a vector would be corrupt in
// every client; this order rules that out.
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>

#include "common/c_error.hpp"
#include "common/cpu_features.hpp"
#include "common/syscall_names.hpp"
#include "common/vdso.hpp"
#include "image/digest.hpp"
#include "image/writer.hpp"
#include "server/bind_now.hpp"
#include "server/exports.hpp"
#include "server/identity.hpp"
#include "server/refuse.hpp"
#include "server/region_select.hpp"
#include "subctx/server.hpp"
#include "sys/io.hpp"
#include "sys/mapping.hpp"
#include "sys/pagemap.hpp"
#include "sys/proc_maps.hpp"
#include "sys/unique_fd.hpp"

// The address the import stubs read the slot's address from (import_stubs.S).
extern "C" __attribute__((visibility("hidden"))) uint64_t subctx_import_slot;

namespace subctx {

namespace {

using image::kPageSize;

constexpr size_t kMaxSegments = 16000;         // below the ELF program header count limit (65535)
constexpr size_t kMapsBufferSize = 8u << 20;   // /proc/self/maps text
constexpr size_t kPagemapEntries = 64 * 1024;  // pagemap entries read per chunk
constexpr int kPrepareAttempts = 5;

using server::refuse;

// sbc_snapshot_drop_fd()'s list: C servers have no SnapshotOptions.  Kept
// for every later snapshot, like the exports.
std::mutex g_dropped_mutex;
std::vector<int> g_dropped_fds;

void add_dropped_fd(int fd) {
  std::lock_guard lock(g_dropped_mutex);
  if (std::find(g_dropped_fds.begin(), g_dropped_fds.end(), fd) == g_dropped_fds.end()) g_dropped_fds.push_back(fd);
}

std::vector<int> dropped_fds(const SnapshotOptions& options) {
  std::vector<int> all = options.dropped_fds;
  std::lock_guard lock(g_dropped_mutex);
  all.insert(all.end(), g_dropped_fds.begin(), g_dropped_fds.end());
  return all;
}

// sbc_snapshot_declare_spawns(): C servers have no SnapshotOptions.  Kept
// for every later snapshot, like the dropped descriptors.
std::atomic<bool> g_declared_spawns{false};

size_t count_threads() {
  DIR* d = opendir("/proc/self/task");
  if (!d) return 0;  // unknown
  size_t n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

std::string build_id_of_main() {
  std::string out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* hex = static_cast<std::string*>(data);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& p = info->dlpi_phdr[i];
          if (p.p_type != PT_NOTE) continue;
          auto* b = reinterpret_cast<const uint8_t*>(info->dlpi_addr + p.p_vaddr);
          for (uint64_t off = 0; off + 12 <= p.p_memsz;) {
            uint32_t namesz, descsz, type;
            std::memcpy(&namesz, b + off, 4);
            std::memcpy(&descsz, b + off + 4, 4);
            std::memcpy(&type, b + off + 8, 4);
            uint64_t desc = off + 12 + ((namesz + 3) & ~3u);
            if (type == NT_GNU_BUILD_ID && namesz == 4 && std::memcmp(b + off + 12, "GNU", 4) == 0) {
              static const char kHex[] = "0123456789abcdef";
              for (uint32_t k = 0; k < descsz && desc + k < p.p_memsz; ++k) {
                hex->push_back(kHex[b[desc + k] >> 4]);
                hex->push_back(kHex[b[desc + k] & 15]);
              }
              return 1;
            }
            off = desc + ((descsz + 3) & ~3u);
          }
        }
        return 1;  // only the first object: the main executable
      },
      &out);
  return out;
}

// A few bytes of the image that differ from the live process: values the
// client needs to see, patched while the page is written.
struct Patch {
  uint64_t address = 0;
  uint32_t size = 0;
  uint64_t value = 0;
};

class Snapshotter {
 public:
  Snapshotter(const std::string& path, const SnapshotOptions& options) : path_(path), options_(options) {}
  void run();

 private:
  void check_process();
  void prepare_metadata();
  void prepare_gate_stack();
  void prepare_patches();
  bool read_maps();  // copy phase safe: no allocation
  bool reserve_rooms();
  void prepare_layout();
  bool layout_unchanged();
  void copy_segments(int fd);
  bool needs_copy(const server::SegmentPlan& plan, uint64_t addr, const server::AddressMoves& move) const;
  void copy_segment(int fd, size_t index, const server::AddressMoves& move);

  const std::string& path_;
  std::string tmp_path_;
  SnapshotOptions options_;
  image::ImageInfo info_;
  sys::Mapping gate_stack_;
  sys::Mapping scratch_;     // maps text, pagemap buffer, one page for patches
  sys::Mapping stack_room_;  // where the image puts the used part of [stack] (PROT_NONE here)
  sys::Mapping vdso_room_;   // where the image puts the vDSO (its forwarder; PROT_NONE here)
  uint64_t vdso_from_ = 0;   // the vDSO's address here (0: none, or not moved)
  char* maps_text_ = nullptr;
  size_t maps_len_ = 0;
  uint64_t* pagemap_ = nullptr;
  uint8_t* patch_page_ = nullptr;
  sys::UniqueFd pagemap_fd_;
  std::vector<sys::MapEntry> maps_;
  std::vector<server::SegmentPlan> plan_;
  std::vector<server::SegmentPlan> check_plan_;
  uint64_t* digests_ = nullptr;  // in scratch: the copy phase writes no snapshotted memory
  std::vector<Patch> patches_;
  image::EncodedHeader header_;
  uint64_t file_size_ = 0;
  server::SelectInput select_;
};

void Snapshotter::check_process() {
  size_t threads = count_threads();
  if (threads == 0) refuse("cannot count this process's threads: /proc/self/task is unreadable (is /proc mounted?)");
  if (threads != 1)
    refuse(std::to_string(threads) +
           " threads are running; an image is taken from a single-threaded moment: "
           "join or stop the other threads before snapshot() (their kernel state cannot be restored); a pool "
           "the exports need can start lazily, in the first call: threads started inside calls run as part of "
           "the subcontext (docs/threads.md)");
  // Output buffered now must not be lost, nor printed again by each client.
  std::cout.flush();
  std::cerr.flush();
  std::clog.flush();
  std::fflush(nullptr);
  server::BindNowResult b = server::bind_all_plt_slots();
  if (!b.unresolved.empty()) {
    std::string list;
    for (size_t i = 0; i < b.unresolved.size() && i < 5; ++i) list += "\n  " + b.unresolved[i];
    refuse(std::to_string(b.unresolved.size()) + " lazily bound PLT slots could not be resolved:" + list +
           "\nrun the server with LD_BIND_NOW=1 or link it with -Wl,-z,now");
  }
}

void Snapshotter::prepare_metadata() {
  info_.exports = server::registered_exports();
  info_.imports = server::registered_imports();
  if (info_.exports.empty()) refuse("no exports declared; use SUBCTX_EXPORT(fn) or sbc_export() first");
  if (options_.syscalls.size() > image::kMaxSyscallRules)
    refuse(std::to_string(options_.syscalls.size()) + " system call rules; at most " +
           std::to_string(image::kMaxSyscallRules));
  for (const SyscallRule& r : options_.syscalls) {
    if (std::string why = syscall_rule_problem(r); !why.empty()) refuse("system call rule: " + why);
    if (r.action == SyscallRule::Action::Allow)
      refuse("system call rule \"allow " + r.syscall + "\": " + image::kImageRulesNarrowOnly);
    info_.syscall_rules.push_back({r.syscall, static_cast<uint8_t>(r.action),
                                   static_cast<uint32_t>(r.action == SyscallRule::Action::Deny ? r.error : 0)});
  }
  // First, while every open descriptor is the server's own: the snapshot's
  // files (the image, pagemap) are opened later.
  info_.identity = server::collect_identity(dropped_fds(options_));
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  info_.creator_path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
  info_.build_id = build_id_of_main();
  server::stamp_machine(info_);
  if (options_.spawns || g_declared_spawns.load(std::memory_order_relaxed)) info_.flags |= image::kFlagSpawns;
  info_.libc = std::string("glibc ") + gnu_get_libc_version();
  uint64_t tcb;
  __asm__("mov %%fs:0, %0" : "=r"(tcb));
  info_.thread.tcb = tcb;
  info_.thread.stdout_file = reinterpret_cast<uint64_t>(stdout);
  info_.thread.stderr_file = reinterpret_cast<uint64_t>(stderr);
  info_.thread.fflush_fn = reinterpret_cast<uint64_t>(&fflush);
  HostVdso v = host_vdso();
  info_.vdso.base = v.base;
  info_.vdso.size = v.size;
  info_.vdso.symbols = std::move(v.symbols);
}

void Snapshotter::prepare_gate_stack() {
  size_t size = image::page_round_up(options_.gate_stack_size < 64 * 1024 ? 64 * 1024 : options_.gate_stack_size);
  gate_stack_ =
      sys::map_memory(nullptr, size + image::kGateGuardSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (!gate_stack_) refuse("cannot allocate the gate stack: " + sys::errno_text(errno));
  if (mprotect(gate_stack_.get(), image::kGateGuardSize, PROT_NONE) != 0) refuse("cannot protect the gate stack guard");
  select_.gate_guard = gate_stack_.begin();
  select_.gate_guard_size = image::kGateGuardSize;
  select_.gate_stack_lo = gate_stack_.begin() + image::kGateGuardSize;
  select_.gate_stack_hi = gate_stack_.end();
  info_.thread.gate_stack_lo = select_.gate_stack_lo;
  info_.thread.gate_stack_hi = select_.gate_stack_hi;
}

void Snapshotter::prepare_patches() {
  // Make the subcontext's sbrk() fail without a system call: its brk would
  // move the client's program break.  malloc then falls back to mmap.
  if (void* curbrk = dlsym(RTLD_DEFAULT, "__curbrk"))
    patches_.push_back({reinterpret_cast<uint64_t>(curbrk), 8, ~uint64_t{0}});
  // The kernel updates the client thread's rseq area, not the image's: mark
  // the image's cpu_id unknown so sched_getcpu() asks the (forwarded) vDSO.
  auto* rseq_offset = static_cast<const ptrdiff_t*>(dlsym(RTLD_DEFAULT, "__rseq_offset"));
  auto* rseq_size = static_cast<const unsigned*>(dlsym(RTLD_DEFAULT, "__rseq_size"));
  if (rseq_offset && rseq_size && *rseq_size >= 8)
    patches_.push_back({info_.thread.tcb + static_cast<uint64_t>(*rseq_offset) + 4, 4, 0xffffffffu});
  // The import stubs find a call's frame in the slot at the gate stack's
  // top, in the image only: here the slot stays 0, and a stub called in
  // this process says so (docs/callbacks.md).
  if (!info_.imports.empty())
    patches_.push_back({reinterpret_cast<uint64_t>(&subctx_import_slot), 8,
                        info_.thread.gate_stack_hi - image::kImportSlotBelowTop});
}

bool Snapshotter::read_maps() {
  sys::UniqueFd fd(open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  maps_len_ = 0;
  while (true) {
    if (maps_len_ == kMapsBufferSize) return false;
    ssize_t n = read(fd.get(), maps_text_ + maps_len_, kMapsBufferSize - maps_len_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    maps_len_ += static_cast<size_t>(n);
  }
  maps_.clear();
  return sys::parse_proc_maps(std::string_view(maps_text_, maps_len_), maps_, maps_.capacity(), nullptr);
}

// Where the image puts what it moves (server/region_select.hpp), kept free
// here by PROT_NONE reservations (select_segments copies none): the used
// part of [stack], to a range the kernel chose for an ordinary mapping
// (below the libraries); a vDSO the kernel put just above the stack (before
// Linux 6.11), above the libraries (server::vdso_destination).  True when
// a reservation was made (the maps changed).
bool Snapshotter::reserve_rooms() {
  bool made = false;
  const auto [lo, hi] = server::used_stack(maps_, select_.stack_pointer);
  if (hi - lo > stack_room_.size()) {
    stack_room_ = sys::map_memory(nullptr, hi - lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    if (!stack_room_) refuse("cannot reserve room for the image's copy of the stack: " + sys::errno_text(errno));
    select_.stack_to = stack_room_.begin();
    made = true;
  }
  if (const uint64_t to =
          info_.vdso.base && !vdso_from_ ? server::vdso_destination(maps_, info_.vdso.base, info_.vdso.size) : 0) {
    vdso_room_ = sys::map_memory(reinterpret_cast<void*>(to), info_.vdso.size, PROT_NONE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE);
    if (vdso_room_ && vdso_room_.begin() == to) {
      vdso_from_ = info_.vdso.base;
      info_.vdso.base = to;
      made = true;
    } else {
      vdso_room_.reset();  // the forwarder stays where the vDSO is
    }
  }
  return made;
}

void Snapshotter::prepare_layout() {
  uint64_t sp;
  __asm__("mov %%rsp, %0" : "=r"(sp));
  select_.stack_pointer = sp;
  select_.exclude_lo = scratch_.begin();
  select_.exclude_hi = scratch_.end();
  bool read = read_maps();
  if (read && reserve_rooms()) read = read_maps();
  if (!read) refuse("cannot read /proc/self/maps (or more than " + std::to_string(maps_.capacity()) + " mappings)");
  std::string why;
  if (!server::select_segments(maps_, select_, plan_, &why)) refuse(why);
  server::segment_records(plan_, info_.segments);
  if (info_.segments.size() > kMaxSegments) refuse("more than " + std::to_string(kMaxSegments) + " segments");
  std::fill_n(digests_, info_.segments.size(), 0);
  // Encode once to learn the header size, then again with the offsets.
  header_ = image::encode_header(info_);
  file_size_ = image::layout_segments(info_, header_.data_start);
  header_ = image::encode_header(info_);
}

bool Snapshotter::layout_unchanged() {
  if (!read_maps()) return false;
  if (!server::select_segments(maps_, select_, check_plan_, nullptr)) return false;
  return check_plan_ == plan_;
}

void Snapshotter::run() {
  check_process();
  prepare_metadata();
  prepare_gate_stack();
  prepare_patches();
  // Whole pages: its ends are cut out of whatever mapping it merged with.
  scratch_ = sys::map_memory(nullptr,
                             image::page_round_up(kMapsBufferSize + kPagemapEntries * 8 + kPageSize + kMaxSegments * 8),
                             PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (!scratch_) refuse("cannot allocate snapshot buffers: " + sys::errno_text(errno));
  maps_text_ = reinterpret_cast<char*>(scratch_.bytes());
  pagemap_ = reinterpret_cast<uint64_t*>(scratch_.bytes() + kMapsBufferSize);
  patch_page_ = scratch_.bytes() + kMapsBufferSize + kPagemapEntries * 8;
  digests_ = reinterpret_cast<uint64_t*>(patch_page_ + kPageSize);
  maps_.reserve(kMaxSegments + 64);
  plan_.reserve(kMaxSegments);
  check_plan_.reserve(kMaxSegments);
  pagemap_fd_ = sys::UniqueFd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));

  // A unique temporary name beside the image, renamed over it at the end:
  // clients never see a half-written image.
  // The image holds the server's memory, environment and secrets: 0600 by
  // default (as core dumps are), options_.mode less the umask when wider.
  if ((options_.mode & ~0644u) || !(options_.mode & 0400u))
    refuse("SnapshotOptions::mode " + sys::octal(options_.mode) +
           " is not a mode for an image: the owner reads (and may write) it, group and others may at most read "
           "it (clients refuse images others can write); use 0600 (the default), 0640 or 0644");
  image::TempImageFile file(path_, options_.mode);
  tmp_path_ = file.temp_path();

  bool stable = false;
  for (int attempt = 0; attempt < kPrepareAttempts && !stable; ++attempt) {
    prepare_layout();
    // ---- copy phase: no allocation from here on ----
    stable = layout_unchanged();
  }
  if (!stable) refuse("the process's mappings kept changing while the snapshot was prepared");

  copy_segments(file.fd());
  image::finish_image_file(file.fd(), tmp_path_, header_, digests_, info_.segments.size(), file_size_);
  // ---- end of copy phase ----
  file.commit();
}

void Snapshotter::copy_segments(int fd) {
  const server::AddressMoves move = server::address_moves(plan_, info_.vdso, vdso_from_);
  for (size_t i = 0; i < info_.segments.size(); ++i) copy_segment(fd, i, move);
}

// Whether the page at addr (of a segment planned as plan) is written from a
// stable copy in patch_page_, with its patches and the stack's move made:
// the stack holds this very function's frames, which change between hashing
// and writing.
bool Snapshotter::needs_copy(const server::SegmentPlan& plan, uint64_t addr, const server::AddressMoves& move) const {
  if (plan.kind == image::SegmentKind::Stack) return true;
  for (const auto& p : patches_)
    if (p.address >= addr && p.address + p.size <= addr + kPageSize) return true;
  return move && server::AddressMoves::scanned(plan) && move.finds(reinterpret_cast<const uint8_t*>(addr));
}

void Snapshotter::copy_segment(int fd, size_t index, const server::AddressMoves& move) {
  const image::SegmentRecord& seg = info_.segments[index];
  const server::SegmentPlan& plan = plan_[index];
  if (seg.filesz == 0) {
    digests_[index] = image::zero_segment_digest(seg.memsz);
    return;
  }
  image::SegmentWriter out(fd, seg.offset, tmp_path_);
  const bool use_pagemap = plan.anonymous && pagemap_fd_;
  const uint64_t src_end = plan.source + seg.memsz;  // read from the source (a moved stack: where it is)
  for (uint64_t chunk = plan.source; chunk < src_end; chunk += kPagemapEntries * kPageSize) {
    const uint64_t pages = std::min<uint64_t>(kPagemapEntries, (src_end - chunk) / kPageSize);
    bool have_pagemap = use_pagemap && sys::raw_pread_exact(pagemap_fd_.get(), pagemap_, pages * 8,
                                                            static_cast<off_t>(chunk / kPageSize * 8));
    for (uint64_t k = 0; k < pages; ++k) {
      const uint64_t addr = chunk + k * kPageSize;
      // Bit 63: present, bit 62: swapped.  An anonymous page with neither was
      // never touched and reads as zero: skip it without faulting it in.
      if (have_pagemap && !sys::pagemap::populated(pagemap_[k])) {
        out.hole();
        continue;
      }
      const auto* page = reinterpret_cast<const uint8_t*>(addr);
      if (!needs_copy(plan, addr, move)) {
        out.page(page, addr - plan.source);  // written from where it is, in runs
        continue;
      }
      std::memcpy(patch_page_, page, kPageSize);
      for (const auto& p : patches_)
        if (p.address >= addr && p.address + p.size <= addr + kPageSize)
          std::memcpy(patch_page_ + (p.address - addr), &p.value, p.size);
      if (move && server::AddressMoves::scanned(plan)) move.apply(patch_page_);
      out.write_now(patch_page_, addr - plan.source);
    }
  }
  digests_[index] = out.finish();
}

}  // namespace

void snapshot(const std::string& image_path, const SnapshotOptions& options) { Snapshotter(image_path, options).run(); }

void snapshot_and_exit(const std::string& image_path, const SnapshotOptions& options) {
  try {
    snapshot(image_path, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "subctx: %s\n", e.what());
    std::fflush(stderr);
    _exit(1);
  }
  std::fflush(nullptr);
  _exit(0);
}

}  // namespace subctx

extern "C" int sbc_snapshot(const char* image_path) {
  return subctx::detail::c_call([&] {
    if (!image_path) throw subctx::Error(subctx::Errc::InvalidArgument, "sbc_snapshot: image_path is NULL");
    subctx::snapshot(image_path);
    return 0;
  });
}

extern "C" int sbc_snapshot_drop_fd(int fd) {
  return subctx::detail::c_call([&] {
    if (fd < 0)
      throw subctx::Error(subctx::Errc::InvalidArgument,
                          "sbc_snapshot_drop_fd: descriptor " + std::to_string(fd) + " is negative");
    subctx::add_dropped_fd(fd);
    return 0;
  });
}

extern "C" int sbc_snapshot_declare_spawns(void) {
  subctx::g_declared_spawns.store(true, std::memory_order_relaxed);
  return 0;
}

extern "C" void sbc_snapshot_and_exit(const char* image_path) {
  if (!image_path) {
    std::fprintf(stderr, "subctx: sbc_snapshot_and_exit: image_path is NULL\n");
    _exit(1);
  }
  subctx::snapshot_and_exit(image_path);
}
