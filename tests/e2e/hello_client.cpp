#include <cstdio>
#include <subctx/subctx.hpp>
int main(int, char** argv) {
  try {
    auto sc = subctx::Matchmaker::instance().request_map(argv[1]);
    std::printf("square(7)=%ld\n", sc.call<int64_t(int64_t)>("square", 7));
    std::printf("bump(5)=%ld\n", sc.call<int64_t(int64_t)>("bump", 5));
    std::printf("hyp=%f\n", sc.call<double(double, double)>("hyp", 3.0, 4.0));
    std::printf("before\n");
    int n = sc.call<int32_t(const char*)>("say", "hello");
    std::printf("after say=%d\n", n);
  } catch (const subctx::Error& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
