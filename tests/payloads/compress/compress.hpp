// What the compress payload's pieces share: the state init() builds before
// the snapshot (payload.cpp), which the pointer exports (exports.cpp) use,
// and the exports' error codes, which the test checks.
#pragma once

#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <string>

namespace compress_payload {

// Results of the exports: a size (>= 0) or one of these.
enum Code : int64_t {
  kDstTooSmall = -1,   // the output did not fit in the client's buffer
  kCorrupt = -2,       // the input is not valid compressed data
  kBadArgument = -3,   // null pointer, bad level
  kLibraryError = -4,  // anything else the library reported
};

// The zstd level the prebuilt CDict was made at.
inline constexpr int kCDictLevel = 3;

// State made by payload::init(); valid after it.
z_stream& deflater();  // deflateInit2(6, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY)
z_stream& inflater();  // inflateInit2(15)
ZSTD_CCtx* zstd_cctx();
ZSTD_DCtx* zstd_dctx();
const std::string& dictionary();  // trained by ZDICT_trainFromBuffer
const ZSTD_CDict* zstd_cdict();   // the dictionary at kCDictLevel
const ZSTD_DDict* zstd_ddict();

// The last error of an export, for the client to read ("" when none).
std::string& last_error();

}  // namespace compress_payload
