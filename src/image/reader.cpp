#include "image/reader.hpp"

#include <elf.h>
#include <sys/mman.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <set>

#include "image/bytes.hpp"
#include "image/digest.hpp"
#include "image/notes.hpp"
#include "image/writer.hpp"
#include "subctx/error.hpp"
#include "subctx/signature.hpp"
#include "sys/io.hpp"

namespace subctx::image {

using sys::hex;

bool FileSource::read(uint64_t offset, void* out, size_t len) const {
  if (offset > size_ || len > size_ - offset) return false;
  return sys::pread_exact(fd_, out, len, static_cast<off_t>(offset));
}

PrefetchedFileSource::PrefetchedFileSource(int fd, uint64_t size) : file_(fd, size) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, kPrefix));
  prefix_ = std::make_unique_for_overwrite<uint8_t[]>(n);
  if (n && file_.read(0, prefix_.get(), n)) prefix_size_ = n;
}

bool PrefetchedFileSource::read(uint64_t offset, void* out, size_t len) const {
  if (offset <= prefix_size_ && len <= prefix_size_ - offset) {
    std::memcpy(out, prefix_.get() + offset, len);
    return true;
  }
  return file_.read(offset, out, len);
}

bool MemorySource::read(uint64_t offset, void* out, size_t len) const {
  if (offset > size_ || len > size_ - offset) return false;
  std::memcpy(out, data_ + offset, len);
  return true;
}

namespace {

// glibc's TCB on x86-64: struct pthread (2304 bytes), then its rseq area
// (__rseq_offset 2336, 32 bytes) -- glibc 2.35 to 2.39.
constexpr uint64_t kThreadRecordSize = 2368;

std::string octal(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", v);
  return buf;
}

class Parser {
 public:
  Parser(const ByteSource& src, const std::string& what, const ReadLimits& limits)
      : src_(src), what_(what), limits_(limits), notes_ctx_{what, limits.max_exports} {}

  ImageInfo run();

 private:
  [[noreturn]] void bad(const std::string& msg) const { notes_ctx_.bad(msg); }
  void read_or_bad(uint64_t off, void* out, size_t len, const char* item) const {
    if (!src_.read(off, out, len))
      bad(std::string("truncated: ") + item + " at offset " + std::to_string(off) + " (+" + std::to_string(len) +
          " bytes) is past the end of the file (" + std::to_string(src_.size()) + " bytes)");
  }
  Elf64_Ehdr read_elf_header() const;
  uint64_t read_header_bytes(const Elf64_Ehdr& eh, const std::vector<Elf64_Phdr>& ph);
  SegmentRecord segment_from(const Elf64_Phdr& p, uint64_t index) const;
  void check_segment_layout() const;
  void parse_notes(const std::vector<uint8_t>& notes, uint64_t notes_off);
  void validate() const;
  void validate_thread() const;
  void validate_entries() const;
  void validate_vdso() const;
  void check_entry(const char* kind, const std::string& name, const std::string& signature,
                   std::set<std::string>& seen) const;
  void validate_identity() const;
  void validate_hot_pages() const;
  void validate_fd_record(size_t index) const;
  void validate_path(const std::string& path, const std::string& what) const;

  const ByteSource& src_;
  const std::string& what_;
  const ReadLimits& limits_;
  const NoteContext notes_ctx_;
  ImageInfo info_;
  std::set<uint32_t> seen_;
  std::vector<uint8_t> header_bytes_;
  size_t header_digest_offset_ = 0;
};

ImageInfo Parser::run() {
  info_.file_size = src_.size();
  const Elf64_Ehdr eh = read_elf_header();
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  read_or_bad(eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr), "program header table");
  const uint64_t notes_off = read_header_bytes(eh, ph);
  for (uint64_t i = 1; i < ph.size(); ++i) info_.segments.push_back(segment_from(ph[i], i - 1));
  check_segment_layout();
  std::vector<uint8_t> notes(header_bytes_.begin() + static_cast<long>(notes_off), header_bytes_.end());
  parse_notes(notes, notes_off);
  validate();
  return std::move(info_);
}

