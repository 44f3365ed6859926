// The policy parser (untrusted text: every error names its line) and the
// map, call, reopen and spawn decisions.
#include "matchmaker/policy.hpp"

#include <gtest/gtest.h>

#include "sys/io.hpp"

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
  EXPECT_EQ(p.rules[0].kind, RuleKind::Map);
  EXPECT_EQ(p.rules[0].path, "/opt/images/*.img");
  EXPECT_EQ(p.rules[0].owner, 1000u);
  EXPECT_EQ(p.rules[0].line, 3);
  EXPECT_EQ(p.rules[0].text, "allow map path=/opt/images/*.img owner=alice");
  EXPECT_FALSE(p.rules[1].allow);
  EXPECT_EQ(p.rules[2].digest, 0x5b472d61229ed6a5u);
  EXPECT_EQ(p.rules[2].path, "*");
  EXPECT_EQ(p.rules[3].kind, RuleKind::Call);
  EXPECT_EQ(p.rules[3].export_name, "admin_reset");
  EXPECT_EQ(p.rules[4].export_name, "debug_*");
  EXPECT_EQ(p.rules[4].line, 7);
  EXPECT_EQ(parse_ok("allow map owner=0").rules[0].owner, 0u);
  EXPECT_TRUE(parse_ok("").rules.empty());
}

TEST(Policy, ErrorsNameTheLineAndWhatIsWrong) {
  EXPECT_EQ(parse_error("allow map\npermit map"), "test.policy line 2: expected 'allow' or 'deny', found 'permit'");
  EXPECT_EQ(parse_error("allow"), "test.policy line 1: expected 'map', 'call', 'reopen' or 'spawn' after 'allow'");
  EXPECT_EQ(parse_error("deny mop"), "test.policy line 1: expected 'map', 'call', 'reopen' or 'spawn', found 'mop'");
  EXPECT_EQ(parse_error("allow map path"), "test.policy line 1: expected key=value, found 'path'");
  EXPECT_EQ(parse_error("allow map =x"), "test.policy line 1: expected key=value, found '=x'");
  EXPECT_EQ(parse_error("allow map path="), "test.policy line 1: expected key=value, found 'path='");
  EXPECT_EQ(parse_error("allow map colour=red"),
            "test.policy line 1: unknown key 'colour' (keys: path owner digest export file max-dirty-pages "
            "max-mapped-bytes)");
  EXPECT_EQ(parse_error("allow map path=/a path=/b"), "test.policy line 1: path= given twice");
  EXPECT_EQ(parse_error("allow map owner=bob"), "test.policy line 1: owner 'bob' is neither a uid nor a known user");
  EXPECT_EQ(parse_error("allow map owner=-1"), "test.policy line 1: owner '-1' is neither a uid nor a known user");
  EXPECT_NE(parse_error("allow map digest=5b47").find("digest must be 0x"), std::string::npos);
  EXPECT_NE(parse_error("allow map digest=0xzz").find("digest must be 0x"), std::string::npos);
  EXPECT_NE(parse_error("allow map digest=0x12345678901234567").find("digest must be 0x"), std::string::npos);
  EXPECT_EQ(parse_error("allow map export=f"), "test.policy line 1: export= belongs in 'call' rules");
  EXPECT_EQ(parse_error("allow map path=\x01"), "test.policy line 1: control character 0x01 at column 16");
  EXPECT_EQ(parse_error(std::string("allow map\0", 10)), "test.policy line 1: control character 0x00 at column 10");
  EXPECT_EQ(parse_error("allow map path=opt/*"),
            "test.policy line 1: path= is matched against the image's absolute path: start it with '/' or '*', e.g. "
            "path=/opt/images/*");
}

