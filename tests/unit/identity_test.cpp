// The server's identity at snapshot: the pure /proc parsers on captured
// text, then collect_identity() on this very process (descriptors opened by
// the test; whatever the test runner left open is declared dropped).
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/identity.hpp"
#include "subctx/error.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::server {
namespace {

using image::FdKind;
using image::FdRecord;
using image::IdentityRecord;

// ---------------------------------------------------------------- parsers

// /proc/self/fdinfo/N as Linux 6.1 prints it.
const char kFdinfoFile[] = "pos:\t4096\nflags:\t02100002\nmnt_id:\t29\nino:\t1835023\n";
const char kFdinfoEventfd[] =
    "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:                0\neventfd-id: 1\n";
const char kFdinfoEpoll[] =
    "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n"
    "tfd:        5 events:       19 data:                5  pos:0 ino:4e3 sdev:d\n";
const char kFdinfoOPath[] = "pos:\t0\nflags:\t012200000\nmnt_id:\t23\nino:\t2\n";

TEST(Identity, ParseFdinfo) {
  uint64_t pos = 1;
  uint32_t flags = 1;
  ASSERT_TRUE(parse_fdinfo(kFdinfoFile, &pos, &flags));
  EXPECT_EQ(pos, 4096u);
  EXPECT_EQ(flags, 02100002u);
  EXPECT_EQ(flags & O_ACCMODE, static_cast<uint32_t>(O_RDWR));
  EXPECT_TRUE(flags & O_CLOEXEC);
  ASSERT_TRUE(parse_fdinfo(kFdinfoEventfd, &pos, &flags));
  EXPECT_EQ(pos, 0u);
  EXPECT_EQ(flags, 02004002u);
  ASSERT_TRUE(parse_fdinfo(kFdinfoEpoll, &pos, &flags));  // "pos:0" inside a tfd line is not the field
  EXPECT_EQ(pos, 0u);
  EXPECT_EQ(flags, 02u);
  ASSERT_TRUE(parse_fdinfo(kFdinfoOPath, &pos, &flags));
  EXPECT_TRUE(flags & O_PATH);
  ASSERT_TRUE(parse_fdinfo("flags:\t04001\npos:\t18446744073709551615\n", &pos, &flags));  // any order, u64 max
  EXPECT_EQ(pos, UINT64_MAX);
  EXPECT_EQ(flags, 04001u);
}

TEST(Identity, ParseFdinfoRefusesMalformedText) {
  for (const char* text :
       {"", "pos:\t0\n", "flags:\t02\n", "pos:\t\nflags:\t02\n", "pos:\t0\nflags:\t\n", "pos:\t-1\nflags:\t02\n",
        "pos:\t18446744073709551616\nflags:\t02\n", "pos:\t0\nflags:\t089\n", "pos:\t0\nflags:\t040000000000\n",
        "pos:\t1x\nflags:\t02\n", " pos:\t0\n flags:\t02\n", "pos:\t0 1\nflags:\t02\n"}) {
    SCOPED_TRACE(text);
    uint64_t pos = 7;
    uint32_t flags = 7;
    EXPECT_FALSE(parse_fdinfo(text, &pos, &flags));
    EXPECT_EQ(pos, 7u);  // untouched on failure
    EXPECT_EQ(flags, 7u);
  }
}

const char kStatus[] =
    "Name:\tserver\nUmask:\t0027\nState:\tR (running)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t1\n"
    "Uid:\t1000\t1000\t1000\t1000\nSigIgn:\t0000000000001000\n";

TEST(Identity, ParseStatusUmask) {
  uint32_t mask = 1;
  ASSERT_TRUE(parse_status_umask(kStatus, &mask));
  EXPECT_EQ(mask, 027u);
  ASSERT_TRUE(parse_status_umask("Umask:\t0777\n", &mask));
  EXPECT_EQ(mask, 0777u);
  ASSERT_TRUE(parse_status_umask("Name:\tx\nUmask:\t0000", &mask));  // no final newline
  EXPECT_EQ(mask, 0u);
  for (const char* text : {"", "Name:\tserver\nState:\tR\n" /* before Linux 4.7 */, "Umask:\t1000\n", "Umask:\t0089\n",
                           "Umask:\t\n", "Umask:\tzz\n", "XUmask:\t0022\n"}) {
    SCOPED_TRACE(text);
    mask = 5;
    EXPECT_FALSE(parse_status_umask(text, &mask));
    EXPECT_EQ(mask, 5u);
  }
}

// ---------------------------------------------------------------- this process

// Whatever is open before a test (the runner's descriptors): declared
// dropped, so that only what the test opens decides.
std::vector<int> already_open() {
  std::vector<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return fds;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.' && std::atoi(e->d_name) != dirfd(d)) fds.push_back(std::atoi(e->d_name));
  closedir(d);
  return fds;
}

const FdRecord* find(const IdentityRecord& id, int number) {
  for (const auto& f : id.fds)
    if (f.number == number) return &f;
  return nullptr;
}

std::string refusal(const std::vector<int>& dropped) {
  try {
    collect_identity(dropped);
  } catch (const SnapshotRefused& e) {
    return e.what();
  }
  return "";
}

bool kcmp_works() {
  const long r = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0);
  return r >= 0 || (errno != ENOSYS && errno != EPERM);
}

