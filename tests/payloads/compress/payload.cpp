// The compress payload: zlib and zstd with state made before the snapshot
// (a z_stream from deflateInit2, a zstd context, a dictionary trained by
// ZDICT_trainFromBuffer and its CDict/DDict), driven by a small command
// language.  Data is generated inside (data.hpp), so an input is one line:
//
//   zlib|gzip|raw|zstd|zstd-dict LEVEL KIND SIZE [seed=N] [options]
//        compress (options: strategy=filtered|huffman|rle|fixed for zlib,
//        checksum=1 window=LOG for zstd; zstd-dict LEVEL may be "cdict"),
//        decompress, report sizes and crc32s
//   zlib-stream|zstd-stream LEVEL KIND SIZE chunk=N [seed=N]
//        the same through the streaming APIs, fed chunk bytes at a time
//   corrupt ALGO LEVEL KIND SIZE at=N [xor=V] [seed=N]
//        compress, flip a byte, decompress: the library's error
//   truncate ALGO LEVEL KIND SIZE keep=N [seed=N]
//   nodict LEVEL KIND SIZE       a dictionary frame decompressed without it
//   decompress ALGO HEX          decompress bytes given in hex
//   checksum KIND SIZE [seed=N]  crc32, adler32, crc32_combine
//   frame LEVEL KIND SIZE        what the zstd frame header says
//   dict | bound SIZE | version
//
// KIND: text records binary random zeros (data.hpp).
#include <zdict.h>

#include <charconv>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <vector>

#include "compress.hpp"
#include "data.hpp"
#include "payload.hpp"

const char* const payload::kName = "compress";

namespace compress_payload {
namespace {

z_stream g_deflater;
z_stream g_inflater;
ZSTD_CCtx* g_cctx;
ZSTD_DCtx* g_dctx;
std::string g_dictionary;
ZSTD_CDict* g_cdict;
ZSTD_DDict* g_ddict;

constexpr size_t kMaxSize = 32u << 20;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

uint32_t crc(std::string_view s) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

int64_t to_int(std::string_view s, const char* what) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    throw Failure(std::string("bad ") + what + " '" + std::string(s) + "'");
  return v;
}

// Words of a command, and its key=value options.
struct Command {
  std::vector<std::string> words;
  std::map<std::string, std::string> options;

