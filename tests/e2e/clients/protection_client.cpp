// Client helper of the protection tests (test_protection.cpp): each mode does
// one thing the Matchmaker must stop, forward or leave alone, in a process
// of its own, and prints what the test compares.  Lines printed before an
// access that may end the process are flushed first.
//
//   e2e_protection_client MODE BACKEND IMAGE [IMAGE2]
//
// BACKEND: auto, none, mprotect, pkey, or mprotect-readable.  Exit status 2:
// bad usage or an unexpected error (on stderr).
//
// Linked with the static client library so that a constructor of priority
// 101 runs before the Matchmaker is installed: with E2E_PROT_EARLY=1 it
// installs the client's SIGSEGV and SIGBUS handlers first (chaining tests).
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <subctx/subctx.h>
#include <subctx/subctx.hpp>

#include "main_stack.hpp"

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace {

using subctx::Matchmaker;
using subctx::Subcontext;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "protection_client: %s\n", what.c_str());
  std::exit(2);
}

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
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
int* volatile g_null = nullptr;
__attribute__((noinline)) void write_null() { *g_null = 1; }

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

// "expect ADDR HANDLE NEAREST OFFSET": what the diagnostic must name for an
// access at a: the export at or below a (else the lowest one).
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

struct Recorded {
  int kind, signal, subcontext;
  uintptr_t address, pc;
  intptr_t export_offset;
  char image_path[512], region[256], nearest_export[128], detail[512];
};
Recorded g_rec;
std::atomic<int> g_violations{0};
thread_local sigjmp_buf* t_jump = nullptr;

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

// One access with jumping_handler installed: op 0 reads, 1 writes 'P', 2
// calls a(1).  True when it was made (*result: what it read or returned);
// false when the violation handler jumped out.
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
  struct sigaction sa{};
  sa.sa_sigaction = client_handler;
  sa.sa_flags = SA_SIGINFO | extra_flags;
  sigemptyset(&sa.sa_mask);
  return sa;
}

__attribute__((constructor(101))) void install_early_handlers() {
  const char* early = std::getenv("E2E_PROT_EARLY");
  if (!early || std::strcmp(early, "1") != 0) return;
  struct sigaction sa = client_action(0);
  __sigaction(SIGSEGV, &sa, nullptr);  // libc's own: the Matchmaker is not installed yet
  __sigaction(SIGBUS, &sa, nullptr);
}

