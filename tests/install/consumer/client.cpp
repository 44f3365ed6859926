// The C++ client API, built against the installed package.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <subctx/subctx.hpp>
#include <vector>

// A replaced operator new: the library's own allocations must come here too
// (libsubctx_client.so carries its own copy of the C++ runtime, whose
// process-wide state is looked up in the process: src/CMakeLists.txt).
static size_t g_news = 0;
void* operator new(std::size_t n) {
  ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

static int fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  try {
    auto& mm = subctx::Matchmaker::instance();
    // An exception the library throws, caught through this program's
    // std::exception; afterwards no exception is in flight.
    const size_t news = g_news;
    try {
      mm.request_map(std::string(argv[1]) + ".missing");
      return fail("mapping a missing image succeeded");
    } catch (const std::exception& e) {
      if (std::uncaught_exceptions() != 0) return fail("an exception in flight inside its handler");
    }
    if (std::uncaught_exceptions() != 0) return fail("an exception in flight after its handler");
    if (g_news == news) return fail("the library's allocations did not use the program's operator new");
    subctx::Subcontext sc = mm.request_map(argv[1]);
    auto add_base = sc.function<int64_t(int64_t)>("add_base");
    std::vector<int64_t> in{234}, out(1);
    add_base.call_each(in, out);
    if (out[0] != add_base(234)) return 1;
    std::printf("add_base(234)=%lld\n", static_cast<long long>(out[0]));
    mm.unmap(sc);
  } catch (const subctx::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
