// The C++ client API, built against the installed package.
#include <cstdint>
#include <cstdio>
#include <subctx/subctx.hpp>
#include <vector>
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  try {
    auto& mm = subctx::Matchmaker::instance();
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
