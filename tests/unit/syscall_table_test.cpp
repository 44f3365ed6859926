// The default system call policy, written once (kSyscallDefaults,
// src/matchmaker/syscall_defaults.cpp), and what is made from it: each
// subcontext's action table (syscall_table.cpp) and the table in
// docs/containment.md.
#include <gtest/gtest.h>
#include <sys/syscall.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "common/syscall_names.hpp"
#include "fault/fd_syscalls.hpp"
#include "fault/syscalls.hpp"
#include "matchmaker/subcontext_state.hpp"
#include "matchmaker/syscall_table.hpp"
#include "subctx/error.hpp"

namespace {

using subctx::SyscallRule;
using subctx::fault::FdClass;
using subctx::fault::fd_class;
using namespace subctx::matchmaker;

// The handler's table as a subcontext has it.
using ActionTable = decltype(subctx::detail::SubcontextState::syscall_action);

ActionTable built(const std::vector<SyscallRule>& client_rules = {},
                  const std::vector<subctx::image::SyscallRuleRecord>& image_rules = {}) {
  ActionTable t{};
  build_syscall_table(t, "/images/test.img", image_rules, client_rules);
  return t;
}

// The table docs/containment.md has: from its header line to the first
// line that is not a table row.
std::string docs_table() {
  std::ifstream in(std::string(SUBCTX_SOURCE_DIR) + "/docs/containment.md");
  std::string line, table;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.starts_with("| system call of subcontext code |")) inside = true;
    if (inside && !line.starts_with("|")) break;
    if (inside) table += line + "\n";
  }
  return table;
}

TEST(SyscallDefaults, DocsTableIsThisTable) {
  const std::string made = syscall_defaults_markdown();
  EXPECT_EQ(docs_table(), made) << "docs/containment.md's table differs from kSyscallDefaults "
                                   "(src/matchmaker/syscall_defaults.cpp); the table it makes:\n"
                                << made;
}

// The test's own reading of a row, apart from syscall_table.cpp's: which
// numbers it covers and what code the handler gets.
bool covers(const SyscallDefaultRow& row, long nr) {
  switch (row.set) {
    case SyscallSet::Listed: return row.listed.contains(nr);
    case SyscallSet::X32: return false;  // bit 30: never an index of the table
    case SyscallSet::Translated: return fd_class(nr) == FdClass::Translated;
    case SyscallSet::Untranslatable: return fd_class(nr) == FdClass::Untranslatable || fd_class(nr) == FdClass::Unknown;
    case SyscallSet::Others: return fd_class(nr) == FdClass::None;
  }
  return false;
}

int16_t expected_code(const SyscallDefaultRow& row) {
  using namespace subctx::fault;
  switch (row.action) {
    case SyscallDefault::EndCall: return kEndCallExit;
    case SyscallDefault::Deny: return row.error;
    case SyscallDefault::SignalItself: return kSelfSignal;
    case SyscallDefault::TrackMemory: return kTrackMemory;
    case SyscallDefault::Sigreturn: return kSigreturn;
    case SyscallDefault::Descriptors: return kDescriptors;
    case SyscallDefault::Threads: return kThreads;
    case SyscallDefault::Children: return kChildren;
    case SyscallDefault::ClientProcess: return kClientProcess;
    case SyscallDefault::ThreadState: return kThreadState;
    case SyscallDefault::Allow:
    case SyscallDefault::Emulated:
    case SyscallDefault::DenyByArgument: return kAllow;
  }
  return -100;
}

TEST(SyscallDefaults, BuiltTableFollowsTheRowsForEveryNumber) {
  const ActionTable t = built();
  for (long nr = 0; nr < static_cast<long>(t.size()); ++nr) {
    const SyscallDefaultRow* decides = nullptr;
    for (const SyscallDefaultRow& row : syscall_defaults())
      if (covers(row, nr)) {
        decides = &row;
        break;
      }
    ASSERT_NE(decides, nullptr) << nr << " is in no row";
    EXPECT_EQ(t[nr], expected_code(*decides))
        << nr << " (" << subctx::syscall_name(nr) << "), row " << syscall_default_cell(*decides);
  }
}

TEST(SyscallDefaults, EveryRowDecidesSomeNumber) {
  const ActionTable t = built();
  for (const SyscallDefaultRow& row : syscall_defaults()) {
    if (row.set == SyscallSet::X32) continue;
    long first = -1;
    for (long nr = 0; nr < static_cast<long>(t.size()) && first < 0; ++nr)
      if (&syscall_default_row(nr) == &row) first = nr;
    EXPECT_GE(first, 0) << "no number is decided by the row " << syscall_default_cell(row);
  }
  EXPECT_EQ(syscall_default_row(0x40000000 | SYS_read).set, SyscallSet::X32);
}

// The rows where the cell is written out name what they list.
TEST(SyscallDefaults, WrittenOutCellsNameTheirSystemCalls) {
  for (const SyscallDefaultRow& row : syscall_defaults())
    for (int16_t nr : row.listed.view()) {
      const std::string name = std::string("`") + subctx::syscall_name(nr);
      EXPECT_NE(syscall_default_cell(row).find(name), std::string::npos) << name << " in " << row.shown;
    }
}

