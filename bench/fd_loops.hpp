// The system-call loops bench_identity times inside a subcontext (exports of
// bench_identity_server) and directly in the client: both sides run the same
// code.  getpgrp: a system call without a descriptor that the SIGSYS handler
// makes like a blocking one (its signal mask switched around it), the
// baseline for fstat and pread on a descriptor the namespace translates.
// noipa: never inlined, cloned or analysed across the call.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

__attribute__((noipa)) inline int64_t getpgrp_loop(int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += getpgrp();
  return sum;
}

// n fstat(fd): the sum of the inode numbers, or -errno.
__attribute__((noipa)) inline int64_t fstat_loop_fd(int fd, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    sum += static_cast<int64_t>(st.st_ino);
  }
  return sum;
}

// n pread(fd, 1 byte, offset 0): the sum of the bytes, or -errno.
__attribute__((noipa)) inline int64_t pread_loop_fd(int fd, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    unsigned char c;
    const ssize_t r = pread(fd, &c, 1, 0);
    if (r != 1) return r < 0 ? -errno : -EIO;
    sum += c;
  }
  return sum;
}
