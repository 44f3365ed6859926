// A server for the identity tests (test_identity.cpp, docs/identity.md):
// descriptors open at the snapshot (a log, a data file read halfway, an
// SQLite database file), a working directory and umask of its own, the
// descriptors, pipes, timers and signals its exports use in calls.
//
//   e2e_identity_server MODE DIR IMAGE
//
// makes DIR (if needed), chdir()s into it, umask(027), writes handout.txt
// and churn.txt there, sets up MODE and snapshots into IMAGE:
//
//   plain            nothing open: the exports that take, hand out, churn and
//                    close descriptors, timers, kill (the working directory is DIR)
//   log              fopen("server.log", "a"), one line written: descriptor 3
//   data             data.txt (3 lines) open on descriptor 3, its first line
//                    read byte by byte
//   cwd              name.txt ("server file"), nothing open
//   sqlite           db.sqlite (rows k = 1..500, v = k*k+7) open through SQLite
//   sigpipe-ignored  signal(SIGPIPE, SIG_IGN); sigpipe-default: SIG_DFL
//   pipe             a pipe and a socket open: snapshot_and_exit refuses
//                    (prints "pipe R W socket S" first)
//   socket           a socket open: subctx::snapshot() throws; prints
//                    "refused CODE" and the message, exits 3
//   pipe-dropped     a pipe declared dropped (SnapshotOptions::dropped_fds)
//   socket-dropped-c a socket declared dropped with sbc_snapshot_drop_fd,
//                    snapshot with sbc_snapshot
//   deleted          gone.txt open and unlinked: refused
//   shared-map       shared.bin mapped MAP_SHARED, PROT_READ|PROT_WRITE, its
//                    descriptor closed: refused
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include <subctx/subctx.h>
#include <subctx/server.hpp>

// ---- state --------------------------------------------------------------
static FILE* g_log = nullptr;
static int g_data = -1;
static sqlite3* g_db = nullptr;
static int g_pipe[2] = {-1, -1};
static int g_sock = -1;
static pid_t g_server_pid = 0;
static volatile int64_t g_counter = 0;
static char g_line[256];
static char g_text[4096];
char g_pages[64 * 4096];

// ---- a log (descriptor 3 in the server) ---------------------------------
int64_t write_log(const char* line) {
  if (!g_log) return -EBADF;
  clearerr(g_log);
  errno = 0;
  if (std::fprintf(g_log, "%s\n", line) < 0 || std::fflush(g_log) != 0) return errno ? -errno : -EIO;
  return 0;
}
int64_t log_fd() { return g_log ? fileno(g_log) : -1; }
// Rotation inside a call: fclose, rename, fopen.  Returns the new log's
// descriptor.
int64_t rotate() {
  if (g_log) std::fclose(g_log);
  g_log = nullptr;
  if (std::rename("server.log", "server.log.1") != 0) return -errno;
  g_log = std::fopen("server.log", "a");
  return g_log ? fileno(g_log) : -errno;
}
SUBCTX_EXPORT(write_log);
SUBCTX_EXPORT(log_fd);
SUBCTX_EXPORT(rotate);

// ---- a data file read halfway -------------------------------------------
// The next line of data.txt (read() byte by byte), "" at its end or on an
// error.
const char* read_line() {
  size_t n = 0;
  char c;
  ssize_t r;
  while (n + 1 < sizeof g_line && (r = read(g_data, &c, 1)) == 1 && c != '\n') g_line[n++] = c;
  g_line[n] = 0;
  return g_line;
}
int64_t data_fd() { return g_data; }
SUBCTX_EXPORT(read_line);
SUBCTX_EXPORT(data_fd);

