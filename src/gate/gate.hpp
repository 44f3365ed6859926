// The gate: enters a subcontext and comes back (gate.S).
//
// A call switches the thread pointer (%fs base) to the server thread's TCB
// inside the image and the stack to the image's gate stack, calls the export
// with the arguments in registers (System V ABI), then switches both back.
// The subcontext's own libc thus runs with its own TLS, errno, malloc, stdio.
#pragma once

#include <cstddef>
#include <cstdint>

#include <signal.h>

namespace subctx::gate {

// Layout shared with gate.S: keep the offsets in sync (static_asserts below).
struct Frame {
  uint64_t fn;         // 0
  uint64_t tcb;        // 8
  uint64_t stack_top;  // 16: 16-byte aligned
  uint64_t ints[6];    // 24: rdi rsi rdx rcx r8 r9
  double f64s[8];      // 72: xmm0..xmm7
  uint64_t rax;        // 136: results
  double xmm0;         // 144
  uint64_t client_fs;  // 152: written by the gate before it switches, for
  uint64_t client_sp;  // 160: signal handlers that interrupt the call
};
static_assert(offsetof(Frame, ints) == 24 && offsetof(Frame, f64s) == 72 && offsetof(Frame, rax) == 136 &&
              offsetof(Frame, xmm0) == 144 && offsetof(Frame, client_fs) == 152 && offsetof(Frame, client_sp) == 160);

using EnterFn = void (*)(Frame*);

// wrfsbase/rdfsbase when the kernel enables them (HWCAP2_FSGSBASE), else
// arch_prctl (a system call each way).
EnterFn select_enter();

}  // namespace subctx::gate

extern "C" void subctx_gate_enter_fsgsbase(subctx::gate::Frame* frame);
extern "C" void subctx_gate_enter_syscall(subctx::gate::Frame* frame);
// Signal handler entries (see gate.S): they call the C handler of the same
// purpose with a fourth argument, the PKRU value the kernel gave the
// handler, or kNoPkru.
extern "C" void subctx_signal_entry(int, siginfo_t*, void*);
extern "C" void subctx_fault_entry(int, siginfo_t*, void*);
// Set once a subcontext uses a protection key: signal entries handle PKRU.
extern "C" volatile uint8_t subctx_pkeys_in_use;
namespace subctx::gate {
inline constexpr uint32_t kNoPkru = ~uint32_t{0};

// The thread pointer: glibc's TCB starts with its own address.  Safe in
// signal context (no TLS variable, no libc).
__attribute__((always_inline)) inline uint64_t thread_pointer() {
  uint64_t v;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
  return v;
}
}
// Calls fn(a, b, c) with %rsp = stack (16-byte aligned), then switches back.
extern "C" void subctx_call_on_stack(void* fn, uint64_t a, uint64_t b, uint64_t c, uint64_t stack);