// What docs/containment.md and the tests in tests/e2e rely on, literally.
TEST(SyscallDefaults, KnownDefaults) {
  using namespace subctx::fault;
  const ActionTable t = built();
  EXPECT_EQ(t[SYS_exit], kEndCallExit);
  EXPECT_EQ(t[SYS_exit_group], kEndCallExit);
  EXPECT_EQ(t[SYS_brk], ENOMEM);
  EXPECT_EQ(t[SYS_clone], kThreads);  // a thread or a child process; the handler refuses forks (EPERM)
  EXPECT_EQ(t[SYS_clone3], kThreads);
  EXPECT_EQ(t[SYS_vfork], kThreads);
  EXPECT_EQ(t[SYS_fork], EPERM);
  EXPECT_EQ(t[SYS_execve], EPERM);    // a child makes it (its own table); a call or a thread may not
  EXPECT_EQ(t[SYS_execveat], EPERM);  // listed before its class (untranslatable: ENOSYS)
  EXPECT_EQ(t[SYS_landlock_restrict_self], EPERM);
  EXPECT_EQ(t[SYS_timer_create], EPERM);
  EXPECT_EQ(t[SYS_wait4], kChildren);
  EXPECT_EQ(t[SYS_waitid], kChildren);
  EXPECT_EQ(t[SYS_kill], kSelfSignal);
  EXPECT_EQ(t[SYS_tgkill], kSelfSignal);
  EXPECT_EQ(t[SYS_mmap], kTrackMemory);
  EXPECT_EQ(t[SYS_rt_sigreturn], kSigreturn);
  EXPECT_EQ(t[SYS_openat], kDescriptors);
  EXPECT_EQ(t[SYS_mq_notify], EPERM);  // takes a descriptor, but refused first
  EXPECT_EQ(t[SYS_io_uring_setup], ENOSYS);
  EXPECT_EQ(t[511], ENOSYS);  // no system call
  EXPECT_EQ(t[SYS_getpid], kAllow);
  EXPECT_EQ(t[SYS_rt_sigprocmask], kAllow);  // emulated by the handler
  EXPECT_EQ(t[SYS_prctl], kAllow);           // some options refused by the handler
}

TEST(SyscallTable, ClientRulesOverTheDefaults) {
  using namespace subctx::fault;
  using Action = SyscallRule::Action;
  const ActionTable t = built({{"openat", Action::Deny, EACCES},
                               {"socket", Action::Fault, 0},
                               {"kill", Action::Allow, 0},
                               {"9", Action::Allow, 0},
                               {"exit", Action::Allow, 0}});
  EXPECT_EQ(t[SYS_openat], EACCES);
  EXPECT_EQ(t[SYS_socket], kEndCall);
  EXPECT_EQ(t[SYS_kill], kSignalAnyone);  // allowed: other processes too
  EXPECT_EQ(t[SYS_mmap], kTrackMemory);   // allowed: still tracked
  EXPECT_EQ(t[SYS_exit], kAllow);
  EXPECT_EQ(t[SYS_read], kDescriptors);  // untouched
}

void expect_refused(const std::vector<SyscallRule>& client, const std::vector<subctx::image::SyscallRuleRecord>& image,
                    subctx::Errc code, const std::string& words) {
  try {
    built(client, image);
    ADD_FAILURE() << "not refused: " << words;
  } catch (const subctx::Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/images/test.img"), std::string::npos) << e.what();
  }
}

TEST(SyscallTable, UnusableRulesAreRefusedNamingTheImage) {
  using Action = SyscallRule::Action;
  using subctx::Errc;
  expect_refused({{"io_uring_setup", Action::Allow, 0}}, {}, Errc::InvalidArgument, "cannot be allowed");
  expect_refused({{"no_such_call", Action::Deny, EPERM}}, {}, Errc::InvalidArgument, "unknown system call");
  expect_refused({{"openat", Action::Deny, 5000}}, {}, Errc::InvalidArgument, "not in 1..4095");
  expect_refused({}, {{"exit_group", 0, 0}}, Errc::BadImage, "allow exit_group");
  expect_refused({}, {{"rt_sigreturn", 1, EPERM}}, Errc::BadImage, "rt_sigreturn cannot be changed");
}

TEST(SyscallTable, ImageRulesNarrowAndClientRulesWin) {
  using namespace subctx::fault;
  const ActionTable narrowed = built({}, {{"openat", 1, EACCES}, {"socket", 2, 0}});
  EXPECT_EQ(narrowed[SYS_openat], EACCES);
  EXPECT_EQ(narrowed[SYS_socket], kEndCall);
  const ActionTable widened = built({{"openat", SyscallRule::Action::Allow, 0}}, {{"openat", 1, EACCES}});
  EXPECT_EQ(widened[SYS_openat], kDescriptors);  // the client's allow gives back the translation
}

TEST(SyscallDefaults, WithoutMarkupForTheTerminal) {
  EXPECT_EQ(without_markup("`read`, the `*at` calls, **own** `io_uring_*`"), "read, the *at calls, own io_uring_*");
}

}  // namespace
