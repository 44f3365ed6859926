#include "test_image.hpp"

#include <elf.h>
#include <sys/mman.h>

#include <csignal>

#include <stdexcept>

#include "image/digest.hpp"
#include "image/writer.hpp"

namespace subctx::test {

using image::SegmentKind;
using image::SegmentRecord;

namespace {

SegmentRecord segment(uint64_t vaddr, uint64_t memsz, uint64_t filesz, int prot, SegmentKind kind, const char* origin) {
  SegmentRecord s;
  s.vaddr = vaddr;
  s.memsz = memsz;
  s.filesz = filesz;
  s.prot = prot;
  s.kind = kind;
  s.origin = origin;
  return s;
}

}  // namespace

image::IdentityRecord sample_identity() {
  using image::FdKind;
  image::IdentityRecord id;
  id.cwd = "/srv/data";
  id.umask = 027;
  id.pid = 4242;
  auto fd = [](int32_t n, FdKind kind, bool dropped, uint32_t flags, uint64_t offset, int32_t same_as,
               const char* path) {
    image::FdRecord f;
    f.number = n;
    f.kind = kind;
    f.dropped = dropped;
    f.flags = flags;
    f.offset = offset;
    f.same_as = same_as;
    f.path = path;
    return f;
  };
  id.fds = {
      fd(3, FdKind::File, false, 02100002, 4096, -1, "/srv/data/cities.db"),
      fd(4, FdKind::Directory, false, 02200000, 0, -1, "/srv/data"),
      fd(5, FdKind::File, false, 02102001, 77, 3, "/srv/data/cities.db"),  // dup of 3
      fd(6, FdKind::CharDevice, false, 0100000, 0, -1, "/dev/urandom"),
      fd(7, FdKind::Pipe, true, 04001, 0, -1, "pipe:[123456]"),
      fd(9, FdKind::Socket, true, 02000002, 0, -1, "socket:[98765]"),
  };
  id.signals = {{SIGPIPE, 1}, {SIGXFSZ, 0}};
  return id;
}

image::ImageInfo sample_info() {
  image::ImageInfo info;
  info.creator_path = "/opt/server/bin/server";
  info.build_id = "0123456789abcdef";
  info.created_ns = 1700000000123456789ull;
  info.kernel = "Linux 6.1.0-test";
  info.libc = "glibc 2.36";
  info.cpu_features = 0x5;
  const int rx = PROT_READ | PROT_EXEC, rw = PROT_READ | PROT_WRITE;
  info.segments = {
      segment(0x400000, 0x2000, 0x2000, rx, SegmentKind::File, "/opt/server/bin/server"),
      segment(0x402000, 0x1000, 0x1000, PROT_READ, SegmentKind::File, "/opt/server/bin/server"),
      segment(0x600000, 0x3000, 0x1000, rw, SegmentKind::Heap, "[heap]"),
      segment(0x7f0000000000, 0x1000, 0, PROT_NONE, SegmentKind::GateGuard, ""),
      segment(0x7f0000001000, 0x4000, 0, rw, SegmentKind::GateStack, ""),
      segment(0x7ffd00000000, 0x2000, 0x2000, rw, SegmentKind::Stack, "[stack]"),
  };
  info.thread.tcb = 0x600100;
  info.thread.gate_stack_lo = 0x7f0000001000;
  info.thread.gate_stack_hi = 0x7f0000005000;
  info.thread.stdout_file = 0x600400;
  info.thread.stderr_file = 0x600500;
  info.thread.fflush_fn = 0x400800;
  info.exports = {
      {"square", 0x400100, "i64(i64)", 0},
      {"greet", 0x400200, "i32(str,ptr)", 1},
      {"pi", 0x401ff0, "f64()", 0},
  };
  info.vdso.base = 0x7ffd10000000;
  info.vdso.size = 0x2000;
  info.vdso.symbols = {{0x900, "__vdso_clock_gettime"}, {0xa00, "__vdso_time"}};
  info.identity = sample_identity();
  return info;
}

image::ImageInfo small_info() {
  image::ImageInfo info;
  info.segments = {
      segment(0x10000, 0x1000, 0x1000, PROT_READ | PROT_EXEC, SegmentKind::File, "/s"),
      segment(0x11000, 0x1000, 0x1000, PROT_READ | PROT_WRITE, SegmentKind::Anon, ""),
  };
  info.thread.tcb = 0x11000;  // its thread record: 0x11000-0x11940
  info.thread.gate_stack_lo = 0x11a00;
  info.thread.gate_stack_hi = 0x12000;
  info.exports = {{"f", 0x10010, "i32(i32)", 0}};
  info.identity.cwd = "/";
  info.identity.pid = 1000;
  return info;
}

TestImage build_image(image::ImageInfo info) {
  TestImage t;
  // As the snapshot does: encode once for the header size, lay out, encode again.
  image::EncodedHeader h = image::encode_header(info);
  const uint64_t file_size = image::layout_segments(info, h.data_start);
  h = image::encode_header(info);
  t.bytes.assign(file_size, 0);
  std::vector<uint64_t> digests;
  for (size_t k = 0; k < info.segments.size(); ++k) {
    auto& s = info.segments[k];
    for (uint64_t i = 0; i < s.filesz; ++i) t.bytes[s.offset + i] = pattern_byte(k, i);
    // glibc's TCB starts with its own address (the reader checks it).
    const uint64_t tcb = info.thread.tcb;
    if (tcb >= s.vaddr && tcb - s.vaddr < s.filesz && s.filesz - (tcb - s.vaddr) >= 8)
      std::memcpy(t.bytes.data() + s.offset + (tcb - s.vaddr), &tcb, 8);
    image::Digest d;
    d.update(t.bytes.data() + s.offset, s.filesz);
    static const uint8_t kZero[image::kPageSize] = {};
    for (uint64_t z = s.filesz; z < s.memsz; z += image::kPageSize) d.update(kZero, sizeof kZero);
    s.digest = d.value();
    digests.push_back(s.digest);
  }
  image::seal_header(h, digests.data(), digests.size());
  if (h.bytes.size() > h.data_start) throw std::logic_error("header larger than data_start");
  std::memcpy(t.bytes.data(), h.bytes.data(), h.bytes.size());
  std::memcpy(&info.header_digest, h.bytes.data() + h.header_digest_offset, 8);
  info.file_size = file_size;
  t.info = std::move(info);
  t.header_size = h.bytes.size();
  t.header_digest_offset = h.header_digest_offset;
  t.segment_digests_offset = h.segment_digests_offset;
  t.data_start = h.data_start;
  return t;
}

size_t TestImage::note(uint32_t type) const {
  const uint64_t off = get<uint64_t>(phdr(0) + offsetof(Elf64_Phdr, p_offset));
  const uint64_t size = get<uint64_t>(phdr(0) + offsetof(Elf64_Phdr, p_filesz));
  if (off > bytes.size() || size > bytes.size() - off) return 0;
  for (uint64_t pos = off; pos + 12 <= off + size;) {
    const uint32_t namesz = get<uint32_t>(pos), descsz = get<uint32_t>(pos + 4), t = get<uint32_t>(pos + 8);
    const uint64_t next = pos + 12 + ((uint64_t{namesz} + 3) & ~3ull) + ((uint64_t{descsz} + 3) & ~3ull);
    if (next > off + size) return 0;
    if (t == type && namesz == sizeof image::kNoteOwner &&
        std::memcmp(bytes.data() + pos + 12, image::kNoteOwner, sizeof image::kNoteOwner) == 0)
      return pos;
    pos = next;
  }
  return 0;
}

void TestImage::reseal() {
  const uint64_t off = get<uint64_t>(phdr(0) + offsetof(Elf64_Phdr, p_offset));
  const uint64_t size = get<uint64_t>(phdr(0) + offsetof(Elf64_Phdr, p_filesz));
  const size_t n = note(image::kNoteDigests);
  if (n == 0 || off + size > bytes.size()) throw std::logic_error("reseal: cannot find the digest note");
  const size_t at = n + 20;
  if (at + 8 > off + size) return;  // no room for a header digest: nothing to seal
  const uint64_t d = image::compute_header_digest(bytes.data(), off + size, at);
  put<uint64_t>(at, d);
}

std::vector<RawNote> read_notes(const TestImage& t) {
  const uint64_t off = t.get<uint64_t>(TestImage::phdr(0) + offsetof(Elf64_Phdr, p_offset));
  const uint64_t size = t.get<uint64_t>(TestImage::phdr(0) + offsetof(Elf64_Phdr, p_filesz));
  std::vector<RawNote> out;
  for (uint64_t pos = off; pos + 12 <= off + size;) {
    const uint32_t namesz = t.get<uint32_t>(pos), descsz = t.get<uint32_t>(pos + 4);
    const uint64_t desc_at = pos + 12 + ((uint64_t{namesz} + 3) & ~3ull);
    RawNote n;
    n.type = t.get<uint32_t>(pos + 8);
    n.name.assign(reinterpret_cast<const char*>(t.bytes.data() + pos + 12), namesz);
    n.desc.assign(t.bytes.begin() + static_cast<long>(desc_at), t.bytes.begin() + static_cast<long>(desc_at + descsz));
    out.push_back(std::move(n));
    pos = desc_at + ((uint64_t{descsz} + 3) & ~3ull);
  }
  return out;
}

RawNote subctx_note(uint32_t type, std::vector<uint8_t> desc) {
  RawNote n;
  n.name.assign(image::kNoteOwner, sizeof image::kNoteOwner);
  n.type = type;
  n.desc = std::move(desc);
  return n;
}

void write_notes(TestImage& t, const std::vector<RawNote>& notes) {
  const uint64_t off = t.get<uint64_t>(TestImage::phdr(0) + offsetof(Elf64_Phdr, p_offset));
  std::vector<uint8_t> enc;
  auto u32 = [&](uint32_t v) {
    enc.insert(enc.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4);
  };
  for (const auto& n : notes) {
    u32(static_cast<uint32_t>(n.name.size()));
    u32(static_cast<uint32_t>(n.desc.size()));
    u32(n.type);
    enc.insert(enc.end(), n.name.begin(), n.name.end());
    while (enc.size() % 4) enc.push_back(0);
    enc.insert(enc.end(), n.desc.begin(), n.desc.end());
    while (enc.size() % 4) enc.push_back(0);
  }
  if (off + enc.size() > t.data_start) throw std::logic_error("write_notes: notes do not fit below data_start");
  std::memset(t.bytes.data() + off, 0, t.data_start - off);
  std::memcpy(t.bytes.data() + off, enc.data(), enc.size());
  t.put<uint64_t>(TestImage::phdr(0) + offsetof(Elf64_Phdr, p_filesz), enc.size());
  t.header_size = off + enc.size();
  if (const size_t d = t.note(image::kNoteDigests)) {
    t.header_digest_offset = d + 20;
    t.segment_digests_offset = d + 36;
    t.reseal();
  }
}

}  // namespace subctx::test
