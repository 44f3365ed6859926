// The feature server: a C++ program that uses libc, the C++ runtime, SQLite
// and Lua the ordinary way, initializes them, then snapshots itself.  Each
// export exercises one thing that must work inside a subcontext (issue 2's
// client-side list); tests/e2e/test_features.cpp calls them.
//
//   e2e_feature_server IMAGE
//
// Before the snapshot it writes "feature server ready" to stdout without a
// newline: the snapshot must flush it (exactly once, from the server), so
// no client ever prints it.
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <lua5.4/lua.hpp>
#include <map>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>
#include <vector>

namespace {

sqlite3* db;
lua_State* L;
std::map<std::string, int64_t> table;  // "key0".."key999" -> i*i
int64_t counter = 0;

int64_t copy_out(const std::string& s, void* out, int64_t cap) {
  if (cap <= 0) return -1;
  size_t n = std::min(s.size(), static_cast<size_t>(cap - 1));
  std::memcpy(out, s.data(), n);
  static_cast<char*>(out)[n] = '\0';
  return static_cast<int64_t>(s.size());
}

}  // namespace

// ---- counter: each client's writes stay private ----
int64_t bump(int64_t by) { return counter += by; }

// ---- malloc/free ----
// Allocates size bytes, fills them, sums them, frees them.  Sizes above the
// mmap threshold (128 KiB by default) make malloc call mmap inside the
// subcontext.
int64_t alloc_sum(int64_t size) {
  auto* p = static_cast<unsigned char*>(std::malloc(static_cast<size_t>(size)));
  if (!p) return -1;
  for (int64_t i = 0; i < size; ++i) p[i] = static_cast<unsigned char>(i * 7);
  int64_t sum = 0;
  for (int64_t i = 0; i < size; i += 4096) sum += p[i];
  sum += p[size - 1];
  std::free(p);
  return sum;
}
// n small blocks live at once: the heap grows past what the snapshot held.
int64_t alloc_many(int64_t n, int64_t size) {
  std::vector<char*> blocks;
  for (int64_t i = 0; i < n; ++i) {
    char* b = static_cast<char*>(std::malloc(static_cast<size_t>(size)));
    if (!b) return -1;
    std::memset(b, static_cast<int>(i & 0x7f), static_cast<size_t>(size));
    blocks.push_back(b);
  }
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i)
    if (blocks[i][0] != static_cast<char>(i & 0x7f) || blocks[i][size - 1] != static_cast<char>(i & 0x7f)) ++bad;
  for (char* b : blocks) std::free(b);
  return bad == 0 ? n : -bad;
}
// A block that outlives the call.
void* keep_block(int64_t size, int64_t fill) {
  void* p = std::malloc(static_cast<size_t>(size));
  if (p) std::memset(p, static_cast<int>(fill), static_cast<size_t>(size));
  return p;
}
int64_t check_block(void* p, int64_t size, int64_t fill) {
  auto* b = static_cast<unsigned char*>(p);
  for (int64_t i = 0; i < size; ++i)
    if (b[i] != static_cast<unsigned char>(fill)) return i;
  return -1;
}
void free_block(void* p) { std::free(p); }

// A block malloc'd (with mmap: above the threshold) before the snapshot, so
// it is part of a segment; freeing it inside a call unmaps part of the image.
static void* snapshot_block;
void* snapshot_block_addr() { return snapshot_block; }
void free_snapshot_block() { std::free(snapshot_block); }

// ---- errno: the subcontext's own, in its own TLS ----
int32_t errno_of_open(const char* path) {
  errno = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno;
}
int32_t errno_of_strtol(const char* s) {
  errno = 0;
  (void)std::strtol(s, nullptr, 10);
  return errno;
}
void set_errno(int32_t v) { errno = v; }
int32_t get_errno() { return errno; }

// ---- stdio and iostreams ----
int32_t print_line(const char* s, int64_t n) { return std::printf("sub printf %s %ld\n", s, static_cast<long>(n)); }
int32_t puts_line(const char* s) { return std::puts(s); }
int32_t print_partial(const char* s) { return std::printf("%s", s); }
int64_t cout_line(const char* s, int64_t n) {
  std::cout << "sub cout " << s << ' ' << n << '\n';
  return n;
}
int64_t cout_endl(const char* s) {
  std::cout << "sub endl " << s << std::endl;
  return 0;
}
int32_t eprint_line(const char* s) { return std::fprintf(stderr, "sub stderr %s\n", s); }
int64_t cerr_line(const char* s) {
  std::cerr << "sub cerr " << s << '\n';
  return 0;
}

