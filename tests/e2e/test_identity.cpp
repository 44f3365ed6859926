// Identities (docs/identity.md): the descriptors, working directory, umask,
// pid and SIGPIPE disposition of the server, recorded at snapshot and
// restored at map; the subcontext's own descriptor numbers during calls
// (a client's number is EBADF inside); grants; reset and unmap; refusals at
// snapshot and at map; what calls may not do to the client (timers, kill).
//
// The server is servers/identity_server.cpp (one image per mode, each in
// its own directory under temp_dir()); clients/identity_client.cpp is a
// fresh client process whose own descriptors start at 3.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;

// ---- images and files ----------------------------------------------------

// The image of e2e_identity_server MODE, built once per test process, its
// server working in temp_path(MODE).
const std::string& identity_image(const std::string& mode) {
  static std::map<std::string, std::string> built;
  auto it = built.find(mode);
  if (it == built.end())
    it = built.emplace(mode, build_image(paths::kIdentityServer, mode + ".img", {mode, temp_path(mode)})).first;
  return it->second;
}

// The server's working directory for MODE (its image built first), as the
// kernel names it.
std::string server_dir(const std::string& mode) {
  identity_image(mode);
  return std::filesystem::canonical(temp_path(mode)).string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A file of the client's, O_CLOEXEC (a server spawned later must not
// inherit it: it would be one of the server's descriptors).
int open_client_file(const std::string& path, const std::string& text, int flags = O_RDWR | O_APPEND) {
  write_file(path, text);
  return open(path.c_str(), flags | O_CLOEXEC);
}

bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

// What /proc/self/fd/N names ("" if not open).
std::string fd_target(int fd) {
  char buf[4096];
  const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf - 1);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// This process's open descriptors, from /proc/self/fd.
std::vector<int> open_fds() {
  std::vector<int> out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return out;
  const int self = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != self) out.push_back(fd);
  }
  closedir(d);
  return out;
}
size_t fd_count() { return open_fds().size(); }

// The client's descriptors that name path.
std::vector<int> fds_naming(const std::string& path) {
  std::vector<int> out;
  for (int fd : open_fds())
    if (fd_target(fd) == path) out.push_back(fd);
  return out;
}

std::string client_cwd() {
  char buf[4096];
  return getcwd(buf, sizeof buf) ? buf : "";
}

