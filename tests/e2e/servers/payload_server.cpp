// Smoke: SQLite, Lua, exceptions, iostream, time, unseen libc function.
#include <sqlite3.h>
#include <lua5.4/lua.hpp>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>

static sqlite3* db;
static lua_State* L;
static std::map<std::string, int64_t> table;
static char buf[4096];

int64_t sql_count(const char* where) {
  std::string q = std::string("SELECT count(*) FROM t WHERE ") + where;
  sqlite3_stmt* st;
  if (sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr) != SQLITE_OK) return -1;
  int64_t n = -2;
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}
int64_t lua_eval(const char* expr) {
  std::string code = std::string("return ") + expr;
  if (luaL_dostring(L, code.c_str()) != LUA_OK) { lua_pop(L, 1); return -1; }
  int64_t v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}
int64_t throw_catch(int64_t x) {
  try { if (x > 0) throw std::runtime_error("boom " + std::to_string(x)); }
  catch (const std::exception& e) { return (int64_t)std::strlen(e.what()); }
  return 0;
}
int64_t now_s() { struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec; }
int64_t time_s() { return (int64_t)time(nullptr); }
int64_t cout_it(int64_t x) { std::cout << "cout " << x << std::endl; std::cout << "no-endl " << x << "\n"; return x; }
const char* versus(const char* a) { std::snprintf(buf, sizeof buf, "%d", strverscmp(a, "1.10")); return buf; }
int64_t map_get(const char* k) { auto it = table.find(k); return it == table.end() ? -1 : it->second; }
SUBCTX_EXPORT(sql_count);
SUBCTX_EXPORT(lua_eval);
SUBCTX_EXPORT(throw_catch);
SUBCTX_EXPORT(now_s);
SUBCTX_EXPORT(time_s);
SUBCTX_EXPORT(cout_it);
SUBCTX_EXPORT(versus);
SUBCTX_EXPORT(map_get);

int main(int, char** argv) {
  sqlite3_open(":memory:", &db);
  sqlite3_exec(db, "CREATE TABLE t(a INTEGER, b TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<10000) INSERT INTO t SELECT x, 'row'||x FROM c;", 0, 0, 0);
  L = luaL_newstate(); luaL_openlibs(L);
  luaL_dostring(L, "function fib(n) if n < 2 then return n end return fib(n-1)+fib(n-2) end");
  table["one"] = 1; table["two"] = 2;
  std::cout << "server ready" << std::endl;
  subctx::snapshot_and_exit(argv[1]);
}
