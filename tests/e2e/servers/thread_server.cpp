// Threads inside a subcontext (docs/threads.md): exports that start
// threads with the subcontext's own pthread_create.  test_threads.cpp uses it.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <subctx/server.hpp>

namespace {

auto host_add = subctx::import <int64_t(int64_t)>("host_add");

struct Part {
  int64_t lo = 0, hi = 0, sum = 0;
};

void* sum_part(void* p) {
  if (!p) return nullptr;
  auto* part = static_cast<Part*>(p);
  for (int64_t i = part->lo; i < part->hi; ++i) part->sum += i;
  return nullptr;
}

// A pool started by the first call that needs it and reused by later ones.
constexpr int kMaxPool = 16;
pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
pthread_cond_t work_done = PTHREAD_COND_INITIALIZER;
int pool_threads = 0;  // 0 in the image: a reset puts it back
int64_t job_n = 0, job_generation = 0, parts_done = 0;
Part job_parts[kMaxPool];

void* pool_worker(void* arg) {
  const int me = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  int64_t seen = 0;
  pthread_mutex_lock(&pool_mutex);
  for (;;) {
    while (job_generation == seen) pthread_cond_wait(&work_ready, &pool_mutex);
    seen = job_generation;
    Part part{job_n * me / pool_threads, job_n * (me + 1) / pool_threads, 0};
    pthread_mutex_unlock(&pool_mutex);
    sum_part(&part);
    pthread_mutex_lock(&pool_mutex);
    job_parts[me] = part;
    if (++parts_done == pool_threads) pthread_cond_signal(&work_done);
  }
}

void* spin(void*) {
  std::atomic<uint64_t> turns{0};
  for (;;) turns.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

void* block(void*) {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
  pthread_mutex_lock(&m);
  for (;;) pthread_cond_wait(&never, &m);
  return nullptr;
}

// A store to address 16: SIGSEGV (the address comes from outside the
// compiler's sight, so it cannot prove the fault and drop it).
volatile uintptr_t fault_address = 16;
void* fault(void*) {
  *reinterpret_cast<volatile int*>(fault_address) = 1;
  return nullptr;
}

void* end_process(void*) { _exit(3); }

// Recursion until the thread's stack runs out (its guard page faults).
int64_t deeper(int64_t n) {
  volatile char pad[256];
  pad[0] = static_cast<char>(n);
  return n <= 0 ? pad[0] : deeper(n - 1) + pad[0];
}
void* overflow(void*) {
  deeper(1 << 30);
  return nullptr;
}

void* call_import(void* arg) {
  *static_cast<int64_t*>(arg) = host_add(1);
  return nullptr;
}

// Pipes opened, written, read and closed in a loop: the descriptor table
// written by several threads at once.  Returns the bytes that came back.
void* pipe_churn(void* arg) {
  const int64_t rounds = *static_cast<int64_t*>(arg);
  int64_t got = 0;
  for (int64_t i = 0; i < rounds; ++i) {
    int fds[2];
    if (pipe(fds) != 0) continue;
    char b = static_cast<char>('a' + i % 26), c = 0;
    if (write(fds[1], &b, 1) == 1 && read(fds[0], &c, 1) == 1 && c == b) ++got;
    close(fds[0]);
    close(fds[1]);
  }
  *static_cast<int64_t*>(arg) = got;
  return nullptr;
}

int64_t start_detached(void* (*fn)(void*), int64_t k) {
  int64_t started = 0;
  for (int64_t i = 0; i < k; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, fn, nullptr) != 0) break;
    pthread_detach(t);
    ++started;
  }
  return started;
}

}  // namespace

// Eight threads sum disjoint parts of 0..n-1; -errno when one cannot start.
int64_t parallel_sum(int64_t n) {
  constexpr int kThreads = 8;
  Part parts[kThreads];
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    parts[i] = {n * i / kThreads, n * (i + 1) / kThreads, 0};
    if (const int err = pthread_create(&threads[i], nullptr, sum_part, &parts[i])) {
      for (int j = 0; j < i; ++j) pthread_join(threads[j], nullptr);
      return -err;
    }
  }
  int64_t sum = 0;
  for (int i = 0; i < kThreads; ++i) {
    pthread_join(threads[i], nullptr);
    sum += parts[i].sum;
  }
  return sum;
}

