// Checks that the Matchmaker unmaps every subcontext and uninstalls itself at
// exit.  Linked with the static client library, so that the library's
// destructor sits in this executable's .fini_array and a destructor of lower
// priority (below) runs after it and can look.
//
//   e2e_atexit_client BASIC_IMAGE FEATURE_IMAGE
//
// Prints "mapped N ranges" from main, then from the late destructor either
// "at exit: all N ranges unmapped; request_map: NotInitialized" or "FAIL ...".
// Only write(2) after main returns.
#include <fcntl.h>
#include <unistd.h>

#include <subctx/subctx.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <subctx/subctx.hpp>

namespace {

constexpr int kMaxRanges = 512;
uint64_t g_lo[kMaxRanges], g_hi[kMaxRanges];
int g_count = 0;
const char* g_image = nullptr;
char g_maps[1 << 20];

// Reads /proc/self/maps into g_maps without allocating; returns its length.
size_t read_maps() {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t len = 0;
  ssize_t n;
  while (len < sizeof g_maps - 1 && (n = read(fd, g_maps + len, sizeof g_maps - 1 - len)) > 0)
    len += static_cast<size_t>(n);
  close(fd);
  g_maps[len] = '\0';
  return len;
}

// Calls fn(lo, hi) for each line of g_maps.
template <class Fn>
void each_range(Fn fn) {
  for (char* line = g_maps; *line;) {
    char* end = std::strchr(line, '\n');
    unsigned long long lo = 0, hi = 0;
    if (std::sscanf(line, "%llx-%llx", &lo, &hi) == 2) fn(uint64_t{lo}, uint64_t{hi});
    if (!end) break;
    line = end + 1;
  }
}

void say(const char* s) {
  if (write(STDOUT_FILENO, s, std::strlen(s)) < 0) _exit(3);
}

__attribute__((destructor(101))) void check_after_matchmaker_finalize() {
  if (!g_count) return;  // main did not get as far as mapping
  read_maps();
  int still = 0;
  char buf[512];
  each_range([&](uint64_t lo, uint64_t hi) {
    for (int i = 0; i < g_count; ++i)
      if (lo < g_hi[i] && g_lo[i] < hi) {
        ++still;
        std::snprintf(buf, sizeof buf, "still mapped: %llx-%llx (image range %llx-%llx)\n",
                      static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi),
                      static_cast<unsigned long long>(g_lo[i]), static_cast<unsigned long long>(g_hi[i]));
        say(buf);
      }
  });
  if (still) {
    std::snprintf(buf, sizeof buf, "FAIL at exit: %d image mappings still there\n", still);
    say(buf);
    _exit(4);
  }
  int rc = sbc_request_map(g_image);
  if (rc != -SBC_E_NOT_INITIALIZED) {
    std::snprintf(buf, sizeof buf, "FAIL at exit: request_map returned %d, expected %d\n", rc, -SBC_E_NOT_INITIALIZED);
    say(buf);
    _exit(5);
  }
  std::snprintf(buf, sizeof buf, "at exit: all %d ranges unmapped; request_map: NotInitialized\n", g_count);
  say(buf);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s BASIC_IMAGE FEATURE_IMAGE\n", argv[0]);
    return 2;
  }
  g_image = argv[1];
  auto& mm = subctx::Matchmaker::instance();
  subctx::Subcontext b, f;
  try {
    // What the first map makes for the whole process and keeps (the
    // raw-call range, its handlers) is not an image's: made here first.
    mm.unmap(mm.request_map(argv[1]));
  } catch (const subctx::Error& e) {
    std::fprintf(stderr, "FAIL %s\n", e.what());
    return 1;
  }
  // The mappings the two request_map calls add are the image's.
  read_maps();
  std::string before = g_maps;
  try {
    b = mm.request_map(argv[1]);
    f = mm.request_map(argv[2]);
    read_maps();
    // New lines only: by start address (the heap's end moves with malloc).
    each_range([&](uint64_t lo, uint64_t hi) {
      char key[64];
      std::snprintf(key, sizeof key, "\n%llx-", static_cast<unsigned long long>(lo));
      if (("\n" + before).find(key) == std::string::npos && g_count < kMaxRanges) {
        g_lo[g_count] = lo;
        g_hi[g_count] = hi;
        ++g_count;
      }
    });
    if (b.call<int64_t(int64_t)>("square", 12) != 144) return 6;
    if (f.call<int64_t(const char*)>("lua_int", "fib(12)") != 144) return 7;
  } catch (const subctx::Error& e) {
    std::fprintf(stderr, "FAIL %s\n", e.what());
    return 1;
  }
  std::printf("mapped %d ranges\n", g_count);
  std::fflush(stdout);
  return 0;
}
