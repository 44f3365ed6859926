// The image reader on valid, truncated and corrupted images.  A corrupted
// field that the reader checks before the header digest is tested as is; a
// field checked after it is corrupted with the header re-sealed (or the image
// rebuilt from a modified ImageInfo), so that the intended check is the one
// that fires.
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "image/reader.hpp"
#include "image/writer.hpp"
#include "subctx/error.hpp"
#include "sys/io.hpp"
#include "sys/unique_fd.hpp"
#include "test_image.hpp"

namespace subctx::test {
namespace {

using image::ImageInfo;
using image::MemorySource;
using image::ReadLimits;
using image::read_image;
using image::verify_segments;

constexpr char kWhat[] = "test.img";

// Reads the first `size` bytes (all by default) and expects an E whose
// message names the image and contains `want`.  A shorter image is copied to
// a buffer of exactly its size, so that ASan sees any read past its end.
template <class E>
::testing::AssertionResult Fails(const std::vector<uint8_t>& all, std::string_view want, const ReadLimits& limits = {},
                                 size_t size = SIZE_MAX) {
  const std::vector<uint8_t> bytes(all.begin(), all.begin() + static_cast<long>(std::min(size, all.size())));
  try {
    ImageInfo info = read_image(MemorySource(bytes.data(), bytes.size()), kWhat, limits);
    return ::testing::AssertionFailure() << "read_image accepted the image (" << info.segments.size() << " segments)";
  } catch (const E& e) {
    const std::string msg = e.what();
    if (msg.rfind(std::string(kWhat) + ": ", 0) != 0)
      return ::testing::AssertionFailure() << "message does not name the image: " << msg;
    if (msg.find(want) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks \"" << want << "\": " << msg;
    return ::testing::AssertionSuccess();
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << "wrong error " << errc_name(e.code()) << ": " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "not a subctx::Error: " << e.what();
  }
}

template <class E>
::testing::AssertionResult Fails(const TestImage& t, std::string_view want, const ReadLimits& limits = {}) {
  return Fails<E>(t.bytes, want, limits);
}

::testing::AssertionResult Reads(const TestImage& t, const ReadLimits& limits = {}) {
  try {
    read_image(MemorySource(t.bytes.data(), t.bytes.size()), kWhat, limits);
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << e.what();
  }
}

ImageInfo read(const TestImage& t, const ReadLimits& limits = {}) {
  return read_image(MemorySource(t.bytes.data(), t.bytes.size()), kWhat, limits);
}

TestImage sample() { return build_image(sample_info()); }

// Builds the sample with one change to its ImageInfo: the writer does not
// validate, so the result has valid digests and only the intended fault.
TestImage sample_with(const std::function<void(ImageInfo&)>& change) {
  ImageInfo info = sample_info();
  change(info);
  return build_image(std::move(info));
}

size_t ehdr(size_t field_offset) { return field_offset; }
size_t phdr(size_t i, size_t field_offset) { return TestImage::phdr(i) + field_offset; }
size_t seg(size_t k, size_t field_offset) { return TestImage::phdr(1 + k) + field_offset; }

void expect_same(const ImageInfo& a, const ImageInfo& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.creator_path, b.creator_path);
  EXPECT_EQ(a.build_id, b.build_id);
  EXPECT_EQ(a.created_ns, b.created_ns);
  EXPECT_EQ(a.kernel, b.kernel);
  EXPECT_EQ(a.libc, b.libc);
  EXPECT_EQ(a.cpu_features, b.cpu_features);
  EXPECT_EQ(a.thread.tcb, b.thread.tcb);
  EXPECT_EQ(a.thread.gate_stack_lo, b.thread.gate_stack_lo);
  EXPECT_EQ(a.thread.gate_stack_hi, b.thread.gate_stack_hi);
  EXPECT_EQ(a.thread.stdout_file, b.thread.stdout_file);
  EXPECT_EQ(a.thread.stderr_file, b.thread.stderr_file);
  EXPECT_EQ(a.thread.fflush_fn, b.thread.fflush_fn);
  ASSERT_EQ(a.exports.size(), b.exports.size());
  for (size_t i = 0; i < a.exports.size(); ++i) {
    SCOPED_TRACE("export " + std::to_string(i));
    EXPECT_EQ(a.exports[i].name, b.exports[i].name);
    EXPECT_EQ(a.exports[i].address, b.exports[i].address);
    EXPECT_EQ(a.exports[i].signature, b.exports[i].signature);
    EXPECT_EQ(a.exports[i].visibility, b.exports[i].visibility);
  }
  ASSERT_EQ(a.imports.size(), b.imports.size());
  for (size_t i = 0; i < a.imports.size(); ++i) {
    EXPECT_EQ(a.imports[i].name, b.imports[i].name);
    EXPECT_EQ(a.imports[i].signature, b.imports[i].signature);
  }
  EXPECT_EQ(a.vdso.base, b.vdso.base);
  EXPECT_EQ(a.vdso.size, b.vdso.size);
  ASSERT_EQ(a.vdso.symbols.size(), b.vdso.symbols.size());
  for (size_t i = 0; i < a.vdso.symbols.size(); ++i) {
    EXPECT_EQ(a.vdso.symbols[i].offset, b.vdso.symbols[i].offset);
    EXPECT_EQ(a.vdso.symbols[i].name, b.vdso.symbols[i].name);
  }
  ASSERT_EQ(a.segments.size(), b.segments.size());
  for (size_t i = 0; i < a.segments.size(); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    const auto &x = a.segments[i], &y = b.segments[i];
    EXPECT_EQ(x.vaddr, y.vaddr);
    EXPECT_EQ(x.memsz, y.memsz);
    EXPECT_EQ(x.offset, y.offset);
    EXPECT_EQ(x.filesz, y.filesz);
    EXPECT_EQ(x.prot, y.prot);
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_EQ(x.origin, y.origin);
    EXPECT_EQ(x.digest, y.digest);
  }
  const auto &p = a.identity, &q = b.identity;
  EXPECT_EQ(p.cwd, q.cwd);
  EXPECT_EQ(p.umask, q.umask);
  EXPECT_EQ(p.pid, q.pid);
  ASSERT_EQ(p.fds.size(), q.fds.size());
  for (size_t i = 0; i < p.fds.size(); ++i) {
    SCOPED_TRACE("descriptor record " + std::to_string(i));
    EXPECT_EQ(p.fds[i].number, q.fds[i].number);
    EXPECT_EQ(p.fds[i].kind, q.fds[i].kind);
    EXPECT_EQ(p.fds[i].dropped, q.fds[i].dropped);
    EXPECT_EQ(p.fds[i].flags, q.fds[i].flags);
    EXPECT_EQ(p.fds[i].offset, q.fds[i].offset);
    EXPECT_EQ(p.fds[i].same_as, q.fds[i].same_as);
    EXPECT_EQ(p.fds[i].path, q.fds[i].path);
  }
  ASSERT_EQ(p.signals.size(), q.signals.size());
  for (size_t i = 0; i < p.signals.size(); ++i) {
    EXPECT_EQ(p.signals[i].signal, q.signals[i].signal);
    EXPECT_EQ(p.signals[i].action, q.signals[i].action);
  }
  EXPECT_EQ(a.header_digest, b.header_digest);
  EXPECT_EQ(a.file_size, b.file_size);
}

// ---------------------------------------------------------------- valid

TEST(ImageReader, ValidImageParsesWithAllFieldsEqual) {
  TestImage t = sample();
  ImageInfo got = read(t);
  expect_same(got, t.info);
  EXPECT_EQ(got.virtual_size(), 0x2000u + 0x1000 + 0x3000 + 0x1000 + 0x4000 + 0x2000);
  EXPECT_EQ(got.file_size, t.bytes.size());
  EXPECT_EQ(verify_segments(MemorySource(t.bytes.data(), t.bytes.size()), got), "");
}

TEST(ImageReader, SmallImageWithoutOptionalNotesParses) {
  TestImage t = build_image(small_info());
  ImageInfo got = read(t);
  expect_same(got, t.info);
  EXPECT_EQ(got.vdso.base, 0u);
  EXPECT_EQ(verify_segments(MemorySource(t.bytes.data(), t.bytes.size()), got), "");
}

TEST(ImageReader, SyscallRulesRoundTripAndAreChecked) {
  TestImage t = sample_with([](ImageInfo& i) {
    i.syscall_rules = {{"openat", 1, 13}, {"getppid", 2, 0}, {"257", 2, 0}};
  });
  ImageInfo got = read(t);
  ASSERT_EQ(got.syscall_rules.size(), 3u);
  EXPECT_EQ(got.syscall_rules[0].syscall, "openat");
  EXPECT_EQ(got.syscall_rules[0].action, 1);
  EXPECT_EQ(got.syscall_rules[0].error, 13u);
  EXPECT_EQ(got.syscall_rules[1].action, 2);
  EXPECT_EQ(got.syscall_rules[2].syscall, "257");
  // An image's rules narrow the defaults; allowing is the client's alone.
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.syscall_rules = {{"exit_group", 0, 0}};
                              }),
                              "system call rule 0 (allow exit_group): an image's rules may only deny or fault"));
  EXPECT_TRUE(read(sample()).syscall_rules.empty()) << "the note is optional";
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.syscall_rules = {{"openat", 7, 0}};
                              }),
                              "system call rule 0: unknown action"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.syscall_rules = {{"openat", 1, 0}};
                              }),
                              "errno 0 is not in 1..4095"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.syscall_rules = {{"openat", 1, 5000}};
                              }),
                              "errno 5000 is not in 1..4095"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.syscall_rules.assign(image::kMaxSyscallRules + 1, {"read", 2, 0});
                              }),
                              "syscalls note lists 513 rules (at most 512)"));
}

