// Writes the fuzzer's seed corpus: small valid images made with the real
// writer (tests/unit/test_image.hpp), and creates the other directories the
// fuzz test needs.
//   make_fuzz_seeds SEED_DIR [DIR...]
#include <elf.h>

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_image.hpp"

namespace {

void write(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Only the header: every segment a hole (p_filesz 0) with its offset set
// to 0, so that the file ends with the notes and every mutation of the
// fuzzer lands in bytes the reader checks.
std::vector<uint8_t> header_only(subctx::image::ImageInfo info) {
  for (auto& s : info.segments) s.filesz = 0;
  subctx::test::TestImage t = subctx::test::build_image(std::move(info));
  for (size_t k = 0; k < t.info.segments.size(); ++k)
    t.put<uint64_t>(subctx::test::TestImage::phdr(1 + k) + offsetof(Elf64_Phdr, p_offset), 0);
  t.bytes.resize(t.header_size);
  t.reseal();
  return t.bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR [DIR...]\n", argv[0]);
    return 2;
  }
  try {
    for (int i = 1; i < argc; ++i) std::filesystem::create_directories(argv[i]);
    const std::filesystem::path dir = argv[1];
    using subctx::test::build_image;
    write(dir / "small.img", build_image(subctx::test::small_info()).bytes);
    auto with_vdso = subctx::test::small_info();
    with_vdso.vdso.base = 0x7ffd10000000;
    with_vdso.vdso.size = 0x2000;
    with_vdso.vdso.symbols = {{0x900, "__vdso_clock_gettime"}, {0x900, "clock_gettime"}, {0xa00, "__vdso_time"}};
    with_vdso.thread.stdout_file = 0x11200;
    with_vdso.thread.fflush_fn = 0x10100;
    write(dir / "small-vdso.img", build_image(with_vdso).bytes);
    write(dir / "sample.img", build_image(subctx::test::sample_info()).bytes);
    auto hot = subctx::test::sample_info();
    hot.hot_pages = {{0x400000, 2}, {0x402000, 1}, {0x600000, 1}};
    write(dir / "sample-hot.img", build_image(hot).bytes);
    write(dir / "tiny.img", header_only(subctx::test::small_info()));
    write(dir / "tiny-vdso.img", header_only(with_vdso));
    write(dir / "sample-header.img", header_only(subctx::test::sample_info()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
