// request_map: every check, then all segments mapped or none.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/cpu_features.hpp"
#include "fault/children.hpp"
#include "fault/fault_handler.hpp"
#include "fault/signals.hpp"
#include "fault/syscalls.hpp"
#include "fault/threads.hpp"
#include "image/open_image.hpp"
#include "image/reader.hpp"
#include "matchmaker/identity.hpp"
#include "matchmaker/map_phases.hpp"
#include "matchmaker/prefetch.hpp"
#include "matchmaker/registry.hpp"
#include "matchmaker/reset.hpp"
#include "matchmaker/vdso_forward.hpp"
#include "sys/io.hpp"
#include "sys/proc_maps.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::matchmaker {

using sys::hex;

namespace {

std::string segment_name(const image::SegmentRecord& s, size_t i) {
  return "segment " + std::to_string(i) + " [" + hex(s.vaddr) + "-" + hex(s.end()) + ")" +
         (s.origin.empty() ? std::string() : " (" + sys::printable(s.origin) + ")");
}

[[noreturn]] void throw_conflict(const std::string& path, const std::string& what, uint64_t lo, uint64_t hi) {
  std::string in_the_way;
  sys::SelfMaps maps;
  if (sys::read_self_maps(&maps)) in_the_way = sys::describe_overlap(maps.entries, lo, hi);
  throw AddressConflict("cannot map image " + path + ": its " + what + " overlaps a mapping of this client: " +
                        (in_the_way.empty() ? std::string("(gone by now)") : in_the_way) +
                        "; map the image before that mapping is made, or snapshot the server again");
}

// mmap at exactly addr or throw (conflict or other failure).  what() names
// the range in messages; it is only called on failure (map latency).
template <class What>
sys::Mapping map_fixed(const std::string& path, What what, uint64_t addr, size_t len, int prot, int flags, int fd,
                       off_t off) {
  void* want = reinterpret_cast<void*>(addr);
  void* p = mmap(want, len, prot, flags | MAP_FIXED_NOREPLACE, fd, off);
  if (p == MAP_FAILED) {
    int err = errno;
    if (err == EEXIST) throw_conflict(path, what(), addr, addr + len);
    if (err == EPERM && (prot & PROT_EXEC))
      throw PermissionDenied("cannot map " + what() + " of image " + path +
                             " executable: the file system holding it is mounted noexec; move the image");
    throw SystemError("cannot map " + what() + " of image " + path + ": " + sys::errno_text(err));
  }
  sys::Mapping m(p, len);
  if (p != want) throw_conflict(path, what(), addr, addr + len);  // kernels without NOREPLACE
  return m;
}

// ---- the vDSO forwarder ------------------------------------------------

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U  // Linux 6.3: executable memfd, said explicitly (glibc 2.36 lacks it)
#endif

// The sealed memfd holding `bytes` (ForwarderFile), made on first use
// (*made: newest in r.forwarder_files) and kept for the next maps; null
// where memfds cannot be made here (the page is then written into
// anonymous memory).
const ForwarderFile* forwarder_file(Registry& r, const std::vector<uint8_t>& bytes, bool* made) {
  constexpr size_t kKept = 4;
  if (r.forwarder_files_refused) return nullptr;
  for (auto it = r.forwarder_files.begin(); it != r.forwarder_files.end(); ++it) {
    if (it->bytes != bytes) continue;
    // Still ours?  A client that closed it (closefrom) may have another
    // file under that number now: that one is neither mapped nor closed.
    struct stat st;
    if (fstat(it->fd.get(), &st) == 0 && st.st_dev == it->dev && st.st_ino == it->ino &&
        static_cast<uint64_t>(st.st_size) == bytes.size())
      return &*it;
    it->fd.release();
    r.forwarder_files.erase(it);
    break;
  }
  sys::UniqueFd fd(memfd_create("subctx-vdso-forwarder", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
  if (!fd && errno == EINVAL) fd.reset(memfd_create("subctx-vdso-forwarder", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  struct stat st;
  // Sealed: neither this process nor anyone it passes the file to can
  // change the bytes every map of it shares.
  if (!fd || !sys::pwrite_exact(fd.get(), bytes.data(), bytes.size(), 0) ||
      fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0 ||
      fstat(fd.get(), &st) != 0) {
    r.forwarder_files_refused = true;
    return nullptr;
  }
  if (r.forwarder_files.size() == kKept) r.forwarder_files.erase(r.forwarder_files.begin());
  r.forwarder_files.push_back({bytes, std::move(fd), st.st_dev, st.st_ino});
  *made = true;
  return &r.forwarder_files.back();
}

// ---- the client's stack growth room ----------------------------------
// The main thread's [stack] grows down on demand, up to RLIMIT_STACK, and
// the kernel refuses to grow it within stack_guard_gap of another mapping.
// A segment in that room is accepted by mmap but makes ordinary stack
// growth crash the client later, far from the map.

// stack_guard_gap=N (pages) from the kernel command line; 256 by default.
uint64_t stack_guard_gap_bytes() {
  uint64_t pages = 256;
  if (FILE* f = std::fopen("/proc/cmdline", "re")) {
    char line[4096];
    if (std::fgets(line, sizeof line, f))
      for (const char* at = line; (at = std::strstr(at, "stack_guard_gap=")); ++at)
        if (at == line || at[-1] == ' ') pages = std::strtoull(at + std::strlen("stack_guard_gap="), nullptr, 0);
    std::fclose(f);
  }
  return pages * image::kPageSize;
}

// The [stack] mapping of this process ({0, 0}: none); its top never moves.
std::pair<uint64_t, uint64_t> client_stack() {
  sys::SelfMaps maps;
  if (sys::read_self_maps(&maps))
    for (const auto& e : maps.entries)
      if (e.path == "[stack]") return {e.start, e.end};
  return {0, 0};
}

// Refuses an image with a segment (or vDSO forwarder) where the client's
// stack may grow or must keep its guard gap free (AddressConflict).
void check_stack_room(const std::string& path, const image::ImageInfo& info) {
  static const uint64_t stack_top = client_stack().second;  // read once: a fork keeps it, an exec starts afresh
  static const uint64_t guard = stack_guard_gap_bytes();
  if (!stack_top) return;
  struct rlimit rl {};
  // Unlimited counts as the usual 8 MiB: the kernel then lays mappings out
  // bottom-up, far below the stack.
  const uint64_t limit =
      getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : uint64_t{8} << 20;
  const uint64_t room_lo = stack_top > limit + guard ? stack_top - limit - guard : 0;
  // what() names the range: only built for the message (map latency).
  auto check = [&](uint64_t lo, uint64_t hi, auto what) {
    if (!(lo < stack_top && room_lo < hi)) return;
    const auto [now_lo, now_hi] = client_stack();
    throw AddressConflict("cannot map image " + path + ": its " + what() +
                          " lies where this client's stack may grow: the client's [stack] [" + hex(now_lo) + "-" +
                          hex(now_hi) + ") may grow down to " + hex(stack_top - limit) + " (RLIMIT_STACK " +
                          std::to_string(limit >> 10) + " KiB) and the kernel keeps " + std::to_string(guard >> 10) +
                          " KiB (stack_guard_gap) free below it, so no image may map anything in [" + hex(room_lo) +
                          "-" + hex(stack_top) +
                          "): ordinary stack growth would crash the client later; snapshot the "
                          "server again, or lower the client's stack limit (ulimit -s)");
  };
  for (size_t i = 0; i < info.segments.size(); ++i)
    check(info.segments[i].vaddr, info.segments[i].end(), [&] { return segment_name(info.segments[i], i); });
  if (info.vdso.base)
    check(info.vdso.base, info.vdso.base + info.vdso.size,
          [&] { return "vDSO forwarder [" + hex(info.vdso.base) + "-" + hex(info.vdso.base + info.vdso.size) + ")"; });
}

}  // namespace

MapPhaseTimes* map_phase_sink = nullptr;

namespace {

// The image's imports, unbound; calls find the frame through the slot at
// the gate stack's top (docs/callbacks.md).
void add_imports(detail::SubcontextState& s, const image::ImageInfo& info) {
  for (const image::ImportRecord& rec : info.imports) {
    detail::ImportBinding b;
    b.name = rec.name;
    b.signature_text = rec.signature;
    parse_signature(rec.signature, &b.signature, nullptr);  // validated by the reader
    int reg = 0;
    for (ValueType t : b.signature.args) {
      if (t == ValueType::F64) continue;
      if (t == ValueType::Str) b.str_args |= 1u << reg;
      ++reg;
    }
    s.imports.push_back(std::move(b));
  }
  if (!info.imports.empty()) s.import_slot = info.thread.gate_stack_hi - image::kImportSlotBelowTop;
}

// The image's segments at their addresses, appended to maps (from_file: a
// view of the image).  All or nothing: a failure destroys the mappings made
// so far (the caller's maps).  Each segment is a view of the file and/or
// anonymous memory (its tail); one mmap per run of them that the kernel
// merges into one mapping anyway (adjacent, same permissions, views at
// consecutive file offsets or both anonymous).  A run that fails is mapped
// again piece by piece, so that the error names the segment in the way.
void map_segments(const std::string& path, const image::ImageInfo& info, int fd, std::vector<sys::Mapping>& maps,
                  std::vector<bool>& from_file) {
  struct Piece {
    uint64_t addr, len, offset;
    int prot;
    bool file;
    size_t segment;
  };
  std::vector<Piece> pieces;
  std::vector<std::pair<size_t, size_t>> runs;  // [first, last) of pieces
  pieces.reserve(info.segments.size() * 2);
  for (size_t i = 0; i < info.segments.size(); ++i) {
    const auto& s = info.segments[i];
    const uint64_t file_part = image::page_round_up(s.filesz);
    if (s.filesz) pieces.push_back({s.vaddr, file_part, s.offset, s.prot, true, i});
    if (s.memsz > file_part) pieces.push_back({s.vaddr + file_part, s.memsz - file_part, 0, s.prot, false, i});
  }
  for (size_t k = 0; k < pieces.size(); ++k) {
    const Piece& p = pieces[k];
    if (k > 0) {
      const Piece& q = pieces[k - 1];
      if (q.addr + q.len == p.addr && q.prot == p.prot && q.file == p.file &&
          (!p.file || q.offset + q.len == p.offset)) {
        runs.back().second = k + 1;
        continue;
      }
    }
    runs.emplace_back(k, k + 1);
  }
  maps.reserve(pieces.size() + 1);
  auto map_piece = [&](const Piece& p, uint64_t len) {
    auto name = [&] { return segment_name(info.segments[p.segment], p.segment); };
    maps.push_back(map_fixed(path, name, p.addr, len, p.prot, p.file ? MAP_PRIVATE : MAP_PRIVATE | MAP_ANONYMOUS,
                             p.file ? fd : -1, static_cast<off_t>(p.offset)));
    from_file.push_back(p.file);
  };
  for (const auto& [first, last] : runs) {
    const Piece& p = pieces[first];
    const uint64_t len = pieces[last - 1].addr + pieces[last - 1].len - p.addr;
    if (last - first == 1) {
      map_piece(p, len);
      continue;
    }
    void* want = reinterpret_cast<void*>(p.addr);
    void* got = mmap(want, len, p.prot, (p.file ? MAP_PRIVATE : MAP_PRIVATE | MAP_ANONYMOUS) | MAP_FIXED_NOREPLACE,
                     p.file ? fd : -1, static_cast<off_t>(p.offset));
    if (got == want) {
      maps.emplace_back(got, len);
      from_file.push_back(p.file);
      continue;
    }
    if (got != MAP_FAILED) munmap(got, len);  // kernels without NOREPLACE
    for (size_t k = first; k < last; ++k) map_piece(pieces[k], pieces[k].len);
  }
}

// The vDSO forwarder at the server vDSO's address (docs/format.md), appended
// to maps.  *forwarder_armed: a forwarder file was made for this map (kept
// for the next maps only if this one succeeds).
void map_vdso_forwarder(Registry& r, detail::SubcontextState& state, const image::ImageInfo& info,
                        const std::vector<uint8_t>& vdso_page, bool* forwarder_armed, const std::string& path,
                        std::vector<sys::Mapping>& maps, std::vector<bool>& from_file) {
  if (!info.vdso.base) return;
  auto name = [&] {
    return "vDSO forwarder [" + hex(info.vdso.base) + "-" + hex(info.vdso.base + info.vdso.size) + ")";
  };
  // A private view of the forwarder's memfd where one can be made and
  // mapped executable here (nothing written, no page touched); else an
  // anonymous page written here.
  void* want = reinterpret_cast<void*>(info.vdso.base);
  if (const ForwarderFile* f = forwarder_file(r, vdso_page, forwarder_armed)) {
    void* p = mmap(want, info.vdso.size, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED_NOREPLACE, f->fd.get(), 0);
    if (p == want) {
      maps.emplace_back(p, info.vdso.size);
      from_file.push_back(false);
      state.forwarder_dev = f->dev;
      state.forwarder_ino = f->ino;
    } else if (p != MAP_FAILED) {
      munmap(p, info.vdso.size);  // kernels without NOREPLACE: map_fixed below reports the conflict
    } else if (errno != EEXIST) {
      r.forwarder_files_refused = true;  // not executable here (a security module?)
    }
  }
  if (!state.forwarder_ino) {
    sys::Mapping v = map_fixed(path, name, info.vdso.base, info.vdso.size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::memcpy(v.get(), vdso_page.data(), vdso_page.size());
    if (mprotect(v.get(), v.size(), PROT_READ | PROT_EXEC) != 0)
      throw SystemError("cannot protect the vDSO forwarder: " + sys::errno_text(errno));
    maps.push_back(std::move(v));
    from_file.push_back(false);
  }
}

// What calls need from the image: exports, imports, the thread record.
void add_call_state(detail::SubcontextState& s, const image::ImageInfo& info) {
  for (uint32_t i = 0; i < info.exports.size(); ++i) {
    detail::ExportEntry e;
    e.record = info.exports[i];
    parse_signature(e.record.signature, &e.signature, nullptr);  // validated by the reader
    s.export_index.add(e.record.name, i);
    s.exports.push_back(std::move(e));
  }
  s.call_allowed_generation = std::make_unique<std::atomic<uint64_t>[]>(info.exports.size());
  add_imports(s, info);
  s.tcb = info.thread.tcb;
  // Calls enter below the import slot (format.hpp), whether the image has
  // imports or not.
  s.stack_top = info.thread.gate_stack_hi - image::kImportSlotBelowTop;
  s.stack_lo = info.thread.gate_stack_lo;
  s.stack_guard_lo = s.stack_lo >= image::kGateGuardSize ? s.stack_lo - image::kGateGuardSize : 0;
  s.sub_stdout = reinterpret_cast<FILE*>(info.thread.stdout_file);
  s.sub_stderr = reinterpret_cast<FILE*>(info.thread.stderr_file);
  s.fflush_fn = info.thread.fflush_fn;
}

// A malformed SUBCTX_* variable or the subcontexts limit refuse every map.
void refuse_before_opening(const Registry& r, const std::string& path) {
  if (!r.env_error.empty())
    throw Error(Errc::InvalidArgument, "cannot map image " + path + ": " + r.env_error +
                                           "; fix or unset it (a malformed SUBCTX_* variable fails every map)");
  if (r.subcontexts.size() >= r.limits.subcontexts)
    throw LimitExceeded("cannot map image " + path + ": " + std::to_string(r.subcontexts.size()) +
                        " subcontexts are mapped; limit 'subcontexts per client' (SUBCTX_MAX_SUBCONTEXTS) is " +
                        std::to_string(r.limits.subcontexts));
}

// The same file mapped already (by another path, or through a link).
void refuse_mapped_file(const Registry& r, const struct stat& st, const std::string& path) {
  for (const auto& [h, s] : r.subcontexts)
    if (s->dev == st.st_dev && s->ino == st.st_ino)
      throw AlreadyMapped("image " + path + " is already mapped in this client as subcontext " + std::to_string(h) +
                          " (from " + s->path + "); use that handle, or unmap it first");
}

// A copy of a mapped image (the same header digest): its ranges would meet.
void refuse_mapped_copy(const Registry& r, const image::ImageInfo& info, const std::string& path) {
  for (const auto& [h, s] : r.subcontexts)
    if (s->info.header_digest == info.header_digest)
      throw AlreadyMapped("image " + path + " is a copy of " + s->path + ", already mapped as subcontext " +
                          std::to_string(h));
}

void refuse_missing_cpu_features(const image::ImageInfo& info, const std::string& path) {
  const uint64_t missing = info.cpu_features & ~host_cpu_features();
  if (missing)
    throw CpuMismatch("image " + path + " was made on a CPU with features this one lacks: " +
                      cpu_feature_names(missing) + "; snapshot the server on this kind of machine");
}

// The state of a subcontext about to be mapped: its names and its file.
std::shared_ptr<detail::SubcontextState> new_state(const std::string& path, const std::string& given,
                                                   const std::string& canonical, const struct stat& st, bool verified) {
  auto state = std::make_shared<detail::SubcontextState>();
  state->path = path;
  state->given_path = given;
  state->canonical_path = canonical;
  state->segments_verified = verified;
  state->owner = st.st_uid;
  state->dev = st.st_dev;
  state->ino = st.st_ino;
  state->stamp = stamp_of(st);
  return state;
}

}  // namespace

std::shared_ptr<detail::SubcontextState> map_image(Registry& r, const std::string& given, const MapOptions& options) {
  PhaseClock clock;
  const std::string path = sys::printable_path(given);  // for messages: a newline in it forges no log line
  refuse_before_opening(r, path);
  struct stat st;
  std::string canonical;  // the opened file's own path: what the policy decides on
  sys::UniqueFd fd = image::open_image_to_map(given, &st, &canonical);
  refuse_mapped_file(r, st, path);
  clock.mark(MapPhase::Open);

  image::ReadLimits rl{r.limits.segments, r.limits.exports, r.limits.image_size};
  image::ImageInfo info =
      image::read_image(image::PrefetchedFileSource(fd.get(), static_cast<uint64_t>(st.st_size)), path, rl);
  refuse_mapped_copy(r, info, path);
  clock.mark(MapPhase::Read);

  // A digest rule pins the whole image: its data is checked before any rule decides.
  const policy::Rule* pin = policy::rule_naming_digest(r.policy.get(), info.header_digest);
  if (pin) verify_pinned_image(*r.policy, *pin, fd.get(), info, "cannot map image " + path);
  policy::Decision d = policy::decide_map(r.policy.get(), {canonical, st.st_uid, info.header_digest});
  if (!d.allowed) throw PolicyDenied("cannot map image " + path + ": " + d.why);

  refuse_missing_cpu_features(info, path);
  clock.mark(MapPhase::Decide);

  auto state = new_state(path, given, canonical, st, /*verified=*/pin != nullptr);

  // The forwarder's contents are built before anything is mapped.
  std::vector<uint8_t> vdso_page;
  if (info.vdso.base) {
    if (!r.host_vdso) r.host_vdso = host_vdso();
    vdso_page.assign(info.vdso.size, 0);
    std::string why;
    if (!build_vdso_forwarder(info.vdso, *r.host_vdso, vdso_page.data(), &why))
      throw BadImage("image " + path + ": " + why);
  }

  check_stack_room(path, info);
  clock.mark(MapPhase::Prepare);

  std::vector<sys::Mapping> maps;
  std::vector<bool> from_file;
  map_segments(path, info, fd.get(), maps, from_file);
  clock.mark(MapPhase::Segments);
  // A forwarder file this map makes is kept for the next maps only if this
  // one succeeds: a refused map leaves no descriptor behind.
  struct DropIfRefused {
    Registry& r;
    bool armed = false;
    ~DropIfRefused() {
      if (armed) r.forwarder_files.pop_back();
    }
  } forwarder_made{r};
  map_vdso_forwarder(r, *state, info, vdso_page, &forwarder_made.armed, path, maps, from_file);
  clock.mark(MapPhase::Vdso);
  // Before the protection backend's setup: the segments still have their own permissions.
  if (r.prefetch) prefetch_hot_pages(fd.get(), info, maps, from_file, r.prefetch == 2);
  clock.mark(MapPhase::Prefetch);

  add_call_state(*state, info);
  state->info = std::move(info);
  state->segments = sys::Segments(std::move(maps), std::move(from_file), state->dev, state->ino);
  state->raw_lo = fault::allocate_raw_call_addresses(state->exports.size());
  state->map_options = options;
  // Quotas: the map options', else the allowing policy rule's, else the environment's.
  if (!state->map_options.quota && d.rule && (d.rule->max_dirty_pages || d.rule->max_mapped_bytes))
    state->map_options.quota = Quota{d.rule->max_dirty_pages.value_or(0), d.rule->max_mapped_bytes.value_or(0)};
  clock.mark(MapPhase::State);
  setup_containment(r, *state, state->map_options);
  clock.mark(MapPhase::Containment);
  restore_identity(r, *state, options);  // the server's files and working directory
  clock.mark(MapPhase::Identity);
  setup_protection(r, *state, options);  // on failure state unmaps everything
  clock.mark(MapPhase::Protection);
  forwarder_made.armed = false;
  state->image_fd = std::move(fd);
  // A digest rule that names it verified the image above: this never reads it.
  update_may_spawn(r, *state, "cannot map image " + path);
  return state;
}

bool unmap_state(detail::SubcontextState& s, bool wait_for_call) {
  std::unique_lock lock(s.call_lock, std::defer_lock);
  if (wait_for_call) {
    refuse_from_inside_call(s, "unmap()");  // a callback's or a signal handler's: it would wait for itself
    lock.lock();
  } else if (!lock.try_lock()) {
    return false;  // a call is running on another thread: its memory stays
  }
  if (!s.mapped) return true;
  PhaseClock clock;
  s.mapped = false;
  // Its threads end first: they run its code and their handlers read its view.
  fault::stop_threads(s);
  fault::stop_children(s);  // none is left to the client, a zombie or running
  // The handlers forget the subcontext before its ranges are free for others.
  fault::withdraw_view(s);
  // The reserved gaps go in the same munmap calls as their neighbours.
  // While every mmap, munmap, mremap and mprotect of subcontext code was
  // seen (Syscall User Dispatch) and none touched the segments, they are as
  // made: no /proc/self/maps read (tens of us).
  std::vector<sys::Mapping> gaps = s.protection.take_reservations();
  std::vector<std::pair<uint64_t, uint64_t>> gap_ranges;
  for (const sys::Mapping& g : gaps) gap_ranges.emplace_back(g.begin(), g.end());
  const bool intact = fault::syscall_dispatch_available() && !s.sub_maps.lost && !s.sub_maps.layout_changed &&
                      s.protection.released().empty();
  const sys::Segments::Ranges ranges = s.segments.ranges_to_unmap(intact, gap_ranges);
  clock.mark(MapPhase::UnmapLayout);
  s.segments.unmap_ranges(ranges);
  for (auto& g : gaps) g.release();
  // What subcontext code mapped during calls goes with it.
  for (uint32_t i = 0; i < s.sub_maps.count; ++i)
    sys::Mapping(reinterpret_cast<void*>(s.sub_maps.ranges[i].first),
                 s.sub_maps.ranges[i].second - s.sub_maps.ranges[i].first)
        .reset();
  s.sub_maps.count = 0;
  s.sub_maps.bytes = 0;
  clock.mark(MapPhase::UnmapMemory);
  // And its descriptors: nothing in the client refers to them.
  close_descriptors(s);
  s.protection.reset();  // reserved gaps, protection key
  clock.mark(MapPhase::UnmapRest);
  return true;
}

}  // namespace subctx::matchmaker
