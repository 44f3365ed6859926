#include <cstdio>
#include <iostream>
#include <subctx/subctx.hpp>
int main(int, char** argv) {
  try {
    auto sc = subctx::Matchmaker::instance().request_map(argv[1]);
    std::printf("count=%ld\n", sc.call<int64_t(const char*)>("sql_count", "a % 7 = 0"));
    std::printf("fib=%ld\n", sc.call<int64_t(const char*)>("lua_eval", "fib(20)"));
    std::printf("throw=%ld\n", sc.call<int64_t(int64_t)>("throw_catch", 42));
    std::printf("now=%ld time=%ld real=%ld\n", sc.call<int64_t()>("now_s"), sc.call<int64_t()>("time_s"), (long)time(nullptr));
    std::printf("client before cout\n");
    sc.call<int64_t(int64_t)>("cout_it", 5);
    std::printf("client after cout\n");
    std::printf("versus=%s\n", sc.call<const char*(const char*)>("versus", "1.9"));
    std::printf("map=%ld\n", sc.call<int64_t(const char*)>("map_get", "two"));
  } catch (const subctx::Error& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