// The version note's flags: kFlagSpawns (the image starts programs) is
// written and read back, and covered by the header digest.
TEST(ImageReader, SpawnsFlagRoundTrips) {
  EXPECT_EQ(read(sample()).flags & image::kFlagSpawns, 0u) << "not declared by default";
  TestImage t = sample_with([](ImageInfo& i) { i.flags |= image::kFlagSpawns; });
  ImageInfo got = read(t);
  EXPECT_EQ(got.flags, image::kFlagSpawns);
  expect_same(got, t.info);
  EXPECT_NE(got.header_digest, read(sample()).header_digest);
}

// The imports note (docs/callbacks.md): optional, bounded, names and
// signatures checked as exports' are.
TEST(ImageReader, ImportsRoundTripAndAreChecked) {
  using Imports = std::vector<image::ImportRecord>;
  auto with = [](Imports imports) { return sample_with([&](ImageInfo& i) { i.imports = imports; }); };
  EXPECT_TRUE(read(sample()).imports.empty()) << "the note is optional";
  const ImageInfo got = read(with({{"square", "i64(i64)"}, {"host_log", "void(str,f64)"}}));
  ASSERT_EQ(got.imports.size(), 2u);
  EXPECT_EQ(got.imports[1].name, "host_log");
  EXPECT_EQ(got.imports[1].signature, "void(str,f64)");
  // An import may share its name with an export (the sample exports "square").
  EXPECT_EQ(read(with({{"square", "i64(i64)"}})).imports.size(), 1u);
  Imports many(image::kMaxImports + 1, {"x", "void()"});
  for (size_t i = 0; i < many.size(); ++i) many[i].name = "f" + std::to_string(i);
  EXPECT_TRUE(Fails<BadImage>(with(many), "image has 257 imports; the server library has stubs for 256"));
  many.pop_back();
  EXPECT_EQ(read(with(many)).imports.size(), image::kMaxImports);
  EXPECT_TRUE(Fails<BadImage>(with({{"", "void()"}}), "an import has an empty name"));
  EXPECT_TRUE(Fails<BadImage>(with({{"a b", "void()"}}),
                              "import name \"a b\" has a character outside printable ASCII"));
  EXPECT_TRUE(Fails<BadImage>(with({{"a", "void()"}, {"a", "void()"}}), "import \"a\" appears twice"));
  EXPECT_TRUE(Fails<BadImage>(with({{"a", "i64(banana)"}}), "import \"a\": "));
  TestImage cut = with({{"square", "i64(i64)"}});
  auto notes = read_notes(cut);
  for (auto& n : notes)
    if (n.type == image::kNoteImports) n.desc.resize(n.desc.size() - 3);
  write_notes(cut, notes);
  EXPECT_TRUE(Fails<BadImage>(cut, "malformed imports note"));
}

TEST(ImageReader, LayoutIsPageAlignedAfterTheHeader) {
  TestImage t = sample();
  EXPECT_EQ(t.data_start % image::kPageSize, 0u);
  EXPECT_GE(t.data_start, t.header_size);
  uint64_t expect_off = t.data_start;
  for (const auto& s : t.info.segments) {
    EXPECT_EQ(s.offset, expect_off);
    expect_off += image::page_round_up(s.filesz);
  }
  EXPECT_EQ(t.bytes.size(), expect_off);
}

// A memory file holding the first n bytes of an image (a file shorter than
// the size a source is told, when n is less).
sys::UniqueFd memfd_holding(const TestImage& t, size_t n) {
  sys::UniqueFd fd(memfd_create("subctx-test-image", MFD_CLOEXEC));
  if (fd && write(fd.get(), t.bytes.data(), n) != static_cast<ssize_t>(n)) fd.reset();
  return fd;
}

// A source whose file ends after 100 bytes: the program header table is cut.
template <class Source>
void expect_truncated_table(Source& src) {
  try {
    read_image(src, kWhat);
    FAIL() << "accepted";
  } catch (const BadImage& e) {
    EXPECT_NE(std::string(e.what()).find("truncated: program header table"), std::string::npos) << e.what();
  }
}

TEST(ImageReader, ReadsFromAFile) {
  TestImage t = sample();
  sys::UniqueFd fd = memfd_holding(t, t.bytes.size());
  ASSERT_TRUE(fd);
  image::FileSource src(fd.get(), t.bytes.size());
  expect_same(read_image(src, kWhat), t.info);
  EXPECT_EQ(verify_segments(src, t.info), "");
}

TEST(ImageReader, FileSourceShorterThanDeclared) {
  TestImage t = sample();
  sys::UniqueFd fd = memfd_holding(t, 100);  // the file really has 100 bytes
  ASSERT_TRUE(fd);
  image::FileSource src(fd.get(), t.bytes.size());  // but fstat said more
  expect_truncated_table(src);
  image::FileSource whole(fd.get(), t.bytes.size());
  EXPECT_NE(verify_segments(whole, t.info).find("cannot read"), std::string::npos);
}

// The map's source: the first bytes read at once, the rest from the file.
TEST(ImageReader, PrefetchedFileSourceReadsAsTheFile) {
  TestImage t = sample();
  sys::UniqueFd fd = memfd_holding(t, t.bytes.size());
  ASSERT_TRUE(fd);
  image::PrefetchedFileSource src(fd.get(), t.bytes.size());
  expect_same(read_image(src, kWhat), t.info);
  EXPECT_EQ(verify_segments(src, t.info), "");
  // Inside the prefix, across its end, past it, and past the file's end.
  const size_t edge = std::min(image::PrefetchedFileSource::kPrefix, t.bytes.size());
  std::vector<uint64_t> offsets = {0, edge - 8, t.bytes.size() - 8};
  if (edge + 5 <= t.bytes.size()) offsets.push_back(edge - 3);
  for (uint64_t at : offsets) {
    uint8_t got[8];
    ASSERT_TRUE(src.read(at, got, sizeof got)) << at;
    EXPECT_EQ(std::memcmp(got, t.bytes.data() + at, sizeof got), 0) << at;
  }
  uint8_t past[8];
  EXPECT_FALSE(src.read(t.bytes.size() - 4, past, sizeof past));
}

TEST(ImageReader, PrefetchedFileSourceShorterThanDeclared) {
  TestImage t = sample();
  sys::UniqueFd fd = memfd_holding(t, 100);  // the file really has 100 bytes
  ASSERT_TRUE(fd);
  image::PrefetchedFileSource src(fd.get(), t.bytes.size());  // but fstat said more
  expect_truncated_table(src);
}

// ---------------------------------------------------------------- truncation

TEST(ImageReader, TruncatedAtEveryByteOfTheHeader) {
  TestImage t = sample();
  const size_t phdr_end = 64 + 7 * 56;
  for (size_t len = 0; len < t.header_size; ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    std::string want = len < 64         ? "truncated: file is " + std::to_string(len) + " bytes"
                       : len < phdr_end ? std::string("truncated: program header table")
                                        : std::string("truncated: notes");
    ASSERT_TRUE(Fails<BadImage>(t.bytes, want, {}, len));
  }
}

