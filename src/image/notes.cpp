#include "image/notes.hpp"

#include <string_view>

#include "subctx/error.hpp"
#include "sys/io.hpp"

namespace subctx::image {

void NoteContext::bad(const std::string& msg) const { throw BadImage(what + ": " + msg); }

void NoteContext::done(const ByteReader& r, const char* note) const {
  if (!r.ok()) bad(std::string("malformed ") + note + " note (truncated or field too long)");
}

namespace {

// Informational strings are cut to what the reader accepts; names, paths
// and signatures that mean something are written whole (the server and the
// snapshot refuse ones that do not fit).
std::string_view cut(const std::string& s, size_t max) { return std::string_view(s).substr(0, max); }

// --- version: u32 format version, u32 flags ---------------------------------

void encode_version(ByteWriter& w, const ImageInfo& info) {
  w.u32(info.version);
  w.u32(info.flags);
}

void decode_version(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  info.version = r.u32();
  info.flags = r.u32();
  ctx.done(r, "version");
  if (info.version != kFormatVersion)
    throw UnsupportedVersion(ctx.what + ": image format version " + std::to_string(info.version) +
                             "; this subctx reads version " + std::to_string(kFormatVersion) +
                             " (rewrite the image with a matching subctx server library)");
}

// --- creator: str executable path, str build id (hex) -----------------------

void encode_creator(ByteWriter& w, const ImageInfo& info) {
  w.str(cut(info.creator_path, kMaxText));
  w.str(cut(info.build_id, kMaxName));
}

void decode_creator(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  info.creator_path = r.str(kMaxText);
  info.build_id = r.str(kMaxName);
  ctx.done(r, "creator");
}

// --- provenance: u64 created (ns), str kernel, str libc ---------------------

void encode_provenance(ByteWriter& w, const ImageInfo& info) {
  w.u64(info.created_ns);
  w.str(cut(info.kernel, kMaxName));
  w.str(cut(info.libc, kMaxName));
}

void decode_provenance(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  info.created_ns = r.u64();
  info.kernel = r.str(kMaxName);
  info.libc = r.str(kMaxName);
  ctx.done(r, "provenance");
}

// --- cpu: u64 required feature bits -----------------------------------------

void encode_cpu(ByteWriter& w, const ImageInfo& info) { w.u64(info.cpu_features); }

void decode_cpu(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  info.cpu_features = r.u64();
  ctx.done(r, "cpu");
}

// --- thread: tcb, gate stack, stdio hooks -----------------------------------

void encode_thread(ByteWriter& w, const ImageInfo& info) {
  const ThreadRecord& t = info.thread;
  w.u64(t.tcb);
  w.u64(t.gate_stack_lo);
  w.u64(t.gate_stack_hi);
  w.u64(t.stdout_file);
  w.u64(t.stderr_file);
  w.u64(t.fflush_fn);
}

void decode_thread(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  ThreadRecord& t = info.thread;
  t.tcb = r.u64();
  t.gate_stack_lo = r.u64();
  t.gate_stack_hi = r.u64();
  t.stdout_file = r.u64();
  t.stderr_file = r.u64();
  t.fflush_fn = r.u64();
  ctx.done(r, "thread");
}

// --- exports: u32 n, n x {u64 address, u8 visibility, str name, str signature}

void encode_exports(ByteWriter& w, const ImageInfo& info) {
  w.u32(static_cast<uint32_t>(info.exports.size()));
  for (const ExportRecord& e : info.exports) {
    w.u64(e.address);
    w.u8(e.visibility);
    w.str(e.name);
    w.str(e.signature);
  }
}

void decode_exports(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  const uint32_t n = r.u32();
  ctx.done(r, "exports");
  if (n > ctx.max_exports)
    throw LimitExceeded(ctx.what + ": image has " + std::to_string(n) +
                        " exports; limit 'exports per image' (SUBCTX_MAX_EXPORTS) is " +
                        std::to_string(ctx.max_exports));
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ExportRecord e;
    e.address = r.u64();
    e.visibility = r.u8();
    e.name = r.str(kMaxName);
    e.signature = r.str(kMaxName);
    info.exports.push_back(std::move(e));
  }
  ctx.done(r, "exports");
}

// --- imports (optional): u32 n, n x {str name, str signature} ---------------

void encode_imports(ByteWriter& w, const ImageInfo& info) {
  w.u32(static_cast<uint32_t>(info.imports.size()));
  for (const ImportRecord& i : info.imports) {
    w.str(i.name);
    w.str(i.signature);
  }
}

void decode_imports(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  const uint32_t n = r.u32();
  ctx.done(r, "imports");
  if (n > kMaxImports)
    ctx.bad("image has " + std::to_string(n) + " imports; the server library has stubs for " +
            std::to_string(kMaxImports));
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ImportRecord rec;
    rec.name = r.str(kMaxName);
    rec.signature = r.str(kMaxName);
    info.imports.push_back(std::move(rec));
  }
  ctx.done(r, "imports");
}

