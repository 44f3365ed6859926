// The one reader of SUBCTX_* variables (env.hpp).  Which are read
// at init: read_environment (containment.cpp).
#include "sys/env.hpp"

#include <sys/auxv.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sys/io.hpp"

namespace subctx::env {

namespace {

void add_error(std::string* errors, const std::string& error) {
  if (!errors->empty()) *errors += "; ";
  *errors += error;
}

std::string shown(const char* name, const char* v) {
  return std::string(name) + "=" + (*v ? sys::printable(v, 64) : std::string(" (empty)"));
}

// Digits only: strtoull alone would take " -5" as a huge number.
bool parse_decimal(const char* v, uint64_t* out) {
  if (!*v || std::strlen(v) > 20) return false;
  for (const char* p = v; *p; ++p)
    if (*p < '0' || *p > '9') return false;
  errno = 0;
  const unsigned long long n = std::strtoull(v, nullptr, 10);
  if (errno) return false;
  *out = n;
  return true;
}

}  // namespace

bool secure_process() { return getauxval(AT_SECURE) != 0; }

const char* value(const char* name) { return secure_getenv(name); }

void read_number(const char* name, uint64_t min, uint64_t max, uint64_t* out, std::string* errors) {
  const char* v = value(name);
  if (!v) return;
  uint64_t n = 0;
  if (!parse_decimal(v, &n) || n < min || n > max) {
    add_error(errors, shown(name, v) + " is not a number from " + std::to_string(min) + " to " + std::to_string(max));
    return;
  }
  *out = n;
}

void read_word(const char* name, std::initializer_list<const char*> words, const char* meaning, int* index,
               std::string* errors) {
  const char* v = value(name);
  if (!v) return;
  int i = 0;
  for (const char* w : words) {
    if (!std::strcmp(v, w)) {
      *index = i;
      return;
    }
    ++i;
  }
  std::string list;
  i = 0;
  for (const char* w : words) {
    list += (i == 0 ? "" : i + 1 == static_cast<int>(words.size()) ? " or " : ", ") + std::string(w);
    ++i;
  }
  add_error(errors, shown(name, v) + " is not " + meaning + "; use " + list);
}

}  // namespace subctx::env
