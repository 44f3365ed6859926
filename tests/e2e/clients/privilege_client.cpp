// A client helper for test_privilege.cpp, linked statically with the
// client library so that a copy made setuid needs no library search path
// (an AT_SECURE process ignores LD_LIBRARY_PATH and $ORIGIN).
//
//   e2e_privilege_client map IMAGE
//       prints "uid=R euid=E secure=S", then "mapped; open_door(2) = 2" or
//       "refused ERRC: MESSAGE" (the policy server's image)
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <subctx/subctx.hpp>

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "map") {
    std::fprintf(stderr, "usage: e2e_privilege_client map IMAGE\n");
    return 2;
  }
  std::printf("uid=%u euid=%u secure=%lu\n", getuid(), geteuid(), getauxval(AT_SECURE));
  try {
    auto sc = subctx::Matchmaker::instance().request_map(argv[2]);
    std::printf("mapped; open_door(2) = %ld\n", static_cast<long>(sc.call<int64_t(int64_t)>("open_door", 2)));
  } catch (const subctx::Error& e) {
    std::printf("refused %s: %s\n", subctx::errc_name(e.code()), e.what());
  }
  return 0;
}