bool is_client_handler(int sig) {
  struct sigaction old{};
  if (sigaction(sig, nullptr, &old) != 0) return false;
  return (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == client_handler;
}

bool is_default(int sig) {
  struct sigaction old{};
  if (sigaction(sig, nullptr, &old) != 0) return false;
  return !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
}

// Touches a page of a file that was truncated under its mapping: SIGBUS.
void touch_truncated_file() {
  char path[] = "/tmp/subctx-e2e-sigbus-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) fail("mkstemp");
  unlink(path);
  if (ftruncate(fd, 4096) != 0) fail("ftruncate");
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail("mmap");
  if (ftruncate(fd, 0) != 0) fail("ftruncate 0");
  if (sigsetjmp(g_client_jump, 1) == 0) {
    write_byte(reinterpret_cast<uintptr_t>(p), 1);
    say("SIGBUS: no signal\n");
  } else {
    say("caught %s at offset %td\n", g_client_signal == SIGBUS ? "SIGBUS" : "another signal",
        static_cast<char*>(g_client_addr) - static_cast<char*>(p));
  }
  munmap(p, 4096);
  close(fd);
}

void catch_null_write() {
  if (sigsetjmp(g_client_jump, 1) == 0) {
    write_null();
    say("NULL write: no signal\n");
  } else {
    say("caught %s at %p\n", g_client_signal == SIGSEGV ? "SIGSEGV" : "another signal", g_client_addr);
  }
}

// ---- modes ------------------------------------------------------------

// One access the Matchmaker must stop (mprotect, pkey) or allow (none).
int violation_mode(const std::string& mode, const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  const uintptr_t data = reinterpret_cast<uintptr_t>(sc.call<void*()>("data_addr"));
  const uintptr_t helper = reinterpret_cast<uintptr_t>(sc.call<void*()>("helper_addr"));
  if (mode == "read-data") {
    print_expectation(sc, data + 100);
    say("value %d\n", read_byte(data + 100));
  } else if (mode == "read-code") {
    const uintptr_t a = export_address(sc, "pure_add");
    print_expectation(sc, a);
    say("value %d\n", read_byte(a));
  } else if (mode == "write-data") {
    print_expectation(sc, data + 200);
    write_byte(data + 200, 'W');
    say("wrote; data_byte %" PRId64 "\n", sc.call<int64_t(int64_t)>("data_byte", 200));
  } else if (mode == "write-code") {
    const uintptr_t a = export_address(sc, "pure_add");
    print_expectation(sc, a);
    write_byte(a, 0xcc);
    say("wrote\n");
  } else if (mode == "jump-code") {  // a function of the image that is no export
    print_expectation(sc, helper);
    say("result %" PRId64 "\n", call_at(helper, 3));
  } else if (mode == "jump-data") {
    print_expectation(sc, data + 64);
    say("result %" PRId64 "\n", call_at(data + 64, 3));
  } else if (mode == "call-export") {  // the export's real address, as a plain pointer
    const uintptr_t a = export_address(sc, "hits");
    print_expectation(sc, a);
    say("result %" PRId64 "\n", call_at(a, 5));
    say("then %" PRId64 "\n", sc.call<int64_t(int64_t)>("hits", 1));
  } else if (mode == "raw-data") {  // a raw-call address read as data
    const uintptr_t a = reinterpret_cast<uintptr_t>(sc.raw<int64_t(int64_t)>("hits"));
    say("raw 0x%" PRIxPTR " %d\n", a, sc.handle());
    say("value %d\n", read_byte(a));
  } else if (mode == "raw-write") {
    const uintptr_t a = reinterpret_cast<uintptr_t>(sc.raw<int64_t(int64_t)>("hits"));
    say("raw 0x%" PRIxPTR " %d\n", a, sc.handle());
    write_byte(a, 0xc3);
    say("wrote\n");
  } else {
    fail("unknown mode " + mode);
  }
  return 0;
}

// Raw calls through plain function pointers (basic image).
int raw_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto* square = sc.raw<int64_t(int64_t)>("square");
  auto* bump = sc.raw<int64_t(int64_t)>("bump");
  auto* hyp = sc.raw<double(double, double)>("hyp");
  auto* talk = sc.raw<int32_t(const char*)>("say");
  say("raw is not the export address %d\n",
      reinterpret_cast<uintptr_t>(square) != export_address(sc, "square"));
  say("square %" PRId64 " %" PRId64 "\n", square(7), square(-12));
  const int64_t b1 = bump(1);
  const int64_t b2 = bump(10);
  say("bump %" PRId64 " %" PRId64 "\n", b1, b2);
  say("hyp %.3f %.3f\n", hyp(3.0, 4.0), hyp(0.5, 1.5));
  std::printf("before say\n");  // not flushed: the call must flush it first
  const int32_t n = talk("raw hello");
  std::printf("after say %d\n", n);
  void* p = nullptr;
  const int rc = sbc_lookup(sc.handle(), "square", &p);
  say("sbc_lookup %d same %d square %" PRId64 "\n", rc, p == reinterpret_cast<void*>(square),
      reinterpret_cast<int64_t (*)(int64_t)>(p)(-9));
  // One pointer, several threads at once.
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int64_t i = 0; i < 2000; ++i) {
        const int64_t x = t * 100000 + i;
        if (square(x) != x * x) wrong.fetch_add(1);
        if (hyp(static_cast<double>(t), 1.0) != t * t + 1.0) wrong.fetch_add(1);
      }
    });
  for (auto& th : threads) th.join();
  say("threads wrong %d\n", wrong.load());
  say("bump after %" PRId64 "\n", sc.call<int64_t(int64_t)>("bump", 0));
  return 0;
}

// A raw pointer of an export that the policy denies after the lookup.
int raw_denied_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto* open_door = sc.raw<int64_t(int64_t)>("open_door");
  say("first %" PRId64 "\n", open_door(1));
  say("raw 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(open_door), sc.handle());
  if (sbc_set_policy("allow map\ndeny call export=open_*\n") != 0) fail(sbc_last_error());
  say("second %" PRId64 "\n", open_door(1));
  return 0;
}

// A raw pointer used after its subcontext was unmapped.
int raw_stale_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto* square = sc.raw<int64_t(int64_t)>("square");
  say("first %" PRId64 "\n", square(3));
  say("raw 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(square));
  Matchmaker::instance().unmap(sc);
  say("second %" PRId64 "\n", square(3));
  return 0;
}