// The line of text that starts with prefix, or "".
std::string line_starting(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

class IdentityTest : public E2eTest {
 protected:
  subctx::Subcontext map(const std::string& mode) { return mm().request_map(identity_image(mode)); }
};

// Puts the client's working directory back.
struct CwdGuard {
  std::string saved = client_cwd();
  ~CwdGuard() {
    if (chdir(saved.c_str()) != 0) ADD_FAILURE() << "cannot chdir back to " << saved;
  }
};

struct PolicyGuard {
  ~PolicyGuard() { mm().clear_policy(); }
};

// ---- a: the reproduction ---------------------------------------------------

// The server's fprintf(log) inside a call used to append to whatever file
// the client had open under the log's number.  A fresh client process opens
// its own file first (its descriptor 3, the number of the server's log),
// maps and calls write_log: its file is untouched, the line is in the
// server's log.
TEST_F(IdentityTest, ServerLogLineGoesToTheServersLogNotTheClientsDescriptor3) {
  const std::string image = identity_image("log");
  const std::string log = server_dir("log") + "/server.log";
  const std::string log_before = read_file(log);
  ASSERT_NE(log_before.find("server started\n"), std::string::npos) << log_before;
  const std::string mine = temp_path("repro-client.txt");
  const ProcessResult r = run({paths::kIdentityClient, "repro", image, mine});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("fd 3\n"), std::string::npos) << "the client's file is not its descriptor 3: " << r.out;
  EXPECT_NE(r.out.find("log_fd 3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("write_log 0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fd_open 1\n"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(mine), "client line 1\nclient line 2\n") << "the subcontext wrote to the client's file";
  EXPECT_EQ(read_file(log), log_before + "from the subcontext\n");
}

// The same in this process, the client putting its own file under the
// log's number on purpose (dup3 onto 3) before it maps.
TEST_F(IdentityTest, ClientFileDupedOntoTheLogNumberOnPurposeIsUntouched) {
  const std::string image = identity_image("log");
  const std::string log = server_dir("log") + "/server.log";
  const std::string mine_path = temp_path("on-purpose.txt");
  const int opened = open_client_file(mine_path, "client data\n");
  ASSERT_GE(opened, 0);
  // Wherever it was opened (3 itself when free), moved away first, then
  // dup3'ed onto 3.
  const int f = fcntl(opened, F_DUPFD_CLOEXEC, 10);
  ASSERT_GE(f, 10);
  close(opened);
  const std::string mine = std::filesystem::canonical(mine_path).string();
  // Whatever this process had on 3 (ctest may pass one down) is kept aside
  // and put back at the end.
  const int aside = fd_open(3) ? fcntl(3, F_DUPFD_CLOEXEC, 10) : -1;
  ASSERT_EQ(dup3(f, 3, O_CLOEXEC), 3);
  close(f);
  const std::string log_before = read_file(log);

  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_EQ(sc.memory().restored_fds, 1u);
  EXPECT_EQ(sc.call<int64_t()>("log_fd"), 3);
  EXPECT_EQ(fd_target(3), mine) << "the map took over the client's descriptor 3";
  // The log reopened for the subcontext: another real descriptor of this
  // process, close-on-exec.
  const std::vector<int> real = fds_naming(log);
  ASSERT_EQ(real.size(), 1u) << "descriptors of this process naming " << log;
  EXPECT_NE(real[0], 3);
  EXPECT_NE(fcntl(real[0], F_GETFD) & FD_CLOEXEC, 0) << "the subcontext's descriptor is inherited by exec";

  EXPECT_EQ(sc.call<int64_t(const char*)>("write_log", "on purpose"), 0);
  EXPECT_EQ(read_file(mine_path), "client data\n") << "the subcontext wrote to the client's descriptor 3";
  EXPECT_EQ(read_file(log), log_before + "on purpose\n");
  ASSERT_EQ(write(3, "client again\n", 13), 13);
  EXPECT_EQ(sc.reset().fds_restored, 1u);
  EXPECT_EQ(sc.call<int64_t(const char*)>("write_log", "after reset"), 0);
  EXPECT_EQ(read_file(mine_path), "client data\nclient again\n");
  EXPECT_EQ(read_file(log), log_before + "on purpose\nafter reset\n");

  mm().unmap(sc);
  EXPECT_EQ(fd_target(3), mine) << "unmap closed the client's descriptor 3";
  EXPECT_EQ(fds_naming(log).size(), 0u) << "unmap left the subcontext's log open";
  EXPECT_EQ(read_file(mine_path), "client data\nclient again\n");
  close(3);
  if (aside >= 0) {
    dup3(aside, 3, 0);
    close(aside);
  }
}

// ---- b: a data file read halfway -----------------------------------------

TEST_F(IdentityTest, DataFileResumesAtTheServersOffsetInEveryClientAndAfterReset) {
  const std::string image = identity_image("data");
  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_EQ(sc.memory().restored_fds, 1u);
  EXPECT_EQ(sc.call<int64_t()>("data_fd"), 3);
  auto read_line = [&] { return std::string(sc.call<const char*()>("read_line")); };
  EXPECT_EQ(read_line(), "second line");
  EXPECT_EQ(read_line(), "third line");
  EXPECT_EQ(read_line(), "");
  subctx::ResetInfo r = sc.reset();
  EXPECT_EQ(r.fds_restored, 1u);
  EXPECT_EQ(read_line(), "second line");

  // A second client process: its own descriptor, its own offset.
  const ProcessResult other = run({paths::kIdentityClient, "data", image});
  ASSERT_TRUE(other.ok()) << other.describe();
  EXPECT_EQ(other.out, "line [second line]\nline [third line]\nline []\nrestored 1\nline [second line]\n");
  EXPECT_EQ(read_line(), "third line") << "another client moved this one's offset";

  // A descriptor opened in a call: the subcontext's lowest free number.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_file", 0), 4);
  // Closed by subcontext code: EBADF until a reset puts it back.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("close_fd", 3), 0);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("fd_flags", 3), -EBADF);
  EXPECT_EQ(read_line(), "");
  r = sc.reset();
  EXPECT_EQ(r.fds_restored, 1u);
  EXPECT_EQ(r.fds_closed, 1u);
  EXPECT_GE(sc.call<int64_t(int64_t)>("fd_flags", 3), 0);
  EXPECT_EQ(read_line(), "second line");
  EXPECT_EQ(sc.call<int64_t(int64_t)>("fd_flags", 4), -EBADF);
}

// A reset sets a restored descriptor's offset again only when it may have
// moved: a call used it, or someone else shares it (the client's claimed
// duplicate, a forked child's calls) and may move it without a call here.
TEST_F(IdentityTest, ResetPutsTheOffsetBackAfterTheClientOrAForkedChildMovedIt) {
  const std::string image = identity_image("data");
  subctx::Subcontext sc = mm().request_map(image);
  auto read_line = [&] { return std::string(sc.call<const char*()>("read_line")); };
  EXPECT_EQ(read_line(), "second line");
  sc.reset();
  sc.reset();  // no call in between: the offset stays where the first put it
  EXPECT_EQ(read_line(), "second line");
  sc.reset();

  // The client's duplicate shares the offset: read without any call, once
  // right after the claim and again after a reset.
  const int c = sc.claim_fd(3);
  ASSERT_GE(c, 0);
  char buf[64];
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(pread(c, buf, 1, 0), 1);  // no offset moved by this one
    ASSERT_GT(read(c, buf, sizeof buf), 0) << round;
    EXPECT_EQ(sc.reset().fds_restored, 1u);
    EXPECT_EQ(read_line(), "second line") << "round " << round;
    sc.reset();
  }
  close(c);

  // A fresh map, then a child that calls (and so moves the shared offset).
  mm().unmap(sc);
  sc = mm().request_map(image);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const bool ok = std::string(sc.call<const char*()>("read_line")) == "second line";
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  sc.reset();
  EXPECT_EQ(read_line(), "second line") << "the child's read moved the offset and the reset left it";
}

// ---- c: working directory, umask ----------------------------------------

TEST_F(IdentityTest, RelativePathsResolveAgainstTheServersWorkingDirectory) {
  const std::string image = identity_image("cwd");
  const std::string server = server_dir("cwd");
  const std::string decoy_path = temp_path("decoy");
  ASSERT_EQ(mkdir(decoy_path.c_str(), 0755), 0);
  const std::string decoy = std::filesystem::canonical(decoy_path).string();
  write_file(decoy + "/name.txt", "decoy file\n");
  CwdGuard guard;
  ASSERT_EQ(chdir(decoy.c_str()), 0);

  subctx::Subcontext sc = mm().request_map(image);
  auto open_relative = [&](const char* name) {
    return std::string(sc.call<const char*(const char*)>("open_relative", name));
  };
  auto get_cwd = [&] { return std::string(sc.call<const char*()>("get_cwd")); };
  EXPECT_EQ(open_relative("name.txt"), "server file") << "fopen of a relative path opened the client's decoy";
  EXPECT_EQ(get_cwd(), server);
  EXPECT_EQ(sc.call<int64_t(const char*)>("do_chdir", "/"), 0);
  EXPECT_EQ(get_cwd(), "/");
  EXPECT_EQ(client_cwd(), decoy) << "chdir inside a call moved the client";
  EXPECT_EQ(open_relative("name.txt"), "errno " + std::to_string(ENOENT));
  EXPECT_EQ(sc.call<int64_t(const char*)>("do_chdir", "no-such-dir"), -ENOENT);
  EXPECT_EQ(sc.call<int64_t(const char*)>("do_chdir", server.c_str()), 0);
  EXPECT_EQ(open_relative("name.txt"), "server file");
  EXPECT_EQ(sc.call<int64_t(const char*)>("do_chdir", decoy.c_str()), 0);
  EXPECT_EQ(open_relative("name.txt"), "decoy file");
  sc.reset();
  EXPECT_EQ(get_cwd(), server) << "reset did not bring back the server's working directory";
  EXPECT_EQ(open_relative("name.txt"), "server file");
  EXPECT_EQ(client_cwd(), decoy);
  EXPECT_EQ(read_file("name.txt"), "decoy file\n");
}

TEST_F(IdentityTest, UmaskInsideCallsIsTheSubcontextsOwn) {
  const std::string server = server_dir("cwd");
  subctx::Subcontext sc = map("cwd");
  const mode_t saved = umask(002);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("do_umask", 077), 027) << "not the server's umask";
  EXPECT_EQ(sc.call<int64_t(int64_t)>("do_umask", 077), 077);
  EXPECT_EQ(umask(002), 002) << "umask inside a call changed the client's";
  // Applied to what calls create (the client's own applies on top).
  EXPECT_EQ(sc.call<int64_t(const char*)>("create_file", "made.txt"), 0600);
  struct stat st {};
  ASSERT_EQ(stat((server + "/made.txt").c_str(), &st), 0) << "not created in the server's directory";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  sc.reset();
  EXPECT_EQ(sc.call<int64_t(int64_t)>("do_umask", 027), 027) << "reset did not bring back the server's umask";
  EXPECT_EQ(sc.call<int64_t(const char*)>("create_file", "made.txt"), 0600) << "O_TRUNC keeps the mode";
  EXPECT_EQ(sc.call<int64_t(const char*)>("create_file", "made2.txt"), 0640);
  umask(saved);
}

