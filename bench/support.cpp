#include "support.hpp"

#include <benchmark/benchmark.h>
#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <subctx/subctx.hpp>

extern char** environ;

namespace bench {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t n) { return (n + kPage - 1) & ~(kPage - 1); }

std::vector<Elf64_Phdr> load_headers(int fd, const std::string& image) {
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof(Elf64_Phdr))
    throw std::runtime_error(image + ": not an ELF64 image");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  const auto bytes = static_cast<ssize_t>(ph.size() * sizeof(Elf64_Phdr));
  if (pread(fd, ph.data(), static_cast<size_t>(bytes), static_cast<off_t>(eh.e_phoff)) != bytes)
    throw std::runtime_error(image + ": truncated program headers");
  std::vector<Elf64_Phdr> loads;
  for (const auto& p : ph)
    if (p.p_type == PT_LOAD) loads.push_back(p);
  return loads;
}

int prot_of(uint32_t flags) {
  return ((flags & PF_R) ? PROT_READ : 0) | ((flags & PF_W) ? PROT_WRITE : 0) | ((flags & PF_X) ? PROT_EXEC : 0);
}

}  // namespace

TempDir& temp_dir() {
  // run.sh passes its own directory so that it can clean up after a crash.
  static TempDir dir("subctx-bench", "SUBCTX_BENCH_TMPDIR");
  return dir;
}

std::string sibling_program(const std::string& name) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot read /proc/self/exe: " + ec.message());
  return (self.parent_path() / name).string();
}

Spawned spawn(const std::vector<std::string>& argv, bool quiet) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) fail("pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  if (quiet) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // servers snapshot what they hold (docs/identity.md)
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (err != 0) {
    close(pipe_fds[0]);
    errno = err;
    fail("cannot start " + argv[0]);
  }
  Spawned r;
  char buf[65536];
  for (;;) {
    ssize_t n = read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.out.append(buf, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  while (waitpid(pid, &r.status, 0) < 0)
    if (errno != EINTR) fail("waitpid");
  return r;
}

Report run_server(const std::vector<std::string>& argv) {
  const Spawned s = spawn(argv);
  if (!WIFEXITED(s.status) || WEXITSTATUS(s.status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += " " + a;
    throw std::runtime_error("bench server failed (status " + std::to_string(s.status) + "):" + cmd);
  }
  Report r;
  std::istringstream lines(s.out);
  std::string key;
  double value;
  while (lines >> key >> value) r[key] = value;
  return r;
}

double report_value(const Report& r, const std::string& key) {
  auto it = r.find(key);
  if (it == r.end()) throw std::runtime_error("bench server did not report " + key);
  return it->second;
}

Report make_image(const std::string& image, const std::vector<std::string>& argv) {
  auto& mm = subctx::Matchmaker::instance();
  for (int attempt = 1;; ++attempt) {
    Report r = run_server(argv);
    try {
      mm.unmap(mm.request_map(image));
      return r;
    } catch (const subctx::AddressConflict& e) {
      std::fprintf(stderr, "bench: %s (attempt %d; writing the image again)\n", e.what(), attempt);
      unlink(image.c_str());
      if (attempt == 5) throw;
    }
  }
}

ImageStats image_stats(const std::string& image) {
  int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + image);
  struct stat st;
  if (fstat(fd, &st) != 0) fail("fstat " + image);
  ImageStats s;
  s.file_bytes = static_cast<uint64_t>(st.st_size);
  s.disk_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  try {
    for (const auto& p : load_headers(fd, image)) {
      s.virtual_bytes += p.p_memsz;
      ++s.segments;
    }
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
  return s;
}

std::vector<Range> image_ranges(const std::string& image) {
  int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + image);
  std::vector<Range> out;
  try {
    for (const auto& p : load_headers(fd, image))
      out.push_back({p.p_vaddr & ~(kPage - 1), page_up(p.p_vaddr + p.p_memsz)});
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
  return out;
}

uint64_t present_pages(const std::vector<Range>& ranges, uint64_t* blocks_2m) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open /proc/self/pagemap");
  uint64_t present = 0, blocks = 0, last_block = ~uint64_t{0};
  uint64_t entries[512];
  for (const Range& r : ranges)
    for (uint64_t page = r.lo / kPage; page < r.hi / kPage;) {
      const uint64_t n = std::min<uint64_t>(512, r.hi / kPage - page);
      const ssize_t got = pread(fd, entries, n * 8, static_cast<off_t>(page * 8));
      if (got <= 0) {
        close(fd);
        fail("read /proc/self/pagemap");
      }
      for (ssize_t i = 0; i < got / 8; ++i)
        if (entries[i] >> 63) {
          ++present;
          const uint64_t block = (page + static_cast<uint64_t>(i)) / 512;
          blocks += block != last_block;
          last_block = block;
        }
      page += static_cast<uint64_t>(got) / 8;
    }
  close(fd);
  if (blocks_2m) *blocks_2m = blocks;
  return present;
}

RawImageMap::RawImageMap(const std::string& image) {
  fd_ = open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("open " + image);
  for (const auto& p : load_headers(fd_, image)) {
    const uint64_t file_part = page_up(p.p_filesz);
    if (p.p_filesz) pieces_.push_back({p.p_vaddr, file_part, p.p_offset, prot_of(p.p_flags), false});
    if (p.p_memsz > file_part)
      pieces_.push_back({p.p_vaddr + file_part, page_up(p.p_memsz) - file_part, 0, prot_of(p.p_flags), true});
  }
}

RawImageMap::~RawImageMap() {
  unmap();
  close(fd_);
}

void RawImageMap::map() {
  for (const auto& p : pieces_) {
    void* want = reinterpret_cast<void*>(p.addr);
    void* got = p.anonymous
                    ? mmap(want, p.len, p.prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
                    : mmap(want, p.len, p.prot, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd_, static_cast<off_t>(p.offset));
    if (got != want) {
      if (got != MAP_FAILED) munmap(got, p.len);
      unmap();
      fail("raw mmap of an image segment");
    }
    ++mapped_;
  }
}

void RawImageMap::unmap() {
  for (size_t i = 0; i < mapped_; ++i) munmap(reinterpret_cast<void*>(pieces_[i].addr), pieces_[i].len);
  mapped_ = 0;
}

int run_benchmarks(const char* argv0) {
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv0, e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}

int benchmark_main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  return run_benchmarks(argv[0]);
}

subctx::Subcontext map_or_skip(benchmark::State& state, const std::string& image, const subctx::MapOptions& options) {
  try {
    return subctx::Matchmaker::instance().request_map(image, options);
  } catch (const subctx::Error& e) {
    state.SkipWithError(("request_map failed: " + std::string(e.what())).c_str());
    return {};
  }
}

}  // namespace bench
