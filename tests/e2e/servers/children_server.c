/* Child processes started by subcontext code (docs/threads.md, "Child
 * processes"): exports that posix_spawn, vfork + execve, fork, wait and
 * kill, in C.  test_children.cpp uses it.
 *
 *   e2e_children_server [--declare] IMAGE   (--declare: the image declares that it spawns)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <subctx/subctx.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A wait status as one number: the exit status, or 1000 + the signal. */
static int64_t status_code(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 1000 + WTERMSIG(st);
  return 2000;
}

static int64_t wait_for(pid_t pid) {
  int st = 0;
  pid_t r;
  do r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : status_code(st);
}

/* posix_spawn of path with one argument (arg "" : none); its exit status,
 * or -errno of the spawn or the wait. */
static int64_t spawn_status(const char *path, const char *arg) {
  char *argv[] = {(char *)path, *arg ? (char *)arg : NULL, NULL};
  pid_t pid;
  const int err = posix_spawn(&pid, path, NULL, NULL, argv, environ);
  if (err) return -err;
  return wait_for(pid);
}

/* Reads fd to its end into out (at most cap - 1 bytes, NUL-terminated). */
static int64_t read_all(int fd, char *out, int64_t cap) {
  int64_t n = 0;
  for (;;) {
    const ssize_t r = read(fd, out + n, (size_t)(cap - 1 - n));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += r;
    if (n == cap - 1) break;
  }
  out[n] = 0;
  return n;
}

/* posix_spawn of `/bin/sh -c script`, its standard output into out; returns
 * its exit status (or -errno), with the output in out. */
static int64_t spawn_sh(const char *script, char *out, int64_t cap) {
  int p[2];
  if (pipe2(p, O_CLOEXEC)) return -errno;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
  pid_t pid;
  const int err = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (err) {
    close(p[0]);
    return -err;
  }
  read_all(p[0], out, cap);
  close(p[0]);
  return wait_for(pid);
}

/* posix_spawn of `/bin/sh -c script` in a session of its own
 * (POSIX_SPAWN_SETSID: the child's setsid before its exec); its status. */
static int64_t spawn_sh_setsid(const char *script) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
  pid_t pid;
  const int err = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  return err ? -err : wait_for(pid);
}

/* posix_spawn whose child opens fifo for reading before its exec (a file
 * action): with no writer the open waits, and so does the parent (vfork).
 * The exit status, or -errno. */
static int64_t spawn_opening_fifo(const char *fifo) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, fifo, O_RDONLY, 0);
  char *argv[] = {"/bin/true", NULL};
  pid_t pid;
  const int err = posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return err ? -err : wait_for(pid);
}

/* vfork + execve of `/bin/sh -c script` (Python's subprocess does this),
 * its output into out. */
static int64_t vfork_sh(const char *script, char *out, int64_t cap) {
  int p[2];
  if (pipe2(p, O_CLOEXEC)) return -errno;
  char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
  volatile int exec_errno = 0;
  const pid_t pid = vfork();
  if (pid == 0) {
    dup2(p[1], 1);
    execve("/bin/sh", argv, environ);
    exec_errno = errno;
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -errno;
  }
  read_all(p[0], out, cap);
  close(p[0]);
  const int64_t st = wait_for(pid);
  return exec_errno ? -exec_errno : st;
}

/* A file of the subcontext's open (not close-on-exec) at fd 3 or above:
 * the child reads it through its number. */
static int64_t spawn_reads_own_file(const char *file, char *out, int64_t cap) {
  const int fd = open(file, O_RDONLY);
  if (fd < 0) return -errno;
  char script[64];
  snprintf(script, sizeof script, "cat <&%d", fd);
  const int64_t r = spawn_sh(script, out, cap);
  close(fd);
  return r;
}

static int64_t fork_result(void) {
  const pid_t pid = fork();
  if (pid == 0) _exit(0); /* not reached when refused */
  if (pid < 0) return -errno;
  wait_for(pid);
  return pid;
}

static int64_t wait_any(void) {
  int st;
  const pid_t r = waitpid(-1, &st, WNOHANG);
  return r < 0 ? -errno : r;
}
static int64_t wait_pid(int64_t pid) { return wait_for((pid_t)pid); }
static int64_t kill_pid(int64_t pid, int64_t sig) { return kill((pid_t)pid, (int)sig) ? -errno : 0; }

/* A child that runs on: its pid, not waited for. */
static int64_t start_sleeper(void) {
  char *argv[] = {"/bin/sleep", "30", NULL};
  pid_t pid;
  const int err = posix_spawn(&pid, "/bin/sleep", NULL, NULL, argv, environ);
  return err ? -err : pid;
}