// The sum of 0..n-1 by a pool of k threads started in the first call.
int64_t pool_sum(int64_t n, int64_t k) {
  pthread_mutex_lock(&pool_mutex);
  while (pool_threads < k && pool_threads < kMaxPool) {
    pthread_t t;
    if (const int err = pthread_create(&t, nullptr, pool_worker, reinterpret_cast<void*>(intptr_t{pool_threads}))) {
      pthread_mutex_unlock(&pool_mutex);
      return -err;
    }
    pthread_detach(t);
    ++pool_threads;
  }
  job_n = n;
  parts_done = 0;
  ++job_generation;
  pthread_cond_broadcast(&work_ready);
  while (parts_done < pool_threads) pthread_cond_wait(&work_done, &pool_mutex);
  int64_t sum = 0;
  for (int i = 0; i < pool_threads; ++i) sum += job_parts[i].sum;
  pthread_mutex_unlock(&pool_mutex);
  return sum;
}

int64_t pool_size() { return pool_threads; }
int64_t spin_threads(int64_t k) { return start_detached(spin, k); }
int64_t block_threads(int64_t k) { return start_detached(block, k); }
// Threads started and joined one after another until one cannot start.
int64_t threads_at_once(int64_t k) {
  pthread_t threads[64];
  int64_t started = 0;
  while (started < k && started < 64 && pthread_create(&threads[started], nullptr, block, nullptr) == 0) ++started;
  return started;  // they stay (blocked): the limit counts running threads
}
// Runs fn(arg) on a new thread and joins it: then `done`, or -errno of
// pthread_create.  (The kernel wakes the join when the thread ends, even one
// a fault or an exit ended.)
int64_t joined(void* (*fn)(void*), void* arg, int64_t done) {
  pthread_t t;
  if (const int err = pthread_create(&t, nullptr, fn, arg)) return -err;
  pthread_join(t, nullptr);
  return done;
}
int64_t fault_in_thread() { return joined(fault, nullptr, 1); }
// A thread with a stack of `kib` KiB (glibc's mapping: that plus its guard)
// that makes the system calls the SIGSYS handler needs most stack for (a
// path; poll, whose descriptors it translates in a 12 KiB table): the
// bytes read, or -errno of pthread_create.
void* read_status(void*) {
  char buf[512];
  const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  struct pollfd p = {fd, POLLIN, 0};
  const ssize_t n = fd < 0 || poll(&p, 1, 1000) != 1 ? -1 : read(fd, buf, sizeof buf);
  if (fd >= 0) close(fd);
  return reinterpret_cast<void*>(static_cast<intptr_t>(n));
}
int64_t thread_with_stack(int64_t kib) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, static_cast<size_t>(kib) * 1024);
  pthread_t t;
  const int err = pthread_create(&t, &attr, read_status, nullptr);
  pthread_attr_destroy(&attr);
  if (err) return -err;
  void* got = nullptr;
  pthread_join(t, &got);
  return static_cast<int64_t>(reinterpret_cast<intptr_t>(got));
}
// Clones a thread must not be: without CLONE_FILES (a table of its own
// would give the shared namespace other files' numbers), and a process.
// Both -errno, nothing started.
int64_t odd_clones() {
  static char stack[64 * 1024];
  const long no_files = syscall(SYS_clone, CLONE_VM | CLONE_FS | CLONE_SIGHAND | CLONE_THREAD | CLONE_SETTLS,
                                stack + sizeof stack, nullptr, nullptr, stack);
  const int e1 = no_files < 0 ? errno : 0;
  const long process = syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  const int e2 = process < 0 ? errno : 0;
  // clone3 with a struct larger than the Matchmaker knows: E2BIG when the
  // words past it are not zero, as the kernel says.
  uint64_t args[12] = {};  // struct clone_args (88 bytes) and one word more
  args[11] = 1;
  const long too_big = syscall(SYS_clone3, args, sizeof args);
  const int e3 = too_big < 0 ? errno : 0;
  return e3 * 1000000 + e1 * 1000 + e2;
}
// A thread that starts and joins threads without end: a reset or unmap
// must stop it and every thread it is starting.
void* spawn_forever(void*) {
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, nullptr, sum_part, nullptr) == 0) pthread_join(t, nullptr);
  }
  return nullptr;
}
int64_t start_spawner() { return start_detached(spawn_forever, 1); }
// Threads that wait with every signal blocked, or for every signal: a
// reset must still stop them.
void* suspend_all(void*) {
  sigset_t all;
  sigfillset(&all);
  for (;;) sigsuspend(&all);
  return nullptr;
}
void* wait_all(void*) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    int sig;
    sigwait(&all, &sig);
  }
  return nullptr;
}
void* ppoll_all(void*) {
  sigset_t all;
  sigfillset(&all);
  for (;;) ppoll(nullptr, 0, nullptr, &all);
  return nullptr;
}
int64_t start_waiters() {
  return start_detached(suspend_all, 1) + start_detached(wait_all, 1) + start_detached(ppoll_all, 1);
}
// A thread that maps more than the mapped-bytes quota allows.
void* map_much(void* arg) {
  const size_t n = static_cast<size_t>(*static_cast<int64_t*>(arg));
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *static_cast<int64_t*>(arg) = p == MAP_FAILED ? -errno : 0;
  return nullptr;
}
int64_t map_in_thread(int64_t bytes) {
  const int64_t r = joined(map_much, &bytes, 0);
  return r < 0 ? r : bytes;
}
int64_t crash_in_call() {
  fault(nullptr);
  return 1;
}
int64_t overflow_in_thread() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  const int err = pthread_create(&t, &attr, overflow, nullptr);
  pthread_attr_destroy(&attr);
  if (err) return -err;
  pthread_join(t, nullptr);
  return 1;
}
int64_t exit_in_thread() { return joined(end_process, nullptr, 1); }
// Four threads churn pipes; the round trips that worked.
int64_t pipes_in_threads(int64_t rounds) {
  pthread_t threads[4];
  int64_t counts[4];
  for (int i = 0; i < 4; ++i) {
    counts[i] = rounds;
    if (const int err = pthread_create(&threads[i], nullptr, pipe_churn, &counts[i])) return -err;
  }
  int64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    pthread_join(threads[i], nullptr);
    total += counts[i];
  }
  return total;
}
// A thread of the subcontext changes its own kernel state (docs/containment.md:
// made there, refused on the client's thread in a call): its CPU affinity,
// and an alternate signal stack (recorded and reported, the thread's real
// one stays the Matchmaker's).  0 when all worked.
void* own_thread_state(void* arg) {
  static char alt[64 * 1024];
  stack_t ss{};
  ss.ss_sp = alt;
  ss.ss_size = sizeof alt;
  cpu_set_t cpus;
  int64_t failed = 0;
  stack_t now{};
  if (sigaltstack(&ss, nullptr) != 0) failed |= 1;
  if (sigaltstack(nullptr, &now) != 0 || now.ss_sp != alt || now.ss_size != sizeof alt) failed |= 8;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0 || sched_setaffinity(0, sizeof cpus, &cpus) != 0) failed |= 2;
  ss.ss_flags = SS_DISABLE;
  if (sigaltstack(&ss, nullptr) != 0) failed |= 4;
  if (sigaltstack(nullptr, &now) != 0 || now.ss_flags != SS_DISABLE) failed |= 16;
  ss.ss_flags = 0;
  ss.ss_size = 100;  // below MINSIGSTKSZ: refused as the kernel refuses it
  if (sigaltstack(&ss, nullptr) != -1 || errno != ENOMEM) failed |= 32;
  *static_cast<int64_t*>(arg) = failed;
  return nullptr;
}
int64_t thread_state_in_thread() {
  int64_t failed = -1;
  const int64_t r = joined(own_thread_state, &failed, 0);
  return r < 0 ? r : failed;
}
// pthread_create with an affinity attribute: glibc sets the new thread's
// affinity from the parent (the call's thread), naming it by its tid.
void* do_nothing(void*) { return nullptr; }
int64_t thread_with_affinity() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) return -errno;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
  pthread_t t;
  const int err = pthread_create(&t, &attr, do_nothing, nullptr);
  pthread_attr_destroy(&attr);
  if (err) return -err;
  pthread_join(t, nullptr);
  return 0;
}
int64_t plus_one(int64_t x) { return x + 1; }
// An import called in the call (works), then from a thread (its failure).
int64_t add_in_call(int64_t x) { return host_add(x); }
int64_t import_in_thread() {
  int64_t got = -1;
  const int64_t r = joined(call_import, &got, 0);
  return r < 0 ? r : got;  // got -1: the thread ended before its import returned
}

SUBCTX_EXPORT(parallel_sum);
SUBCTX_EXPORT(pool_sum);
SUBCTX_EXPORT(pool_size);
SUBCTX_EXPORT(spin_threads);
SUBCTX_EXPORT(block_threads);
SUBCTX_EXPORT(threads_at_once);
SUBCTX_EXPORT(fault_in_thread);
SUBCTX_EXPORT(thread_with_stack);
SUBCTX_EXPORT(exit_in_thread);
SUBCTX_EXPORT(overflow_in_thread);
SUBCTX_EXPORT(crash_in_call);
SUBCTX_EXPORT(map_in_thread);
SUBCTX_EXPORT(odd_clones);
SUBCTX_EXPORT(start_spawner);
SUBCTX_EXPORT(start_waiters);
SUBCTX_EXPORT(pipes_in_threads);
SUBCTX_EXPORT(plus_one);
SUBCTX_EXPORT(thread_state_in_thread);
SUBCTX_EXPORT(thread_with_affinity);
SUBCTX_EXPORT(add_in_call);
SUBCTX_EXPORT(import_in_thread);

int main(int argc, char** argv) { subctx::snapshot_and_exit(argc > 1 ? argv[1] : "thread.img"); }