TEST(ImageReader, TruncatedAtEveryHeaderBoundary) {
  TestImage t = sample();
  const size_t notes_off = 64 + 7 * 56;
  std::vector<size_t> cuts = {0, 1, 4, 16, 63, 64, 64 + 56, notes_off - 1, notes_off};
  for (uint32_t type = image::kNoteVersion; type <= image::kNoteIdentity; ++type) {
    if (!t.note(type)) continue;  // optional and absent (syscalls)
    cuts.push_back(t.note(type));
    cuts.push_back(t.desc(type));
  }
  cuts.push_back(t.header_digest_offset);
  cuts.push_back(t.segment_digests_offset);
  cuts.push_back(t.header_size - 1);
  for (size_t len : cuts) {
    SCOPED_TRACE("length " + std::to_string(len));
    ASSERT_LT(len, t.header_size);
    EXPECT_TRUE(Fails<BadImage>(t.bytes, "truncated", {}, len));
  }
}

TEST(ImageReader, TruncatedInsideSegmentData) {
  TestImage t = sample();
  std::vector<size_t> cuts = {t.header_size, t.data_start - 1, t.data_start};
  for (const auto& s : t.info.segments) {
    if (!s.filesz) continue;
    for (uint64_t d : {uint64_t{1}, s.filesz / 2, s.filesz - 1}) cuts.push_back(s.offset + d);
  }
  for (size_t len = t.header_size; len < t.bytes.size(); len += 97) cuts.push_back(len);
  cuts.push_back(t.bytes.size() - 1);
  for (size_t len : cuts) {
    SCOPED_TRACE("length " + std::to_string(len));
    ASSERT_TRUE(Fails<BadImage>(t.bytes, "lies outside the file", {}, len));
  }
}

// ---------------------------------------------------------------- single-byte damage

TEST(ImageReader, EveryFlippedHeaderByteIsRefused) {
  TestImage t = sample();
  for (size_t i = 0; i < t.header_size; ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::vector<uint8_t> b = t.bytes;
    b[i] ^= 0xff;
    try {
      read_image(MemorySource(b.data(), b.size()), kWhat);
      ADD_FAILURE() << "a flipped header byte was accepted";
    } catch (const Error&) {
    }
  }
}

TEST(ImageReader, PaddingAfterTheNotesIsNotPartOfTheHeader) {
  TestImage t = sample();
  ASSERT_LT(t.header_size, t.data_start);
  t.bytes[t.header_size] = 0x5a;
  t.bytes[t.data_start - 1] = 0xa5;
  EXPECT_TRUE(Reads(t));
}

// ---------------------------------------------------------------- ELF header

struct FieldCase {
  const char* name;
  std::function<void(TestImage&)> change;
  const char* want;
};

void run_cases(const std::vector<FieldCase>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TestImage t = sample();
    c.change(t);
    EXPECT_TRUE(Fails<BadImage>(t, c.want));
    // Re-sealing must not help: these checks come before the digest.
    if (t.note(image::kNoteDigests)) {
      t.reseal();
      EXPECT_TRUE(Fails<BadImage>(t, c.want));
    }
  }
}

TEST(ImageReader, CorruptedElfHeaderFields) {
  auto set8 = [](size_t off, uint8_t v) { return [=](TestImage& t) { t.bytes[off] = v; }; };
  auto set16 = [](size_t off, uint16_t v) { return [=](TestImage& t) { t.put<uint16_t>(off, v); }; };
  auto set32 = [](size_t off, uint32_t v) { return [=](TestImage& t) { t.put<uint32_t>(off, v); }; };
  auto set64 = [](size_t off, uint64_t v) { return [=](TestImage& t) { t.put<uint64_t>(off, v); }; };
  run_cases({
      {"magic byte 0", set8(0, 0x7e), "bad magic: not an ELF file"},
      {"magic byte 3", set8(3, 'G'), "bad magic"},
      {"class 32", set8(EI_CLASS, ELFCLASS32), "not a 64-bit little-endian ELF file"},
      {"class none", set8(EI_CLASS, ELFCLASSNONE), "not a 64-bit little-endian ELF file"},
      {"big endian", set8(EI_DATA, ELFDATA2MSB), "not a 64-bit little-endian ELF file"},
      {"ident version", set8(EI_VERSION, 0), "unknown ELF version"},
      {"e_version", set32(ehdr(offsetof(Elf64_Ehdr, e_version)), 2), "unknown ELF version"},
      {"type EXEC", set16(ehdr(offsetof(Elf64_Ehdr, e_type)), ET_EXEC), "ELF type 2 is not ET_CORE"},
      {"type DYN", set16(ehdr(offsetof(Elf64_Ehdr, e_type)), ET_DYN), "ELF type 3 is not ET_CORE"},
      {"machine i386", set16(ehdr(offsetof(Elf64_Ehdr, e_machine)), EM_386), "machine 3 is not x86-64"},
      {"machine aarch64", set16(ehdr(offsetof(Elf64_Ehdr, e_machine)), EM_AARCH64), "machine 183 is not x86-64"},
      {"ehsize", set16(ehdr(offsetof(Elf64_Ehdr, e_ehsize)), 52), "unexpected ELF header or program header size"},
      {"phentsize 32-bit", set16(ehdr(offsetof(Elf64_Ehdr, e_phentsize)), 32),
       "unexpected ELF header or program header size"},
      {"phentsize 57", set16(ehdr(offsetof(Elf64_Ehdr, e_phentsize)), 57),
       "unexpected ELF header or program header size"},
      {"phoff 0", set64(ehdr(offsetof(Elf64_Ehdr, e_phoff)), 0), "program headers not right after the ELF header"},
      {"phoff 120", set64(ehdr(offsetof(Elf64_Ehdr, e_phoff)), 120), "program headers not right after"},
      {"phoff huge", set64(ehdr(offsetof(Elf64_Ehdr, e_phoff)), ~uint64_t{0}), "program headers not right after"},
      {"phnum 0", set16(ehdr(offsetof(Elf64_Ehdr, e_phnum)), 0), "program header count 0 out of range"},
      {"phnum 1", set16(ehdr(offsetof(Elf64_Ehdr, e_phnum)), 1), "program header count 1 out of range"},
      {"phnum PN_XNUM", set16(ehdr(offsetof(Elf64_Ehdr, e_phnum)), PN_XNUM), "program header count 65535 out of range"},
      {"phnum one more", set16(ehdr(offsetof(Elf64_Ehdr, e_phnum)), 8), "notes do not follow the program headers"},
      {"phnum one less", set16(ehdr(offsetof(Elf64_Ehdr, e_phnum)), 6), "notes do not follow the program headers"},
      {"phnum 4096+1", set16(ehdr(offsetof(Elf64_Ehdr, e_phnum)), 4097), "truncated: program header table"},
  });
}

TEST(ImageReader, UncheckedElfFieldsAreCoveredByTheHeaderDigest) {
  struct Case {
    const char* name;
    size_t off;
  };
  for (Case c :
       {Case{"osabi", EI_OSABI}, Case{"ident padding", EI_PAD}, Case{"e_entry", offsetof(Elf64_Ehdr, e_entry)},
        Case{"e_shoff", offsetof(Elf64_Ehdr, e_shoff)}, Case{"e_flags", offsetof(Elf64_Ehdr, e_flags)},
        Case{"e_shnum", offsetof(Elf64_Ehdr, e_shnum)}, Case{"note p_align", phdr(0, offsetof(Elf64_Phdr, p_align))},
        Case{"note p_vaddr", phdr(0, offsetof(Elf64_Phdr, p_vaddr))},
        Case{"load p_paddr", seg(2, offsetof(Elf64_Phdr, p_paddr))},
        Case{"load p_align", seg(2, offsetof(Elf64_Phdr, p_align))}}) {
    SCOPED_TRACE(c.name);
    TestImage t = sample();
    t.bytes[c.off] ^= 0x40;
    EXPECT_TRUE(Fails<DigestMismatch>(t, "header digest mismatch"));
    t.reseal();  // the reader itself does not look at these fields
    EXPECT_TRUE(Reads(t));
  }
}

// ---------------------------------------------------------------- program headers

