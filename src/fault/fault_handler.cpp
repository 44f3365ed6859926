// The Matchmaker's SIGSEGV/SIGBUS handler (fault_handler.hpp).
//
// Signal context: no allocation, no locks, no libc calls, no TLS (a fault
// inside a call arrives with the subcontext's thread pointer); built with
// -fno-stack-protector like signals.cpp.
#include "fault/fault_handler.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "fault/raw_syscall.hpp"
#include "fault/signal_context.h"
#include "fault/signal_entry.hpp"
#include "fault/signals.hpp"
#include "fault/threads.hpp"
#include "fault/view.hpp"
#include "gate/gate.hpp"
#include "gate/pkru.hpp"
#include "subctx/error.hpp"

namespace subctx::fault {

namespace {

// Raw-call addresses: one inaccessible range reserved once, handed out
// without reuse.
constexpr uint64_t kRawRangeSize = uint64_t{16} << 20;
std::atomic<uint64_t> g_raw_lo{0}, g_raw_hi{0};
uint64_t g_raw_next = 0;  // g_raw_mutex
std::mutex g_raw_mutex;

std::atomic<sbc_violation_handler> g_violation_handler{nullptr};
std::atomic<void*> g_violation_user{nullptr};

// ---- signal-safe helpers ----------------------------------------------

// A bounded line builder on the handler's stack.
struct Line {
  char buf[1024];
  size_t n = 0;
  SUBCTX_SIGNAL_CONTEXT void put(const char* s) {
    while (s && *s && n < sizeof buf - 1) buf[n++] = *s++;
  }
  SUBCTX_SIGNAL_CONTEXT void hex(uint64_t v) {
    char t[19] = "0x";
    int digits = 1;
    for (uint64_t x = v >> 4; x; x >>= 4) ++digits;
    for (int i = 0; i < digits; ++i) t[2 + digits - 1 - i] = "0123456789abcdef"[(v >> (4 * i)) & 15];
    t[2 + digits] = 0;
    put(t);
  }
  SUBCTX_SIGNAL_CONTEXT void dec(int64_t v) {
    char t[24];
    int i = 23;
    t[i] = 0;
    const bool neg = v < 0;
    uint64_t u = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    do {
      t[--i] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u);
    if (neg) t[--i] = '-';
    put(t + i);
  }
};

SUBCTX_SIGNAL_CONTEXT const char* kind_name(int kind) {
  switch (kind) {
    case SBC_VIOLATION_READ: return "read";
    case SBC_VIOLATION_WRITE: return "write";
    case SBC_VIOLATION_EXEC: return "jump";
    case SBC_VIOLATION_DENIED_CALL: return "denied raw call";
    case SBC_VIOLATION_STALE_CALL: return "raw call of an unmapped subcontext";
    case SBC_VIOLATION_CALL_FAULT: return "raw call that faulted";
  }
  return "access";
}

// A ViewReader is held by the caller of these (and while it reads what
// they return).
SUBCTX_SIGNAL_CONTEXT const AddressMap* map_at(int i) {
  const SubcontextView* v = view_at(i);
  return v ? v->address_map.load(std::memory_order_acquire) : nullptr;
}

SUBCTX_SIGNAL_CONTEXT const AddressMap* view_containing(uint64_t a) {
  const int used = views_used();
  for (int i = 0; i < used; ++i) {
    const AddressMap* v = map_at(i);
    if (v && a >= v->lo && a < v->hi)
      for (const ViewRange& r : v->ranges)
        if (a >= r.lo && a < r.hi) return v;
  }
  return nullptr;
}

SUBCTX_SIGNAL_CONTEXT const AddressMap* view_of_raw_address(uint64_t a) {
  const int used = views_used();
  for (int i = 0; i < used; ++i) {
    const AddressMap* v = map_at(i);
    if (v && a >= v->raw_lo && a < v->raw_hi) return v;
  }
  return nullptr;
}

SUBCTX_SIGNAL_CONTEXT const ViewRange* range_of(const AddressMap* v, uint64_t a) {
  for (const ViewRange& r : v->ranges)
    if (a >= r.lo && a < r.hi) return &r;
  return nullptr;
}

// The export at or below a (else the first above).
SUBCTX_SIGNAL_CONTEXT const ViewExport* nearest_export(const AddressMap* v, uint64_t a) {
  const ViewExport* best = nullptr;
  for (const ViewExport& e : v->exports)
    if (e.address <= a) best = &e;
  if (!best && !v->exports.empty()) best = &v->exports.front();
  return best;
}

SUBCTX_SIGNAL_CONTEXT void fill_from_view(sbc_violation* out, const AddressMap* v, uint64_t a) {
  out->subcontext = v->handle;
  out->image_path = v->path;
  if (const ViewRange* r = range_of(v, a)) out->region = r->what;
  if (const ViewExport* e = nearest_export(v, a)) {
    out->nearest_export = e->name;
    out->export_offset = static_cast<intptr_t>(a - e->address);
  }
}

// One line on stderr, then the client's handler or death by SIGSEGV.
// mask: the signal mask for the client's handler (as for a SIGSEGV handler:
// the interrupted mask plus SIGSEGV), or null to leave the mask alone.
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void report_and_die(const sbc_violation& v, uint32_t pkru, const uint64_t* mask) {
  if (sbc_violation_handler h = g_violation_handler.load(std::memory_order_acquire)) {
    if (mask) raw::syscall4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, reinterpret_cast<long>(mask), 0, 8);
    if (pkru != gate::kNoPkru) gate::pkru::write(pkru);       // client code: no subcontext key
    h(&v, g_violation_user.load(std::memory_order_relaxed));  // it may leave by siglongjmp
  } else {
    Line l;
    l.put("subctx: violation: client ");
    l.put(kind_name(v.kind));
    l.put(v.kind == SBC_VIOLATION_EXEC || v.kind >= SBC_VIOLATION_DENIED_CALL ? " to " : " at ");
    l.hex(v.address);
    l.put(" (pc ");
    l.hex(v.pc);
    l.put(") in subcontext ");
    l.dec(v.subcontext);
    if (v.image_path) {
      l.put(" (");
      l.put(v.image_path);
      l.put(")");
    }
    if (v.region) {
      l.put(", ");
      l.put(v.region);
    }
    if (v.nearest_export) {
      l.put(", nearest export \"");
      l.put(v.nearest_export);
      l.put("\" ");
      l.put(v.export_offset < 0 ? "-" : "+");
      l.hex(static_cast<uint64_t>(v.export_offset < 0 ? -v.export_offset : v.export_offset));
    }
    if (v.detail) {
      l.put(": ");
      l.put(v.detail);
    }
    l.put("; stopping the process with SIGSEGV\n");
    raw::write_all(2, l.buf, l.n);
  }
  raw::die_of(SIGSEGV);
}

// Inside a call, is this signal the subcontext's fault?  The kernel's
// faults are; so is SIGABRT sent by this process (abort() in the subcontext
// raises it on the calling thread).  Anything else someone sent with kill()
// is the client's business.
SUBCTX_SIGNAL_CONTEXT bool is_subcontext_fault(int sig, const siginfo_t* info) {
  // clang-format off
  switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP:
      return info->si_code > 0;
    case SIGABRT:
      return info->si_code <= 0 && info->si_pid == raw::syscall4(SYS_getpid, 0, 0, 0, 0);
  }
  // clang-format on
  return false;
}

