// The compress payload: a real client process's outputs equal a fresh
// native process's for every command (and backend); in process, the
// pointer exports compress and decompress buffers owned by this test (the
// client) and give the same bytes as the same zlib/zstd calls made here.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <zdict.h>

#include <string>
#include <subctx/subctx.hpp>
#include <vector>

#include "compress.hpp"
#include "data.hpp"
#include "payload_test.hpp"

namespace {

using payload::testing::protection_named;

namespace cp = compress_payload;
using payload::testing::image;
using Bytes = std::vector<unsigned char>;

PAYLOAD_COMPARISON_TESTS(CompressPayload);

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes data(std::string_view kind, size_t size, uint64_t seed) {
  std::string s;
  EXPECT_TRUE(compress_data::make(kind, size, seed, &s));
  return bytes_of(s);
}

// The dictionary trained here, natively, from the samples the server used.
const std::string& native_dictionary() {
  static const std::string dict = [] {
    const compress_data::Samples s = compress_data::dictionary_samples();
    std::string d(compress_data::kDictCapacity, '\0');
    const size_t n = ZDICT_trainFromBuffer(d.data(), d.size(), s.bytes.data(), s.sizes.data(),
                                           static_cast<unsigned>(s.sizes.size()));
    EXPECT_FALSE(ZDICT_isError(n)) << ZDICT_getErrorName(n);
    d.resize(ZDICT_isError(n) ? 0 : n);
    return d;
  }();
  return dict;
}

// The image mapped in this process with each backend.
class CompressExports : public ::testing::TestWithParam<const char*> {
 protected:
  using Codec = int64_t(const void*, uint64_t, void*, uint64_t, int32_t);
  using Plain = int64_t(const void*, uint64_t, void*, uint64_t);

  void SetUp() override {
    PAYLOAD_SKIP_UNLESS_BACKEND_WORKS(GetParam());
    subctx::MapOptions options;
    options.protection = protection_named(GetParam());
    sc_ = subctx::Matchmaker::instance().request_map(image(), options);
  }
  void TearDown() override {
    if (sc_.valid()) subctx::Matchmaker::instance().unmap(sc_);
  }

  // Calls a level-taking export; dst is resized to the result (or left as is on an error).
  int64_t codec(const char* name, const Bytes& src, Bytes& dst, int32_t level) {
    const int64_t r = sc_.call<Codec>(name, src.data(), src.size(), dst.data(), dst.size(), level);
    if (r >= 0) dst.resize(static_cast<size_t>(r));
    return r;
  }
  int64_t plain(const char* name, const Bytes& src, Bytes& dst) {
    const int64_t r = sc_.call<Plain>(name, src.data(), src.size(), dst.data(), dst.size());
    if (r >= 0) dst.resize(static_cast<size_t>(r));
    return r;
  }
  std::string last_error() { return sc_.call<const char*()>("last_error"); }