TEST(Policy, QuotasOnAllowMapRules) {
  Policy p = parse_ok("allow map path=/opt/** max-dirty-pages=1000 max-mapped-bytes=67108864\nallow map path=/srv/*\n");
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

TEST(Policy, ParsesReopenRules) {
  Policy p = parse_ok(
      "allow reopen file=/var/lib/app/*   # the app's data\n"
      "deny  reopen path=/tmp/*.img owner=alice digest=0x1 file=/etc/*\n"
      "deny reopen\n");
  ASSERT_EQ(p.rules.size(), 3u);
  EXPECT_EQ(p.rules[0].kind, RuleKind::Reopen);
  EXPECT_TRUE(p.rules[0].allow);
  EXPECT_EQ(p.rules[0].file, "/var/lib/app/*");
  EXPECT_EQ(p.rules[0].path, "*");
  EXPECT_EQ(p.rules[0].text, "allow reopen file=/var/lib/app/*");
  EXPECT_FALSE(p.rules[1].allow);
  EXPECT_EQ(p.rules[1].path, "/tmp/*.img");
  EXPECT_EQ(p.rules[1].owner, 1000u);
  EXPECT_EQ(p.rules[1].digest, 1u);
  EXPECT_EQ(p.rules[1].file, "/etc/*");
  EXPECT_EQ(p.rules[2].file, "*");  // the default
  EXPECT_EQ(p.rules[2].line, 3);
  EXPECT_EQ(parse_ok("allow call export=f").rules[0].file, "*");
}

TEST(Policy, ReopenKeyErrorsNameTheLine) {
  EXPECT_EQ(parse_error("allow map\nallow map file=/etc/*"), "test.policy line 2: file= belongs in 'reopen' rules");
  EXPECT_EQ(parse_error("deny call file=/etc/*"), "test.policy line 1: file= belongs in 'reopen' rules");
  EXPECT_EQ(parse_error("allow reopen\n\ndeny reopen export=f"), "test.policy line 3: export= belongs in 'call' rules");
  EXPECT_EQ(parse_error("allow reopen max-dirty-pages=5"),
            "test.policy line 1: max-dirty-pages= belongs in 'allow map' rules");
  EXPECT_EQ(parse_error("allow reopen max-mapped-bytes=5"),
            "test.policy line 1: max-mapped-bytes= belongs in 'allow map' rules");
  EXPECT_EQ(parse_error("deny reopen file=/a file=/b"), "test.policy line 1: file= given twice");
  EXPECT_EQ(parse_error("deny reopen file=etc/*"),
            "test.policy line 1: file= is matched against absolute paths: start it with '/' or '*', e.g. file=/etc/*");
  EXPECT_EQ(parse_error("deny reopen file"), "test.policy line 1: expected key=value, found 'file'");
  EXPECT_EQ(parse_error("deny reopen owner=bob"), "test.policy line 1: owner 'bob' is neither a uid nor a known user");
  EXPECT_EQ(parse_error("deny reopened"),
            "test.policy line 1: expected 'map', 'call', 'reopen' or 'spawn', found 'reopened'");
}

TEST(Policy, NoPolicyReopensEverything) {
  Decision d = decide_reopen(nullptr, kImage, "/etc/shadow");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, nullptr);
  EXPECT_TRUE(d.why.empty());
}

TEST(Policy, ReopenFirstMatchDecides) {
  Policy p = parse_ok(
      "allow map\n"
      "allow reopen file=/var/lib/app/*\n"
      "deny  reopen file=/etc/*\n"
      "allow reopen file=/etc/hosts\n"  // too late: line 3 decides first
      "deny  reopen file=/var/**\n");
  Decision d = decide_reopen(&p, kImage, "/var/lib/app/db.sqlite");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, &p.rules[1]);
  d = decide_reopen(&p, kImage, "/etc/hosts");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, &p.rules[2]);
  EXPECT_EQ(d.why, "denied by test.policy line 3 (deny reopen file=/etc/*)");
  d = decide_reopen(&p, kImage, "/var/log/app.log");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.why, "denied by test.policy line 5 (deny reopen file=/var/**)");
  // `*` does not cross `/`: a file deeper down is not one of line 2's.
  d = decide_reopen(&p, kImage, "/var/lib/app/data/db.sqlite");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, &p.rules[4]);
  // A working directory is checked like any other path: /var/lib/app/* does
  // not match the directory /var/lib/app itself.
  d = decide_reopen(&p, kImage, "/var/lib/app");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, &p.rules[4]);
}

