#include "image/writer.hpp"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "image/bytes.hpp"
#include "image/digest.hpp"
#include "image/notes.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::image {

namespace {

// Frames one note: header, owner, then the descriptor its codec encodes.
void append_note(std::vector<uint8_t>& out, NoteType type, const ImageInfo& info) {
  std::vector<uint8_t> desc;
  ByteWriter d(desc);
  find_note_codec(type)->encode(d, info);
  ByteWriter w(out);
  w.u32(sizeof kNoteOwner);  // namesz includes the NUL
  w.u32(static_cast<uint32_t>(desc.size()));
  w.u32(type);
  w.raw(kNoteOwner, sizeof kNoteOwner);
  while (out.size() % 4) out.push_back(0);
  w.raw(desc.data(), desc.size());
  while (out.size() % 4) out.push_back(0);
}

// The notes, in the order docs/format.md gives.  *digests_desc: where the
// digest note's descriptor starts within them.
std::vector<uint8_t> encode_notes(const ImageInfo& info, size_t* digests_desc) {
  std::vector<uint8_t> notes;
  for (NoteType t : {kNoteVersion, kNoteCreator, kNoteProvenance, kNoteCpu, kNoteThread, kNoteExports})
    append_note(notes, t, info);
  if (!info.imports.empty()) append_note(notes, kNoteImports, info);  // optional: none, no imports
  append_note(notes, kNoteVdso, info);
  append_note(notes, kNoteSegments, info);
  if (!info.syscall_rules.empty()) append_note(notes, kNoteSyscalls, info);  // optional: older readers skip it
  if (!info.hot_pages.empty()) append_note(notes, kNoteHotPages, info);      // optional (`subctx train`)
  // Always written (required since version 2), even for a server with no
  // descriptors: the cwd and pid are part of what its memory means.
  append_note(notes, kNoteIdentity, info);
  // Digests last: the header digest covers everything before it.
  *digests_desc = notes.size() + 12 + 8;  // note header + "SUBCTX\0" padded
  append_note(notes, kNoteDigests, info);
  return notes;
}

uint32_t elf_flags(int prot) {
  return ((prot & PROT_READ) ? PF_R : 0) | ((prot & PROT_WRITE) ? PF_W : 0) | ((prot & PROT_EXEC) ? PF_X : 0);
}

void put_elf_header(uint8_t* out, size_t phnum) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_ident[EI_OSABI] = ELFOSABI_SYSV;
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<Elf64_Half>(phnum < PN_XNUM ? phnum : PN_XNUM);
  std::memcpy(out, &eh, sizeof eh);
}

// PT_NOTE first, then one PT_LOAD per segment, in order.
void put_program_headers(uint8_t* out, const ImageInfo& info, size_t notes_off, size_t notes_size) {
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = notes_off;
  note.p_filesz = notes_size;
  note.p_align = 4;
  std::memcpy(out, &note, sizeof note);
  for (size_t i = 0; i < info.segments.size(); ++i) {
    const auto& s = info.segments[i];
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_flags = elf_flags(s.prot);
    ph.p_offset = s.offset;
    ph.p_vaddr = s.vaddr;
    ph.p_filesz = s.filesz;
    ph.p_memsz = s.memsz;
    ph.p_align = kPageSize;
    std::memcpy(out + (i + 1) * sizeof ph, &ph, sizeof ph);
  }
}

}  // namespace

uint64_t layout_segments(ImageInfo& info, uint64_t data_start) {
  uint64_t off = page_round_up(data_start);
  for (auto& s : info.segments) {
    s.offset = off;
    off += page_round_up(s.filesz);
  }
  return off;
}

EncodedHeader encode_header(const ImageInfo& info) {
  const size_t phnum = 1 + info.segments.size();
  const size_t notes_off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
  // Notes first: their size decides the PT_NOTE entry.
  size_t digests_desc = 0;
  const std::vector<uint8_t> notes = encode_notes(info, &digests_desc);

  EncodedHeader h;
  h.bytes.resize(notes_off + notes.size());
  put_elf_header(h.bytes.data(), phnum);
  put_program_headers(h.bytes.data() + sizeof(Elf64_Ehdr), info, notes_off, notes.size());
  std::memcpy(h.bytes.data() + notes_off, notes.data(), notes.size());
  h.header_digest_offset = notes_off + digests_desc;
  h.segment_digests_offset = h.header_digest_offset + 16;
  h.data_start = page_round_up(h.bytes.size());
  return h;
}

