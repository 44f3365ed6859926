// A C++ program that knows nothing of subctx: at start-up it fills a
// std::unordered_map, then waits in pause().  Its extern "C" functions use
// the map, exceptions (thrown and caught inside) and iostreams, in a client,
// after `subctx snapshot --pid` (test_external_snapshot.cpp).
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace {
std::unordered_map<std::string, long> table;

long find_or_throw(const std::string& key) {
  auto it = table.find(key);
  if (it == table.end()) throw std::out_of_range("no key " + key);
  return it->second;
}
}  // namespace

// The value of "key<i>" (i squared), or -1: the exception is caught here.
extern "C" long lookup(const char* key) {
  try {
    return find_or_throw(key);
  } catch (const std::out_of_range&) {
    return -1;
  }
}

// How many whitespace-separated words, through an istringstream.
extern "C" long word_count(const char* text) {
  std::istringstream in(text);
  std::string w;
  long n = 0;
  while (in >> w) ++n;
  return n;
}

extern "C" long table_size() { return static_cast<long>(table.size()); }

int main() {
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  for (long i = 0; i < 100000; ++i) table["key" + std::to_string(i)] = i * i;
  // One exception thrown and caught before the snapshot, one kind after.
  try {
    find_or_throw("absent");
  } catch (const std::exception&) {
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) pause();
}