TEST(ImageReader, CorruptedNoteProgramHeader) {
  auto note = [](size_t field, uint64_t v) {
    return [=](TestImage& t) {
      if (field == offsetof(Elf64_Phdr, p_type)) t.put<uint32_t>(phdr(0, field), static_cast<uint32_t>(v));
      else t.put<uint64_t>(phdr(0, field), v);
    };
  };
  const size_t notes_off = 64 + 7 * 56;
  run_cases({
      {"type LOAD", note(offsetof(Elf64_Phdr, p_type), PT_LOAD), "first program header is not PT_NOTE"},
      {"type NULL", note(offsetof(Elf64_Phdr, p_type), PT_NULL), "first program header is not PT_NOTE"},
      {"offset +4", note(offsetof(Elf64_Phdr, p_offset), notes_off + 4), "notes do not follow the program headers"},
      {"offset 0", note(offsetof(Elf64_Phdr, p_offset), 0), "notes do not follow the program headers"},
      {"size > 64 MiB", note(offsetof(Elf64_Phdr, p_filesz), (uint64_t{64} << 20) + 1), "(at most 64 MiB)"},
      {"size huge", note(offsetof(Elf64_Phdr, p_filesz), ~uint64_t{0}), "(at most 64 MiB)"},
      {"size past the file", note(offsetof(Elf64_Phdr, p_filesz), 1 << 20), "truncated: notes at offset "},
  });
  // Sizes that cut or extend the notes.
  TestImage t = sample();
  const uint64_t size = t.get<uint64_t>(phdr(0, offsetof(Elf64_Phdr, p_filesz)));
  for (uint64_t d : {1, 4, 8, 12}) {
    SCOPED_TRACE("size -" + std::to_string(d));
    TestImage u = t;
    u.put<uint64_t>(phdr(0, offsetof(Elf64_Phdr, p_filesz)), size - d);
    EXPECT_TRUE(Fails<BadImage>(u, "runs past the notes"));
  }
  for (uint64_t d : {4, 12, 100}) {
    SCOPED_TRACE("size +" + std::to_string(d));
    TestImage u = t;
    u.put<uint64_t>(phdr(0, offsetof(Elf64_Phdr, p_filesz)), size + d);
    EXPECT_TRUE(Fails<BadImage>(u, "the digest note is not the last note"));
  }
  {
    SCOPED_TRACE("size 0");
    TestImage u = t;
    u.put<uint64_t>(phdr(0, offsetof(Elf64_Phdr, p_filesz)), 0);
    EXPECT_TRUE(Fails<BadImage>(u, "missing SUBCTX note 0x53430001"));
  }
}

TEST(ImageReader, CorruptedLoadProgramHeaders) {
  auto set32 = [](size_t k, size_t field, uint32_t v) {
    return [=](TestImage& t) { t.put<uint32_t>(seg(k, field), v); };
  };
  auto set64 = [](size_t k, size_t field, uint64_t v) {
    return [=](TestImage& t) { t.put<uint64_t>(seg(k, field), v); };
  };
  auto add64 = [](size_t k, size_t field, uint64_t v) {
    return [=](TestImage& t) { t.put<uint64_t>(seg(k, field), t.get<uint64_t>(seg(k, field)) + v); };
  };
  const size_t type = offsetof(Elf64_Phdr, p_type), flags = offsetof(Elf64_Phdr, p_flags),
               offset = offsetof(Elf64_Phdr, p_offset), vaddr = offsetof(Elf64_Phdr, p_vaddr),
               filesz = offsetof(Elf64_Phdr, p_filesz), memsz = offsetof(Elf64_Phdr, p_memsz);
  const uint64_t kEnd = image::kUserSpaceEnd;
  run_cases({
      {"type NOTE", set32(0, type, PT_NOTE), "segment 0: program header type 4 is not PT_LOAD"},
      {"type DYNAMIC", set32(3, type, PT_DYNAMIC), "segment 3: program header type 2 is not PT_LOAD"},
      {"flags PF_MASKOS", set32(1, flags, PF_R | 0x00100000), "segment 1: unknown flags 0x100004"},
      {"flags bit 3", set32(2, flags, PF_R | PF_W | 8), "segment 2: unknown flags 0xe"},
      {"vaddr unaligned", add64(1, vaddr, 0x10), "segment 1: address, offset or size not page-aligned"},
      {"offset unaligned", add64(2, offset, 1), "segment 2: address, offset or size not page-aligned"},
      {"memsz unaligned", add64(5, memsz, 0x800), "segment 5: address, offset or size not page-aligned"},
      {"memsz 0", set64(1, memsz, 0), "segment 1: address, offset or size not page-aligned"},
      {"vaddr 0", set64(0, vaddr, 0), "segment 0: maps page zero"},
      {"vaddr at 2^47", set64(5, vaddr, kEnd), "segment 5: range 0x800000000000+0x2000 is outside user space"},
      {"vaddr kernel", set64(5, vaddr, 0xffffffffff600000), "is outside user space"},
      {"end past 2^47", [=](TestImage& t) { t.put<uint64_t>(seg(5, vaddr), kEnd - 0x1000); },
       "segment 5: range 0x7ffffffff000+0x2000 is outside user space"},
      {"memsz wraps", set64(5, memsz, 0xfffffffffffff000), "is outside user space"},
      {"filesz > memsz", set64(1, filesz, 0x2000), "segment 1: file size larger than memory size"},
      {"offset past the file", add64(5, offset, 0x100000),
       "segment 5 [0x7ffd00000000-0x7ffd00002000) lies outside the file"},
      {"offset wraps", set64(5, offset, 0xfffffffffffff000),
       "segment 5 [0x7ffd00000000-0x7ffd00002000) lies outside the file"},
      {"filesz past the file",
       [=](TestImage& t) {
         t.put<uint64_t>(seg(5, memsz), 0x3000);
         t.put<uint64_t>(seg(5, filesz), 0x3000);
       },
       "lies outside the file"},
      {"gate guard offset past the file", add64(3, offset, 0x10000),
       "segment 3 [0x7f0000000000-0x7f0000001000) lies outside the file"},
      {"data in the header", set64(0, offset, 0), "segment 0: data overlaps the header"},
      {"overlapping", set64(1, vaddr, 0x401000),
       "segments 0 and 1 overlap or are out of order (0x400000-0x402000 and 0x401000-0x402000)"},
      {"same address", set64(4, vaddr, 0x7f0000000000), "segments 3 and 4 overlap or are out of order"},
      {"out of order", set64(2, vaddr, 0x300000), "segments 1 and 2 overlap or are out of order"},
      {"contained", [=](TestImage& t) { t.put<uint64_t>(seg(2, memsz), 0x7f0000010000 - 0x600000); },
       "segments 2 and 3 overlap"},
  });
}

TEST(ImageReader, ZeroSizeDataMayStartAnywhereInsideTheFile) {
  // p_filesz == 0: the offset is not used for data, only bounded by the file.
  TestImage t = sample();
  t.put<uint64_t>(seg(3, offsetof(Elf64_Phdr, p_offset)), 0);
  t.reseal();
  EXPECT_TRUE(Reads(t));
}

// ---------------------------------------------------------------- notes

TEST(ImageReader, NoteSizesRunningPastTheNotes) {
  for (uint32_t type : {image::kNoteVersion, image::kNoteExports, image::kNoteDigests}) {
    for (int field : {0, 4}) {  // namesz, descsz
      for (uint32_t v : {0xffffffffu, 0x80000000u, 0x10000u}) {
        SCOPED_TRACE("type " + std::to_string(type) + (field ? " descsz " : " namesz ") + std::to_string(v));
        TestImage t = sample();
        const size_t n = t.note(type);
        t.put<uint32_t>(n + field, v);
        EXPECT_TRUE(Fails<BadImage>(t, "runs past the notes"));
      }
    }
  }
}

TEST(ImageReader, TruncatedNoteHeader) {
  // Without a digest note, bytes after the last note that cannot hold a note header.
  TestImage t = sample();
  t.put<uint32_t>(t.note(image::kNoteDigests) + 8, 0x99);
  const size_t size_at = phdr(0, offsetof(Elf64_Phdr, p_filesz));
  t.put<uint64_t>(size_at, t.get<uint64_t>(size_at) + 8);
  EXPECT_TRUE(Fails<BadImage>(t, "truncated note header at offset " + std::to_string(t.header_size)));
}

