// The walk over a message's control data that finds the descriptors of its
// SCM_RIGHTS messages (src/fault/cmsg_rights.hpp), which the SIGSYS
// handler uses to translate descriptors sent (sendmsg, sendmmsg) and
// received (recvmsg, recvmmsg): the layouts the kernel writes, the order of
// the descriptors, other control messages skipped, padding, the first
// nonzero result, and control data that is truncated or malformed.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "fault/cmsg_rights.hpp"

namespace {

using subctx::fault::each_right;

// Control data built message by message, laid out as the kernel lays it
// out: each message at a CMSG_ALIGN boundary, its length CMSG_LEN(data).
struct Control {
  alignas(struct cmsghdr) unsigned char buf[1024] = {};
  size_t len = 0;

  // Appends a message and returns its offset; len grows by CMSG_SPACE
  // (the padding after the last message included, as the kernel reports).
  size_t add(int level, int type, const void* data, size_t n) {
    const size_t at = len;
    auto* h = reinterpret_cast<struct cmsghdr*>(buf + at);
    h->cmsg_len = CMSG_LEN(n);
    h->cmsg_level = level;
    h->cmsg_type = type;
    if (n) std::memcpy(buf + at + CMSG_LEN(0), data, n);
    len += CMSG_SPACE(n);
    return at;
  }
  size_t rights(std::vector<int> fds) { return add(SOL_SOCKET, SCM_RIGHTS, fds.data(), fds.size() * sizeof(int)); }
  struct cmsghdr* at(size_t offset) {
    return reinterpret_cast<struct cmsghdr*>(buf + offset);
  }
  int fd(size_t offset, size_t i) {
    int v;
    std::memcpy(&v, buf + offset + CMSG_LEN(0) + i * sizeof(int), sizeof v);
    return v;
  }
};

// Every descriptor each_right hands to its function, in order.
std::vector<int> walk(unsigned char* buf, size_t len) {
  std::vector<int> seen;
  EXPECT_EQ(each_right(buf, len,
                       [&](int* fd) -> long {
                         seen.push_back(*fd);
                         return 0;
                       }),
            0);
  return seen;
}
std::vector<int> walk(Control& c) { return walk(c.buf, c.len); }

// The same with libc's CMSG_FIRSTHDR / CMSG_NXTHDR, for comparison.
std::vector<int> libc_walk(unsigned char* buf, size_t len) {
  struct msghdr m {};
  m.msg_control = buf;
  m.msg_controllen = len;
  std::vector<int> seen;
  for (struct cmsghdr* h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int v;
      std::memcpy(&v, CMSG_DATA(h) + i * sizeof(int), sizeof v);
      seen.push_back(v);
    }
  }
  return seen;
}

TEST(CmsgRights, NoControlDataNoDescriptors) {
  Control c;
  EXPECT_EQ(walk(c), std::vector<int>{});
  EXPECT_EQ(walk(c.buf, sizeof(struct cmsghdr) - 1), std::vector<int>{});  // less than one header
  EXPECT_EQ(walk(nullptr, 0), std::vector<int>{});
}

TEST(CmsgRights, OneMessageEveryDescriptorInOrder) {
  Control c;
  c.rights({7, 3, 250});
  EXPECT_EQ(walk(c), (std::vector<int>{7, 3, 250}));
  EXPECT_EQ(walk(c), libc_walk(c.buf, c.len));
}

TEST(CmsgRights, TheFunctionRewritesTheDescriptorsInPlace) {
  // What translation does: subcontext numbers become real ones (sendmsg),
  // real ones the subcontext's (recvmsg), in the buffer itself.
  Control c;
  const size_t first = c.rights({0, 1, 2});
  const size_t second = c.rights({5});
  EXPECT_EQ(each_right(c.buf, c.len,
                       [](int* fd) -> long {
                         *fd += 100;
                         return 0;
                       }),
            0);
  EXPECT_EQ(c.fd(first, 0), 100);
  EXPECT_EQ(c.fd(first, 1), 101);
  EXPECT_EQ(c.fd(first, 2), 102);
  EXPECT_EQ(c.fd(second, 0), 105);
  // The headers are left alone.
  EXPECT_EQ(c.at(first)->cmsg_len, CMSG_LEN(3 * sizeof(int)));
  EXPECT_EQ(c.at(second)->cmsg_type, SCM_RIGHTS);
}

