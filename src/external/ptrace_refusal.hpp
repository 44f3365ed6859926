// Why this process may not trace another, from facts gathered in /proc
// (tracee.cpp): a pure function, so that every branch is tested, Yama's
// included, on machines without Yama (test_external_snapshot.cpp).
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <string>

#include "sys/io.hpp"

namespace subctx::external {

struct PtraceFacts {
  pid_t pid = 0;
  int err = 0;              // errno of PTRACE_SEIZE
  std::string tracer_pid;   // TracerPid of /proc/PID/status ("0" or "": none)
  std::string uids;         // its Uid: line (real, effective, saved, file)
  uid_t our_uid = 0;        // this process's effective uid
  bool privileged = false;  // CAP_SYS_PTRACE
  std::string yama_scope;   // kernel.yama.ptrace_scope, "" without Yama
};

inline std::string ptrace_refusal_message(const PtraceFacts& f) {
  const std::string who = "process " + std::to_string(f.pid);
  if (f.err == ESRCH) return who + " does not exist (or has exited)";
  if (f.err != EPERM && f.err != EACCES) return "cannot trace " + who + ": " + sys::errno_text(f.err);
  const std::string msg = "not allowed to trace " + who + " (ptrace: " + sys::errno_text(f.err) + "): ";
  if (!f.tracer_pid.empty() && f.tracer_pid != "0")
    return msg + "it is already traced by process " + f.tracer_pid + " (a debugger?); detach that first";
  const std::string target_uid = f.uids.substr(0, f.uids.find_first_of(" \t"));
  if (!f.privileged && !target_uid.empty() && target_uid != std::to_string(f.our_uid))
    return msg + "credentials: it runs as uid " + target_uid + " and this command as uid " + std::to_string(f.our_uid) +
           "; run it as the target's user or as root (CAP_SYS_PTRACE)";
  if (f.yama_scope == "3") return msg + "Yama's kernel.yama.ptrace_scope is 3: no process may be traced until reboot";
  if (f.yama_scope == "2")
    return msg + "Yama's kernel.yama.ptrace_scope is 2 (admin only): run this command as root (CAP_SYS_PTRACE)";
  if (f.yama_scope == "1" && !f.privileged)
    return msg +
           "Yama's kernel.yama.ptrace_scope is 1: only a process's ancestors may trace it; run this command as root, "
           "let the target allow it (prctl(PR_SET_PTRACER, ...)), start it with the launcher form (subctx snapshot "
           "... -- PROGRAM), or set the sysctl to 0";
  if (!f.privileged && !f.uids.empty() && f.uids.find_first_not_of("0123456789 \t") == std::string::npos)
    // The uids equal ours, so the target is not dumpable (set-user-ID, or PR_SET_DUMPABLE 0).
    return msg +
           "credentials: the target is not dumpable (a set-user-ID or set-group-ID program, changed "
           "credentials, or prctl(PR_SET_DUMPABLE, 0)); run this command as root";
  return msg + "a security module (SELinux, AppArmor, seccomp) or the credentials forbid it";
}

}  // namespace subctx::external
