#include <cstdint>
#include <cstdio>
#include <string>
#include <subctx/server.hpp>

static int64_t counter = 0;
int64_t square(int64_t x) { return x * x; }
int64_t bump(int64_t by) {
  counter += by;
  return counter;
}
double hyp(double a, double b) { return a * a + b * b; }
int32_t say(const char* s) { return std::printf("server says: %s\n", s); }
SUBCTX_EXPORT(square);
SUBCTX_EXPORT(bump);
SUBCTX_EXPORT(hyp);
SUBCTX_EXPORT(say);

int main(int argc, char** argv) {
  counter = 100;
  subctx::snapshot_and_exit(argc > 1 ? argv[1] : "basic.img");
}
