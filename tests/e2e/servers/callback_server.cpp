// Imports (docs/callbacks.md): exports that call functions each client
// binds.  test_callbacks.cpp and callback_client.cpp use it.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <subctx/server.hpp>

namespace {
auto square = subctx::import <int64_t(int64_t)>("square");
auto host_log = subctx::import <int64_t(const char*)>("host_log");
auto recurse_host = subctx::import <int64_t(int64_t)>("recurse_host");
auto host_mix = subctx::import <double(double, int64_t, double)>("host_mix");
auto never_bound = subctx::import <int64_t()>("never_bound");
auto host_print = subctx::import <void()>("host_print");
auto host_other = subctx::import <int64_t(int64_t)>("host_other");
auto host_name = subctx::import <const char*(int64_t)>("host_name");

int64_t calls = 0;  // 0 in the image: a reset puts it back
}  // namespace

int64_t sum_squares(int64_t n) {
  ++calls;
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += square(i);
  return sum;
}
// The strings live in subcontext memory (its stack, its data).
int64_t log_twice(const char* s) {
  char line[128];
  std::snprintf(line, sizeof line, "sub:%s", s);
  return host_log(line) * 1000 + host_log("done");
}
int64_t recurse(int64_t depth) { return depth <= 0 ? 1000 : recurse_host(depth - 1) + 1; }
double mix(double a, int64_t b, double c) { return host_mix(a, b, c) * 2; }
int64_t call_unbound() { return never_bound() + 1; }
int64_t print_around(int64_t) {
  std::printf("sub: before\n");
  host_print();
  std::printf("sub: after\n");
  return 0;
}
int64_t via_other(int64_t x) { return host_other(x) + 1; }
// A string the client returns (client memory, readable by the subcontext).
int64_t name_length(int64_t i) { return static_cast<int64_t>(std::strlen(host_name(i))); }
int64_t get_calls() { return calls; }
int64_t plus_one(int64_t x) { return x + 1; }

SUBCTX_EXPORT(sum_squares);
SUBCTX_EXPORT(log_twice);
SUBCTX_EXPORT(recurse);
SUBCTX_EXPORT(mix);
SUBCTX_EXPORT(call_unbound);
SUBCTX_EXPORT(print_around);
SUBCTX_EXPORT(via_other);
SUBCTX_EXPORT(name_length);
SUBCTX_EXPORT(get_calls);
SUBCTX_EXPORT(plus_one);

int main(int argc, char** argv) {
  // --early: an import called in the server process, before any client.
  if (argc > 2 && std::string(argv[2]) == "--early") std::printf("%lld\n", static_cast<long long>(square(3)));
  subctx::snapshot_and_exit(argc > 1 ? argv[1] : "callback.img");
}
