/* An SQLite program that knows nothing of subctx: at start-up it fills an
 * in-memory database (20,000 rows and an index), then waits in pause().
 * Its functions query it, in a client, after `subctx snapshot --pid`
 * (test_external_snapshot.cpp).  Built with lazy binding. */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static sqlite3* db;

/* The number of rows whose name starts with prefix; -1 on error. */
long count_prefix(const char* prefix) {
  sqlite3_stmt* st = NULL;
  long n = -1;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM city WHERE name >= ?1 AND name < ?1 || 'zzzz'", -1, &st, NULL) !=
      SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, prefix, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) == SQLITE_ROW) n = (long)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

/* The sum of the populations of the rows with id in [lo, hi]. */
long population_between(long lo, long hi) {
  sqlite3_stmt* st = NULL;
  long sum = -1;
  if (sqlite3_prepare_v2(db, "SELECT total(population) FROM city WHERE id BETWEEN ?1 AND ?2", -1, &st, NULL) !=
      SQLITE_OK)
    return -1;
  sqlite3_bind_int64(st, 1, lo);
  sqlite3_bind_int64(st, 2, hi);
  if (sqlite3_step(st) == SQLITE_ROW) sum = (long)sqlite3_column_double(st, 0);
  sqlite3_finalize(st);
  return sum;
}

/* Inserts a row (in the subcontext's own copy of the database); the new count. */
long insert_and_count(long id) {
  char sql[128];
  snprintf(sql, sizeof sql, "INSERT INTO city VALUES (%ld, 'new%ld', 1)", id, id);
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) return -1;
  return count_prefix("new");
}

int main(void) {
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
  sqlite3_exec(db, "CREATE TABLE city (id INTEGER PRIMARY KEY, name TEXT, population INTEGER)", NULL, NULL, NULL);
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  sqlite3_stmt* ins = NULL;
  sqlite3_prepare_v2(db, "INSERT INTO city VALUES (?1, ?2, ?3)", -1, &ins, NULL);
  for (long i = 1; i <= 20000; ++i) {
    char name[32];
    snprintf(name, sizeof name, "%s%05ld", i % 4 == 0 ? "Kalo" : "Town", i);
    sqlite3_bind_int64(ins, 1, i);
    sqlite3_bind_text(ins, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 3, i * 10);
    sqlite3_step(ins);
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_exec(db, "CREATE INDEX city_name ON city(name)", NULL, NULL, NULL);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