TEST(ImageReader, DuplicateNote) {
  // The cpu note renamed to a type that came before it.
  for (uint32_t dup : {image::kNoteVersion, image::kNoteCreator, image::kNoteProvenance}) {
    SCOPED_TRACE(dup);
    TestImage t = sample();
    t.put<uint32_t>(t.note(image::kNoteCpu) + 8, dup);
    t.reseal();
    EXPECT_TRUE(Fails<BadImage>(t, "duplicate SUBCTX note " + sys::hex(dup)));
  }
  // A second exports note, just before the digest note.
  TestImage t = sample();
  auto notes = read_notes(t);
  for (const auto& n : read_notes(t))
    if (n.type == image::kNoteExports) notes.insert(notes.end() - 1, n);
  write_notes(t, notes);
  EXPECT_TRUE(Fails<BadImage>(t, "duplicate SUBCTX note 0x53430006"));
  // A second digest note, appended: the first one is then not the last.
  TestImage u = sample();
  notes = read_notes(u);
  notes.push_back(notes.back());
  write_notes(u, notes);
  EXPECT_TRUE(Fails<BadImage>(u, "the digest note is not the last note"));
}

TEST(ImageReader, MissingRequiredNote) {
  for (uint32_t type :
       {image::kNoteVersion, image::kNoteThread, image::kNoteExports, image::kNoteSegments, image::kNoteIdentity}) {
    SCOPED_TRACE(type);
    TestImage t = sample();
    t.put<uint32_t>(t.note(type) + 8, 0x77);  // an unknown type: ignored
    t.reseal();
    EXPECT_TRUE(Fails<BadImage>(t, "missing SUBCTX note " + sys::hex(type)));
  }
  {
    SCOPED_TRACE("digests");
    TestImage t = sample();
    t.put<uint32_t>(t.note(image::kNoteDigests) + 8, 0x77);
    EXPECT_TRUE(Fails<BadImage>(t, "missing SUBCTX note 0x53430009"));
  }
  {
    SCOPED_TRACE("owner of the exports note is not SUBCTX");
    TestImage t = sample();
    t.bytes[t.note(image::kNoteExports) + 12 + 5] = 'Y';  // "SUBCTY"
    t.reseal();
    EXPECT_TRUE(Fails<BadImage>(t, "missing SUBCTX note 0x53430006"));
  }
}

TEST(ImageReader, OptionalNotesMayBeAbsent) {
  for (uint32_t type : {image::kNoteCreator, image::kNoteProvenance, image::kNoteCpu, image::kNoteVdso}) {
    SCOPED_TRACE(type);
    TestImage t = sample();
    auto notes = read_notes(t);
    std::erase_if(notes, [&](const RawNote& n) { return n.type == type; });
    write_notes(t, notes);
    ImageInfo got = read(t);
    if (type == image::kNoteCreator) {
      EXPECT_EQ(got.creator_path, "");
    }
    if (type == image::kNoteProvenance) {
      EXPECT_EQ(got.created_ns, 0u);
    }
    if (type == image::kNoteCpu) {
      EXPECT_EQ(got.cpu_features, 0u);
    }
    if (type == image::kNoteVdso) {
      EXPECT_EQ(got.vdso.base, 0u);
    }
  }
}

TEST(ImageReader, UnknownAndForeignNotesAreIgnored) {
  TestImage t = sample();
  auto notes = read_notes(t);
  RawNote gnu;
  gnu.name = std::string("GNU", 4);
  gnu.type = image::kNoteVersion;  // same type number, other owner: not a duplicate
  gnu.desc = {1, 2, 3};
  RawNote empty_owner;
  empty_owner.type = image::kNoteThread;
  RawNote later = subctx_note(0x53430042, {9, 9, 9, 9, 9});
  RawNote almost;  // "SUBCTX" without its NUL
  almost.name = "SUBCTX";
  almost.type = image::kNoteVersion;
  almost.desc = {2, 0, 0, 0, 0, 0, 0, 0};
  notes.insert(notes.begin() + 2, {gnu, empty_owner, later, almost});
  write_notes(t, notes);
  ImageInfo got = read(t);
  ImageInfo want = t.info;
  want.header_digest = got.header_digest;
  expect_same(got, want);
}

TEST(ImageReader, NotesInAnotherOrderAreAccepted) {
  TestImage t = sample();
  auto notes = read_notes(t);
  std::reverse(notes.begin(), notes.end() - 1);  // the digest note stays last
  write_notes(t, notes);
  EXPECT_TRUE(Reads(t));
}

TEST(ImageReader, DigestNoteNotLast) {
  TestImage t = sample();
  auto notes = read_notes(t);
  std::swap(notes[notes.size() - 1], notes[notes.size() - 2]);
  write_notes(t, notes);
  EXPECT_TRUE(Fails<BadImage>(t, "the digest note is not the last note"));
}

TEST(ImageReader, UnsupportedVersion) {
  ASSERT_EQ(image::kFormatVersion, 3u);
  for (uint32_t v : {0u, 1u, 2u, 4u, 0xffffffffu}) {
    SCOPED_TRACE(v);
    TestImage t = sample();
    t.put<uint32_t>(t.desc(image::kNoteVersion), v);
    // Refused by name even before the digest is checked ...
    EXPECT_TRUE(Fails<UnsupportedVersion>(t, "image format version " + std::to_string(v) +
                                                 "; this subctx reads version 3"));
    t.reseal();  // ... and after.
    EXPECT_TRUE(Fails<UnsupportedVersion>(t, "(rewrite the image with a matching subctx server library)"));
  }
  // A version 1 image (no identity note): refused as a version, not as a missing note.
  TestImage t = sample_with([](ImageInfo& i) { i.version = 1; });
  auto notes = read_notes(t);
  std::erase_if(notes, [](const RawNote& n) { return n.type == image::kNoteIdentity; });
  write_notes(t, notes);
  EXPECT_TRUE(Fails<UnsupportedVersion>(t, "image format version 1; this subctx reads version 3"));
}

// Each note cut short (its last byte removed), or with a string too long.
TEST(ImageReader, MalformedNotes) {
  struct Case {
    uint32_t type;
    const char* want;
  };
  for (Case c :
       {Case{image::kNoteVersion, "malformed version note"}, Case{image::kNoteCreator, "malformed creator note"},
        Case{image::kNoteProvenance, "malformed provenance note"}, Case{image::kNoteCpu, "malformed cpu note"},
        Case{image::kNoteThread, "malformed thread note"}, Case{image::kNoteExports, "malformed exports note"},
        Case{image::kNoteVdso, "malformed vdso note"}, Case{image::kNoteSegments, "malformed segments note"},
        Case{image::kNoteIdentity, "malformed identity note"}, Case{image::kNoteDigests, "malformed digests note"}}) {
    for (size_t cut : {size_t{1}, size_t{4}, size_t{8}}) {
      SCOPED_TRACE(std::string(c.want) + ", " + std::to_string(cut) + " bytes short");
      TestImage t = sample();
      auto notes = read_notes(t);
      for (auto& n : notes)
        if (n.type == c.type) n.desc.resize(n.desc.size() - cut);
      write_notes(t, notes);
      EXPECT_TRUE(Fails<BadImage>(t, c.want));
    }
  }
}

TEST(ImageReader, EmptyDescriptorInTheLastNote) {
  // The descriptor starts at the very end of the notes (under
  // _GLIBCXX_ASSERTIONS, &notes[notes.size()] would abort).
  TestImage t = sample();
  auto notes = read_notes(t);
  notes.back().desc.clear();
  write_notes(t, notes);
  EXPECT_TRUE(Fails<BadImage>(t, "malformed digests note"));
}

