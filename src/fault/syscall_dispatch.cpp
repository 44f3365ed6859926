// Whether Syscall User Dispatch works in this process (syscalls.hpp).
// Apart from the rest of syscalls.cpp: the `subctx` tool (inspect) links
// this file of its own, not the client library's internals.
#include <sys/prctl.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "fault/syscalls.hpp"
#include "sys/env.hpp"
#include "sys/io.hpp"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif

namespace subctx::fault {

namespace {

// Trivially initialized: nothing of this file runs before main.
std::atomic<int> g_available{-1};  // -1 unknown, 0 no, 1 yes
bool g_off = false;                // SUBCTX_SYSCALLS=off
int g_prctl_errno = 0;             // else why prctl() refused
char g_selector_probe;

bool probe_dispatch() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = subctx::env::value("SUBCTX_SYSCALLS");  // checked at init (read_environment)
    if (env && !std::strcmp(env, "off")) {
      g_off = true;
      g_available = 0;
      return;
    }
    // Turned on and off again on this thread: does the kernel have it?  The
    // allowed range does not matter: the selector stays "allow" meanwhile.
    const auto lo = reinterpret_cast<unsigned long>(&g_selector_probe);
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, lo, 1UL, &g_selector_probe) != 0) {
      g_prctl_errno = errno;
      g_available = 0;
      return;
    }
    prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    g_available = 1;
  });
  return g_available.load() == 1;
}

}  // namespace

bool syscall_dispatch_available(std::string* why) {
  const bool ok = probe_dispatch();
  if (!ok && why)
    *why = g_off ? "SUBCTX_SYSCALLS=off"
                 : "prctl(PR_SET_SYSCALL_USER_DISPATCH) failed: " + sys::errno_text(g_prctl_errno) +
                       " (Linux 5.11 or later with CONFIG_GENERIC_ENTRY has it)";
  return ok;
}

}  // namespace subctx::fault