// A violation handler that records and jumps out; the client goes on.
int handler_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  const uintptr_t data = reinterpret_cast<uintptr_t>(sc.call<void*()>("data_addr"));
  const uintptr_t code = export_address(sc, "pure_add");
  Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  struct Probe {
    const char* what;
    uintptr_t address;
    int op;  // 0 read, 1 write, 2 jump
  };
  const uintptr_t raw = reinterpret_cast<uintptr_t>(sc.raw<int64_t(int64_t)>("hits"));
  std::vector<Probe> probes = {{"read", data + 8, 0}, {"write", data + 16, 1}, {"read-code", code + 2, 0},
                               {"raw-read", raw, 0}};
  if (backend != "none") probes.push_back({"jump-data", data + 64, 2});
  for (const Probe& p : probes) {
    std::memset(&g_rec, 0, sizeof g_rec);
    std::printf("%s ", p.what);
    print_expectation(sc, p.address);
    int64_t value = 0;
    if (!try_access(p.op, p.address, &value))
      print_record(p.what, p.address);
    else if (p.op == 1)
      say("%s: no violation\n", p.what);
    else
      say("%s: no violation, %s %" PRId64 "\n", p.what, p.op == 0 ? "value" : "result", value);
  }
  say("violations %d handle %d\n", g_violations.load(), sc.handle());
  // The subcontext is fine and its memory is still closed.
  const int64_t h = sc.call<int64_t(int64_t)>("hits", 1);
  const int64_t sum = sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3);
  const int64_t byte = sc.call<int64_t(int64_t)>("data_byte", 8);
  say("after: hits %" PRId64 " pure_add %" PRId64 " data_byte %" PRId64 "\n", h, sum, byte);
  return 0;
}

// A violation handler that returns: the process dies of SIGSEGV.
int handler_returns_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  const uintptr_t data = reinterpret_cast<uintptr_t>(sc.call<void*()>("data_addr"));
  sbc_set_violation_handler(returning_handler, nullptr);
  say("value %d\n", read_byte(data));
  return 0;
}

// The client's own SIGSEGV/SIGBUS handlers: installed before the Matchmaker
// (E2E_PROT_EARLY=1, in a constructor) or after it (here).  Faults of client
// code reach them; a violation of subcontext memory does not.
int chain_mode(const std::string& backend, const std::string& image, bool late) {
  if (late) {
    struct sigaction sa = client_action(0);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0 || sigaction(SIGBUS, &sa, nullptr) != 0) fail("sigaction");
  }
  Subcontext sc = map(image, backend);
  say("installed %d sigaction says mine: SIGSEGV %d SIGBUS %d\n", Matchmaker::instance().installed(),
      is_client_handler(SIGSEGV), is_client_handler(SIGBUS));
  catch_null_write();
  touch_truncated_file();
  catch_null_write();  // again: the handler stays
  say("client handler runs %d\n", static_cast<int>(g_client_runs));
  say("square %" PRId64 "\n", sc.call<int64_t(int64_t)>("square", 5));
  // A violation is the Matchmaker's: the client's handler must not see it.
  const uintptr_t a = export_address(sc, "square");
  if (sigsetjmp(g_client_jump, 1) == 0) {
    print_expectation(sc, a);
    say("value %d\n", read_byte(a));
  } else {
    say("the client's handler got the violation at %p\n", g_client_addr);
  }
  return 0;
}

// SA_RESETHAND: the first fault runs the handler, the second kills.
int resethand_mode(const std::string& backend, const std::string& image) {
  struct sigaction sa = client_action(SA_RESETHAND);
  if (sigaction(SIGSEGV, &sa, nullptr) != 0) fail("sigaction");
  Subcontext sc = map(image, backend);
  say("mine %d\n", is_client_handler(SIGSEGV));
  catch_null_write();
  say("default after the first %d\n", is_default(SIGSEGV));
  say("square %" PRId64 "\n", sc.call<int64_t(int64_t)>("square", 6));
  write_null();
  say("survived the second\n");
  return 0;
}

// No client handler: a fault of client code is a plain SIGSEGV death.
int dfl_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  say("default %d square %" PRId64 "\n", is_default(SIGSEGV), sc.call<int64_t(int64_t)>("square", 4));
  write_null();
  say("survived\n");
  return 0;
}

