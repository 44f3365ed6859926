// The Lua 5.4 payload: an interpreter with library.lua loaded (closures,
// coroutines, string patterns, metatables, error/pcall) before the
// snapshot; a client evaluates Lua expressions (or statements) passed as
// strings and gets the results as text, shown by library.lua's show().
#include <fstream>
#include <lua5.4/lua.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "payload.hpp"

namespace payload {

const char* const kName = "lua";

namespace {

lua_State* L = nullptr;

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read ") + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value at the top as text: show(v) from library.lua (pops it).
std::string show_top() {
  lua_getglobal(L, "show");
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    std::string why = lua_tostring(L, -1) ? lua_tostring(L, -1) : "?";
    lua_pop(L, 1);
    return "<show failed: " + why + ">";
  }
  size_t n = 0;
  const char* s = lua_tolstring(L, -1, &n);
  std::string text(s ? s : "", n);
  lua_pop(L, 1);
  return text;
}

}  // namespace

void init() {
  L = luaL_newstate();
  if (!L) throw std::runtime_error("luaL_newstate failed");
  luaL_openlibs(L);
  const std::string library = read_file(PAYLOAD_LUA_LIBRARY);
  if (luaL_loadbuffer(L, library.data(), library.size(), "=library") != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
    throw std::runtime_error(std::string("library.lua: ") + lua_tostring(L, -1));
}

std::string run(std::string_view input) {
  const int base = lua_gettop(L);
  // An expression first ("return <input>"), else a chunk of statements.
  const std::string as_expression = "return " + std::string(input);
  if (luaL_loadbuffer(L, as_expression.data(), as_expression.size(), "=input") != LUA_OK) {
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, input.data(), input.size(), "=input") != LUA_OK) {
      std::string text = "error: " + std::string(lua_tostring(L, -1));
      lua_settop(L, base);
      return text;
    }
  }
  if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
    // Error values may be tables (error{code=...}): show them.
    std::string text = "error: " + (lua_type(L, -1) == LUA_TSTRING ? std::string(lua_tostring(L, -1)) : show_top());
    lua_settop(L, base);
    return text;
  }
  std::string text;
  const int results = lua_gettop(L) - base;
  for (int i = 1; i <= results; ++i) {
    lua_pushvalue(L, base + i);
    if (i > 1) text += ", ";
    text += show_top();
  }
  lua_settop(L, base);
  return results == 0 ? "(no value)" : text;
}

}  // namespace payload