/* n spawns of /bin/true, each waited for: how many exited 0. */
static int64_t spawn_many(int64_t n) {
  int64_t ok = 0;
  for (int64_t i = 0; i < n; ++i) ok += spawn_status("/bin/true", "") == 0;
  return ok;
}

/* Two children, then a wait for any: both are reaped, then ECHILD. */
static int64_t wait_any_two(void) {
  if (spawn_status("/bin/true", "") != 0) return -1000;
  pid_t a, b;
  char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
  if (posix_spawn(&a, "/bin/sh", NULL, NULL, argv, environ)) return -1001;
  if (posix_spawn(&b, "/bin/sh", NULL, NULL, argv, environ)) return -1002;
  int64_t sum = 0;
  for (int i = 0; i < 2; ++i) {
    int st;
    const pid_t r = waitpid(-1, &st, 0);
    if (r != a && r != b) return r < 0 ? -errno : -1003;
    sum += status_code(st);
  }
  int st;
  return waitpid(-1, &st, 0) < 0 && errno == ECHILD ? sum : -1004;
}

/* A vfork child that faults before its exec: the parent sees it killed. */
static int *volatile nowhere = (int *)16; /* not a constant: the compiler cannot see the fault coming */
static int64_t vfork_fault(void) {
  const pid_t pid = vfork();
  if (pid == 0) {
    *nowhere = 1;
    _exit(0);
  }
  return pid < 0 ? -errno : wait_for(pid);
}

/* What a vfork child may not do before its exec: turn mediation off
 * (EPERM), map memory (ENOMEM), fork (EPERM); as e_prctl * 10000 + e_mmap
 * * 100 + e_fork. */
static int64_t child_refusals(void) {
  volatile int e_prctl = 0, e_mmap = 0, e_fork = 0;
  const pid_t pid = vfork();
  if (pid == 0) {
    if (prctl(59 /* PR_SET_SYSCALL_USER_DISPATCH */, 0, 0, 0, 0) != 0) e_prctl = errno;
    if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) e_mmap = errno;
    if (syscall(SYS_fork) < 0) e_fork = errno;
    _exit(0);
  }
  if (pid < 0) return -errno;
  wait_for(pid);
  return e_prctl * 10000 + e_mmap * 100 + e_fork;
}

static void *spawn_thread(void *arg) {
  *(int64_t *)arg = spawn_status("/bin/false", "");
  return NULL;
}
/* posix_spawn from a thread the subcontext started. */
static int64_t spawn_in_thread(void) {
  int64_t got = -1;
  pthread_t t;
  if (pthread_create(&t, NULL, spawn_thread, &got)) return -2000;
  pthread_join(t, NULL);
  return got;
}

struct export_spec {
  const char *name;
  void *fn;
  const char *signature;
};

int main(int argc, char **argv) {
  const int declare = argc == 3 && !strcmp(argv[1], "--declare");
  if (argc != 2 + declare) {
    fprintf(stderr, "usage: %s [--declare] IMAGE\n", argv[0]);
    return 2;
  }
  const struct export_spec specs[] = {
      {"spawn_status", (void *)spawn_status, "i64(str,str)"},
      {"spawn_sh", (void *)spawn_sh, "i64(str,ptr,i64)"},
      {"vfork_sh", (void *)vfork_sh, "i64(str,ptr,i64)"},
      {"spawn_sh_setsid", (void *)spawn_sh_setsid, "i64(str)"},
      {"spawn_opening_fifo", (void *)spawn_opening_fifo, "i64(str)"},
      {"spawn_reads_own_file", (void *)spawn_reads_own_file, "i64(str,ptr,i64)"},
      {"fork_result", (void *)fork_result, "i64()"},
      {"wait_any", (void *)wait_any, "i64()"},
      {"wait_pid", (void *)wait_pid, "i64(i64)"},
      {"kill_pid", (void *)kill_pid, "i64(i64,i64)"},
      {"start_sleeper", (void *)start_sleeper, "i64()"},
      {"spawn_many", (void *)spawn_many, "i64(i64)"},
      {"wait_any_two", (void *)wait_any_two, "i64()"},
      {"vfork_fault", (void *)vfork_fault, "i64()"},
      {"child_refusals", (void *)child_refusals, "i64()"},
      {"spawn_in_thread", (void *)spawn_in_thread, "i64()"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; ++i)
    if (sbc_export(specs[i].name, specs[i].fn, specs[i].signature) != 0) {
      fprintf(stderr, "sbc_export(%s): %s\n", specs[i].name, sbc_last_error());
      return 3;
    }
  if (declare && sbc_snapshot_declare_spawns() != 0) {
    fprintf(stderr, "sbc_snapshot_declare_spawns: %s\n", sbc_last_error());
    return 4;
  }
  sbc_snapshot_and_exit(argv[argc - 1]);
}
