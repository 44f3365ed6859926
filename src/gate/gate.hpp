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

#include "gate/abi.h"

namespace subctx::gate {

// Why a call was abandoned (fault/fault_handler.cpp, fault/syscalls.cpp).
// Import: a call of an import the client could not run (code: ImportProblem).
// Callback: a callback threw, or a nested call of the same subcontext
// failed; the subcontext's callback_failure is what the call site gets.
enum class AbortKind : uint32_t { None = 0, Signal = 1, Exit = 2, Timeout = 3, Quota = 4, Import = 5, Callback = 6 };
// OtherThread: called from a thread subcontext code started, not the call's.
enum class ImportProblem : int32_t { NoSuchImport = 0, Unbound = 1, TooDeep = 2, Unreadable = 3, OtherThread = 4 };

// Written by a signal handler on the calling thread before it sends the
// thread to subctx_gate_abort.
struct AbortRecord {
  AbortKind kind = AbortKind::None;
  int32_t signal = 0;
  int32_t code = 0;    // si_code
  int32_t status = 0;  // exit status
  uint64_t address = 0;
  uint64_t pc = 0, sp = 0, bp = 0;  // the subcontext's registers at the fault
  uint64_t value = 0;               // quota: the amount asked for
};

// Layout shared with the assembly (gate.S, the import stubs): offsets in
// gate/abi.h, checked by the static_asserts below.
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
  // 168: the calling thread's Syscall User Dispatch selector (null: none):
  // the gate blocks system calls while the export runs, allows them after.
  volatile uint8_t* selector;
  uint32_t client_mxcsr;  // 176: callee-saved FPU control state, stored by
  uint16_t client_fpucw;  // 180: the gate; given back when a call is abandoned
  uint16_t pad0;
  // 184: the calls, one after another without leaving: argument records
  // (detail::CallArgs, 120 bytes each: ints at 0, f64s at 48) and result
  // slots (detail::CallResult, 16 bytes: rax, xmm0).  A single call points
  // them at ints and rax above.
  uint64_t batch_args;
  uint64_t batch_results;    // 192
  uint64_t batch_count = 0;  // 200: at least 1
  uint64_t batch_done = 0;   // 208: calls returned, their results stored (gate.S)
  // 216: where the image's import stubs jump (subctx_callback_entry_*), and
  // the subcontext the call is in; set by enter() for images with imports.
  uint64_t callback_entry = 0;
  void* state = nullptr;
  // 232: the gate stack's low end: the callback entry serves only a caller
  // on [stack_lo, stack_top), the call's own thread (a thread subcontext
  // code started shares the import slot but not the stack).
  uint64_t stack_lo = 0;
  AbortRecord abort;         // filled when the call is abandoned
  uint64_t deadline_ns = 0;  // CLOCK_MONOTONIC; 0: none (fault/deadline.hpp)
  uint32_t timeout_ms = 0;
  // The client's signal mask, saved by the SIGSYS handler when subcontext
  // code first changes the mask (rt_sigprocmask); given back at the end.
  bool mask_changed = false;
  uint64_t client_mask = 0;
  // While the SIGSYS handler makes a system call for subcontext code: where
  // that code is (a deadline reports it, not the handler).
  uint64_t syscall_pc = 0, syscall_sp = 0, syscall_bp = 0;
  // Signals the SIGSYS handler holds back (blocked) around that system call
  // (SIGPIPE, SIGXFSZ: the server's disposition decides): an abandon during
  // it unblocks them again.
  uint64_t held_signals = 0;
};
static_assert(offsetof(Frame, fn) == SUBCTX_FRAME_FN && offsetof(Frame, tcb) == SUBCTX_FRAME_TCB &&
              offsetof(Frame, stack_top) == SUBCTX_FRAME_STACK_TOP &&
              offsetof(Frame, f64s) - offsetof(Frame, ints) == SUBCTX_ARGS_F64S &&
              offsetof(Frame, xmm0) - offsetof(Frame, rax) == SUBCTX_RESULT_XMM0 &&
              offsetof(Frame, client_fs) == SUBCTX_FRAME_CLIENT_FS &&
              offsetof(Frame, client_sp) == SUBCTX_FRAME_CLIENT_SP &&
              offsetof(Frame, selector) == SUBCTX_FRAME_SELECTOR &&
              offsetof(Frame, client_mxcsr) == SUBCTX_FRAME_CLIENT_MXCSR &&
              offsetof(Frame, client_fpucw) == SUBCTX_FRAME_CLIENT_FPUCW &&
              offsetof(Frame, batch_args) == SUBCTX_FRAME_BATCH_ARGS &&
              offsetof(Frame, batch_results) == SUBCTX_FRAME_BATCH_RESULTS &&
              offsetof(Frame, batch_count) == SUBCTX_FRAME_BATCH_COUNT &&
              offsetof(Frame, batch_done) == SUBCTX_FRAME_BATCH_DONE &&
              offsetof(Frame, callback_entry) == SUBCTX_FRAME_CALLBACK_ENTRY &&
              offsetof(Frame, stack_lo) == SUBCTX_FRAME_STACK_LO);

