#include "read_string.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sys/io.hpp"

namespace subctx::tool {

ReadString read_string(uint64_t addr, size_t limit) {
  ReadString r;
  // process_vm_readv on ourselves reports an unreadable page as EFAULT
  // instead of raising SIGSEGV, which the Matchmaker's handler owns.  Reads
  // stop at page boundaries so a string that ends just before an unmapped
  // page is still read whole.
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  char buf[4096];
  uint64_t at = addr;
  while (r.text.size() < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>({page - at % page, sizeof buf, limit - r.text.size()}));
    iovec local{buf, want};
    iovec remote{reinterpret_cast<void*>(at), want};
    const ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (n <= 0) {
      r.error = "cannot read memory at " + sys::hex(at) + ": " +
                (n < 0 ? sys::errno_text(errno) : std::string("nothing read"));
      return r;
    }
    const void* nul = std::memchr(buf, '\0', static_cast<size_t>(n));
    if (nul) {
      r.text.append(buf, static_cast<size_t>(static_cast<const char*>(nul) - buf));
      r.ok = true;
      return r;
    }
    r.text.append(buf, static_cast<size_t>(n));
    at += static_cast<uint64_t>(n);
  }
  r.ok = true;
  r.truncated = true;
  return r;
}

}  // namespace subctx::tool