// ---- working directory and umask ----------------------------------------
// The first line of a file by a (relative) path, or "errno N".
const char* open_relative(const char* name) {
  FILE* f = std::fopen(name, "r");
  if (!f) {
    std::snprintf(g_text, sizeof g_text, "errno %d", errno);
    return g_text;
  }
  if (!std::fgets(g_text, sizeof g_text, f)) g_text[0] = 0;
  std::fclose(f);
  g_text[std::strcspn(g_text, "\n")] = 0;
  return g_text;
}
int64_t do_chdir(const char* path) { return chdir(path) == 0 ? 0 : -errno; }
const char* get_cwd() {
  if (!getcwd(g_text, sizeof g_text)) std::snprintf(g_text, sizeof g_text, "errno %d", errno);
  return g_text;
}
int64_t do_umask(int64_t mask) { return umask(static_cast<mode_t>(mask)); }
// Creates (or truncates) a file by a relative path; returns its mode bits.
int64_t create_file(const char* name) {
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return -errno;
  struct stat st;
  const int rc = fstat(fd, &st);
  close(fd);
  return rc == 0 ? (st.st_mode & 07777) : -errno;
}
SUBCTX_EXPORT(open_relative);
SUBCTX_EXPORT(do_chdir);
SUBCTX_EXPORT(get_cwd);
SUBCTX_EXPORT(do_umask);
SUBCTX_EXPORT(create_file);

// ---- descriptors passed in and handed out -------------------------------
int64_t write_fd(int64_t fd, const char* text) {
  const ssize_t n = write(static_cast<int>(fd), text, std::strlen(text));
  return n < 0 ? -errno : n;
}
int64_t close_fd(int64_t fd) { return close(static_cast<int>(fd)) == 0 ? 0 : -errno; }
// Opens handout.txt (in the server's directory, by a relative path); at > 0
// moves it to number `at` or above (F_DUPFD).  Returns the number.
int64_t open_file(int64_t at) {
  int fd = open("handout.txt", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  if (at > 0) {
    const int moved = fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(at));
    const int e = errno;
    close(fd);
    if (moved < 0) return -e;
    fd = moved;
  }
  return fd;
}
// n open/close pairs of churn.txt.
int64_t churn(int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int fd = open("churn.txt", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (close(fd) != 0) return -errno;
  }
  return n;
}
// close_range(3, ~0): every descriptor above the standard streams.
int64_t close_all() { return syscall(SYS_close_range, 3u, ~0u, 0u) == 0 ? 0 : -errno; }
int64_t pipe_fds() { return int64_t{g_pipe[0]} * 65536 + g_pipe[1]; }
int64_t sock_fd() { return g_sock; }
// An F_GETFD probe: the flags, or -errno.
int64_t fd_flags(int64_t fd) {
  const int f = fcntl(static_cast<int>(fd), F_GETFD);
  return f < 0 ? -errno : f;
}
SUBCTX_EXPORT(write_fd);
SUBCTX_EXPORT(close_fd);
SUBCTX_EXPORT(open_file);
SUBCTX_EXPORT(churn);
SUBCTX_EXPORT(close_all);
SUBCTX_EXPORT(pipe_fds);
SUBCTX_EXPORT(sock_fd);
SUBCTX_EXPORT(fd_flags);

// ---- plain state, memory -------------------------------------------------
int64_t bump(int64_t by) {
  g_counter = g_counter + by;
  return g_counter;
}
int64_t dirty(int64_t pages) {
  for (int64_t i = 0; i < pages && i < 64; ++i) reinterpret_cast<volatile char*>(g_pages)[i * 4096] = 1;
  return pages;
}
SUBCTX_EXPORT(bump);
SUBCTX_EXPORT(dirty);

// ---- SQLite database file ------------------------------------------------
int64_t query(int64_t k) {
  if (!g_db) return -3;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(g_db, "SELECT v FROM kv WHERE k = ?", -1, &st, nullptr) != SQLITE_OK) return -2;
  sqlite3_bind_int64(st, 1, k);
  const int rc = sqlite3_step(st);
  const int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? -1 : -2;
  sqlite3_finalize(st);
  return v;
}
SUBCTX_EXPORT(query);

