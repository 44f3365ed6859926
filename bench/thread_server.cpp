// bench_thread's image (docs/threads.md): thread_work.hpp's functions as
// exports.
#include <subctx/server.hpp>

#include "thread_work.hpp"

namespace {
thread_work::Pool pool;  // started by the first pool_sum call in each client
}

int64_t spawn_join(int64_t k) { return thread_work::spawn_join(k); }
int64_t pool_sum(int64_t n, int64_t workers) { return thread_work::pool_sum(pool, n, workers); }

SUBCTX_EXPORT(spawn_join);
SUBCTX_EXPORT(pool_sum);

int main(int argc, char** argv) { subctx::snapshot_and_exit(argc > 1 ? argv[1] : "thread.img"); }
