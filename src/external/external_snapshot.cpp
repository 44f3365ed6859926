// snapshot_process(): the image of another process, from outside.
//
// Order: check the thread count, attach (the target stops where it is),
// read its registers and maps, find its ELF objects (in the dynamic
// linker's order), refuse a target stopped inside malloc or holding a stdio
// lock, resolve the exports and the libc symbols, resolve lazily bound PLT
// slots by calling the target's own dlsym (the only step that runs target
// code; before anything is copied), read the maps again, then copy every
// page with process_vm_readv while the target is stopped, and let it go (or
// kill it).  Nothing of the target's own memory is written: the calls run
// on a scratch mapping the command adds for them and removes after them.
#include "external/external_snapshot.hpp"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "common/cpu_features.hpp"
#include "common/vdso.hpp"
#include "external/chunk_reader.hpp"
#include "external/objects.hpp"
#include "external/tracee.hpp"
#include "image/digest.hpp"
#include "image/writer.hpp"
#include "server/identity.hpp"
#include "server/refuse.hpp"
#include "server/region_select.hpp"
#include "subctx/error.hpp"
#include "subctx/signature.hpp"
#include "sys/io.hpp"
#include "sys/pagemap.hpp"
#include "sys/proc_maps.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::external {

namespace {

using image::kPageSize;

constexpr uint64_t kStackScanBytes = 32 * 1024;  // above the stack pointer: the frames that are live now
constexpr size_t kMaxFiles = 4096;               // FILE objects walked in _IO_list_all
constexpr size_t kMaxLinkMaps = 4096;            // link_map entries followed in _r_debug's chain
constexpr size_t kSlotsPerBatch = 256;           // lazy PLT slots resolved per batch of calls in the target
constexpr size_t kBatchNameBytes = 32 * 1024;    // and their names (+ records) per batch: half the data area

using server::refuse;

// glibc's allocator entry points: a target stopped inside one of them may
// hold an arena lock that every export calling malloc would wait for.
constexpr const char* kMallocFunctions[] = {
    "malloc",         "free",          "calloc",   "realloc",   "reallocarray", "memalign",
    "posix_memalign", "aligned_alloc", "valloc",   "pvalloc",   "malloc_trim",  "malloc_usable_size",
    "malloc_info",    "malloc_stats",  "mallinfo", "mallinfo2", "mallopt",      "cfree"};
// The dynamic linker's entry points that change its list of objects: a
// dlsym injected while one runs would read it half built (its lock is
// recursive, and the injected call runs on the same thread: it never waits).
constexpr const char* kLoaderFunctions[] = {"dlopen", "dlmopen", "dlclose"};
constexpr uint64_t kRDebugStateOffset = 24;  // struct r_debug's r_state; RT_CONSISTENT is 0

struct Patch {
  uint64_t address = 0;
  uint32_t size = 0;
  uint64_t value = 0;
};

size_t count_threads(pid_t pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return 0;
  size_t n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

// The state letter of /proc/PID/stat (R, S, D, T, t, Z, X), or 0.
char process_state(pid_t pid) {
  std::string text;
  try {
    text = sys::read_text_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return 0;
  }
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() ? text[paren + 2] : 0;
}

void check_options(const ExternalOptions& o) {
  if (o.pid <= 0)
    throw Error(Errc::InvalidArgument, "snapshot --pid: " + std::to_string(o.pid) + " is not a process id");
  if (o.exports.empty())
    throw Error(Errc::InvalidArgument, "snapshot --pid: no exports named; give at least one --export NAME:SIGNATURE");
  for (size_t i = 0; i < o.exports.size(); ++i) {
    const auto& e = o.exports[i];
    if (e.name.empty() || e.name.size() > image::kMaxName ||
        std::any_of(e.name.begin(), e.name.end(), [](char c) { return c < 0x21 || c > 0x7e; }))
      throw Error(Errc::InvalidArgument, "export name \"" + sys::printable(e.name) + "\": 1 to " +
                                             std::to_string(image::kMaxName) + " printable ASCII characters");
    Signature sig;
    std::string why;
    if (!parse_signature(e.signature, &sig, &why))
      throw Error(Errc::InvalidArgument, "export \"" + e.name + "\": " + why);
    for (size_t j = 0; j < i; ++j)
      if (o.exports[j].name == e.name) throw Error(Errc::InvalidArgument, "export \"" + e.name + "\" is named twice");
  }
  if ((o.mode & ~0644u) || !(o.mode & 0400u))
    throw Error(Errc::InvalidArgument, "image mode " + sys::octal(o.mode) + ": use 0600 (the default), 0640 or 0644");
}

// A return address: the bytes before it are a call instruction.
bool after_call(const ProcessObjects& objs, uint64_t addr) {
  const LoadedObject* o = objs.object_at(addr);
  uint8_t b[7];
  if (!o || addr < o->bias + 7 || !o->elf->read_vaddr(addr - o->bias - 7, b, sizeof b)) return false;
  if (b[2] == 0xe8) return true;                                                    // call rel32
  if (b[1] == 0xff && (b[2] & 0x38) == 0x10) return true;                           // call *disp32(%rip) / [reg+disp32]
  if (b[5] == 0xff && (b[6] & 0xf8) == 0xd0) return true;                           // call *%reg
  if (b[4] == 0x41 && b[5] == 0xff && (b[6] & 0xf8) == 0xd0) return true;           // call *%r8-15
  if (b[4] == 0xff && (b[5] & 0x38) == 0x10 && (b[5] & 0xc0) == 0x40) return true;  // call *disp8(%reg)
  return false;
}

class ExternalSnapshotter {
 public:
  explicit ExternalSnapshotter(const ExternalOptions& o) : opt_(o), proc_("/proc/" + std::to_string(o.pid)) {}
  ExternalReport run();

 private:
  void read_maps();
  void check_registers();
  void check_locks();
  template <class Fn>
  void for_each_file(Fn&& fn);
  void record_thread();
  void resolve_exports();
  struct Lazy {  // a lazily bound PLT slot
    const LoadedObject* object;
    const PltSlot* slot;
    uint64_t address;
  };
  void resolve_plt();
  void resolve_batch(const std::vector<Lazy>& lazy, size_t from, size_t to, uint64_t dlsym, uint64_t dlvsym,
                     std::vector<uint64_t>* targets);
  void prepare_patches();
  void record_vdso();
  uint64_t free_range_below_libraries(uint64_t size) const;
  void place_gate_stack();
  uint64_t reserve_below_libraries(uint64_t size);
  void add_made_up_mapping(uint64_t lo, uint64_t hi, int prot);
  void place_stack_and_vdso();
  void write_image();
  std::vector<ChunkReader::Job> copy_jobs() const;
  void copy_segment(const image::TempImageFile& file, size_t index, ChunkReader& reader,
                    const server::AddressMoves& move, uint64_t* digest_out);
  std::string libc_version();
  void find_syscall_instruction();
  void order_objects();
  void take_image();

  const ExternalOptions& opt_;
  std::string proc_;
  StopRequests stop_;  // declared before t_: the target is let go before this process's mask is put back
  std::unique_ptr<Tracee> t_;
  std::string maps_text_;
  std::vector<sys::MapEntry> maps_;
  std::unique_ptr<ProcessObjects> objs_;
  image::ImageInfo info_;
  std::vector<Patch> patches_;
  server::SelectInput select_;
  uint64_t vdso_from_ = 0;  // the target's vDSO address when the image puts it elsewhere (0: not moved)
  std::vector<server::SegmentPlan> plan_;
  ExternalReport report_;
  sys::UniqueFd pagemap_;
};

void ExternalSnapshotter::read_maps() {
  maps_text_ = sys::read_text_file(proc_ + "/maps");
  std::string why;
  maps_.clear();
  if (!sys::parse_proc_maps(maps_text_, maps_, 1u << 22, &why))
    refuse("cannot parse " + proc_ + "/maps: " + why + "; is /proc mounted as usual (not hidepid)?");
}

void ExternalSnapshotter::check_registers() {
  const user_regs_struct& r = t_->regs();
  if (r.cs != 0x33)
    refuse("the target runs 32-bit code (code segment " + sys::hex(r.cs) +
           "); subctx images hold x86-64 processes only");
  uint64_t first = 0;
  if (!t_->read_value(r.fs_base, &first) || first != r.fs_base)
    refuse("the target's thread pointer " + sys::hex(r.fs_base) +
           " is not a glibc thread control block (its first word is not its own address); the image format "
           "records glibc's thread layout");
}

// Stopped inside malloc (the instruction pointer, or a return address in
// the live frames), or holding a stdio lock: an export needing that lock
// would wait for ever in every client.
void ExternalSnapshotter::check_locks() {
  const user_regs_struct& r = t_->regs();
  struct Range {
    const char* name;
    uint64_t lo, hi;
  };
  std::vector<Range> ranges;
  auto add = [&](const char* name) {
    uint64_t size = 0;
    const uint64_t a = objs_->find(name, &size);
    if (a && size) ranges.push_back({name, a, a + size});
  };
  for (const char* name : kMallocFunctions) add(name);
  for (const char* name : kLoaderFunctions) add(name);
  if (const uint64_t r_debug = objs_->find("_r_debug")) {
    int32_t state = 0;
    if (t_->read_value(r_debug + kRDebugStateOffset, &state) && state != 0)
      refuse(
          "the target is inside dlopen() or dlclose(): its _r_debug says the dynamic linker is changing its list of "
          "objects, which the snapshot's own lookups (dlsym) would read half built; snapshot the target while it "
          "waits elsewhere (in read(2), pause(), poll(2)), or try again");
  }
  auto inside = [&](uint64_t a) -> const char* {
    for (const auto& rg : ranges)
      if (a >= rg.lo && a < rg.hi) return rg.name;
    return nullptr;
  };
  const std::string advice =
      "; an export calling malloc would wait for its lock for ever, and the snapshot's own dlsym calls would read "
      "the dynamic linker's state half built: snapshot the target while it waits elsewhere "
      "(in read(2), pause(), poll(2)), or try again";
  if (const char* f = inside(r.rip))
    refuse("the target is stopped inside " + std::string(f) + "() (at " + sys::hex(r.rip) + ")" + advice);
  std::vector<uint64_t> words(kStackScanBytes / 8);
  const size_t got = t_->read(r.rsp, words.data(), kStackScanBytes) / 8;
  for (size_t i = 0; i < got; ++i)
    if (const char* f = inside(words[i]); f && after_call(*objs_, words[i]))
      refuse("the target is stopped inside " + std::string(f) + "() (a return address into it, " + sys::hex(words[i]) +
             ", lies " + std::to_string(i * 8) + " bytes above its stack pointer)" + advice);

  // Every FILE glibc knows: a held lock is a stdio function in progress.
  for_each_file([&](uint64_t file, const FILE& f) {
    constexpr int kUserLock = 0x8000;  // _IO_USER_LOCK: the FILE has no lock (__fsetlocking)
    if (!(f._flags & kUserLock) && f._lock) {
      int lock = 0;
      if (t_->read_value(reinterpret_cast<uint64_t>(f._lock), &lock) && lock != 0)
        refuse("the target is inside a stdio function: the lock of its FILE " + sys::hex(file) + " (descriptor " +
               std::to_string(f._fileno) +
               ") is held (blocked in fgets() or scanf() on it, say); an export using that "
               "stream would find it mid-operation: snapshot the target while it waits in read(2), pause() or poll(2) "
               "instead");
    }
  });
}

// fn(address, copy) for every FILE in glibc's _IO_list_all of the target,
// up to kMaxFiles (a damaged chain must not keep the target stopped).
template <class Fn>
void ExternalSnapshotter::for_each_file(Fn&& fn) {
  const uint64_t list = objs_->find("_IO_list_all");
  uint64_t file = 0;
  if (!list || !t_->read_value(list, &file)) return;
  for (size_t n = 0; file && n < kMaxFiles; ++n) {
    FILE f;
    if (!t_->read_exact(file, &f, sizeof f)) break;
    fn(file, f);
    file = reinterpret_cast<uint64_t>(f._chain);
  }
}

void ExternalSnapshotter::record_thread() {
  info_.thread.tcb = t_->regs().fs_base;
  // stdout and stderr as the program sees them: the executable's copy
  // (a copy relocation) first, else libc's.
  uint64_t var = objs_->find("stdout"), value = 0;
  if (var && t_->read_value(var, &value)) info_.thread.stdout_file = value;
  var = objs_->find("stderr");
  value = 0;
  if (var && t_->read_value(var, &value)) info_.thread.stderr_file = value;
  info_.thread.fflush_fn = objs_->find("fflush");

  // Output still buffered in the target stays the target's: it writes it
  // when it flushes.  The image's copy of each buffer is emptied (write
  // pointer back to the base) so that no client prints it again.
  for_each_file([&](uint64_t file, const FILE& f) {
    if (f._IO_write_ptr <= f._IO_write_base || !f._IO_write_base) return;
    const uint64_t pending = static_cast<uint64_t>(f._IO_write_ptr - f._IO_write_base);
    patches_.push_back({file + offsetof(FILE, _IO_write_ptr), 8, reinterpret_cast<uint64_t>(f._IO_write_base)});
    const std::string which = file == info_.thread.stdout_file ? "stdout"
                              : file == info_.thread.stderr_file
                                  ? "stderr"
                                  : "the FILE on descriptor " + std::to_string(f._fileno);
    report_.notes.push_back(std::to_string(pending) + " bytes of output buffered in the target's " + which +
                            " are left to the target (it writes them when it flushes) and left out of the image");
  });
}

void ExternalSnapshotter::resolve_exports() {
  for (const auto& e : opt_.exports) {
    const uint64_t a = objs_->resolve_export(e.name);
    bool exec = false;
    for (const auto& m : maps_) exec |= a >= m.start && a < m.end && (m.prot & PROT_EXEC);
    if (!exec)
      refuse("export \"" + e.name + "\" resolves to " + sys::hex(a) +
             ", which is not in executable memory of the target");
    image::ExportRecord r;
    r.name = e.name;
    r.address = a;
    r.signature = e.signature;
    info_.exports.push_back(r);
    report_.exports.push_back({e.name, a});
  }
}

// A lazily bound PLT slot still points at its PLT entry's "push <index>"
// (after an endbr64 in IBT PLTs): resolved here by the target's own
// dlsym/dlvsym in its global scope, as the in-process snapshot's bind-now
// does (src/server/bind_now.cpp); the image gets the address, the target's
// slot is left as it was.
// dlsym(RTLD_DEFAULT, name) or dlvsym(RTLD_DEFAULT, name, version) of the
// slots [from, to), called in the target in one batch (one by one where
// the batch cannot run); *targets gets the addresses, 0 where none.
void ExternalSnapshotter::resolve_batch(const std::vector<Lazy>& lazy, size_t from, size_t to, uint64_t dlsym,
                                        uint64_t dlvsym, std::vector<uint64_t>* targets) {
  std::string names;
  std::vector<size_t> offsets;
  for (size_t i = from; i < to; ++i) {
    offsets.push_back(names.size());
    names += lazy[i].slot->symbol + '\0' + lazy[i].slot->version + '\0';
  }
  const uint64_t base = t_->batch_data_address(to - from, names.size());
  std::vector<Tracee::Call> calls;
  for (size_t i = from; i < to; ++i) {
    const uint64_t name = base + offsets[i - from];
    const bool versioned = !lazy[i].slot->version.empty();
    calls.push_back({versioned ? dlvsym : dlsym, 0 /* RTLD_DEFAULT */, name, name + lazy[i].slot->symbol.size() + 1});
  }
  std::vector<uint64_t> got = t_->call_each(calls, names);
  if (got.empty()) {  // the batch loop may not run here: one call each
    for (size_t i = from; i < to; ++i) {
      const std::string data = lazy[i].slot->symbol + '\0' + lazy[i].slot->version + '\0';
      const uint64_t at = t_->data_address(data.size());
      got.push_back(t_->call(calls[i - from].fn, 0, at, at + lazy[i].slot->symbol.size() + 1, data));
    }
  }
  std::copy(got.begin(), got.end(), targets->begin() + static_cast<long>(from));
}

void ExternalSnapshotter::resolve_plt() {
  std::vector<Lazy> lazy;
  for (const auto& o : objs_->objects()) {
    if (o.elf->bind_now()) continue;
    for (const PltSlot& s : o.elf->plt_slots()) {
      uint64_t value = 0;
      if (!t_->read_value(o.bias + s.r_offset, &value)) continue;
      if (value < o.bias) continue;
      uint8_t code[9];
      if (!o.elf->read_vaddr(value - o.bias, code, sizeof code)) continue;
      const uint8_t* p = code;
      static const uint8_t kEndbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
      if (std::memcmp(p, kEndbr64, 4) == 0) p += 4;
      uint32_t imm;
      std::memcpy(&imm, p + 1, 4);
      if (p[0] == 0x68 && imm == s.index) lazy.push_back({&o, &s, o.bias + s.r_offset});
    }
  }
  if (lazy.empty()) return;
  const uint64_t dlsym = objs_->find("dlsym"), dlvsym = objs_->find("dlvsym");
  std::vector<uint64_t> targets(lazy.size());
  if (dlsym && dlvsym)
    for (size_t at = 0, end; at < lazy.size(); at = end) {
      // At most kSlotsPerBatch slots, and names that fit the call's data
      // area with room to spare (long C++ names).
      size_t bytes = 0;
      for (end = at; end < lazy.size() && end - at < kSlotsPerBatch; ++end) {
        bytes += lazy[end].slot->symbol.size() + lazy[end].slot->version.size() + 2 + 32;
        if (bytes > kBatchNameBytes && end > at) break;
      }
      resolve_batch(lazy, at, end, dlsym, dlvsym, &targets);
    }
  std::vector<std::string> unresolved;
  for (size_t i = 0; i < lazy.size(); ++i) {
    const Lazy& l = lazy[i];
    if (!targets[i]) {
      if (l.slot->weak && dlsym && dlvsym) continue;  // weak and absent: calling it fails either way
      unresolved.push_back((l.object->executable ? std::string("main executable") : l.object->path) + ": " +
                           l.slot->symbol + (l.slot->version.empty() ? "" : "@" + l.slot->version));
      continue;
    }
    patches_.push_back({l.address, 8, targets[i]});
    ++report_.plt_slots_resolved;
  }
  if (!unresolved.empty()) {
    std::string list;
    for (size_t i = 0; i < unresolved.size() && i < 5; ++i) list += "\n  " + unresolved[i];
    refuse(std::to_string(unresolved.size()) + " lazily bound PLT slots could not be resolved" +
           (dlsym ? std::string(":") : std::string(" (the target has no dlsym/dlvsym to resolve them with):")) + list +
           "\nrun the target with LD_BIND_NOW=1 or link it with -Wl,-z,now");
  }
}

std::string ExternalSnapshotter::libc_version() {
  if (const uint64_t fn = objs_->find("gnu_get_libc_version"))
    if (const uint64_t s = t_->call(fn, 0, 0, 0)) {
      const std::string v = t_->read_c_string(s, 32);
      if (!v.empty()) return "glibc " + v;
    }
  return "glibc";
}

// The same bytes the in-process snapshot patches (docs/format.md): the
// subcontext's sbrk() fails (__curbrk = ~0) and its rseq cpu_id reads -1.
void ExternalSnapshotter::prepare_patches() {
  if (const uint64_t curbrk = objs_->find("__curbrk")) patches_.push_back({curbrk, 8, ~uint64_t{0}});
  const uint64_t off_at = objs_->find("__rseq_offset"), size_at = objs_->find("__rseq_size");
  int64_t off = 0;
  uint32_t size = 0;
  if (off_at && size_at && t_->read_value(off_at, &off) && t_->read_value(size_at, &size) && size >= 8)
    patches_.push_back({info_.thread.tcb + static_cast<uint64_t>(off) + 4, 4, 0xffffffffu});
}

void ExternalSnapshotter::record_vdso() {
  for (const auto& m : maps_) {
    if (m.path != "[vdso]") continue;
    std::vector<uint8_t> bytes(m.end - m.start);
    if (!t_->read_exact(m.start, bytes.data(), bytes.size()))
      refuse("cannot read the target's vDSO at " + sys::hex(m.start) + " (" + sys::errno_text(errno) +
             "); a security module may forbid reading it: run this command as root");
    std::string why;
    info_.vdso.base = m.start;
    info_.vdso.size = m.end - m.start;
    if (!parse_vdso_symbols(bytes.data(), bytes.size(), &info_.vdso.symbols, &why))
      refuse("the target's " + why + "; its kernel's vDSO is not one subctx can record: report it");
  }
}

// The highest free range of `size` bytes below the target's lowest library
// (where its next mmap would have gone), a page away from its neighbours in
// maps_ (made-up mappings included); 0 when there is none.
uint64_t ExternalSnapshotter::free_range_below_libraries(uint64_t size) const {
  uint64_t top = UINT64_MAX;
  for (const auto& o : objs_->objects())
    if (!o.executable) top = std::min(top, o.lo);
  if (top == UINT64_MAX) top = objs_->executable().lo;
  for (uint64_t hi = top; hi > size + 2 * kPageSize;) {
    const uint64_t cand_hi = hi - kPageSize, cand_lo = cand_hi - size;
    uint64_t clash = 0;
    for (const auto& m : maps_)
      if (m.start < cand_hi + kPageSize && cand_lo - kPageSize < m.end) clash = std::max(clash, m.start);
    if (!clash) return cand_lo;
    hi = clash;
  }
  return 0;
}

// The gate stack the calls run on does not exist in the target: it is added
// to the image below its lowest library, as two made-up mappings (guard,
// stack) that select_segments treats as the in-process snapshot's own.
void ExternalSnapshotter::place_gate_stack() {
  const uint64_t size = image::page_round_up(std::max<uint64_t>(opt_.gate_stack_size, 64 * 1024));
  const uint64_t total = size + image::kGateGuardSize;
  const uint64_t lo = free_range_below_libraries(total);
  if (!lo)
    refuse("no room in the target's address space below its libraries for the " + std::to_string(total >> 20) +
           " MiB gate stack the image needs (the calls run on it): the target has mapped nearly all of it; "
           "snapshot it before it maps that much (earlier in its start-up)");
  select_.gate_guard = lo;
  select_.gate_guard_size = image::kGateGuardSize;
  select_.gate_stack_lo = lo + image::kGateGuardSize;
  select_.gate_stack_hi = lo + total;
  info_.thread.gate_stack_lo = select_.gate_stack_lo;
  info_.thread.gate_stack_hi = select_.gate_stack_hi;
  add_made_up_mapping(lo, select_.gate_stack_lo, PROT_NONE);
  add_made_up_mapping(select_.gate_stack_lo, select_.gate_stack_hi, PROT_READ | PROT_WRITE);
}

// A mapping the target does not have, in maps_ by address: what the image
// adds (the gate stack) or keeps free (select_segments copies no PROT_NONE).
void ExternalSnapshotter::add_made_up_mapping(uint64_t lo, uint64_t hi, int prot) {
  sys::MapEntry m;
  m.start = lo;
  m.end = hi;
  m.prot = prot;
  maps_.insert(std::find_if(maps_.begin(), maps_.end(), [&](const sys::MapEntry& e) { return e.start > lo; }), m);
}

// A PROT_NONE made-up mapping of `size` bytes below the target's libraries
// (select_segments copies none), which later placements avoid; its address,
// or 0 where there is no room.
uint64_t ExternalSnapshotter::reserve_below_libraries(uint64_t size) {
  const uint64_t lo = free_range_below_libraries(size);
  if (lo) add_made_up_mapping(lo, lo + size, PROT_NONE);
  return lo;
}

// The used part of the target's [stack] moves below its libraries, and a
// vDSO in the stack area above them, as the in-process snapshot's do
// (server/region_select.hpp), after the gate stack took its room.  Where
// there is no room they stay.
void ExternalSnapshotter::place_stack_and_vdso() {
  const auto [lo, hi] = server::used_stack(maps_, select_.stack_pointer);
  if (hi > lo) select_.stack_to = reserve_below_libraries(hi - lo);
  if (const uint64_t to = info_.vdso.base ? server::vdso_destination(maps_, info_.vdso.base, info_.vdso.size) : 0) {
    vdso_from_ = info_.vdso.base;
    info_.vdso.base = to;
  }
}

// Whether segment `index` is copied from the target (the others are zeros:
// the gate stack's guard has no file part, and the gate stack is new).
bool copied(const image::SegmentRecord& seg, const server::SegmentPlan& plan) {
  return seg.filesz != 0 && plan.kind != image::SegmentKind::GateStack;
}

// The reads of every copied segment, in order, in chunks of up to 1 MiB.
std::vector<ChunkReader::Job> ExternalSnapshotter::copy_jobs() const {
  std::vector<ChunkReader::Job> jobs;
  for (size_t i = 0; i < info_.segments.size(); ++i) {
    const image::SegmentRecord& seg = info_.segments[i];
    if (!copied(seg, plan_[i])) continue;
    const uint64_t end = plan_[i].source + seg.memsz;  // read where it is (a moved stack)
    for (uint64_t at = plan_[i].source; at < end; at += ChunkReader::kChunkPages * kPageSize)
      jobs.push_back({at, std::min<uint64_t>(ChunkReader::kChunkPages, (end - at) / kPageSize), plan_[i].anonymous});
  }
  return jobs;
}

void ExternalSnapshotter::copy_segment(const image::TempImageFile& file, size_t index, ChunkReader& reader,
                                       const server::AddressMoves& move, uint64_t* digest_out) {
  const image::SegmentRecord& seg = info_.segments[index];
  const server::SegmentPlan& plan = plan_[index];
  if (!copied(seg, plan)) {
    *digest_out = image::zero_segment_digest(seg.memsz);
    return;
  }
  image::SegmentWriter out(file.fd(), seg.offset, file.temp_path());  // errors name the file written
  const bool scanned = move && server::AddressMoves::scanned(plan);
  const uint64_t src_end = plan.source + seg.memsz;
  for (uint64_t chunk = plan.source; chunk < src_end; chunk += ChunkReader::kChunkPages * kPageSize) {
    stop_.check();
    const ChunkReader::Chunk* c = reader.next();
    if (!c || c->job->addr != chunk)
      throw Error(Errc::System, "external snapshot: the copy's chunks came out of order (a bug)");
    if (c->failed_at)
      refuse("cannot read the target's memory at " + sys::hex(c->failed_at) + " (mapping \"" +
             std::string(plan.origin) + "\" " + sys::hex(plan.source) + "-" + sys::hex(src_end) +
             "): " + sys::errno_text(c->err));
    uint8_t* buf = const_cast<uint8_t*>(c->data.data());  // the slot is this thread's until the next next()
    for (uint64_t k = 0; k < c->job->pages; ++k) {
      if (!c->present[k]) {
        out.hole();
        continue;
      }
      const uint64_t addr = chunk + k * kPageSize;
      uint8_t* page = buf + k * kPageSize;
      // patches_ is sorted by address (write_image): only the page's own.
      auto p = std::lower_bound(patches_.begin(), patches_.end(), addr,
                                [](const Patch& q, uint64_t a) { return q.address < a; });
      for (; p != patches_.end() && p->address < addr + kPageSize; ++p)
        if (p->address + p->size <= addr + kPageSize) std::memcpy(page + (p->address - addr), &p->value, p->size);
      if (scanned) move.apply(page);
      out.page(page, addr - plan.source);
    }
    out.flush();  // the chunk's buffer goes back to the reader
  }
  *digest_out = out.finish();
  report_.data_bytes += out.data_bytes();
}

void ExternalSnapshotter::write_image() {
  select_.stack_pointer = t_->regs().rsp;
  place_stack_and_vdso();
  std::string why;
  plan_.reserve(maps_.size() + 2);
  if (!server::select_segments(maps_, select_, plan_, &why)) refuse(why);
  server::segment_records(plan_, info_.segments);
  image::EncodedHeader header = image::encode_header(info_);
  const uint64_t file_size = image::layout_segments(info_, header.data_start);
  header = image::encode_header(info_);

  // Each copied page looks up only its own patches (about 1,100 PLT slots
  // in a typical program: a scan of them all per page cost ~0.2 s a GiB).
  std::sort(patches_.begin(), patches_.end(), [](const Patch& a, const Patch& b) { return a.address < b.address; });
  image::TempImageFile file(opt_.image_path, opt_.mode);
  pagemap_ = sys::UniqueFd(open((proc_ + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<uint64_t> digests(info_.segments.size());
  {
    ChunkReader reader(*t_, pagemap_ ? pagemap_.get() : -1, copy_jobs());
    const server::AddressMoves move = server::address_moves(plan_, info_.vdso, vdso_from_);
    for (size_t i = 0; i < info_.segments.size(); ++i) copy_segment(file, i, reader, move, &digests[i]);
  }
  image::finish_image_file(file.fd(), file.temp_path(), header, digests.data(), digests.size(), file_size);
  file.commit();
  report_.segments = info_.segments.size();
  report_.virtual_size = info_.virtual_size();
  report_.file_size = file_size;
}

// The global scope's order, as the dynamic linker searches it: the
// link_map chain of _r_debug (the executable, preloaded libraries, then
// the needed ones breadth first).  Lookups by name (malloc for the lock
// checks, stdout, dlsym) then find what the program itself calls, an
// interposed malloc included, rather than the lowest-addressed definition.
void ExternalSnapshotter::order_objects() {
  const uint64_t r_debug = objs_->find("_r_debug");
  uint64_t map = 0;
  if (!r_debug || !t_->read_value(r_debug + 8, &map)) return;  // r_version, then r_map
  std::vector<uint64_t> dynamic;
  for (size_t n = 0; map && n < kMaxLinkMaps; ++n) {
    uint64_t lm[4];  // l_addr, l_name, l_ld, l_next
    if (!t_->read_exact(map, lm, sizeof lm)) break;
    dynamic.push_back(lm[2]);
    map = lm[3];
  }
  objs_->order_by(dynamic);
}

// The libc's `syscall` function holds a `syscall` instruction: the injected
// system calls are made there, and the injected calls return to it.
void ExternalSnapshotter::find_syscall_instruction() {
  const LoadedObject* libc = nullptr;
  const LoadedObject* where = nullptr;
  uint64_t size = 0;
  objs_->find("gnu_get_libc_version", nullptr, &libc);
  const uint64_t fn = objs_->find("syscall", &size, &where);
  if (!fn || where != libc || size < 2 || size > 256) return;
  uint8_t code[256];
  if (!t_->read_exact(fn, code, size)) return;
  for (uint64_t i = 0; i + 1 < size; ++i)
    if (code[i] == 0x0f && code[i + 1] == 0x05) return t_->set_syscall_instruction(fn + i);
}

ExternalReport ExternalSnapshotter::run() {
  check_options(opt_);
  const size_t threads = count_threads(opt_.pid);
  if (threads == 0) refuse("process " + std::to_string(opt_.pid) + " does not exist (no " + proc_ + "/task)");
  if (process_state(opt_.pid) == 'Z' || process_state(opt_.pid) == 'X')
    refuse("process " + std::to_string(opt_.pid) +
           " has exited (a zombie its parent has not reaped); nothing to snapshot");
  const std::string thread_advice =
      " threads; an image is taken from a single-threaded moment: snapshot the program before it starts threads "
      "(or after it joins them)";
  if (threads > 1) refuse("process " + std::to_string(opt_.pid) + " has " + std::to_string(threads) + thread_advice);
  t_ = std::make_unique<Tracee>(opt_.pid);
  try {
    if (const size_t n = count_threads(opt_.pid); n != 1)
      refuse("process " + std::to_string(opt_.pid) + " has " + std::to_string(n) + thread_advice);
    take_image();
  } catch (const Error&) {
    // Whatever failed first (a /proc file, a read, a call), a target that
    // has exited meanwhile is the reason to report.
    std::string how;
    if (t_->gone(&how))
      refuse("process " + std::to_string(opt_.pid) + " exited during the snapshot (" + how + "); no image was written");
    throw;
  }
  if (opt_.then == Then::Kill) t_->kill();
  else t_->detach();
  return report_;
}

void ExternalSnapshotter::take_image() {
  stop_.check();
  read_maps();
  objs_ = std::make_unique<ProcessObjects>(opt_.pid, maps_);
  check_registers();
  if (!objs_->find("gnu_get_libc_version"))
    refuse(
        "the target does not use glibc's shared C library (statically linked, or another libc such as musl): "
        "the image format records glibc's thread, stdio and malloc state");
  order_objects();
  find_syscall_instruction();
  check_locks();
  resolve_exports();
  record_thread();
  resolve_plt();
  info_.libc = libc_version();
  // The calls are over: their stack leaves the target, and the maps are
  // read again (dlsym may have grown the heap).
  t_->end_calls();
  stop_.check();
  read_maps();
  prepare_patches();
  record_vdso();
  server::IdentitySource src;
  src.proc_dir = proc_;
  src.pid = opt_.pid;
  src.self = false;
  src.drop_advice = "close it in the target before the snapshot, or declare it dropped (--drop-fd N)";
  src.moment = "the snapshot";
  info_.identity = server::collect_identity(src, opt_.dropped_fds);
  info_.creator_path = objs_->executable().path;
  info_.build_id = objs_->executable().elf->build_id_hex();
  server::stamp_machine(info_);
  if (opt_.spawns) info_.flags |= image::kFlagSpawns;
  place_gate_stack();
  write_image();
}

}  // namespace

ExternalReport snapshot_process(const ExternalOptions& options) { return ExternalSnapshotter(options).run(); }

}  // namespace subctx::external
