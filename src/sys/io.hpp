// File helpers: short reads are errors, never ignored.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace subctx::sys {

// Reads exactly size bytes at offset; returns false (errno set, or 0 for
// end of file) when it cannot.
bool pread_exact(int fd, void* buf, size_t size, off_t offset);
bool pwrite_exact(int fd, const void* buf, size_t size, off_t offset);

// The same through syscall(2) directly: libc's pread/pwrite wrappers are
// cancellation points and write the thread's TCB around the system call,
// which the snapshot must not do while it copies the TCB.
bool raw_pread_exact(int fd, void* buf, size_t size, off_t offset);
bool raw_pwrite_exact(int fd, const void* buf, size_t size, off_t offset);

// Reads a whole (possibly /proc) file; throws SystemError on failure.
std::string read_text_file(const std::string& path);

std::string errno_text(int err);
std::string hex(uint64_t value);

// Untrusted text (names from an image) made safe to put in a message:
// printable ASCII kept, anything else as \xNN, at most max_len characters.
std::string printable(std::string_view text, size_t max_len = 200);

}  // namespace subctx::sys