// Client threads call into two subcontexts while a prober thread reads
// their memory (a violation handler jumps it back out).  Prints counts.
int threads_mode(const std::string& backend, const std::string& basic, const std::string& prot) {
  Subcontext b = map(basic, backend);
  Subcontext p = map(prot, backend);
  const uintptr_t targets[2] = {export_address(b, "square"),
                                reinterpret_cast<uintptr_t>(p.call<void*()>("data_addr"))};
  Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  // Per subcontext: calls started and finished.  A call's protection window
  // opens after `started` moves and closes before `finished` does.
  std::atomic<uint64_t> started[2] = {0, 0}, finished[2] = {0, 0};
  std::atomic<int> wrong{0}, callers_left{0};
  auto square = b.function<int64_t(int64_t)>("square");
  auto add = p.function<int64_t(int64_t, int64_t)>("pure_add");
  auto call = [&](int which, int64_t i) {
    started[which].fetch_add(1);
    const int64_t r = which == 0 ? square(i) : add(i, 7);
    finished[which].fetch_add(1);
    if (r != (which == 0 ? i * i : i + 7)) wrong.fetch_add(1);
  };
  // Callers make at least kCalls calls each and go on until the prober has
  // made kOverlap attempts; the prober goes on until every caller is done.
  // So the prober's first kOverlap reads all happen while every caller is
  // still calling.
  constexpr int kCalls = 4000;
  constexpr uint64_t kOverlap = 2000;
  std::atomic<uint64_t> attempts{0}, calls{0};
  std::vector<std::thread> callers;
  const int plan[] = {0, 0, 1, 1, 2};  // 2: both, alternating
  callers_left = static_cast<int>(std::size(plan));
  for (int which : plan)
    callers.emplace_back([&, which] {
      int64_t i = 0;
      for (; i < kCalls || attempts.load() < kOverlap; ++i) call(which == 2 ? static_cast<int>(i & 1) : which, i);
      calls.fetch_add(static_cast<uint64_t>(i));
      callers_left.fetch_sub(1);
    });
  // The prober.
  uint64_t faults = 0, reads = 0, quiet_reads = 0, in_flight = 0;
  std::thread prober([&] {
    while (callers_left.load() > 0 || attempts.load() < kOverlap) {
      const int which = static_cast<int>(attempts.load() & 1);
      attempts.fetch_add(1);
      const uint64_t s1 = started[which].load(), f1 = finished[which].load();
      if (s1 != f1) ++in_flight;  // a call of it was in flight as the read began
      if (try_access(0, targets[which], nullptr)) {
        const uint64_t s2 = started[which].load();
        ++reads;
        if (s1 == f1 && s2 == s1) ++quiet_reads;  // no call of it was in flight during the read
      } else {
        ++faults;
      }
    }
  });
  for (auto& t : callers) t.join();
  prober.join();
  // Everything joined: every read faults again.
  int after = 0;
  for (uintptr_t a : targets)
    if (!try_access(0, a, nullptr)) ++after;
  std::printf("calls>=%d %d wrong %d\n", static_cast<int>(std::size(plan)) * kCalls,
              calls.load() >= std::size(plan) * kCalls, wrong.load());
  std::printf("attempts>=%d %d faults+reads=attempts %d\n", static_cast<int>(kOverlap), attempts.load() >= kOverlap,
              faults + reads == attempts.load());
  std::printf("reads %s\n", reads == 0 ? "none" : "some");
  std::printf("quiet reads %" PRIu64 "\n", quiet_reads);
  std::printf("after join faults %d\n", after);
  // For a person reading the log (timing-dependent, not compared).
  std::fprintf(stderr,
               "calls %" PRIu64 " attempts %" PRIu64 " faults %" PRIu64 " reads %" PRIu64 " quiet reads %" PRIu64
               " begun with a call in flight %" PRIu64 "\n",
               calls.load(), attempts.load(), faults, reads, quiet_reads, in_flight);
  return 0;
}


// ---- long calls the client meets half way --------------------------------
// The protection image's rendezvous(cell, max_ms) and release_and_wait(cell,
// max_ms) store 1 in *cell once the call runs (release_and_wait: once it
// has freed its 4 MiB block) and return 4242 when the client stores 2, or
// -1 after max_ms.  Every wait is bounded: a hang becomes a wrong result.
constexpr int64_t kMaxWaitMs = 20000;
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

