// What several groups of modes of e2e_protection_client use
// (protection_client.hpp): output, accesses, mapping, the violation
// handler's record, the client's own SIGSEGV handler, long calls.
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "protection_client.hpp"

namespace prot_client {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "protection_client: %s\n", what.c_str());
  std::exit(2);
}

void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::fflush(stdout);
}

// ---- accesses the compiler must not remove or reorder ------------------

__attribute__((noinline)) int read_byte(uintptr_t a) { return *reinterpret_cast<volatile unsigned char*>(a); }
__attribute__((noinline)) void write_byte(uintptr_t a, unsigned char v) {
  *reinterpret_cast<volatile unsigned char*>(a) = v;
}
using Fn1 = int64_t (*)(int64_t);
__attribute__((noinline)) int64_t call_at(uintptr_t a, int64_t arg) {
  Fn1 volatile f = reinterpret_cast<Fn1>(a);
  return f(arg);
}

// ---- mapping ----------------------------------------------------------

subctx::MapOptions options_for(const std::string& backend) {
  subctx::MapOptions o;
  if (backend == "auto") o.protection = subctx::Protection::Auto;
  else if (backend == "none") o.protection = subctx::Protection::None;
  else if (backend == "mprotect") o.protection = subctx::Protection::Mprotect;
  else if (backend == "pkey") o.protection = subctx::Protection::Pkey;
  else if (backend == "mprotect-readable") {
    o.protection = subctx::Protection::Mprotect;
    o.readable = true;
  } else {
    fail("unknown backend " + backend);
  }
  return o;
}

Subcontext map(const std::string& path, const std::string& backend) {
  try {
    return Matchmaker::instance().request_map(path, options_for(backend));
  } catch (const subctx::Error& e) {
    fail(std::string("map: ") + e.what());
  }
}

uintptr_t export_address(const Subcontext& sc, const std::string& name) {
  for (const auto& e : sc.exports())
    if (e.name == name) return e.address;
  fail("no export " + name);
}

void print_expectation(const Subcontext& sc, uintptr_t a) {
  const subctx::ExportInfo* best = nullptr;
  const subctx::ExportInfo* lowest = nullptr;
  auto exports = sc.exports();
  for (const auto& e : exports) {
    if (!lowest || e.address < lowest->address) lowest = &e;
    if (e.address <= a && (!best || e.address > best->address)) best = &e;
  }
  if (!best) best = lowest;
  const int64_t off = static_cast<int64_t>(a - best->address);
  say("expect 0x%" PRIxPTR " %d %s %s0x%" PRIx64 "\n", a, sc.handle(), best->name.c_str(), off < 0 ? "-" : "+",
      static_cast<uint64_t>(off < 0 ? -off : off));
}

// ---- violation handler ------------------------------------------------

Recorded g_rec;
std::atomic<int> g_violations{0};
thread_local constinit sigjmp_buf* t_jump = nullptr;

void copy_text(char* to, size_t size, const char* from) {
  size_t n = 0;
  if (from)
    while (from[n] && n + 1 < size) {
      to[n] = from[n];
      ++n;
    }
  to[n] = 0;
}

void record(const sbc_violation* v) {
  g_rec.kind = v->kind;
  g_rec.signal = v->signal;
  g_rec.subcontext = v->subcontext;
  g_rec.address = v->address;
  g_rec.pc = v->pc;
  g_rec.export_offset = v->export_offset;
  copy_text(g_rec.image_path, sizeof g_rec.image_path, v->image_path ? v->image_path : "(null)");
  copy_text(g_rec.region, sizeof g_rec.region, v->region ? v->region : "(null)");
  copy_text(g_rec.nearest_export, sizeof g_rec.nearest_export, v->nearest_export ? v->nearest_export : "(null)");
  copy_text(g_rec.detail, sizeof g_rec.detail, v->detail ? v->detail : "(null)");
}

void jumping_handler(const sbc_violation* v, void*) {
  g_violations.fetch_add(1);
  if (!t_jump) {  // a thread that was not meant to fault
    static const char msg[] = "protection_client: unexpected violation on a thread without a jump buffer\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
  }
  record(v);
  siglongjmp(*t_jump, 1);
}

void returning_handler(const sbc_violation* v, void*) {
  record(v);
  static const char msg[] = "violation handler ran and returns\n";
  (void)!write(2, msg, sizeof msg - 1);
}

void print_record(const char* what, uintptr_t expected_address) {
  say("%s: kind %d signal %d subcontext %d address-match %d pc-set %d path %s region %s export %s offset %s0x%" PRIx64
      "\n",
      what, g_rec.kind, g_rec.signal, g_rec.subcontext, g_rec.address == expected_address, g_rec.pc != 0,
      g_rec.image_path, g_rec.region, g_rec.nearest_export, g_rec.export_offset < 0 ? "-" : "+",
      static_cast<uint64_t>(g_rec.export_offset < 0 ? -g_rec.export_offset : g_rec.export_offset));
}

__attribute__((noinline)) bool try_access(int op, uintptr_t a, int64_t* result) {
  sigjmp_buf jump;
  sigjmp_buf* volatile saved = t_jump;
  t_jump = &jump;
  if (sigsetjmp(jump, 1) != 0) {
    t_jump = saved;
    return false;
  }
  int64_t r = 0;
  if (op == 0) r = read_byte(a);
  else if (op == 1) write_byte(a, 'P');
  else r = call_at(a, 1);
  t_jump = saved;
  if (result) *result = r;
  return true;
}

// ---- the client's own SIGSEGV / SIGBUS handlers ------------------------

sigjmp_buf g_client_jump;
volatile sig_atomic_t g_client_signal = 0;
void* volatile g_client_addr = nullptr;
volatile sig_atomic_t g_client_runs = 0;

void client_handler(int sig, siginfo_t* info, void*) {
  g_client_signal = sig;
  g_client_addr = info->si_addr;
  g_client_runs = g_client_runs + 1;
  siglongjmp(g_client_jump, 1);
}

struct sigaction client_action(int extra_flags) {
  struct sigaction sa {};
  sa.sa_sigaction = client_handler;
  sa.sa_flags = SA_SIGINFO | extra_flags;
  sigemptyset(&sa.sa_mask);
  return sa;
}

// ---- long calls the client meets half way --------------------------------
// (protection_client.hpp)
int64_t g_cell = 0;

bool wait_for_cell(int64_t value) {
  for (int i = 0; i < kMaxWaitMs; ++i) {
    if (__atomic_load_n(&g_cell, __ATOMIC_SEQ_CST) == value) return true;
    usleep(1000);
  }
  return false;
}
void let_the_call_return() { __atomic_store_n(&g_cell, 2, __ATOMIC_SEQ_CST); }

// Sends sig to `to` once the call is running (bounded).
void signal_when_inside(pthread_t to, int sig) {
  if (!wait_for_cell(1)) {
    static const char msg[] = "protection_client: the long call never started\n";
    (void)!write(2, msg, sizeof msg - 1);
    let_the_call_return();
    return;
  }
  pthread_kill(to, sig);
}

int64_t long_call(Subcontext& sc) { return sc.call<int64_t(void*, int64_t)>("rendezvous", &g_cell, kMaxWaitMs); }

}  // namespace prot_client