// Resolved, since /proc/self/fd names the file by its real path.
std::string temp_dir() {
  const char* t = std::getenv("TMPDIR");
  char real[PATH_MAX];
  return realpath(t && *t ? t : "/tmp", real) ? real : "/tmp";
}

TEST(Identity, RecordsFilesDirectoriesAndDevices) {
  const std::vector<int> before = already_open();
  std::string path = temp_dir() + "/subctx-identity-XXXXXX";
  sys::UniqueFd file(mkstemp(path.data()));
  ASSERT_TRUE(file) << path;
  ASSERT_EQ(write(file.get(), "0123456789", 10), 10);
  sys::UniqueFd dup_of_file(fcntl(file.get(), F_DUPFD_CLOEXEC, 0));
  sys::UniqueFd append(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  sys::UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  sys::UniqueFd dir(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dup_of_file && append && null && dir);

  const IdentityRecord id = collect_identity(before);
  unlink(path.c_str());
  ASSERT_TRUE(std::is_sorted(id.fds.begin(), id.fds.end(), [](auto& a, auto& b) { return a.number < b.number; }));
  for (const auto& f : id.fds) EXPECT_GE(f.number, 3);
  const FdRecord* f = find(id, file.get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->kind, FdKind::File);
  EXPECT_FALSE(f->dropped);
  EXPECT_EQ(f->path, path);
  EXPECT_EQ(f->offset, 10u);
  EXPECT_EQ(f->flags & O_ACCMODE, static_cast<uint32_t>(O_RDWR));
  EXPECT_EQ(f->same_as, -1);
  const FdRecord* d = find(id, dup_of_file.get());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->offset, 10u);
  EXPECT_TRUE(d->flags & O_CLOEXEC);
  if (kcmp_works()) {
    EXPECT_EQ(d->same_as, file.get());
  }
  const FdRecord* a = find(id, append.get());
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->same_as, -1) << "another open of the same file shares nothing";
  EXPECT_TRUE(a->flags & O_APPEND);
  EXPECT_EQ(a->flags & O_ACCMODE, static_cast<uint32_t>(O_WRONLY));
  const FdRecord* n = find(id, null.get());
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->kind, FdKind::CharDevice);
  EXPECT_EQ(n->path, "/dev/null");
  const FdRecord* r = find(id, dir.get());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->kind, FdKind::Directory);
  EXPECT_EQ(r->path, "/");
  for (int b : before)
    if (b >= 3 && b < 1024 && find(id, b)) {
      EXPECT_TRUE(find(id, b)->dropped) << b;
    }

  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(id.cwd, cwd);
  EXPECT_EQ(id.pid, getpid());
  const mode_t mask = umask(022);
  umask(mask);
  EXPECT_EQ(id.umask, static_cast<uint32_t>(mask));
  ASSERT_EQ(id.signals.size(), 2u);
  EXPECT_EQ(id.signals[0].signal, SIGPIPE);
  EXPECT_EQ(id.signals[1].signal, SIGXFSZ);
}

