// The SQLite workload of the benchmarks: an in-memory table of ROWS rows
// (integer key, text, real) with a secondary index and a prepared point
// query, as a real service would keep it.  bench_sqlite_server (warm start)
// and bench_protection_server build it and snapshot; bench_protection also
// builds it in the client, so its direct baseline runs the same code.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace bench::sqlite_kv {

struct State {
  sqlite3* db = nullptr;
  sqlite3_stmt* by_key = nullptr;
  int64_t rows = 0;
};

inline State& state() {
  static State s;
  return s;
}

inline void exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(state().db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + msg + " in: " + sql);
  }
}

inline void init(int64_t rows) {
  State& s = state();
  s.rows = rows;
  if (sqlite3_open(":memory:", &s.db) != SQLITE_OK) throw std::runtime_error("sqlite3_open failed");
  exec("CREATE TABLE kv(k INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL NOT NULL)");
  exec("BEGIN");
  sqlite3_stmt* ins;
  if (sqlite3_prepare_v2(s.db, "INSERT INTO kv VALUES(?, ?, ?)", -1, &ins, nullptr) != SQLITE_OK)
    throw std::runtime_error("prepare insert failed");
  char name[48];
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int64_t k = 0; k < rows; ++k) {
    h ^= h << 13, h ^= h >> 7, h ^= h << 17;  // xorshift: names in random order
    int n = std::snprintf(name, sizeof name, "user-%016llx-%lld", static_cast<unsigned long long>(h),
                          static_cast<long long>(k));
    sqlite3_bind_int64(ins, 1, k);
    sqlite3_bind_text(ins, 2, name, n, SQLITE_TRANSIENT);
    sqlite3_bind_double(ins, 3, static_cast<double>(h % 100000) / 100.0);
    if (sqlite3_step(ins) != SQLITE_DONE) throw std::runtime_error("insert failed");
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  exec("COMMIT");
  exec("CREATE INDEX kv_name ON kv(name)");
  exec("ANALYZE");
  if (sqlite3_prepare_v2(s.db, "SELECT length(name) + CAST(score AS INTEGER) FROM kv WHERE k = ?", -1, &s.by_key,
                         nullptr) != SQLITE_OK)
    throw std::runtime_error("prepare lookup failed");
}

// length(name) + score of row k, or -1.
inline int64_t lookup(int64_t k) {
  State& s = state();
  sqlite3_bind_int64(s.by_key, 1, k);
  int64_t v = sqlite3_step(s.by_key) == SQLITE_ROW ? sqlite3_column_int64(s.by_key, 0) : -1;
  sqlite3_reset(s.by_key);
  return v;
}

}  // namespace bench::sqlite_kv
