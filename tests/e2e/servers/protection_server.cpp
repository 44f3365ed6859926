// A server for the protection tests: known data at a known address, an
// export that touches the image's memory, a function that is *not* an
// export (its address is handed out), and a str result that points into the
// image.
#include <cstdint>
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

int main(int, char** argv) {
  std::memset(g_data, 'P', sizeof g_data);
  g_hits = 100;
  subctx::snapshot_and_exit(argv[1]);
}
