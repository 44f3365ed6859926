// A client helper that the end-to-end tests run as a separate process.  Each
// mode checks its own results and prints lines the test compares; any
// failure prints "FAIL ..." to stderr and exits with status 1.
//
//   e2e_worker_client output FEATURE_IMAGE
//       client and subcontext output interleaved on stdout and stderr
//   e2e_worker_client concurrent ID CALLS BASIC_IMAGE FEATURE_IMAGE
//       maps both images, prints "mapped ID", waits for stdin to close (all
//       clients mapped at once), makes CALLS calls of each kind, checks them
//       and prints "client ID ok ..."
//   e2e_worker_client peek BASIC_IMAGE FEATURE_IMAGE
//       prints the counter and table as this client sees them, then bumps
//   e2e_worker_client limits IMAGE
//       prints the limits (sbc_get_limit) and the outcome of mapping IMAGE
//   e2e_worker_client exit-mapped BASIC_IMAGE FEATURE_IMAGE
//       maps both images, calls, and returns from main with them mapped
#include <unistd.h>

#include <subctx/subctx.h>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <subctx/subctx.hpp>
#include <thread>

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL %s\n", what.c_str());
  std::exit(1);
}

template <class T>
void expect_eq(const T& got, const T& want, const std::string& what) {
  if (!(got == want)) fail(what + ": got " + std::to_string(got) + ", want " + std::to_string(want));
}

int mode_output(const std::string& image) {
  auto sc = subctx::Matchmaker::instance().request_map(image);
  auto print_line = sc.function<int32_t(const char*, int64_t)>("print_line");
  // Client output and subcontext output alternate; each client line is
  // still buffered (stdout is a pipe or a file) when the call starts.
  std::printf("client line 1\n");
  print_line("a", 1);
  std::cout << "client cout 2\n";
  sc.call<int32_t(const char*)>("puts_line", "sub puts b");
  std::printf("client line 3\n");
  sc.call<int64_t(const char*, int64_t)>("cout_line", "c", 3);
  std::printf("client partial [");
  sc.call<int32_t(const char*)>("print_partial", "sub partial");
  std::printf("] end\n");
  sc.call<int64_t(const char*)>("cout_endl", "d");
  // Written straight to fd 1: the subcontext's output must be out already.
  print_line("e", 5);
  if (write(STDOUT_FILENO, "client write(2)\n", 16) != 16) fail("write");
  // Enough lines to overflow the stdio buffers several times.
  for (int i = 0; i < 300; ++i) {
    std::printf("client loop %d\n", i);
    print_line("loop", i);
  }
  // stderr: unbuffered on both sides.
  std::fprintf(stderr, "client stderr 1\n");
  sc.call<int32_t(const char*)>("eprint_line", "x");
  std::cerr << "client cerr 2\n";
  sc.call<int64_t(const char*)>("cerr_line", "y");
  std::fprintf(stderr, "client stderr 3\n");
  std::printf("client last\n");
  return 0;
}

