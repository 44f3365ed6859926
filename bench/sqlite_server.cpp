// Bench server for warm start: an expensive init (an in-memory SQLite table
// of ROWS rows with a secondary index, and a prepared query), then the
// snapshot.  Prints "key value" lines: init_s, snapshot_s, rows.
//
//   bench_sqlite_server IMAGE [--rows N] [--init-only]
//
// --init-only: time the init and exit without writing an image.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <subctx/server.hpp>

#include "clock.hpp"
#include "sqlite_kv.hpp"

// length(name) + score for row k, or -1.
int64_t lookup(int64_t k) { return bench::sqlite_kv::lookup(k); }
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
    bench::sqlite_kv::init(rows);
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
