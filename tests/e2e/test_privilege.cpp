// Policy and privilege (issue 14, docs/policy.md): the policy decides on the
// path of the file opened, never on a second lookup; a path that cannot be
// known is denied; `*` does not cross `/` or `..`; digest rules pin the
// whole image; setuid clients go by the effective uid and ignore SUBCTX_*;
// images are written 0600; directories others can write without the
// sticky bit are refused; SUBCTX_POLICY never hangs, never reads without
// bound and fails closed when empty; paths in messages are escaped; every
// malformed SUBCTX_* value fails every map the same way.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;

const std::string& policy_image() {
  static const std::string path = build_image(paths::kPolicyServer, "privilege-policy.img");
  return path;
}

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? buf : path;
}

std::string digest_hex(const std::string& image) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx",
                static_cast<unsigned long long>(read_value<uint64_t>(image,
                                                                     read_layout(image).header_digest_offset())));
  return buf;
}

std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// A copy of image moved to dir/name.
std::string copy_into(const std::string& image, const std::string& dir, const std::string& name) {
  const std::string copy = copy_image(image, "moving-" + name);
  const std::string to = dir + "/" + name;
  if (rename(copy.c_str(), to.c_str()) != 0) throw std::runtime_error("rename to " + to + ": " + std::strerror(errno));
  return to;
}

std::string make_dir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), 0700) != 0 || chmod(path.c_str(), mode) != 0)
    throw std::runtime_error("mkdir " + path + ": " + std::strerror(errno));
  return path;
}

class PrivilegeTest : public E2eTest {
 protected:
  void TearDown() override {
    mm().clear_policy();
    E2eTest::TearDown();
  }
};

// ---- the path the policy sees ----

// Removes name under dir and everything below it, by descriptor (a tree
// deeper than PATH_MAX cannot be removed by path).
void remove_tree_at(int dir, const char* name) {
  const int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlinkat(dir, name, 0);
    return;
  }
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd/" + std::to_string(fd))) {
    const std::string child = entry.path().filename();
    if (entry.is_directory() && !entry.is_symlink()) remove_tree_at(fd, child.c_str());
    else unlinkat(fd, child.c_str(), 0);
  }
  close(fd);
  unlinkat(dir, name, AT_REMOVEDIR);
}

// Issue 14: realpath() failed (the canonical path is longer than PATH_MAX,
// reached through a symlink), the policy was checked against the raw path,
// and `*` matched `../L/deep.img`: an image from outside the allowed
// directory was mapped.
TEST_F(PrivilegeTest, PathThatCannotBeCanonicalisedIsDenied) {
  const std::string base = make_dir(temp_path("chain"), 0755);
  make_dir(base + "/allowed", 0755);
  // base/L -> n1/n2/.../n16, each name 254 characters: the image's own path
  // is longer than PATH_MAX, the path given is short.
  std::string target;
  int fd = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 16; ++i) {
    const std::string name = std::string(253, 'a' + i) + "d";
    ASSERT_EQ(mkdirat(fd, name.c_str(), 0755), 0) << std::strerror(errno);
    const int next = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    ASSERT_GE(next, 0);
    fd = next;
    target += (i ? "/" : "") + name;
  }
  const std::string src = copy_image(policy_image(), "deep-source.img");
  ASSERT_EQ(renameat(AT_FDCWD, src.c_str(), fd, "deep.img"), 0) << std::strerror(errno);
  close(fd);
  ASSERT_EQ(symlink(target.c_str(), (base + "/L").c_str()), 0) << std::strerror(errno);
  const std::string walk = base + "/allowed/../L/deep.img";
  ASSERT_EQ(access(walk.c_str(), R_OK), 0) << "the kernel opens it";

  mm().set_policy("allow map path=" + canonical(base) + "/allowed/*\n");
  expect_map_refused(walk, Errc::Permission, {walk, "cannot tell the path of the file opened", "File name too long"},
                     read_layout(policy_image()).all_ranges());
  mm().clear_policy();  // without a policy too: the path is kept for later call and reopen decisions
  expect_map_refused(walk, Errc::Permission, {"cannot tell the path"}, read_layout(policy_image()).all_ranges());

  const int temp = open(temp_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  remove_tree_at(temp, "chain");
  close(temp);
}

