// The compress payload's pointer exports: compress and decompress buffers
// owned by the client.  The subcontext reads the client's `src` and writes
// the client's `dst` during the call, with the zlib stream, zstd contexts
// and dictionary built before the snapshot (payload.cpp).  Each returns
// the output size, or a negative compress_payload::Code; last_error() says
// what the library said.
#include <zstd_errors.h>
#include <climits>
#include <cstring>
#include <subctx/server.hpp>

#include "compress.hpp"

namespace {

namespace cp = compress_payload;

int64_t fail(cp::Code code, const std::string& why) {
  cp::last_error() = why;
  return code;
}

bool bad_buffers(const void* src, uint64_t n, const void* dst, uint64_t cap) {
  return (!src && n) || (!dst && cap) || n > UINT_MAX;
}

int64_t zstd_result(size_t r) {
  if (!ZSTD_isError(r)) {
    cp::last_error().clear();
    return static_cast<int64_t>(r);
  }
  const std::string why = ZSTD_getErrorName(r);
  switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_dstSize_tooSmall: return fail(cp::kDstTooSmall, why);
    case ZSTD_error_parameter_unsupported:
    case ZSTD_error_parameter_outOfBound: return fail(cp::kBadArgument, why);
    case ZSTD_error_memory_allocation:
    case ZSTD_error_GENERIC: return fail(cp::kLibraryError, why);
    default: return fail(cp::kCorrupt, why);
  }
}

// zlib format (windowBits 15), the same bytes as compress2(dst, &len, src, n, level).
int64_t zlib_compress(const void* src, uint64_t n, void* dst, uint64_t cap, int32_t level) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  z_stream& zs = cp::deflater();
  if (deflateReset(&zs) != Z_OK || deflateParams(&zs, level, Z_DEFAULT_STRATEGY) != Z_OK)
    return fail(cp::kBadArgument, "bad level " + std::to_string(level));
  zs.next_in = static_cast<Bytef*>(const_cast<void*>(src));
  zs.avail_in = static_cast<uInt>(n);
  zs.next_out = static_cast<Bytef*>(dst);
  zs.avail_out = static_cast<uInt>(std::min<uint64_t>(cap, UINT_MAX));
  const int ret = deflate(&zs, Z_FINISH);
  if (ret == Z_STREAM_END) {
    cp::last_error().clear();
    return static_cast<int64_t>(zs.total_out);
  }
  if (ret == Z_OK || ret == Z_BUF_ERROR) return fail(cp::kDstTooSmall, "output buffer full");
  return fail(cp::kLibraryError, zs.msg ? zs.msg : zError(ret));
}

int64_t zlib_decompress(const void* src, uint64_t n, void* dst, uint64_t cap) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  z_stream& zs = cp::inflater();
  if (inflateReset2(&zs, 15) != Z_OK) return fail(cp::kLibraryError, "inflateReset2 failed");
  zs.next_in = static_cast<Bytef*>(const_cast<void*>(src));
  zs.avail_in = static_cast<uInt>(n);
  zs.next_out = static_cast<Bytef*>(dst);
  zs.avail_out = static_cast<uInt>(std::min<uint64_t>(cap, UINT_MAX));
  const int ret = inflate(&zs, Z_FINISH);
  if (ret == Z_STREAM_END) {
    cp::last_error().clear();
    return static_cast<int64_t>(zs.total_out);
  }
  if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) return fail(cp::kCorrupt, zs.msg ? zs.msg : zError(ret));
  if (zs.avail_out == 0) return fail(cp::kDstTooSmall, "output buffer full");
  if (ret == Z_BUF_ERROR) return fail(cp::kCorrupt, "truncated input");
  return fail(cp::kLibraryError, zs.msg ? zs.msg : zError(ret));
}

// The same bytes as ZSTD_compress(dst, cap, src, n, level).
int64_t zstd_compress(const void* src, uint64_t n, void* dst, uint64_t cap, int32_t level) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  return zstd_result(ZSTD_compressCCtx(cp::zstd_cctx(), dst, cap, src, n, level));
}

// With zstd's own worker threads (ZSTD_c_nbWorkers; docs/threads.md) at
// level 3: the bytes a native ZSTD_compress2 with the same parameters
// gives.  The workers stay in the context (a pool) for the next such call.
int64_t zstd_compress_workers(const void* src, uint64_t n, void* dst, uint64_t cap, int32_t workers) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  ZSTD_CCtx* cctx = cp::zstd_cctx();
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, workers);
  if (!ZSTD_isError(r)) r = ZSTD_compress2(cctx, dst, cap, src, n);
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);  // the other exports compress on this thread
  return zstd_result(r);
}

int64_t zstd_decompress(const void* src, uint64_t n, void* dst, uint64_t cap) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  ZSTD_DCtx* dctx = cp::zstd_dctx();
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);  // no dictionary left referenced
  return zstd_result(ZSTD_decompressDCtx(dctx, dst, cap, src, n));
}

// With the image's trained dictionary at any level: the same bytes as
// ZSTD_compress_usingDict with that dictionary.
int64_t zstd_compress_dict(const void* src, uint64_t n, void* dst, uint64_t cap, int32_t level) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  const std::string& d = cp::dictionary();
  return zstd_result(ZSTD_compress_usingDict(cp::zstd_cctx(), dst, cap, src, n, d.data(), d.size(), level));
}

// With the CDict digested before the snapshot (level kCDictLevel).
int64_t zstd_compress_cdict(const void* src, uint64_t n, void* dst, uint64_t cap) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  return zstd_result(ZSTD_compress_usingCDict(cp::zstd_cctx(), dst, cap, src, n, cp::zstd_cdict()));
}

int64_t zstd_decompress_dict(const void* src, uint64_t n, void* dst, uint64_t cap) {
  if (bad_buffers(src, n, dst, cap)) return fail(cp::kBadArgument, "bad buffer");
  return zstd_result(ZSTD_decompress_usingDDict(cp::zstd_dctx(), dst, cap, src, n, cp::zstd_ddict()));
}

// Copies the dictionary into the client's buffer; with dst null, its size.
int64_t zstd_dictionary(void* dst, uint64_t cap) {
  const std::string& d = cp::dictionary();
  if (!dst) return static_cast<int64_t>(d.size());
  if (cap < d.size()) return fail(cp::kDstTooSmall, "dictionary is " + std::to_string(d.size()) + " bytes");
  std::memcpy(dst, d.data(), d.size());
  return static_cast<int64_t>(d.size());
}

uint32_t crc32_of(const void* src, uint64_t n) {
  if ((!src && n) || n > UINT_MAX) return 0;
  return static_cast<uint32_t>(crc32(0, static_cast<const Bytef*>(src), static_cast<uInt>(n)));
}

const char* last_error() { return cp::last_error().c_str(); }

SUBCTX_EXPORT(zlib_compress);
SUBCTX_EXPORT(zlib_decompress);
SUBCTX_EXPORT(zstd_compress);
SUBCTX_EXPORT(zstd_decompress);
SUBCTX_EXPORT(zstd_compress_workers);
SUBCTX_EXPORT(zstd_compress_dict);
SUBCTX_EXPORT(zstd_compress_cdict);
SUBCTX_EXPORT(zstd_decompress_dict);
SUBCTX_EXPORT(zstd_dictionary);
SUBCTX_EXPORT(crc32_of);
SUBCTX_EXPORT(last_error);

}  // namespace