constexpr uint64_t kMarker = 0x5c1e47c11e47ull;
thread_local uint64_t t_marker = 0;
e2e_client::StackRange g_main_stack;

// The main thread's stack, or its alternate signal stack (the Matchmaker's
// SIGSEGV/SIGBUS handler runs there, and a client handler it chains to for a
// signal sent during a call stays there): the client's memory either way,
// never the gate stack.
__attribute__((noinline)) bool on_main_stack() {
  char probe;
  const auto p = reinterpret_cast<uintptr_t>(&probe);
  stack_t alt{};
  const bool on_alt = sigaltstack(nullptr, &alt) == 0 && (alt.ss_flags & SS_ONSTACK);
  return g_main_stack.contains(p) || on_alt;
}

// ---- 1. a signal handler that calls the subcontext it interrupted ---------

Subcontext* g_sc = nullptr;
subctx::Function<int64_t(int64_t, int64_t)>* g_add_fn = nullptr;
int64_t (*g_add_raw)(int64_t, int64_t) = nullptr;

struct Reentry {
  int tried = 0, threw = 0, invalid_argument = 0, signal_handler = 0, wait_for_itself = 0;
  int64_t returned = 0;
  char message[512] = "";
};
Reentry g_by_call, g_by_function;
volatile sig_atomic_t g_reentry_runs = 0;
volatile sig_atomic_t g_raw_returned = 0;
volatile int64_t g_raw_result = 0;

template <typename F>
void try_reentry(Reentry& r, F&& call) {
  r.tried = 1;
  try {
    r.returned = call();
  } catch (const subctx::Error& e) {
    r.threw = 1;
    r.invalid_argument = e.code() == subctx::Errc::InvalidArgument;
    r.signal_handler = std::strstr(e.what(), "signal handler") != nullptr;
    r.wait_for_itself = std::strstr(e.what(), "would wait for itself") != nullptr;
    copy_text(r.message, sizeof r.message, e.what());
  } catch (...) {
    r.threw = 2;
  }
}

void reenter_by_call(int) {
  g_reentry_runs = g_reentry_runs + 1;
  try_reentry(g_by_call, [] { return g_sc->call<int64_t(int64_t, int64_t)>("pure_add", 2, 3); });
  try_reentry(g_by_function, [] { return (*g_add_fn)(20, 30); });
  let_the_call_return();
}

void reenter_by_raw(int) {
  g_reentry_runs = g_reentry_runs + 1;
  static const char msg[] = "handler makes the raw call\n";
  (void)!write(1, msg, sizeof msg - 1);
  sigjmp_buf jump;
  sigjmp_buf* volatile saved = t_jump;
  t_jump = &jump;
  if (sigsetjmp(jump, 1) == 0) {  // a violation handler may jump back here
    g_raw_result = g_add_raw(2, 3);
    g_raw_returned = 1;
  }
  t_jump = saved;
  let_the_call_return();
}

void print_reentry(const char* what, const Reentry& r) {
  say("%s: tried %d threw %d InvalidArgument %d \"signal handler\" %d \"would wait for itself\" %d\n", what, r.tried,
      r.threw, r.invalid_argument, r.signal_handler, r.wait_for_itself);
  if (r.threw != 1) say("%s: returned %" PRId64 "\n", what, r.returned);
  std::fprintf(stderr, "%s: %s\n", what, r.message);
}

// SIGALRM, sent while the main thread is inside rendezvous, whose handler
// calls the same subcontext: through call<> and a Function handle (how:
// "call"), through a raw pointer ("raw"), or through a raw pointer with a
// violation handler that jumps back into the signal handler ("raw-handler").
int reentry_mode(const std::string& how, const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  auto add = sc.function<int64_t(int64_t, int64_t)>("pure_add");
  g_sc = &sc;
  g_add_fn = &add;
  g_add_raw = sc.raw<int64_t(int64_t, int64_t)>("pure_add");
  say("raw 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(g_add_raw), sc.handle());
  if (how == "raw-handler") Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  struct sigaction sa{};
  sa.sa_handler = how == "call" ? reenter_by_call : reenter_by_raw;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, nullptr) != 0) fail("sigaction");
  std::thread kicker(signal_when_inside, pthread_self(), SIGALRM);
  const int64_t r = long_call(sc);
  kicker.join();
  say("handler runs %d\n", static_cast<int>(g_reentry_runs));
  if (how == "call") {
    print_reentry("call", g_by_call);
    print_reentry("function", g_by_function);
  } else {
    say("raw returned %d\n", static_cast<int>(g_raw_returned));
    if (g_raw_returned) say("raw result %" PRId64 "\n", static_cast<int64_t>(g_raw_result));
    print_record("raw", reinterpret_cast<uintptr_t>(g_add_raw));
    say("raw detail: %s\n", g_rec.detail);
  }
  say("result %" PRId64 "\n", r);
  // Nothing is left held: the same calls work outside the handler.
  say("after: call %" PRId64 " function %" PRId64 " raw %" PRId64 "\n",
      sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3), add(20, 30), g_add_raw(4, 5));
  g_sc = nullptr;
  g_add_fn = nullptr;
  return 0;
}