// Issue 14: the image was opened by descriptor, but the policy's path came
// from a later realpath(): a symlink flipped between the two mapped a
// denied image (43 times in 3,000 maps).
TEST_F(PrivilegeTest, SymlinkFlippedDuringMapsNeverMapsTheDeniedImage) {
  const std::string base = make_dir(temp_path("flip"), 0755);
  const std::string allowed = copy_into(policy_image(), make_dir(base + "/allowed", 0755), "a.img");
  const std::string denied = copy_into(basic_image(), make_dir(base + "/denied", 0755), "b.img");
  const std::string link = base + "/link.img", next = base + "/next.img";
  ASSERT_EQ(symlink(allowed.c_str(), link.c_str()), 0);
  mm().set_policy("allow map path=" + canonical(base) + "/allowed/*\n");

  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    for (bool to_denied = true; !stop.load(); to_denied = !to_denied) {
      unlink(next.c_str());
      if (symlink((to_denied ? denied : allowed).c_str(), next.c_str()) == 0) rename(next.c_str(), link.c_str());
    }
  });
  int mapped_allowed = 0, mapped_denied = 0, refused = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0; i < 3000 && std::chrono::steady_clock::now() < until; ++i) {
    try {
      subctx::Subcontext sc = mm().request_map(link);
      // Only the basic image (the denied one) has square.
      bool has_square = false;
      for (const subctx::ExportInfo& e : sc.exports()) has_square = has_square || e.name == "square";
      ++(has_square ? mapped_denied : mapped_allowed);
      mm().unmap(sc);
    } catch (const subctx::Error& e) {
      ++refused;
      EXPECT_TRUE(e.code() == Errc::Policy || e.code() == Errc::NotFound || e.code() == Errc::Permission) << e.what();
    }
  }
  stop = true;
  flipper.join();
  EXPECT_EQ(mapped_denied, 0) << "the denied image was mapped " << mapped_denied << " times (" << mapped_allowed
                              << " allowed maps, " << refused << " refusals)";
  EXPECT_GT(mapped_allowed, 0);
  EXPECT_GT(refused, 0);
}

// ---- digest rules pin the whole image ----

// A copy of the policy image with one byte of a segment's data changed;
// the header (and so its digest) as before.
std::string patched_code_copy(const std::string& name) {
  const std::string path = copy_image(policy_image(), name);
  const ImageLayout l = read_layout(path);
  for (size_t i = 1; i < l.phdrs.size(); ++i) {
    if (!l.phdrs[i].p_filesz || !(l.phdrs[i].p_flags & PF_X)) continue;
    const uint64_t at = l.phdrs[i].p_offset + l.phdrs[i].p_filesz - 1;
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(at));
    const char was = static_cast<char>(in.get());
    patch_value<uint8_t>(path, at, static_cast<uint8_t>(was ^ 0x5a));
    return path;
  }
  throw std::runtime_error("no executable segment with data in " + path);
}

// Issue 14: an image with patched code passed `allow map digest=...`.
TEST_F(PrivilegeTest, DigestRuleRefusesAnImageWithPatchedCode) {
  const std::string patched = patched_code_copy("patched-code.img");
  ASSERT_EQ(digest_hex(patched), digest_hex(policy_image()));
  mm().set_policy("allow map digest=" + digest_hex(policy_image()) + "\n");
  expect_map_refused(patched, Errc::Digest,
                     {patched, "policy set by the API line 1 (allow map digest=", "whole contents were checked",
                      "digest mismatch", "snapshot the server again"},
                     read_layout(patched).all_ranges());
  subctx::Subcontext sc = mm().request_map(policy_image());  // the real one still maps
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 1), 1);
  mm().unmap(sc);
  // A rule of any kind naming its digest checks the whole image at map.
  mm().set_policy("allow map path=" + canonical(temp_dir()) + "/*\nallow call digest=" + digest_hex(policy_image()) +
                  " export=admin_reset\n");
  expect_map_refused(patched, Errc::Digest, {"line 2 (allow call digest="}, read_layout(patched).all_ranges());
}

TEST_F(PrivilegeTest, DigestRuleAddedAfterTheMapChecksTheImageAtTheCall) {
  const std::string patched = patched_code_copy("patched-later.img");
  mm().set_policy("allow map path=" + canonical(temp_dir()) + "/*\n");
  subctx::Subcontext sc = mm().request_map(patched);  // no digest rule: the header is all that is checked
  mm().set_policy("allow map\nallow call digest=" + digest_hex(patched) + " export=admin_reset\n");
  expect_error([&] { sc.call<int64_t()>("admin_reset"); }, Errc::Digest,
               {"cannot call export \"admin_reset\"", "line 2 (allow call digest=", "digest mismatch"});
  mm().unmap(sc);
  subctx::Subcontext good = mm().request_map(policy_image());
  EXPECT_EQ(good.call<int64_t()>("admin_reset"), 0);  // granted by digest, checked, called
}

