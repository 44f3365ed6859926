// A subcontext's system call table from the defaults and the rules
// (syscall_table.hpp).  Normal code, at map: the SIGSYS handler reads the
// result.
#include "matchmaker/syscall_table.hpp"

#include <algorithm>
#include <array>

#include <sys/syscall.h>

#include "common/syscall_names.hpp"
#include "fault/fd_syscalls.hpp"
#include "fault/syscalls.hpp"
#include "fault/view.hpp"
#include "subctx/error.hpp"

namespace subctx::matchmaker {

namespace {

// Whether a class row covers nr (listed rows cover their numbers only).
bool class_covers(SyscallSet set, long nr) {
  if (set == SyscallSet::X32) return nr & 0x40000000;
  const fault::FdClass c = fault::fd_class(nr);
  switch (set) {
    case SyscallSet::Translated: return c == fault::FdClass::Translated;
    case SyscallSet::Untranslatable: return c == fault::FdClass::Untranslatable || c == fault::FdClass::Unknown;
    case SyscallSet::Others: return c == fault::FdClass::None;
    default: return false;
  }
}

// Whether the default lets the system call through (made, perhaps tracked,
// translated or emulated) rather than refusing it or ending the call.
bool lets_through(SyscallDefault a) { return a != SyscallDefault::EndCall && a != SyscallDefault::Deny; }

// What an allowed system call does: what the defaults do when they let it
// through, else what its descriptors allow.  kill and rt_sigqueueinfo may
// then signal other processes too.  -1: it cannot be allowed (descriptors
// the namespace cannot follow, or a number this Matchmaker does not know).
int allowed_action(long nr) {
  if (nr == SYS_kill || nr == SYS_rt_sigqueueinfo) return fault::kSignalAnyone;
  const SyscallDefaultRow& row = syscall_default_row(nr);
  // A rule that allows what a row keeps from the client's process or
  // thread: made as asked, on any thread.
  if (row.action == SyscallDefault::ClientProcess || row.action == SyscallDefault::ThreadState) return fault::kAllow;
  if (lets_through(row.action)) return syscall_action_code(row);
  switch (fault::fd_class(nr)) {
    case fault::FdClass::None: return fault::kAllow;
    case fault::FdClass::Translated: return fault::kDescriptors;
    default: return -1;
  }
}

// One rule into the table; why: empty, or what is wrong with it.  Allow
// gives back the default translation and tracking, whatever an earlier
// rule (the image's) set.
std::string apply_rule(std::span<int16_t> t, const SyscallRule& r) {
  if (std::string why = syscall_rule_problem(r); !why.empty()) return why;
  const long nr = syscall_number(r.syscall);
  if (r.action == SyscallRule::Action::Allow) {
    const int a = allowed_action(nr);
    if (a == -1)
      return "\"" + r.syscall + "\" cannot be allowed: " +
             (fault::fd_class(nr) == fault::FdClass::Unknown
                  ? std::string("this Matchmaker does not know that system call")
                  : std::string("it takes or makes descriptors the subcontext's descriptor namespace cannot "
                                "translate")) +
             " (docs/identity.md)";
    t[nr] = static_cast<int16_t>(a);
  } else {
    t[nr] = r.action == SyscallRule::Action::Fault ? fault::kEndCall : static_cast<int16_t>(r.error);
  }
  return "";
}

}  // namespace

const SyscallDefaultRow& syscall_default_row(long nr) {
  const std::span<const SyscallDefaultRow> rows = syscall_defaults();
  for (const SyscallDefaultRow& row : rows)
    if (row.set == SyscallSet::Listed ? row.listed.contains(nr) : class_covers(row.set, nr)) return row;
  return rows.back();  // not reached: the classes cover every number
}

int16_t syscall_action_code(const SyscallDefaultRow& row) {
  switch (row.action) {
    case SyscallDefault::EndCall: return fault::kEndCallExit;
    case SyscallDefault::Deny: return row.error;
    case SyscallDefault::SignalItself: return fault::kSelfSignal;
    case SyscallDefault::TrackMemory: return fault::kTrackMemory;
    case SyscallDefault::Sigreturn: return fault::kSigreturn;
    case SyscallDefault::Descriptors: return fault::kDescriptors;
    case SyscallDefault::Threads: return fault::kThreads;
    case SyscallDefault::Children: return fault::kChildren;
    case SyscallDefault::ClientProcess: return fault::kClientProcess;
    case SyscallDefault::ThreadState: return fault::kThreadState;
    case SyscallDefault::Allow:
    case SyscallDefault::Emulated:        // rt_sigprocmask: the handler's allowed path emulates it
    case SyscallDefault::DenyByArgument:  // the handler's allowed path refuses those arguments
      return fault::kAllow;
  }
  return fault::kAllow;
}

namespace {
// The defaults as action codes, worked out once per process: each number's
// row is found by a scan of the rows (about 30 us for the 512 numbers on
// the 2-vCPU guest, at every map before).
const std::array<int16_t, fault::kSyscallTableSize>& default_action_codes() {
  static const std::array<int16_t, fault::kSyscallTableSize> codes = [] {
    std::array<int16_t, fault::kSyscallTableSize> t{};
    for (size_t nr = 0; nr < t.size(); ++nr) t[nr] = syscall_action_code(syscall_default_row(static_cast<long>(nr)));
    return t;
  }();
  return codes;
}
}  // namespace

void build_syscall_table(std::span<int16_t> table, const std::string& image_path,
                         const std::vector<image::SyscallRuleRecord>& image_rules,
                         const std::vector<SyscallRule>& client_rules) {
  const std::array<int16_t, fault::kSyscallTableSize>& defaults = default_action_codes();
  const size_t known = std::min(table.size(), defaults.size());  // all of a subcontext's table
  std::copy_n(defaults.begin(), known, table.begin());
  for (size_t nr = known; nr < table.size(); ++nr)
    table[nr] = syscall_action_code(syscall_default_row(static_cast<long>(nr)));
  for (const auto& r : image_rules) {
    const SyscallRule rule{r.syscall, static_cast<SyscallRule::Action>(r.action), static_cast<int>(r.error)};
    if (rule.action == SyscallRule::Action::Allow)  // the reader refuses these; never trust one
      throw BadImage("image " + image_path + ": its system call rule \"allow " + r.syscall +
                     "\": " + image::kImageRulesNarrowOnly);
    if (std::string why = apply_rule(table, rule); !why.empty())
      throw BadImage("image " + image_path + ": its system call rule: " + why);
  }
  for (const SyscallRule& r : client_rules)
    if (std::string why = apply_rule(table, r); !why.empty())
      throw Error(Errc::InvalidArgument, "syscall rule for image " + image_path + ": " + why);
}

}  // namespace subctx::matchmaker