// ---- d: the client's descriptors, grants ----------------------------------

TEST_F(IdentityTest, ClientNumbersAreEbadfInsideUntilGrantedAndAfterRevoke) {
  subctx::Subcontext sc = map("plain");
  const std::string path = temp_path("granted.txt");
  const int mine = open_client_file(path, "client data\n");
  ASSERT_GE(mine, 3);
  auto write_fd = [&](int64_t fd, const char* text) {
    return sc.call<int64_t(int64_t, const char*)>("write_fd", fd, text);
  };
  EXPECT_EQ(write_fd(mine, "evil\n"), -EBADF);
  EXPECT_EQ(read_file(path), "client data\n");
  EXPECT_TRUE(fd_open(mine));

  const int n = sc.grant_fd(mine);
  EXPECT_EQ(n, 3) << "a grant takes the subcontext's lowest free number";
  EXPECT_EQ(sc.memory().granted_fds, 1u);
  EXPECT_EQ(sc.memory().open_fds, 0u);
  EXPECT_EQ(write_fd(n, "granted\n"), 8);
  EXPECT_EQ(read_file(path), "client data\ngranted\n");
  // A reset keeps it.
  EXPECT_EQ(sc.reset().fds_closed, 0u);
  EXPECT_EQ(write_fd(n, "kept\n"), 5);
  EXPECT_EQ(sc.memory().granted_fds, 1u);
  sc.revoke_fd(n);
  EXPECT_EQ(sc.memory().granted_fds, 0u);
  EXPECT_EQ(write_fd(n, "revoked\n"), -EBADF);
  EXPECT_TRUE(fd_open(mine)) << "revoke_fd closed the client's own descriptor";
  EXPECT_EQ(read_file(path), "client data\ngranted\nkept\n");
  expect_error([&] { sc.revoke_fd(n); }, Errc::InvalidArgument, {std::to_string(n)});

  // claim_fd: a descriptor the subcontext opened, duplicated for the client.
  const int64_t m = sc.call<int64_t(int64_t)>("open_file", 0);
  EXPECT_EQ(m, 3);
  const int c = sc.claim_fd(static_cast<int>(m));
  ASSERT_GE(c, 0);
  EXPECT_NE(fcntl(c, F_GETFD) & FD_CLOEXEC, 0) << "a claimed descriptor is close-on-exec";
  EXPECT_EQ(fd_target(c), server_dir("plain") + "/handout.txt");
  char buf[8] = {};
  EXPECT_EQ(pread(c, buf, 7, 0), 7);
  EXPECT_STREQ(buf, "handout");
  EXPECT_EQ(write_fd(m, "x"), 1) << "the subcontext keeps its own after a claim";
  EXPECT_EQ(sc.memory().open_fds, 1u);
  EXPECT_EQ(sc.reset().fds_closed, 1u);
  EXPECT_TRUE(fd_open(c)) << "reset closed the claimed (client's) descriptor";
  EXPECT_EQ(pread(c, buf, 1, 0), 1);
  EXPECT_EQ(buf[0], 'x');
  expect_error([&] { sc.claim_fd(999); }, Errc::InvalidArgument, {"999"});
  expect_error([&] { sc.claim_fd(static_cast<int>(m)); }, Errc::InvalidArgument, {std::to_string(m)});
  close(c);
  close(mine);
}