TEST(Policy, ReopenDefaultsToAllow) {
  // No reopen rule matches: allowed, also with a map-only policy.
  Policy p = parse_ok(
      "allow map path=/opt/images/*\n"
      "deny call export=*\n"
      "deny reopen file=/etc/*\n");
  Decision d = decide_reopen(&p, kImage, "/srv/data/x.bin");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, nullptr);
  EXPECT_TRUE(d.why.empty());
  Policy map_only = parse_ok("allow map path=/opt/images/*\n");
  EXPECT_TRUE(decide_reopen(&map_only, kImage, "/etc/passwd").allowed);
  // Map and call rules never decide reopens, and reopen rules never decide maps or calls.
  Policy deny_all = parse_ok("deny reopen file=*\nallow map\n");
  EXPECT_FALSE(decide_reopen(&deny_all, kImage, "/").allowed);
  EXPECT_TRUE(decide_map(&deny_all, kImage).allowed);
  EXPECT_EQ(decide_map(&deny_all, kImage).rule, &deny_all.rules[1]);
  EXPECT_TRUE(decide_call(&deny_all, kImage, "count", false).allowed);
  Policy allow_reopen_only = parse_ok("allow reopen\n");
  EXPECT_FALSE(decide_map(&allow_reopen_only, kImage).allowed);
}

TEST(Policy, ReopenRulesMatchTheImage) {
  Policy p = parse_ok(
      "allow reopen digest=0x5b472d61229ed6a5 file=/etc/app.conf\n"
      "deny  reopen path=/tmp/*.img file=/etc/*\n"
      "deny  reopen owner=alice file=/root/**\n"
      "deny  reopen file=/home/**\n");
  const ImageFacts in_tmp{"/tmp/evil.img", 0, 7};
  EXPECT_FALSE(decide_reopen(&p, in_tmp, "/etc/passwd").allowed);
  EXPECT_EQ(decide_reopen(&p, in_tmp, "/etc/passwd").rule, &p.rules[1]);
  EXPECT_TRUE(decide_reopen(&p, kImage, "/etc/passwd").allowed);  // not under /tmp
  // By digest: this exact image may reopen /etc/app.conf, wherever it is.
  const ImageFacts same_in_tmp{"/tmp/cities.img", 0, kImage.digest};
  EXPECT_EQ(decide_reopen(&p, same_in_tmp, "/etc/app.conf").rule, &p.rules[0]);
  EXPECT_FALSE(decide_reopen(&p, in_tmp, "/etc/app.conf").allowed);
  // By owner: kImage is alice's.
  EXPECT_FALSE(decide_reopen(&p, kImage, "/root/.ssh/id").allowed);
  EXPECT_TRUE(decide_reopen(&p, in_tmp, "/root/.ssh/id").allowed);
  // No image keys: every image.
  EXPECT_FALSE(decide_reopen(&p, kImage, "/home/alice/notes").allowed);
  EXPECT_FALSE(decide_reopen(&p, in_tmp, "/home/alice/notes").allowed);
}