// ---- 2. SIGSEGV sent with pthread_kill to a thread inside a call -----------

struct Seen {
  volatile sig_atomic_t runs = 0, tls_ok = 0, stack_ok = 0, signo_ok = 0, tkill = 0;
  volatile sig_atomic_t fpregs = 0, mask_ok = 0;
  volatile uint32_t mxcsr = 0;
};
Seen g_seen_segv, g_seen_usr1, g_seen_alrm;

void see(Seen& s, int sig, const siginfo_t* info) {
  s.runs = s.runs + 1;
  s.tls_ok = t_marker == kMarker;
  s.stack_ok = on_main_stack();
  s.signo_ok = info->si_signo == sig;
  s.tkill = info->si_code == SI_TKILL;
}

void segv_sent(int sig, siginfo_t* info, void*) {
  see(g_seen_segv, sig, info);
  let_the_call_return();
}

int sent_segv_mode(const std::string& backend, const std::string& image) {
  t_marker = kMarker;
  g_main_stack = e2e_client::find_main_stack();
  struct sigaction sa{};
  sa.sa_sigaction = segv_sent;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, nullptr) != 0) fail("sigaction");
  Subcontext sc = map(image, backend);
  std::thread kicker(signal_when_inside, pthread_self(), SIGSEGV);
  const int64_t r = long_call(sc);
  kicker.join();
  const Seen& s = g_seen_segv;
  say("handler runs %d client thread pointer %d client stack %d si_signo %d SI_TKILL %d\n", static_cast<int>(s.runs),
      static_cast<int>(s.tls_ok), static_cast<int>(s.stack_ok), static_cast<int>(s.signo_ok),
      static_cast<int>(s.tkill));
  say("result %" PRId64 "\n", r);
  say("after %" PRId64 "\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3));
  return 0;
}

// ---- 3. an SA_SIGINFO handler that reads its siginfo and ucontext ----------
// SIGUSR1, then SIGALRM, both from another thread, while the main thread is
// inside rendezvous with SIGUSR2 blocked.

volatile sig_atomic_t g_stage = 0;

void read_context(int sig, siginfo_t* info, void* ucv) {
  Seen& s = sig == SIGUSR1 ? g_seen_usr1 : g_seen_alrm;
  see(s, sig, info);
  const auto* uc = static_cast<const ucontext_t*>(ucv);
  if (uc->uc_mcontext.fpregs) {
    s.fpregs = 1;
    s.mxcsr = uc->uc_mcontext.fpregs->mxcsr;
  }
  s.mask_ok = sigismember(&uc->uc_sigmask, SIGUSR2) == 1 && sigismember(&uc->uc_sigmask, sig) == 0;
  if (sig == SIGUSR1) g_stage = 1;
  else let_the_call_return();
}

void kick_twice(pthread_t to) {
  signal_when_inside(to, SIGUSR1);
  for (int i = 0; i < kMaxWaitMs && !g_stage; ++i) usleep(1000);
  pthread_kill(to, SIGALRM);
}

int context_mode(const std::string& backend, const std::string& image) {
  t_marker = kMarker;
  g_main_stack = e2e_client::find_main_stack();
  Subcontext sc = map(image, backend);
  struct sigaction sa{};
  sa.sa_sigaction = read_context;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, nullptr) != 0 || sigaction(SIGALRM, &sa, nullptr) != 0) fail("sigaction");
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
  std::thread kicker(kick_twice, pthread_self());
  const int64_t r = long_call(sc);
  kicker.join();
  for (const auto& [name, s] : {std::pair<const char*, const Seen*>{"SIGUSR1", &g_seen_usr1}, {"SIGALRM", &g_seen_alrm}}) {
    say("%s: runs %d client thread pointer %d client stack %d si_signo %d SI_TKILL %d fpregs %d mxcsr-default %d "
        "uc_sigmask %d\n",
        name, static_cast<int>(s->runs), static_cast<int>(s->tls_ok), static_cast<int>(s->stack_ok),
        static_cast<int>(s->signo_ok), static_cast<int>(s->tkill), static_cast<int>(s->fpregs),
        (s->mxcsr & ~0x3fu) == 0x1f80u, static_cast<int>(s->mask_ok));
    std::fprintf(stderr, "%s: mxcsr %#x\n", name, static_cast<unsigned>(s->mxcsr));
  }
  say("result %" PRId64 "\n", r);
  say("after %" PRId64 "\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3));
  return 0;
}