// An import call as the callback entry (gate.S) hands it to the Matchmaker:
// the subcontext's argument registers, where it called from, and the
// result slots.  On the client's stack below the frame's client_sp.
struct CallbackRecord {
  uint64_t ints[6];  // rdi rsi rdx rcx r8 r9 (a CallArgs' layout)
  double f64s[8];    // xmm0..xmm7
  uint64_t rax;      // the callback's result
  double xmm0;
  uint64_t sub_sp;     // the subcontext's stack pointer: its return address on top
  Frame* frame;        // the call the import was called in
  uint32_t index;      // which import (the stub's number)
  uint32_t sub_mxcsr;  // the subcontext's FPU control state, given back after
  uint16_t sub_fpucw;
  uint16_t pad[3];
  uint64_t sub_bp;  // its frame pointer, for the report of a failed import call
  uint64_t pad2;
};
static_assert(SUBCTX_CB_INTS == SUBCTX_ARGS_INTS && SUBCTX_CB_F64S == SUBCTX_ARGS_F64S);
static_assert(
    offsetof(CallbackRecord, f64s) == SUBCTX_CB_F64S && offsetof(CallbackRecord, rax) == SUBCTX_CB_RAX &&
    offsetof(CallbackRecord, xmm0) == SUBCTX_CB_XMM0 && offsetof(CallbackRecord, sub_sp) == SUBCTX_CB_SUB_SP &&
    offsetof(CallbackRecord, frame) == SUBCTX_CB_FRAME && offsetof(CallbackRecord, index) == SUBCTX_CB_INDEX &&
    offsetof(CallbackRecord, sub_mxcsr) == SUBCTX_CB_MXCSR && offsetof(CallbackRecord, sub_fpucw) == SUBCTX_CB_FPUCW &&
    offsetof(CallbackRecord, sub_bp) == SUBCTX_CB_SUB_BP && sizeof(CallbackRecord) == SUBCTX_CB_SIZE &&
    SUBCTX_CB_SIZE % 16 == 0);
inline constexpr size_t kBatchArgsStride = SUBCTX_ARGS_STRIDE, kBatchArgsF64s = SUBCTX_ARGS_F64S,
                        kBatchResultStride = SUBCTX_RESULT_STRIDE;

using EnterFn = void (*)(Frame*);

// wrfsbase/rdfsbase when the kernel enables them (HWCAP2_FSGSBASE), else
// arch_prctl (a system call each way).
EnterFn select_enter();
// The callback entry of the same kind (subctx_callback_entry_*).
uint64_t select_callback_entry();

}  // namespace subctx::gate

extern "C" void subctx_gate_enter_fsgsbase(subctx::gate::Frame* frame);
// Where a signal handler sends a thread whose call it abandons, with %rsp at
// the frame's client_sp and the client's thread pointer already set: it
// returns from subctx_gate_enter_* as if the export had returned.
extern "C" void subctx_gate_abort();
extern "C" void subctx_gate_enter_syscall(subctx::gate::Frame* frame);
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
}  // namespace subctx::gate
// The callback entries (gate.S): where an image's import stubs jump, on the
// subcontext's stack with its thread pointer; they switch to the client's,
// call subctx_callback_dispatch(record) and switch back.
extern "C" void subctx_callback_entry_fsgsbase();
extern "C" void subctx_callback_entry_syscall();
// Where the callback entries send an import call from another thread than
// the call's (a ud2: the fault handler reports it).
extern "C" void subctx_callback_refused();
// Leaves a callback for good: the call it was made in is abandoned (the
// frame's abort record says why), as a signal handler abandons one.
extern "C" [[noreturn]] void subctx_callback_abandon(subctx::gate::Frame* frame);
// Calls fn with the argument registers of args (a CallArgs' layout: ints at
// 0, f64s at 48) and stores rax and xmm0 at result[0] and result[1].
// Exceptions thrown by fn pass through (it has unwind information).
extern "C" void subctx_call_with_registers(const void* fn, const void* args, void* result);