TEST_F(IdentityTest, GrantRevokeClaimThroughTheCApi) {
  subctx::Subcontext sc = map("plain");
  const int h = sc.handle();
  const std::string path = temp_path("granted-c.txt");
  const int mine = open_client_file(path, "c data\n");
  ASSERT_GE(mine, 0);
  const char* text = "via c\n";
  uint64_t ret = 0;
  uint64_t args[2] = {static_cast<uint64_t>(mine), reinterpret_cast<uint64_t>(text)};
  ASSERT_EQ(sbc_request_call(h, "write_fd", args, 2, &ret), 0) << sbc_last_error();
  EXPECT_EQ(static_cast<int64_t>(ret), -EBADF);

  const int n = sbc_grant_fd(h, mine);
  ASSERT_GE(n, 3) << sbc_last_error();
  args[0] = static_cast<uint64_t>(n);
  ASSERT_EQ(sbc_request_call(h, "write_fd", args, 2, &ret), 0) << sbc_last_error();
  EXPECT_EQ(ret, 6u);
  EXPECT_EQ(read_file(path), "c data\nvia c\n");
  sbc_memory_info info{};
  ASSERT_EQ(sbc_memory(h, &info), 0);
  EXPECT_EQ(sbc_revoke_fd(h, n), 0) << sbc_last_error();
  EXPECT_EQ(sbc_revoke_fd(h, n), -SBC_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sbc_last_error()).find(std::to_string(n)), std::string::npos) << sbc_last_error();
  ASSERT_EQ(sbc_request_call(h, "write_fd", args, 2, &ret), 0);
  EXPECT_EQ(static_cast<int64_t>(ret), -EBADF);
  EXPECT_TRUE(fd_open(mine));
  EXPECT_EQ(sbc_claim_fd(h, 999), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_grant_fd(h, 100000), -SBC_E_INVALID_ARGUMENT) << "a descriptor the client does not have";
  EXPECT_EQ(sbc_grant_fd(h + 1000, mine), -SBC_E_NO_SUBCONTEXT);

  uint64_t zero = 0;
  ASSERT_EQ(sbc_request_call(h, "open_file", &zero, 1, &ret), 0);
  ASSERT_GE(static_cast<int64_t>(ret), 3);
  const int c = sbc_claim_fd(h, static_cast<int>(ret));
  ASSERT_GE(c, 0) << sbc_last_error();
  EXPECT_NE(fcntl(c, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(fd_target(c), server_dir("plain") + "/handout.txt");
  close(c);
  close(mine);
}

// ---- e: refusals -----------------------------------------------------------

TEST_F(IdentityTest, PipeAndSocketOpenAtSnapshotRefuseIt) {
  const std::string image = temp_path("pipe.img");
  const ProcessResult r = run({paths::kIdentityServer, "pipe", temp_path("pipe"), image});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  int rd = -1, wr = -1, so = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "pipe %d %d socket %d", &rd, &wr, &so), 3) << r.describe();
  for (const std::string& w :
       {std::string("subctx: snapshot refused"), std::string("3 descriptors"),
        "fd " + std::to_string(rd) + ": pipe (pipe:[", "fd " + std::to_string(wr) + ": pipe (pipe:[",
        "fd " + std::to_string(so) + ": socket (socket:[", std::string("dropped"), std::string("dropped_fds"),
        std::string("sbc_snapshot_drop_fd")})
    EXPECT_NE(r.err.find(w), std::string::npos) << "message lacks \"" << w << "\": " << r.err;
  EXPECT_FALSE(std::filesystem::exists(image)) << "a refused snapshot wrote an image";
}

TEST_F(IdentityTest, SnapshotThrowsSnapshotRefusedNamingTheSocket) {
  const std::string image = temp_path("socket.img");
  const ProcessResult r = run({paths::kIdentityServer, "socket", temp_path("socket"), image});
  EXPECT_TRUE(r.exited && r.exit_code == 3) << "subctx::snapshot() did not throw SnapshotRefused: " << r.describe();
  int so = -1;
  char code[64] = {};
  ASSERT_EQ(std::sscanf(r.out.c_str(), "refused %63s fd %d", code, &so), 2) << r.describe();
  EXPECT_STREQ(code, subctx::errc_name(Errc::Snapshot));
  for (const std::string& w : {"fd " + std::to_string(so) + ": socket (socket:[", std::string("dropped")})
    EXPECT_NE(r.out.find(w), std::string::npos) << "message lacks \"" << w << "\": " << r.out;
  EXPECT_FALSE(std::filesystem::exists(image));
}

TEST_F(IdentityTest, DroppedDescriptorsAreEbadfInside) {
  subctx::Subcontext sc = map("pipe-dropped");
  const int64_t p = sc.call<int64_t()>("pipe_fds");
  const int64_t rd = p / 65536, wr = p % 65536;
  ASSERT_GE(rd, 3);
  EXPECT_EQ(sc.call<int64_t(int64_t, const char*)>("write_fd", wr, "x"), -EBADF);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("fd_flags", rd), -EBADF);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("fd_flags", wr), -EBADF);
  EXPECT_EQ(sc.memory().restored_fds, 0u);
  mm().unmap(sc);
  // Dropped through the C API (sbc_snapshot_drop_fd, sbc_snapshot).
  sc = map("socket-dropped-c");
  const int64_t s = sc.call<int64_t()>("sock_fd");
  ASSERT_GE(s, 3);
  EXPECT_EQ(sc.call<int64_t(int64_t, const char*)>("write_fd", s, "x"), -EBADF);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("fd_flags", s), -EBADF);
}

