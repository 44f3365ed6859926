// The identity note: its encoding, its round trip, and the reader's checks
// of everything a client acts on (the paths it opens, the numbers it
// installs).  Hostile notes are made with the real writer from a modified
// ImageInfo (the writer does not validate), so the digests are valid and
// only the intended check can fire.
#include <fcntl.h>

#include <csignal>
#include <functional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "image/bytes.hpp"
#include "image/reader.hpp"
#include "image/writer.hpp"
#include "subctx/error.hpp"
#include "test_image.hpp"

namespace subctx::test {
namespace {

using image::FdKind;
using image::FdRecord;
using image::ImageInfo;

constexpr char kWhat[] = "id.img";

TestImage sample() { return build_image(sample_info()); }

ImageInfo read(const TestImage& t) {
  return image::read_image(image::MemorySource(t.bytes.data(), t.bytes.size()), kWhat);
}

TestImage sample_with(const std::function<void(ImageInfo&)>& change) {
  ImageInfo info = sample_info();
  change(info);
  return build_image(std::move(info));
}

// Expects BadImage naming the image and containing `want`.
::testing::AssertionResult Refused(const TestImage& t, std::string_view want) {
  try {
    read(t);
    return ::testing::AssertionFailure() << "read_image accepted the image";
  } catch (const BadImage& e) {
    const std::string msg = e.what();
    if (msg.rfind(std::string(kWhat) + ": ", 0) != 0) return ::testing::AssertionFailure() << "no image name: " << msg;
    if (msg.find(want) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks \"" << want << "\": " << msg;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "wrong error: " << e.what();
  }
}

::testing::AssertionResult Refused(const std::function<void(ImageInfo&)>& change, std::string_view want) {
  return Refused(sample_with(change), want);
}

// ---------------------------------------------------------------- encoding

TEST(ImageIdentity, DescriptorLayoutIsAsDocumented) {
  TestImage t = sample();
  const auto notes = read_notes(t);
  const RawNote* note = nullptr;
  for (const auto& n : notes)
    if (n.type == image::kNoteIdentity) note = &n;
  ASSERT_NE(note, nullptr);
  image::ByteReader r(note->desc.data(), note->desc.size());
  EXPECT_EQ(r.u32(), 027u);   // umask
  EXPECT_EQ(r.u32(), 4242u);  // pid
  EXPECT_EQ(r.str(100), "/srv/data");
  ASSERT_EQ(r.u32(), 6u);
  auto skip_record = [&] {
    std::vector<uint8_t> fixed(4 + 1 + 1 + 4 + 8 + 4);
    r.raw(fixed.data(), fixed.size());
    r.str(100);
  };
  skip_record();
  skip_record();
  // fd 5: {u32 number, u8 kind, u8 dropped, u32 flags, u64 offset, u32 same_as, str path}
  EXPECT_EQ(r.u32(), 5u);
  EXPECT_EQ(r.u8(), static_cast<uint8_t>(FdKind::File));
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_EQ(r.u32(), 02102001u);
  EXPECT_EQ(r.u64(), 77u);
  EXPECT_EQ(r.u32(), 3u);
  EXPECT_EQ(r.str(100), "/srv/data/cities.db");
  for (int i = 0; i < 3; ++i) skip_record();
  EXPECT_EQ(r.u32(), 2u);  // signals: {u8 signal, u8 action}
  EXPECT_EQ(r.u8(), SIGPIPE);
  EXPECT_EQ(r.u8(), 1u);
  EXPECT_EQ(r.u8(), SIGXFSZ);
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
  // -1 (no sharing) is written as its 32 bits.
  EXPECT_EQ(t.get<uint32_t>(t.desc(image::kNoteIdentity) + 4 + 4 + 4 + 9 + 4 + 4 + 1 + 1 + 4 + 8), 0xffffffffu);
}

TEST(ImageIdentity, RoundTrip) {
  TestImage t = sample();
  const ImageInfo got = read(t);
  const auto& want = sample_identity();
  EXPECT_EQ(got.identity.cwd, want.cwd);
  EXPECT_EQ(got.identity.umask, want.umask);
  EXPECT_EQ(got.identity.pid, want.pid);
  ASSERT_EQ(got.identity.fds.size(), want.fds.size());
  for (size_t i = 0; i < want.fds.size(); ++i) {
    SCOPED_TRACE(i);
    const FdRecord &a = got.identity.fds[i], &b = want.fds[i];
    EXPECT_EQ(a.number, b.number);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.dropped, b.dropped);
    EXPECT_EQ(a.flags, b.flags);
    EXPECT_EQ(a.offset, b.offset);
    EXPECT_EQ(a.same_as, b.same_as);
    EXPECT_EQ(a.path, b.path);
  }
  ASSERT_EQ(got.identity.signals.size(), 2u);
  EXPECT_EQ(got.identity.signals[0].signal, SIGPIPE);
  EXPECT_EQ(got.identity.signals[0].action, 1);
}

TEST(ImageIdentity, EmptyIdentityAndLimitsAccepted) {
  const ImageInfo got = read(build_image(small_info()));
  EXPECT_EQ(got.identity.cwd, "/");
  EXPECT_TRUE(got.identity.fds.empty());
  EXPECT_TRUE(got.identity.signals.empty());
  const std::string longest = "/" + std::string(image::kMaxPathBytes - 1, 'p');
  EXPECT_NO_THROW(read(sample_with([&](ImageInfo& i) { i.identity.cwd = longest; })));
  EXPECT_NO_THROW(read(sample_with([&](ImageInfo& i) {
    i.identity.fds[0].path = longest;
    i.identity.fds[2].path = longest;
  })));
  EXPECT_NO_THROW(read(sample_with([](ImageInfo& i) { i.identity.fds.back().number = image::kMaxFds - 1; })));
  EXPECT_NO_THROW(read(sample_with([](ImageInfo& i) { i.identity.umask = 0777; })));
  // A dropped record's path is informational: anything within the bound.
  EXPECT_NO_THROW(read(sample_with([](ImageInfo& i) { i.identity.fds[4].path = std::string("a\0b", 3); })));
  // Every restorable device.
  for (const char* dev : image::kRestorableDevices)
    EXPECT_NO_THROW(read(sample_with([&](ImageInfo& i) { i.identity.fds[3].path = dev; }))) << dev;
}

TEST(ImageIdentity, FdKindNames) {
  const char* want[] = {"file", "directory", "char-device", "pipe", "socket", "eventfd", "memfd", "other"};
  for (uint8_t k = 0; k < 8; ++k) EXPECT_STREQ(image::fd_kind_name(static_cast<FdKind>(k)), want[k]);
  EXPECT_STREQ(image::fd_kind_name(static_cast<FdKind>(8)), "?");
  EXPECT_TRUE(image::fd_kind_restorable(FdKind::File));
  EXPECT_TRUE(image::fd_kind_restorable(FdKind::Directory));
  EXPECT_TRUE(image::fd_kind_restorable(FdKind::CharDevice));
  for (FdKind k : {FdKind::Pipe, FdKind::Socket, FdKind::Eventfd, FdKind::Memfd, FdKind::Other})
    EXPECT_FALSE(image::fd_kind_restorable(k));
}

// ---------------------------------------------------------------- hostile notes

TEST(ImageIdentity, RequiredFromVersion2) {
  TestImage t = sample();
  auto notes = read_notes(t);
  std::erase_if(notes, [](const RawNote& n) { return n.type == image::kNoteIdentity; });
  write_notes(t, notes);
  EXPECT_TRUE(Refused(t, "missing SUBCTX note 0x5343000b"));
}

TEST(ImageIdentity, DescriptorNumbers) {
  using I = ImageInfo;
  EXPECT_TRUE(Refused([](I& i) { std::swap(i.identity.fds[0], i.identity.fds[1]); },
                      "descriptor record 1 (fd 3): numbers are not strictly increasing (the record before is fd 4)"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[1].number = 3; }, "(fd 3): numbers are not strictly increasing"));
  for (int32_t n : {-1, 0, 1, 2}) {
    SCOPED_TRACE(n);
    EXPECT_TRUE(Refused([&](I& i) { i.identity.fds[0].number = n; }, "number outside 3..1023"));
  }
  for (int32_t n : {1024, 65536, INT32_MAX}) {
    SCOPED_TRACE(n);
    EXPECT_TRUE(Refused([&](I& i) { i.identity.fds.back().number = n; }, "number outside 3..1023"));
  }
  EXPECT_TRUE(Refused(
      [](I& i) {
        i.identity.fds.clear();
        for (int32_t n = 0; n < 1025; ++n) i.identity.fds.push_back(FdRecord{n + 3, FdKind::Pipe, true, 0, 0, -1, ""});
      },
      "identity note lists 1025 descriptors (at most 1024)"));
}

TEST(ImageIdentity, PathsAClientOpens) {
  using I = ImageInfo;
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].path = "data/cities.db"; },
                      "descriptor record 0 (fd 3): the path \"data/cities.db\" is not absolute"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[1].path = ""; }, "(fd 4): the path is empty"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].path = std::string("/srv/x\0/etc/passwd", 18); },
                      "(fd 3): the path \"/srv/x\\x00/etc/passwd\" holds a NUL byte"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].path = "/" + std::string(image::kMaxPathBytes, 'p'); },
                      "(fd 3): the path is 4097 bytes (at most 4096)"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[4].path = std::string(image::kMaxPathBytes + 1, 'p'); },
                      "(fd 7): the path is 4097 bytes (at most 4096)"));  // dropped ones too
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[3].path = "/dev/tty"; },
                      "(fd 6): character device \"/dev/tty\" is not one that is reopened"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[3].path = "/dev/nullx"; }, "is not one that is reopened"));
}