// ---- setuid clients ----

// Runs `setpriv --reuid=65534 ... program args` (uid nobody), or program
// directly when as_nobody is false.
ProcessResult run_as(bool as_nobody, const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  std::vector<std::string> full;
  if (as_nobody) full = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  full.insert(full.end(), argv.begin(), argv.end());
  SpawnOptions o;
  o.env = env;
  return run(full, o);
}

// A directory everyone may enter (the test's own is 0700), removed at the end.
class SetuidTest : public PrivilegeTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to make setuid copies and chown images";
    if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
    char tmpl[] = "/tmp/subctx-priv-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    PrivilegeTest::TearDown();
  }
  // A copy of the privilege client, owned by uid, setuid.
  std::string setuid_client(const std::string& name, uid_t uid) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::copy_file(paths::kPrivilegeClient, path);
    EXPECT_EQ(chown(path.c_str(), uid, uid), 0);
    EXPECT_EQ(chmod(path.c_str(), 04755), 0);
    return path;
  }
  std::string image_owned_by(const std::string& name, uid_t uid) {
    const std::string path = copy_into(policy_image(), dir_, name);
    EXPECT_EQ(chown(path.c_str(), uid, uid), 0);
    return path;
  }
  std::string dir_;
};

// Issue 14: a setuid-root client ran an image its ordinary invoker wrote,
// as root (the owner check compared with the real uid).
TEST_F(SetuidTest, SetuidRootClientRefusesTheInvokersImage) {
  const std::string client = setuid_client("root-client", 0);
  const std::string users = image_owned_by("users.img", 65534), roots = image_owned_by("roots.img", 0);
  ProcessResult r = run_as(true, {client, "map", users});
  ASSERT_TRUE(r.ok()) << r.describe();
  if (r.out.find("secure=1") == std::string::npos) GTEST_SKIP() << "setuid has no effect here: " << r.out;
  EXPECT_EQ(r.out.rfind("uid=65534 euid=0 secure=1\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("refused Permission: image " + users +
                       " is owned by uid 65534; images must belong to "
                       "the user this process runs as (effective uid 0) or root"),
            std::string::npos)
      << r.out;
  r = run_as(true, {client, "map", roots});
  EXPECT_NE(r.out.find("mapped; open_door(2) = 2"), std::string::npos) << r.describe();
}

// The effective uid decides the other way round too: a program setuid to
// nobody, started by root, maps nobody's images.
TEST_F(SetuidTest, SetuidToAnotherUserMapsThatUsersImages) {
  const std::string client = setuid_client("nobody-client", 65534);
  ProcessResult r = run_as(false, {client, "map", image_owned_by("nobodys.img", 65534)});
  ASSERT_TRUE(r.ok()) << r.describe();
  if (r.out.find("secure=1") == std::string::npos) GTEST_SKIP() << "setuid has no effect here: " << r.out;
  EXPECT_EQ(r.out, "uid=0 euid=65534 secure=1\nmapped; open_door(2) = 2\n") << r.describe();
}

// Issue 14: SUBCTX_* variables were honoured in setuid programs: the
// invoker could turn protection off.  AT_SECURE processes ignore them all.
TEST_F(SetuidTest, SetuidClientIgnoresSubctxEnvironment) {
  const std::string client = setuid_client("env-client", 0);
  const std::string roots = image_owned_by("roots.img", 0);
  const std::vector<std::string> env = {"SUBCTX_PROTECTION=bogus", "SUBCTX_POLICY=/nonexistent.policy",
                                        "SUBCTX_MAX_IMAGE_SIZE=1", "SUBCTX_SYSCALLS=maybe"};
  ProcessResult r = run_as(true, {client, "map", roots}, env);
  ASSERT_TRUE(r.ok()) << r.describe();
  if (r.out.find("secure=1") == std::string::npos) GTEST_SKIP() << "setuid has no effect here: " << r.out;
  EXPECT_EQ(r.out, "uid=65534 euid=0 secure=1\nmapped; open_door(2) = 2\n") << r.describe();
  EXPECT_EQ(r.err, "") << r.describe();
  // The same program, not setuid, honours them.
  r = run_as(false, {paths::kPrivilegeClient, "map", roots}, env);
  EXPECT_NE(r.out.find("secure=0\nrefused InvalidArgument: cannot map image " + roots +
                       ": SUBCTX_PROTECTION=bogus is not a protection backend"),
            std::string::npos)
      << r.describe();
  EXPECT_NE(r.err.find("/nonexistent.policy"), std::string::npos) << r.describe();
}