// Copies a NUL-terminated text into buf (truncated); null stays null.
SUBCTX_SIGNAL_CONTEXT const char* copy_text(char* buf, size_t size, const char* text) {
  if (!text) return nullptr;
  size_t n = 0;
  while (text[n] && n + 1 < size) {
    buf[n] = text[n];
    ++n;
  }
  buf[n] = 0;
  return buf;
}

// A violation found while reading a view: its texts are copied to this
// frame, the reader count is given back (the client's handler may leave by
// siglongjmp), then the report.  Not inlined: only this path needs the
// buffers (the handler may run on a small alternate signal stack).
[[noreturn]] __attribute__((noinline)) SUBCTX_SIGNAL_CONTEXT void violation_while_reading(
    ViewReader& reading, sbc_violation v, uint32_t pkru, const uint64_t* mask) {
  char path[512], region[160], export_name[160];
  v.image_path = copy_text(path, sizeof path, v.image_path);
  v.region = copy_text(region, sizeof region, v.region);
  v.nearest_export = copy_text(export_name, sizeof export_name, v.nearest_export);
  reading.leave();
  report_and_die(v, pkru, mask);
}

// x86 page-fault error code bits (in the signal context's REG_ERR).
constexpr uint64_t kErrWrite = 2, kErrFetch = 16;

SUBCTX_SIGNAL_CONTEXT uint64_t raw_key(const AddressMap* v, uint32_t index) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(v->handle)) << 32) | index;
}

SUBCTX_SIGNAL_CONTEXT void forward_raw_call(ucontext_t* uc, uint64_t key) {
  uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&subctx_raw_entry);
  uc->uc_mcontext.gregs[REG_R11] = static_cast<greg_t>(key);
}

