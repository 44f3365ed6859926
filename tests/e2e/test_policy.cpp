// The client policy (docs/policy.md): which images may be mapped, which
// exports called, restricted exports only by grant; set through the API, the
// C API and SUBCTX_POLICY; a change takes effect on the next call.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "image/format.hpp"
#include "image/reader.hpp"
#include "support/e2e_test.hpp"
#include "sys/unique_fd.hpp"

namespace e2e {
namespace {

using subctx::Errc;

const std::string& policy_image() {
  static const std::string path = build_image(paths::kPolicyServer, "policy.img");
  return path;
}

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? buf : path;
}

std::string digest_hex(const std::string& image) {
  const ImageLayout l = read_layout(image);
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx",
                static_cast<unsigned long long>(read_value<uint64_t>(image, l.header_digest_offset())));
  return buf;
}

std::string write_policy(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

class Policy : public E2eTest {
 protected:
  void TearDown() override {
    mm().clear_policy();
    E2eTest::TearDown();
  }
};

TEST_F(Policy, WithoutAPolicyPublicExportsOnly) {
  subctx::Subcontext sc = mm().request_map(policy_image());
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 2), 2);
  expect_error([&] { sc.call<int64_t()>("admin_reset"); }, Errc::Policy,
               {"cannot call export \"admin_reset\"", "restricted", "export=admin_reset"});
  uint64_t ret = 0;
  EXPECT_EQ(sbc_request_call(sc.handle(), "admin_reset", nullptr, 0, &ret), -SBC_E_POLICY);
  EXPECT_NE(std::string(sbc_last_error()).find("restricted"), std::string::npos) << sbc_last_error();
}

TEST_F(Policy, DeniedMapNamesTheRuleAndLeavesTheClientAsItWas) {
  mm().set_policy(
      "allow map path=/nowhere/*\n"
      "deny map path=" +
      canonical(policy_image()) + "\n");
  expect_map_refused(policy_image(), Errc::Policy, {"policy set by the API line 2", "deny map path="},
                     read_layout(policy_image()).all_ranges());
  // No rule at all for it: denied by default, with the rule to add.
  mm().set_policy("allow map path=/nowhere/*\n");
  expect_map_refused(policy_image(), Errc::Policy,
                     {"no rule of policy set by the API allows mapping it", "allow map path="},
                     read_layout(policy_image()).all_ranges());
}

TEST_F(Policy, MapAllowedByDigestOrOwner) {
  mm().set_policy("allow map digest=" + digest_hex(policy_image()) + "\n");
  mm().unmap(mm().request_map(policy_image()));
  expect_map_refused(basic_image(), Errc::Policy, {"no rule"}, read_layout(basic_image()).all_ranges());
  mm().set_policy("allow map owner=" + std::to_string(getuid()) + "\n");
  mm().unmap(mm().request_map(basic_image()));
}

TEST_F(Policy, ChangeTakesEffectOnTheNextCallOfAHandle) {
  subctx::Subcontext sc = mm().request_map(policy_image());
  auto open_door = sc.function<int64_t(int64_t)>("open_door");
  EXPECT_EQ(open_door(1), 1);
  EXPECT_EQ(open_door(1), 2);  // allowed, and cached
  mm().set_policy("allow map\ndeny call export=open_*\n");
  expect_error([&] { open_door(1); }, Errc::Policy, {"line 2 (deny call export=open_*)"});
  mm().clear_policy();
  EXPECT_EQ(open_door(1), 3);
}

TEST_F(Policy, RestrictedExportNeedsAGrantByName) {
  subctx::Subcontext sc = mm().request_map(policy_image());
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 5), 5);
  mm().set_policy("allow map\nallow call export=admin_*\n");  // a wildcard is no grant
  expect_error([&] { sc.call<int64_t()>("admin_reset"); }, Errc::Policy, {"a grant names it exactly"});
  mm().set_policy("allow map\nallow call path=" + canonical(policy_image()) + " export=admin_reset\n");
  EXPECT_EQ(sc.call<int64_t()>("admin_reset"), 0);
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 1), 1);
}