  explicit Command(std::string_view input) {
    size_t i = 0;
    while (i < input.size()) {
      while (i < input.size() && (input[i] == ' ' || input[i] == '\n' || input[i] == '\t')) ++i;
      size_t j = i;
      while (j < input.size() && input[j] != ' ' && input[j] != '\n' && input[j] != '\t') ++j;
      if (j == i) break;
      std::string w(input.substr(i, j - i));
      if (size_t eq = w.find('='); eq != std::string::npos) options[w.substr(0, eq)] = w.substr(eq + 1);
      else words.push_back(std::move(w));
      i = j;
    }
  }
  const std::string& word(size_t i, const char* what) const {
    if (i >= words.size()) throw Failure(std::string("missing ") + what);
    return words[i];
  }
  int64_t option(const std::string& key, int64_t fallback) const {
    auto it = options.find(key);
    return it == options.end() ? fallback : to_int(it->second, key.c_str());
  }
};

// Data from words[first..first+1] (KIND SIZE) and seed=.
std::string data_of(const Command& c, size_t first) {
  const std::string& kind = c.word(first, "KIND");
  const int64_t size = to_int(c.word(first + 1, "SIZE"), "size");
  if (size < 0 || static_cast<size_t>(size) > kMaxSize)
    throw Failure("size out of range (0.." + std::to_string(kMaxSize) + ")");
  std::string out;
  if (!compress_data::make(kind, static_cast<size_t>(size), static_cast<uint64_t>(c.option("seed", 1)), &out))
    throw Failure("unknown kind '" + kind + "'");
  return out;
}

// ---- zlib ----

int window_bits(std::string_view algo) { return algo == "gzip" ? 31 : algo == "raw" ? -15 : 15; }

int strategy_of(const Command& c) {
  auto it = c.options.find("strategy");
  if (it == c.options.end()) return Z_DEFAULT_STRATEGY;
  if (it->second == "filtered") return Z_FILTERED;
  if (it->second == "huffman") return Z_HUFFMAN_ONLY;
  if (it->second == "rle") return Z_RLE;
  if (it->second == "fixed") return Z_FIXED;
  throw Failure("unknown strategy '" + it->second + "'");
}

std::string zlib_message(const z_stream& zs, int ret) { return zs.msg ? zs.msg : zError(ret); }

// Compresses with the image's z_stream for zlib framing; gzip and raw
// framing get a stream of their own (a stream cannot switch framing), made
// inside the call.  Fed `chunk` bytes at a time (0: all at once).
std::string zlib_compress(std::string_view algo, int level, int strategy, std::string_view in, size_t chunk) {
  z_stream fresh{};
  const bool own = algo == "gzip" || algo == "raw";
  z_stream& zs = own ? fresh : g_deflater;
  int ret = own ? deflateInit2(&zs, level, Z_DEFLATED, window_bits(algo), 8, strategy) : deflateReset(&zs);
  if (ret == Z_OK && !own) ret = deflateParams(&zs, level, strategy);
  if (ret != Z_OK) throw Failure("zlib deflate setup: " + zlib_message(zs, ret));
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  size_t fed = 0;
  do {
    const size_t n = chunk ? std::min(chunk, in.size() - fed) : in.size() - fed;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
    zs.avail_in = static_cast<uInt>(n);
    fed += n;
    ret = deflate(&zs, fed == in.size() ? Z_FINISH : Z_NO_FLUSH);
  } while (ret == Z_OK && fed < in.size());
  out.resize(zs.total_out);
  const std::string why = zlib_message(zs, ret);
  if (own) deflateEnd(&zs);
  if (ret != Z_STREAM_END) throw Failure("zlib deflate did not finish: " + why);
  return out;
}

std::string zlib_decompress(std::string_view algo, std::string_view in, size_t expect, size_t chunk) {
  z_stream& zs = g_inflater;
  int ret = inflateReset2(&zs, window_bits(algo));
  if (ret != Z_OK) throw Failure("zlib inflate setup: " + zlib_message(zs, ret));
  std::string out(expect ? expect : 1024, '\0');
  size_t fed = 0;
  zs.next_in = nullptr;
  zs.avail_in = 0;
  for (;;) {
    if (zs.avail_in == 0 && fed < in.size()) {
      const size_t n = chunk ? std::min(chunk, in.size() - fed) : in.size() - fed;
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
      zs.avail_in = static_cast<uInt>(n);
      fed += n;
    }
    if (zs.total_out == out.size()) out.resize(out.size() * 2 + 1024);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    ret = inflate(&zs, Z_NO_FLUSH);
    if (ret == Z_STREAM_END) break;
    if (ret == Z_BUF_ERROR && zs.avail_in == 0 && fed == in.size()) throw Failure("zlib inflate: truncated input");
    if (ret != Z_OK && ret != Z_BUF_ERROR) throw Failure("zlib inflate: " + zlib_message(zs, ret));
  }
  out.resize(zs.total_out);
  return out;
}

// ---- zstd ----

void zstd_check(size_t r, const char* what) {
  if (ZSTD_isError(r)) throw Failure(std::string("zstd ") + what + ": " + ZSTD_getErrorName(r));
}

// zstd-dict: the dictionary at `level`, or the CDict made before the snapshot.
std::string zstd_compress(const Command& c, int level, std::string_view in, bool dict, bool use_cdict) {
  ZSTD_CCtx* cctx = g_cctx;
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t r;
  if (use_cdict) {
    r = ZSTD_compress_usingCDict(cctx, out.data(), out.size(), in.data(), in.size(), g_cdict);
  } else if (dict) {
    r = ZSTD_compress_usingDict(cctx, out.data(), out.size(), in.data(), in.size(), g_dictionary.data(),
                                g_dictionary.size(), level);
  } else {
    zstd_check(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters), "reset");
    zstd_check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level), "level");
    zstd_check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, static_cast<int>(c.option("checksum", 0))),
               "checksum");
    if (c.options.count("window"))
      zstd_check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, static_cast<int>(c.option("window", 0))), "window");
    const size_t chunk = static_cast<size_t>(c.option("chunk", 0));
    if (chunk == 0) {
      r = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
    } else {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      size_t fed = 0;
      for (;;) {
        const size_t n = std::min(chunk, in.size() - fed);
        ZSTD_inBuffer ib{in.data() + fed, n, 0};
        fed += n;
        const ZSTD_EndDirective mode = fed == in.size() ? ZSTD_e_end : ZSTD_e_continue;
        size_t left;
        do {
          left = ZSTD_compressStream2(cctx, &ob, &ib, mode);
          zstd_check(left, "compressStream2");
        } while (mode == ZSTD_e_end ? left != 0 : ib.pos < ib.size);
        if (mode == ZSTD_e_end) break;
      }
      r = ob.pos;
    }
  }
  zstd_check(r, "compress");
  out.resize(r);
  return out;
}