TEST_F(IdentityTest, FileDeletedWhileOpenRefusesTheSnapshot) {
  const std::string image = temp_path("deleted.img");
  const ProcessResult r = run({paths::kIdentityServer, "deleted", temp_path("deleted"), image});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  int fd = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "deleted %d", &fd), 1) << r.describe();
  for (const std::string& w : {std::string("snapshot refused"), "fd " + std::to_string(fd) + ":",
                               std::string("gone.txt"), std::string("deleted")})
    EXPECT_NE(r.err.find(w), std::string::npos) << "message lacks \"" << w << "\": " << r.err;
  EXPECT_FALSE(std::filesystem::exists(image));
}

TEST_F(IdentityTest, WritableSharedFileMappingRefusesTheSnapshot) {
  const std::string image = temp_path("shared-map.img");
  const ProcessResult r = run({paths::kIdentityServer, "shared-map", temp_path("shared-map"), image});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
  for (const std::string& w :
       {std::string("snapshot refused"), std::filesystem::canonical(temp_path("shared-map")).string() + "/shared.bin"})
    EXPECT_NE(r.err.find(w), std::string::npos) << "message lacks \"" << w << "\": " << r.err;
  EXPECT_FALSE(std::filesystem::exists(image));
}

TEST_F(IdentityTest, FileGoneAtMapFailsTheMapNamingTheDescriptorAndThePath) {
  const std::string dir = temp_path("data-gone");
  const std::string image = build_image(paths::kIdentityServer, "data-gone.img", {"data", dir});
  const std::string file = std::filesystem::canonical(dir).string() + "/data.txt";
  ASSERT_EQ(unlink(file.c_str()), 0);
  const std::string mine_path = temp_path("gone-client.txt");
  const int mine = open_client_file(mine_path, "client data\n");
  ASSERT_GE(mine, 0);
  const size_t before = fd_count();
  expect_map_refused(image, Errc::Io, {"descriptor 3", file, "No such file"}, read_layout(image).all_ranges());
  EXPECT_EQ(fd_count(), before) << "a refused map left descriptors open";
  EXPECT_EQ(read_file(mine_path), "client data\n");
  EXPECT_TRUE(fd_open(mine));
  // Put back: reopened by path, at the server's offset.
  write_file(file, "first line\nsecond line\nthird line\n");
  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_STREQ(sc.call<const char*()>("read_line"), "second line");
  close(mine);
}

// A client that may not open the file (a client process without the
// capabilities that bypass file modes, so that root is refused too).
TEST_F(IdentityTest, UnreadableFileAtMapIsPermissionDenied) {
  const std::string dir = temp_path("data-locked");
  const std::string image = build_image(paths::kIdentityServer, "data-locked.img", {"data", dir});
  const std::string file = std::filesystem::canonical(dir).string() + "/data.txt";
  ProcessResult r = run({paths::kIdentityClient, "locked", image});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(line_starting(r.out, "map: "), "map: ok") << r.out;
  ASSERT_EQ(chmod(file.c_str(), 0), 0);
  r = run({paths::kIdentityClient, "locked", image});
  chmod(file.c_str(), 0644);
  ASSERT_TRUE(r.ok()) << r.describe();
  const std::string map = line_starting(r.out, "map: ");
  EXPECT_EQ(map.rfind("map: " + std::string(subctx::errc_name(Errc::Permission)) + ": ", 0), 0u) << r.out;
  for (const std::string& w : {std::string("descriptor 3"), file})
    EXPECT_NE(map.find(w), std::string::npos) << "message lacks \"" << w << "\": " << map;
}

TEST_F(IdentityTest, PolicyCanDenyReopeningAFile) {
  const std::string image = identity_image("data");
  const std::string file = server_dir("data") + "/data.txt";
  PolicyGuard guard;
  mm().set_policy("allow map path=*\ndeny reopen file=" + server_dir("data") + "/*\n");
  expect_error([&] { mm().request_map(image); }, Errc::Policy, {"descriptor 3", file, "deny reopen"});
  EXPECT_EQ(sbc_request_map(image.c_str()), -SBC_E_POLICY);
  // A rule that does not match: the reopen is allowed.
  mm().set_policy("allow map path=*\ndeny reopen file=/no/such/dir/*\n");
  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_STREQ(sc.call<const char*()>("read_line"), "second line");
}

// ---- f: an SQLite database file ------------------------------------------

