// The descriptors in a message's control data (SCM_RIGHTS): the walk the
// SIGSYS handler's descriptor translation makes over sendmsg/recvmsg
// control data (fd_syscalls.cpp), on its own so that it can be unit tested
// (tests/unit/cmsg_rights_test.cpp).  Signal context: no libc, no
// allocation; buf is the handler's own copy, never subcontext memory.
#pragma once

#include <sys/socket.h>

#include <cstddef>

#include "fault/signal_context.h"

namespace subctx::fault {

// Walks the control messages in buf[0, len): fn(int* fd) for each
// descriptor of an SCM_RIGHTS message; stops at the first nonzero result.
template <class Fn>
SUBCTX_SIGNAL_CONTEXT long each_right(unsigned char* buf, size_t len, Fn fn) {
  for (size_t at = 0; at + sizeof(struct cmsghdr) <= len;) {
    auto* h = reinterpret_cast<struct cmsghdr*>(buf + at);
    if (h->cmsg_len < sizeof(struct cmsghdr) || h->cmsg_len > len - at) return 0;
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
      const size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      auto* fds = reinterpret_cast<int*>(buf + at + CMSG_LEN(0));
      for (size_t i = 0; i < n; ++i)
        if (const long r = fn(&fds[i])) return r;
    }
    at += CMSG_ALIGN(h->cmsg_len);
  }
  return 0;
}

}  // namespace subctx::fault