// What a fault signal says of where the subcontext was.
SUBCTX_SIGNAL_CONTEXT gate::AbortRecord fault_record(int sig, const siginfo_t* info, const ucontext_t* uc) {
  gate::AbortRecord why;
  why.kind = gate::AbortKind::Signal;
  why.signal = sig;
  why.code = info->si_code;
  why.address = reinterpret_cast<uint64_t>(info->si_addr);
  why.pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  why.sp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RSP]);
  why.bp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RBP]);
  return why;
}

// A signal on a thread inside a call of s: the subcontext's fault ends the
// call; anything else someone sent goes to the client.
SUBCTX_SIGNAL_CONTEXT void in_call(SubcontextView& s, int sig, siginfo_t* info, void* ucv, uint32_t pkru) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  AllowSyscalls allow(s.current_frame);  // before any system call
  if (!is_subcontext_fault(sig, info)) {
    chain_to_client(sig, info, ucv, pkru);
    return;
  }
  gate::AbortRecord why = fault_record(sig, info, uc);
  allow.keep_allowed();
  abandon_call(s, ucv, why);
}

// The probes (fault_handler.hpp): leaf functions that touch no stack, so a
// fault in one returns to its caller from subctx_probe_fault_return with
// rax set by the handler.
__asm__(R"(
        .text
        .p2align 4
        .globl  subctx_probe_begin
        .hidden subctx_probe_begin
subctx_probe_begin:
        .globl  subctx_probe_pending
        .hidden subctx_probe_pending
        .type   subctx_probe_pending, @function
subctx_probe_pending:
        .cfi_startproc
        movq    40(%rdi), %rax          /* _IO_write_ptr */
        cmpq    32(%rdi), %rax          /* _IO_write_base */
        seta    %al
        movzbl  %al, %eax
        ret
        .cfi_endproc
        .size   subctx_probe_pending, .-subctx_probe_pending
        .globl  subctx_probe_byte
        .hidden subctx_probe_byte
        .type   subctx_probe_byte, @function
subctx_probe_byte:
        .cfi_startproc
        movzbl  (%rdi), %eax
        ret
        .cfi_endproc
        .size   subctx_probe_byte, .-subctx_probe_byte
        .globl  subctx_probe_fault_return
        .hidden subctx_probe_fault_return
        .type   subctx_probe_fault_return, @function
subctx_probe_fault_return:
        .cfi_startproc
        ret
        .cfi_endproc
        .size   subctx_probe_fault_return, .-subctx_probe_fault_return
        .globl  subctx_probe_end
        .hidden subctx_probe_end
subctx_probe_end:
)");
extern "C" const char subctx_probe_begin[], subctx_probe_end[];
extern "C" void subctx_probe_fault_return();
static_assert(offsetof(FILE, _IO_write_ptr) == 40 && offsetof(FILE, _IO_write_base) == 32);

// A fault in a probe: its caller gets -(signal | si_code << 8).
SUBCTX_SIGNAL_CONTEXT bool recover_probe(int sig, const siginfo_t* info, ucontext_t* uc) {
  const auto pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  if (info->si_code <= 0 || (sig != SIGSEGV && sig != SIGBUS) || pc < reinterpret_cast<uint64_t>(subctx_probe_begin) ||
      pc >= reinterpret_cast<uint64_t>(subctx_probe_end))
    return false;
  uc->uc_mcontext.gregs[REG_RAX] = -static_cast<greg_t>(sig | ((info->si_code & 0xffffff) << 8));
  uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&subctx_probe_fault_return);
  return true;
}