TEST_F(IdentityTest, SqliteDatabaseFileServesTwoClientProcessesAtOnce) {
  const std::string image = identity_image("sqlite");
  const std::string db = server_dir("sqlite") + "/db.sqlite";
  const uint64_t db_hash = file_hash(db);
  SpawnOptions o;
  o.stdin_pipe = true;
  std::vector<Child> clients;
  for (int id = 0; id < 2; ++id)
    clients.emplace_back(std::vector<std::string>{paths::kIdentityClient, "sqlite", image, std::to_string(id),
                                                  temp_path("sqlite-client-" + std::to_string(id) + ".txt")},
                         o);
  for (int id = 0; id < 2; ++id) {
    std::string line;
    ASSERT_TRUE(clients[id].read_line(&line, Millis(20000))) << clients[id].finish(Millis(1000)).describe();
    EXPECT_EQ(line, "mapped " + std::to_string(id) + " fd 3") << "the client's own file is not its descriptor 3";
  }
  // This process is a third client, querying while the others do.
  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_EQ(sc.memory().restored_fds, 1u);
  for (auto& c : clients) c.close_stdin();
  for (int64_t k = 1; k <= 500; k += 7) EXPECT_EQ(sc.call<int64_t(int64_t)>("query", k), k * k + 7) << k;
  for (int id = 0; id < 2; ++id) {
    const ProcessResult r = clients[id].finish(Millis(30000));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_NE(r.out.find("client " + std::to_string(id) + " ok"), std::string::npos) << r.describe();
    EXPECT_EQ(read_file(temp_path("sqlite-client-" + std::to_string(id) + ".txt")),
              "client " + std::to_string(id) + " data\n");
  }
  EXPECT_EQ(sc.call<int64_t(int64_t)>("query", 500), 500 * 500 + 7);
  EXPECT_EQ(file_hash(db), db_hash) << "queries changed the database file";
}

// ---- g: many descriptors --------------------------------------------------

TEST_F(IdentityTest, TenThousandOpenClosePairsLeaveNoDescriptorBehind) {
  subctx::Subcontext sc = map("plain");
  sc.memory();  // opens this process's pagemap, kept for later scans
  const size_t before = fd_count();
  EXPECT_EQ(sc.call<int64_t(int64_t)>("churn", 10000), 10000);
  EXPECT_EQ(fd_count(), before);
  EXPECT_EQ(sc.memory().open_fds, 0u);
  EXPECT_EQ(sc.reset().fds_closed, 0u);
  EXPECT_EQ(fd_count(), before);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_file", 0), 3) << "the lowest free number";
  EXPECT_EQ(fd_count(), before + 1);
  EXPECT_EQ(sc.reset().fds_closed, 1u);
  EXPECT_EQ(fd_count(), before);
}

// ---- h: the campaign's scenarios ------------------------------------------

// fclose + fopen of the log inside a call, then unmap: no descriptor of
// the client is closed or written.
TEST_F(IdentityTest, LogRotationInsideACallThenUnmapLeavesTheClientsDescriptors) {
  const std::string dir = temp_path("rotate");
  const std::string image = build_image(paths::kIdentityServer, "rotate.img", {"log", dir});
  const std::string log = std::filesystem::canonical(dir).string() + "/server.log";
  const int a = open_client_file(temp_path("rotate-a.txt"), "client a\n");
  const int b = open_client_file(temp_path("rotate-b.txt"), "client b\n");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  const std::string a_path = fd_target(a), b_path = fd_target(b);

  subctx::Subcontext sc = mm().request_map(image);
  EXPECT_EQ(sc.call<int64_t(const char*)>("write_log", "before rotation"), 0);
  EXPECT_EQ(sc.call<int64_t()>("rotate"), 3) << "fclose then fopen: the lowest free number again";
  EXPECT_EQ(sc.call<int64_t(const char*)>("write_log", "after rotation"), 0);
  EXPECT_EQ(sc.memory().open_fds, 1u);
  mm().unmap(sc);

  EXPECT_EQ(fd_target(a), a_path) << "unmap closed a client descriptor";
  EXPECT_EQ(fd_target(b), b_path) << "unmap closed a client descriptor";
  EXPECT_EQ(read_file(temp_path("rotate-a.txt")), "client a\n");
  EXPECT_EQ(read_file(temp_path("rotate-b.txt")), "client b\n");
  EXPECT_EQ(write(a, "more a\n", 7), 7);
  EXPECT_EQ(read_file(temp_path("rotate-a.txt")), "client a\nmore a\n");
  const std::string rotated = read_file(log + ".1");
  EXPECT_NE(rotated.find("server started\n"), std::string::npos) << rotated;
  EXPECT_EQ(rotated.substr(rotated.size() - std::min<size_t>(rotated.size(), 16)), "before rotation\n") << rotated;
  EXPECT_EQ(read_file(log), "after rotation\n");
  EXPECT_TRUE(fds_naming(log).empty() && fds_naming(log + ".1").empty()) << "unmap left the log open";
  close(a);
  close(b);
}

// An export hands out a descriptor number; the client, taking the number
// for its own, closes it in its own table and reuses it for its own file;
// then reset(): the client's file is still open and intact.
TEST_F(IdentityTest, NumberHandedOutAndReusedByTheClientSurvivesReset) {
  subctx::Subcontext sc = map("plain");
  ASSERT_FALSE(fd_open(200)) << fd_target(200);
  const int64_t n = sc.call<int64_t(int64_t)>("open_file", 200);
  ASSERT_EQ(n, 200);
  EXPECT_EQ(sc.memory().open_fds, 1u);
  EXPECT_FALSE(fd_open(200)) << "the subcontext's number is the client's real number";
  errno = 0;
  EXPECT_EQ(close(200), -1);
  EXPECT_EQ(errno, EBADF);
  const std::string path = temp_path("reuse.txt");
  const int mine = open_client_file(path, "client data\n");
  ASSERT_GE(mine, 0);
  ASSERT_EQ(dup3(mine, 200, O_CLOEXEC), 200);
  close(mine);
  const std::string target = fd_target(200);
  // The subcontext's 200 is still its own handout.txt.
  EXPECT_EQ(sc.call<int64_t(int64_t, const char*)>("write_fd", 200, "h"), 1);
  EXPECT_EQ(read_file(path), "client data\n");

  const subctx::ResetInfo r = sc.reset();
  EXPECT_EQ(r.fds_closed, 1u);
  EXPECT_EQ(fd_target(200), target) << "reset closed the client's descriptor";
  EXPECT_EQ(write(200, "more\n", 5), 5);
  EXPECT_EQ(read_file(path), "client data\nmore\n");
  EXPECT_EQ(sc.call<int64_t(int64_t, const char*)>("write_fd", 200, "x"), -EBADF);
  EXPECT_EQ(read_file(path), "client data\nmore\n");
  // The same with the subcontext's lowest free number.
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_file", 0), 3);
  mm().unmap(sc);
  EXPECT_EQ(fd_target(200), target) << "unmap closed the client's descriptor";
  close(200);
}

