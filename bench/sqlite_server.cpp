// Bench server for warm start: an expensive init (an in-memory SQLite table
// of ROWS rows with a secondary index, and a prepared query), then the
// snapshot.  Prints "key value" lines: init_s, snapshot_s, rows.
//
//   bench_sqlite_server IMAGE [--rows N] [--init-only]
//
// --init-only: time the init and exit without writing an image.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <subctx/server.hpp>

#include "clock.hpp"

namespace {

sqlite3* db;
sqlite3_stmt* by_key;  // prepared during init, like a real service would

void exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error(std::string("sqlite: ") + msg + " in: " + sql);
  }
}

void init(int64_t rows) {
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open failed");
  exec("CREATE TABLE kv(k INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL NOT NULL)");
  exec("BEGIN");
  sqlite3_stmt* ins;
  if (sqlite3_prepare_v2(db, "INSERT INTO kv VALUES(?, ?, ?)", -1, &ins, nullptr) != SQLITE_OK)
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
  if (sqlite3_prepare_v2(db, "SELECT length(name) + CAST(score AS INTEGER) FROM kv WHERE k = ?", -1, &by_key,
                         nullptr) != SQLITE_OK)
    throw std::runtime_error("prepare lookup failed");
}

}  // namespace

// length(name) + score for row k, or -1.
int64_t lookup(int64_t k) {
  sqlite3_bind_int64(by_key, 1, k);
  int64_t v = sqlite3_step(by_key) == SQLITE_ROW ? sqlite3_column_int64(by_key, 0) : -1;
  sqlite3_reset(by_key);
  return v;
}
SUBCTX_EXPORT(lookup);

int main(int argc, char** argv) {
  int64_t rows = 200000;
  bool init_only = false;
  bool ok = argc >= 2;
  for (int i = 2; ok && i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rows") && i + 1 < argc) rows = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--init-only")) init_only = true;
    else ok = false;
  }
  if (!ok || rows < 1) {
    std::fprintf(stderr, "usage: bench_sqlite_server IMAGE [--rows N] [--init-only]\n");
    return 2;
  }
  try {
    const double t0 = bench::now_seconds();
    init(rows);
    const double init_s = bench::now_seconds() - t0;
    if (lookup(rows / 2) < 0) throw std::runtime_error("lookup of a present row failed");
    double snapshot_s = 0;
    if (!init_only) {
      const double t1 = bench::now_seconds();
      subctx::snapshot(argv[1]);
      snapshot_s = bench::now_seconds() - t1;
    }
    std::printf("init_s %.9f\nsnapshot_s %.9f\nrows %lld\n", init_s, snapshot_s, static_cast<long long>(rows));
    std::fflush(stdout);
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sqlite_server: %s\n", e.what());
    return 1;
  }
}
