/* A program that knows nothing of subctx (not linked with it, no subctx
 * header): it builds a table of primes, opens a file, says "ready" and
 * waits.  test_external_snapshot.cpp snapshots it from outside with
 * `subctx snapshot --pid` and calls these functions in the image.
 *
 *   external_target MODE FILE
 *   MODE  pause    wait in pause()
 *         read     wait in read(2) on stdin
 *         pending  leave "pending output" in stdout's buffer, then pause()
 *         pipe     open a pipe (descriptors 4 and 5), then pause()
 *         threads  start a second thread, then pause()
 *         fgets    wait in fgets() on stdin (holds stdin's lock)
 *         malloc   block inside malloc_stats() (holds the arena lock),
 *                  writing to a full pipe on stderr
 *         signals  count SIGUSR1 and SIGRTMIN deliveries (and their
 *                  sigqueue values) while waiting in read(2) on stdin;
 *                  at its end print "usr1 N last V rt N sum S"
 *         altstack wait inside a signal handler running on a small
 *                  sigaltstack, just above a canary; on SIGUSR1 write
 *                  "canary intact" or "canary damaged"
 *         exit-early      exit with status 3 without saying ready
 *         exit-after-ready say ready, then exit at once
 *
 * Environment: EXTERNAL_TARGET_HEAP_MB=N  fill N MiB of heap first (a
 * snapshot that takes a while); EXTERNAL_TARGET_READY_SIGNAL=1  also send
 * SIGUSR1 to the parent when ready; EXTERNAL_TARGET_READY_FD=N  also write
 * "loading\nstatus: all ready\n" to descriptor N when ready, then close it
 * (the launcher form of `subctx snapshot`).
 *   FILE  opened read-only and kept open (a descriptor the image records)
 *
 * Built with lazy binding: strcspn and strtoll are first called by the
 * exports, in a client, through PLT slots the snapshot resolves.
 *
 * Built a second time with EXTERNAL_TARGET_SELF (e2e_external_self, linked
 * with subctx_server): MODE "self" IMAGE exports the same functions and
 * snapshots itself, so that the test compares the two images' answers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef EXTERNAL_TARGET_SELF
#include <subctx/subctx.h>
#endif

#define LIMIT 1000000

static unsigned char composite[LIMIT + 1];
static long primes[80000];
static long prime_count;
static int data_fd = -1;
static char greeting[64];

static void build_table(void) {
  for (long i = 2; i * i <= LIMIT; ++i)
    if (!composite[i])
      for (long j = i * i; j <= LIMIT; j += i) composite[j] = 1;
  for (long i = 2; i <= LIMIT; ++i)
    if (!composite[i]) primes[prime_count++] = i;
}

/* The number of primes below n (n <= LIMIT + 1). */
long count_primes_below(long n) {
  long lo = 0, hi = prime_count;
  while (lo < hi) {
    long mid = (lo + hi) / 2;
    if (primes[mid] < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The k-th prime, 1-based; -1 outside the table. */
long nth_prime(long k) { return k >= 1 && k <= prime_count ? primes[k - 1] : -1; }

/* The size of the file opened at start-up, through its descriptor. */
long data_file_size(void) {
  struct stat st;
  return fstat(data_fd, &st) == 0 ? (long)st.st_size : -1;
}

/* Functions never called before the snapshot (lazily bound PLT slots). */
long span_length(const char* s) { return (long)strcspn(s, ",;"); }
long parse_and_add(const char* s, long add) { return strtoll(s, NULL, 10) + add; }

/* Heap memory inside the subcontext. */
long sum_of_first_primes(long n) {
  if (n < 0 || n > prime_count) return -1;
  long* copy = malloc((size_t)(n + 1) * sizeof *copy);
  if (!copy) return -2;
  long sum = 0;
  for (long i = 0; i < n; ++i) copy[i] = primes[i];
  for (long i = 0; i < n; ++i) sum += copy[i];
  free(copy);
  return sum;
}

/* State set up by the program: a string built at start-up. */
long greeting_length(void) { return (long)strlen(greeting); }

/* What the kernel left at the top of the stack, read through pointers the
   snapshot moved along with the stack: the environment and the auxiliary
   vector (getauxval walks it from glibc's relro pointer). */
long path_length(void) {
  const char* p = getenv("PATH");
  return p ? (long)strlen(p) : -1;
}
long page_size_from_auxv(void) { return (long)getauxval(AT_PAGESZ); }

/* "helper" is also a local function of external_target_part2.c. */
__attribute__((noinline, used)) static long helper(long x) { return x * 2; }
long twice(long x) { return helper(x); }

static volatile sig_atomic_t usr1_count, usr1_last, rt_count, rt_sum;

static void on_usr1(int sig, siginfo_t* si, void* uc) {
  (void)sig, (void)uc;
  usr1_count++;
  usr1_last = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1;
}

static void on_rt(int sig, siginfo_t* si, void* uc) {
  (void)sig, (void)uc;
  rt_count++;
  rt_sum += si->si_code == SI_QUEUE ? si->si_value.sival_int : 0;
}

/* Waits in read(2) on stdin, the signal handlers counting; at EOF prints the counts. */
static int count_signals(void) {
  char c;
  while (read(0, &c, 1) > 0) {
  }
  char out[128];
  int n = snprintf(out, sizeof out, "usr1 %ld last %ld rt %ld sum %ld\n", (long)usr1_count, (long)usr1_last,
                   (long)rt_count, (long)rt_sum);
  return write(1, out, (size_t)n) == n ? 0 : 1;
}

/* The altstack mode: a canary below a small sigaltstack, both in one heap block. */
#define CANARY_SIZE (64 * 1024)
static unsigned char* canary;

static void say(const char* s) { (void)!write(1, s, strlen(s)); }

static void check_canary(void) {
  for (size_t i = 0; i < CANARY_SIZE; ++i)
    if (canary[i] != (unsigned char)(i * 7 + 1)) {
      say("canary damaged\n");
      return;
    }
  say("canary intact\n");
}

/* On the altstack, most of it used: the stack pointer ends up about 3 KiB
 * above the altstack's base, the canary just below.  SIGUSR1 (blocked) is
 * taken with sigwaitinfo, without a signal frame of its own. */
static void wait_on_altstack(int sig) {
  (void)sig;
  volatile char pad[8192 - 3072];
  pad[0] = 1;
  (void)pad[0];
  say("ready\n");
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  for (;;)
    if (sigwaitinfo(&s, NULL) == SIGUSR1) check_canary();
}

static int altstack_mode(void) {
  size_t stack_size = (size_t)sysconf(_SC_MINSIGSTKSZ) + 8192;
  canary = malloc(CANARY_SIZE + stack_size);
  if (!canary) return 1;
  for (size_t i = 0; i < CANARY_SIZE; ++i) canary[i] = (unsigned char)(i * 7 + 1);
  stack_t ss = {.ss_sp = canary + CANARY_SIZE, .ss_size = stack_size, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) return 1;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = wait_on_altstack;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR2, &sa, NULL);
  raise(SIGUSR2);
  return 1;
}

static void* sleeper(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: external_target MODE FILE\n");
    return 2;
  }
  /* Where Yama's ptrace_scope is 1, a sibling (the subctx command the test
   * starts) may trace this process only if it says so. */
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  const char* ready_fd_text = getenv("EXTERNAL_TARGET_READY_FD");
  const int ready_fd = ready_fd_text ? atoi(ready_fd_text) : -1;
  /* Descriptors the test runner leaked to us are not ours to keep. */
  for (int fd = 3; fd < 1024; ++fd)
    if (fd != ready_fd) close(fd);
  build_table();
  const char* heap_mb = getenv("EXTERNAL_TARGET_HEAP_MB");
  if (heap_mb) {
    size_t size = (size_t)atol(heap_mb) << 20;
    unsigned char* heap = malloc(size);
    if (!heap) return 1;
    for (size_t i = 0; i < size; ++i) heap[i] = (unsigned char)(i | 1);
  }
  snprintf(greeting, sizeof greeting, "%ld primes below %d", prime_count, LIMIT);
  data_fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (data_fd < 0) {
    perror(argv[2]);
    return 1;
  }
  const char* mode = argv[1];
#ifdef EXTERNAL_TARGET_SELF
  if (strcmp(mode, "self") == 0) {
    /* argv[2] was the data file; the image path comes from the environment. */
    const char* image = getenv("EXTERNAL_TARGET_IMAGE");
    if (!image) return 2;
    if (sbc_export("count_primes_below", (void*)count_primes_below, "i64(i64)") != 0 ||
        sbc_export("nth_prime", (void*)nth_prime, "i64(i64)") != 0 ||
        sbc_export("data_file_size", (void*)data_file_size, "i64()") != 0 ||
        sbc_export("span_length", (void*)span_length, "i64(str)") != 0 ||
        sbc_export("parse_and_add", (void*)parse_and_add, "i64(str,i64)") != 0 ||
        sbc_export("sum_of_first_primes", (void*)sum_of_first_primes, "i64(i64)") != 0 ||
        sbc_export("greeting_length", (void*)greeting_length, "i64()") != 0 ||
        sbc_export("path_length", (void*)path_length, "i64()") != 0 ||
        sbc_export("page_size_from_auxv", (void*)page_size_from_auxv, "i64()") != 0) {
      fprintf(stderr, "sbc_export: %s\n", sbc_last_error());
      return 1;
    }
    sbc_snapshot_and_exit(image);
  }
#endif
#ifdef EXTERNAL_BLOCKING_LIB
  if (strcmp(mode, "dlopen") == 0) return dlopen(EXTERNAL_BLOCKING_LIB, RTLD_NOW) == NULL; /* says ready inside */
#endif
  if (strcmp(mode, "threads") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
  }
  if (strcmp(mode, "malloc") == 0) {
    /* stderr: a pipe of one page, full, that nobody reads. */
    int p[2];
    if (pipe(p) != 0) return 1;
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    int size = fcntl(p[1], F_GETPIPE_SZ);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    for (int left = size; left > 0;) {
      ssize_t n = write(p[1], junk, left > (int)sizeof junk ? sizeof junk : (size_t)left);
      if (n <= 0) break;
      left -= (int)n;
    }
    fcntl(p[1], F_SETFL, 0);
    dup2(p[1], 2);
    printf("ready\n");
    fflush(stdout);
    malloc_stats(); /* blocks writing to the full pipe, inside malloc_stats */
    return 0;
  }
  if (strcmp(mode, "exit-early") == 0) return 3;
  if (strcmp(mode, "altstack") == 0) return altstack_mode();
  if (strcmp(mode, "signals") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sa.sa_sigaction = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_sigaction = on_rt;
    sigaction(SIGRTMIN, &sa, NULL);
  }
  printf("ready\n");
  fflush(stdout);
  if (getenv("EXTERNAL_TARGET_READY_SIGNAL")) kill(getppid(), SIGUSR1);
  if (ready_fd >= 0) {
    const char msg[] = "loading\nstatus: all ready\n";
    (void)!write(ready_fd, msg, sizeof msg - 1);
    close(ready_fd);
  }
  if (strcmp(mode, "exit-after-ready") == 0) return 0;
  if (strcmp(mode, "signals") == 0) return count_signals();
  if (strcmp(mode, "pending") == 0) printf("pending output");
  if (strcmp(mode, "pipe") == 0) {
    int p[2];
    if (pipe(p) != 0) return 1;
  }
  if (strcmp(mode, "read") == 0) {
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
  }
  if (strcmp(mode, "fgets") == 0) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
    }
    return 0;
  }
  for (;;) pause();
}