// ---- the image file and its directories ----

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Issue 14: images were written 0644 and hold the server's heap and
// environment.
TEST_F(PrivilegeTest, ImagesAreWrittenOwnerOnlyUnlessAWiderModeIsAsked) {
  const mode_t mask = umask(022);
  const std::string plain = build_image(paths::kPolicyServer, "mode-default.img");
  EXPECT_EQ(mode_of(plain), 0600u);
  const std::string wide = build_image(paths::kPolicyServer, "mode-wide.img", {"--mode", "0644"});
  EXPECT_EQ(mode_of(wide), 0644u);
  const std::string group = build_image(paths::kPolicyServer, "mode-group.img", {"--mode", "0640"});
  EXPECT_EQ(mode_of(group), 0640u);
  umask(mask);
}

TEST_F(PrivilegeTest, SnapshotRefusesAModeOthersCouldWrite) {
  ProcessResult r = run({paths::kPolicyServer, "--mode", "0666", temp_path("mode-bad.img")});
  EXPECT_FALSE(r.ok()) << r.describe();
  EXPECT_NE(r.err.find("SnapshotOptions::mode 0666 is not a mode for an image"), std::string::npos) << r.describe();
  EXPECT_NE(access(temp_path("mode-bad.img").c_str(), F_OK), 0) << "no image written";
}

// Issue 14: in a directory others can write without the sticky bit, anyone
// can rename another file over the image.
TEST_F(PrivilegeTest, WorldWritableDirectoryWithoutStickyBitIsRefused) {
  const std::string dir = make_dir(temp_path("open-dir"), 0777);
  const std::string image = copy_into(policy_image(), dir, "x.img");
  const std::string shown = canonical(dir);
  expect_map_refused(image, Errc::Permission,
                     {image, "directory " + shown + " (mode 0777) is writable by others without the sticky bit",
                      "chmod o-w (or chmod +t) " + shown},
                     read_layout(image).all_ranges());
  // Deeper down: the open directory is still on the path.
  const std::string deeper = copy_into(basic_image(), make_dir(dir + "/sub", 0755), "y.img");
  expect_map_refused(deeper, Errc::Permission, {"directory " + shown + " (mode 0777)"},
                     read_layout(deeper).all_ranges());
  ASSERT_EQ(chmod(dir.c_str(), 01777), 0);  // sticky: others cannot rename what is not theirs
  mm().unmap(mm().request_map(image));
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  mm().unmap(mm().request_map(deeper));
}

// ---- SUBCTX_POLICY ----

ProcessResult map_report(const std::vector<std::string>& env) {
  SpawnOptions o;
  o.env = env;
  return run({paths::kWorkerClient, "map-report", policy_image()}, o, Millis(20000));
}

void expect_fails_closed(const ProcessResult& r, const std::string& why) {
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.rfind("refused PolicyDenied: ", 0), 0u) << r.describe();
  EXPECT_NE(r.out.find("unusable"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find(why), std::string::npos) << r.describe();
}

