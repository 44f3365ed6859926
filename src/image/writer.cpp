#include "image/writer.hpp"

#include <elf.h>
#include <sys/mman.h>

#include <cstring>

#include "image/bytes.hpp"
#include "image/digest.hpp"

namespace subctx::image {

namespace {

void append_note(std::vector<uint8_t>& out, uint32_t type, const std::vector<uint8_t>& desc) {
  ByteWriter w(out);
  w.u32(sizeof kNoteOwner);  // namesz includes the NUL
  w.u32(static_cast<uint32_t>(desc.size()));
  w.u32(type);
  w.raw(kNoteOwner, sizeof kNoteOwner);
  while (out.size() % 4) out.push_back(0);
  w.raw(desc.data(), desc.size());
  while (out.size() % 4) out.push_back(0);
}

// The identity note (docs/format.md).  Paths are written whole, never cut
// like the informational strings: a cut path names another file, which a
// client would open.  collect_identity() refuses paths the reader would.
void encode_identity(ByteWriter& w, const IdentityRecord& id) {
  w.u32(id.umask);
  w.u32(static_cast<uint32_t>(id.pid));
  w.str(id.cwd);
  w.u32(static_cast<uint32_t>(id.fds.size()));
  for (const FdRecord& f : id.fds) {
    w.u32(static_cast<uint32_t>(f.number));
    w.u8(static_cast<uint8_t>(f.kind));
    w.u8(f.dropped ? 1 : 0);
    w.u32(f.flags);
    w.u64(f.offset);
    w.u32(static_cast<uint32_t>(f.same_as));
    w.str(f.path);
  }
  w.u32(static_cast<uint32_t>(id.signals.size()));
  for (const SignalRecord& s : id.signals) {
    w.u8(s.signal);
    w.u8(s.action);
  }
}

uint32_t elf_flags(int prot) {
  return ((prot & PROT_READ) ? PF_R : 0) | ((prot & PROT_WRITE) ? PF_W : 0) |
         ((prot & PROT_EXEC) ? PF_X : 0);
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
  std::vector<uint8_t> notes;
  std::vector<uint8_t> d;
  ByteWriter w(d);
  auto flush = [&](uint32_t type) {
    append_note(notes, type, d);
    d.clear();
  };
  w.u32(info.version);
  w.u32(info.flags);
  flush(kNoteVersion);
  // Informational strings are cut to what the reader accepts (4096 / 255).
  auto cut = [](const std::string& s, size_t max) { return std::string_view(s).substr(0, max); };
  w.str(cut(info.creator_path, 4096));
  w.str(cut(info.build_id, 255));
  flush(kNoteCreator);
  w.u64(info.created_ns);
  w.str(cut(info.kernel, 255));
  w.str(cut(info.libc, 255));
  flush(kNoteProvenance);
  w.u64(info.cpu_features);
  flush(kNoteCpu);
  w.u64(info.thread.tcb);
  w.u64(info.thread.gate_stack_lo);
  w.u64(info.thread.gate_stack_hi);
  w.u64(info.thread.stdout_file);
  w.u64(info.thread.stderr_file);
  w.u64(info.thread.fflush_fn);
  flush(kNoteThread);
  w.u32(static_cast<uint32_t>(info.exports.size()));
  for (const auto& e : info.exports) {
    w.u64(e.address);
    w.u8(e.visibility);
    w.str(e.name);
    w.str(e.signature);
  }
  flush(kNoteExports);
  if (!info.imports.empty()) {
    w.u32(static_cast<uint32_t>(info.imports.size()));
    for (const auto& i : info.imports) {
      w.str(i.name);
      w.str(i.signature);
    }
    flush(kNoteImports);
  }
  w.u64(info.vdso.base);
  w.u64(info.vdso.size);
  w.u32(static_cast<uint32_t>(info.vdso.symbols.size()));
  for (const auto& s : info.vdso.symbols) {
    w.u64(s.offset);
    w.str(s.name);
  }
  flush(kNoteVdso);
  w.u32(static_cast<uint32_t>(info.segments.size()));
  for (const auto& s : info.segments) {
    w.u8(static_cast<uint8_t>(s.kind));
    w.str(cut(s.origin, 4096));
  }
  flush(kNoteSegments);
  if (!info.syscall_rules.empty()) {  // optional: older readers skip it
    w.u32(static_cast<uint32_t>(info.syscall_rules.size()));
    for (const auto& r : info.syscall_rules) {
      w.str(cut(r.syscall, 64));
      w.u8(r.action);
      w.u32(r.error);
    }
    flush(kNoteSyscalls);
  }
  if (!info.hot_pages.empty()) {  // optional (`subctx train`); the reader checks the bounds
    w.u32(static_cast<uint32_t>(info.hot_pages.size()));
    for (const HotRun& run : info.hot_pages) {
      w.u64(run.vaddr);
      w.u32(run.pages);
    }
    flush(kNoteHotPages);
  }
  // Always written (required since version 2), even for a server with no
  // descriptors: the cwd and pid are part of what its memory means.
  encode_identity(w, info.identity);
  flush(kNoteIdentity);
  // Digests last: the header digest covers everything before it.
  w.u64(info.header_digest);
  w.u32(static_cast<uint32_t>(info.segments.size()));
  w.u32(0);
  for (const auto& s : info.segments) w.u64(s.digest);
  const size_t digests_desc_in_notes = notes.size() + 12 + 8;  // note header + "SUBCTX\0" padded
  flush(kNoteDigests);

  EncodedHeader h;
  h.bytes.resize(notes_off + notes.size());
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
  std::memcpy(h.bytes.data(), &eh, sizeof eh);

  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = notes_off;
  note.p_filesz = notes.size();
  note.p_align = 4;
  std::memcpy(h.bytes.data() + sizeof eh, &note, sizeof note);
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
    std::memcpy(h.bytes.data() + sizeof eh + (i + 1) * sizeof ph, &ph, sizeof ph);
  }
  std::memcpy(h.bytes.data() + notes_off, notes.data(), notes.size());
  h.header_digest_offset = notes_off + digests_desc_in_notes;
  h.segment_digests_offset = h.header_digest_offset + 16;
  h.data_start = page_round_up(h.bytes.size());
  return h;
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

}  // namespace subctx::image