uint64_t zero_segment_digest(uint64_t bytes) {
  static const uint8_t kZeroPage[kPageSize] = {};
  Digest d;
  for (uint64_t a = 0; a < bytes; a += kPageSize) d.update(kZeroPage, kPageSize);
  return d.value();
}

uint64_t compute_header_digest(const uint8_t* bytes, size_t size, size_t header_digest_offset) {
  Digest d;
  d.update(bytes, header_digest_offset);
  d.update(bytes + header_digest_offset + 8, size - header_digest_offset - 8);
  return d.value();
}

void seal_header(EncodedHeader& header, const uint64_t* segment_digests, size_t count) {
  std::memcpy(header.bytes.data() + header.segment_digests_offset, segment_digests, count * 8);
  uint64_t hd = compute_header_digest(header.bytes.data(), header.bytes.size(), header.header_digest_offset);
  std::memcpy(header.bytes.data() + header.header_digest_offset, &hd, 8);
}

void finish_image_file(int fd, const std::string& tmp, EncodedHeader& header, const uint64_t* segment_digests,
                       size_t count, uint64_t file_size) {
  seal_header(header, segment_digests, count);
  if (!sys::pwrite_exact(fd, header.bytes.data(), header.bytes.size(), 0))
    throw IoError("cannot write " + tmp + ": " + sys::errno_text(errno));
  if (ftruncate(fd, static_cast<off_t>(file_size)) != 0)
    throw IoError("cannot size " + tmp + ": " + sys::errno_text(errno));
}

const char* segment_kind_name(SegmentKind kind) {
  switch (kind) {
    case SegmentKind::File: return "file";
    case SegmentKind::Heap: return "heap";
    case SegmentKind::Stack: return "stack";
    case SegmentKind::Anon: return "anon";
    case SegmentKind::GateStack: return "gate-stack";
    case SegmentKind::GateGuard: return "gate-guard";
  }
  return "?";
}

const char* fd_kind_name(FdKind kind) {
  switch (kind) {
    case FdKind::File: return "file";
    case FdKind::Directory: return "directory";
    case FdKind::CharDevice: return "char-device";
    case FdKind::Pipe: return "pipe";
    case FdKind::Socket: return "socket";
    case FdKind::Eventfd: return "eventfd";
    case FdKind::Memfd: return "memfd";
    case FdKind::Other: return "other";
  }
  return "?";
}

void SegmentWriter::page(const uint8_t* p, uint64_t offset) {
  digest_.update(p, kPageSize);
  if (page_is_zero(p)) {
    flush();  // all-zero page: a hole in the file
    return;
  }
  if (run_len_ && p == run_ + run_len_ && offset == run_offset_ + run_len_) {
    run_len_ += kPageSize;
    return;
  }
  flush();
  run_ = p;
  run_offset_ = offset;
  run_len_ = kPageSize;
}

void SegmentWriter::hole() {
  static const uint8_t kZeroPage[kPageSize] = {};
  flush();
  digest_.update(kZeroPage, kPageSize);
}

void SegmentWriter::write_now(const uint8_t* p, uint64_t offset) {
  flush();
  digest_.update(p, kPageSize);
  write(p, kPageSize, offset);
}

void SegmentWriter::flush() {
  if (run_len_) write(run_, run_len_, run_offset_);
  run_len_ = 0;
}

void SegmentWriter::write(const uint8_t* p, uint64_t len, uint64_t offset) {
  if (!sys::raw_pwrite_exact(fd_, p, len, static_cast<off_t>(file_offset_ + offset)))
    throw IoError("cannot write " + path_ + ": " + sys::errno_text(errno));
  data_bytes_ += len;
}

TempImageFile::TempImageFile(const std::string& path, unsigned mode) : path_(path), tmp_(path + ".tmp.XXXXXX") {
  fd_ = sys::UniqueFd(mkostemp(tmp_.data(), O_CLOEXEC));
  if (!fd_)
    throw IoError("cannot create a temporary file beside " + path + ": " + sys::errno_text(errno) +
                  "; check that its folder exists and is writable");
  const mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd_.get(), static_cast<mode_t>(mode) & ~mask) != 0) {  // mkostemp makes it 0600
    const int err = errno;
    unlink(tmp_.c_str());
    throw IoError("cannot set the mode of " + tmp_ + ": " + sys::errno_text(err));
  }
}

TempImageFile::~TempImageFile() {
  if (!committed_) unlink(tmp_.c_str());
}

void TempImageFile::commit() {
  if (rename(tmp_.c_str(), path_.c_str()) != 0)
    throw IoError("cannot rename " + tmp_ + " to " + path_ + ": " + sys::errno_text(errno));
  committed_ = true;
}

}  // namespace subctx::image
