// `subctx call [--memory] IMAGE EXPORT [ARGS...]`: maps the image like any client,
// types each argument by the export's signature, and calls through the C API
// (the one entry point that takes arguments whose types are known only at
// run time).
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "call_args.hpp"
#include "cli.hpp"
#include "parse_arg.hpp"
#include "read_string.hpp"
#include "subctx/subctx.h"
#include "subctx/subctx.hpp"
#include "sys/io.hpp"

namespace subctx::tool {

namespace {

// Longest str result printed; a result without a NUL this close is most
// likely a wrong pointer, not a string.
constexpr size_t kMaxResultString = size_t{1} << 20;
// Exports listed by name in an "unknown export" message.
constexpr size_t kMaxListedExports = 12;

std::string plural(size_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

}  // namespace

ExportInfo find_export(const Subcontext& sc, const std::string& name) {
  const std::vector<ExportInfo> all = sc.exports();
  for (const auto& e : all)
    if (e.name == name) return e;
  std::string names;
  for (size_t i = 0; i < all.size() && i < kMaxListedExports; ++i) names += (i ? ", " : "") + all[i].name;
  if (all.size() > kMaxListedExports)
    names += ", ... (`subctx inspect " + sc.path() + "` lists all " + std::to_string(all.size()) + ")";
  throw NoSuchExport("image " + sc.path() + " has no export \"" + sys::printable(name) + "\"; " +
                     (all.empty() ? std::string("it has no exports") : "its exports are: " + names));
}

std::vector<uint64_t> parse_args(const std::string& path, const ExportInfo& e, const Signature& sig,
                                 const std::vector<std::string>& text) {
  if (text.size() != sig.args.size())
    throw UsageError("call", "export \"" + e.name + "\" of " + path + " has signature " + e.signature + ": it takes " +
                                 plural(sig.args.size(), "argument") + ", got " + std::to_string(text.size()));
  std::vector<uint64_t> raw(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    std::string why;
    if (!parse_arg(sig.args[i], text[i].c_str(), &raw[i], &why))
      throw UsageError("call", "argument " + std::to_string(i + 1) + " of \"" + e.name + "\" (" +
                                   std::string(value_type_name(sig.args[i])) + " in " + e.signature + "): \"" +
                                   sys::printable(text[i]) + "\" " + why);
  }
  return raw;
}

namespace {

void print_result(const std::string& export_name, ValueType type, uint64_t ret) {
  switch (type) {
    case ValueType::Void: return;
    case ValueType::I32:  // the C API sign-extends i32 results
    case ValueType::I64: std::printf("%" PRId64 "\n", static_cast<int64_t>(ret)); return;
    case ValueType::U32:
    case ValueType::U64: std::printf("%" PRIu64 "\n", ret); return;
    case ValueType::F64: {
      double d;
      std::memcpy(&d, &ret, sizeof d);
      std::printf("%.17g\n", d);
      return;
    }
    case ValueType::Ptr: std::printf("0x%" PRIx64 "\n", ret); return;
    case ValueType::Str: break;
  }
  if (ret == 0) {
    std::printf("(null)\n");
    return;
  }
  const ReadString s = read_string(ret, kMaxResultString);
  if (!s.ok)
    throw SystemError("export \"" + export_name + "\" returned a str pointer that cannot be read (" + s.error +
                      "); the export's code or its signature is wrong");
  std::printf("%s\n", s.text.c_str());
  if (s.truncated)
    std::fprintf(stderr, "subctx: the str result of \"%s\" has no NUL in its first %zu bytes; printed that much\n",
                 export_name.c_str(), kMaxResultString);
}

}  // namespace

int run_call(const std::vector<std::string>& args) {
  if (args.size() < 2)
    throw UsageError("call",
                     "call needs an image path and an export name (got " + plural(args.size(), "argument") + ")");
  // --memory: after the call, what the subcontext used (stderr).
  const bool show_memory = args[0] == "--memory";
  if (show_memory && args.size() < 3) throw UsageError("call", "call --memory needs an image path and an export name");
  const std::string& path = args[show_memory];
  const std::string& name = args[show_memory + 1];
  const std::vector<std::string> arg_text(args.begin() + 2 + show_memory, args.end());

  const Subcontext sc = Matchmaker::instance().request_map(path);
  const ExportInfo e = find_export(sc, name);
  Signature sig;
  std::string why;
  if (!parse_signature(e.signature, &sig, &why))  // the reader validated it; kept as a guard
    throw BadImage("image " + path + ": export \"" + e.name + "\": " + why);
  const std::vector<uint64_t> raw = parse_args(path, e, sig, arg_text);

  uint64_t ret = 0;
  const int rc = sbc_request_call(sc.handle(), e.name.c_str(), raw.data(), raw.size(), &ret);
  if (rc < 0) throw_error(static_cast<Errc>(-rc), sbc_last_error());
  print_result(e.name, sig.result, ret);
  if (show_memory) {
    const MemoryInfo m = sc.memory();
    std::fprintf(stderr,
                 "memory: %" PRIu64 " dirty pages (peak %" PRIu64 "), %" PRIu64
                 " bytes mapped by subcontext code (peak %" PRIu64 ")\n",
                 m.dirty_pages, m.peak_dirty_pages, m.mapped_bytes, m.peak_mapped_bytes);
  }
  return kExitOk;
}

}  // namespace subctx::tool