// close_range(3, ~0) inside a call closes the subcontext's numbers only:
// the Matchmaker's own descriptors (the image, /proc/self/pagemap for the
// dirty-page quota) keep working.
TEST_F(IdentityTest, CloseRangeInsideACallLeavesTheMatchmakerWorking) {
  subctx::Subcontext sc = map("log");
  sc.set_quota({1000000, 0});
  EXPECT_EQ(sc.call<int64_t(int64_t)>("dirty", 10), 10);
  ASSERT_GE(sc.call<int64_t(int64_t)>("open_file", 0), 4);
  const size_t before = fd_count();
  EXPECT_EQ(sc.call<int64_t()>("close_all"), 0);
  EXPECT_EQ(sc.call<int64_t(const char*)>("write_log", "closed"), -EBADF);
  EXPECT_EQ(sc.memory().open_fds, 0u);
  EXPECT_EQ(fd_count(), before - 1) << "close_range closed descriptors of the client (or of the Matchmaker)";
  EXPECT_EQ(sc.call<int64_t(int64_t)>("dirty", 20), 20);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  EXPECT_GE(sc.memory().dirty_pages, 20u);
  const subctx::ResetInfo r = sc.reset();
  EXPECT_EQ(r.fds_restored, 1u);
  EXPECT_EQ(sc.call<int64_t(const char*)>("write_log", "after close_range"), 0);
  EXPECT_NE(read_file(server_dir("log") + "/server.log").find("after close_range\n"), std::string::npos);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("dirty", 5), 5);
  mm().unmap(sc);
  expect_valid_map_works();
}