TEST(ImageIdentity, KindsAndDroppedFlag) {
  using I = ImageInfo;
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].kind = static_cast<FdKind>(8); },
                      "descriptor record 0 (fd 3): unknown kind 8"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].kind = static_cast<FdKind>(255); }, "unknown kind 255"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[4].dropped = false; },
                      "descriptor record 4 (fd 7): pipe not marked dropped"));
  for (FdKind k : {FdKind::Socket, FdKind::Eventfd, FdKind::Memfd, FdKind::Other}) {
    SCOPED_TRACE(image::fd_kind_name(k));
    EXPECT_TRUE(Refused([&](I& i) { i.identity.fds[0].kind = k; },
                        std::string("(fd 3): ") + image::fd_kind_name(k) + " not marked dropped"));
  }
  // The dropped byte is 0 or 1: written as a bool, so patch it in the bytes.
  TestImage t = sample();
  const size_t dropped_at = t.desc(image::kNoteIdentity) + 4 + 4 + (4 + 9) + 4 + 4 + 1;
  ASSERT_EQ(t.bytes[dropped_at], 0);
  t.bytes[dropped_at] = 2;
  t.reseal();
  EXPECT_TRUE(Refused(t, "descriptor record 0 (fd 3): dropped flag 2 is neither 0 nor 1"));
}