// The ELF header, and the segment count it implies against the limit.
Elf64_Ehdr Parser::read_elf_header() const {
  Elf64_Ehdr eh;
  if (src_.size() < sizeof eh)
    bad("truncated: file is " + std::to_string(src_.size()) + " bytes, the ELF header needs 64");
  read_or_bad(0, &eh, sizeof eh, "ELF header");
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) bad("bad magic: not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    bad("not a 64-bit little-endian ELF file");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) bad("unknown ELF version");
  if (eh.e_type != ET_CORE) bad("ELF type " + std::to_string(eh.e_type) + " is not ET_CORE: not a subctx image");
  if (eh.e_machine != EM_X86_64) bad("machine " + std::to_string(eh.e_machine) + " is not x86-64");
  if (eh.e_ehsize != sizeof(Elf64_Ehdr) || eh.e_phentsize != sizeof(Elf64_Phdr))
    bad("unexpected ELF header or program header size");
  if (eh.e_phoff != sizeof(Elf64_Ehdr)) bad("program headers not right after the ELF header");
  if (eh.e_phnum < 2 || eh.e_phnum == PN_XNUM)
    bad("program header count " + std::to_string(eh.e_phnum) + " out of range");
  const uint64_t nsegs = eh.e_phnum - 1u;
  if (nsegs > limits_.max_segments)
    throw LimitExceeded(what_ + ": image has " + std::to_string(nsegs) +
                        " segments; limit 'segments per image' (SUBCTX_MAX_SEGMENTS) is " +
                        std::to_string(limits_.max_segments));
  return eh;
}

// Reads the bytes the header digest covers (offset 0 to the end of the
// notes) into header_bytes_; returns the notes' offset.
uint64_t Parser::read_header_bytes(const Elf64_Ehdr& eh, const std::vector<Elf64_Phdr>& ph) {
  if (ph[0].p_type != PT_NOTE) bad("first program header is not PT_NOTE");
  const uint64_t notes_off = ph[0].p_offset, notes_size = ph[0].p_filesz;
  const uint64_t phdr_end = eh.e_phoff + ph.size() * sizeof(Elf64_Phdr);
  if (notes_off != phdr_end) bad("notes do not follow the program headers");
  if (notes_size > kMaxNotesSize) bad("notes are " + std::to_string(notes_size) + " bytes (at most 64 MiB)");
  // Before allocating: a tiny hostile file must not cost 64 MiB.
  if (notes_size > src_.size() - std::min<uint64_t>(notes_off, src_.size()))
    bad("truncated: notes at offset " + std::to_string(notes_off) + " (+" + std::to_string(notes_size) +
        " bytes) are past the end of the file (" + std::to_string(src_.size()) + " bytes)");
  header_bytes_.resize(phdr_end + notes_size);
  read_or_bad(0, header_bytes_.data(), header_bytes_.size(), "notes");
  return notes_off;
}

// One PT_LOAD header, checked on its own (after read_header_bytes: its data
// may not overlap the header).
SegmentRecord Parser::segment_from(const Elf64_Phdr& p, uint64_t index) const {
  const std::string name = "segment " + std::to_string(index);
  if (p.p_type != PT_LOAD) bad(name + ": program header type " + std::to_string(p.p_type) + " is not PT_LOAD");
  if (p.p_flags & ~uint32_t(PF_R | PF_W | PF_X)) bad(name + ": unknown flags " + hex(p.p_flags));
  if (p.p_vaddr % kPageSize || p.p_offset % kPageSize || p.p_memsz % kPageSize || p.p_memsz == 0)
    bad(name + ": address, offset or size not page-aligned (vaddr " + hex(p.p_vaddr) + ", offset " + hex(p.p_offset) +
        ", memsz " + hex(p.p_memsz) + ")");
  if (p.p_vaddr >= kUserSpaceEnd || p.p_memsz > kUserSpaceEnd - p.p_vaddr)
    bad(name + ": range " + hex(p.p_vaddr) + "+" + hex(p.p_memsz) + " is outside user space");
  if (p.p_vaddr == 0) bad(name + ": maps page zero");
  if (p.p_filesz > p.p_memsz) bad(name + ": file size larger than memory size");
  if (p.p_filesz % kPageSize) bad(name + ": file size " + hex(p.p_filesz) + " is not a whole number of pages");
  if (p.p_offset > src_.size() || p.p_filesz > src_.size() - p.p_offset)
    bad(name + " [" + hex(p.p_vaddr) + "-" + hex(p.p_vaddr + p.p_memsz) + ") lies outside the file: offset " +
        hex(p.p_offset) + " + " + hex(p.p_filesz) + " bytes, file size " + hex(src_.size()));
  if (p.p_filesz && p.p_offset < header_bytes_.size()) bad(name + ": data overlaps the header");
  SegmentRecord s;
  s.vaddr = p.p_vaddr;
  s.memsz = p.p_memsz;
  s.offset = p.p_offset;
  s.filesz = p.p_filesz;
  s.prot = ((p.p_flags & PF_R) ? PROT_READ : 0) | ((p.p_flags & PF_W) ? PROT_WRITE : 0) |
           ((p.p_flags & PF_X) ? PROT_EXEC : 0);
  return s;
}

