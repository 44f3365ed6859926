// Client helper of the protection tests (test_protection_*.cpp): each mode
// does one thing the Matchmaker must stop, forward or leave alone, in a
// process of its own, and prints what the test compares.  Lines printed
// before an access that may end the process are flushed first.
//
//   e2e_protection_client MODE BACKEND IMAGE [IMAGE2]
//
// BACKEND: auto, none, mprotect, pkey, or mprotect-readable.  Exit status 2:
// bad usage or an unexpected error (on stderr).
//
// One binary from several files: main.cpp dispatches MODE to the file of
// its group; common.cpp holds what several groups use (this header).
#pragma once

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <string>

#include <subctx/subctx.h>
#include <subctx/subctx.hpp>

namespace prot_client {

using subctx::Matchmaker;
using subctx::Subcontext;

[[noreturn]] void fail(const std::string& what);
void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));  // printf, then flush

// ---- accesses the compiler must not remove or reorder ------------------

int read_byte(uintptr_t a);
void write_byte(uintptr_t a, unsigned char v);
int64_t call_at(uintptr_t a, int64_t arg);  // a(arg) through a plain function pointer

// ---- mapping ----------------------------------------------------------

subctx::MapOptions options_for(const std::string& backend);
Subcontext map(const std::string& path, const std::string& backend);  // fails (exit 2) on an error
uintptr_t export_address(const Subcontext& sc, const std::string& name);
// "expect ADDR HANDLE NEAREST OFFSET": what the diagnostic must name for an
// access at a: the export at or below a (else the lowest one).
void print_expectation(const Subcontext& sc, uintptr_t a);

// ---- violation handler ------------------------------------------------

struct Recorded {
  int kind, signal, subcontext;
  uintptr_t address, pc;
  intptr_t export_offset;
  char image_path[512], region[256], nearest_export[128], detail[512];
};
extern Recorded g_rec;  // the last violation recorded
extern std::atomic<int> g_violations;
// Where jumping_handler jumps (nullptr: the thread was not meant to fault).
extern thread_local constinit sigjmp_buf* t_jump;

void copy_text(char* to, size_t size, const char* from);
// Records the violation in g_rec and jumps to *t_jump.
void jumping_handler(const sbc_violation* v, void*);
// Records it, says so on stderr and returns.
void returning_handler(const sbc_violation* v, void*);
void print_record(const char* what, uintptr_t expected_address);
// One access with jumping_handler installed: op 0 reads, 1 writes 'P', 2
// calls a(1).  True when it was made (*result: what it read or returned);
// false when the violation handler jumped out.
bool try_access(int op, uintptr_t a, int64_t* result);

// ---- the client's own SIGSEGV / SIGBUS handlers ------------------------

// client_handler records the signal and its address and jumps to
// g_client_jump.
extern sigjmp_buf g_client_jump;
extern volatile sig_atomic_t g_client_signal;
extern void* volatile g_client_addr;
extern volatile sig_atomic_t g_client_runs;
void client_handler(int sig, siginfo_t* info, void*);
struct sigaction client_action(int extra_flags);

// ---- long calls the client meets half way --------------------------------
// The protection image's rendezvous(cell, max_ms) and release_and_wait(cell,
// max_ms) store 1 in *cell once the call runs (release_and_wait: once it
// has freed its 4 MiB block) and return 4242 when the client stores 2, or
// -1 after max_ms.  Every wait is bounded: a hang becomes a wrong result.
inline constexpr int64_t kMaxWaitMs = 20000;
extern int64_t g_cell;

bool wait_for_cell(int64_t value);
void let_the_call_return();
// Sends sig to `to` once the call is running (bounded).
void signal_when_inside(pthread_t to, int sig);
int64_t long_call(Subcontext& sc);  // rendezvous

// ---- modes, one file per group ------------------------------------------

// violations.cpp: one access the Matchmaker must stop (mprotect, pkey) or
// allow (none); a fault inside a call.
int violation_mode(const std::string& mode, const std::string& backend, const std::string& image);
int inside_fault_mode(const std::string& backend, const std::string& image);
// raw_calls.cpp
int raw_mode(const std::string& backend, const std::string& image);
int raw_denied_mode(const std::string& backend, const std::string& image);
int raw_stale_mode(const std::string& backend, const std::string& image);
// handler.cpp: the client's violation handler
int handler_mode(const std::string& backend, const std::string& image);
int handler_returns_mode(const std::string& backend, const std::string& image);
// chaining.cpp: the client's own SIGSEGV / SIGBUS handlers
int chain_mode(const std::string& backend, const std::string& image, bool late);
int resethand_mode(const std::string& backend, const std::string& image);
int dfl_mode(const std::string& backend, const std::string& image);
// threads.cpp
int threads_mode(const std::string& backend, const std::string& basic, const std::string& prot);
// during_call.cpp: signal handlers during a long call
int reentry_mode(const std::string& how, const std::string& backend, const std::string& image);
int sent_segv_mode(const std::string& backend, const std::string& image);
int context_mode(const std::string& backend, const std::string& image);
// freed_memory.cpp: a call that frees part of the image while the client maps there
int freed_page_mode(const std::string& backend, const std::string& image);
int freed_exit_mode(const std::string& backend, const std::string& image);
int freed_rest_mode(const std::string& backend, const std::string& image, bool mine);

}  // namespace prot_client