// The pattern language (docs/policy.md): `*` within one component, `**`
// any depth, `.` `..` and empty components only literally.
TEST(Policy, PathPatternsDoNotCrossSlashesOrDotDot) {
  EXPECT_TRUE(path_glob("/opt/*.img", "/opt/a.img"));
  EXPECT_FALSE(path_glob("/opt/*.img", "/opt/sub/a.img"));
  EXPECT_FALSE(path_glob("/opt/*", "/opt"));
  EXPECT_FALSE(path_glob("/opt/*", "/opt/"));  // a trailing / is an empty component
  EXPECT_FALSE(path_glob("/opt/*/x", "/opt//x"));
  EXPECT_TRUE(path_glob("/opt/**", "/opt"));
  EXPECT_TRUE(path_glob("/opt/**", "/opt/a/b/c.img"));
  EXPECT_TRUE(path_glob("/opt/**/x.img", "/opt/x.img"));
  EXPECT_TRUE(path_glob("/opt/**/x.img", "/opt/a/b/x.img"));
  EXPECT_FALSE(path_glob("/opt/**/x.img", "/opt/a/b/y.img"));
  EXPECT_TRUE(path_glob("**/x.img", "/a/b/x.img"));
  EXPECT_TRUE(path_glob("*", "/anything/../at/all"));  // `*` alone: every path (the default)
  EXPECT_TRUE(path_glob("/opt/a**b", "/opt/axyzb"));   // ** inside a component is a *
  EXPECT_FALSE(path_glob("/opt/a**b", "/opt/ax/yb"));
  // `..` and `.` never match a wildcard, at any depth.
  EXPECT_FALSE(path_glob("/srv/allowed/*", "/srv/allowed/.."));
  EXPECT_FALSE(path_glob("/srv/allowed/*/*/deep.img", "/srv/allowed/../L/deep.img"));
  EXPECT_FALSE(path_glob("/srv/allowed/**", "/srv/allowed/../L/deep.img"));
  EXPECT_FALSE(path_glob("/srv/allowed/**", "/srv/allowed/./x"));
  EXPECT_FALSE(path_glob("/a/.*", "/a/.."));
  EXPECT_TRUE(path_glob("/a/.*", "/a/.hidden"));
  EXPECT_TRUE(path_glob("/a/../b", "/a/../b"));  // literally
  EXPECT_TRUE(path_glob("/a/?", "/a/b"));
  EXPECT_TRUE(path_glob("/a/[bc]", "/a/c"));
  // Many ** stay cheap.
  std::string many_stars, deep;
  for (int i = 0; i < 200; ++i) many_stars += "/**", deep += "/d";
  EXPECT_FALSE(path_glob(many_stars + "/x", deep + "/y"));
  EXPECT_TRUE(path_glob(many_stars + "/y", deep + "/y"));
}

// The fail-open of issue 14: `*` matching `../..` let a path that was not
// canonical walk out of the allowed directory.
TEST(Policy, MapPatternsDoNotWalkOutWithDotDot) {
  Policy p = parse_ok("allow map path=/srv/allowed/*\nallow map path=/srv/tree/**\n");
  EXPECT_TRUE(decide_map(&p, {"/srv/allowed/a.img", 0, 1}).allowed);
  EXPECT_FALSE(decide_map(&p, {"/srv/allowed/../L/deep.img", 0, 1}).allowed);
  EXPECT_FALSE(decide_map(&p, {"/srv/allowed/sub/a.img", 0, 1}).allowed);
  EXPECT_TRUE(decide_map(&p, {"/srv/tree/a/b/c.img", 0, 1}).allowed);
  EXPECT_FALSE(decide_map(&p, {"/srv/tree/../../etc/x.img", 0, 1}).allowed);
}

