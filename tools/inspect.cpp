// `subctx inspect IMAGE`: what is in an image, from its header alone.  The
// segments are never mapped or read, so inspecting a 1 GB image is instant
// and works for images this machine could not map.
#include <fcntl.h>

#include <cinttypes>
#include <csignal>
#include <cstdio>

#include "cli.hpp"
#include "common/cpu_features.hpp"
#include "fault/syscalls.hpp"
#include "image_file.hpp"
#include "matchmaker/syscall_defaults.hpp"
#include "subctx/signature.hpp"
#include "sys/io.hpp"
#include "sys/proc_maps.hpp"
#include "table.hpp"
#include "text.hpp"

namespace subctx::tool {

namespace {

// "segment 3" for an address inside the image, "outside the segments" else.
std::string where(const image::ImageInfo& info, uint64_t a) {
  for (size_t i = 0; i < info.segments.size(); ++i)
    if (info.segments[i].contains(a)) return "segment " + std::to_string(i);
  return "outside the segments";
}

void print_metadata(const ImageFile& f, const image::ImageInfo& info) {
  std::printf("image:     %s\n", sys::printable(f.path(), sys::kNoLimit).c_str());
  std::printf("format:    version %" PRIu32 ", flags 0x%" PRIx32 "\n", info.version, info.flags);
  std::printf("creator:   %s (build-id %s)\n", sys::printable(info.creator_path, sys::kNoLimit).c_str(),
              info.build_id.empty() ? "none" : sys::printable(info.build_id, sys::kNoLimit).c_str());
  std::printf("created:   %s\n", utc_time(info.created_ns).c_str());
  std::printf("kernel:    %s\n", sys::printable(info.kernel, sys::kNoLimit).c_str());
  std::printf("libc:      %s\n", sys::printable(info.libc, sys::kNoLimit).c_str());
  const std::string cpu = cpu_feature_names(info.cpu_features);
  std::printf("cpu needs: %s\n", cpu.empty() ? "(no optional features)" : cpu.c_str());
  std::printf("programs:  %s\n",
              (info.flags & image::kFlagSpawns)
                  ? "declares that it starts programs (allowed unless a client policy denies it)"
                  : "does not declare that it starts programs (only a client policy rule allows it)");
  std::printf("digest:    0x%016" PRIx64 " (header)\n", info.header_digest);
}

void print_thread(const image::ImageInfo& info) {
  const auto& t = info.thread;
  std::printf("\nthread:\n");
  std::printf("  thread pointer  %s (%s)\n", address(t.tcb).c_str(), where(info, t.tcb).c_str());
  std::printf("  gate stack      %s-%s (%s, %s)\n", address(t.gate_stack_lo).c_str(), address(t.gate_stack_hi).c_str(),
              human_size(t.gate_stack_hi - t.gate_stack_lo).c_str(), where(info, t.gate_stack_lo).c_str());
  auto opt = [](uint64_t a) { return a ? address(a) : std::string("none"); };
  std::printf("  stdio           stdout %s, stderr %s, fflush %s\n", opt(t.stdout_file).c_str(),
              opt(t.stderr_file).c_str(), opt(t.fflush_fn).c_str());
}

void print_segments(const image::ImageInfo& info) {
  std::printf("\nsegments (%zu):\n", info.segments.size());
  Table table({"#", "start", "end", "perm", "kind", "size", "in file", "origin"},
              {Table::Right, Table::Left, Table::Left, Table::Left, Table::Left, Table::Right, Table::Right,
               Table::Left});
  for (size_t i = 0; i < info.segments.size(); ++i) {
    const auto& s = info.segments[i];
    table.add({std::to_string(i), address(s.vaddr), address(s.end()), subctx::sys::perm_string(s.prot),
               image::segment_kind_name(s.kind), human_size(s.memsz), human_size(s.filesz),
               s.origin.empty() ? "-" : sys::printable(s.origin, sys::kNoLimit)});
  }
  table.print(stdout);
}

void print_exports(const image::ImageInfo& info) {
  std::printf("\nexports (%zu):\n", info.exports.size());
  Table table({"name", "address", "signature", "visibility"}, {});
  for (const auto& e : info.exports)
    table.add({e.name, address(e.address), e.signature,
               e.visibility == static_cast<uint8_t>(Visibility::Public) ? "public" : "restricted"});
  table.print(stdout);
}

// Imports (docs/callbacks.md): numbered as the stubs number them.
void print_imports(const image::ImageInfo& info) {
  if (info.imports.empty()) {
    std::printf("\nimports:   none\n");
    return;
  }
  std::printf("\nimports (%zu; each client binds them, sbc_bind):\n", info.imports.size());
  Table table({"#", "name", "signature"}, {});
  for (size_t i = 0; i < info.imports.size(); ++i)
    table.add({std::to_string(i), info.imports[i].name, info.imports[i].signature});
  table.print(stdout);
}

void print_vdso(const image::ImageInfo& info) {
  const auto& v = info.vdso;
  if (!v.base) {
    std::printf("\nvdso:      none (the server had no vDSO; nothing to forward)\n");
    return;
  }
  std::string names;
  for (const auto& s : v.symbols) names += (names.empty() ? "" : " ") + sys::printable(s.name, sys::kNoLimit);
  std::printf("\nvdso:      %s-%s (%s), %zu symbols forwarded by name%s%s\n", address(v.base).c_str(),
              address(v.base + v.size).c_str(), human_size(v.size).c_str(), v.symbols.size(), names.empty() ? "" : ": ",
              names.c_str());
}

// The Matchmaker's defaults (matchmaker/syscall_defaults.cpp, the table
// docs/containment.md has), then the image's own rules over them (a client
// can add its own per map: MapOptions::syscalls).
void print_syscall_policy(const image::ImageInfo& info) {
  std::string why;
  const bool mediated = fault::syscall_dispatch_available(&why);
  std::printf("\nsystem calls of subcontext code: %s\n",
              mediated ? "mediated (Syscall User Dispatch): the defaults, then the image's rules"
                       : ("not mediated on this machine (" + why + "); with Syscall User Dispatch:").c_str());
  Table table({"system call", "what happens"}, {});
  using matchmaker::without_markup;
  for (const matchmaker::SyscallDefaultRow& row : matchmaker::syscall_defaults())  // the docs table, plain
    table.add({without_markup(matchmaker::syscall_default_cell(row)), without_markup(row.what)});
  for (const auto& r : info.syscall_rules) {
    const char* action[] = {"allowed (image rule)", "denied: errno ", "the call fails (image rule)"};
    std::string what = r.action <= 2 ? action[r.action] : "?";
    if (r.action == 1) what += std::to_string(r.error) + " (image rule)";
    table.add({sys::printable(r.syscall, sys::kNoLimit), what});
  }
  table.print(stdout);
}

// "r", "w", "rw", or "path" for an O_PATH descriptor (no access at all).
std::string fd_access(uint32_t flags) {
  if (flags & O_PATH) return "path";
  switch (flags & O_ACCMODE) {
    case O_RDONLY: return "r";
    case O_WRONLY: return "w";
    case O_RDWR: return "rw";
  }
  return "?";
}

// The flags that change what the server's code sees ("append,cloexec"), or "-".
std::string fd_flags(uint32_t flags) {
  struct Name {
    uint32_t bit;
    const char* name;
  };
  static const Name kNames[] = {{O_APPEND, "append"},  {O_CLOEXEC, "cloexec"}, {O_NONBLOCK, "nonblock"},
                                {O_SYNC, "sync"},      {O_DSYNC, "dsync"},     {O_DIRECT, "direct"},
                                {O_NOATIME, "noatime"}};
  std::string out;
  for (const Name& n : kNames) {
    if ((flags & n.bit) != n.bit) continue;
    if (n.bit == O_DSYNC && (flags & O_SYNC) == O_SYNC) continue;  // O_SYNC includes O_DSYNC's bit
    out += (out.empty() ? "" : ",") + std::string(n.name);
  }
  return out.empty() ? "-" : out;
}

std::string signal_action(uint8_t action) {
  switch (action) {
    case 0: return "default (ends the process)";
    case 1: return "ignored";
    case 2: return "a handler";
  }
  return "?";
}

// What the image's memory takes for granted about the kernel: its
// descriptors (reopened by path in every client, or dropped), working
// directory, umask, pid and signal dispositions (docs/identity.md).
void print_identity(const image::ImageInfo& info) {
  const auto& id = info.identity;
  std::printf("\nidentity:\n");
  std::printf("  working directory  %s\n", sys::printable(id.cwd, sys::kNoLimit).c_str());
  std::printf("  umask              %03" PRIo32 "\n", id.umask);
  std::printf("  server pid         %" PRId32 "\n", id.pid);
  for (const auto& s : id.signals) {
    const char* name = s.signal == SIGPIPE ? "SIGPIPE" : s.signal == SIGXFSZ ? "SIGXFSZ" : "?";
    std::printf("  %-18s %s\n", name, signal_action(s.action).c_str());
  }
  std::printf("\ndescriptors (%zu; 0-2 are the client's own):\n", id.fds.size());
  if (id.fds.empty()) return;
  Table table({"fd", "kind", "access", "flags", "offset", "in a client", "path"},
              {Table::Right, Table::Left, Table::Left, Table::Left, Table::Right, Table::Left, Table::Left});
  for (const auto& f : id.fds) {
    std::string restore = f.dropped ? "dropped" : "reopened";
    if (f.same_as >= 0) restore += " (shared with fd " + std::to_string(f.same_as) + ")";
    table.add({std::to_string(f.number), image::fd_kind_name(f.kind), fd_access(f.flags), fd_flags(f.flags),
               std::to_string(f.offset), restore, sys::printable(f.path, sys::kNoLimit)});
  }
  table.print(stdout);
}

// The hot-pages note (`subctx train`, docs/prefetch.md).
void print_hot_pages(const image::ImageInfo& info) {
  if (info.hot_pages.empty()) {
    std::printf("\nhot pages: none recorded (`subctx train` records them; nothing is populated at map)\n");
    return;
  }
  uint64_t pages = 0;
  for (const auto& r : info.hot_pages) pages += r.pages;
  std::printf("\nhot pages: %zu runs, %" PRIu64 " pages (%s), populated at map (SUBCTX_PREFETCH=off: not)\n",
              info.hot_pages.size(), pages, human_size(pages * image::kPageSize).c_str());
}

void print_totals(const ImageFile& f, const image::ImageInfo& info) {
  // st_blocks counts 512-byte units whatever the file system's block size;
  // zero pages are holes, so this is what the image really costs on disk.
  const uint64_t on_disk = static_cast<uint64_t>(f.stat().st_blocks) * 512;
  std::printf("\ntotals:\n");
  std::printf("  virtual size  %s in %zu segments\n", size_and_bytes(info.virtual_size()).c_str(),
              info.segments.size());
  std::printf("  on disk       %s\n", size_and_bytes(on_disk).c_str());
  std::printf("  file size     %s\n", size_and_bytes(static_cast<uint64_t>(f.stat().st_size)).c_str());
}

}  // namespace

int run_inspect(const std::vector<std::string>& args) {
  if (args.size() != 1)
    throw UsageError("inspect",
                     "inspect takes exactly one argument, the image path (got " + std::to_string(args.size()) + ")");
  const ImageFile f = ImageFile::open(args[0]);
  const image::ImageInfo info = f.read_header();
  print_metadata(f, info);
  print_thread(info);
  print_segments(info);
  print_exports(info);
  print_imports(info);
  print_vdso(info);
  print_syscall_policy(info);
  print_identity(info);
  print_hot_pages(info);
  print_totals(f, info);
  return kExitOk;
}

}  // namespace subctx::tool