// ---- 4. a call that frees part of the image while the client maps there ----

// "rw-p" etc. of the mapping that holds a, "none" when nothing does.
std::string perms_at(uintptr_t a) {
  FILE* f = std::fopen("/proc/self/maps", "r");
  char line[512];
  std::string out = "none";
  while (f && std::fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) out = perms;
  }
  if (f) std::fclose(f);
  return out;
}

// /proc/self/smaps: the ProtectionKey of the mapping that holds a (-1: none).
int key_at(uintptr_t a) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  char line[512];
  bool in = false;
  int key = -1;
  while (f && std::fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char c;
    if (std::sscanf(line, "%lx-%lx %c", &lo, &hi, &c) == 3 && std::strchr(line, ':') > std::strchr(line, ' ')) {
      in = a >= lo && a < hi;
      continue;
    }
    if (in && std::strncmp(line, "ProtectionKey:", 14) == 0) key = std::atoi(line + 14);
  }
  if (f) std::fclose(f);
  return key;
}

constexpr size_t kPage = 4096;

// The page holds 'C' everywhere but at the offsets written ('P').
bool page_intact(uintptr_t page, std::initializer_list<size_t> written) {
  for (size_t i = 0; i < kPage; ++i) {
    char want = 'C';
    for (size_t w : written)
      if (i == w) want = 'P';
    if (reinterpret_cast<volatile char*>(page)[i] != want) return false;
  }
  return true;
}

// release_and_wait: the subcontext frees its 4 MiB block (munmap) and waits;
// meanwhile another client thread maps one page of its own inside the freed
// range (MAP_FIXED_NOREPLACE) and fills it with 'C'.  Returns the page, or 0
// (said why).  *block: the freed block.
uintptr_t free_while_the_client_maps(Subcontext& sc, uintptr_t* block) {
  *block = reinterpret_cast<uintptr_t>(sc.call<void*()>("big_block"));
  const uintptr_t page = (*block + 2 * kPage) & ~uintptr_t{kPage - 1};
  int mapped = -1;
  std::thread mapper([&] {
    if (!wait_for_cell(1)) {
      mapped = ETIMEDOUT;
      return;
    }
    void* p = mmap(reinterpret_cast<void*>(page), kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == reinterpret_cast<void*>(page)) {
      std::memset(p, 'C', kPage);
      mapped = 0;
    } else {
      mapped = p == MAP_FAILED ? errno : EEXIST;
      if (p != MAP_FAILED) munmap(p, kPage);
    }
    let_the_call_return();
  });
  const int64_t r = sc.call<int64_t(void*, int64_t)>("release_and_wait", &g_cell, kMaxWaitMs);
  mapper.join();
  say("result %" PRId64 " client page mapped during the call: %s\n", r, mapped == 0 ? "yes" : std::strerror(mapped));
  return mapped == 0 ? page : 0;
}

// "page": the client's page stays the client's.
int freed_page_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  Matchmaker::instance().set_violation_handler(jumping_handler, nullptr);
  uintptr_t block = 0;
  const uintptr_t page = free_while_the_client_maps(sc, &block);
  if (!page) return 0;
  auto report = [&](const char* when) {
    const std::string perms = perms_at(page);
    const int key = key_at(page);  // -1: the kernel reports none
    say("%s: %s key %s\n", when, perms.c_str(), key <= 0 ? "none" : std::to_string(key).c_str());
    return perms == "rw-p";
  };
  if (!report("after the call")) return 0;  // touching it would fault
  say("intact %d\n", page_intact(page, {}));
  int64_t ignored = 0;
  say("client write made %d\n", try_access(1, page + 100, &ignored));  // writes 'P'
  say("calls: pure_add %" PRId64 " hits %" PRId64 " data_byte %" PRId64 "\n",
      sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3), sc.call<int64_t(int64_t)>("hits", 1),
      sc.call<int64_t(int64_t)>("data_byte", 8));
  if (!report("after more calls")) return 0;
  say("intact %d\n", page_intact(page, {100}));
  say("client write made %d\n", try_access(1, page + 200, &ignored));
  Matchmaker::instance().unmap(sc);
  if (!report("after unmap")) return 0;
  say("intact %d\n", page_intact(page, {100, 200}));
  say("violations %d\n", g_violations.load());
  munmap(reinterpret_cast<void*>(page), kPage);
  return 0;
}