  subctx::Subcontext sc_;
};

TEST_P(CompressExports, ZlibCompressGivesTheBytesOfANativeCompress2AndRoundTrips) {
  for (const char* kind : {"text", "binary", "random", "zeros"}) {
    for (int level : {0, 1, 6, 9, -1}) {
      SCOPED_TRACE(std::string(kind) + " level " + std::to_string(level));
      const Bytes src = data(kind, 100000, 3);
      Bytes native(compressBound(src.size()));
      uLongf native_size = native.size();
      ASSERT_EQ(compress2(native.data(), &native_size, src.data(), src.size(), level), Z_OK);
      native.resize(native_size);

      Bytes packed(compressBound(src.size()));
      ASSERT_EQ(codec("zlib_compress", src, packed, level), static_cast<int64_t>(native_size));
      EXPECT_EQ(packed, native);

      Bytes back(src.size());
      ASSERT_EQ(plain("zlib_decompress", packed, back), static_cast<int64_t>(src.size())) << last_error();
      EXPECT_EQ(back, src);
    }
  }
}

TEST_P(CompressExports, ZstdCompressGivesTheBytesOfANativeZstdCompressAndRoundTrips) {
  for (const char* kind : {"text", "records", "binary", "random"}) {
    for (int level : {-5, 1, 3, 9, 19}) {
      SCOPED_TRACE(std::string(kind) + " level " + std::to_string(level));
      const Bytes src = data(kind, 200000, 4);
      Bytes native(ZSTD_compressBound(src.size()));
      const size_t n = ZSTD_compress(native.data(), native.size(), src.data(), src.size(), level);
      ASSERT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
      native.resize(n);

      Bytes packed(ZSTD_compressBound(src.size()));
      ASSERT_EQ(codec("zstd_compress", src, packed, level), static_cast<int64_t>(n)) << last_error();
      EXPECT_EQ(packed, native);

      Bytes back(src.size());
      ASSERT_EQ(plain("zstd_decompress", packed, back), static_cast<int64_t>(src.size())) << last_error();
      EXPECT_EQ(back, src);
      Bytes native_back(src.size());
      ASSERT_EQ(ZSTD_decompress(native_back.data(), native_back.size(), packed.data(), packed.size()), src.size());
      EXPECT_EQ(native_back, src);
    }
  }
}

// zstd's worker threads run inside the subcontext (docs/threads.md): four
// workers give the bytes of a native compress with four workers, call
// after call (the pool stays in the context); the mprotect backend
// refuses threads, which zstd reports as its error.
TEST_P(CompressExports, ZstdWithFourWorkerThreadsGivesTheNativeBytes) {
  const Bytes src = data("text", 4 << 20, 7);
  ZSTD_CCtx* native_cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(native_cctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(native_cctx, ZSTD_c_nbWorkers, 4);
  Bytes native(ZSTD_compressBound(src.size()));
  const size_t n = ZSTD_compress2(native_cctx, native.data(), native.size(), src.data(), src.size());
  ZSTD_freeCCtx(native_cctx);
  ASSERT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  native.resize(n);
  for (int round = 0; round < 3; ++round) {
    Bytes packed(ZSTD_compressBound(src.size()));
    const int64_t r = codec("zstd_compress_workers", src, packed, 4);
    if (std::string(GetParam()) == "mprotect") {
      EXPECT_LT(r, 0) << "threads under mprotect";
      return;
    }
    ASSERT_EQ(r, static_cast<int64_t>(n)) << last_error();
    EXPECT_EQ(packed, native) << "round " << round;
    EXPECT_EQ(sc_.memory().threads, 4u) << "zstd's pool, kept between calls";
  }
  Bytes back(src.size());
  ASSERT_EQ(plain("zstd_decompress", bytes_of(std::string(native.begin(), native.end())), back),
            static_cast<int64_t>(src.size()));
  EXPECT_EQ(back, src);
}

// Large buffers: the contexts' workspaces grow inside the call (malloc's
// mmap in the subcontext), reading and writing megabytes of client memory.
TEST_P(CompressExports, MegabyteBuffersAtHighLevels) {
  const Bytes src = data("records", 8u << 20, 5);
  Bytes packed(ZSTD_compressBound(src.size()));
  ASSERT_GT(codec("zstd_compress", src, packed, 19), 0) << last_error();
  Bytes back(src.size());
  ASSERT_EQ(plain("zstd_decompress", packed, back), static_cast<int64_t>(src.size())) << last_error();
  EXPECT_EQ(back, src);

  Bytes zpacked(compressBound(src.size()));
  ASSERT_GT(codec("zlib_compress", src, zpacked, 9), 0) << last_error();
  Bytes zback(src.size());
  ASSERT_EQ(plain("zlib_decompress", zpacked, zback), static_cast<int64_t>(src.size())) << last_error();
  EXPECT_EQ(zback, src);
}

// A destination too small: the error code, nothing written past the
// buffer's end, and the next call works.
TEST_P(CompressExports, TooSmallDestinationIsAnErrorAndNothingIsWrittenPastIt) {
  const Bytes src = data("text", 50000, 6);
  constexpr size_t kCap = 100, kGuard = 4096;
  for (const char* name : {"zlib_compress", "zstd_compress"}) {
    SCOPED_TRACE(name);
    Bytes dst(kCap + kGuard, 0xAB);
    EXPECT_EQ(sc_.call<Codec>(name, src.data(), src.size(), dst.data(), kCap, 6), cp::kDstTooSmall);
    EXPECT_FALSE(last_error().empty());
    EXPECT_EQ(Bytes(dst.begin() + kCap, dst.end()), Bytes(kGuard, 0xAB)) << "written past the client's buffer";
  }
  EXPECT_EQ(last_error(), "Destination buffer is too small");

  Bytes z(compressBound(src.size())), s(ZSTD_compressBound(src.size()));
  ASSERT_GT(codec("zlib_compress", src, z, 6), 0);
  ASSERT_GT(codec("zstd_compress", src, s, 6), 0);
  for (auto [name, packed] : {std::pair{"zlib_decompress", &z}, std::pair{"zstd_decompress", &s}}) {
    SCOPED_TRACE(name);
    Bytes dst(kCap + kGuard, 0xCD);
    EXPECT_EQ(sc_.call<Plain>(name, packed->data(), packed->size(), dst.data(), kCap), cp::kDstTooSmall);
    EXPECT_EQ(Bytes(dst.begin() + kCap, dst.end()), Bytes(kGuard, 0xCD));
    Bytes back(src.size());
    EXPECT_EQ(plain(name, *packed, back), static_cast<int64_t>(src.size())) << "the call after the error";
    EXPECT_EQ(back, src);
  }
}

TEST_P(CompressExports, CorruptInputIsAnErrorWithTheLibrarysReason) {
  const Bytes src = data("text", 50000, 7);
  Bytes z(compressBound(src.size())), s(ZSTD_compressBound(src.size()));
  ASSERT_GT(codec("zlib_compress", src, z, 6), 0);
  ASSERT_GT(codec("zstd_compress", src, s, 3), 0);
  Bytes out(src.size());

  Bytes flipped = z;
  flipped[flipped.size() - 2] ^= 0x01;  // in the adler32 trailer
  EXPECT_EQ(plain("zlib_decompress", flipped, out), cp::kCorrupt);
  EXPECT_EQ(last_error(), "incorrect data check");
  Bytes header = z;
  header[0] = 0x00;
  EXPECT_EQ(plain("zlib_decompress", header, out), cp::kCorrupt);
  EXPECT_EQ(last_error(), "incorrect header check");
  Bytes cut(z.begin(), z.begin() + 1000);
  EXPECT_EQ(plain("zlib_decompress", cut, out), cp::kCorrupt);
  EXPECT_EQ(last_error(), "truncated input");

  Bytes magic = s;
  magic[0] ^= 0xFF;
  EXPECT_EQ(plain("zstd_decompress", magic, out), cp::kCorrupt);
  EXPECT_EQ(last_error(), "Unknown frame descriptor");
  Bytes zcut(s.begin(), s.begin() + 1000);
  EXPECT_EQ(plain("zstd_decompress", zcut, out), cp::kCorrupt);
  EXPECT_EQ(last_error(), "Src size is incorrect");
  const Bytes garbage = data("random", 4096, 8);
  EXPECT_EQ(plain("zstd_decompress", garbage, out), cp::kCorrupt);

  // The same subcontext goes on.
  Bytes back(src.size());
  EXPECT_EQ(plain("zstd_decompress", s, back), static_cast<int64_t>(src.size()));
  EXPECT_EQ(back, src);
}

TEST_P(CompressExports, BadArgumentsAreRefused) {
  Bytes dst(1000);
  EXPECT_EQ(sc_.call<Codec>("zlib_compress", nullptr, 10, dst.data(), dst.size(), 6), cp::kBadArgument);
  const Bytes src = data("text", 1000, 9);
  EXPECT_EQ(codec("zlib_compress", src, dst, 42), cp::kBadArgument);
  EXPECT_EQ(last_error(), "bad level 42");
  EXPECT_EQ(sc_.call<Plain>("zstd_decompress", src.data(), src.size(), nullptr, 10), cp::kBadArgument);
}

// The dictionary trained before the snapshot is the one trained here from
// the same samples; frames made inside with it decode here, and the reverse.
TEST_P(CompressExports, DictionaryCompressionInsideDecodesWithANativeDictionary) {
  const std::string& dict = native_dictionary();
  ASSERT_FALSE(dict.empty());
  const int64_t size = sc_.call<int64_t(void*, uint64_t)>("zstd_dictionary", nullptr, 0);
  ASSERT_EQ(size, static_cast<int64_t>(dict.size()));
  Bytes small(16);
  EXPECT_EQ(sc_.call<int64_t(void*, uint64_t)>("zstd_dictionary", small.data(), small.size()), cp::kDstTooSmall);
  Bytes exported(static_cast<size_t>(size));
  ASSERT_EQ(sc_.call<int64_t(void*, uint64_t)>("zstd_dictionary", exported.data(), exported.size()), size);
  EXPECT_EQ(exported, bytes_of(dict)) << "ZDICT_trainFromBuffer gave another dictionary inside the image";

  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  ZSTD_CDict* cdict = ZSTD_createCDict(dict.data(), dict.size(), cp::kCDictLevel);
  for (uint64_t seed : {11, 12, 13}) {
    SCOPED_TRACE(seed);
    const Bytes src = data("records", 1500, seed);
    for (int level : {1, 3, 19}) {
      Bytes packed(ZSTD_compressBound(src.size()));
      ASSERT_GT(codec("zstd_compress_dict", src, packed, level), 0) << last_error();
      Bytes native(ZSTD_compressBound(src.size()));
      native.resize(ZSTD_compress_usingDict(cctx, native.data(), native.size(), src.data(), src.size(), dict.data(),
                                            dict.size(), level));
      EXPECT_EQ(packed, native);
      EXPECT_EQ(ZSTD_getDictID_fromFrame(packed.data(), packed.size()), ZDICT_getDictID(dict.data(), dict.size()));
      Bytes back(src.size());
      ASSERT_EQ(ZSTD_decompress_usingDict(dctx, back.data(), back.size(), packed.data(), packed.size(), dict.data(),
                                          dict.size()),
                src.size());
      EXPECT_EQ(back, src);
    }
    Bytes packed(ZSTD_compressBound(src.size()));
    ASSERT_GT(plain("zstd_compress_cdict", src, packed), 0) << last_error();
    Bytes native(ZSTD_compressBound(src.size()));
    native.resize(ZSTD_compress_usingCDict(cctx, native.data(), native.size(), src.data(), src.size(), cdict));
    EXPECT_EQ(packed, native);

    // Made here, decoded inside with the image's DDict; without it, refused.
    Bytes back(src.size());
    ASSERT_EQ(plain("zstd_decompress_dict", native, back), static_cast<int64_t>(src.size())) << last_error();
    EXPECT_EQ(back, src);
    Bytes out(src.size());
    EXPECT_EQ(plain("zstd_decompress", native, out), cp::kCorrupt);
    EXPECT_EQ(last_error(), "Dictionary mismatch");
  }
  ZSTD_freeCDict(cdict);
  ZSTD_freeDCtx(dctx);
  ZSTD_freeCCtx(cctx);
}

TEST_P(CompressExports, Crc32OfClientMemory) {
  const Bytes src = data("random", 123457, 10);
  EXPECT_EQ(sc_.call<uint32_t(const void*, uint64_t)>("crc32_of", src.data(), src.size()),
            static_cast<uint32_t>(crc32(0, src.data(), static_cast<uInt>(src.size()))));
}

// A destination the client cannot write: the write inside faults, the call
// fails at the call site, the client goes on and so does the subcontext
// (reset to its snapshot by the default fault policy).
TEST_P(CompressExports, ReadOnlyDestinationFaultsTheCallNotTheClient) {
  const size_t page = 4096;
  void* ro = mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(ro, MAP_FAILED);
  const Bytes src = data("text", 10000, 12);
  EXPECT_THROW(sc_.call<Codec>("zstd_compress", src.data(), src.size(), ro, page, 3), subctx::SubcontextFault);
  munmap(ro, page);
  Bytes packed(ZSTD_compressBound(src.size()));
  ASSERT_GT(codec("zstd_compress", src, packed, 3), 0) << "the call after the fault";
  Bytes back(src.size());
  EXPECT_EQ(plain("zstd_decompress", packed, back), static_cast<int64_t>(src.size()));
  EXPECT_EQ(back, src);
}

INSTANTIATE_TEST_SUITE_P(Backends, CompressExports, ::testing::Values("none", "mprotect", "pkey"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
