// The SQLite + Lua workload of bench_protection: the SQLite table of
// sqlite_kv.hpp and a Lua interpreter with a loaded script.
// bench_protection_server builds it and snapshots it; bench_protection builds
// the same state in the client, so the direct baseline runs the same code.
#pragma once

#include <cstdint>
#include <lua5.4/lua.hpp>
#include <stdexcept>
#include <string>

#include "sqlite_kv.hpp"

namespace bench::sqlite_lua {

using sqlite_kv::lookup;

inline lua_State*& lua() {
  static lua_State* L = nullptr;
  return L;
}

// The table of `rows` rows, and a Lua state with a table of 1000 squares
// and score().
inline void init(int64_t rows) {
  sqlite_kv::init(rows);
  lua_State*& L = lua();
  L = luaL_newstate();
  luaL_openlibs(L);
  const char* script =
      "local t = {}\n"
      "for i = 1, 1000 do t[i] = i * i end\n"
      "function score(x)\n"
      "  local s = 0\n"
      "  for i = 1, 16 do s = s + t[(x + i) % 1000 + 1] end\n"
      "  return s\n"
      "end\n";
  if (luaL_dostring(L, script) != LUA_OK) throw std::runtime_error(std::string("lua: ") + lua_tostring(L, -1));
}

// The Lua function score(x), or -1 on a Lua error.
inline int64_t lua_score(int64_t x) {
  lua_State* L = lua();
  lua_getglobal(L, "score");
  lua_pushinteger(L, x);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return -1;
  }
  int64_t v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

}  // namespace bench::sqlite_lua