TEST_F(IdentityTest, SigpipeFollowsTheServersDisposition) {
  struct sigaction before {};
  sigaction(SIGPIPE, nullptr, &before);
  ASSERT_EQ(before.sa_handler, SIG_DFL);
  {
    subctx::Subcontext sc = map("sigpipe-ignored");
    EXPECT_EQ(sc.call<int64_t()>("write_broken_pipe"), -EPIPE);
    EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
    mm().unmap(sc);
  }
  subctx::Subcontext sc = map("sigpipe-default");
  const subctx::SubcontextFault f =
      expect_fault([&] { sc.call<int64_t()>("write_broken_pipe"); }, Errc::Fault, {"SIGPIPE", "write_broken_pipe"});
  EXPECT_EQ(f.signal(), SIGPIPE);
  EXPECT_TRUE(f.reset_done());
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  struct sigaction after {};
  sigaction(SIGPIPE, nullptr, &after);
  EXPECT_EQ(after.sa_handler, SIG_DFL) << "the client's SIGPIPE disposition changed";
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

volatile sig_atomic_t g_alarms = 0;

TEST_F(IdentityTest, TimersInsideCallsArePermissionDenied) {
  struct sigaction count {
  }, old{};
  count.sa_handler = [](int) { g_alarms = g_alarms + 1; };
  sigaction(SIGALRM, &count, &old);
  g_alarms = 0;
  {
    subctx::Subcontext sc = map("plain");
    EXPECT_EQ(sc.call<int64_t()>("do_alarm"), -EPERM);
    EXPECT_EQ(sc.call<int64_t()>("do_setitimer"), -EPERM);
    EXPECT_EQ(sc.call<int64_t()>("do_getitimer"), -EPERM);
    EXPECT_EQ(sc.call<int64_t()>("do_timer_create"), -EPERM);
    itimerval v{};
    ASSERT_EQ(getitimer(ITIMER_REAL, &v), 0);
    EXPECT_TRUE(v.it_value.tv_sec == 0 && v.it_value.tv_usec == 0) << "a timer of the client is armed";
    // alarm(1) would have fired by now.
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    EXPECT_EQ(g_alarms, 0) << "the client got SIGALRM";
  }
  sigaction(SIGALRM, &old, nullptr);
}

// A subcontext in a call changes nothing of the client's process (its
// credentials, limits, session, process group, personality) or of the
// calling thread (its alternate signal stack, exit futex, affinity): each
// is EPERM, and what the client reads afterwards is what it had.  Reading
// them is made.
TEST_F(IdentityTest, TheClientsProcessAndThreadStateStayTheClients) {
  struct rlimit nofile {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &nofile), 0);
  const pid_t sid = getsid(0), pgrp = getpgrp();
  const int persona = personality(0xffffffff);
  subctx::Subcontext sc = map("plain");
  // (After this thread's first call: the Matchmaker gave it an alternate
  // signal stack then.)
  EXPECT_EQ(sc.call<int64_t()>("nofile_limit"), static_cast<int64_t>(nofile.rlim_cur));
  stack_t alt{};
  ASSERT_EQ(sigaltstack(nullptr, &alt), 0);

  EXPECT_EQ(sc.call<int64_t()>("set_own_uid"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("set_own_resuid"), -EPERM);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("set_nofile_limit", 64), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("nofile_limit"), static_cast<int64_t>(nofile.rlim_cur));
  EXPECT_EQ(sc.call<int64_t()>("new_session"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("new_process_group"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("query_personality"), persona);
  EXPECT_EQ(sc.call<int64_t()>("set_personality"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("query_alt_stack"), 0);
  EXPECT_EQ(sc.call<int64_t()>("set_alt_stack"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("set_tid_address_here"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("pin_here"), -EPERM);
  EXPECT_EQ(sc.call<int64_t()>("set_host_name"), -EPERM);

  struct rlimit now {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, nofile.rlim_cur);
  EXPECT_EQ(now.rlim_max, nofile.rlim_max);
  EXPECT_EQ(getsid(0), sid);
  EXPECT_EQ(getpgrp(), pgrp);
  EXPECT_EQ(personality(0xffffffff), persona);
  stack_t alt_now{};
  ASSERT_EQ(sigaltstack(nullptr, &alt_now), 0);
  EXPECT_EQ(alt_now.ss_sp, alt.ss_sp);
  EXPECT_EQ(alt_now.ss_size, alt.ss_size);

  // A client's rule that allows one: made as asked.
  mm().unmap(sc);
  subctx::MapOptions o;
  o.syscalls.push_back({"sched_setaffinity", subctx::SyscallRule::Action::Allow, 0});
  sc = mm().request_map(identity_image("plain"), o);
  EXPECT_EQ(sc.call<int64_t()>("pin_here"), 0);
  EXPECT_EQ(sc.call<int64_t()>("set_own_uid"), -EPERM);
}

// The state letter of /proc/PID/stat ('Z' once dead, not yet reaped).
char process_state(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

TEST_F(IdentityTest, KillOfAnotherProcessIsDeniedAndOfItselfEndsTheCall) {
  Child sleeper({"/bin/sleep", "30"});
  subctx::Subcontext sc = map("plain");
  EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("kill_pid", sleeper.pid(), SIGKILL), -EPERM);
  EXPECT_EQ(sc.call<int64_t(int64_t, int64_t)>("kill_pid", sleeper.pid(), 0), -EPERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(process_state(sleeper.pid()), 'Z') << "the subcontext killed another process";
  EXPECT_NE(process_state(sleeper.pid()), '?');

  const int64_t server = sc.call<int64_t()>("server_pid");
  ASSERT_NE(server, getpid());
  subctx::SubcontextFault f =
      expect_fault([&] { sc.call<int64_t(int64_t)>("kill_server", SIGTERM); }, Errc::Fault, {"SIGTERM"});
  EXPECT_EQ(f.signal(), SIGTERM);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  f = expect_fault([&] { sc.call<int64_t(int64_t)>("kill_self", SIGTERM); }, Errc::Fault, {"SIGTERM"});
  EXPECT_EQ(f.signal(), SIGTERM);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("kill_self", 0), 0);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("bump", 1), 101);
  EXPECT_NE(process_state(sleeper.pid()), 'Z');
}

// SUBCTX_SYSCALLS=off in a client process: nothing translates descriptor
// numbers, so an image that restores descriptors or has a working
// directory of its own is refused unless mapped unisolated.
TEST_F(IdentityTest, WithoutMediationSuchImagesAreRefusedUnlessUnisolated) {
  const std::string unsupported = std::string(subctx::errc_name(Errc::Unsupported)) + ": ";
  for (const std::string mode : {"log", "cwd"}) {
    SCOPED_TRACE(mode);
    SpawnOptions o;
    o.env = {"SUBCTX_SYSCALLS=off"};
    ProcessResult r = run({paths::kIdentityClient, "unmediated", identity_image(mode)}, o);
    ASSERT_TRUE(r.ok()) << r.describe();
    const std::string map = line_starting(r.out, "map: ");
    EXPECT_EQ(map.rfind("map: " + unsupported, 0), 0u) << r.out;
    for (const char* w : {"not mediated", "unisolated"})
      EXPECT_NE(map.find(w), std::string::npos) << "message lacks \"" << w << "\": " << map;
    EXPECT_EQ(line_starting(r.out, "unisolated: "), "unisolated: ok") << r.out;
    EXPECT_EQ(line_starting(r.out, "bump "), "bump 101") << r.out;
    EXPECT_EQ(line_starting(r.out, "grant: ").rfind("grant: " + unsupported, 0), 0u) << r.out;
    EXPECT_EQ(line_starting(r.out, "c unisolated: "), "c unisolated: 0") << r.out;
    EXPECT_EQ(line_starting(r.out, "c map: "), "c map: " + std::to_string(-SBC_E_UNSUPPORTED)) << r.out;
    // Mediated (the default): it maps.
    r = run({paths::kIdentityClient, "unmediated", identity_image(mode)});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(line_starting(r.out, "map: "), "map: ok") << r.out;
  }
  // Nothing restored and the client's working directory: maps unmediated.
  SpawnOptions o;
  o.env = {"SUBCTX_SYSCALLS=off"};
  const ProcessResult r = run({paths::kIdentityClient, "unmediated", basic_image()}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(line_starting(r.out, "map: "), "map: ok") << r.out;
}

TEST_F(IdentityTest, InspectShowsTheDescriptorTable) {
  const std::string image = identity_image("data");
  const ProcessResult r = run({paths::kSubctxTool, "inspect", image});
  ASSERT_TRUE(r.ok()) << r.describe();
  for (const std::string& w : {std::string("identity"), server_dir("data") + "/data.txt", server_dir("data")})
    EXPECT_NE(r.out.find(w), std::string::npos) << "inspect lacks \"" << w << "\": " << r.out;
}

}  // namespace
}  // namespace e2e
