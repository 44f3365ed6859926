#include <cstdlib>
#include <cstdio>
#include <string>

#include "matchmaker/registry.hpp"

namespace subctx::matchmaker {

namespace {
void from_env(const char* name, uint64_t* value) {
  const char* s = std::getenv(name);
  if (!s || !*s) return;
  // Digits only: strtoull alone would take " -5" as a huge number.
  bool digits = true;
  for (const char* p = s; *p; ++p) digits = digits && *p >= '0' && *p <= '9';
  char* end = nullptr;
  errno = 0;
  unsigned long long v = digits ? std::strtoull(s, &end, 10) : 0;
  if (!digits || errno || v == 0) {
    std::fprintf(stderr, "subctx: ignoring %s=\"%s\": expected a positive integer; using %llu\n", name, s,
                 static_cast<unsigned long long>(*value));
    return;
  }
  *value = v;
}
}  // namespace

Limits limits_from_environment() {
  Limits l;
  from_env("SUBCTX_MAX_SUBCONTEXTS", &l.subcontexts);
  from_env("SUBCTX_MAX_IMAGE_SIZE", &l.image_size);
  from_env("SUBCTX_MAX_EXPORTS", &l.exports);
  from_env("SUBCTX_MAX_SEGMENTS", &l.segments);
  return l;
}

}  // namespace subctx::matchmaker