// --- vdso: u64 base, u64 size, u32 n, n x {u64 offset, str name} ------------

void encode_vdso(ByteWriter& w, const ImageInfo& info) {
  w.u64(info.vdso.base);
  w.u64(info.vdso.size);
  w.u32(static_cast<uint32_t>(info.vdso.symbols.size()));
  for (const VdsoSymbol& s : info.vdso.symbols) {
    w.u64(s.offset);
    w.str(s.name);
  }
}

void decode_vdso(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  info.vdso.base = r.u64();
  info.vdso.size = r.u64();
  const uint32_t n = r.u32();
  ctx.done(r, "vdso");
  if (n > kMaxVdsoSymbols)
    ctx.bad("vdso note lists " + std::to_string(n) + " symbols (at most " + std::to_string(kMaxVdsoSymbols) + ")");
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    VdsoSymbol s;
    s.offset = r.u64();
    s.name = r.str(kMaxName);
    info.vdso.symbols.push_back(std::move(s));
  }
  ctx.done(r, "vdso");
}

// --- segments: u32 n (= PT_LOAD count), n x {u8 kind, str origin} -----------

void encode_segments(ByteWriter& w, const ImageInfo& info) {
  w.u32(static_cast<uint32_t>(info.segments.size()));
  for (const SegmentRecord& s : info.segments) {
    w.u8(static_cast<uint8_t>(s.kind));
    w.str(cut(s.origin, kMaxText));
  }
}

void decode_segments(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  const uint32_t n = r.u32();
  ctx.done(r, "segments");
  if (n != info.segments.size())
    ctx.bad("segments note lists " + std::to_string(n) + " segments, the program headers " +
            std::to_string(info.segments.size()));
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const uint8_t kind = r.u8();
    if (kind > static_cast<uint8_t>(SegmentKind::GateGuard)) ctx.bad("segment " + std::to_string(i) + ": unknown kind");
    info.segments[i].kind = static_cast<SegmentKind>(kind);
    info.segments[i].origin = r.str(kMaxText);
  }
  ctx.done(r, "segments");
}

// --- syscalls (optional): u32 n, n x {str syscall, u8 action, u32 errno} ----

void encode_syscalls(ByteWriter& w, const ImageInfo& info) {
  w.u32(static_cast<uint32_t>(info.syscall_rules.size()));
  for (const SyscallRuleRecord& rule : info.syscall_rules) {
    w.str(cut(rule.syscall, kMaxSyscallName));
    w.u8(rule.action);
    w.u32(rule.error);
  }
}

// A rule is refused as soon as it is read: an image may only narrow the
// Matchmaker's defaults (kImageRulesNarrowOnly).
void decode_syscalls(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  const uint32_t n = r.u32();
  ctx.done(r, "syscalls");
  if (n > kMaxSyscallRules)
    ctx.bad("syscalls note lists " + std::to_string(n) + " rules (at most " + std::to_string(kMaxSyscallRules) + ")");
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    SyscallRuleRecord rule;
    rule.syscall = r.str(kMaxSyscallName);
    rule.action = r.u8();
    rule.error = r.u32();
    const std::string which = "system call rule " + std::to_string(i);
    if (r.ok() && rule.action > 2) ctx.bad(which + ": unknown action");
    if (r.ok() && rule.action == 0)
      ctx.bad(which + " (allow " + sys::printable(rule.syscall, kMaxSyscallName) + "): " + kImageRulesNarrowOnly);
    if (r.ok() && rule.action == 1 && (rule.error == 0 || rule.error >= 4096))
      ctx.bad(which + ": errno " + std::to_string(rule.error) + " is not in 1..4095");
    info.syscall_rules.push_back(std::move(rule));
  }
  ctx.done(r, "syscalls");
}

// --- identity: umask, pid, cwd, descriptor records, signal records ----------

