// The note codecs (src/image/notes.cpp): every note type has an encoder and
// a decoder, each decoder reads back exactly what its encoder wrote, and the
// writer cuts informational strings to the limits the reader applies
// (format.hpp), so that what it writes is always read back.
#include <gtest/gtest.h>

#include "image/notes.hpp"
#include "image/reader.hpp"
#include "test_image.hpp"

namespace subctx::test {
namespace {

using image::ByteReader;
using image::ByteWriter;
using image::ImageInfo;
using image::NoteCodec;

constexpr uint32_t kAllTypes[] = {
    image::kNoteVersion,  image::kNoteCreator, image::kNoteProvenance, image::kNoteCpu,     image::kNoteThread,
    image::kNoteExports,  image::kNoteVdso,    image::kNoteSegments,   image::kNoteDigests, image::kNoteSyscalls,
    image::kNoteIdentity, image::kNoteImports, image::kNoteHotPages};

// Every note the format has, with something in it.
ImageInfo full_info() {
  ImageInfo info = sample_info();
  info.creator_path = "/usr/bin/server";
  info.build_id = "0123abcd";
  info.created_ns = 1'700'000'000'000'000'000;
  info.kernel = "Linux 6.1.0";
  info.libc = "glibc 2.36";
  info.cpu_features = 0x15;
  info.imports = {{"log_line", "void(str)"}, {"now", "i64()"}};
  info.syscall_rules = {{"getpid", 1, 13}, {"ptrace", 2, 0}};
  info.hot_pages = {{0x400000, 2}, {0x600000, 1}};
  info.header_digest = 0x1122334455667788;
  for (size_t i = 0; i < info.segments.size(); ++i) info.segments[i].digest = 0x1000 + i;
  return info;
}

std::vector<uint8_t> encode(const NoteCodec& codec, const ImageInfo& info) {
  std::vector<uint8_t> out;
  ByteWriter w(out);
  codec.encode(w, info);
  return out;
}

TEST(ImageNotes, EveryNoteTypeHasACodec) {
  for (uint32_t type : kAllTypes) {
    const NoteCodec* codec = image::find_note_codec(type);
    ASSERT_NE(codec, nullptr) << std::hex << type;
    EXPECT_EQ(codec->type, type);
  }
  EXPECT_EQ(image::find_note_codec(1), nullptr);  // NT_PRSTATUS: a core dump's note, not ours
  EXPECT_EQ(image::find_note_codec(image::kNoteHotPages + 1), nullptr);
}

TEST(ImageNotes, EachDecoderReadsWhatItsEncoderWrote) {
  const ImageInfo info = full_info();
  const std::string what = "test.img";
  const image::NoteContext ctx{what, 4096};
  for (uint32_t type : kAllTypes) {
    SCOPED_TRACE(testing::Message() << std::hex << type);
    const NoteCodec& codec = *image::find_note_codec(type);
    const std::vector<uint8_t> bytes = encode(codec, info);
    ImageInfo back;
    back.segments.resize(info.segments.size());  // as the program headers size them
    ByteReader r(bytes.data(), bytes.size());
    codec.decode(r, ctx, back);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_EQ(encode(codec, back), bytes);
  }
}

TEST(ImageNotes, InformationalStringsAreCutToTheFormatLimits) {
  ImageInfo info = sample_info();
  info.creator_path = std::string(image::kMaxText + 10, 'p');
  info.build_id = std::string(image::kMaxName + 1, 'b');
  info.kernel = std::string(image::kMaxName + 1, 'k');
  info.libc = std::string(image::kMaxName + 1, 'l');
  info.segments[0].origin = std::string(image::kMaxText + 1, 'o');
  info.syscall_rules = {{std::string(image::kMaxSyscallName + 1, 's'), 1, 1}};
  TestImage t = build_image(info);
  image::MemorySource src(t.bytes.data(), t.bytes.size());
  const ImageInfo back = image::read_image(src, "test.img");
  EXPECT_EQ(back.creator_path, std::string(image::kMaxText, 'p'));
  EXPECT_EQ(back.build_id, std::string(image::kMaxName, 'b'));
  EXPECT_EQ(back.kernel, std::string(image::kMaxName, 'k'));
  EXPECT_EQ(back.libc, std::string(image::kMaxName, 'l'));
  EXPECT_EQ(back.segments[0].origin, std::string(image::kMaxText, 'o'));
  ASSERT_EQ(back.syscall_rules.size(), 1u);
  EXPECT_EQ(back.syscall_rules[0].syscall, std::string(image::kMaxSyscallName, 's'));
}

}  // namespace
}  // namespace subctx::test
