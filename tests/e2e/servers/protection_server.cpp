// A server for the protection tests: known data at a known address, an
// export that touches the image's memory, a function that is *not* an
// export (its address is handed out), a str result that points into the
// image, and long calls that meet the client half way (signals during a
// call; a call that frees part of the image).
#include <sys/mman.h>
#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <subctx/server.hpp>

// Writable data filled before the snapshot ('P' everywhere), so its pages
// are stored in the image.
char g_data[8192];
static volatile int64_t g_hits = 0;
static const char g_motto[] = "memory stays where it belongs";

// Not an export: the tests jump to it.  Touches the image's data (g_hits).
extern "C" __attribute__((noinline, used)) int64_t protection_internal_helper(int64_t by) {
  g_hits = g_hits + by;
  return g_hits;
}

int64_t hits(int64_t by) { return protection_internal_helper(by); }
int64_t pure_add(int64_t a, int64_t b) { return a + b; }
void* helper_addr() { return reinterpret_cast<void*>(&protection_internal_helper); }
void* data_addr() { return g_data; }
int64_t data_byte(int64_t i) { return static_cast<unsigned char>(g_data[i]); }
const char* motto() { return g_motto; }
SUBCTX_EXPORT(hits);
SUBCTX_EXPORT(pure_add);
SUBCTX_EXPORT(helper_addr);
SUBCTX_EXPORT(data_addr);
SUBCTX_EXPORT(data_byte);
SUBCTX_EXPORT(motto);

// ---- long calls ----------------------------------------------------------
// rendezvous(cell, max_ms): stores 1 in the client's *cell (the call is
// running), then waits until the client stores 2 there: returns 4242, or -1
// after max_ms (a test that would otherwise hang fails instead).  Signals
// may interrupt the naps.
static int64_t wait_for_client(void* cell, int64_t max_ms) {
  auto* c = static_cast<int64_t*>(cell);
  __atomic_store_n(c, 1, __ATOMIC_SEQ_CST);
  timespec start{}, now{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (__atomic_load_n(c, __ATOMIC_SEQ_CST) == 2) return 4242;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > max_ms) return -1;
    timespec nap{0, 1000000};
    nanosleep(&nap, nullptr);
  }
}
int64_t rendezvous(void* cell, int64_t max_ms) { return wait_for_client(cell, max_ms); }

// A 4 MiB block malloc'd before the snapshot (glibc mmaps it: above the
// threshold), so it is a segment of the image; release_and_wait frees it
// (glibc munmaps it: part of the image goes away during the call), then
// meets the client as rendezvous does.
static constexpr size_t kBigBlock = size_t{4} << 20;
static char* g_big = nullptr;
void* big_block() { return g_big; }
int64_t release_and_wait(void* cell, int64_t max_ms) {
  std::free(g_big);
  g_big = nullptr;
  return wait_for_client(cell, max_ms);
}
SUBCTX_EXPORT(rendezvous);
SUBCTX_EXPORT(big_block);
SUBCTX_EXPORT(release_and_wait);

// ---- code written at run time ----------------------------------------------
// A page mapped before the snapshot far from every other segment (a
// cluster of its own, with no code in it, under the mprotect backend).
// jit_make(v) writes `mov rax, v; ret` there, makes the page executable
// with mprotect and calls it; jit_call() only calls what is there: it runs
// only if the page is still executable in a later call, as the
// subcontext's own mprotect asked.
static constexpr size_t kJitPage = 4096;
static unsigned char* g_jit = nullptr;
using JitFn = int64_t (*)();
int64_t jit_make(int64_t v) {
  if (mprotect(g_jit, kJitPage, PROT_READ | PROT_WRITE) != 0) return -1;
  g_jit[0] = 0x48, g_jit[1] = 0xb8;  // mov rax, imm64
  std::memcpy(g_jit + 2, &v, 8);
  g_jit[10] = 0xc3;  // ret
  if (mprotect(g_jit, kJitPage, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) return -1;
  return reinterpret_cast<JitFn>(g_jit)();
}
int64_t jit_call() { return reinterpret_cast<JitFn>(g_jit)(); }
SUBCTX_EXPORT(jit_make);
SUBCTX_EXPORT(jit_call);

// The jit page: 16, 32, ... GiB below libc's free(), where nothing else
// lies (the kernel maps libraries and the stack far above).
static unsigned char* map_jit_page() {
  const uintptr_t libc = reinterpret_cast<uintptr_t>(&std::free) & ~uintptr_t{kJitPage - 1};
  for (uintptr_t gib = 16; gib <= 128; gib += 16) {
    void* want = reinterpret_cast<void*>(libc - (gib << 30));
    void* got = mmap(want, kJitPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == want) return static_cast<unsigned char*>(got);
    if (got != MAP_FAILED) munmap(got, kJitPage);  // a kernel without NOREPLACE put it elsewhere
  }
  return nullptr;
}

int main(int, char** argv) {
  g_jit = map_jit_page();
  if (!g_jit) return 1;
  g_jit[0] = 0xc3;  // stored in the image (not a zero page)
  std::memset(g_data, 'P', sizeof g_data);
  g_hits = 100;
  g_big = static_cast<char*>(std::malloc(kBigBlock));
  std::memset(g_big, 'B', kBigBlock);  // stored in the image: no page is zero
  subctx::snapshot_and_exit(argv[1]);
}
