#include "sys/io.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "subctx/error.hpp"
#include "sys/unique_fd.hpp"

namespace subctx::sys {

namespace {

// Loops until size bytes moved: short transfers and EINTR are not errors.
template <class Buf, class Op>
bool transfer_exact(Buf* buf, size_t size, off_t offset, Op op) {
  auto* p = reinterpret_cast<std::conditional_t<std::is_const_v<Buf>, const uint8_t, uint8_t>*>(buf);
  while (size > 0) {
    long n = op(p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = 0;
      return false;
    }
    p += n, size -= static_cast<size_t>(n), offset += n;
  }
  return true;
}

}  // namespace

bool pread_exact(int fd, void* buf, size_t size, off_t offset) {
  return transfer_exact(buf, size, offset, [fd](void* p, size_t n, off_t o) { return ::pread(fd, p, n, o); });
}

bool pwrite_exact(int fd, const void* buf, size_t size, off_t offset) {
  return transfer_exact(buf, size, offset, [fd](const void* p, size_t n, off_t o) { return ::pwrite(fd, p, n, o); });
}

bool raw_pread_exact(int fd, void* buf, size_t size, off_t offset) {
  return transfer_exact(buf, size, offset,
                        [fd](void* p, size_t n, off_t o) { return ::syscall(SYS_pread64, fd, p, n, o); });
}

bool raw_pwrite_exact(int fd, const void* buf, size_t size, off_t offset) {
  return transfer_exact(buf, size, offset,
                        [fd](const void* p, size_t n, off_t o) { return ::syscall(SYS_pwrite64, fd, p, n, o); });
}

std::string read_text_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw SystemError("cannot open " + path + ": " + errno_text(errno));
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SystemError("cannot read " + path + ": " + errno_text(errno));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string printable(std::string_view text, size_t max_len) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    if (c >= ' ' && c <= '~' && c != '\\') {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string hex(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace subctx::sys