TEST(Policy, Utf8IsWelcomeControlCharactersAreNamed) {
  Policy p = parse_ok("# Größe der Bilder ✓ — ünïcödé\nallow map path=/opt/bilder/größe/*  # ok\n");
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].path, "/opt/bilder/größe/*");
  EXPECT_TRUE(decide_map(&p, {"/opt/bilder/größe/a.img", 0, 1}).allowed);
  EXPECT_EQ(parse_error("allow map\r\n"),
            "test.policy line 1: carriage return (CRLF line end?) at column 10: save the file with LF line ends");
  EXPECT_EQ(parse_error("# fine\ndeny map # \x1b[31m red\n"),
            "test.policy line 2: control character 0x1b at column 12");
  EXPECT_EQ(parse_error("deny map # \x7f"), "test.policy line 1: control character 0x7f at column 12");
  EXPECT_EQ(parse_error("deny map # \xff"),
            "test.policy line 1: byte 0xff at column 12 is not part of a printable UTF-8 character");
  EXPECT_EQ(parse_error("deny map # \xc3"),  // cut short
            "test.policy line 1: byte 0xc3 at column 12 is not part of a printable UTF-8 character");
  EXPECT_EQ(parse_error("deny map # \xc2\x9b"),  // U+009B, a terminal's CSI
            "test.policy line 1: byte 0xc2 at column 12 is not part of a printable UTF-8 character");
  EXPECT_EQ(parse_error("deny map # \xc0\xaf"),  // overlong '/'
            "test.policy line 1: byte 0xc0 at column 12 is not part of a printable UTF-8 character");
}

TEST(Policy, RuleNamingADigest) {
  Policy p = parse_ok("allow map path=/opt/*\nallow call digest=0x5 export=admin\ndeny reopen digest=0x7\n");
  EXPECT_EQ(rule_naming_digest(&p, 5), &p.rules[1]);
  EXPECT_EQ(rule_naming_digest(&p, 7), &p.rules[2]);
  EXPECT_EQ(rule_naming_digest(&p, 6), nullptr);
  EXPECT_EQ(rule_naming_digest(nullptr, 5), nullptr);
}

TEST(Policy, ParsesSpawnRules) {
  Policy p = parse_ok(
      "allow map\n"
      "allow spawn path=/opt/images/*.img owner=alice digest=0x5b472d61229ed6a5   # the report service\n"
      "deny  spawn\n");
  ASSERT_EQ(p.rules.size(), 3u);
  EXPECT_EQ(p.rules[1].kind, RuleKind::Spawn);
  EXPECT_TRUE(p.rules[1].allow);
  EXPECT_EQ(p.rules[1].path, "/opt/images/*.img");
  EXPECT_EQ(p.rules[1].owner, 1000u);
  EXPECT_EQ(p.rules[1].digest, 0x5b472d61229ed6a5u);
  EXPECT_EQ(p.rules[1].line, 2);
  EXPECT_EQ(p.rules[1].text, "allow spawn path=/opt/images/*.img owner=alice digest=0x5b472d61229ed6a5");
  EXPECT_EQ(p.rules[2].kind, RuleKind::Spawn);
  EXPECT_FALSE(p.rules[2].allow);
  EXPECT_EQ(p.rules[2].path, "*");
  EXPECT_EQ(rule_naming_digest(&p, 0x5b472d61229ed6a5), &p.rules[1]);  // pins the image as other digest rules
}

TEST(Policy, SpawnKeyErrorsNameTheLine) {
  EXPECT_EQ(parse_error("allow map\nallow spawn export=f"), "test.policy line 2: export= belongs in 'call' rules");
  EXPECT_EQ(parse_error("deny spawn file=/bin/*"), "test.policy line 1: file= belongs in 'reopen' rules");
  EXPECT_EQ(parse_error("allow spawn max-dirty-pages=5"),
            "test.policy line 1: max-dirty-pages= belongs in 'allow map' rules");
  EXPECT_EQ(parse_error("allow spawn max-mapped-bytes=5"),
            "test.policy line 1: max-mapped-bytes= belongs in 'allow map' rules");
  EXPECT_EQ(parse_error("allow spawn path=bin/*"),
            "test.policy line 1: path= is matched against the image's absolute path: start it with '/' or '*', e.g. "
            "path=/opt/images/*");
  EXPECT_EQ(parse_error("deny spawn owner=1 owner=2"), "test.policy line 1: owner= given twice");
  EXPECT_EQ(parse_error("deny spawns"),
            "test.policy line 1: expected 'map', 'call', 'reopen' or 'spawn', found 'spawns'");
}