// ---- signals, timers, processes ------------------------------------------
// A write to a pipe whose read end is closed: the write's result or -errno.
int64_t write_broken_pipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  close(p[0]);
  const ssize_t n = write(p[1], "x", 1);
  const int e = errno;
  close(p[1]);
  return n < 0 ? -e : n;
}
int64_t do_alarm() {
  errno = 0;
  const long r = syscall(SYS_alarm, 1u);
  return r < 0 ? -errno : r;
}
int64_t do_setitimer() {
  itimerval v{};
  v.it_value.tv_usec = 50000;
  return setitimer(ITIMER_REAL, &v, nullptr) == 0 ? 0 : -errno;
}
int64_t do_getitimer() {
  itimerval v{};
  return getitimer(ITIMER_REAL, &v) == 0 ? 0 : -errno;
}
int64_t do_timer_create() {
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, nullptr, &t) != 0) return -errno;
  itimerspec s{};
  s.it_value.tv_nsec = 50000000;
  const int rc = timer_settime(t, 0, &s, nullptr);
  return rc == 0 ? 0 : -errno;
}
int64_t kill_pid(int64_t pid, int64_t sig) {
  return kill(static_cast<pid_t>(pid), static_cast<int>(sig)) == 0 ? 0 : -errno;
}
int64_t kill_server(int64_t sig) { return kill(g_server_pid, static_cast<int>(sig)) == 0 ? 0 : -errno; }
int64_t kill_self(int64_t sig) { return kill(getpid(), static_cast<int>(sig)) == 0 ? 0 : -errno; }
int64_t server_pid() { return g_server_pid; }
// What a call may not change of the client's process or thread
// (docs/containment.md): -errno of each, or what it read.
int64_t result_of(long r) { return r < 0 ? -errno : r; }
int64_t set_own_uid() { return result_of(syscall(SYS_setuid, getuid())); }
int64_t set_own_resuid() { return result_of(syscall(SYS_setresuid, getuid(), getuid(), getuid())); }
int64_t set_nofile_limit(int64_t n) {
  const struct rlimit r { static_cast<rlim_t>(n), static_cast<rlim_t>(n) };
  return result_of(setrlimit(RLIMIT_NOFILE, &r));
}
int64_t nofile_limit() {
  struct rlimit r {};
  return getrlimit(RLIMIT_NOFILE, &r) == 0 ? static_cast<int64_t>(r.rlim_cur) : -errno;
}
int64_t new_session() { return result_of(setsid()); }
int64_t new_process_group() { return result_of(setpgid(0, 0)); }
int64_t query_personality() { return result_of(personality(0xffffffff)); }
int64_t set_personality() { return result_of(personality(ADDR_NO_RANDOMIZE)); }
int64_t query_alt_stack() {
  stack_t old{};
  return result_of(sigaltstack(nullptr, &old));
}
int64_t set_alt_stack() {
  static char alt[64 * 1024];
  stack_t ss{};
  ss.ss_sp = alt;
  ss.ss_size = sizeof alt;
  return result_of(sigaltstack(&ss, nullptr));
}
int64_t set_tid_address_here() {
  static int word;
  return syscall(SYS_set_tid_address, &word) < 0 ? -errno : 0;
}
int64_t pin_here() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) return -errno;
  return result_of(sched_setaffinity(0, sizeof cpus, &cpus));
}
int64_t set_host_name() { return result_of(sethostname("subctx", 6)); }
SUBCTX_EXPORT(set_own_uid);
SUBCTX_EXPORT(set_own_resuid);
SUBCTX_EXPORT(set_nofile_limit);
SUBCTX_EXPORT(nofile_limit);
SUBCTX_EXPORT(new_session);
SUBCTX_EXPORT(new_process_group);
SUBCTX_EXPORT(query_personality);
SUBCTX_EXPORT(set_personality);
SUBCTX_EXPORT(query_alt_stack);
SUBCTX_EXPORT(set_alt_stack);
SUBCTX_EXPORT(set_tid_address_here);
SUBCTX_EXPORT(pin_here);
SUBCTX_EXPORT(set_host_name);
SUBCTX_EXPORT(write_broken_pipe);
SUBCTX_EXPORT(do_alarm);
SUBCTX_EXPORT(do_setitimer);
SUBCTX_EXPORT(do_getitimer);
SUBCTX_EXPORT(do_timer_create);
SUBCTX_EXPORT(kill_pid);
SUBCTX_EXPORT(kill_server);
SUBCTX_EXPORT(kill_self);
SUBCTX_EXPORT(server_pid);

// ---- set-up ---------------------------------------------------------------
static bool write_text(const char* path, const char* text) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const size_t n = std::strlen(text);
  const bool ok = write(fd, text, n) == static_cast<ssize_t>(n);
  return close(fd) == 0 && ok;
}

static int fail(const char* what) {
  std::fprintf(stderr, "identity_server: %s: %s\n", what, std::strerror(errno));
  return 2;
}

