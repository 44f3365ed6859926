// libFuzzer target for the image reader: any input gives an image that keeps
// every promise the reader makes, or a subctx::Error; never a crash.
//
// Each input is read twice: as it is, and with its header digest recomputed
// (when a digest note can be found), so that mutated headers also reach the
// checks that come after the digest (thread record, exports, vDSO record).
// Accepted images then go through verify_segments and, when they have a vDSO
// record, through the vDSO forwarder the Matchmaker builds from it.
//
// Inputs that neither reading accepts are not added to the corpus (return
// -1), so the fuzzer keeps mutating valid images: one or a few changes to a
// valid image are what reach every check.  A structure-aware mutation (one
// in four) sets an address field of the thread, exports or vDSO note to an
// address near a segment boundary, where the reader's range checks decide.
#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/vdso.hpp"
#include "image/bytes.hpp"
#include "image/reader.hpp"
#include "image/writer.hpp"
#include "matchmaker/vdso_forward.hpp"
#include "subctx/error.hpp"
#include "subctx/signature.hpp"

namespace {

using namespace subctx::image;

// Small enough that verify_segments hashes at most this much memory per input.
const ReadLimits kLimits{/*max_segments=*/512, /*max_exports=*/512, /*max_image_size=*/uint64_t{64} << 20};

#define PROMISE(cond)                                                                \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "read_image accepted an image that breaks: %s\n", #cond); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

const SegmentRecord* segment_at(const ImageInfo& info, uint64_t a, uint64_t len) {
  for (const auto& s : info.segments)
    if (s.contains(a, len)) return &s;
  return nullptr;
}

// What read_image promises about an image it accepts (docs/format.md,
// "Validation").
void check_promises(const ImageInfo& info, size_t file_size) {
  PROMISE(info.version == kFormatVersion);
  PROMISE(!info.segments.empty() && info.segments.size() <= kLimits.max_segments);
  PROMISE(info.file_size == file_size);
  uint64_t total = 0, prev_end = 0;
  for (const auto& s : info.segments) {
    PROMISE(s.vaddr % kPageSize == 0 && s.memsz % kPageSize == 0 && s.offset % kPageSize == 0);
    PROMISE(s.vaddr != 0 && s.memsz != 0);
    PROMISE(s.vaddr < kUserSpaceEnd && s.memsz <= kUserSpaceEnd - s.vaddr);
    PROMISE(s.filesz <= s.memsz);
    PROMISE(s.offset <= file_size && s.filesz <= file_size - s.offset);
    PROMISE(s.vaddr >= prev_end);
    PROMISE(static_cast<uint8_t>(s.kind) <= static_cast<uint8_t>(SegmentKind::GateGuard));
    PROMISE((s.prot & ~7) == 0);
    prev_end = s.end();
    total += s.memsz;
  }
  PROMISE(total <= kLimits.max_image_size);

  const auto& t = info.thread;
  const SegmentRecord* tcb = segment_at(info, t.tcb, 2368);  // the whole thread record (glibc's TCB)
  PROMISE(tcb && (tcb->prot & 2));
  PROMISE(!(t.gate_stack_lo < t.tcb + 2368 && t.tcb < t.gate_stack_hi));
  PROMISE(t.gate_stack_hi > t.gate_stack_lo && t.gate_stack_hi % 16 == 0);
  const SegmentRecord* stack = segment_at(info, t.gate_stack_lo, t.gate_stack_hi - t.gate_stack_lo);
  PROMISE(stack && (stack->prot & 2));
  for (uint64_t f : {t.stdout_file, t.stderr_file}) PROMISE(f == 0 || segment_at(info, f, 216));
  if (t.fflush_fn) {
    const SegmentRecord* s = segment_at(info, t.fflush_fn, 1);
    PROMISE(s && (s->prot & 4));
  }

  PROMISE(info.exports.size() <= kLimits.max_exports);
  std::set<std::string> names;
  for (const auto& e : info.exports) {
    PROMISE(!e.name.empty() && e.name.size() <= 255);
    for (char c : e.name) PROMISE(c > ' ' && c <= '~');
    PROMISE(names.insert(e.name).second);
    subctx::Signature sig;
    PROMISE(subctx::parse_signature(e.signature, &sig, nullptr));
    PROMISE(e.visibility <= 1);
    const SegmentRecord* s = segment_at(info, e.address, 1);
    PROMISE(s && (s->prot & 4));
  }

  const auto& v = info.vdso;
  if (v.base) {
    PROMISE(v.base % kPageSize == 0 && v.size % kPageSize == 0 && v.size > 0 && v.size <= 64 * kPageSize);
    PROMISE(v.base < kUserSpaceEnd && v.size <= kUserSpaceEnd - v.base);
    for (const auto& s : info.segments) PROMISE(!(s.vaddr < v.base + v.size && v.base < s.end()));
    PROMISE(v.symbols.size() <= 256);
    for (const auto& s : v.symbols) PROMISE(s.offset < v.size && !s.name.empty());
  }
}

bool read_one(const uint8_t* data, size_t size) {
  MemorySource src(data, size);
  ImageInfo info;
  try {
    info = read_image(src, "fuzz.img", kLimits);
  } catch (const subctx::Error&) {
    return false;
  }
  check_promises(info, size);
  (void)verify_segments(src, info);
  if (info.vdso.base) {
    // The Matchmaker builds the forwarder into a buffer of exactly vdso.size bytes.
    subctx::HostVdso host;
    host.base = 0x7fff00000000;
    host.size = 0x2000;
    host.symbols = {{0x100, "__vdso_clock_gettime"}, {0x200, "__vdso_time"}, {0x300, "time"}};
    std::vector<uint8_t> page(info.vdso.size, 0);
    std::string why;
    (void)subctx::matchmaker::build_vdso_forwarder(info.vdso, host, page.data(), &why);
  }
  return true;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Calls f(type, desc_offset, desc_size) for each SUBCTX note, as far as the
// notes are well formed; returns the end of the notes, or 0.
template <class F>
uint64_t for_each_note(const uint8_t* b, size_t size, F f) {
  if (size < sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr)) return 0;
  const auto note = load<Elf64_Phdr>(b + sizeof(Elf64_Ehdr));
  if (note.p_offset > size || note.p_filesz > size - note.p_offset) return 0;
  const uint64_t end = note.p_offset + note.p_filesz;
  for (uint64_t pos = note.p_offset; end - pos >= 12;) {
    const uint32_t namesz = load<uint32_t>(b + pos), descsz = load<uint32_t>(b + pos + 4);
    const uint64_t desc = pos + 12 + ((uint64_t{namesz} + 3) & ~uint64_t{3});
    const uint64_t next = desc + ((uint64_t{descsz} + 3) & ~uint64_t{3});
    if (next > end) break;
    if (namesz == sizeof kNoteOwner && std::memcmp(b + pos + 12, kNoteOwner, sizeof kNoteOwner) == 0)
      f(load<uint32_t>(b + pos + 8), desc, descsz);
    pos = next;
  }
  return end;
}

// Recomputes the header digest in place; false when no digest note is found
// or the digest was already right.
bool reseal(std::vector<uint8_t>& b) {
  uint64_t at = 0;
  const uint64_t end = for_each_note(b.data(), b.size(), [&](uint32_t type, uint64_t desc, uint64_t descsz) {
    if (type == kNoteDigests && descsz >= 8 && !at) at = desc;
  });
  if (!at) return false;
  const uint64_t d = compute_header_digest(b.data(), end, at);
  if (d == load<uint64_t>(b.data() + at)) return false;
  std::memcpy(b.data() + at, &d, 8);
  return true;
}

// Offsets of the u64 address fields in the thread, exports and vDSO notes.
std::vector<uint64_t> address_fields(const uint8_t* b, size_t size) {
  std::vector<uint64_t> out;
  for_each_note(b, size, [&](uint32_t type, uint64_t desc, uint64_t descsz) {
    if (type == kNoteThread) {
      for (uint64_t k = 0; k + 8 <= descsz && k < 48; k += 8) out.push_back(desc + k);
    } else if (type == kNoteVdso) {
      for (uint64_t k = 0; k + 8 <= descsz && k < 16; k += 8) out.push_back(desc + k);
    } else if (type == kNoteExports && descsz >= 4) {
      // {u64 address, u8 visibility, str name, str signature}...
      ByteReader r(b + desc + 4, descsz - 4);
      for (uint32_t n = load<uint32_t>(b + desc); n && r.remaining() >= 8 && out.size() < 64; --n) {
        out.push_back(desc + descsz - r.remaining());
        r.u64();
        r.u8();
        r.str(descsz);
        r.str(descsz);
        if (!r.ok()) break;
      }
    }
  });
  return out;
}

// [vaddr, vaddr + memsz) of each PT_LOAD.
std::vector<std::pair<uint64_t, uint64_t>> segment_ranges(const uint8_t* b, size_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  if (size < sizeof(Elf64_Ehdr)) return out;
  const auto eh = load<Elf64_Ehdr>(b);
  for (uint64_t i = 1; i < eh.e_phnum && 64 + (i + 1) * sizeof(Elf64_Phdr) <= size; ++i) {
    const auto ph = load<Elf64_Phdr>(b + 64 + i * sizeof(Elf64_Phdr));
    out.emplace_back(ph.p_vaddr, ph.p_vaddr + ph.p_memsz);
  }
  return out;
}

}  // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  std::minstd_rand rng(seed);
  if (rng() % 4 == 0) {
    const auto fields = address_fields(data, size);
    const auto ranges = segment_ranges(data, size);
    if (!fields.empty() && !ranges.empty()) {
      const auto [lo, hi] = ranges[rng() % ranges.size()];
      static const int64_t kDelta[] = {0, 0, 1, -1, 8, -8, 16, -16, 216, -216, 4096, -4096};
      const uint64_t v = (rng() % 2 ? lo : hi) + static_cast<uint64_t>(kDelta[rng() % std::size(kDelta)]);
      std::memcpy(data + fields[rng() % fields.size()], &v, 8);
      return size;
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bool accepted = read_one(data, size);
  std::vector<uint8_t> copy(data, data + size);
  if (reseal(copy)) accepted |= read_one(copy.data(), copy.size());
  return accepted ? 0 : -1;  // keep only valid images in the corpus
}