TEST_F(Policy, MalformedPolicyIsRefusedAndTheOldOneStays) {
  mm().set_policy("deny map path=" + canonical(policy_image()) + "\n");
  expect_error([&] { mm().set_policy("allow map\nallow mop\n"); }, Errc::InvalidArgument,
               {"policy set by the API line 2", "expected 'map', 'call', 'reopen' or 'spawn'"});
  expect_error([&] { mm().request_map(policy_image()); }, Errc::Policy, {"line 1"});
  EXPECT_EQ(sbc_set_policy("allow nothing"), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_set_policy(nullptr), 0);  // removes it
  mm().unmap(mm().request_map(policy_image()));
}

TEST_F(Policy, LoadedFromAFileThroughTheCApi) {
  const std::string file =
      write_policy("deny.policy", "# nothing from here\ndeny map path=" + canonical(temp_dir()) + "/*\n");
  ASSERT_EQ(sbc_load_policy(file.c_str()), 0) << sbc_last_error();
  EXPECT_EQ(sbc_request_map(policy_image().c_str()), -SBC_E_POLICY);
  EXPECT_NE(std::string(sbc_last_error()).find("policy file " + file + " line 2"), std::string::npos)
      << sbc_last_error();
  EXPECT_EQ(sbc_load_policy(temp_path("missing.policy").c_str()), -SBC_E_IO);
}

TEST_F(Policy, SubctxPolicyEnvironmentVariableAtStartUp) {
  const std::string allow = write_policy("allow.policy", "allow map path=" + canonical(temp_dir()) + "/*\n");
  const std::string deny = write_policy("deny-all.policy", "allow map path=/nowhere\n");
  const std::string broken = write_policy("broken.policy", "allow map\nallow map colour=red\n");
  SpawnOptions o;
  o.env = {"SUBCTX_POLICY=" + allow};
  ProcessResult r = run({paths::kWorkerClient, "map-report", policy_image()}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "mapped; open_door(2) = 2\n");
  o.env = {"SUBCTX_POLICY=" + deny};
  r = run({paths::kWorkerClient, "map-report", policy_image()}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.rfind("refused PolicyDenied: cannot map image", 0), 0u) << r.out;
  // A policy that cannot be used fails closed: nothing maps, and it says why.
  o.env = {"SUBCTX_POLICY=" + broken};
  r = run({paths::kWorkerClient, "map-report", policy_image()}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.rfind("refused PolicyDenied: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("unusable"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("line 2: unknown key 'colour'"), std::string::npos) << r.err;
}

// Starting programs (docs/policy.md, "Spawn"): the image's declaration is
// a flag of its version note, which `subctx inspect` shows; spawn rules
// parse, and neither a map nor a call depends on them (a denial only makes
// the subcontext's vfork and posix_spawn fail).
subctx::image::ImageInfo read_info(const std::string& path) {
  subctx::sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("cannot open " + path);
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  return subctx::image::read_image(subctx::image::FileSource(fd.get(), static_cast<uint64_t>(size)), path);
}

TEST_F(Policy, AnImageDeclaresThatItStartsPrograms) {
  static const std::string spawning = build_image(paths::kPolicyServer, "policy-spawns.img", {"--spawns"});
  EXPECT_EQ(read_info(spawning).flags, subctx::image::kFlagSpawns);
  EXPECT_EQ(read_info(policy_image()).flags, 0u);
  ProcessResult r = run({paths::kSubctxTool, "inspect", spawning});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("programs:  declares that it starts programs"), std::string::npos) << r.out;
  r = run({paths::kSubctxTool, "inspect", policy_image()});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("programs:  does not declare that it starts programs"), std::string::npos) << r.out;
}

TEST_F(Policy, SpawnRulesDecideNeitherMapsNorCalls) {
  mm().set_policy("allow map\ndeny spawn path=" + canonical(policy_image()) + "\n");
  subctx::Subcontext sc = mm().request_map(policy_image());
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 1), 1);
  // A change is decided again at the next call; that call goes on.
  mm().set_policy("allow map\nallow spawn digest=" + digest_hex(policy_image()) + "\n");
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 1), 2);
  mm().clear_policy();
  EXPECT_EQ(sc.call<int64_t(int64_t)>("open_door", 1), 3);
  expect_error([&] { mm().set_policy("allow spawn export=open_door\n"); }, Errc::InvalidArgument,
               {"policy set by the API line 1", "export= belongs in 'call' rules"});
  mm().unmap(sc);
}

}  // namespace
}  // namespace e2e
