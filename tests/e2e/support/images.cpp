#include "support/images.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "image/digest.hpp"
#include "image/format.hpp"
#include "image/reader.hpp"
#include "image/writer.hpp"
#include "support/maps.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"
#include "sys/unique_fd.hpp"
#include "temp_dir.hpp"

namespace e2e {

namespace {

[[noreturn]] void die(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void pread_all(int fd, void* out, size_t size, uint64_t off, const std::string& what) {
  auto* p = static_cast<char*>(out);
  while (size) {
    ssize_t n = pread(fd, p, size, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("read " + what);
    p += n;
    size -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
}

void pwrite_all(int fd, const void* data, size_t size, uint64_t off, const std::string& what) {
  auto* p = static_cast<const char*>(data);
  while (size) {
    ssize_t n = pwrite(fd, p, size, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("write " + what);
    p += n;
    size -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
}

}  // namespace

const std::string& temp_dir() {
  static subctx::testing::TempDir dir("subctx-e2e", "TMPDIR", "SUBCTX_E2E_KEEP");
  return dir.path();
}

std::string temp_path(const std::string& name) { return temp_dir() + "/" + name; }

std::string build_image(const std::string& server, const std::string& name, const std::vector<std::string>& args) {
  const std::string path = temp_path(name);
  std::vector<std::string> argv{server};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(path);
  // A server's addresses are random (ASLR) and so are this process's: now
  // and then they overlap (a library of each, say) and every map of the
  // image would be an AddressConflict.  Such an image is written again; the
  // conflict tests make their conflicts on purpose, by patching.
  for (int attempt = 1;; ++attempt) {
    ProcessResult r = run(argv);
    if (!r.ok()) throw std::runtime_error("server " + server + " failed: " + r.describe());
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      throw std::runtime_error("server " + server + " exited 0 but wrote no image at " + path);
    const std::string maps = read_self_maps();
    const std::vector<Range> ranges = read_layout(path).all_ranges();
    std::vector<std::string> overlaps = lines_overlapping(maps, ranges);
    if (overlaps.empty() || attempt == 5) return path;
    std::fprintf(stderr, "e2e: %s overlaps this test process (%s); writing it again\n", path.c_str(),
                 overlaps.front().c_str());
  }
}

subctx::image::ImageInfo read_image_info(const std::string& path) {
  const subctx::sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || fstat(fd.get(), &st) != 0) throw std::runtime_error("cannot open " + path);
  return subctx::image::read_image(subctx::image::FileSource(fd.get(), static_cast<uint64_t>(st.st_size)), path);
}

uint64_t lowest_stack_room() {
  struct rlimit rl {};
  const uint64_t limit =
      getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : uint64_t{8} << 20;
  return 0x7ffffffff000 - (uint64_t{16} << 30) - limit - (uint64_t{4} << 20);
}

const std::string& basic_image() {
  static const std::string path = build_image(paths::kBasicServer, "basic.img");
  return path;
}
const std::string& feature_image() {
  static const std::string path = build_image(paths::kFeatureServer, "feature.img");
  return path;
}
const std::string& c_image() {
  static const std::string path = build_image(paths::kCServer, "c.img");
  return path;
}

std::vector<Range> ImageLayout::segments() const {
  std::vector<Range> out;
  for (size_t i = 1; i < phdrs.size(); ++i) out.push_back({phdrs[i].p_vaddr, phdrs[i].p_vaddr + phdrs[i].p_memsz});
  return out;
}

std::vector<Range> ImageLayout::all_ranges() const {
  std::vector<Range> out = segments();
  if (vdso.hi) out.push_back(vdso);
  return out;
}

uint64_t ImageLayout::header_digest_offset() const {
  auto it = notes.find(subctx::image::kNoteDigests);
  if (it == notes.end()) throw std::runtime_error("image has no digests note");
  return it->second.desc_offset;
}

ImageLayout read_layout(const std::string& path) {
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) die("open " + path);
  struct stat st;
  if (fstat(f.fd, &st) != 0) die("stat " + path);
  ImageLayout l;
  l.file_size = static_cast<uint64_t>(st.st_size);
  Elf64_Ehdr eh;
  pread_all(f.fd, &eh, sizeof eh, 0, path);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_type != ET_CORE || eh.e_phnum < 2)
    throw std::runtime_error(path + " is not an ET_CORE image");
  l.phdrs.resize(eh.e_phnum);
  pread_all(f.fd, l.phdrs.data(), l.phdrs.size() * sizeof(Elf64_Phdr), eh.e_phoff, path);
  const Elf64_Phdr& note = l.phdrs[0];
  if (note.p_type != PT_NOTE) throw std::runtime_error(path + ": first program header is not PT_NOTE");
  std::vector<uint8_t> notes(note.p_filesz);
  pread_all(f.fd, notes.data(), notes.size(), note.p_offset, path);
  l.header_end = note.p_offset + note.p_filesz;
  for (size_t pos = 0; pos + 12 <= notes.size();) {
    uint32_t namesz, descsz, type;
    std::memcpy(&namesz, &notes[pos], 4);
    std::memcpy(&descsz, &notes[pos + 4], 4);
    std::memcpy(&type, &notes[pos + 8], 4);
    size_t desc = pos + 12 + ((namesz + 3u) & ~3u);
    if (namesz == sizeof subctx::image::kNoteOwner &&
        std::memcmp(&notes[pos + 12], subctx::image::kNoteOwner, namesz) == 0)
      l.notes[type] = {note.p_offset + desc, descsz};
    pos = desc + ((descsz + 3u) & ~3u);
  }
  auto vdso = l.notes.find(subctx::image::kNoteVdso);  // u64 base, u64 size, ...
  if (vdso != l.notes.end() && vdso->second.desc_size >= 16) {
    uint64_t v[2];
    pread_all(f.fd, v, sizeof v, vdso->second.desc_offset, path);
    if (v[0]) l.vdso = {v[0], v[0] + v[1]};
  }
  return l;
}

std::string copy_image(const std::string& from, const std::string& name) {
  const std::string to = temp_path(name);
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) die("open " + from);
  unlink(to.c_str());
  Fd out(open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out.fd < 0) die("create " + to);
  struct stat st;
  if (fstat(in.fd, &st) != 0) die("stat " + from);
  std::vector<char> buf(1 << 20);
  // Copy the data extents only: holes stay holes.
  for (off_t pos = 0; pos < st.st_size;) {
    off_t data = lseek(in.fd, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    off_t hole = lseek(in.fd, data, SEEK_HOLE);
    if (hole < 0) die("lseek " + from);
    for (off_t o = data; o < hole;) {
      size_t n = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(buf.size()), hole - o));
      pread_all(in.fd, buf.data(), n, static_cast<uint64_t>(o), from);
      pwrite_all(out.fd, buf.data(), n, static_cast<uint64_t>(o), to);
      o += static_cast<off_t>(n);
    }
    pos = hole;
  }
  if (ftruncate(out.fd, st.st_size) != 0) die("truncate " + to);
  fchmod(out.fd, 0644);
  return to;
}

void patch_bytes(const std::string& path, uint64_t offset, const void* data, size_t size) {
  Fd f(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (f.fd < 0) die("open " + path);
  pwrite_all(f.fd, data, size, offset, path);
}

template <class T>
T read_value(const std::string& path, uint64_t offset) {
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) die("open " + path);
  T v;
  pread_all(f.fd, &v, sizeof v, offset, path);
  return v;
}
template uint32_t read_value<uint32_t>(const std::string&, uint64_t);
template uint64_t read_value<uint64_t>(const std::string&, uint64_t);

void reseal(const std::string& path) {
  ImageLayout l = read_layout(path);
  std::vector<uint8_t> header(l.header_end);
  {
    Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) die("open " + path);
    pread_all(f.fd, header.data(), header.size(), 0, path);
  }
  const uint64_t at = l.header_digest_offset();
  uint64_t digest = subctx::image::compute_header_digest(header.data(), header.size(), at);
  patch_value(path, at, digest);
}

uint64_t file_hash(const std::string& path) {
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) die("open " + path);
  subctx::image::Digest d;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = read(f.fd, buf.data(), buf.size())) > 0) d.update(buf.data(), static_cast<size_t>(n));
  if (n < 0) die("read " + path);
  return d.value();
}

}  // namespace e2e