// What a fault outside any call touched (a ViewReader held): a raw call,
// forwarded (uc now points at the Matchmaker); a violation, reported in *v
// (its address and pc already set); or neither (the client's own fault).
enum class Access { Neither, Forwarded, Violation };
SUBCTX_SIGNAL_CONTEXT Access classify_access(int sig, const siginfo_t* info, ucontext_t* uc, sbc_violation* v) {
  const uint64_t addr = reinterpret_cast<uint64_t>(info->si_addr);
  const uint64_t pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const uint64_t err = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_ERR]);
  const bool fetch = sig == SIGSEGV && (pc == addr || (err & kErrFetch));
  const AddressMap* view = nullptr;
  if ((view = view_of_raw_address(addr))) {
    if (fetch && pc == addr) {
      forward_raw_call(uc, raw_key(view, static_cast<uint32_t>(addr - view->raw_lo)));
      return Access::Forwarded;
    }
    v->kind = (err & kErrWrite) ? SBC_VIOLATION_WRITE : SBC_VIOLATION_READ;
    v->subcontext = view->handle;
    v->image_path = view->path;
    v->region = "raw-call addresses";
    for (const ViewExport& e : view->exports)
      if (e.index == addr - view->raw_lo) v->nearest_export = e.name;
    return Access::Violation;
  } else if (addr >= g_raw_lo.load(std::memory_order_relaxed) && addr < g_raw_hi.load(std::memory_order_relaxed) &&
             fetch) {
    v->kind = SBC_VIOLATION_STALE_CALL;
    v->region = "raw-call addresses of an unmapped subcontext";
    return Access::Violation;
  } else if (pc != addr && (view = view_containing(pc))) {
    // Subcontext code running outside a call (a jump into it where
    // fetches are allowed: the none and pkey backends) that then faulted.
    v->kind = SBC_VIOLATION_EXEC;
    v->address = pc;
    fill_from_view(v, view, pc);
    v->detail = "subcontext code ran outside a call and was stopped at its first access to protected memory";
    return Access::Violation;
  } else if ((view = view_containing(addr)) && !(sig == SIGSEGV && info->si_code == SEGV_MAPERR)) {
    // (SEGV_MAPERR: nothing is mapped there any more -- the subcontext
    // gave the range up -- so the access is the client's own segfault.)
    if (fetch && pc == addr && view->forward_export_addresses)
      for (const ViewExport& e : view->exports)
        if (e.address == addr) {
          forward_raw_call(uc, raw_key(view, e.index));
          return Access::Forwarded;
        }
    v->kind = fetch ? SBC_VIOLATION_EXEC : (err & kErrWrite) ? SBC_VIOLATION_WRITE : SBC_VIOLATION_READ;
    fill_from_view(v, view, addr);
    return Access::Violation;
  }
  return Access::Neither;
}

// A fault in a thread subcontext code started: its failure, which the next
// call reports (threads.hpp); the thread ends, the client goes on.
[[noreturn]] SUBCTX_SIGNAL_CONTEXT void in_thread(SubcontextThread& th, int sig, const siginfo_t* info,
                                                  const ucontext_t* uc) {
  gate::AbortRecord why = fault_record(sig, info, uc);
  if (sig == SIGILL && why.pc == reinterpret_cast<uint64_t>(&subctx_callback_refused)) {
    why.kind = gate::AbortKind::Import;  // an import called from this thread
    why.code = static_cast<int32_t>(gate::ImportProblem::OtherThread);
    why.value = static_cast<uint32_t>(uc->uc_mcontext.gregs[REG_R11]);
  }
  thread_failed(th, why);
}

}  // namespace
}  // namespace subctx::fault

// Entered through subctx_fault_entry (signal_entry.S) with the handler's PKRU.
extern "C" SUBCTX_SIGNAL_CONTEXT __attribute__((visibility("hidden"))) void subctx_fault_handler(
    int sig, siginfo_t* info, void* ucv, uint32_t pkru) {
  using namespace subctx;
  using namespace subctx::fault;
  auto* uc = static_cast<ucontext_t*>(ucv);
  const uint64_t addr = reinterpret_cast<uint64_t>(info->si_addr);
  const uint64_t pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const bool kernel_fault = info->si_code > 0;

  if (recover_probe(sig, info, uc)) return;
  // Inside a call?  Known without a system call when the stacks say so; a
  // raw call (an instruction fetch from client code) needs no more; every
  // other case asks the thread pointer (a system call without FSGSBASE).
  bool sure;
  SubcontextView* s = view_from_stacks(ucv, &sure);
  const bool fetch_at_address = kernel_fault && sig == SIGSEGV && pc == addr;
  if (!sure && !fetch_at_address) {
    s = view_of_current_thread();
    sure = true;
  }
  // A thread subcontext code started, whatever its registers say (they may
  // pose as a call's); a fetch at an address may be a raw call of the
  // client's: asked below, once it is known not to be.
  if ((s || !fetch_at_address) && any_subcontext_threads())
    if (SubcontextThread* th = current_subcontext_thread()) in_thread(*th, sig, info, uc);
  if (s) {
    in_call(*s, sig, info, ucv, pkru);
    return;
  }
  if (!kernel_fault || (sig != SIGSEGV && sig != SIGBUS)) {  // violations are memory accesses
    chain_to_client(sig, info, ucv, pkru);
    return;
  }
  sbc_violation v{};
  v.signal = sig;
  v.subcontext = -1;
  v.address = addr;
  v.pc = pc;
  // The client's violation handler runs with the mask a SIGSEGV handler
  // would have: the interrupted one plus SIGSEGV.
  uint64_t mask;
  __builtin_memcpy(&mask, &uc->uc_sigmask, 8);
  mask |= uint64_t{1} << (SIGSEGV - 1);
  bool violation = false;
  {
    ViewReader reading;
    const Access access = classify_access(sig, info, uc, &v);
    if (access == Access::Forwarded) return;
    if (fetch_at_address)
      if (SubcontextThread* th = current_subcontext_thread()) {
        reading.leave();
        in_thread(*th, sig, info, uc);
      }
    violation = access == Access::Violation;
    // Not a raw call after all: a jump inside a call, off the gate stack?
    // (A kernel fault: the call is abandoned, no client handler runs.)
    if (violation && !sure)
      if (SubcontextView* in = view_of_current_thread()) {
        in_call(*in, sig, info, ucv, pkru);
        return;
      }
    if (violation) violation_while_reading(reading, v, pkru, &mask);
  }
  if (!sure) {
    if (SubcontextView* in = view_of_current_thread()) {
      in_call(*in, sig, info, ucv, pkru);
      return;
    }
  }
  chain_to_client(sig, info, ucv, pkru);
}