TEST(Identity, SignalDispositions) {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &old), 0);
  const IdentityRecord id = collect_identity(already_open());
  sigaction(SIGPIPE, &old, nullptr);
  ASSERT_EQ(id.signals.size(), 2u);
  EXPECT_EQ(id.signals[0].action, 1);
}

TEST(Identity, PipesAndSocketsAreRefusedUnlessDropped) {
  const std::vector<int> before = already_open();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  sys::UniqueFd rd(p[0]), wr(p[1]);
  const std::string msg = refusal(before);
  EXPECT_NE(msg.find("snapshot refused: 2 descriptors cannot be restored in a client:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\n  fd " + std::to_string(rd.get()) + ": pipe (pipe:["), std::string::npos) << msg;
  EXPECT_NE(msg.find("\n  fd " + std::to_string(wr.get()) + ": pipe (pipe:["), std::string::npos) << msg;
  EXPECT_NE(msg.find("close it before snapshot(), or declare it dropped (SnapshotOptions::dropped_fds; "
                     "sbc_snapshot_drop_fd() in C): a dropped descriptor is EBADF inside the subcontext"),
            std::string::npos)
      << msg;

  std::vector<int> dropped = before;
  dropped.push_back(rd.get());
  EXPECT_NE(refusal(dropped).find("snapshot refused: 1 descriptor cannot be restored in a client:\n  fd "),
            std::string::npos);
  dropped.push_back(wr.get());
  dropped.push_back(999);  // not open: ignored
  const IdentityRecord id = collect_identity(dropped);
  for (int fd : {rd.get(), wr.get()}) {
    const FdRecord* f = find(id, fd);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->kind, FdKind::Pipe);
    EXPECT_TRUE(f->dropped);
    EXPECT_EQ(f->path.rfind("pipe:[", 0), 0u) << f->path;
  }
  EXPECT_EQ(find(id, 999), nullptr);
}

TEST(Identity, DeletedFilesMemfdsAndOtherDevicesAreRefused) {
  const std::vector<int> before = already_open();
  std::string path = temp_dir() + "/subctx-identity-XXXXXX";
  sys::UniqueFd gone(mkstemp(path.data()));
  ASSERT_TRUE(gone);
  unlink(path.c_str());
  sys::UniqueFd memfd(memfd_create("subctx-test", MFD_CLOEXEC));
  ASSERT_TRUE(memfd);
  const std::string msg = refusal(before);
  EXPECT_NE(msg.find("fd " + std::to_string(gone.get()) + ": file (" + path + " (deleted)): deleted: no path names it"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("fd " + std::to_string(memfd.get()) + ": memfd (/memfd:subctx-test (deleted))"), std::string::npos)
      << msg;
  std::vector<int> dropped = before;
  dropped.push_back(gone.get());
  dropped.push_back(memfd.get());
  const IdentityRecord id = collect_identity(dropped);
  ASSERT_NE(find(id, memfd.get()), nullptr);
  ASSERT_NE(find(id, gone.get()), nullptr);
  EXPECT_EQ(find(id, memfd.get())->kind, FdKind::Memfd);
  EXPECT_TRUE(find(id, gone.get())->dropped);
}

TEST(Identity, NumbersFrom1024UpMustBeMovedOrDropped) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_cur <= 1500) GTEST_SKIP() << "RLIMIT_NOFILE " << lim.rlim_cur << " is too low for descriptor 1500";
  const std::vector<int> before = already_open();
  if (std::find(before.begin(), before.end(), 1500) != before.end()) GTEST_SKIP() << "descriptor 1500 is in use";
  sys::UniqueFd high(fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 1500));
  ASSERT_EQ(high.get(), 1500);
  sys::UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(dup2(null.get(), 1500), 1500);  // restorable, and still refused: the number is too high
  EXPECT_NE(refusal(before).find("fd 1500: char-device (/dev/null): numbers from 1024 up are not restored: move it "
                                 "below 1024 with dup2 or drop it"),
            std::string::npos)
      << refusal(before);
  std::vector<int> dropped = before;
  dropped.push_back(1500);
  const IdentityRecord id = collect_identity(dropped);
  EXPECT_EQ(find(id, 1500), nullptr) << "dropped and out of range: simply omitted";
}

}  // namespace
}  // namespace subctx::server
