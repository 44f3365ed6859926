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
#include "fault/fault_handler.hpp"
#include "fault/signals.hpp"
#include "image/open_image.hpp"
#include "image/reader.hpp"
#include "matchmaker/identity.hpp"
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
  struct rlimit rl{};
  // Unlimited counts as the usual 8 MiB: the kernel then lays mappings out
  // bottom-up, far below the stack.
  const uint64_t limit =
      getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : uint64_t{8} << 20;
  const uint64_t room_lo = stack_top > limit + guard ? stack_top - limit - guard : 0;
  auto check = [&](uint64_t lo, uint64_t hi, const std::string& what) {
    if (!(lo < stack_top && room_lo < hi)) return;
    const auto [now_lo, now_hi] = client_stack();
    throw AddressConflict("cannot map image " + path + ": its " + what +
                          " lies where this client's stack may grow: the client's [stack] [" + hex(now_lo) + "-" +
                          hex(now_hi) + ") may grow down to " + hex(stack_top - limit) + " (RLIMIT_STACK " +
                          std::to_string(limit >> 10) + " KiB) and the kernel keeps " + std::to_string(guard >> 10) +
                          " KiB (stack_guard_gap) free below it, so no image may map anything in [" + hex(room_lo) +
                          "-" + hex(stack_top) + "): ordinary stack growth would crash the client later; snapshot the "
                          "server again, or lower the client's stack limit (ulimit -s)");
  };
  for (size_t i = 0; i < info.segments.size(); ++i)
    check(info.segments[i].vaddr, info.segments[i].end(), segment_name(info.segments[i], i));
  if (info.vdso.base)
    check(info.vdso.base, info.vdso.base + info.vdso.size,
          "vDSO forwarder [" + hex(info.vdso.base) + "-" + hex(info.vdso.base + info.vdso.size) + ")");
}

}  // namespace