// ---- C++ exceptions, thrown and caught inside ----
namespace {
struct Custom {
  int64_t value;
};
[[gnu::noinline]] void thrower(int64_t depth, int64_t x) {
  if (depth > 0) return thrower(depth - 1, x);
  if (x % 3 == 0) throw std::runtime_error("boom " + std::to_string(x));
  if (x % 3 == 1) throw Custom{x};
  throw std::out_of_range("out of range " + std::to_string(x));
}
}  // namespace
// Returns a value derived from what was caught; n times, 1..n.
int64_t throw_catch(int64_t n) {
  int64_t total = 0;
  for (int64_t x = 1; x <= n; ++x) {
    try {
      thrower(x % 10, x);
    } catch (const Custom& c) {
      total += c.value;
    } catch (const std::logic_error& e) {
      total += static_cast<int64_t>(std::strlen(e.what()));
    } catch (const std::exception& e) {
      total += 1000 * static_cast<int64_t>(std::strlen(e.what()));
    }
  }
  return total;
}
// std::vector::at throwing from inside libstdc++.
int64_t vector_at(int64_t i) {
  std::vector<int64_t> v{10, 20, 30};
  try {
    return v.at(static_cast<size_t>(i));
  } catch (const std::out_of_range&) {
    return -1;
  }
}

// ---- std::map / std::string ----
int64_t map_get(const char* key) {
  auto it = table.find(key);
  return it == table.end() ? -1 : it->second;
}
int64_t map_put(const char* key, int64_t v) {
  table[key] = v;
  return static_cast<int64_t>(table.size());
}
int64_t map_size() { return static_cast<int64_t>(table.size()); }
// Joins a and b n times with '+' into out (cap bytes); returns the length.
int64_t string_join(const char* a, const char* b, int64_t n, void* out, int64_t cap) {
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += '+';
    s += a;
    s += b;
  }
  return copy_out(s, out, cap);
}

// ---- time: the vDSO problem ----
int64_t realtime_ns() {
  timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
int64_t monotonic_ns() {
  timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return -1;
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
int64_t time_s() { return static_cast<int64_t>(time(nullptr)); }
int64_t gettimeofday_us() {
  timeval tv;
  if (gettimeofday(&tv, nullptr) != 0) return -1;
  return tv.tv_sec * 1000000L + tv.tv_usec;
}
int32_t cpu_now() { return sched_getcpu(); }
int64_t sleep_ms(int64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return ms;
}

// ---- stale identity: syscalls act on the calling client ----
int64_t pid_now() { return static_cast<int64_t>(getpid()); }
int64_t tid_now() { return static_cast<int64_t>(syscall(SYS_gettid)); }

// ---- libc functions never called before the snapshot ----
int32_t version_compare(const char* a, const char* b) {
  int r = strverscmp(a, b);
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}
int32_t glob_match(const char* pattern, const char* s) { return fnmatch(pattern, s, 0) == 0 ? 1 : 0; }

// ---- SQLite: an in-memory database built before the snapshot ----
int64_t sql_int(const char* query) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, query, -1, &st, nullptr) != SQLITE_OK) return -1;
  int64_t n = -2;
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}
int64_t sql_exec(const char* statement) {
  return sqlite3_exec(db, statement, nullptr, nullptr, nullptr) == SQLITE_OK ? sqlite3_changes(db) : -1;
}
// Text of the first column of the first row into out.
int64_t sql_text(const char* query, void* out, int64_t cap) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, query, -1, &st, nullptr) != SQLITE_OK) {
    copy_out(sqlite3_errmsg(db), out, cap);
    return -1;
  }
  std::string s = "(no row)";
  if (sqlite3_step(st) == SQLITE_ROW) s = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return copy_out(s, out, cap);
}

// ---- Lua: an interpreter with a script loaded before the snapshot ----
// Evaluates "return <expr>"; -1 on a Lua error (raised with longjmp inside).
int64_t lua_int(const char* expr) {
  std::string code = std::string("return ") + expr;
  if (luaL_dostring(L, code.c_str()) != LUA_OK) {
    lua_pop(L, 1);
    return -1;
  }
  int64_t v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}
