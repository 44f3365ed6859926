// The policy parser (untrusted text: every error names its line) and the
// map and call decisions.
#include "matchmaker/policy.hpp"

#include <gtest/gtest.h>

namespace subctx::policy {
namespace {

std::optional<uid_t> fake_users(std::string_view name) {
  if (name == "alice") return 1000;
  return std::nullopt;
}

Policy parse_ok(std::string_view text) {
  Policy p;
  std::string why;
  EXPECT_TRUE(parse_policy(text, "test.policy", &p, &why, fake_users)) << why;
  return p;
}

std::string parse_error(std::string_view text) {
  Policy p;
  std::string why;
  EXPECT_FALSE(parse_policy(text, "test.policy", &p, &why, fake_users)) << text;
  return why;
}

const ImageFacts kImage{"/opt/images/cities.img", 1000, 0x5b472d61229ed6a5};

TEST(Policy, ParsesRulesCommentsAndBlankLines) {
  Policy p = parse_ok(
      "# images we trust\n"
      "\n"
      "allow map  path=/opt/images/*.img owner=alice   # ours\n"
      "deny\tmap path=/tmp/*\n"
      "allow map digest=0x5B472D61229ED6A5\n"
      "allow call path=/opt/images/cities.img export=admin_reset\n"
      "deny call export=debug_*\n");
  ASSERT_EQ(p.rules.size(), 5u);
  EXPECT_TRUE(p.rules[0].allow);
  EXPECT_FALSE(p.rules[0].call);
  EXPECT_EQ(p.rules[0].path, "/opt/images/*.img");
  EXPECT_EQ(p.rules[0].owner, 1000u);
  EXPECT_EQ(p.rules[0].line, 3);
  EXPECT_EQ(p.rules[0].text, "allow map path=/opt/images/*.img owner=alice");
  EXPECT_FALSE(p.rules[1].allow);
  EXPECT_EQ(p.rules[2].digest, 0x5b472d61229ed6a5u);
  EXPECT_EQ(p.rules[2].path, "*");
  EXPECT_TRUE(p.rules[3].call);
  EXPECT_EQ(p.rules[3].export_name, "admin_reset");
  EXPECT_EQ(p.rules[4].export_name, "debug_*");
  EXPECT_EQ(p.rules[4].line, 7);
  EXPECT_EQ(parse_ok("allow map owner=0").rules[0].owner, 0u);
  EXPECT_TRUE(parse_ok("").rules.empty());
}

TEST(Policy, ErrorsNameTheLineAndWhatIsWrong) {
  EXPECT_EQ(parse_error("allow map\npermit map"), "test.policy line 2: expected 'allow' or 'deny', found 'permit'");
  EXPECT_EQ(parse_error("allow"), "test.policy line 1: expected 'map' or 'call' after 'allow'");
  EXPECT_EQ(parse_error("deny mop"), "test.policy line 1: expected 'map' or 'call', found 'mop'");
  EXPECT_EQ(parse_error("allow map path"), "test.policy line 1: expected key=value, found 'path'");
  EXPECT_EQ(parse_error("allow map =x"), "test.policy line 1: expected key=value, found '=x'");
  EXPECT_EQ(parse_error("allow map path="), "test.policy line 1: expected key=value, found 'path='");
  EXPECT_EQ(parse_error("allow map colour=red"),
            "test.policy line 1: unknown key 'colour' (keys: path owner digest export max-dirty-pages max-mapped-bytes)");
  EXPECT_EQ(parse_error("allow map path=a path=b"), "test.policy line 1: path= given twice");
  EXPECT_EQ(parse_error("allow map owner=bob"), "test.policy line 1: owner 'bob' is neither a uid nor a known user");
  EXPECT_EQ(parse_error("allow map owner=-1"), "test.policy line 1: owner '-1' is neither a uid nor a known user");
  EXPECT_NE(parse_error("allow map digest=5b47").find("digest must be 0x"), std::string::npos);
  EXPECT_NE(parse_error("allow map digest=0xzz").find("digest must be 0x"), std::string::npos);
  EXPECT_NE(parse_error("allow map digest=0x12345678901234567").find("digest must be 0x"), std::string::npos);
  EXPECT_EQ(parse_error("allow map export=f"), "test.policy line 1: export= belongs in 'call' rules");
  EXPECT_EQ(parse_error("allow map path=\x01"), "test.policy line 1: control character in the line");
  EXPECT_EQ(parse_error(std::string("allow map\0", 10)), "test.policy line 1: control character in the line");
}

TEST(Policy, QuotasOnAllowMapRules) {
  Policy p = parse_ok("allow map path=/opt/* max-dirty-pages=1000 max-mapped-bytes=67108864\nallow map path=/srv/*\n");
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].max_dirty_pages, 1000u);
  EXPECT_EQ(p.rules[0].max_mapped_bytes, uint64_t{67108864});
  EXPECT_FALSE(p.rules[1].max_dirty_pages);
  Decision d = decide_map(&p, kImage);
  ASSERT_TRUE(d.allowed);
  ASSERT_NE(d.rule, nullptr);
  EXPECT_EQ(d.rule->max_dirty_pages, 1000u);
  EXPECT_NE(parse_error("deny map max-dirty-pages=5").find("belongs in 'allow map' rules"), std::string::npos);
  EXPECT_NE(parse_error("allow call max-mapped-bytes=5").find("belongs in 'allow map' rules"), std::string::npos);
  EXPECT_NE(parse_error("allow map max-dirty-pages=lots").find("test.policy line 1: max-dirty-pages must be a decimal"),
            std::string::npos);
  EXPECT_NE(parse_error("allow map max-dirty-pages=1 max-dirty-pages=2").find("given twice"), std::string::npos);
}

