// e2e_protection_client: chaining to the client's own SIGSEGV / SIGBUS
// handlers (test_protection_chaining.cpp).
//
// Linked with the static client library so that a constructor of priority
// 101 runs before the Matchmaker is installed: with E2E_PROT_EARLY=1 it
// installs the client's SIGSEGV and SIGBUS handlers first.
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <string>

#include "protection_client.hpp"

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace prot_client {

namespace {

int* volatile g_null = nullptr;
__attribute__((noinline)) void write_null() { *g_null = 1; }

__attribute__((constructor(101))) void install_early_handlers() {
  const char* early = std::getenv("E2E_PROT_EARLY");
  if (!early || std::strcmp(early, "1") != 0) return;
  struct sigaction sa = client_action(0);
  __sigaction(SIGSEGV, &sa, nullptr);  // libc's own: the Matchmaker is not installed yet
  __sigaction(SIGBUS, &sa, nullptr);
}

bool is_client_handler(int sig) {
  struct sigaction old {};
  if (sigaction(sig, nullptr, &old) != 0) return false;
  return (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == client_handler;
}

bool is_default(int sig) {
  struct sigaction old {};
  if (sigaction(sig, nullptr, &old) != 0) return false;
  return !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
}

// Touches a page of a file that was truncated under its mapping: SIGBUS.
void touch_truncated_file() {
  char path[] = "/tmp/subctx-e2e-sigbus-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) fail("mkstemp");
  unlink(path);
  if (ftruncate(fd, 4096) != 0) fail("ftruncate");
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail("mmap");
  if (ftruncate(fd, 0) != 0) fail("ftruncate 0");
  if (sigsetjmp(g_client_jump, 1) == 0) {
    write_byte(reinterpret_cast<uintptr_t>(p), 1);
    say("SIGBUS: no signal\n");
  } else {
    say("caught %s at offset %td\n", g_client_signal == SIGBUS ? "SIGBUS" : "another signal",
        static_cast<char*>(g_client_addr) - static_cast<char*>(p));
  }
  munmap(p, 4096);
  close(fd);
}

void catch_null_write() {
  if (sigsetjmp(g_client_jump, 1) == 0) {
    write_null();
    say("NULL write: no signal\n");
  } else {
    say("caught %s at %p\n", g_client_signal == SIGSEGV ? "SIGSEGV" : "another signal", g_client_addr);
  }
}

}  // namespace

// The client's own SIGSEGV/SIGBUS handlers: installed before the Matchmaker
// (E2E_PROT_EARLY=1, in a constructor) or after it (here).  Faults of client
// code reach them; a violation of subcontext memory does not.
int chain_mode(const std::string& backend, const std::string& image, bool late) {
  if (late) {
    struct sigaction sa = client_action(0);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0 || sigaction(SIGBUS, &sa, nullptr) != 0) fail("sigaction");
  }
  Subcontext sc = map(image, backend);
  say("installed %d sigaction says mine: SIGSEGV %d SIGBUS %d\n", Matchmaker::instance().installed(),
      is_client_handler(SIGSEGV), is_client_handler(SIGBUS));
  catch_null_write();
  touch_truncated_file();
  catch_null_write();  // again: the handler stays
  say("client handler runs %d\n", static_cast<int>(g_client_runs));
  say("square %" PRId64 "\n", sc.call<int64_t(int64_t)>("square", 5));
  // A violation is the Matchmaker's: the client's handler must not see it.
  const uintptr_t a = export_address(sc, "square");
  if (sigsetjmp(g_client_jump, 1) == 0) {
    print_expectation(sc, a);
    say("value %d\n", read_byte(a));
  } else {
    say("the client's handler got the violation at %p\n", g_client_addr);
  }
  return 0;
}

// SA_RESETHAND: the first fault runs the handler, the second kills.
int resethand_mode(const std::string& backend, const std::string& image) {
  struct sigaction sa = client_action(SA_RESETHAND);
  if (sigaction(SIGSEGV, &sa, nullptr) != 0) fail("sigaction");
  Subcontext sc = map(image, backend);
  say("mine %d\n", is_client_handler(SIGSEGV));
  catch_null_write();
  say("default after the first %d\n", is_default(SIGSEGV));
  say("square %" PRId64 "\n", sc.call<int64_t(int64_t)>("square", 6));
  write_null();
  say("survived the second\n");
  return 0;
}

// No client handler: a fault of client code is a plain SIGSEGV death.
int dfl_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  say("default %d square %" PRId64 "\n", is_default(SIGSEGV), sc.call<int64_t(int64_t)>("square", 4));
  write_null();
  say("survived\n");
  return 0;
}

}  // namespace prot_client