int64_t lua_str(const char* expr, void* out, int64_t cap) {
  std::string code = std::string("return ") + expr;
  std::string s;
  if (luaL_dostring(L, code.c_str()) != LUA_OK) s = std::string("error: ") + lua_tostring(L, -1);
  else s = lua_tostring(L, -1) ? lua_tostring(L, -1) : "(nil)";
  lua_pop(L, 1);
  return copy_out(s, out, cap);
}

// What the kernel left at the top of the server's stack (environment,
// arguments, auxiliary vector), read after the image moved that stack.
static char** g_argv;
static uint64_t g_at_random_sum;
static uint64_t sum16(const void* p) {
  uint64_t s = 0;
  for (int i = 0; i < 16; ++i) s += static_cast<const unsigned char*>(p)[i];
  return s;
}
const char* env_value(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "(unset)";
}
const char* arg_value(int64_t i) { return g_argv[i]; }
const char* program_name() { return program_invocation_name; }
int64_t page_size_from_auxv() { return static_cast<int64_t>(getauxval(AT_PAGESZ)); }
int64_t at_random_unchanged() { return sum16(reinterpret_cast<const void*>(getauxval(AT_RANDOM))) == g_at_random_sum; }
SUBCTX_EXPORT(env_value);
SUBCTX_EXPORT(arg_value);
SUBCTX_EXPORT(program_name);
SUBCTX_EXPORT(page_size_from_auxv);
SUBCTX_EXPORT(at_random_unchanged);
SUBCTX_EXPORT(bump);
SUBCTX_EXPORT(alloc_sum);
SUBCTX_EXPORT(alloc_many);
SUBCTX_EXPORT(keep_block);
SUBCTX_EXPORT(check_block);
SUBCTX_EXPORT(free_block);
SUBCTX_EXPORT(snapshot_block_addr);
SUBCTX_EXPORT(free_snapshot_block);
SUBCTX_EXPORT(errno_of_open);
SUBCTX_EXPORT(errno_of_strtol);
SUBCTX_EXPORT(set_errno);
SUBCTX_EXPORT(get_errno);
SUBCTX_EXPORT(print_line);
SUBCTX_EXPORT(puts_line);
SUBCTX_EXPORT(print_partial);
SUBCTX_EXPORT(cout_line);
SUBCTX_EXPORT(cout_endl);
SUBCTX_EXPORT(eprint_line);
SUBCTX_EXPORT(cerr_line);
SUBCTX_EXPORT(throw_catch);
SUBCTX_EXPORT(vector_at);
SUBCTX_EXPORT(map_get);
SUBCTX_EXPORT(map_put);
SUBCTX_EXPORT(map_size);
SUBCTX_EXPORT(string_join);
SUBCTX_EXPORT(realtime_ns);
SUBCTX_EXPORT(monotonic_ns);
SUBCTX_EXPORT(time_s);
SUBCTX_EXPORT(gettimeofday_us);
SUBCTX_EXPORT(cpu_now);
SUBCTX_EXPORT(sleep_ms);
SUBCTX_EXPORT(pid_now);
SUBCTX_EXPORT(tid_now);
SUBCTX_EXPORT(version_compare);
SUBCTX_EXPORT(glob_match);
SUBCTX_EXPORT(sql_int);
SUBCTX_EXPORT(sql_exec);
SUBCTX_EXPORT(sql_text);
SUBCTX_EXPORT(lua_int);
SUBCTX_EXPORT(lua_str);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  counter = 100;
  g_argv = argv;
  g_at_random_sum = sum16(reinterpret_cast<const void*>(getauxval(AT_RANDOM)));
  snapshot_block = std::malloc(size_t{4} << 20);
  std::memset(snapshot_block, 0x5a, size_t{4} << 20);
  for (int i = 0; i < 1000; ++i) table["key" + std::to_string(i)] = int64_t{i} * i;

  if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 3;
  const char* schema =
      "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);"
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<10000)"
      "  INSERT INTO t SELECT x, 'row' || x FROM c;";
  if (sqlite3_exec(db, schema, nullptr, nullptr, nullptr) != SQLITE_OK) return 4;

  L = luaL_newstate();
  luaL_openlibs(L);
  const char* script =
      "function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end\n"
      "names = {'ada', 'grace', 'edsger'}\n"
      "calls = 0\n"
      "function greet(who) calls = calls + 1; return 'hello ' .. who .. ' #' .. calls end\n";
  if (luaL_dostring(L, script) != LUA_OK) return 5;

  std::cout << "feature server ready";  // no newline: stays buffered until the snapshot
  subctx::snapshot_and_exit(argv[1]);
}
