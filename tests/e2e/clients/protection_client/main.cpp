// e2e_protection_client MODE BACKEND IMAGE [IMAGE2]: MODE to the file of its
// group (protection_client.hpp).
#include <string>

#include "protection_client.hpp"

using namespace prot_client;

int main(int argc, char** argv) {
  if (argc < 4) fail("usage: e2e_protection_client MODE BACKEND IMAGE [IMAGE2]");
  const std::string mode = argv[1], backend = argv[2], image = argv[3];
  // raw_calls.cpp
  if (mode == "raw") return raw_mode(backend, image);
  if (mode == "raw-denied") return raw_denied_mode(backend, image);
  if (mode == "raw-stale") return raw_stale_mode(backend, image);
  // handler.cpp
  if (mode == "handler") return handler_mode(backend, image);
  if (mode == "handler-returns") return handler_returns_mode(backend, image);
  // chaining.cpp
  if (mode == "chain-early") return chain_mode(backend, image, false);
  if (mode == "chain-late") return chain_mode(backend, image, true);
  if (mode == "resethand") return resethand_mode(backend, image);
  if (mode == "dfl") return dfl_mode(backend, image);
  // during_call.cpp
  if (mode == "reenter-call") return reentry_mode("call", backend, image);
  if (mode == "reenter-raw") return reentry_mode("raw", backend, image);
  if (mode == "reenter-raw-handler") return reentry_mode("raw-handler", backend, image);
  if (mode == "sent-segv") return sent_segv_mode(backend, image);
  if (mode == "signal-context") return context_mode(backend, image);
  // freed_memory.cpp
  if (mode == "freed-page") return freed_page_mode(backend, image);
  if (mode == "freed-exit") return freed_exit_mode(backend, image);
  if (mode == "freed-rest") return freed_rest_mode(backend, image, false);
  if (mode == "freed-rest-handler") return freed_rest_mode(backend, image, true);
  // violations.cpp
  if (mode == "inside-fault") return inside_fault_mode(backend, image);
  // threads.cpp
  if (mode == "threads") {
    if (argc < 5) fail("threads needs two images");
    return threads_mode(backend, image, argv[4]);
  }
  return violation_mode(mode, backend, image);  // read-data, write-code, jump-data, raw-data, ... (violations.cpp)
}
