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
std::string octal(unsigned value);  // "0644"

// Untrusted text (names from an image) made safe to put in a message or on
// a terminal: printable ASCII kept, anything else as \xNN, the backslash
// too (one rule for every escaped byte, as printable_path's), at most
// max_len characters of it, then "..." (kNoLimit: the whole text, for a
// listing that shows a field whole).
inline constexpr size_t kNoLimit = std::string_view::npos;
std::string printable(std::string_view text, size_t max_len = 200);

// A path made safe to put in a message: valid UTF-8 kept (so are spaces),
// control characters (a newline, an escape), C1 controls, invalid bytes and
// the backslash as \xNN; at most max_len bytes of it.
std::string printable_path(std::string_view path, size_t max_len = 4096);

// The length of the valid UTF-8 sequence of a printable character (not a C0
// or C1 control, not DEL) at the start of text; 0 when there is none.
size_t printable_utf8_length(std::string_view text);

}  // namespace subctx::sys
