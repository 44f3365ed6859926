// Bench server for bench_identity (docs/identity.md): N small files open at
// the snapshot, which a client reopens by path at map, and exports that make
// system calls on the first of them (a restored descriptor: translated by
// the SIGSYS handler on every call) or on no descriptor at all (getppid).
//
//   bench_identity_server IMAGE [--fds N]
//
// Makes the folder IMAGE.files (if needed) and writes f0 .. f{N-1} in it
// ("f<i>\n", first byte 'f'), opens each read-only (descriptors 3 .. N+2:
// the table is clean, bench::spawn closes 3 and up in the child) and keeps
// them open through the snapshot.  Prints "key value" lines: fds, first_fd,
// init_s, snapshot_s.
//
// Exports (n system calls each; the loops are the ones bench_identity runs
// on its own descriptor of f0, copied there: keep them the same):
//   getppid_loop(n)  getppid(): mediated, no descriptor (getppid_loop.hpp)
//   getpgrp_loop(n)  getpgrp(): mediated, no descriptor, and made as a
//                    system call that may block (the handler sets the
//                    interrupted signal mask around it, as for fstat and
//                    pread; getppid is made with signals still blocked)
//   fstat_loop(n)    fstat(f0) n times; the sum of st_ino, or -errno
//   pread_loop(n)    pread(f0, buf, 1, 0) n times; the sum of the bytes
//                    read, or -errno
// With N = 0, fstat_loop and pread_loop return -EBADF.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>

#include "clock.hpp"
#include "fd_loops.hpp"
#include "getppid_loop.hpp"

namespace {

int g_first_fd = -1;  // f0's descriptor: restored, then translated in calls

}  // namespace

int64_t fstat_loop(int64_t n) { return g_first_fd < 0 ? -EBADF : fstat_loop_fd(g_first_fd, n); }
int64_t pread_loop(int64_t n) { return g_first_fd < 0 ? -EBADF : pread_loop_fd(g_first_fd, n); }

SUBCTX_EXPORT(getppid_loop);
SUBCTX_EXPORT(getpgrp_loop);
SUBCTX_EXPORT(fstat_loop);
SUBCTX_EXPORT(pread_loop);

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

// Writes dir/f<i> and opens it read-only; returns the descriptor.
int make_and_open(const std::string& dir, int64_t i) {
  const std::string name = std::to_string(i);
  const std::string path = dir + "/f" + name;
  std::string text = "f";  // (not "f" + ...: GCC 12's false -Wrestrict)
  text += name;
  text += '\n';
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("create " + path);
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) fail("write " + path);
  close(fd);
  fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + path);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t fds = 0;
  bool ok = argc >= 2;
  for (int i = 2; ok && i < argc; ++i) {
    if (!std::strcmp(argv[i], "--fds") && i + 1 < argc) fds = std::atoll(argv[++i]);
    else ok = false;
  }
  if (!ok || fds < 0 || fds > 1000) {
    std::fprintf(stderr, "usage: bench_identity_server IMAGE [--fds N]   (0 <= N <= 1000)\n");
    return 2;
  }
  try {
    const double t0 = bench::now_seconds();
    const std::string dir = std::string(argv[1]) + ".files";
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) fail("mkdir " + dir);
    for (int64_t i = 0; i < fds; ++i) {
      const int fd = make_and_open(dir, i);
      if (i == 0) g_first_fd = fd;
    }
    // Every export once before the snapshot (resolves their PLT slots here).
    if (getppid_loop(1) <= 0 || getpgrp_loop(1) <= 0 || (fds > 0 && (fstat_loop(1) <= 0 || pread_loop(1) != 'f')) ||
        (fds == 0 && (fstat_loop(1) != -EBADF || pread_loop(1) != -EBADF)))
      throw std::runtime_error("an export failed before the snapshot");
    const double init_s = bench::now_seconds() - t0;
    const double t1 = bench::now_seconds();
    subctx::snapshot(argv[1]);
    const double snapshot_s = bench::now_seconds() - t1;
    std::printf("fds %lld\nfirst_fd %d\ninit_s %.9f\nsnapshot_s %.9f\n", static_cast<long long>(fds), g_first_fd,
                init_s, snapshot_s);
    std::fflush(stdout);
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_identity_server: %s\n", e.what());
    return 1;
  }
}