// Streaming decompression (frames need not say their content size), fed
// `chunk` bytes at a time (0: all at once).
std::string zstd_decompress(std::string_view in, bool dict, size_t chunk) {
  ZSTD_DCtx* dctx = g_dctx;
  zstd_check(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters), "reset");
  if (dict) zstd_check(ZSTD_DCtx_refDDict(dctx, g_ddict), "refDDict");
  std::string out;
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  size_t fed = 0;
  size_t hint = 1;  // 0 once a frame is complete and flushed
  auto step = [&](ZSTD_inBuffer& ib) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    hint = ZSTD_decompressStream(dctx, &ob, &ib);
    zstd_check(hint, "decompress");
    out.append(buf.data(), ob.pos);
    return ob.pos;
  };
  while (fed < in.size()) {
    const size_t n = chunk ? std::min(chunk, in.size() - fed) : in.size() - fed;
    ZSTD_inBuffer ib{in.data() + fed, n, 0};
    fed += n;
    while (ib.pos < ib.size) step(ib);
  }
  ZSTD_inBuffer none{nullptr, 0, 0};
  while (hint != 0)
    if (step(none) == 0 && hint != 0) throw Failure("zstd decompress: truncated input");
  return out;
}

// ---- commands ----

bool is_zstd(std::string_view algo) { return algo.substr(0, 4) == "zstd"; }

struct Compressed {
  std::string input, output;
  std::string algo;
};

// ALGO LEVEL KIND SIZE from word `first`.
Compressed compress_command(const Command& c, size_t first) {
  Compressed r;
  r.algo = c.word(first, "ALGO");
  const std::string& level_word = c.word(first + 1, "LEVEL");
  r.input = data_of(c, first + 2);
  const size_t chunk = static_cast<size_t>(c.option("chunk", 0));
  if (r.algo == "zlib" || r.algo == "gzip" || r.algo == "raw" || r.algo == "zlib-stream") {
    r.output = zlib_compress(r.algo, static_cast<int>(to_int(level_word, "level")), strategy_of(c), r.input, chunk);
  } else if (r.algo == "zstd" || r.algo == "zstd-stream" || r.algo == "zstd-dict") {
    const bool cdict = level_word == "cdict";
    const int level = cdict ? kCDictLevel : static_cast<int>(to_int(level_word, "level"));
    r.output = zstd_compress(c, level, r.input, r.algo == "zstd-dict", cdict);
  } else {
    throw Failure("unknown algorithm '" + r.algo + "'");
  }
  return r;
}

std::string decompress_of(const std::string& algo, std::string_view bytes, size_t expect, size_t chunk) {
  return is_zstd(algo) ? zstd_decompress(bytes, algo == "zstd-dict", chunk)
                       : zlib_decompress(algo == "zlib-stream" ? "zlib" : algo, bytes, expect, chunk);
}