TEST(Policy, Limits) {
  EXPECT_EQ(parse_error("allow map path=" + std::string(5000, 'a')), "test.policy line 1: longer than 4096 characters");
  std::string many;
  for (int i = 0; i < 10001; ++i) many += "allow map\n";
  EXPECT_EQ(parse_error(many), "test.policy line 10001: more than 10000 rules");
  EXPECT_NE(parse_error(std::string(kMaxPolicyBytes + 1, '\n')).find("at most 1 MiB"), std::string::npos);
}

TEST(Policy, NoPolicyMapsAllCallsPublicOnly) {
  EXPECT_TRUE(decide_map(nullptr, kImage).allowed);
  EXPECT_TRUE(decide_call(nullptr, kImage, "count", false).allowed);
  Decision d = decide_call(nullptr, kImage, "admin_reset", true);
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.why.find("restricted"), std::string::npos) << d.why;
  EXPECT_NE(d.why.find("allow call path=/opt/images/cities.img export=admin_reset"), std::string::npos) << d.why;
}

TEST(Policy, MapFirstMatchDecidesAndDefaultDenies) {
  Policy p = parse_ok(
      "deny map path=/opt/images/secret*\n"
      "allow map path=/opt/images/* owner=alice\n"
      "allow call\n");
  EXPECT_TRUE(decide_map(&p, kImage).allowed);
  EXPECT_EQ(decide_map(&p, kImage).rule, &p.rules[1]);
  Decision d = decide_map(&p, {"/opt/images/secret.img", 1000, 1});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.why, "denied by test.policy line 1 (deny map path=/opt/images/secret*)");
  d = decide_map(&p, {"/opt/images/cities.img", 0, 1});  // owner differs
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.why.find("no rule of test.policy allows mapping it"), std::string::npos) << d.why;
  EXPECT_EQ(d.rule, nullptr);
  // Call rules never decide maps.
  EXPECT_FALSE(decide_map(&p, {"/srv/x.img", 1000, 1}).allowed);
}

TEST(Policy, MapByDigest) {
  Policy p = parse_ok("allow map digest=0x5b472d61229ed6a5");
  EXPECT_TRUE(decide_map(&p, kImage).allowed);
  EXPECT_FALSE(decide_map(&p, {"/opt/images/cities.img", 1000, 0x5b472d61229ed6a6}).allowed);
}

TEST(Policy, CallRulesAndRestrictedGrants) {
  Policy p = parse_ok(
      "allow map\n"
      "deny call export=debug_*\n"
      "allow call path=/opt/images/cities.img export=admin_reset\n"
      "allow call export=admin_*\n");
  EXPECT_TRUE(decide_call(&p, kImage, "count", false).allowed);  // no call rule: public is fine
  Decision d = decide_call(&p, kImage, "debug_dump", false);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.why, "denied by test.policy line 2 (deny call export=debug_*)");
  EXPECT_TRUE(decide_call(&p, kImage, "admin_reset", true).allowed);  // granted by name
  EXPECT_EQ(decide_call(&p, kImage, "admin_reset", true).rule, &p.rules[2]);
  // A wildcard grants nothing restricted, but still allows a public export.
  d = decide_call(&p, kImage, "admin_wipe", true);
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.why.find("a grant names it exactly"), std::string::npos) << d.why;
  EXPECT_TRUE(decide_call(&p, kImage, "admin_stats", false).allowed);
  // The grant is for one image only.
  EXPECT_FALSE(decide_call(&p, {"/opt/images/other.img", 1000, 1}, "admin_reset", true).allowed);
}

}  // namespace
}  // namespace subctx::policy