static bool make_sqlite() {
  unlink("db.sqlite");
  unlink("db.sqlite-journal");
  if (sqlite3_open("db.sqlite", &g_db) != SQLITE_OK) return false;
  if (sqlite3_exec(g_db, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v INTEGER)", nullptr, nullptr, nullptr) != SQLITE_OK)
    return false;
  sqlite3_exec(g_db, "BEGIN", nullptr, nullptr, nullptr);
  for (int64_t k = 1; k <= 500; ++k) {
    const std::string sql = "INSERT INTO kv VALUES(" + std::to_string(k) + ", " + std::to_string(k * k + 7) + ")";
    if (sqlite3_exec(g_db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return false;
  }
  if (sqlite3_exec(g_db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
  return query(250) == 250 * 250 + 7;  // the connection is warm, its pages cached
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: e2e_identity_server MODE DIR IMAGE\n");
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2], image = argv[3];
  g_server_pid = getpid();
  g_counter = 100;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return fail("mkdir");
  if (chdir(dir.c_str()) != 0) return fail("chdir");
  umask(027);
  if (!write_text("handout.txt", "handout\n") || !write_text("churn.txt", "churn\n")) return fail("write");
  signal(SIGPIPE, SIG_DFL);
  subctx::SnapshotOptions options;

  if (mode == "plain" || mode == "sigpipe-default") {
  } else if (mode == "log") {
    g_log = std::fopen("server.log", "a");
    if (!g_log || write_log("server started") != 0) return fail("server.log");
  } else if (mode == "data") {
    if (!write_text("data.txt", "first line\nsecond line\nthird line\n")) return fail("data.txt");
    g_data = open("data.txt", O_RDONLY);
    if (g_data < 0) return fail("open data.txt");
    if (std::string(read_line()) != "first line") return fail("first line");
  } else if (mode == "cwd") {
    if (!write_text("name.txt", "server file\n")) return fail("name.txt");
  } else if (mode == "sqlite") {
    if (!make_sqlite()) {
      std::fprintf(stderr, "identity_server: sqlite: %s\n", g_db ? sqlite3_errmsg(g_db) : "open failed");
      return 2;
    }
  } else if (mode == "sigpipe-ignored") {
    signal(SIGPIPE, SIG_IGN);
  } else if (mode == "pipe") {
    if (pipe(g_pipe) != 0) return fail("pipe");
    g_sock = socket(AF_UNIX, SOCK_STREAM, 0);
    if (g_sock < 0) return fail("socket");
    std::printf("pipe %d %d socket %d\n", g_pipe[0], g_pipe[1], g_sock);
    std::fflush(stdout);
  } else if (mode == "socket") {
    g_sock = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (g_sock < 0) return fail("socket");
    try {
      subctx::snapshot(image, options);
    } catch (const subctx::SnapshotRefused& e) {
      std::printf("refused %s fd %d\n%s\n", subctx::errc_name(e.code()), g_sock, e.what());
      return 3;
    } catch (const subctx::Error& e) {
      std::printf("other error %s\n%s\n", subctx::errc_name(e.code()), e.what());
      return 4;
    }
    std::printf("not refused\n");
    return 5;
  } else if (mode == "pipe-dropped") {
    if (pipe(g_pipe) != 0) return fail("pipe");
    options.dropped_fds = {g_pipe[0], g_pipe[1]};
  } else if (mode == "socket-dropped-c") {
    g_sock = socket(AF_UNIX, SOCK_STREAM, 0);
    if (g_sock < 0) return fail("socket");
    if (sbc_snapshot_drop_fd(g_sock) != 0) {
      std::fprintf(stderr, "identity_server: sbc_snapshot_drop_fd: %s\n", sbc_last_error());
      return 2;
    }
    if (sbc_snapshot(image.c_str()) != 0) {
      std::fprintf(stderr, "identity_server: sbc_snapshot: %s\n", sbc_last_error());
      return 1;
    }
    _exit(0);
  } else if (mode == "deleted") {
    const int fd = open("gone.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || unlink("gone.txt") != 0) return fail("gone.txt");
    std::printf("deleted %d\n", fd);
    std::fflush(stdout);
  } else if (mode == "shared-map") {
    const int fd = open("shared.bin", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return fail("shared.bin");
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return fail("mmap");
    close(fd);
    static_cast<char*>(p)[0] = 's';
  } else {
    std::fprintf(stderr, "identity_server: unknown mode %s\n", mode.c_str());
    return 2;
  }
  subctx::snapshot_and_exit(image, options);
}