// Issue 14: a FIFO hung the program before main; /dev/zero was read without
// bound; SUBCTX_POLICY="" meant no policy at all.
TEST_F(PrivilegeTest, PolicyFileMustBeARegularFileOfBoundedSize) {
  const std::string fifo = temp_path("policy.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_fails_closed(map_report({"SUBCTX_POLICY=" + fifo}), fifo + " is a FIFO, not a regular file");
  expect_fails_closed(map_report({"SUBCTX_POLICY=/dev/zero"}), "/dev/zero is a character device, not a regular file");
  expect_fails_closed(map_report({"SUBCTX_POLICY="}), "SUBCTX_POLICY is set but empty");
  const std::string big = write_file(temp_path("big.policy"), std::string((1 << 20) + 1, '\n'));
  expect_fails_closed(map_report({"SUBCTX_POLICY=" + big}), "is larger than 1 MiB");
  // Through the API too: no hang, the right error.
  EXPECT_EQ(sbc_load_policy(fifo.c_str()), -SBC_E_NOT_REGULAR);
  EXPECT_NE(std::string(sbc_last_error()).find("a FIFO"), std::string::npos) << sbc_last_error();
}

TEST_F(PrivilegeTest, PolicyFileWithUtf8CommentsAndCrlfLineEnds) {
  const std::string utf8 =
      write_file(temp_path("utf8.policy"),
                 "# Größe ✓ — für alle\nallow map path=" + canonical(temp_dir()) + "/*  # ünïcödé\n");
  ProcessResult r = map_report({"SUBCTX_POLICY=" + utf8});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "mapped; open_door(2) = 2\n") << r.describe();
  const std::string crlf = write_file(temp_path("crlf.policy"), "# made on Windows\r\nallow map\r\n");
  expect_fails_closed(map_report({"SUBCTX_POLICY=" + crlf}), "line 1: carriage return (CRLF line end?) at column 18");
}

// ---- messages ----

// Issue 14: a path with a newline went raw into diagnostics (log injection).
TEST_F(PrivilegeTest, PathsWithControlCharactersAreEscapedInMessages) {
  const std::string evil = copy_image(policy_image(), "evil\nsubctx: all is well.img");
  mm().set_policy("allow map path=/nowhere/*\n");
  const std::string msg = expect_error([&] { mm().request_map(evil); }, Errc::Policy,
                                       {"evil\\x0asubctx: all is well.img", "allow map path="});
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  const std::string missing = temp_path("no\nsuch\x1b[31m.img");
  const std::string gone =
      expect_error([&] { mm().request_map(missing); }, Errc::NotFound, {"no\\x0asuch\\x1b[31m.img"});
  EXPECT_EQ(gone.find_first_of("\n\x1b"), std::string::npos) << gone;
  // The API gives the path back as it was given.
  mm().clear_policy();
  subctx::Subcontext sc = mm().request_map(evil);
  EXPECT_EQ(sc.path(), evil);
  mm().set_policy("allow map\ndeny call export=open_door\n");
  const std::string call =
      expect_error([&] { sc.call<int64_t(int64_t)>("open_door", 1); }, Errc::Policy, {"evil\\x0a"});
  EXPECT_EQ(call.find('\n'), std::string::npos) << call;
}

// ---- the environment: one reader, one rule ----

// Issue 14: SUBCTX_MAX_IMAGE_SIZE=1k was ignored (the default used),
// SUBCTX_SYSCALLS=maybe accepted, others failed every map.  Now every
// malformed value fails every map alike, naming the variable and value.
TEST_F(PrivilegeTest, MalformedEnvironmentValuesFailEveryMapAlike) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SUBCTX_MAX_IMAGE_SIZE=1k", "SUBCTX_MAX_IMAGE_SIZE=1k is not a number from 1 to 18446744073709551615"},
      {"SUBCTX_SYSCALLS=maybe", "SUBCTX_SYSCALLS=maybe is not a switch; use on or off"},
      {"SUBCTX_PAGEMAP_SCAN=no", "SUBCTX_PAGEMAP_SCAN=no is not a switch; use on or off"},
      {"SUBCTX_ON_FAULT=", "SUBCTX_ON_FAULT= (empty) is not a fault policy; use reset, poison or keep"},
      {"SUBCTX_CALL_TIMEOUT_MS=10ms", "SUBCTX_CALL_TIMEOUT_MS=10ms is not a number from 0 to 4294967295"},
      {"SUBCTX_PROTECTION=bogus",
       "SUBCTX_PROTECTION=bogus is not a protection backend; use pkey, mprotect, none or auto"},
  };
  for (const auto& [setting, words] : cases) {
    SCOPED_TRACE(setting);
    ProcessResult r = map_report({setting});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.out, "refused InvalidArgument: cannot map image " + policy_image() + ": " + words +
                         "; fix or unset it (a malformed SUBCTX_* variable fails every map)\n")
        << r.describe();
  }
  ProcessResult r = map_report({"SUBCTX_SYSCALLS=on", "SUBCTX_PAGEMAP_SCAN=off", "SUBCTX_MAX_IMAGE_SIZE=1073741824"});
  EXPECT_EQ(r.out, "mapped; open_door(2) = 2\n") << r.describe();
}

}  // namespace
}  // namespace e2e
