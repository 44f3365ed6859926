// A client helper for the identity tests (test_identity.cpp): a fresh
// process whose own descriptors start at 3, as a real client's do.  Prints
// lines the test compares; "FAIL ..." on stderr and exit 1 on a failure.
//
//   e2e_identity_client repro LOG_IMAGE FILE
//       opens FILE (its descriptor 3, the number of the server's log) and
//       writes a line, maps, calls write_log, writes a second line
//   e2e_identity_client data DATA_IMAGE
//       read_line three times, reset, read_line
//   e2e_identity_client sqlite SQLITE_IMAGE ID FILE
//       opens FILE first, maps, prints "mapped ID", waits for stdin to close
//       (every client mapped), queries every row, checks FILE
//   e2e_identity_client locked IMAGE
//       without the capabilities that bypass file permissions (root too),
//       the outcome of mapping IMAGE
//   e2e_identity_client unmediated IMAGE
//       (run with SUBCTX_SYSCALLS=off) the outcome of mapping IMAGE without
//       and with MapOptions::unisolated, and with SBC_MAP_UNISOLATED
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <subctx/subctx.h>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <subctx/subctx.hpp>

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL %s\n", what.c_str());
  std::exit(1);
}

void write_all(int fd, const std::string& s) {
  if (write(fd, s.data(), s.size()) != static_cast<ssize_t>(s.size())) fail("write: " + std::string(strerror(errno)));
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  off_t off = 0;
  ssize_t n;
  while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return out;
}

int mode_repro(const std::string& image, const std::string& file) {
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("open " + file);
  write_all(fd, "client line 1\n");
  std::printf("fd %d\n", fd);
  auto sc = subctx::Matchmaker::instance().request_map(image);
  std::printf("log_fd %" PRId64 "\n", sc.call<int64_t()>("log_fd"));
  std::printf("write_log %" PRId64 "\n", sc.call<int64_t(const char*)>("write_log", "from the subcontext"));
  write_all(fd, "client line 2\n");
  std::printf("fd_open %d\n", fcntl(fd, F_GETFD) != -1);
  return 0;
}

int mode_data(const std::string& image) {
  auto sc = subctx::Matchmaker::instance().request_map(image);
  for (int i = 0; i < 3; ++i) std::printf("line [%s]\n", sc.call<const char*()>("read_line"));
  const subctx::ResetInfo r = sc.reset();
  std::printf("restored %" PRIu64 "\n", r.fds_restored);
  std::printf("line [%s]\n", sc.call<const char*()>("read_line"));
  return 0;
}

int mode_sqlite(const std::string& image, int id, const std::string& file) {
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open " + file);
  const std::string mine = "client " + std::to_string(id) + " data\n";
  write_all(fd, mine);
  auto sc = subctx::Matchmaker::instance().request_map(image);
  std::printf("mapped %d fd %d\n", id, fd);
  std::fflush(stdout);
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  auto query = sc.function<int64_t(int64_t)>("query");
  for (int round = 0; round < 4; ++round)
    for (int64_t k = 1 + id; k <= 500; k += 3) {
      const int64_t v = query(k);
      if (v != k * k + 7)
        fail("query(" + std::to_string(k) + ") = " + std::to_string(v) + ", want " + std::to_string(k * k + 7));
    }
  if (query(501) != -1) fail("query(501) found a row");
  if (read_all(fd) != mine) fail("the client's file changed: [" + read_all(fd) + "]");
  std::printf("client %d ok\n", id);
  return 0;
}

void print_outcome(const char* what, const std::function<void()>& fn) {
  try {
    fn();
    std::printf("%s: ok\n", what);
  } catch (const subctx::Error& e) {
    std::printf("%s: %s: %s\n", what, subctx::errc_name(e.code()), e.what());
  }
}

// Drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from the
// effective set: file modes apply to this process even when it is root.
void drop_dac_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) fail("capget: " + std::string(strerror(errno)));
  for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}) data[cap / 32].effective &= ~(1u << (cap % 32));
  if (syscall(SYS_capset, &header, data) != 0) fail("capset: " + std::string(strerror(errno)));
}

int mode_locked(const std::string& image) {
  drop_dac_capabilities();
  print_outcome("map", [&] {
    auto sc = subctx::Matchmaker::instance().request_map(image);
    subctx::Matchmaker::instance().unmap(sc);
  });
  return 0;
}

int mode_unmediated(const std::string& image) {
  auto& mm = subctx::Matchmaker::instance();
  print_outcome("map", [&] {
    auto sc = mm.request_map(image);
    mm.unmap(sc);
  });
  subctx::MapOptions o;
  o.unisolated = true;
  print_outcome("unisolated", [&] {
    auto sc = mm.request_map(image, o);
    std::printf("bump %" PRId64 "\n", sc.call<int64_t(int64_t)>("bump", 1));
    print_outcome("grant", [&] { sc.grant_fd(STDOUT_FILENO); });
    mm.unmap(sc);
  });
  const int h = sbc_request_map_with(image.c_str(), SBC_PROTECT_AUTO, SBC_MAP_UNISOLATED);
  std::printf("c unisolated: %d\n", h < 0 ? h : 0);
  if (h >= 0) sbc_unmap(h);
  const int plain = sbc_request_map(image.c_str());
  std::printf("c map: %d\n", plain < 0 ? plain : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "repro" && argc == 4) return mode_repro(argv[2], argv[3]);
    if (mode == "data" && argc == 3) return mode_data(argv[2]);
    if (mode == "sqlite" && argc == 5) return mode_sqlite(argv[2], std::atoi(argv[3]), argv[4]);
    if (mode == "unmediated" && argc == 3) return mode_unmediated(argv[2]);
    if (mode == "locked" && argc == 3) return mode_locked(argv[2]);
  } catch (const subctx::Error& e) {
    fail(std::string(subctx::errc_name(e.code())) + ": " + e.what());
  }
  std::fprintf(stderr, "usage: e2e_identity_client repro|data|sqlite|locked|unmediated ...\n");
  return 2;
}