std::string describe_roundtrip(const Compressed& r, const std::string& back) {
  std::string s = "in=" + std::to_string(r.input.size()) + " out=" + std::to_string(r.output.size()) +
                  " permille=" + std::to_string(r.input.empty() ? 0 : r.output.size() * 1000 / r.input.size()) +
                  "\ncrc32(in)=" + hex32(crc(r.input)) + " crc32(out)=" + hex32(crc(r.output)) + "\nroundtrip=";
  if (back == r.input) return s + "ok";
  size_t at = 0;
  while (at < back.size() && at < r.input.size() && back[at] == r.input[at]) ++at;
  return s + "MISMATCH at " + std::to_string(at) + " (got " + std::to_string(back.size()) + " bytes)";
}

std::string from_hex(std::string_view h) {
  if (h.size() % 2) throw Failure("odd number of hex digits");
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(h.data() + i, h.data() + i + 2, v, 16);
    if (ec != std::errc() || end != h.data() + i + 2) throw Failure("bad hex digit near offset " + std::to_string(i));
    out += static_cast<char>(v);
  }
  return out;
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') out += static_cast<char>(ch);
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    }
  }
  return s.size() > max ? out + "..." : out;
}

std::string run_command(const Command& c) {
  const std::string& cmd = c.word(0, "command");
  const size_t chunk = static_cast<size_t>(c.option("chunk", 0));
  if (cmd == "zlib" || cmd == "gzip" || cmd == "raw" || cmd == "zstd" || cmd == "zstd-dict" || cmd == "zlib-stream" ||
      cmd == "zstd-stream") {
    if (cmd.ends_with("-stream") && chunk == 0) throw Failure("streaming needs chunk=N");
    Compressed r = compress_command(c, 0);
    std::string s = describe_roundtrip(r, decompress_of(cmd, r.output, r.input.size(), chunk));
    if (cmd == "zstd-dict")
      s += "\ndict_id=" + std::to_string(ZSTD_getDictID_fromFrame(r.output.data(), r.output.size()));
    return s;
  }
  if (cmd == "corrupt" || cmd == "truncate") {
    Compressed r = compress_command(c, 1);
    if (r.output.empty()) throw Failure("nothing to corrupt");
    if (cmd == "corrupt") {
      const size_t at = static_cast<size_t>(c.option("at", 0)) % r.output.size();
      r.output[at] = static_cast<char>(r.output[at] ^ static_cast<char>(c.option("xor", 0x55)));
    } else {
      r.output.resize(std::min(r.output.size(), static_cast<size_t>(c.option("keep", 0))));
    }
    const std::string back = decompress_of(r.algo, r.output, r.input.size(), 0);
    return "undetected: " + describe_roundtrip(r, back);
  }
  if (cmd == "nodict") {
    Command plain = c;
    plain.words[0] = "zstd-dict";
    Compressed r = compress_command(plain, 0);
    return "decoded " + std::to_string(zstd_decompress(r.output, false, 0).size()) + " bytes";
  }
  if (cmd == "decompress") {
    const std::string& algo = c.word(1, "ALGO");
    const std::string back = decompress_of(algo, from_hex(c.word(2, "HEX")), 0, 0);
    return "out=" + std::to_string(back.size()) + " crc32=" + hex32(crc(back)) + "\n" + printable(back, 80);
  }
  if (cmd == "checksum") {
    const std::string d = data_of(c, 1);
    const std::string_view a = std::string_view(d).substr(0, d.size() / 3),
                           b = std::string_view(d).substr(d.size() / 3);
    const uLong combined = crc32_combine(crc(a), crc(b), static_cast<z_off_t>(b.size()));
    const uLong adler = adler32(1, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size()));
    return "crc32=" + hex32(crc(d)) + " adler32=" + hex32(static_cast<uint32_t>(adler)) +
           " combine=" + (combined == crc(d) ? "ok" : "MISMATCH");
  }
  if (cmd == "frame") {
    Command z = c;
    z.words[0] = "zstd";
    const Compressed r = compress_command(z, 0);
    // The frame header descriptor (RFC 8878 3.1.1.1.1): what the frame promises.
    const unsigned fhd = r.output.size() > 4 ? static_cast<unsigned char>(r.output[4]) : 0;
    return "content_size=" + std::to_string(ZSTD_getFrameContentSize(r.output.data(), r.output.size())) +
           " frame_size=" + std::to_string(ZSTD_findFrameCompressedSize(r.output.data(), r.output.size())) +
           " checksum=" + std::to_string((fhd >> 2) & 1) + " single_segment=" + std::to_string((fhd >> 5) & 1) +
           " dict_id=" + std::to_string(ZSTD_getDictID_fromFrame(r.output.data(), r.output.size()));
  }
  if (cmd == "dict") {
    return "size=" + std::to_string(g_dictionary.size()) +
           " id=" + std::to_string(ZDICT_getDictID(g_dictionary.data(), g_dictionary.size())) +
           " crc32=" + hex32(crc(g_dictionary)) + " samples=" + std::to_string(compress_data::kDictSamples);
  }
  if (cmd == "bound") {
    const uLong n = static_cast<uLong>(to_int(c.word(1, "SIZE"), "size"));
    return "zlib=" + std::to_string(compressBound(n)) + " deflate=" + std::to_string(deflateBound(&g_deflater, n)) +
           " zstd=" + std::to_string(ZSTD_compressBound(n));
  }
  if (cmd == "version") return std::string("zlib ") + zlibVersion() + ", zstd " + ZSTD_versionString();
  throw Failure("unknown command '" + cmd + "'");
}

}  // namespace