namespace subctx::fault {
namespace {}  // namespace

namespace {
// Reserved at the first map, before the image is mapped.
// Away from where images live: the kernel's choice is just below this
// process's libraries, where a server's libraries (an image's segments) sit
// as often as anywhere; 0x6000'0000'0000 and up is between PIE executables
// and shared libraries, offset by some of the stack's random bits.
void reserve_raw_call_range() {  // g_raw_mutex held
  if (g_raw_lo.load(std::memory_order_relaxed)) return;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  uint64_t random_bits = 0;
  __asm__("mov %%rsp, %0" : "=r"(random_bits));
  void* const hint = reinterpret_cast<void*>(uint64_t{0x600000000000} + (((random_bits >> 12) & 0xfff) << 24));
  void* p = mmap(hint, kRawRangeSize, PROT_NONE, flags | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != hint) {
    if (p != MAP_FAILED) munmap(p, kRawRangeSize);  // a kernel without MAP_FIXED_NOREPLACE put it elsewhere
    p = mmap(nullptr, kRawRangeSize, PROT_NONE, flags, -1, 0);
  }
  if (p == MAP_FAILED) return;  // allocate_raw_call_addresses says so
  g_raw_next = reinterpret_cast<uint64_t>(p);
  g_raw_hi.store(g_raw_next + kRawRangeSize, std::memory_order_relaxed);
  g_raw_lo.store(g_raw_next, std::memory_order_release);
}

}  // namespace

void prepare_fault_handler() {
  // fork(): the child must not inherit a lock held by a thread it does not
  // have (both are held briefly: the fork waits for them).
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    prepare_views();
    pthread_atfork([] { g_raw_mutex.lock(); }, [] { g_raw_mutex.unlock(); }, [] { g_raw_mutex.unlock(); });
  });
}

void install_fault_handler() {
  {
    std::lock_guard lock(g_raw_mutex);
    reserve_raw_call_range();
  }
  prepare_fault_handler();
  for (int sig : {SIGSEGV, SIGBUS}) take_over_signal(sig, subctx_fault_entry, /*on_alt_stack=*/true);
  for (int sig : {SIGFPE, SIGILL, SIGTRAP, SIGABRT}) take_over_signal(sig, subctx_fault_entry);
}

uint64_t allocate_raw_call_addresses(size_t n) {
  std::lock_guard lock(g_raw_mutex);
  reserve_raw_call_range();
  if (!g_raw_lo.load(std::memory_order_relaxed))
    throw SystemError("cannot reserve the raw-call address range (" + std::to_string(kRawRangeSize >> 20) +
                      " MiB of address space, no memory): " + std::string(strerror(errno)));
  const uint64_t want = (std::max<size_t>(n, 1) + 15) & ~size_t{15};
  if (g_raw_next + want > g_raw_hi.load(std::memory_order_relaxed))
    throw LimitExceeded("the raw-call address range (" + std::to_string(kRawRangeSize >> 20) +
                        " MiB, one byte per export of every image ever mapped by this process) is used up");
  const uint64_t lo = g_raw_next;
  g_raw_next += want;
  return lo;
}

void set_violation_handler(sbc_violation_handler handler, void* user) {
  g_violation_user.store(user, std::memory_order_relaxed);
  g_violation_handler.store(handler, std::memory_order_release);
}

void violation_from_normal_code(sbc_violation v) { report_and_die(v, gate::kNoPkru, nullptr); }

SUBCTX_SIGNAL_CONTEXT bool address_in_subcontext(uint64_t a) {
  ViewReader reading;
  return view_containing(a) != nullptr;
}

}  // namespace subctx::fault
