// Limits: subcontexts per client, image size, exports per image, segments
// per image.  Defaults, the API (Matchmaker::set_limits, sbc_set_limit) and
// the SUBCTX_MAX_* environment variables read at init; LimitExceeded names
// the limit and its value.
#include "support/e2e_test.hpp"

namespace e2e {
namespace {

using subctx::Errc;

class Limits : public E2eTest {
 protected:
  LimitsGuard guard_;
};

// `e2e_worker_client limits IMAGE` with env: the limits it sees and the map.
ProcessResult limits_client(const std::string& image, std::vector<std::string> env) {
  SpawnOptions o;
  o.env = std::move(env);
  return run({paths::kWorkerClient, "limits", image}, o);
}

TEST_F(Limits, Defaults) {
  ProcessResult r = limits_client(basic_image(), {});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out,
            "subcontexts=64\nimage_size=68719476736\nexports=4096\nsegments=4096\n"
            "map ok square=81\n");
  const subctx::Limits d;
  EXPECT_EQ(d.subcontexts, 64u);
  EXPECT_EQ(d.image_size, uint64_t{64} << 30);
  EXPECT_EQ(d.exports, 4096u);
  EXPECT_EQ(d.segments, 4096u);
}

TEST_F(Limits, EnvironmentVariablesAreReadAtInit) {
  const uint64_t nsegs = read_layout(basic_image()).segments().size();
  struct Case {
    std::string var, value, shown, words;
  };
  const std::vector<Case> cases = {
      {"SUBCTX_MAX_SEGMENTS", std::to_string(nsegs - 1), "segments=" + std::to_string(nsegs - 1),
       "limit 'segments per image' (SUBCTX_MAX_SEGMENTS) is " + std::to_string(nsegs - 1)},
      {"SUBCTX_MAX_EXPORTS", "3", "exports=3",
       "image has 4 exports; limit 'exports per image' (SUBCTX_MAX_EXPORTS) is 3"},
      {"SUBCTX_MAX_IMAGE_SIZE", "1048576", "image_size=1048576",
       "limit 'image size' (SUBCTX_MAX_IMAGE_SIZE) is 1048576"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.var);
    ProcessResult r = limits_client(basic_image(), {c.var + "=" + c.value});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_NE(r.out.find(c.shown + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("map error " + std::to_string(SBC_E_LIMIT) + ": "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.words), std::string::npos) << r.out;
  }
  // At the limit exactly, the image maps.
  ProcessResult at =
      limits_client(basic_image(), {"SUBCTX_MAX_SEGMENTS=" + std::to_string(nsegs), "SUBCTX_MAX_EXPORTS=4"});
  ASSERT_TRUE(at.ok()) << at.describe();
  EXPECT_NE(at.out.find("map ok square=81"), std::string::npos) << at.out;
}

TEST_F(Limits, SubcontextsPerClientFromTheEnvironment) {
  SpawnOptions o;
  o.env = {"SUBCTX_MAX_SUBCONTEXTS=1"};
  // The peek mode maps two images: the second is refused.
  ProcessResult r = run({paths::kWorkerClient, "peek", basic_image(), feature_image()}, o);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("FAIL LimitExceeded"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("limit 'subcontexts per client' (SUBCTX_MAX_SUBCONTEXTS) is 1"), std::string::npos) << r.err;
  ProcessResult shown = limits_client(basic_image(), {"SUBCTX_MAX_SUBCONTEXTS=1"});
  EXPECT_NE(shown.out.find("subcontexts=1\n"), std::string::npos) << shown.out;
}

// A malformed value is an error naming it (issue 14: "1k" was ignored and
// the default used): its limit keeps the default, and every map fails with
// InvalidArgument until it is fixed.
TEST_F(Limits, InvalidEnvironmentValueFailsEveryMap) {
  ProcessResult r = limits_client(basic_image(), {"SUBCTX_MAX_IMAGE_SIZE=1k", "SUBCTX_MAX_SEGMENTS=0"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_NE(r.out.find("image_size=68719476736\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("segments=4096\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("map error " + std::to_string(SBC_E_INVALID_ARGUMENT) + ": cannot map image " + basic_image() +
                       ": SUBCTX_MAX_IMAGE_SIZE=1k is not a number from 1 to 18446744073709551615; "
                       "SUBCTX_MAX_SEGMENTS=0 is not a number from 1 to 18446744073709551615; fix or unset it"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.err, "") << "reported by the map, not printed";
}

TEST_F(Limits, SetLimitsApiEachLimit) {
  const uint64_t nsegs = read_layout(basic_image()).segments().size();
  const subctx::Limits saved = mm().limits();
  auto with = [&](auto change) {
    subctx::Limits l = saved;
    change(l);
    mm().set_limits(l);
  };
  with([&](subctx::Limits& l) { l.segments = nsegs - 1; });
  expect_error([&] { mm().request_map(basic_image()); }, Errc::Limit,
               {"segments per image", "is " + std::to_string(nsegs - 1), std::to_string(nsegs) + " segments"});
  with([&](subctx::Limits& l) { l.exports = 2; });
  expect_error([&] { mm().request_map(basic_image()); }, Errc::Limit, {"exports per image", "is 2", "4 exports"});
  with([&](subctx::Limits& l) { l.image_size = 4096; });
  expect_error([&] { mm().request_map(basic_image()); }, Errc::Limit, {"'image size'", "is 4096"});
  with([&](subctx::Limits& l) { l.subcontexts = 1; });
  subctx::Subcontext one = mm().request_map(basic_image());
  expect_error([&] { mm().request_map(feature_image()); }, Errc::Limit,
               {"1 subcontexts are mapped", "'subcontexts per client'", "is 1"});
  mm().unmap(one);
  subctx::Subcontext f = mm().request_map(feature_image());  // room again
  mm().unmap(f);
  mm().set_limits(saved);
  expect_valid_map_works();
}

TEST_F(Limits, CSetAndGetLimit) {
  const int ids[] = {SBC_LIMIT_SUBCONTEXTS, SBC_LIMIT_IMAGE_SIZE, SBC_LIMIT_EXPORTS, SBC_LIMIT_SEGMENTS};
  for (int id : ids) {
    ASSERT_EQ(sbc_set_limit(id, 1000 + id), 0) << sbc_last_error();
    uint64_t v = 0;
    ASSERT_EQ(sbc_get_limit(id, &v), 0);
    EXPECT_EQ(v, 1000u + id);
  }
  const subctx::Limits l = mm().limits();
  EXPECT_EQ(l.subcontexts, 1000u);
  EXPECT_EQ(l.image_size, 1001u);
  EXPECT_EQ(l.exports, 1002u);
  EXPECT_EQ(l.segments, 1003u);

  mm().set_limits(subctx::Limits{});
  ASSERT_EQ(sbc_set_limit(SBC_LIMIT_EXPORTS, 1), 0);
  EXPECT_EQ(sbc_request_map(basic_image().c_str()), -SBC_E_LIMIT);
  EXPECT_NE(std::string(sbc_last_error()).find("(SUBCTX_MAX_EXPORTS) is 1"), std::string::npos) << sbc_last_error();
  EXPECT_EQ(sbc_set_limit(SBC_LIMIT_SEGMENTS, 0), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_set_limit(17, 5), -SBC_E_INVALID_ARGUMENT);
  EXPECT_EQ(sbc_get_limit(SBC_LIMIT_SEGMENTS, nullptr), -SBC_E_INVALID_ARGUMENT);
  expect_error([&] { mm().set_limits(subctx::Limits{0, 1, 1, 1}); }, Errc::InvalidArgument, {"positive"});
  // At most as many subcontexts as the signal handlers' table holds.
  EXPECT_EQ(sbc_set_limit(SBC_LIMIT_SUBCONTEXTS, 1025), -SBC_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sbc_last_error()).find("at most 1024 subcontexts"), std::string::npos) << sbc_last_error();
  EXPECT_EQ(sbc_set_limit(SBC_LIMIT_SUBCONTEXTS, 1024), 0) << sbc_last_error();
  mm().set_limits(subctx::Limits{});
}

}  // namespace
}  // namespace e2e