// Without a spawn rule that matches (or without a policy) the image's
// declaration decides.
TEST(Policy, SpawnDeclarationDecidesWithoutARule) {
  Decision d = decide_spawn(nullptr, kImage, true);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.rule, nullptr);
  EXPECT_TRUE(d.why.empty());
  d = decide_spawn(nullptr, kImage, false);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, nullptr);
  EXPECT_NE(d.why.find("does not declare that it starts programs"), std::string::npos) << d.why;
  EXPECT_NE(d.why.find("allow spawn path=/opt/images/cities.img"), std::string::npos) << d.why;
  // Rules of other kinds and spawn rules for other images do not decide.
  Policy p = parse_ok(
      "allow map\n"
      "deny call\n"
      "deny reopen file=*\n"
      "deny spawn path=/srv/*\n"
      "allow spawn owner=0\n"
      "deny spawn digest=0x1\n");
  EXPECT_TRUE(decide_spawn(&p, kImage, true).allowed);
  d = decide_spawn(&p, kImage, false);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.rule, nullptr);
  EXPECT_NE(d.why.find("no rule of test.policy allows it"), std::string::npos) << d.why;
}

TEST(Policy, SpawnFirstMatchingRuleDecides) {
  Policy p = parse_ok(
      "allow map\n"
      "deny  spawn path=/opt/images/cities.img\n"
      "allow spawn path=/opt/images/*\n");
  Decision d = decide_spawn(&p, kImage, true);  // a deny rule wins over the declaration
  EXPECT_FALSE(d.allowed);
  ASSERT_NE(d.rule, nullptr);
  EXPECT_EQ(d.rule->line, 2);
  EXPECT_EQ(d.why, "denied by test.policy line 2 (deny spawn path=/opt/images/cities.img)");
  const ImageFacts other{"/opt/images/roads.img", 1000, 7};
  d = decide_spawn(&p, other, false);  // an allow rule allows an image that does not declare it
  EXPECT_TRUE(d.allowed);
  ASSERT_NE(d.rule, nullptr);
  EXPECT_EQ(d.rule->line, 3);
  Policy by_digest = parse_ok("allow spawn digest=0x5b472d61229ed6a5\ndeny spawn\n");
  EXPECT_TRUE(decide_spawn(&by_digest, kImage, false).allowed);
  EXPECT_FALSE(decide_spawn(&by_digest, other, true).allowed);
  Policy by_owner = parse_ok("deny spawn owner=alice\n");
  EXPECT_FALSE(decide_spawn(&by_owner, kImage, true).allowed);
  EXPECT_TRUE(decide_spawn(&by_owner, {"/opt/x.img", 0, 1}, true).allowed);
}

// Paths go into messages escaped: a newline cannot forge a log line.
TEST(Policy, PathsInMessagesAreEscaped) {
  EXPECT_EQ(sys::printable_path("/tmp/a\nsubctx: all fine\x1b[0m"), "/tmp/a\\x0asubctx: all fine\\x1b[0m");
  EXPECT_EQ(sys::printable_path("/opt/größe/a b.img"), "/opt/größe/a b.img");
  EXPECT_EQ(sys::printable_path("/a\\b\xff"), "/a\\x5cb\\xff");
  Policy p = parse_ok("allow map path=/nowhere/*\n");
  const Decision d = decide_map(&p, {"/tmp/evil\nimage.img", 0, 1});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.why.find('\n'), std::string::npos) << d.why;
  EXPECT_NE(d.why.find("allow map path=/tmp/evil\\x0aimage.img"), std::string::npos) << d.why;
  const Decision c = decide_call(&p, {"/tmp/evil\nimage.img", 0, 1}, "admin\n", true);
  EXPECT_EQ(c.why.find('\n'), std::string::npos) << c.why;
}

}  // namespace
}  // namespace subctx::policy