// The segments together: sorted, disjoint, their total within the limit.
void Parser::check_segment_layout() const {
  uint64_t total = 0;
  for (size_t i = 0; i < info_.segments.size(); ++i) {
    const auto& s = info_.segments[i];
    if (i > 0 && s.vaddr < info_.segments[i - 1].end())
      bad("segments " + std::to_string(i - 1) + " and " + std::to_string(i) + " overlap or are out of order (" +
          hex(info_.segments[i - 1].vaddr) + "-" + hex(info_.segments[i - 1].end()) + " and " + hex(s.vaddr) + "-" +
          hex(s.end()) + ")");
    total += s.memsz;
  }
  if (total > limits_.max_image_size)
    throw LimitExceeded(what_ + ": image is " + std::to_string(total) +
                        " bytes of memory; limit 'image size' (SUBCTX_MAX_IMAGE_SIZE) is " +
                        std::to_string(limits_.max_image_size));
}

void Parser::parse_notes(const std::vector<uint8_t>& notes, uint64_t notes_off) {
  size_t pos = 0;
  while (pos < notes.size()) {
    if (notes.size() - pos < 12) bad("truncated note header at offset " + std::to_string(notes_off + pos));
    uint32_t namesz, descsz, type;
    std::memcpy(&namesz, &notes[pos], 4);
    std::memcpy(&descsz, &notes[pos + 4], 4);
    std::memcpy(&type, &notes[pos + 8], 4);
    const uint64_t name_at = pos + 12;
    const uint64_t desc_at = name_at + ((uint64_t{namesz} + 3) & ~uint64_t{3});
    const uint64_t next = desc_at + ((uint64_t{descsz} + 3) & ~uint64_t{3});
    if (next > notes.size()) bad("note at offset " + std::to_string(notes_off + pos) + " runs past the notes");
    const bool ours =
        namesz == sizeof kNoteOwner && std::memcmp(notes.data() + name_at, kNoteOwner, sizeof kNoteOwner) == 0;
    if (ours) {
      if (!seen_.insert(type).second) bad("duplicate SUBCTX note " + sys::hex(type));
      if (type == kNoteDigests) {
        if (next != notes.size()) bad("the digest note is not the last note");
        header_digest_offset_ = static_cast<size_t>(notes_off + desc_at);
      }
      // Unknown types are ignored: a later version may add optional notes.
      if (const NoteCodec* codec = find_note_codec(type)) {
        ByteReader r(notes.data() + desc_at, descsz);
        codec->decode(r, notes_ctx_, info_);
      }
    }
    pos = static_cast<size_t>(next);
  }
}

