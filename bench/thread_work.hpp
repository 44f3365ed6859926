// Work for bench_thread (docs/threads.md), compiled twice: into the bench
// server's image (bench/thread_server.cpp) and natively into bench_thread,
// the baseline of the same run.
#pragma once

#include <pthread.h>

#include <cstdint>

namespace thread_work {

inline void* nothing(void* arg) { return arg; }

// Starts and joins k threads, one after another; -errno if one cannot start.
inline int64_t spawn_join(int64_t k) {
  for (int64_t i = 0; i < k; ++i) {
    pthread_t t;
    if (const int err = pthread_create(&t, nullptr, nothing, nullptr)) return -err;
    pthread_join(t, nullptr);
  }
  return k;
}

// A pool of `workers` threads, started by the first call, that sums 0..n-1.
struct Pool {
  static constexpr int kMax = 16;
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t ready = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
  int threads = 0;
  int64_t n = 0, generation = 0, finished = 0, sums[kMax] = {};
};

struct Worker {
  Pool* pool;
  int index;
};

inline void* work(void* arg) {
  Worker w = *static_cast<Worker*>(arg);
  delete static_cast<Worker*>(arg);
  Pool& p = *w.pool;
  int64_t seen = 0;
  pthread_mutex_lock(&p.mutex);
  for (;;) {
    while (p.generation == seen) pthread_cond_wait(&p.ready, &p.mutex);
    seen = p.generation;
    const int64_t lo = p.n * w.index / p.threads, hi = p.n * (w.index + 1) / p.threads;
    pthread_mutex_unlock(&p.mutex);
    int64_t sum = 0;
    for (int64_t i = lo; i < hi; ++i) sum += i;
    pthread_mutex_lock(&p.mutex);
    p.sums[w.index] = sum;
    if (++p.finished == p.threads) pthread_cond_signal(&p.done);
  }
}

inline int64_t pool_sum(Pool& p, int64_t n, int64_t workers) {
  pthread_mutex_lock(&p.mutex);
  while (p.threads < workers && p.threads < Pool::kMax) {
    pthread_t t;
    if (const int err = pthread_create(&t, nullptr, work, new Worker{&p, p.threads})) {
      pthread_mutex_unlock(&p.mutex);
      return -err;
    }
    pthread_detach(t);
    ++p.threads;
  }
  p.n = n;
  p.finished = 0;
  ++p.generation;
  pthread_cond_broadcast(&p.ready);
  while (p.finished < p.threads) pthread_cond_wait(&p.done, &p.mutex);
  int64_t sum = 0;
  for (int i = 0; i < p.threads; ++i) sum += p.sums[i];
  pthread_mutex_unlock(&p.mutex);
  return sum;
}

}  // namespace thread_work