std::shared_ptr<detail::SubcontextState> map_image(Registry& r, const std::string& given, const MapOptions& options) {
  const std::string path = sys::printable_path(given);  // for messages: a newline in it forges no log line
  if (!r.env_error.empty())
    throw Error(Errc::InvalidArgument, "cannot map image " + path + ": " + r.env_error +
                                           "; fix or unset it (a malformed SUBCTX_* variable fails every map)");
  if (r.subcontexts.size() >= r.limits.subcontexts)
    throw LimitExceeded("cannot map image " + path + ": " + std::to_string(r.subcontexts.size()) +
                        " subcontexts are mapped; limit 'subcontexts per client' (SUBCTX_MAX_SUBCONTEXTS) is " +
                        std::to_string(r.limits.subcontexts));
  struct stat st;
  std::string canonical;  // the opened file's own path: what the policy decides on
  sys::UniqueFd fd = image::open_image_to_map(given, &st, &canonical);
  for (const auto& [h, s] : r.subcontexts)
    if (s->dev == st.st_dev && s->ino == st.st_ino)
      throw AlreadyMapped("image " + path + " is already mapped in this client as subcontext " + std::to_string(h) +
                          " (from " + s->path + "); use that handle, or unmap it first");

  image::ReadLimits rl{r.limits.segments, r.limits.exports, r.limits.image_size};
  image::ImageInfo info = image::read_image(image::FileSource(fd.get(), static_cast<uint64_t>(st.st_size)), path, rl);
  for (const auto& [h, s] : r.subcontexts)
    if (s->info.header_digest == info.header_digest)
      throw AlreadyMapped("image " + path + " is a copy of " + s->path + ", already mapped as subcontext " +
                          std::to_string(h));

  // A digest rule pins the whole image: its data is checked before any rule decides.
  const policy::Rule* pin = policy::rule_naming_digest(r.policy.get(), info.header_digest);
  if (pin) verify_pinned_image(*r.policy, *pin, fd.get(), info, "cannot map image " + path);
  policy::Decision d = policy::decide_map(r.policy.get(), {canonical, st.st_uid, info.header_digest});
  if (!d.allowed) throw PolicyDenied("cannot map image " + path + ": " + d.why);

  const uint64_t missing = info.cpu_features & ~host_cpu_features();
  if (missing)
    throw CpuMismatch("image " + path + " was made on a CPU with features this one lacks: " +
                      cpu_feature_names(missing) + "; snapshot the server on this kind of machine");

  auto state = std::make_shared<detail::SubcontextState>();
  state->path = path;
  state->given_path = given;
  state->canonical_path = canonical;
  state->segments_verified = pin != nullptr;
  state->owner = st.st_uid;
  state->dev = st.st_dev;
  state->ino = st.st_ino;
  state->stamp = stamp_of(st);

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

  // All or nothing: a failure below destroys the mappings made so far.
  std::vector<sys::Mapping> maps;
  std::vector<bool> from_file;
  maps.reserve(info.segments.size() * 2 + 1);
  for (size_t i = 0; i < info.segments.size(); ++i) {
    const auto& s = info.segments[i];
    const uint64_t file_part = image::page_round_up(s.filesz);
    auto name = [&] { return segment_name(s, i); };
    if (s.filesz) {
      maps.push_back(map_fixed(path, name, s.vaddr, file_part, s.prot, MAP_PRIVATE, fd.get(),
                               static_cast<off_t>(s.offset)));
      from_file.push_back(true);
    }
    if (s.memsz > file_part) {
      maps.push_back(map_fixed(path, name, s.vaddr + file_part, s.memsz - file_part, s.prot,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      from_file.push_back(false);
    }
  }
  if (info.vdso.base) {
    auto name = [&] { return "vDSO forwarder [" + hex(info.vdso.base) + "-" + hex(info.vdso.base + info.vdso.size) + ")"; };
    sys::Mapping v = map_fixed(path, name,
                               info.vdso.base, info.vdso.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    std::memcpy(v.get(), vdso_page.data(), vdso_page.size());
    if (mprotect(v.get(), v.size(), PROT_READ | PROT_EXEC) != 0)
      throw SystemError("cannot protect the vDSO forwarder: " + sys::errno_text(errno));
    maps.push_back(std::move(v));
    from_file.push_back(false);
  }

  for (uint32_t i = 0; i < info.exports.size(); ++i) {
    detail::ExportEntry e;
    e.record = info.exports[i];
    parse_signature(e.record.signature, &e.signature, nullptr);  // validated by the reader
    state->export_index.emplace(e.record.name, i);
    state->exports.push_back(std::move(e));
  }
  state->call_allowed_generation = std::make_unique<std::atomic<uint64_t>[]>(info.exports.size());
  state->tcb = info.thread.tcb;
  state->stack_top = info.thread.gate_stack_hi;
  state->stack_lo = info.thread.gate_stack_lo;
  state->sub_stdout = reinterpret_cast<FILE*>(info.thread.stdout_file);
  state->sub_stderr = reinterpret_cast<FILE*>(info.thread.stderr_file);
  state->fflush_fn = info.thread.fflush_fn;
  state->info = std::move(info);
  state->mappings = std::move(maps);
  state->from_file = std::move(from_file);
  state->raw_lo = fault::allocate_raw_call_addresses(state->exports.size());
  state->map_options = options;
  // Quotas: the map options', else the allowing policy rule's, else the environment's.
  if (!state->map_options.quota && d.rule && (d.rule->max_dirty_pages || d.rule->max_mapped_bytes))
    state->map_options.quota = Quota{d.rule->max_dirty_pages.value_or(0), d.rule->max_mapped_bytes.value_or(0)};
  setup_containment(r, *state, state->map_options);
  restore_identity(r, *state, options);  // the server's files and working directory
  setup_protection(r, *state, options);  // on failure state unmaps everything
  state->image_fd = std::move(fd);
  return state;
}

namespace {

// The ranges to munmap: the anonymous mappings as made, and of the views of
// the image only what still is one.  Subcontext code may have unmapped part
// of a segment (free() of a large block) and the client may have mapped its
// own memory in the hole since: that must survive the unmap.
std::vector<std::pair<uint64_t, uint64_t>> ranges_to_unmap(const detail::SubcontextState& s) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  sys::SelfMaps self;
  const bool have_maps = sys::read_self_maps(&self);
  const std::vector<sys::MapEntry>& maps = self.entries;
  for (size_t i = 0; i < s.mappings.size(); ++i) {
    const sys::Mapping& m = s.mappings[i];
    if (!s.from_file[i] || !have_maps) {
      out.emplace_back(m.begin(), m.end());
      continue;
    }
    for (const auto& v : maps)
      if (v.overlaps(m.begin(), m.end()) && v.inode == s.ino && v.dev_major == major(s.dev) &&
          v.dev_minor == minor(s.dev))
        out.emplace_back(std::max<uint64_t>(v.start, m.begin()), std::min<uint64_t>(v.end, m.end()));
  }
  // One munmap per run of adjacent ranges: the kernel's cost is per call.
  std::sort(out.begin(), out.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& r : out) {
    if (!merged.empty() && r.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  return merged;
}

}  // namespace

bool unmap_state(detail::SubcontextState& s, bool wait_for_call) {
  std::unique_lock lock(s.call_mutex, std::defer_lock);
  if (wait_for_call) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return false;  // a call is running on another thread: its memory stays
  }
  if (!s.mapped) return true;
  s.mapped = false;
  fault::unregister_active(s.tcb);
  // The fault handler forgets the ranges before they are free for others.
  fault::withdraw_view(s.handle);
  for (const auto& [lo, hi] : ranges_to_unmap(s)) sys::Mapping(reinterpret_cast<void*>(lo), hi - lo).reset();
  // What subcontext code mapped during calls goes with it.
  for (uint32_t i = 0; i < s.sub_maps.count; ++i)
    sys::Mapping(reinterpret_cast<void*>(s.sub_maps.ranges[i].first),
                 s.sub_maps.ranges[i].second - s.sub_maps.ranges[i].first).reset();
  s.sub_maps.count = 0;
  s.sub_maps.bytes = 0;
  // And its descriptors: nothing in the client refers to them.
  close_descriptors(s);
  for (auto& m : s.mappings) m.release();
  s.mappings.clear();
  s.from_file.clear();
  s.protection.reset();  // reserved gaps, protection key
  return true;
}

}  // namespace subctx::matchmaker
