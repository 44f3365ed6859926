// A server for the containment tests (test_containment.cpp): state to
// change and reset (a global counter, a heap structure, an SQLite table, a
// block malloc'd before the snapshot), every kind of fault, runaway calls,
// memory use, and the system calls the Matchmaker mediates.
#include <fcntl.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

#include <subctx/server.hpp>

// ---- state --------------------------------------------------------------
static volatile int64_t g_counter = 0;
struct Table {
  std::vector<int64_t> values;
  std::string name;
};
static Table* g_table = nullptr;
static sqlite3* g_db = nullptr;
static constexpr size_t kBigBlock = size_t{4} << 20;
static char* g_big = nullptr;
char g_pages[256 * 4096];  // zero at the snapshot (bss); global: its writes stay

int64_t bump(int64_t by) {
  g_counter = g_counter + by;
  return g_counter;
}
int64_t counter() { return g_counter; }
int64_t heap_push(int64_t v) {
  g_table->values.push_back(v);
  g_table->name += "+";
  return static_cast<int64_t>(g_table->values.size());
}
int64_t heap_size() { return static_cast<int64_t>(g_table->values.size()); }
const char* heap_name() { return g_table->name.c_str(); }
static int64_t sql_int(const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(g_db, sql, -1, &st, nullptr) != SQLITE_OK) return -1;
  int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -2;
  sqlite3_finalize(st);
  return v;
}
int64_t sql_insert(int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    std::string sql =
        "INSERT INTO kv(k, v) VALUES(" + std::to_string(100000 + i) + ", 'new row " + std::to_string(i) + "')";
    if (sqlite3_exec(g_db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return -1;
  }
  sqlite3_exec(g_db, "UPDATE kv SET v = 'changed' WHERE k < 10", nullptr, nullptr, nullptr);
  return sql_int("SELECT count(*) FROM kv");
}
int64_t sql_count() { return sql_int("SELECT count(*) FROM kv"); }
int64_t sql_changed() { return sql_int("SELECT count(*) FROM kv WHERE v = 'changed'"); }
int64_t big_byte(int64_t i) { return g_big ? static_cast<unsigned char>(g_big[i]) : -1; }
int64_t free_big() {
  std::free(g_big);  // a mmapped chunk: glibc munmaps part of the image
  g_big = nullptr;
  return 0;
}
int64_t dirty(int64_t pages) {
  for (int64_t i = 0; i < pages; ++i) reinterpret_cast<volatile char*>(g_pages)[i * 4096] = 1;
  return pages;
}
// Every argument register: six integers and eight doubles, each weighted.
double all_registers(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f, double g, double h, double i,
                     double j, double k, double l, double m, double n) {
  return static_cast<double>(a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f) + 7 * g + 8 * h + 9 * i + 10 * j + 11 * k +
         12 * l + 13 * m + 14 * n;
}
SUBCTX_EXPORT(all_registers);
SUBCTX_EXPORT(bump);
SUBCTX_EXPORT(counter);
SUBCTX_EXPORT(heap_push);
SUBCTX_EXPORT(heap_size);
SUBCTX_EXPORT(heap_name);
SUBCTX_EXPORT(sql_insert);
SUBCTX_EXPORT(sql_count);
SUBCTX_EXPORT(sql_changed);
SUBCTX_EXPORT(big_byte);
SUBCTX_EXPORT(free_big);
SUBCTX_EXPORT(dirty);

// ---- faults -------------------------------------------------------------
extern "C" __attribute__((noinline)) int64_t crash_null(int64_t offset) {
  return *reinterpret_cast<volatile int64_t*>(offset);
}
int64_t crash_at(int64_t address) { return *reinterpret_cast<volatile int64_t*>(address); }
int64_t divide(int64_t a, int64_t b) {
  volatile int64_t x = a, y = b;
  return x / y;
}
int64_t illegal() { __builtin_trap(); }
int64_t breakpoint() {
  __asm__ volatile("int3");
  return 0;
}
int64_t do_abort() { abort(); }
static void thrower() { throw std::runtime_error("escaped"); }
int64_t throw_out() {
  thrower();  // nothing catches it: the export is the outermost frame
  return 0;
}
// Deep enough for any gate stack; a fault on its guard page first.
extern "C" __attribute__((noinline)) int64_t recurse(int64_t depth) {
  volatile char pad[4096];
  pad[0] = static_cast<char>(depth);
  if (depth > (int64_t{1} << 40)) return 0;
  return recurse(depth + 1) + pad[0];
}
int64_t do_exit(int64_t status) { exit(static_cast<int>(status)); }
int64_t do_quick_exit(int64_t status) { _exit(static_cast<int>(status)); }
int64_t raise_signal(int64_t sig) { return raise(static_cast<int>(sig)); }
SUBCTX_EXPORT(crash_null);
SUBCTX_EXPORT(crash_at);
SUBCTX_EXPORT(divide);
SUBCTX_EXPORT(illegal);
SUBCTX_EXPORT(breakpoint);
SUBCTX_EXPORT(do_abort);
SUBCTX_EXPORT(throw_out);
SUBCTX_EXPORT(recurse);
SUBCTX_EXPORT(do_exit);
SUBCTX_EXPORT(do_quick_exit);
SUBCTX_EXPORT(raise_signal);

// ---- runaway calls, memory ---------------------------------------------
int64_t spin(int64_t ms) {  // ms < 0: forever
  timespec start{}, now{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ms >= 0 && (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= ms) return ms;
  }
}
int64_t sleep_ms(int64_t ms) {
  timespec t{ms / 1000, (ms % 1000) * 1000000};
  return nanosleep(&t, nullptr) == 0 ? ms : -errno;
}
int64_t map_bytes(int64_t n) {
  void* p = mmap(nullptr, static_cast<size_t>(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  std::memset(p, 7, static_cast<size_t>(n));
  return reinterpret_cast<int64_t>(p);
}
SUBCTX_EXPORT(spin);
SUBCTX_EXPORT(sleep_ms);
SUBCTX_EXPORT(map_bytes);

// ---- system calls -------------------------------------------------------
int64_t my_pid() { return getpid(); }
int64_t my_tid() { return gettid(); }
int64_t try_fork() {
  pid_t p = fork();
  if (p == 0) _exit(0);  // never: fork is refused
  return p < 0 ? -errno : p;
}
int64_t try_brk() { return sbrk(1 << 20) == reinterpret_cast<void*>(-1) ? -errno : 0; }
int64_t try_brk_syscall() { return syscall(SYS_brk, 0) == -1 ? -errno : 0; }
int64_t try_sigaction() {
  struct sigaction a {};
  a.sa_handler = SIG_IGN;
  return sigaction(SIGUSR1, &a, nullptr) == 0 ? 0 : -errno;
}
int64_t try_open(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}
int64_t parent_pid() { return getppid(); }
// ---- file descriptors (closed by reset and unmap) ----
int64_t open_null(int64_t n) {  // the last descriptor opened
  int fd = -1;
  for (int64_t i = 0; i < n; ++i)
    if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) return -errno;
  return fd;
}
int64_t close_fd(int64_t fd) { return close(static_cast<int>(fd)) == 0 ? 0 : -errno; }
int64_t make_pipe() {  // read end * 65536 + write end
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  return int64_t{p[0]} * 65536 + p[1];
}
int64_t dup_onto(int64_t from, int64_t to) {
  return dup2(static_cast<int>(from), static_cast<int>(to)) < 0 ? -errno : to;
}
int64_t open_then_crash(int64_t n) {
  open_null(n);
  return *reinterpret_cast<volatile int64_t*>(uintptr_t{0});
}
// n descriptors passed through a socketpair with SCM_RIGHTS (recvmsg, or
// recvmmsg when `many`); everything else closed again: only the received
// ones stay open.  Returns the last one received.
int64_t receive_fds(int64_t n, int64_t many) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) return -errno;
  std::vector<int> sent;
  for (int64_t i = 0; i < n; ++i) sent.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::vector<char> control(CMSG_SPACE(sizeof(int) * sent.size()));
  char byte = 'x';
  iovec io{&byte, 1};
  msghdr m{};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  m.msg_control = control.data();
  m.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * sent.size());
  std::memcpy(CMSG_DATA(c), sent.data(), sizeof(int) * sent.size());
  int64_t rc = sendmsg(sp[0], &m, 0) == 1 ? 0 : -errno;
  for (int fd : sent) close(fd);
  std::fill(control.begin(), control.end(), 0);
  msghdr r{};
  r.msg_iov = &io;
  r.msg_iovlen = 1;
  r.msg_control = control.data();
  r.msg_controllen = control.size();
  if (rc == 0) {
    if (many) {
      mmsghdr v{};
      v.msg_hdr = r;
      rc = recvmmsg(sp[1], &v, 1, MSG_CMSG_CLOEXEC, nullptr) == 1 ? 0 : -errno;
      r = v.msg_hdr;
    } else {
      rc = recvmsg(sp[1], &r, MSG_CMSG_CLOEXEC) == 1 ? 0 : -errno;
    }
  }
  close(sp[0]);
  close(sp[1]);
  if (rc != 0) return rc;
  const cmsghdr* got = CMSG_FIRSTHDR(&r);
  if (!got || got->cmsg_type != SCM_RIGHTS || got->cmsg_len != CMSG_LEN(sizeof(int) * sent.size())) return -EPROTO;
  int last;
  std::memcpy(&last, CMSG_DATA(got) + sizeof(int) * (sent.size() - 1), sizeof last);
  return last;
}
SUBCTX_EXPORT(open_null);
SUBCTX_EXPORT(close_fd);
SUBCTX_EXPORT(make_pipe);
SUBCTX_EXPORT(dup_onto);
SUBCTX_EXPORT(open_then_crash);
SUBCTX_EXPORT(receive_fds);
// The server's own ids, kept in the image: stale in every client.
static pid_t g_server_pid = 0, g_server_tid = 0;
int64_t signal_snapshot_thread(int64_t sig) {
  return syscall(SYS_tgkill, g_server_pid, g_server_tid, static_cast<int>(sig)) == 0 ? 0 : -errno;
}
int64_t tkill_snapshot_thread(int64_t sig) {
  return syscall(SYS_tkill, g_server_tid, static_cast<int>(sig)) == 0 ? 0 : -errno;
}
int64_t snapshot_pid() { return g_server_pid; }
SUBCTX_EXPORT(signal_snapshot_thread);
SUBCTX_EXPORT(tkill_snapshot_thread);
SUBCTX_EXPORT(snapshot_pid);
int64_t sigmask_roundtrip() {  // blocks SIGUSR2, reads the mask back, unblocks
  sigset_t s, got;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, &s, nullptr) != 0) return -errno;
  sigprocmask(SIG_BLOCK, nullptr, &got);
  const int was = sigismember(&got, SIGUSR2);
  sigprocmask(SIG_UNBLOCK, &s, nullptr);
  return was;
}
// Leaves the direction flag set and rounds upwards, then faults: the
// client must get neither.
int64_t crash_with_flags() {
  fesetround(FE_UPWARD);
  __asm__ volatile("std" ::: "memory");
  return crash_null(8);
}
int64_t block_usr2_and(int64_t then_crash) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  sigaddset(&s, SIGSYS);  // never blocked for real: the Matchmaker needs it
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  if (then_crash) return crash_null(16);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, SIGUSR2) * 10 + sigismember(&now, SIGSYS);
}
int64_t bad_sigmask() {
  return syscall(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<void*>(8), nullptr, 8) == 0 ? 0 : -errno;
}
static void* thread_body(void*) { return nullptr; }
int64_t try_thread() {
  pthread_t t;
  const int e = pthread_create(&t, nullptr, thread_body, nullptr);
  if (e == 0) pthread_join(t, nullptr);
  return -e;
}
int64_t map_fixed_twice(int64_t n) {
  void* p = mmap(nullptr, static_cast<size_t>(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  void* q = mmap(p, static_cast<size_t>(n), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  return q == p ? 0 : -errno;
}
int64_t queue_signal(int64_t sig) {
  union sigval v {};
  return sigqueue(getpid(), static_cast<int>(sig), v) == 0 ? 0 : -errno;
}
SUBCTX_EXPORT(crash_with_flags);
SUBCTX_EXPORT(block_usr2_and);
SUBCTX_EXPORT(bad_sigmask);
SUBCTX_EXPORT(try_thread);
SUBCTX_EXPORT(map_fixed_twice);
SUBCTX_EXPORT(queue_signal);
SUBCTX_EXPORT(my_pid);
SUBCTX_EXPORT(my_tid);
SUBCTX_EXPORT(try_fork);
SUBCTX_EXPORT(try_brk);
SUBCTX_EXPORT(try_brk_syscall);
SUBCTX_EXPORT(try_sigaction);
SUBCTX_EXPORT(try_open);
SUBCTX_EXPORT(parent_pid);
SUBCTX_EXPORT(sigmask_roundtrip);

int main(int argc, char** argv) {
  g_counter = 100;
  g_server_pid = getpid();
  g_server_tid = gettid();
  g_table = new Table{{1, 2, 3}, "table"};
  g_big = static_cast<char*>(std::malloc(kBigBlock));
  std::memset(g_big, 'B', kBigBlock);
  if (sqlite3_open(":memory:", &g_db) != SQLITE_OK) return 2;
  sqlite3_exec(g_db, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)", nullptr, nullptr, nullptr);
  sqlite3_exec(g_db, "BEGIN", nullptr, nullptr, nullptr);
  for (int i = 0; i < 1000; ++i) {
    std::string sql = "INSERT INTO kv VALUES(" + std::to_string(i) + ", 'row " + std::to_string(i) + "')";
    sqlite3_exec(g_db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_exec(g_db, "COMMIT", nullptr, nullptr, nullptr);
  subctx::SnapshotOptions options;
  // Usage: e2e_fault_server [--syscall-rules|--bad-syscall-rule|--allow-rule] IMAGE (build_image puts flags first).
  const std::string flag = argc > 2 ? argv[1] : "";
  if (flag == "--syscall-rules")  // the image's own rules
    options.syscalls = {{"openat", subctx::SyscallRule::Action::Deny, EACCES},
                        {"getppid", subctx::SyscallRule::Action::Fault, 0}};
  if (flag == "--bad-syscall-rule") options.syscalls = {{"no_such_call", subctx::SyscallRule::Action::Deny, EPERM}};
  if (flag == "--allow-rule")  // widening: only a client may allow
    options.syscalls = {{"exit_group", subctx::SyscallRule::Action::Allow, 0}};
  subctx::snapshot_and_exit(argv[argc - 1], options);
}
