// e2e_protection_client: a call that frees part of the image while the
// client maps there (test_protection_during_call.cpp).
#include <sys/mman.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <thread>

#include "protection_client.hpp"

namespace prot_client {

// ---- 4. a call that frees part of the image while the client maps there ----

namespace {

// "rw-p" etc. of the mapping that holds a, "none" when nothing does.
std::string perms_at(uintptr_t a) {
  FILE* f = std::fopen("/proc/self/maps", "r");
  char line[512];
  std::string out = "none";
  while (f && std::fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) out = perms;
  }
  if (f) std::fclose(f);
  return out;
}

// /proc/self/smaps: the ProtectionKey of the mapping that holds a (-1: none).
int key_at(uintptr_t a) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  char line[512];
  bool in = false;
  int key = -1;
  while (f && std::fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char c;
    if (std::sscanf(line, "%lx-%lx %c", &lo, &hi, &c) == 3 && std::strchr(line, ':') > std::strchr(line, ' ')) {
      in = a >= lo && a < hi;
      continue;
    }
    if (in && std::strncmp(line, "ProtectionKey:", 14) == 0) key = std::atoi(line + 14);
  }
  if (f) std::fclose(f);
  return key;
}

constexpr size_t kPage = 4096;

// The page holds 'C' everywhere but at the offsets written ('P').
bool page_intact(uintptr_t page, std::initializer_list<size_t> written) {
  for (size_t i = 0; i < kPage; ++i) {
    char want = 'C';
    for (size_t w : written)
      if (i == w) want = 'P';
    if (reinterpret_cast<volatile char*>(page)[i] != want) return false;
  }
  return true;
}

// release_and_wait: the subcontext frees its 4 MiB block (munmap) and waits;
// meanwhile another client thread maps one page of its own inside the freed
// range (MAP_FIXED_NOREPLACE) and fills it with 'C'.  Returns the page, or 0
// (said why).  *block: the freed block.
uintptr_t free_while_the_client_maps(Subcontext& sc, uintptr_t* block) {
  *block = reinterpret_cast<uintptr_t>(sc.call<void*()>("big_block"));
  const uintptr_t page = (*block + 2 * kPage) & ~uintptr_t{kPage - 1};
  int mapped = -1;
  std::thread mapper([&] {
    if (!wait_for_cell(1)) {
      mapped = ETIMEDOUT;
      return;
    }
    void* p = mmap(reinterpret_cast<void*>(page), kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == reinterpret_cast<void*>(page)) {
      std::memset(p, 'C', kPage);
      mapped = 0;
    } else {
      mapped = p == MAP_FAILED ? errno : EEXIST;
      if (p != MAP_FAILED) munmap(p, kPage);
    }
    let_the_call_return();
  });
  const int64_t r = sc.call<int64_t(void*, int64_t)>("release_and_wait", &g_cell, kMaxWaitMs);
  mapper.join();
  say("result %" PRId64 " client page mapped during the call: %s\n", r, mapped == 0 ? "yes" : std::strerror(mapped));
  return mapped == 0 ? page : 0;
}

}  // namespace

// "page": the client's page stays the client's.
int freed_page_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  uintptr_t block = 0;
  const uintptr_t page = free_while_the_client_maps(sc, &block);
  if (!page) return 0;
  auto report = [&](const char* when) {
    const std::string perms = perms_at(page);
    const int key = key_at(page);  // -1: the kernel reports none
    say("%s: %s key %s\n", when, perms.c_str(), key <= 0 ? "none" : std::to_string(key).c_str());
    return perms == "rw-p";
  };
  if (!report("after the call")) return 0;  // touching it would fault
  say("intact %d\n", page_intact(page, {}));
  int64_t ignored = 0;
  say("client write made %d\n", try_access(1, page + 100, &ignored));  // writes 'P'
  say("calls: pure_add %" PRId64 " hits %" PRId64 " data_byte %" PRId64 "\n",
      sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3), sc.call<int64_t(int64_t)>("hits", 1),
      sc.call<int64_t(int64_t)>("data_byte", 8));
  if (!report("after more calls")) return 0;
  say("intact %d\n", page_intact(page, {100}));
  say("client write made %d\n", try_access(1, page + 200, &ignored));
  Matchmaker::instance().unmap(sc);
  if (!report("after unmap")) return 0;
  say("intact %d\n", page_intact(page, {100, 200}));
  say("violations %d\n", g_violations.load());
  munmap(reinterpret_cast<void*>(page), kPage);
  return 0;
}

// "exit": the process exits with the subcontext still mapped (the
// Matchmaker unmaps it at exit).
int freed_exit_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  uintptr_t block = 0;
  if (!free_while_the_client_maps(sc, &block)) return 0;
  say("pure_add %" PRId64 "; exiting with the subcontext mapped\n",
      sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3));
  return 0;
}

// "rest": the client reads the freed range away from its page: an ordinary
// segfault, the client's (its SIGSEGV handler, when `mine`, else death).
int freed_rest_mode(const std::string& backend, const std::string& image, bool mine) {
  if (mine) {
    struct sigaction sa = client_action(0);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0) fail("sigaction");
  }
  Subcontext sc = map(image, backend);
  uintptr_t block = 0;
  const uintptr_t page = free_while_the_client_maps(sc, &block);
  if (!page) return 0;
  const uintptr_t target = block + (size_t{2} << 20);
  say("freed range at the target: %s\n", perms_at(target).c_str());
  if (mine && sigsetjmp(g_client_jump, 1) != 0) {
    say("the client's handler got %s address-match %d\n", g_client_signal == SIGSEGV ? "SIGSEGV" : "another signal",
        g_client_addr == reinterpret_cast<void*>(target));
    say("after: pure_add %" PRId64 " page %s\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3),
        perms_at(page).c_str());
    return 0;
  }
  say("value %d\n", read_byte(target));
  return 0;
}

}  // namespace prot_client
