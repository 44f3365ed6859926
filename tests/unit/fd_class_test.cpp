// The descriptor namespace's classification of every x86-64 system call
// (src/fault/fd_class.cpp): each known call in exactly one class, the
// translated ones either emulated or described by a spec, and the names
// rules use agree with the table.
#include <gtest/gtest.h>
#include <sys/syscall.h>

#include <string>

#include "common/syscall_names.hpp"
#include "fault/fd_spec.hpp"
#include "fault/fd_syscalls.hpp"

namespace {

using subctx::fault::FdClass;
using subctx::fault::fd_class;
using subctx::fault::plain_fd_spec;

// Numbers the kernel never gave a system call on x86-64 (336..423).
bool unassigned(long nr) { return nr > 335 && nr < 424; }

TEST(FdClass, EveryNamedSystemCallIsClassified) {
  for (long nr = 0; nr < subctx::kMaxRuleSyscall; ++nr) {
    const std::string name = subctx::syscall_name(nr);
    if (name.empty() || name == "uretprobe") continue;
    EXPECT_NE(fd_class(nr), FdClass::Unknown) << name << " (" << nr << ") is in no list of fd_class.cpp";
  }
}

TEST(FdClass, NumbersWithoutASystemCallAreUnknown) {
  for (long nr : {336L, 400L, 423L, 470L, 511L, 512L, -1L, 100000L}) {
    if (nr < subctx::kMaxRuleSyscall && !std::string(subctx::syscall_name(nr)).empty()) continue;
    EXPECT_EQ(fd_class(nr), FdClass::Unknown) << nr;
  }
  for (long nr = 0; nr < 512; ++nr)
    if (unassigned(nr)) {
      EXPECT_EQ(fd_class(nr), FdClass::Unknown) << nr;
    }
}

TEST(FdClass, DescriptorArgumentsAreWhereTheKernelReadsThem) {
  const auto* read = plain_fd_spec(SYS_read);
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(read->fds, 1);
  EXPECT_FALSE(read->new_fd);
  const auto* splice = plain_fd_spec(SYS_splice);
  ASSERT_NE(splice, nullptr);
  EXPECT_EQ(splice->fds, 1 | 4);  // fd_in, fd_out
  const auto* linkat = plain_fd_spec(SYS_linkat);
  ASSERT_NE(linkat, nullptr);
  EXPECT_EQ(linkat->dirfds, 1 | 4);  // olddirfd, newdirfd
  const auto* symlinkat = plain_fd_spec(SYS_symlinkat);
  ASSERT_NE(symlinkat, nullptr);
  EXPECT_EQ(symlinkat->dirfds, 2);  // target, newdirfd, linkpath
  const auto* socket = plain_fd_spec(SYS_socket);
  ASSERT_NE(socket, nullptr);
  EXPECT_TRUE(socket->new_fd);
  EXPECT_EQ(socket->cloexec_arg, 1);
  const auto* mkdirat = plain_fd_spec(SYS_mkdirat);
  ASSERT_NE(mkdirat, nullptr);
  EXPECT_EQ(mkdirat->mode_arg, 2);
}

TEST(FdClass, EmulatedCallsHaveNoPlainSpec) {
  for (long nr : {SYS_open, SYS_openat, SYS_close, SYS_dup2, SYS_fcntl, SYS_poll, SYS_select, SYS_recvmsg, SYS_getcwd,
                  SYS_chdir, SYS_umask, SYS_ioctl, SYS_close_range, SYS_openat2}) {
    EXPECT_EQ(fd_class(nr), FdClass::Translated) << subctx::syscall_name(nr);
    EXPECT_EQ(plain_fd_spec(nr), nullptr) << subctx::syscall_name(nr);
  }
}

TEST(FdClass, CallsWhoseDescriptorsCannotBeFollowedAreUntranslatable) {
  for (long nr : {SYS_io_uring_setup, SYS_io_submit, SYS_bpf, SYS_fsopen, SYS_open_tree, SYS_kcmp, SYS_seccomp,
                  SYS_execveat, SYS_landlock_create_ruleset})
    EXPECT_EQ(fd_class(nr), FdClass::Untranslatable) << subctx::syscall_name(nr);
  for (long nr : {SYS_getpid, SYS_futex, SYS_mmap, SYS_clock_gettime, SYS_exit_group})
    EXPECT_EQ(fd_class(nr), FdClass::None) << subctx::syscall_name(nr);
}

TEST(FdClass, RulesNameEverySystemCall) {
  EXPECT_EQ(subctx::syscall_number("alarm"), SYS_alarm);
  EXPECT_EQ(subctx::syscall_number("timer_create"), SYS_timer_create);
  EXPECT_EQ(subctx::syscall_number("io_uring_setup"), SYS_io_uring_setup);
  EXPECT_EQ(subctx::syscall_number("fchmodat2"), 452);
  EXPECT_STREQ(subctx::syscall_name(SYS_close_range), "close_range");
}

}  // namespace