TEST(CmsgRights, MessagesAfterAnOddCountStartAtTheAlignedOffset) {
  // One descriptor: cmsg_len 20, the next header 4 bytes of padding later.
  Control c;
  const size_t first = c.rights({11});
  const size_t second = c.rights({12, 13, 14});
  const size_t third = c.rights({15, 16});
  EXPECT_EQ(c.at(first)->cmsg_len % alignof(struct cmsghdr), 4u);
  EXPECT_EQ(second, CMSG_SPACE(sizeof(int)));
  EXPECT_GT(third, second);
  EXPECT_EQ(walk(c), (std::vector<int>{11, 12, 13, 14, 15, 16}));
  EXPECT_EQ(walk(c), libc_walk(c.buf, c.len));
}

TEST(CmsgRights, OtherControlMessagesAreSkipped) {
  Control c;
  const struct ucred cred = {getpid(), getuid(), getgid()};
  c.add(SOL_SOCKET, SCM_CREDENTIALS, &cred, sizeof cred);  // 12 bytes of data: padding follows
  c.rights({4, 6});
  const int ttl = 64;
  c.add(SOL_IP, 2 /* IP_TTL */, &ttl, sizeof ttl);
  c.add(SOL_IP, SCM_RIGHTS, &ttl, sizeof ttl);  // SCM_RIGHTS's number at another level: not descriptors
  const struct timeval tv = {1, 2};
  c.add(SOL_SOCKET, SCM_TIMESTAMP, &tv, sizeof tv);
  c.rights({9});
  EXPECT_EQ(walk(c), (std::vector<int>{4, 6, 9}));
  EXPECT_EQ(walk(c), libc_walk(c.buf, c.len));
}

TEST(CmsgRights, AnEmptyRightsMessageHasNoDescriptors) {
  Control c;
  c.rights({});
  c.rights({8});
  EXPECT_EQ(walk(c), std::vector<int>{8});
}

TEST(CmsgRights, OnlyWholeDescriptorsCount) {
  // A length that ends partway into an int: the partial one is no descriptor.
  Control c;
  const size_t first = c.rights({21, 22});
  c.at(first)->cmsg_len = CMSG_LEN(sizeof(int) + 3);
  c.rights({23});
  // The next message still starts at CMSG_ALIGN(cmsg_len) (the same place here).
  EXPECT_EQ(walk(c), (std::vector<int>{21, 23}));
}

TEST(CmsgRights, StopsAtTheFirstNonzeroResult) {
  Control c;
  c.rights({1, 2, 3});
  c.rights({4});
  std::vector<int> seen;
  EXPECT_EQ(each_right(c.buf, c.len,
                       [&](int* fd) -> long {
                         seen.push_back(*fd);
                         return *fd == 2 ? -9 /* -EBADF */ : 0;
                       }),
            -9);
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  seen.clear();
  EXPECT_EQ(each_right(c.buf, c.len,
                       [&](int* fd) -> long {
                         seen.push_back(*fd);
                         return *fd == 4 ? 1 : 0;
                       }),
            1);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
}