// An export's or import's name (printable ASCII, unique among its kind)
// and signature.
void Parser::check_entry(const char* kind, const std::string& name, const std::string& signature,
                         std::set<std::string>& seen) const {
  const std::string k = kind;
  if (name.empty()) bad("an " + k + " has an empty name");
  for (char c : name)
    if (c <= ' ' || c > '~') bad(k + " name \"" + sys::printable(name) + "\" has a character outside printable ASCII");
  if (!seen.insert(name).second) bad(k + " \"" + sys::printable(name) + "\" appears twice");
  Signature sig;
  std::string why;
  if (!parse_signature(signature, &sig, &why))
    bad(k + " \"" + sys::printable(name) + "\": " + sys::printable(why, 400));
}

// After every note is read: what the notes say, against each other and the
// segments.
void Parser::validate() const {
  for (uint32_t t : {kNoteVersion, kNoteThread, kNoteExports, kNoteSegments, kNoteIdentity, kNoteDigests})
    if (!seen_.count(t)) bad("missing SUBCTX note " + sys::hex(t));

  uint64_t computed = compute_header_digest(header_bytes_.data(), header_bytes_.size(), header_digest_offset_);
  if (computed != info_.header_digest)
    throw DigestMismatch(what_ + ": header digest mismatch (stored " + hex(info_.header_digest) + ", computed " +
                         hex(computed) + "): the image was modified or damaged; write it again");

  validate_thread();
  validate_entries();
  validate_vdso();
  validate_identity();
  validate_hot_pages();
}

// The thread record a call runs as, and what the gate touches around a call.
void Parser::validate_thread() const {
  const auto& t = info_.thread;
  const SegmentRecord* tcb = info_.segment_at(t.tcb);
  if (!tcb || !(tcb->prot & PROT_WRITE) || !tcb->contains(t.tcb, 8))
    bad("thread pointer " + hex(t.tcb) + " is not inside a writable segment");
  // The subcontext's libc uses the whole thread record (glibc's struct
  // pthread, its rseq area at the end): all of it in the one segment.
  if (!tcb->contains(t.tcb, kThreadRecordSize))
    bad("thread record " + hex(t.tcb) + "-" + hex(t.tcb + kThreadRecordSize) + " (" +
        std::to_string(kThreadRecordSize) +
        " bytes: glibc's struct pthread and its rseq area) runs past the end of "
        "its segment " +
        hex(tcb->vaddr) + "-" + hex(tcb->end()));
  // glibc's TCB starts with its own address (the thread pointer is read
  // from there); a zero page or any other value is not a thread record.
  uint64_t self = 0;
  const uint64_t at = t.tcb - tcb->vaddr;
  if (at < tcb->filesz) read_or_bad(tcb->offset + at, &self, 8, "thread record");
  if (self != t.tcb)
    bad("thread record " + hex(t.tcb) + " does not start with its own address (it holds " + hex(self) +
        "): not a thread record");
  const SegmentRecord* stack = info_.segment_at(t.gate_stack_lo);
  if (!stack || t.gate_stack_hi <= t.gate_stack_lo || t.gate_stack_hi % 16 ||
      !stack->contains(t.gate_stack_lo, t.gate_stack_hi - t.gate_stack_lo) || !(stack->prot & PROT_WRITE))
    bad("gate stack " + hex(t.gate_stack_lo) + "-" + hex(t.gate_stack_hi) + " is not inside one writable segment");
  if (t.gate_stack_lo < t.tcb + kThreadRecordSize && t.tcb < t.gate_stack_hi)
    bad("gate stack " + hex(t.gate_stack_lo) + "-" + hex(t.gate_stack_hi) + " overlaps the thread record " +
        hex(t.tcb) + "-" + hex(t.tcb + kThreadRecordSize));
  // The gate reads and flushes these streams after every call.
  for (uint64_t f : {t.stdout_file, t.stderr_file}) {
    const SegmentRecord* s = f ? info_.segment_at(f) : nullptr;
    if (f && (!s || !s->contains(f, 216) || (s->prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE)))
      bad("stdio stream " + hex(f) + " is not inside a readable and writable segment");
  }
  if (t.fflush_fn) {
    const SegmentRecord* s = info_.segment_at(t.fflush_fn);
    if (!s || !(s->prot & PROT_EXEC)) bad("fflush " + hex(t.fflush_fn) + " is not inside an executable segment");
  }
}