TEST(ImageReader, StringsAtAndOverTheirLimits) {
  // kMaxText = 4096 for paths, kMaxName = 255 for the rest.
  const std::string path4096(4096, 'p'), path4097(4097, 'p'), name255(255, 'n'), name256(256, 'n');
  // Informational strings longer than the reader takes are cut by the
  // writer, so a server never writes an image its clients refuse.
  EXPECT_TRUE(Reads(sample_with([&](ImageInfo& i) { i.creator_path = path4096; })));
  EXPECT_EQ(read(sample_with([&](ImageInfo& i) { i.creator_path = path4097; })).creator_path, path4096);
  EXPECT_TRUE(Reads(sample_with([&](ImageInfo& i) { i.build_id = name255; })));
  EXPECT_EQ(read(sample_with([&](ImageInfo& i) { i.build_id = name256; })).build_id, name255);
  EXPECT_EQ(read(sample_with([&](ImageInfo& i) { i.kernel = name256; })).kernel, name255);
  EXPECT_EQ(read(sample_with([&](ImageInfo& i) { i.libc = name256; })).libc, name255);
  EXPECT_TRUE(Reads(sample_with([&](ImageInfo& i) { i.exports[0].name = name255; })));
  EXPECT_TRUE(Fails<BadImage>(sample_with([&](ImageInfo& i) { i.exports[0].name = name256; }),
                              "malformed exports note"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([&](ImageInfo& i) { i.exports[1].signature = "i32(" + name256 + ")"; }),
                              "malformed exports note"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([&](ImageInfo& i) { i.vdso.symbols[0].name = name256; }),
                              "malformed vdso note"));
  EXPECT_TRUE(Reads(sample_with([&](ImageInfo& i) { i.segments[0].origin = path4096; })));
  EXPECT_EQ(read(sample_with([&](ImageInfo& i) { i.segments[0].origin = path4097; })).segments[0].origin, path4096);
}

TEST(ImageReader, CountsInsideNotes) {
  {
    SCOPED_TRACE("exports count one more than the records");
    TestImage t = sample();
    t.put<uint32_t>(t.desc(image::kNoteExports), 4);
    t.reseal();
    EXPECT_TRUE(Fails<BadImage>(t, "malformed exports note"));
  }
  {
    SCOPED_TRACE("exports count huge");
    TestImage t = sample();
    t.put<uint32_t>(t.desc(image::kNoteExports), 0xffffffff);
    EXPECT_TRUE(Fails<LimitExceeded>(
        t, "image has 4294967295 exports; limit 'exports per image' (SUBCTX_MAX_EXPORTS) is 4096"));
  }
  {
    SCOPED_TRACE("vdso symbol count");
    TestImage t = sample();
    t.put<uint32_t>(t.desc(image::kNoteVdso) + 16, 257);
    EXPECT_TRUE(Fails<BadImage>(t, "vdso note lists 257 symbols (at most 256)"));
    t.put<uint32_t>(t.desc(image::kNoteVdso) + 16, 3);
    t.reseal();
    EXPECT_TRUE(Fails<BadImage>(t, "malformed vdso note"));
  }
  {
    SCOPED_TRACE("segments count");
    TestImage t = sample();
    t.put<uint32_t>(t.desc(image::kNoteSegments), 5);
    EXPECT_TRUE(Fails<BadImage>(t, "segments note lists 5 segments, the program headers 6"));
    t.put<uint32_t>(t.desc(image::kNoteSegments), 7);
    EXPECT_TRUE(Fails<BadImage>(t, "segments note lists 7 segments, the program headers 6"));
  }
  {
    SCOPED_TRACE("digest count");
    TestImage t = sample();
    t.put<uint32_t>(t.desc(image::kNoteDigests) + 8, 5);
    EXPECT_TRUE(Fails<BadImage>(t, "digest note lists 5 segments, the program headers 6"));
  }
  {
    SCOPED_TRACE("digest note with trailing bytes");
    TestImage t = sample();
    auto notes = read_notes(t);
    notes.back().desc.resize(notes.back().desc.size() + 8);
    write_notes(t, notes);
    EXPECT_TRUE(Fails<BadImage>(t, "digest note has trailing bytes"));
  }
  {
    SCOPED_TRACE("unknown segment kind");
    for (uint8_t kind : {6, 0x80, 0xff}) {
      TestImage t = sample();
      t.bytes[t.desc(image::kNoteSegments) + 4] = kind;
      EXPECT_TRUE(Fails<BadImage>(t, "segment 0: unknown kind"));
    }
  }
  {
    SCOPED_TRACE("256 vdso symbols");
    TestImage t = sample_with([](ImageInfo& i) {
      i.vdso.symbols.clear();
      for (int k = 0; k < 256; ++k) i.vdso.symbols.push_back({0x100u + 16u * k, "s" + std::to_string(k)});
    });
    EXPECT_EQ(read(t).vdso.symbols.size(), 256u);
  }
}

// ---------------------------------------------------------------- digests

TEST(ImageReader, HeaderDigestMismatch) {
  {
    SCOPED_TRACE("a creator byte");
    TestImage t = sample();
    t.bytes[t.desc(image::kNoteCreator) + 4] ^= 1;
    EXPECT_TRUE(Fails<DigestMismatch>(t, "header digest mismatch (stored 0x"));
    EXPECT_TRUE(Fails<DigestMismatch>(t, "): the image was modified or damaged; write it again"));
  }
  {
    SCOPED_TRACE("the stored digest");
    TestImage t = sample();
    t.bytes[t.header_digest_offset + 7] ^= 0x80;
    EXPECT_TRUE(Fails<DigestMismatch>(t, "header digest mismatch"));
  }
  {
    SCOPED_TRACE("a segment digest");
    TestImage t = sample();
    t.bytes[t.segment_digests_offset + 8 * 2] ^= 1;
    EXPECT_TRUE(Fails<DigestMismatch>(t, "header digest mismatch"));
    t.reseal();
    ImageInfo got = read(t);  // only verify_segments reads the data
    const std::string v = verify_segments(MemorySource(t.bytes.data(), t.bytes.size()), got);
    EXPECT_NE(v.find("segment 2 [0x600000-0x603000) ([heap]): digest mismatch"), std::string::npos) << v;
  }
  {
    SCOPED_TRACE("a program header's flags");
    TestImage t = sample();
    t.put<uint32_t>(seg(1, offsetof(Elf64_Phdr, p_flags)), PF_R | PF_W);
    EXPECT_TRUE(Fails<DigestMismatch>(t, "header digest mismatch"));
  }
}

TEST(ImageReader, VerifySegmentsDetectsAFlippedDataByte) {
  TestImage t = sample();
  for (size_t k = 0; k < t.info.segments.size(); ++k) {
    const auto& s = t.info.segments[k];
    if (!s.filesz) continue;
    for (uint64_t at : {uint64_t{0}, s.filesz / 3, s.filesz - 1}) {
      SCOPED_TRACE("segment " + std::to_string(k) + " byte " + std::to_string(at));
      std::vector<uint8_t> b = t.bytes;
      b[s.offset + at] ^= 0x20;
      MemorySource src(b.data(), b.size());
      ImageInfo got = read_image(src, kWhat);  // the header is intact
      const std::string v = verify_segments(src, got);
      EXPECT_EQ(v.rfind("segment " + std::to_string(k) + " [", 0), 0u) << v;
      EXPECT_NE(v.find("digest mismatch (stored 0x"), std::string::npos) << v;
    }
  }
}

TEST(ImageReader, VerifySegmentsCountsTheZeroTail) {
  // The heap segment has one page of data and two zero pages; a digest over
  // only the file bytes would not match.
  TestImage t = sample();
  ImageInfo info = t.info;
  info.segments[2].memsz = 0x1000;
  const std::string v = verify_segments(MemorySource(t.bytes.data(), t.bytes.size()), info);
  EXPECT_NE(v.find("segment 2"), std::string::npos) << v;
}

TEST(ImageReader, VerifySegmentsOnATruncatedSource) {
  TestImage t = sample();
  const std::string v = verify_segments(MemorySource(t.bytes.data(), t.bytes.size() - 1), t.info);
  EXPECT_NE(v.find("segment 5: cannot read"), std::string::npos) << v;
}

// ---------------------------------------------------------------- thread record

TEST(ImageReader, ThreadPointerOutsideAWritableSegment) {
  for (uint64_t tcb : {uint64_t{0}, uint64_t{0x400100}, uint64_t{0x402000}, uint64_t{0x500000}, uint64_t{0x602ffc},
                       uint64_t{0x7f0000000800}, ~uint64_t{0}}) {
    SCOPED_TRACE(tcb);
    char want[80];
    snprintf(want, sizeof want, "thread pointer 0x%llx is not inside a writable segment",
             static_cast<unsigned long long>(tcb));
    EXPECT_TRUE(Fails<BadImage>(sample_with([=](ImageInfo& i) { i.thread.tcb = tcb; }), want));
  }
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.thread.tcb = 0x600ff8; })));  // the last 8 bytes of its file page
}

