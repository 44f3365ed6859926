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

size_t printable_utf8_length(std::string_view text) {
  if (text.empty()) return 0;
  const auto b = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return c >= ' ' && c != 0x7f ? 1 : 0;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07;
  else return 0;
  if (text.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3f);
  }
  static constexpr uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kShortest[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;  // overlong, surrogate
  if (cp >= 0x80 && cp <= 0x9f) return 0;  // C1 controls (0x9b is a terminal's CSI)
  return n;
}

std::string printable_path(std::string_view path, size_t max_len) {
  std::string out;
  for (size_t i = 0; i < path.size();) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const size_t n = path[i] == '\\' ? 0 : printable_utf8_length(path.substr(i));
    if (n) {
      out.append(path, i, n);
      i += n;
      continue;
    }
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(path[i]));
    out += buf;
    ++i;
  }
  return out;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string octal(unsigned value) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", value);
  return buf;
}

std::string hex(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace subctx::sys