z_stream& deflater() { return g_deflater; }
z_stream& inflater() { return g_inflater; }
ZSTD_CCtx* zstd_cctx() { return g_cctx; }
ZSTD_DCtx* zstd_dctx() { return g_dctx; }
const std::string& dictionary() { return g_dictionary; }
const ZSTD_CDict* zstd_cdict() { return g_cdict; }
const ZSTD_DDict* zstd_ddict() { return g_ddict; }
std::string& last_error() {
  static std::string e;
  return e;
}

}  // namespace compress_payload

namespace cp = compress_payload;

void payload::init() {
  if (deflateInit2(&cp::g_deflater, 6, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
      inflateInit2(&cp::g_inflater, 15) != Z_OK)
    throw std::runtime_error("zlib stream init failed");
  cp::g_cctx = ZSTD_createCCtx();
  cp::g_dctx = ZSTD_createDCtx();
  if (!cp::g_cctx || !cp::g_dctx) throw std::runtime_error("zstd context creation failed");

  const compress_data::Samples s = compress_data::dictionary_samples();
  cp::g_dictionary.resize(compress_data::kDictCapacity);
  const size_t n = ZDICT_trainFromBuffer(cp::g_dictionary.data(), cp::g_dictionary.size(), s.bytes.data(),
                                         s.sizes.data(), static_cast<unsigned>(s.sizes.size()));
  if (ZDICT_isError(n)) throw std::runtime_error(std::string("ZDICT_trainFromBuffer: ") + ZDICT_getErrorName(n));
  cp::g_dictionary.resize(n);
  cp::g_cdict = ZSTD_createCDict(cp::g_dictionary.data(), n, cp::kCDictLevel);
  cp::g_ddict = ZSTD_createDDict(cp::g_dictionary.data(), n);
  if (!cp::g_cdict || !cp::g_ddict) throw std::runtime_error("zstd dictionary creation failed");

  // Warm the contexts up, as a real server would before its snapshot: the
  // workspaces exist in the image.
  const std::string warm = compress_data::text(64 * 1024, 7);
  std::string out(ZSTD_compressBound(warm.size()), '\0');
  if (ZSTD_isError(ZSTD_compressCCtx(cp::g_cctx, out.data(), out.size(), warm.data(), warm.size(), 3)))
    throw std::runtime_error("zstd warm-up failed");
}

std::string payload::run(std::string_view input) {
  try {
    return cp::run_command(cp::Command(input));
  } catch (const std::exception& e) {
    return std::string("error: ") + e.what();
  }
}
