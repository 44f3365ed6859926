// The SQLite payload's callbacks (issue 16, docs/callbacks.md): SQL
// functions whose work the client does.  The server registers them before
// the snapshot; each calls an import that every client binds:
//
//   host_upper(text)      scalar      host_upper        str(str)
//   COLLATE HOST          collation   host_compare      i64(str,str)
//   host_group(text)      aggregate   host_group_step   i64(ptr,str)
//                                     host_group_final  str(ptr)
//
// The aggregate's ptr is SQLite's aggregate context for the group: the
// client uses it only as a key (under pkey it cannot read it).  A string a
// callback returns is client memory, copied into SQLite (SQLITE_TRANSIENT)
// before the next callback can change it.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>

#include "payload.hpp"
#include "sqlite_payload.hpp"

namespace {

auto host_upper = subctx::import <const char*(const char*)>("host_upper");
auto host_compare = subctx::import <int64_t(const char*, const char*)>("host_compare");
auto host_group_step = subctx::import <int64_t(void*, const char*)>("host_group_step");
auto host_group_final = subctx::import <const char*(void*)>("host_group_final");

const char* text_arg(sqlite3_value* v) { return reinterpret_cast<const char*>(sqlite3_value_text(v)); }

void result_client_text(sqlite3_context* ctx, const char* s, const char* what) {
  if (s) sqlite3_result_text(ctx, s, -1, SQLITE_TRANSIENT);
  else sqlite3_result_error(ctx, what, -1);
}

// SQL NULL stays NULL without asking the client, like SQLite's upper().
void upper_fn(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const char* s = text_arg(argv[0]);
  if (!s) return sqlite3_result_null(ctx);
  result_client_text(ctx, host_upper(s), "host_upper: the client returned no string");
}

// Collation operands are not NUL-terminated; a str argument must be.
int compare_fn(void*, int n1, const void* a, int n2, const void* b) {
  const std::string x(static_cast<const char*>(a), static_cast<size_t>(n1));
  const std::string y(static_cast<const char*>(b), static_cast<size_t>(n2));
  const int64_t r = host_compare(x.c_str(), y.c_str());
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}

void group_step(sqlite3_context* ctx, int, sqlite3_value** argv) {
  void* key = sqlite3_aggregate_context(ctx, 1);
  if (!key) return sqlite3_result_error_nomem(ctx);
  const char* s = text_arg(argv[0]);
  if (s && host_group_step(key, s) != 0) sqlite3_result_error(ctx, "host_group: the client refused a value", -1);
}

// A group without rows (no step ran) is NULL, as group_concat's.
void group_final(sqlite3_context* ctx) {
  void* key = sqlite3_aggregate_context(ctx, 0);
  if (!key) return sqlite3_result_null(ctx);
  result_client_text(ctx, host_group_final(key), "host_group: the client returned no string");
}

void check(int rc, const char* what) {
  if (rc != SQLITE_OK)
    throw std::runtime_error(std::string("sqlite: ") + what + ": " + sqlite3_errmsg(sqlite_payload::database()));
}

// Runs one query and joins the first column of its rows with '\n'; an SQL
// error (one a callback reported included) is "error: ...".
std::string first_column(const char* sql, int64_t param) {
  sqlite3* db = sqlite_payload::database();
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) return std::string("error: ") + sqlite3_errmsg(db);
  sqlite3_bind_int64(st, 1, param);
  std::string out;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!out.empty()) out += '\n';
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    out += text ? text : "NULL";
  }
  if (rc != SQLITE_DONE) out = std::string("error: ") + sqlite3_errmsg(db);
  sqlite3_finalize(st);
  return out;
}

}  // namespace

// Not SQLITE_DETERMINISTIC: a client may rebind host_upper between calls.
void payload::server_init() {
  sqlite3* db = sqlite_payload::database();
  check(sqlite3_create_function(db, "host_upper", 1, SQLITE_UTF8, nullptr, upper_fn, nullptr, nullptr), "host_upper");
  check(sqlite3_create_collation(db, "HOST", SQLITE_UTF8, nullptr, compare_fn), "COLLATE HOST");
  check(sqlite3_create_function(db, "host_group", 1, SQLITE_UTF8, nullptr, nullptr, group_step, group_final),
        "host_group");
}

// The names of the first n customers (by id) through host_upper, one a line.
const char* upper_names(int64_t n) {
  static std::string result;
  result = first_column("SELECT host_upper(first_name || ' ' || last_name) FROM customers ORDER BY id LIMIT ?", n);
  return result.c_str();
}
SUBCTX_EXPORT(upper_names);
