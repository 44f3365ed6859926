// The writer's encoding: what readelf and the reader rely on.
#include <elf.h>
#include <sys/mman.h>

#include <cstring>

#include <gtest/gtest.h>

#include "image/digest.hpp"
#include "image/writer.hpp"
#include "test_image.hpp"

namespace subctx::test {
namespace {

TEST(ImageWriter, ElfHeaderAndProgramHeaders) {
  TestImage t = build_image(sample_info());
  Elf64_Ehdr eh;
  std::memcpy(&eh, t.bytes.data(), sizeof eh);
  EXPECT_EQ(std::memcmp(eh.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(eh.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(eh.e_ident[EI_DATA], ELFDATA2LSB);
  EXPECT_EQ(eh.e_type, ET_CORE);
  EXPECT_EQ(eh.e_machine, EM_X86_64);
  EXPECT_EQ(eh.e_phoff, sizeof eh);
  EXPECT_EQ(eh.e_phnum, 7);
  EXPECT_EQ(eh.e_shnum, 0);
  Elf64_Phdr note;
  std::memcpy(&note, t.bytes.data() + TestImage::phdr(0), sizeof note);
  EXPECT_EQ(note.p_type, PT_NOTE);
  EXPECT_EQ(note.p_offset, 64u + 7 * 56);
  EXPECT_EQ(note.p_offset + note.p_filesz, t.header_size);
  for (size_t k = 0; k < t.info.segments.size(); ++k) {
    SCOPED_TRACE(k);
    const auto& s = t.info.segments[k];
    Elf64_Phdr ph;
    std::memcpy(&ph, t.bytes.data() + TestImage::phdr(1 + k), sizeof ph);
    EXPECT_EQ(ph.p_type, PT_LOAD);
    EXPECT_EQ(ph.p_vaddr, s.vaddr);
    EXPECT_EQ(ph.p_memsz, s.memsz);
    EXPECT_EQ(ph.p_filesz, s.filesz);
    EXPECT_EQ(ph.p_offset, s.offset);
    EXPECT_EQ(ph.p_align, image::kPageSize);
    EXPECT_EQ(ph.p_offset % image::kPageSize, 0u);
    const uint32_t flags =
        ((s.prot & PROT_READ) ? PF_R : 0) | ((s.prot & PROT_WRITE) ? PF_W : 0) | ((s.prot & PROT_EXEC) ? PF_X : 0);
    EXPECT_EQ(ph.p_flags, flags);
  }
}

TEST(ImageWriter, NotesAreOwnedBySubctxAndTheDigestNoteIsLast) {
  TestImage t = build_image(sample_info());
  auto notes = read_notes(t);
  // In type order, except: syscalls (optional) absent, identity before the digests.
  const uint32_t want[] = {image::kNoteVersion,  image::kNoteCreator, image::kNoteProvenance, image::kNoteCpu,
                           image::kNoteThread,   image::kNoteExports, image::kNoteVdso,       image::kNoteSegments,
                           image::kNoteIdentity, image::kNoteDigests};
  ASSERT_EQ(notes.size(), std::size(want));
  for (size_t i = 0; i < notes.size(); ++i) {
    EXPECT_EQ(notes[i].name, std::string("SUBCTX", 7));
    EXPECT_EQ(notes[i].type, want[i]);
  }
  EXPECT_EQ(t.header_digest_offset, t.desc(image::kNoteDigests));
  EXPECT_EQ(t.segment_digests_offset, t.desc(image::kNoteDigests) + 16);
  for (size_t k = 0; k < t.info.segments.size(); ++k)
    EXPECT_EQ(t.get<uint64_t>(t.segment_digests_offset + 8 * k), t.info.segments[k].digest);
}

TEST(ImageWriter, HeaderDigestSkipsItsOwnBytes) {
  TestImage t = build_image(sample_info());
  const uint64_t d = image::compute_header_digest(t.bytes.data(), t.header_size, t.header_digest_offset);
  EXPECT_EQ(d, t.get<uint64_t>(t.header_digest_offset));
  // Whatever the stored digest is, the computed one does not change ...
  t.put<uint64_t>(t.header_digest_offset, 0x1234);
  EXPECT_EQ(image::compute_header_digest(t.bytes.data(), t.header_size, t.header_digest_offset), d);
  // ... and it equals xxh3 over the header with the digest bytes left out.
  std::vector<uint8_t> rest(t.bytes.begin(), t.bytes.begin() + static_cast<long>(t.header_size));
  rest.erase(rest.begin() + static_cast<long>(t.header_digest_offset),
             rest.begin() + static_cast<long>(t.header_digest_offset + 8));
  EXPECT_EQ(image::digest_of(rest.data(), rest.size()), d);
  // Any other byte changes it.
  t.bytes[0] ^= 1;
  EXPECT_NE(image::compute_header_digest(t.bytes.data(), t.header_size, t.header_digest_offset), d);
}

TEST(ImageWriter, LayoutSegments) {
  image::ImageInfo info = sample_info();
  info.segments[0].filesz = 0x1800;  // not a page multiple: the next one still starts on a page
  const uint64_t end = image::layout_segments(info, 0x1234);
  EXPECT_EQ(info.segments[0].offset, 0x2000u);
  EXPECT_EQ(info.segments[1].offset, 0x4000u);
  EXPECT_EQ(info.segments[2].offset, 0x5000u);
  EXPECT_EQ(info.segments[3].offset, 0x6000u);  // no file data: shares its offset with the next
  EXPECT_EQ(info.segments[4].offset, 0x6000u);
  EXPECT_EQ(info.segments[5].offset, 0x6000u);
  EXPECT_EQ(end, 0x8000u);
}

TEST(ImageWriter, EncodingDoesNotDependOnOffsets) {
  // The snapshot encodes once to learn data_start, lays out, encodes again.
  image::ImageInfo info = sample_info();
  image::EncodedHeader a = image::encode_header(info);
  image::layout_segments(info, a.data_start);
  image::EncodedHeader b = image::encode_header(info);
  EXPECT_EQ(a.bytes.size(), b.bytes.size());
  EXPECT_EQ(a.data_start, b.data_start);
  EXPECT_EQ(a.header_digest_offset, b.header_digest_offset);
  EXPECT_EQ(a.data_start % image::kPageSize, 0u);
  EXPECT_GE(a.data_start, a.bytes.size());
}

TEST(ImageWriter, SegmentKindNames) {
  using image::SegmentKind;
  EXPECT_STREQ(image::segment_kind_name(SegmentKind::File), "file");
  EXPECT_STREQ(image::segment_kind_name(SegmentKind::Heap), "heap");
  EXPECT_STREQ(image::segment_kind_name(SegmentKind::Stack), "stack");
  EXPECT_STREQ(image::segment_kind_name(SegmentKind::Anon), "anon");
  EXPECT_STREQ(image::segment_kind_name(SegmentKind::GateStack), "gate-stack");
  EXPECT_STREQ(image::segment_kind_name(SegmentKind::GateGuard), "gate-guard");
  EXPECT_STREQ(image::segment_kind_name(static_cast<SegmentKind>(42)), "?");
}

TEST(ImageWriter, SegmentRecordContains) {
  image::SegmentRecord s;
  s.vaddr = 0x1000;
  s.memsz = 0x2000;
  EXPECT_TRUE(s.contains(0x1000));
  EXPECT_TRUE(s.contains(0x2fff));
  EXPECT_FALSE(s.contains(0x3000));
  EXPECT_FALSE(s.contains(0xfff));
  EXPECT_TRUE(s.contains(0x2ff8, 8));
  EXPECT_FALSE(s.contains(0x2ff9, 8));
  EXPECT_TRUE(s.contains(0x1000, 0x2000));
  EXPECT_FALSE(s.contains(0x1000, 0x2001));
  EXPECT_FALSE(s.contains(0x2000, ~uint64_t{0}));  // no wrap-around
  EXPECT_FALSE(s.contains(~uint64_t{0}, 2));
}

}  // namespace
}  // namespace subctx::test
