// Example server: builds an in-memory SQLite database of 300,000 synthetic
// cities with two indexes (the expensive start-up a client should not pay
// again), exports two queries, snapshots itself and exits.
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <subctx/server.hpp>

static sqlite3* db;
static sqlite3_stmt* by_prefix;
static sqlite3_stmt* by_id;
static char row_text[512];

// Number of cities whose name starts with prefix.
int64_t count_prefix(const char* prefix) {
  std::string pattern = std::string(prefix) + "%";
  sqlite3_reset(by_prefix);
  sqlite3_bind_text(by_prefix, 1, pattern.c_str(), -1, SQLITE_TRANSIENT);
  return sqlite3_step(by_prefix) == SQLITE_ROW ? sqlite3_column_int64(by_prefix, 0) : -1;
}
SUBCTX_EXPORT(count_prefix);

// "name (country), population" of city id, or "" if there is none.
const char* city(int64_t id) {
  sqlite3_reset(by_id);
  sqlite3_bind_int64(by_id, 1, id);
  row_text[0] = '\0';
  if (sqlite3_step(by_id) == SQLITE_ROW)
    std::snprintf(row_text, sizeof row_text, "%s (%s), population %lld", sqlite3_column_text(by_id, 0),
                  sqlite3_column_text(by_id, 1), static_cast<long long>(sqlite3_column_int64(by_id, 2)));
  return row_text;
}
SUBCTX_EXPORT(city);

static void check(int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    std::fprintf(stderr, "cities_server: %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

int main(int argc, char** argv) {
  const char* image = argc > 1 ? argv[1] : "cities.img";
  const int rows = argc > 2 ? std::atoi(argv[2]) : 300000;
  auto start = std::chrono::steady_clock::now();

  check(sqlite3_open(":memory:", &db), "open");
  // Lets LIKE 'prefix%' use the name index.
  check(sqlite3_exec(db, "PRAGMA case_sensitive_like = ON", nullptr, nullptr, nullptr), "pragma");
  check(sqlite3_exec(db, "CREATE TABLE city(id INTEGER PRIMARY KEY, name TEXT, country TEXT, population INTEGER)",
                     nullptr, nullptr, nullptr),
        "create");
  static const char* syllables[] = {"ka", "lo", "mi", "ra", "ten", "vor", "san", "bel", "du", "gra", "nor", "es"};
  static const char* countries[] = {"Avaria", "Belmont", "Corvia", "Dunmark", "Estria", "Ferovia"};
  sqlite3_stmt* ins;
  check(sqlite3_prepare_v2(db, "INSERT INTO city VALUES(?,?,?,?)", -1, &ins, nullptr), "prepare");
  check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), "begin");
  uint64_t x = 88172645463325252ull;  // xorshift: the same database every run
  for (int i = 1; i <= rows; ++i) {
    std::string name;
    for (int s = 0; s < 3; ++s) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      name += syllables[x % 12];
    }
    name[0] = static_cast<char>(name[0] - 'a' + 'A');
    sqlite3_bind_int(ins, 1, i);
    sqlite3_bind_text(ins, 2, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 3, countries[x % 6], -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 4, static_cast<int64_t>(x % 5000000));
    check(sqlite3_step(ins), "insert");
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  check(sqlite3_exec(db, "COMMIT; CREATE INDEX city_name ON city(name); CREATE INDEX city_pop ON city(population)",
                     nullptr, nullptr, nullptr),
        "index");
  check(sqlite3_prepare_v2(db, "SELECT count(*) FROM city WHERE name LIKE ?1", -1, &by_prefix, nullptr), "prepare");
  check(sqlite3_prepare_v2(db, "SELECT name, country, population FROM city WHERE id = ?1", -1, &by_id, nullptr),
        "prepare");
  count_prefix("Ka");  // warm the statement, like a real server would

  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("server: built %d cities with 2 indexes in %.1f ms; writing %s\n", rows, ms, image);
  subctx::snapshot_and_exit(image);
}