// Hostile thread records: the first faulting call would read or write
// beyond them (issue 14).
TEST(ImageReader, ThreadRecordMustFitInItsSegment) {
  // The last 8 bytes of the heap segment: the self-pointer fits, glibc's
  // struct pthread does not.
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.tcb = 0x602ff8; }),
                              "thread record 0x602ff8-0x603938 (2368 bytes: glibc's struct pthread and its rseq area) "
                              "runs past the end of its segment 0x600000-0x603000"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.tcb = 0x602700; }), "runs past the end"));
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.thread.tcb = 0x601000 - 2368; })));  // ends with the file page
}

TEST(ImageReader, ThreadRecordMustStartWithItsOwnAddress) {
  // On a zero page (the anonymous part of the heap segment).
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.tcb = 0x601000; }),
                              "thread record 0x601000 does not start with its own address (it holds 0x0)"));
  // In the file, holding something else.
  TestImage t = sample();
  const size_t at = t.info.segments[2].offset + (t.info.thread.tcb - t.info.segments[2].vaddr);
  t.put<uint64_t>(at, 0x600200);
  EXPECT_TRUE(Fails<BadImage>(t, "does not start with its own address (it holds 0x600200)"));
  // A truncated source is reported as such, not read past.
  TestImage cut = sample();
  cut.bytes.resize(at + 4);
  EXPECT_TRUE(Fails<BadImage>(cut, "lies outside the file"));
}

TEST(ImageReader, GateStackMustNotOverlapTheThreadRecord) {
  for (uint64_t lo : {uint64_t{0x600000}, uint64_t{0x600100}, uint64_t{0x600a00}}) {
    SCOPED_TRACE(lo);
    EXPECT_TRUE(Fails<BadImage>(sample_with([=](ImageInfo& i) {
                                  i.thread.gate_stack_lo = lo;
                                  i.thread.gate_stack_hi = 0x603000;
                                }),
                                "overlaps the thread record 0x600100-0x600a40"));
  }
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {  // below it, its top inside
                                i.thread.gate_stack_lo = 0x600000;
                                i.thread.gate_stack_hi = 0x600110;
                              }),
                              "overlaps the thread record"));
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) {  // just above it
    i.thread.gate_stack_lo = 0x600a40;
    i.thread.gate_stack_hi = 0x603000;
  })));
}

TEST(ImageReader, GateStackOutsideOneWritableSegment) {
  struct Case {
    const char* name;
    uint64_t lo, hi;
  };
  for (Case c :
       {Case{"read-only", 0x402000, 0x403000}, Case{"executable", 0x400000, 0x401000},
        Case{"in the guard", 0x7f0000000000, 0x7f0000001000},
        Case{"spans guard and stack", 0x7f0000000000, 0x7f0000005000},
        Case{"past the end", 0x7f0000001000, 0x7f0000006000}, Case{"empty", 0x7f0000002000, 0x7f0000002000},
        Case{"inverted", 0x7f0000003000, 0x7f0000002000}, Case{"top unaligned", 0x7f0000001000, 0x7f0000004ff8},
        Case{"unmapped", 0x500000, 0x501000}, Case{"zero", 0, 0}, Case{"hi wraps", 0x7f0000001000, ~uint64_t{0xf}},
        Case{"two writable segments", 0x602000, 0x7ffd00001000}}) {
    SCOPED_TRACE(c.name);
    TestImage t = sample_with([&](ImageInfo& i) {
      i.thread.gate_stack_lo = c.lo;
      i.thread.gate_stack_hi = c.hi;
    });
    EXPECT_TRUE(Fails<BadImage>(t, "is not inside one writable segment"));
  }
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) {  // any writable segment will do
    i.thread.gate_stack_lo = 0x601000;
    i.thread.gate_stack_hi = 0x603000;
  })));
}

TEST(ImageReader, FileSizeMustBeWholePages) {
  // The client maps whole pages of the file: bytes past p_filesz would come
  // from the file where the format says zeros.
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.segments[2].filesz = 0x1800; }),
                              "is not a whole number of pages"));
}

TEST(ImageReader, StdioAndFflushOutsideTheirSegments) {
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.stdout_file = 0x500000; }),
                              "stdio stream 0x500000 is not inside a readable and writable segment"));
  EXPECT_TRUE(Fails<BadImage>(
      sample_with([](ImageInfo& i) { i.thread.stderr_file = 0x602fa0; }),
      "stdio stream 0x602fa0 is not inside a readable and writable segment"));  // 216 bytes would run past
  // The gate reads these streams after every call: a read-only or
  // inaccessible segment would crash the client, so it is refused.
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.stdout_file = i.segments[0].vaddr; }),
                              "is not inside a readable and writable segment"));
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.thread.stderr_file = 0x603000 - 216; })));
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.thread.stdout_file = i.thread.stderr_file = 0; })));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.fflush_fn = 0x600000; }),
                              "fflush 0x600000 is not inside an executable segment"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.thread.fflush_fn = 0x1000; }),
                              "fflush 0x1000 is not inside an executable segment"));
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.thread.fflush_fn = 0; })));
}

// ---------------------------------------------------------------- exports

TEST(ImageReader, BadExports) {
  struct Case {
    const char* name;
    std::function<void(ImageInfo&)> change;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"in a writable segment", [](ImageInfo& i) { i.exports[0].address = 0x600100; },
       "export \"square\" at 0x600100 is outside every executable segment"},
      {"in a read-only segment", [](ImageInfo& i) { i.exports[0].address = 0x402010; },
       "export \"square\" at 0x402010 is outside every executable segment"},
      {"unmapped", [](ImageInfo& i) { i.exports[1].address = 0x300000; },
       "export \"greet\" at 0x300000 is outside every executable segment"},
      {"just past the code", [](ImageInfo& i) { i.exports[2].address = 0x402000; }, "outside every executable segment"},
      {"null", [](ImageInfo& i) { i.exports[2].address = 0; }, "export \"pi\" at 0x0 is outside"},
      {"in the gate guard", [](ImageInfo& i) { i.exports[2].address = 0x7f0000000010; },
       "outside every executable segment"},
      {"bad signature", [](ImageInfo& i) { i.exports[1].signature = "i32(foo)"; },
       "export \"greet\": bad signature \"i32(foo)\": unknown argument type 'foo'"},
      {"empty signature", [](ImageInfo& i) { i.exports[1].signature = ""; }, "export \"greet\": bad signature"},
      {"too many arguments", [](ImageInfo& i) { i.exports[1].signature = "void(i64,i64,i64,i64,i64,i64,i64)"; },
       "more than 6 integer/pointer arguments"},
      {"duplicate", [](ImageInfo& i) { i.exports[2].name = "square"; }, "export \"square\" appears twice"},
      {"empty name", [](ImageInfo& i) { i.exports[1].name = ""; }, "an export has an empty name"},
      {"space in the name", [](ImageInfo& i) { i.exports[1].name = "gre et"; },
       "export name \"gre et\" has a character outside printable ASCII"},
      {"control character", [](ImageInfo& i) { i.exports[1].name = "gre\nt"; }, "outside printable ASCII"},
      {"DEL", [](ImageInfo& i) { i.exports[1].name = "gre\x7f"; }, "outside printable ASCII"},
      {"high byte", [](ImageInfo& i) { i.exports[1].name = "gr\xc3\xa9"; }, "outside printable ASCII"},
      {"visibility 2", [](ImageInfo& i) { i.exports[0].visibility = 2; }, "export \"square\": unknown visibility 2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(Fails<BadImage>(sample_with(c.change), c.want));
  }
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.exports[2].address = 0x401fff; })));  // last code byte
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.exports.clear(); })));                // no exports at all
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) { i.exports[0].name = "a!~_.$0"; })));
}