// Exports: what a client calls; imports: what the server's code calls.
void Parser::validate_entries() const {
  std::set<std::string> names;
  for (const auto& e : info_.exports) {
    check_entry("export", e.name, e.signature, names);
    if (e.visibility > 1)
      bad("export \"" + sys::printable(e.name) + "\": unknown visibility " + std::to_string(e.visibility));
    const SegmentRecord* s = info_.segment_at(e.address);
    if (!s || !(s->prot & PROT_EXEC))
      bad("export \"" + sys::printable(e.name) + "\" at " + hex(e.address) + " is outside every executable segment");
  }
  // Imports have their own names: an export and an import may share one.
  std::set<std::string> import_names;
  for (const auto& i : info_.imports) check_entry("import", i.name, i.signature, import_names);
}

// The range the client fills with jumps to its own vDSO.
void Parser::validate_vdso() const {
  const auto& v = info_.vdso;
  if (!v.base) return;  // the server had no vDSO
  if (v.base % kPageSize || v.size == 0 || v.size % kPageSize || v.size > 64 * kPageSize || v.base >= kUserSpaceEnd ||
      v.size > kUserSpaceEnd - v.base)
    bad("vdso range " + hex(v.base) + "+" + hex(v.size) + " is malformed");
  for (const auto& s : info_.segments)
    if (s.vaddr < v.base + v.size && v.base < s.end()) bad("vdso range overlaps a segment");
  for (const auto& s : v.symbols)
    if (s.offset >= v.size || s.name.empty()) bad("vdso symbol \"" + sys::printable(s.name) + "\" is outside the vdso");
}

// Each run is populated at map: it must lie in the file part of one
// segment (a view of the image, never the client's memory), in order.
void Parser::validate_hot_pages() const {
  uint64_t total = 0, prev_end = 0;
  for (size_t i = 0; i < info_.hot_pages.size(); ++i) {
    const HotRun& run = info_.hot_pages[i];
    const std::string what =
        "hot-pages run " + std::to_string(i) + " (" + hex(run.vaddr) + ", " + std::to_string(run.pages) + " pages)";
    if (run.pages == 0 || run.vaddr % kPageSize) bad(what + ": empty or not page-aligned");
    const uint64_t len = uint64_t{run.pages} * kPageSize;
    const SegmentRecord* s = info_.segment_at(run.vaddr);
    if (!s || !s->contains(run.vaddr, len) || run.vaddr - s->vaddr + len > s->filesz)
      bad(what + ": not inside the file part of one segment");
    if (run.vaddr < prev_end) bad(what + ": overlaps or precedes the run before it");
    prev_end = run.vaddr + len;
    total += run.pages;
  }
  if (total > kMaxHotPages)
    throw LimitExceeded(what_ + ": hot-pages note lists " + std::to_string(total) + " pages; at most " +
                        std::to_string(kMaxHotPages) + " (kMaxHotPages) are populated at map; train the image again");
}

// A path a client opens: absolute, so it does not depend on the client's
// working directory, and one C string.
void Parser::validate_path(const std::string& path, const std::string& what) const {
  if (path.empty()) bad(what + ": the path is empty");
  if (path.size() > kMaxPathBytes)
    bad(what + ": the path is " + std::to_string(path.size()) + " bytes (at most " + std::to_string(kMaxPathBytes) +
        ")");
  if (path.find('\0') != std::string::npos) bad(what + ": the path \"" + sys::printable(path) + "\" holds a NUL byte");
  if (path[0] != '/') bad(what + ": the path \"" + sys::printable(path) + "\" is not absolute");
}