// "exit": the process exits with the subcontext still mapped (the
// Matchmaker unmaps it at exit).
int freed_exit_mode(const std::string& backend, const std::string& image) {
  Subcontext sc = map(image, backend);
  uintptr_t block = 0;
  if (!free_while_the_client_maps(sc, &block)) return 0;
  say("pure_add %" PRId64 "; exiting with the subcontext mapped\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3));
  return 0;
}

// "rest": the client reads the freed range away from its page: an ordinary
// segfault, the client's (its SIGSEGV handler, when `mine`, else death).
int freed_rest_mode(const std::string& backend, const std::string& image, bool mine) {
  if (mine) {
    struct sigaction sa = client_action(0);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0) fail("sigaction");
  }
  Subcontext sc = map(image, backend);
  uintptr_t block = 0;
  const uintptr_t page = free_while_the_client_maps(sc, &block);
  if (!page) return 0;
  const uintptr_t target = block + (size_t{2} << 20);
  say("freed range at the target: %s\n", perms_at(target).c_str());
  if (mine && sigsetjmp(g_client_jump, 1) != 0) {
    say("the client's handler got %s address-match %d\n", g_client_signal == SIGSEGV ? "SIGSEGV" : "another signal",
        g_client_addr == reinterpret_cast<void*>(target));
    say("after: pure_add %" PRId64 " page %s\n", sc.call<int64_t(int64_t, int64_t)>("pure_add", 2, 3),
        perms_at(page).c_str());
    return 0;
  }
  say("value %d\n", read_byte(target));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) fail("usage: e2e_protection_client MODE BACKEND IMAGE [IMAGE2]");
  const std::string mode = argv[1], backend = argv[2], image = argv[3];
  if (mode == "raw") return raw_mode(backend, image);
  if (mode == "raw-denied") return raw_denied_mode(backend, image);
  if (mode == "raw-stale") return raw_stale_mode(backend, image);
  if (mode == "handler") return handler_mode(backend, image);
  if (mode == "handler-returns") return handler_returns_mode(backend, image);
  if (mode == "chain-early") return chain_mode(backend, image, false);
  if (mode == "chain-late") return chain_mode(backend, image, true);
  if (mode == "resethand") return resethand_mode(backend, image);
  if (mode == "dfl") return dfl_mode(backend, image);
  if (mode == "reenter-call") return reentry_mode("call", backend, image);
  if (mode == "reenter-raw") return reentry_mode("raw", backend, image);
  if (mode == "reenter-raw-handler") return reentry_mode("raw-handler", backend, image);
  if (mode == "sent-segv") return sent_segv_mode(backend, image);
  if (mode == "signal-context") return context_mode(backend, image);
  if (mode == "freed-page") return freed_page_mode(backend, image);
  if (mode == "freed-exit") return freed_exit_mode(backend, image);
  if (mode == "freed-rest") return freed_rest_mode(backend, image, false);
  if (mode == "freed-rest-handler") return freed_rest_mode(backend, image, true);
  if (mode == "inside-fault") {  // subcontext code reads far past its array
    Subcontext sc = map(image, backend);
    say("data at %p\n", sc.call<void*()>("data_addr"));
    try {
      say("value %" PRId64 "\n", sc.call<int64_t(int64_t)>("data_byte", int64_t{1} << 44));
    } catch (const subctx::SubcontextFault& f) {
      say("caught SubcontextFault: %s\n", f.what());
    }
    say("after value %" PRId64 "\n", sc.call<int64_t(int64_t)>("data_byte", 0));
    return 0;
  }
  if (mode == "threads") {
    if (argc < 5) fail("threads needs two images");
    return threads_mode(backend, image, argv[4]);
  }
  return violation_mode(mode, backend, image);
}