// Paths are written whole, never cut like the informational strings: a cut
// path names another file, which a client would open.  collect_identity()
// refuses paths the reader would.
void encode_identity(ByteWriter& w, const ImageInfo& info) {
  const IdentityRecord& id = info.identity;
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

FdRecord decode_fd_record(ByteReader& r, const NoteContext& ctx, uint32_t index) {
  FdRecord f;
  f.number = static_cast<int32_t>(r.u32());
  const uint8_t kind = r.u8();
  const uint8_t dropped = r.u8();
  f.flags = r.u32();
  f.offset = r.u64();
  f.same_as = static_cast<int32_t>(r.u32());
  f.path = r.str(kMaxNotesSize);
  if (!r.ok()) return f;  // the caller reports the truncation
  const std::string what =
      "identity: descriptor record " + std::to_string(index) + " (fd " + std::to_string(f.number) + ")";
  if (kind > static_cast<uint8_t>(FdKind::Other)) ctx.bad(what + ": unknown kind " + std::to_string(kind));
  if (dropped > 1) ctx.bad(what + ": dropped flag " + std::to_string(dropped) + " is neither 0 nor 1");
  f.kind = static_cast<FdKind>(kind);
  f.dropped = dropped == 1;
  return f;
}

// Strings are read up to the note's own size (the notes are at most 64 MiB)
// and their lengths checked by the reader's validation, for a message that
// says which path is too long rather than "malformed".
void decode_identity_fields(ByteReader& r, const NoteContext& ctx, IdentityRecord& id) {
  id.umask = r.u32();
  id.pid = static_cast<int32_t>(r.u32());
  id.cwd = r.str(kMaxNotesSize);
  const uint32_t nfds = r.u32();
  if (!r.ok()) return;
  if (nfds > kMaxFds)
    ctx.bad("identity note lists " + std::to_string(nfds) + " descriptors (at most " + std::to_string(kMaxFds) + ")");
  for (uint32_t i = 0; i < nfds && r.ok(); ++i) id.fds.push_back(decode_fd_record(r, ctx, i));
  const uint32_t nsignals = r.u32();
  if (!r.ok()) return;
  if (nsignals > kMaxSignalRecords)
    ctx.bad("identity note lists " + std::to_string(nsignals) + " signal dispositions (at most " +
            std::to_string(kMaxSignalRecords) + ")");
  for (uint32_t i = 0; i < nsignals && r.ok(); ++i) {
    SignalRecord s;
    s.signal = r.u8();
    s.action = r.u8();
    id.signals.push_back(s);
  }
}

void decode_identity(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  decode_identity_fields(r, ctx, info.identity);
  ctx.done(r, "identity");
  if (r.remaining() != 0) ctx.bad("identity note has trailing bytes");
}

// --- hot pages (optional): u32 n, n x {u64 vaddr, u32 pages} ----------------

void encode_hot_pages(ByteWriter& w, const ImageInfo& info) {
  w.u32(static_cast<uint32_t>(info.hot_pages.size()));
  for (const HotRun& run : info.hot_pages) {
    w.u64(run.vaddr);
    w.u32(run.pages);
  }
}

// The count is checked before anything is allocated for it; the runs
// themselves by the reader's validation, against the segments.
void decode_hot_pages(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  const uint32_t n = r.u32();
  if (r.ok() && n > kMaxHotRuns)
    throw LimitExceeded(ctx.what + ": hot-pages note lists " + std::to_string(n) + " runs; at most " +
                        std::to_string(kMaxHotRuns) + " (kMaxHotRuns) are read; train the image again");
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    HotRun run;
    run.vaddr = r.u64();
    run.pages = r.u32();
    info.hot_pages.push_back(run);
  }
  ctx.done(r, "hot-pages");
  if (r.remaining() != 0) ctx.bad("hot-pages note has trailing bytes");
}

// --- digests (last): u64 header digest, u32 n, u32 0, n x u64 ---------------

void encode_digests(ByteWriter& w, const ImageInfo& info) {
  w.u64(info.header_digest);
  w.u32(static_cast<uint32_t>(info.segments.size()));
  w.u32(0);
  for (const SegmentRecord& s : info.segments) w.u64(s.digest);
}

void decode_digests(ByteReader& r, const NoteContext& ctx, ImageInfo& info) {
  info.header_digest = r.u64();
  const uint32_t n = r.u32();
  r.u32();
  ctx.done(r, "digests");
  if (n != info.segments.size())
    ctx.bad("digest note lists " + std::to_string(n) + " segments, the program headers " +
            std::to_string(info.segments.size()));
  for (uint32_t i = 0; i < n && r.ok(); ++i) info.segments[i].digest = r.u64();
  ctx.done(r, "digests");
  if (r.remaining() != 0) ctx.bad("digest note has trailing bytes");
}

constexpr NoteCodec kCodecs[] = {
    {kNoteVersion, encode_version, decode_version},
    {kNoteCreator, encode_creator, decode_creator},
    {kNoteProvenance, encode_provenance, decode_provenance},
    {kNoteCpu, encode_cpu, decode_cpu},
    {kNoteThread, encode_thread, decode_thread},
    {kNoteExports, encode_exports, decode_exports},
    {kNoteImports, encode_imports, decode_imports},
    {kNoteVdso, encode_vdso, decode_vdso},
    {kNoteSegments, encode_segments, decode_segments},
    {kNoteSyscalls, encode_syscalls, decode_syscalls},
    {kNoteIdentity, encode_identity, decode_identity},
    {kNoteHotPages, encode_hot_pages, decode_hot_pages},
    {kNoteDigests, encode_digests, decode_digests},
};

}  // namespace

const NoteCodec* find_note_codec(uint32_t type) {
  for (const NoteCodec& c : kCodecs)
    if (c.type == type) return &c;
  return nullptr;
}

}  // namespace subctx::image