// What a client acts on: it reopens these paths and installs these
// descriptor numbers, so each must be one it can safely act on.
void Parser::validate_identity() const {
  const IdentityRecord& id = info_.identity;
  validate_path(id.cwd, "identity: working directory");
  if (id.umask > 0777) bad("identity: umask " + octal(id.umask) + " has bits outside 0777");
  if (id.pid <= 0) bad("identity: server pid " + std::to_string(id.pid) + " is not positive");
  for (size_t i = 0; i < id.fds.size(); ++i) validate_fd_record(i);
  uint32_t seen = 0;  // bit per signal number (SIGPIPE and SIGXFSZ are below 32)
  for (const SignalRecord& s : id.signals) {
    const std::string what = "identity: disposition of signal " + std::to_string(s.signal);
    if (s.signal != SIGPIPE && s.signal != SIGXFSZ) bad(what + ": only SIGPIPE and SIGXFSZ are recorded");
    if (s.action > 2) bad(what + ": unknown action " + std::to_string(s.action));
    if (seen & (1u << s.signal)) bad(what + ": recorded twice");
    seen |= 1u << s.signal;
  }
}

void Parser::validate_fd_record(size_t index) const {
  const auto& fds = info_.identity.fds;
  const FdRecord& f = fds[index];
  const std::string what =
      "identity: descriptor record " + std::to_string(index) + " (fd " + std::to_string(f.number) + ")";
  if (f.number < 3 || f.number >= static_cast<int32_t>(kMaxFds))
    bad(what + ": number outside 3.." + std::to_string(kMaxFds - 1));
  if (index > 0 && f.number <= fds[index - 1].number)
    bad(what + ": numbers are not strictly increasing (the record before is fd " +
        std::to_string(fds[index - 1].number) + ")");
  if (f.path.size() > kMaxPathBytes)
    bad(what + ": the path is " + std::to_string(f.path.size()) + " bytes (at most " + std::to_string(kMaxPathBytes) +
        ")");
  if (f.dropped) {
    if (f.same_as != -1) bad(what + ": a dropped descriptor shares with fd " + std::to_string(f.same_as));
    return;  // its path is only shown by `subctx inspect`
  }
  if (!fd_kind_restorable(f.kind))
    bad(what + ": " + fd_kind_name(f.kind) + " not marked dropped (only files, directories and harmless " +
        "character devices can be reopened)");
  validate_path(f.path, what);
  if (f.kind == FdKind::CharDevice && std::none_of(std::begin(kRestorableDevices), std::end(kRestorableDevices),
                                                   [&](const char* d) { return f.path == d; }))
    bad(what + ": character device \"" + sys::printable(f.path) + "\" is not one that is reopened");
  if (f.same_as == -1) return;
  // Only the first record of a shared open file description is named, so a
  // client opens each description once and duplicates it for the others.
  auto first = std::find_if(fds.begin(), fds.begin() + static_cast<long>(index),
                            [&](const FdRecord& o) { return o.number == f.same_as; });
  if (first == fds.begin() + static_cast<long>(index) || first->dropped || first->same_as != -1 ||
      first->kind != f.kind || first->path != f.path)
    bad(what + ": same_as " + std::to_string(f.same_as) + " is not an earlier, not dropped record of the same " +
        "kind and path that shares with no other");
}

}  // namespace

ImageInfo read_image(const ByteSource& src, const std::string& what, const ReadLimits& limits) {
  return Parser(src, what, limits).run();
}

std::string verify_segments(const ByteSource& src, const ImageInfo& info) {
  std::vector<uint8_t> buf(1 << 20);
  static const uint8_t kZero[kPageSize] = {};
  for (size_t i = 0; i < info.segments.size(); ++i) {
    const auto& s = info.segments[i];
    Digest d;
    for (uint64_t done = 0; done < s.filesz;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), s.filesz - done));
      if (!src.read(s.offset + done, buf.data(), n))
        return "segment " + std::to_string(i) + ": cannot read " + std::to_string(n) + " bytes at offset " +
               hex(s.offset + done);
      d.update(buf.data(), n);
      done += n;
    }
    for (uint64_t z = s.filesz; z < s.memsz;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kPageSize - (z % kPageSize), s.memsz - z));
      d.update(kZero, n);
      z += n;
    }
    if (d.value() != s.digest)
      return "segment " + std::to_string(i) + " [" + hex(s.vaddr) + "-" + hex(s.end()) + ") (" +
             sys::printable(s.origin) + "): digest mismatch (stored " + hex(s.digest) + ", computed " + hex(d.value()) +
             ")";
  }
  return {};
}

}  // namespace subctx::image