TEST(ImageIdentity, SameAs) {
  using I = ImageInfo;
  const char* want = "same_as";
  // Later, missing, itself, other path, other kind, dropped, a chain.
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].same_as = 5; }, "(fd 3): same_as 5 is not an earlier"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[2].same_as = 8; }, want));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[2].same_as = 5; }, want));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[2].same_as = -2; }, want));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[2].same_as = 4; }, want));  // the directory: another path
  EXPECT_TRUE(Refused(
      [](I& i) {
        i.identity.fds[1].path = i.identity.fds[0].path;
        i.identity.fds[1].same_as = 3;
      },
      want));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[0].dropped = true; }, "(fd 5): same_as 3"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.fds[4].same_as = 3; }, "(fd 7): a dropped descriptor shares with fd 3"));
  EXPECT_TRUE(Refused(
      [](I& i) {
        FdRecord third = i.identity.fds[2];
        third.number = 8;
        third.same_as = 5;  // must name the first of the group, 3
        i.identity.fds.insert(i.identity.fds.begin() + 5, third);
      },
      "(fd 8): same_as 5"));
}

TEST(ImageIdentity, WorkingDirectoryUmaskPid) {
  using I = ImageInfo;
  EXPECT_TRUE(Refused([](I& i) { i.identity.cwd = "srv"; },
                      "identity: working directory: the path \"srv\" is not absolute"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.cwd = ""; }, "identity: working directory: the path is empty"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.cwd = std::string("/a\0", 3); },
                      "working directory: the path \"/a\\x00\" holds a NUL byte"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.cwd = "/" + std::string(image::kMaxPathBytes, 'c'); },
                      "working directory: the path is 4097 bytes (at most 4096)"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.umask = 01000; }, "identity: umask 01000 has bits outside 0777"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.umask = 0xffffffff; }, "has bits outside 0777"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.pid = 0; }, "identity: server pid 0 is not positive"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.pid = -1; }, "server pid -1 is not positive"));
}

TEST(ImageIdentity, Signals) {
  using I = ImageInfo;
  EXPECT_TRUE(Refused([](I& i) { i.identity.signals[0].signal = SIGKILL; },
                      "identity: disposition of signal 9: only SIGPIPE and SIGXFSZ are recorded"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.signals[0].signal = 200; }, "only SIGPIPE and SIGXFSZ"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.signals[1].action = 3; }, "disposition of signal 25: unknown action 3"));
  EXPECT_TRUE(Refused([](I& i) { i.identity.signals[1] = i.identity.signals[0]; },
                      "disposition of signal 13: recorded twice"));
  EXPECT_TRUE(Refused(
      [](I& i) {
        i.identity.signals.assign(9, {SIGPIPE, 0});
      },
      "identity note lists 9 signal dispositions (at most 8)"));
}

TEST(ImageIdentity, MalformedNote) {
  for (size_t extra : {size_t{1}, size_t{4}}) {
    TestImage t = sample();
    auto notes = read_notes(t);
    for (auto& n : notes)
      if (n.type == image::kNoteIdentity) n.desc.resize(n.desc.size() + extra, 0);
    write_notes(t, notes);
    EXPECT_TRUE(Refused(t, "identity note has trailing bytes"));
  }
  // A path length running past the note.
  TestImage t = sample();
  t.put<uint32_t>(t.desc(image::kNoteIdentity) + 8, 0x7fffffff);
  t.reseal();
  EXPECT_TRUE(Refused(t, "malformed identity note"));
  // A descriptor count larger than the records present.
  TestImage u = sample();
  u.put<uint32_t>(u.desc(image::kNoteIdentity) + 8 + 4 + 9, 7);
  u.reseal();
  EXPECT_TRUE(Refused(u, "malformed identity note"));
}

}  // namespace
}  // namespace subctx::test