// A name from the image is untrusted: quoted in a message it must not cut
// the message short (NUL: what() and sbc_last_error() end there) nor carry
// control characters to the terminal.
TEST(ImageReader, UntrustedNamesAreQuotedSafely) {
  struct Case {
    std::string name;
    const char* quoted;
  };
  for (const Case& c : {Case{std::string("gr\0t", 4), "gr\\x00t"}, Case{"gr\x1b[2Jt", "gr\\x1b[2Jt"},
                        Case{"gr\nt", "gr\\x0at"}, Case{"gr\xc3\xa9", "gr\\xc3\\xa9"}, Case{"a\\b c", "a\\x5cb c"}}) {
    SCOPED_TRACE(c.quoted);
    try {
      read(sample_with([&](ImageInfo& i) { i.exports[1].name = c.name; }));
      ADD_FAILURE() << "accepted";
    } catch (const BadImage& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::string("export name \"") + c.quoted + "\" has a character outside printable ASCII"),
                std::string::npos)
          << msg;
      for (char ch : msg) EXPECT_TRUE(ch >= ' ' && ch <= '~') << "control character in: " << msg;
    }
  }
  // Other names from the image: a duplicate export, a vDSO symbol, a bad
  // signature, a segment's origin in verify_segments.
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.exports[1].name = "\x7f";
                                i.exports[2].name = "\x7f";
                              }),
                              "export name \"\\x7f\" has a character outside printable ASCII"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) {
                                i.vdso.symbols[0] = {0x4000, "t\x01me"};
                              }),
                              "vdso symbol \"t\\x01me\" is outside the vdso"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.exports[0].signature = std::string("i64(\0)", 6); }),
                              "export \"square\": bad signature \"i64(\\x00)\": unknown argument type '\\x00'"));
  TestImage t = sample_with([](ImageInfo& i) { i.segments[2].origin = "[he\nap]"; });
  t.bytes[t.info.segments[2].offset] ^= 1;
  const std::string v = verify_segments(MemorySource(t.bytes.data(), t.bytes.size()), read(t));
  EXPECT_NE(v.find("([he\\x0aap]): digest mismatch"), std::string::npos) << v;
}

// ---------------------------------------------------------------- vdso

TEST(ImageReader, MalformedVdsoRecord) {
  struct Case {
    const char* name;
    uint64_t base, size;
    const char* want;
  };
  for (Case c : {Case{"base unaligned", 0x7ffd10000010, 0x2000, "vdso range 0x7ffd10000010+0x2000 is malformed"},
                 Case{"size 0", 0x7ffd10000000, 0, "vdso range 0x7ffd10000000+0x0 is malformed"},
                 Case{"size unaligned", 0x7ffd10000000, 0x2100, "is malformed"},
                 Case{"65 pages", 0x7ffd10000000, 65 * 0x1000, "is malformed"},
                 Case{"base in the kernel", 0xffffffffff700000, 0x2000, "is malformed"},
                 Case{"base at 2^47", image::kUserSpaceEnd, 0x2000, "is malformed"},
                 Case{"end past 2^47", image::kUserSpaceEnd - 0x1000, 0x2000, "is malformed"},
                 Case{"overlaps the heap", 0x601000, 0x2000, "vdso range overlaps a segment"},
                 Case{"overlaps the stack's start", 0x7ffcfffff000, 0x2000, "vdso range overlaps a segment"},
                 Case{"overlaps the guard", 0x7f0000000000, 0x1000, "vdso range overlaps a segment"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(Fails<BadImage>(sample_with([&](ImageInfo& i) {
                                  i.vdso.base = c.base;
                                  i.vdso.size = c.size;
                                }),
                                c.want));
  }
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.vdso.symbols[1].offset = 0x2000; }),
                              "vdso symbol \"__vdso_time\" is outside the vdso"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.vdso.symbols[1].offset = ~uint64_t{0}; }),
                              "is outside the vdso"));
  EXPECT_TRUE(Fails<BadImage>(sample_with([](ImageInfo& i) { i.vdso.symbols[0].name = ""; }),
                              "vdso symbol \"\" is outside the vdso"));
  // Adjacent to a segment, 64 pages: fine.
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) {
    i.vdso.base = 0x7ffd00002000;
    i.vdso.size = 64 * 0x1000;
  })));
  // base 0 means "no vDSO": the rest of the record is not used.
  EXPECT_TRUE(Reads(sample_with([](ImageInfo& i) {
    i.vdso.base = 0;
    i.vdso.size = 0;
  })));
}

// ---------------------------------------------------------------- limits

TEST(ImageReader, Limits) {
  TestImage t = sample();
  ReadLimits l;
  l.max_segments = 5;
  EXPECT_TRUE(Fails<LimitExceeded>(t, "image has 6 segments; limit 'segments per image' (SUBCTX_MAX_SEGMENTS) is 5",
                                   l));
  l.max_segments = 6;
  EXPECT_TRUE(Reads(t, l));

  l = {};
  l.max_exports = 2;
  EXPECT_TRUE(Fails<LimitExceeded>(t, "image has 3 exports; limit 'exports per image' (SUBCTX_MAX_EXPORTS) is 2", l));
  l.max_exports = 3;
  EXPECT_TRUE(Reads(t, l));

  l = {};
  const uint64_t vsize = t.info.virtual_size();
  l.max_image_size = vsize - 1;
  EXPECT_TRUE(Fails<LimitExceeded>(t,
                                   "image is " + std::to_string(vsize) +
                                       " bytes of memory; limit 'image size' (SUBCTX_MAX_IMAGE_SIZE) is " +
                                       std::to_string(vsize - 1),
                                   l));
  l.max_image_size = vsize;
  EXPECT_TRUE(Reads(t, l));

  // The default segment limit refuses a huge program header count before
  // the table is read.
  TestImage big = sample();
  big.put<uint16_t>(offsetof(Elf64_Ehdr, e_phnum), 60000);
  EXPECT_TRUE(Fails<LimitExceeded>(big, "image has 59999 segments"));
}

// The hot-pages note (`subctx train`): written, read back, and every run
// checked against the segments and the limits before a map populates it.
TEST(ImageReader, HotPagesRoundTripAndAreChecked) {
  using image::HotRun;
  const std::vector<HotRun> runs = {{0x400000, 2}, {0x402000, 1}, {0x600000, 1}};
  ImageInfo got = read(sample_with([&](ImageInfo& i) { i.hot_pages = runs; }));
  ASSERT_EQ(got.hot_pages.size(), runs.size());
  for (size_t k = 0; k < runs.size(); ++k) {
    EXPECT_EQ(got.hot_pages[k].vaddr, runs[k].vaddr);
    EXPECT_EQ(got.hot_pages[k].pages, runs[k].pages);
  }
  EXPECT_TRUE(read(sample()).hot_pages.empty()) << "the note is optional";
  auto with = [&](std::vector<HotRun> r) { return sample_with([&](ImageInfo& i) { i.hot_pages = std::move(r); }); };
  EXPECT_TRUE(Fails<BadImage>(with({{0x400000, 3}}),
                              "hot-pages run 0 (0x400000, 3 pages): not inside the file part of one segment"));
  EXPECT_TRUE(Fails<BadImage>(with({{0x601000, 1}}), "not inside the file part of one segment"))
      << "a zero page past filesz";
  EXPECT_TRUE(Fails<BadImage>(with({{0x500000, 1}}), "not inside the file part")) << "between segments";
  EXPECT_TRUE(Fails<BadImage>(with({{0x7f0000000000, 1}}), "not inside the file part")) << "the gate guard";
  EXPECT_TRUE(Fails<BadImage>(with({{0x400800, 1}}), "empty or not page-aligned"));
  EXPECT_TRUE(Fails<BadImage>(with({{0x400000, 0}}), "empty or not page-aligned"));
  EXPECT_TRUE(Fails<BadImage>(with({{0x401000, 1}, {0x400000, 1}}), "run 1 (0x400000, 1 pages): overlaps or precedes"));
  EXPECT_TRUE(Fails<BadImage>(with({{0x400000, 2}, {0x401000, 1}}), "overlaps or precedes"));
  EXPECT_TRUE(Fails<BadImage>(with({{0xfffffffff000, 0xffffffff}}), "not inside the file part"));
  std::vector<HotRun> too_many(image::kMaxHotRuns + 1, HotRun{0x400000, 1});
  EXPECT_TRUE(Fails<LimitExceeded>(with(too_many), "hot-pages note lists 4097 runs; at most 4096 (kMaxHotRuns)"));
  // A truncated run and a trailing byte are malformed.
  TestImage t = with(runs);
  std::vector<RawNote> notes = read_notes(t);
  for (RawNote& n : notes)
    if (n.type == image::kNoteHotPages) n.desc.pop_back();
  write_notes(t, notes);
  EXPECT_TRUE(Fails<BadImage>(t, "malformed hot-pages note"));
  for (RawNote& n : notes)
    if (n.type == image::kNoteHotPages) n.desc.insert(n.desc.end(), {0, 0});
  write_notes(t, notes);
  EXPECT_TRUE(Fails<BadImage>(t, "hot-pages note has trailing bytes"));
}

}  // namespace
}  // namespace subctx::test