TEST(CmsgRights, OnlyTheLengthGivenIsRead) {
  // recvmsg reports the control data it wrote in msg_controllen; what lies
  // past it is not looked at.
  Control c;
  c.rights({1});
  const size_t second = c.rights({2, 3});
  c.rights({4});
  EXPECT_EQ(walk(c.buf, second), std::vector<int>{1});
  // The last message without its padding (CMSG_LEN, not CMSG_SPACE).
  EXPECT_EQ(walk(c.buf, second + CMSG_LEN(2 * sizeof(int))), (std::vector<int>{1, 2, 3}));
  // A message longer than what is left (control data truncated: MSG_CTRUNC)
  // is dropped whole, and the walk ends there.
  EXPECT_EQ(walk(c.buf, second + CMSG_LEN(2 * sizeof(int)) - 1), std::vector<int>{1});
  EXPECT_EQ(walk(c.buf, second + sizeof(struct cmsghdr)), std::vector<int>{1});
}

TEST(CmsgRights, MalformedLengthsEndTheWalk) {
  // Control data of sendmsg comes from subcontext code: a header whose
  // length is shorter than a header, or runs past the end, ends the walk
  // (what follows is never read), and never loops.
  for (const size_t bad : {size_t{0}, size_t{1}, sizeof(struct cmsghdr) - 1, size_t{4096}, ~size_t{0}}) {
    SCOPED_TRACE(bad);
    Control c;
    c.rights({1, 2});
    const size_t broken = c.rights({3});
    c.rights({4});
    c.at(broken)->cmsg_len = bad;
    EXPECT_EQ(walk(c), (std::vector<int>{1, 2}));
  }
  // A bare header (no data) is a valid message with nothing in it.
  Control c;
  const size_t empty = c.rights({});
  EXPECT_EQ(c.at(empty)->cmsg_len, sizeof(struct cmsghdr));
  c.rights({5});
  EXPECT_EQ(walk(c), std::vector<int>{5});
}

TEST(CmsgRights, TheKernelsOwnControlData) {
  // Two descriptors sent over a socketpair with SO_PASSCRED on: the
  // receiver's control data holds SCM_CREDENTIALS and SCM_RIGHTS, as the
  // kernel laid them out; the walk finds the received descriptors, which
  // name the files sent.
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const int on = 1;
  ASSERT_EQ(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
  const int sent[2] = {open("/dev/null", O_RDONLY | O_CLOEXEC), open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  ASSERT_GE(sent[0], 0);
  ASSERT_GE(sent[1], 0);

  char byte = 'x';
  struct iovec iov = {&byte, 1};
  Control out;
  out.add(SOL_SOCKET, SCM_RIGHTS, sent, sizeof sent);
  struct msghdr m {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = out.buf;
  m.msg_controllen = out.len;
  ASSERT_EQ(sendmsg(sv[0], &m, 0), 1);

  Control in;
  struct msghdr r {};
  r.msg_iov = &iov;
  r.msg_iovlen = 1;
  r.msg_control = in.buf;
  r.msg_controllen = sizeof in.buf;
  ASSERT_EQ(recvmsg(sv[1], &r, MSG_CMSG_CLOEXEC), 1);
  EXPECT_EQ(r.msg_flags & MSG_CTRUNC, 0);
  const std::vector<int> got = walk(in.buf, r.msg_controllen);
  EXPECT_EQ(got, libc_walk(in.buf, r.msg_controllen));
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    struct stat a, b;
    ASSERT_EQ(fstat(sent[i], &a), 0);
    ASSERT_EQ(fstat(got[i], &b), 0);
    EXPECT_EQ(a.st_dev, b.st_dev) << i;
    EXPECT_EQ(a.st_ino, b.st_ino) << i;
    EXPECT_NE(got[i], sent[i]);
  }
  // The credentials came first: the rights were found past them.
  struct msghdr first {};
  first.msg_control = in.buf;
  first.msg_controllen = r.msg_controllen;
  ASSERT_NE(CMSG_FIRSTHDR(&first), nullptr);
  EXPECT_EQ(CMSG_FIRSTHDR(&first)->cmsg_type, SCM_CREDENTIALS);

  for (const int fd : got) close(fd);
  for (const int fd : sent) close(fd);
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