int mode_concurrent(int id, int calls, const std::string& basic, const std::string& feature) {
  auto& mm = subctx::Matchmaker::instance();
  auto b = mm.request_map(basic);
  auto f = mm.request_map(feature);
  std::printf("mapped %d\n", id);
  std::fflush(stdout);
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  auto square = b.function<int64_t(int64_t)>("square");
  auto bump = b.function<int64_t(int64_t)>("bump");
  auto hyp = b.function<double(double, double)>("hyp");
  const int64_t step = id + 1;
  int64_t last = 0;
  for (int i = 0; i < calls; ++i) {
    expect_eq<int64_t>(square(i + id), int64_t{i + id} * (i + id), "square");
    last = bump(step);
    expect_eq<int64_t>(last, 100 + step * (i + 1), "bump");
    expect_eq<double>(hyp(id, i), double(id) * id + double(i) * i, "hyp");
  }
  // Feature image: SQLite, Lua and std::map, each changed by this client.
  const std::string mine = "client" + std::to_string(id);
  expect_eq<int64_t>(f.call<int64_t(const char*, int64_t)>("map_put", mine.c_str(), id), 1001, "map_put");
  expect_eq<int64_t>(f.call<int64_t(const char*)>("map_get", mine.c_str()), id, "map_get");
  const std::string insert = "INSERT INTO t(a, b) VALUES (" + std::to_string(20000 + id) + ", '" + mine + "')";
  expect_eq<int64_t>(f.call<int64_t(const char*)>("sql_exec", insert.c_str()), 1, "sql insert");
  expect_eq<int64_t>(f.call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM t"), 10001, "sql count");
  expect_eq<int64_t>(f.call<int64_t(const char*)>("sql_int", "SELECT max(a) FROM t"), 20000 + id, "sql max");
  const std::string lua = "fib(" + std::to_string(10 + id) + ")";
  const int64_t fibs[] = {55, 89, 144, 233, 377, 610, 987, 1597};
  expect_eq<int64_t>(f.call<int64_t(const char*)>("lua_int", lua.c_str()), fibs[id % 8], "lua fib");
  expect_eq<int64_t>(f.call<int64_t(int64_t)>("alloc_sum", 1 << 20), f.call<int64_t(int64_t)>("alloc_sum", 1 << 20),
                     "alloc_sum");
  std::printf("client %d ok counter=%" PRId64 "\n", id, last);
  return 0;
}

int mode_peek(const std::string& basic, const std::string& feature) {
  auto& mm = subctx::Matchmaker::instance();
  auto b = mm.request_map(basic);
  auto f = mm.request_map(feature);
  std::printf("counter=%" PRId64 " map_size=%" PRId64 " rows=%" PRId64 "\n", b.call<int64_t(int64_t)>("bump", 0),
              f.call<int64_t()>("map_size"), f.call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM t"));
  b.call<int64_t(int64_t)>("bump", 7);
  f.call<int64_t(const char*, int64_t)>("map_put", "peek", 1);
  f.call<int64_t(const char*)>("sql_exec", "DELETE FROM t WHERE a <= 5000");
  std::printf("after: counter=%" PRId64 " map_size=%" PRId64 " rows=%" PRId64 "\n", b.call<int64_t(int64_t)>("bump", 0),
              f.call<int64_t()>("map_size"), f.call<int64_t(const char*)>("sql_int", "SELECT count(*) FROM t"));
  return 0;
}

int mode_limits(const std::string& image) {
  const char* names[] = {"subcontexts", "image_size", "exports", "segments"};
  for (int i = 0; i < 4; ++i) {
    uint64_t v = 0;
    if (sbc_get_limit(i, &v) != 0) fail(std::string("sbc_get_limit: ") + sbc_last_error());
    std::printf("%s=%" PRIu64 "\n", names[i], v);
  }
  int sc = sbc_request_map(image.c_str());
  if (sc >= 0) {
    uint64_t r = 0;
    uint64_t arg = 9;
    if (sbc_request_call(sc, "square", &arg, 1, &r) != 0) fail(std::string("square: ") + sbc_last_error());
    std::printf("map ok square=%" PRIu64 "\n", r);
  } else {
    std::printf("map error %d: %s\n", -sc, sbc_last_error());
  }
  return 0;
}

// A thread is inside a call that does not return when main returns: exit
// must not wait for it (the subcontext stays mapped until the kernel
// reclaims the process).
int mode_exit_in_call(const std::string& feature) {
  auto& mm = subctx::Matchmaker::instance();
  auto f = mm.request_map(feature);
  auto sleep_ms = f.function<int64_t(int64_t)>("sleep_ms");
  std::thread([sleep_ms] { sleep_ms(600000); }).detach();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf("returning from main during a call\n");
  return 0;
}

// Maps with whatever policy SUBCTX_POLICY gave at start-up and reports.
int mode_map_report(const std::string& image) {
  try {
    auto sc = subctx::Matchmaker::instance().request_map(image);
    std::printf("mapped; open_door(2) = %ld\n", static_cast<long>(sc.call<int64_t(int64_t)>("open_door", 2)));
  } catch (const subctx::Error& e) {
    std::printf("refused %s: %s\n", subctx::errc_name(e.code()), e.what());
  }
  return 0;
}

int mode_exit_mapped(const std::string& basic, const std::string& feature) {
  auto& mm = subctx::Matchmaker::instance();
  auto b = mm.request_map(basic);
  auto f = mm.request_map(feature);
  b.call<int64_t(int64_t)>("bump", 1);
  f.call<int32_t(const char*, int64_t)>("print_line", "before exit", 1);
  std::printf("returning from main\n");
  return 0;  // the library destructor unmaps both at exit
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "output" && argc == 3) return mode_output(argv[2]);
    if (mode == "concurrent" && argc == 6)
      return mode_concurrent(std::atoi(argv[2]), std::atoi(argv[3]), argv[4], argv[5]);
    if (mode == "peek" && argc == 4) return mode_peek(argv[2], argv[3]);
    if (mode == "limits" && argc == 3) return mode_limits(argv[2]);
    if (mode == "exit-mapped" && argc == 4) return mode_exit_mapped(argv[2], argv[3]);
    if (mode == "exit-in-call" && argc == 3) return mode_exit_in_call(argv[2]);
    if (mode == "map-report" && argc == 3) return mode_map_report(argv[2]);
  } catch (const subctx::Error& e) {
    fail(std::string(subctx::errc_name(e.code())) + ": " + e.what());
  }
  std::fprintf(stderr, "usage: see the comment at the top of worker_client.cpp\n");
  return 2;
}
