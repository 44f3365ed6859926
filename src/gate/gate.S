/* The gate's entry and exit, x86-64 System V.  No libc here: this code runs
 * with the client's or the subcontext's thread pointer and must not touch
 * either's TLS (no stack protector, no errno).
 *
 * void subctx_gate_enter_*(Frame *f)   -- see gate.hpp for Frame's layout
 *   saves the callee-saved registers, the client %fs base and %rsp in
 *   callee-saved registers (the export preserves them), switches %fs and
 *   %rsp, then for each of the frame's batch_count calls loads the argument
 *   registers, calls f->fn and stores rax/xmm0 in the result slot; then
 *   switches back.
 */
#include "gate/abi.h"
#include "gate/asm.h"

/* The gates' common return to the client: drops the alignment slot and
   restores the callee-saved registers the prologue pushed. */
.macro GATE_RETURN
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret
.endm

        .text

/* The gates' common prologue: saves the callee-saved registers, keeps the
   frame in r12, the client's stack pointer in r14 (the CFA from here on),
   hands both to signal handlers through the frame with the FPU control
   state, and points rbx/rbp at the first argument record and result slot. */
.macro GATE_PROLOGUE
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_offset %rbp, -16
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_offset %rbx, -24
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_offset %r12, -32
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_offset %r13, -40
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_offset %r14, -48
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_offset %r15, -56
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        movq    %rdi, %r12              /* frame */
        movq    %rsp, %r14              /* client stack */
        .cfi_def_cfa_register %r14      /* unwinders find the caller through r14 */
        movq    %r14, SUBCTX_FRAME_CLIENT_SP(%r12)  /* for signal handlers during the call */
        stmxcsr SUBCTX_FRAME_CLIENT_MXCSR(%r12)     /* the client's FPU control state: an */
        fnstcw  SUBCTX_FRAME_CLIENT_FPUCW(%r12)     /* abandoned call gives it back */
        movq    SUBCTX_FRAME_BATCH_ARGS(%r12), %rbx     /* the first call's arguments */
        movq    SUBCTX_FRAME_BATCH_RESULTS(%r12), %rbp  /* and its result slot */
        movq    $0, SUBCTX_FRAME_BATCH_DONE(%r12)       /* none returned yet (an abandon reads it) */
.endm

/* Loads the argument registers from an argument record (a CallArgs'
   layout, abi.h) at \rec, which must not be one of them. */
.macro LOAD_ARGUMENT_REGISTERS rec
        movsd   SUBCTX_ARGS_F64S+0(\rec), %xmm0
        movsd   SUBCTX_ARGS_F64S+8(\rec), %xmm1
        movsd   SUBCTX_ARGS_F64S+16(\rec), %xmm2
        movsd   SUBCTX_ARGS_F64S+24(\rec), %xmm3
        movsd   SUBCTX_ARGS_F64S+32(\rec), %xmm4
        movsd   SUBCTX_ARGS_F64S+40(\rec), %xmm5
        movsd   SUBCTX_ARGS_F64S+48(\rec), %xmm6
        movsd   SUBCTX_ARGS_F64S+56(\rec), %xmm7
        movq    SUBCTX_ARGS_INTS+0(\rec), %rdi
        movq    SUBCTX_ARGS_INTS+8(\rec), %rsi
        movq    SUBCTX_ARGS_INTS+16(\rec), %rdx
        movq    SUBCTX_ARGS_INTS+24(\rec), %rcx
        movq    SUBCTX_ARGS_INTS+32(\rec), %r8
        movq    SUBCTX_ARGS_INTS+40(\rec), %r9
.endm

/* The argument registers into a record of that layout at \rec. */
.macro STORE_ARGUMENT_REGISTERS rec
        movq    %rdi, SUBCTX_ARGS_INTS+0(\rec)
        movq    %rsi, SUBCTX_ARGS_INTS+8(\rec)
        movq    %rdx, SUBCTX_ARGS_INTS+16(\rec)
        movq    %rcx, SUBCTX_ARGS_INTS+24(\rec)
        movq    %r8, SUBCTX_ARGS_INTS+32(\rec)
        movq    %r9, SUBCTX_ARGS_INTS+40(\rec)
        movsd   %xmm0, SUBCTX_ARGS_F64S+0(\rec)
        movsd   %xmm1, SUBCTX_ARGS_F64S+8(\rec)
        movsd   %xmm2, SUBCTX_ARGS_F64S+16(\rec)
        movsd   %xmm3, SUBCTX_ARGS_F64S+24(\rec)
        movsd   %xmm4, SUBCTX_ARGS_F64S+32(\rec)
        movsd   %xmm5, SUBCTX_ARGS_F64S+40(\rec)
        movsd   %xmm6, SUBCTX_ARGS_F64S+48(\rec)
        movsd   %xmm7, SUBCTX_ARGS_F64S+56(\rec)
.endm

/* Runs the frame's calls one after another on the gate stack, with the
   subcontext's thread pointer already set; system calls are blocked for
   all of them (Syscall User Dispatch).  No client code runs in between, so
   a batch is one call for protection, deadline and signals.  After each
   call has returned and its result is stored, the count goes to the frame:
   an abandoned call reports which one it was, and every call counted has
   its result in place. */
.macro GATE_CALLS
        movq    SUBCTX_FRAME_SELECTOR(%r12), %r10  /* Syscall User Dispatch: block the export's */
        testq   %r10, %r10              /* system calls (they reach the SIGSYS handler) */
        jz      1f
        movb    $1, (%r10)
1:      xorl    %r15d, %r15d            /* calls returned */
2:      movq    SUBCTX_FRAME_STACK_TOP(%r12), %rsp  /* the gate stack, afresh for each call */
        LOAD_ARGUMENT_REGISTERS %rbx
        movq    SUBCTX_FRAME_FN(%r12), %r11
        movl    $8, %eax                /* vector registers used, for variadic callees */
        callq   *%r11
        movq    %rax, SUBCTX_RESULT_RAX(%rbp)
        movsd   %xmm0, SUBCTX_RESULT_XMM0(%rbp)
        addq    $SUBCTX_ARGS_STRIDE, %rbx
        addq    $SUBCTX_RESULT_STRIDE, %rbp
        incq    %r15
        movq    %r15, SUBCTX_FRAME_BATCH_DONE(%r12)
        cmpq    SUBCTX_FRAME_BATCH_COUNT(%r12), %r15
        jb      2b
        movq    SUBCTX_FRAME_SELECTOR(%r12), %r10
        testq   %r10, %r10
        jz      1f
        movb    $0, (%r10)              /* allow again */
1:      movq    %r14, %rsp              /* leave: client stack first, then thread */
        .cfi_def_cfa_register %rsp      /* pointer: never the client's on the gate stack */
.endm

        HIDDEN_FUNCTION subctx_gate_enter_fsgsbase
        .cfi_startproc
        GATE_PROLOGUE
        rdfsbase %r13                   /* client thread pointer */
        movq    %r13, SUBCTX_FRAME_CLIENT_FS(%r12)
        movq    SUBCTX_FRAME_TCB(%r12), %rax
        wrfsbase %rax                   /* enter: subcontext thread pointer */
        GATE_CALLS
        wrfsbase %r13                   /* leave: client thread pointer */
        GATE_RETURN
        .cfi_endproc
        .size   subctx_gate_enter_fsgsbase, .-subctx_gate_enter_fsgsbase

/* Same, with arch_prctl(ARCH_SET_FS) where FSGSBASE is not enabled. */
        HIDDEN_FUNCTION subctx_gate_enter_syscall
        .cfi_startproc
        GATE_PROLOGUE
        movq    %fs:0, %r13             /* glibc: the TCB's first word is its own address */
        movq    %r13, SUBCTX_FRAME_CLIENT_FS(%r12)
        movl    $158, %eax              /* SYS_arch_prctl */
        movl    $0x1002, %edi           /* ARCH_SET_FS */
        movq    SUBCTX_FRAME_TCB(%r12), %rsi
        syscall
        testq   %rax, %rax              /* a failed switch must not run the export on our TLS */
        jz      1f
        ud2                             /* arch_prctl(ARCH_SET_FS) refused (seccomp?): stop here */
1:      GATE_CALLS
        movl    $158, %eax
        movl    $0x1002, %edi
        movq    %r13, %rsi
        syscall
        testq   %rax, %rax
        jz      1f
        ud2                             /* the same, on the way back */
1:      GATE_RETURN
        .cfi_endproc
        .size   subctx_gate_enter_syscall, .-subctx_gate_enter_syscall

/* subctx_gate_abort: a signal handler abandoned the call (a fault inside
 * the subcontext, exit(), a deadline).  It set the client's thread pointer,
 * %rsp to the frame's client_sp (where the gate's prologue left the
 * callee-saved registers) and wrote the reason into the frame; this returns
 * from subctx_gate_enter_* to the Matchmaker as the export would have. */
        HIDDEN_FUNCTION subctx_gate_abort
        .cfi_startproc
        .cfi_def_cfa_offset 64
        .cfi_offset %rbp, -16
        .cfi_offset %rbx, -24
        .cfi_offset %r12, -32
        .cfi_offset %r13, -40
        .cfi_offset %r14, -48
        .cfi_offset %r15, -56
        GATE_RETURN
        .cfi_endproc
        .size   subctx_gate_abort, .-subctx_gate_abort

/* Callbacks (docs/callbacks.md).  An image's import stub jumps here with
 * %rax = the frame of the call in progress (from the slot at the gate
 * stack's top), %r11d = the import's number, the argument registers as the
 * subcontext code set them and its return address on top of its stack.  The
 * entry saves them in a CallbackRecord on the client's stack below the
 * frame's client_sp (free while the subcontext runs: the gate's own frame
 * is above it), makes the thread the client's again -- system calls
 * allowed, the client's thread pointer, its FPU control state -- and calls
 * subctx_callback_dispatch(record), which runs the bound function (and
 * under pkey closes the subcontext's key around it).  Then back: thread
 * pointer, system calls blocked, the result in rax/xmm0, the subcontext's
 * stack.  Order matters for signal handlers: the stack moves to the client's
 * before the thread pointer does, and back after it. */
.macro FS_TO_CLIENT_FSGSBASE
        movq    SUBCTX_FRAME_CLIENT_FS(%rax), %r10
        wrfsbase %r10
.endm
.macro FS_TO_SUBCONTEXT_FSGSBASE
        movq    SUBCTX_FRAME_TCB(%rax), %r10
        wrfsbase %r10
.endm
.macro FS_TO_CLIENT_SYSCALL
        movq    SUBCTX_FRAME_CLIENT_FS(%rax), %rsi
        movl    $158, %eax              /* SYS_arch_prctl */
        movl    $0x1002, %edi           /* ARCH_SET_FS */
        syscall
        testq   %rax, %rax
        jz      2f
        ud2
2:
.endm
.macro FS_TO_SUBCONTEXT_SYSCALL
        movq    SUBCTX_FRAME_TCB(%rax), %rsi
        movl    $158, %eax
        movl    $0x1002, %edi
        syscall
        testq   %rax, %rax
        jz      2f
        ud2
2:
.endm

.macro CALLBACK_ENTRY name, to_client, to_subcontext
        HIDDEN_FUNCTION \name
        .cfi_startproc
        .cfi_undefined rip              /* unwinders stop here: above are the subcontext's frames */
        cmpq    SUBCTX_FRAME_STACK_LO(%rax), %rsp
        jb      subctx_callback_refused /* not the call's thread: a thread subcontext code started */
        cmpq    SUBCTX_FRAME_STACK_TOP(%rax), %rsp
        jae     subctx_callback_refused
        movq    %rsp, %r10
        movq    SUBCTX_FRAME_CLIENT_SP(%rax), %rsp
        subq    $SUBCTX_CB_SIZE, %rsp
        STORE_ARGUMENT_REGISTERS %rsp   /* the record starts with a CallArgs' layout */
        movq    %r10, SUBCTX_CB_SUB_SP(%rsp)
        movq    %rax, SUBCTX_CB_FRAME(%rsp)
        movl    %r11d, SUBCTX_CB_INDEX(%rsp)
        movq    %rbp, SUBCTX_CB_SUB_BP(%rsp)
        stmxcsr SUBCTX_CB_MXCSR(%rsp)
        fnstcw  SUBCTX_CB_FPUCW(%rsp)
        movq    SUBCTX_FRAME_SELECTOR(%rax), %r10
        testq   %r10, %r10
        jz      1f
        movb    $0, (%r10)              /* the callback's system calls are the client's */
1:      \to_client
        movq    SUBCTX_CB_FRAME(%rsp), %rax
        ldmxcsr SUBCTX_FRAME_CLIENT_MXCSR(%rax)
        fldcw   SUBCTX_FRAME_CLIENT_FPUCW(%rax)
        movq    %rsp, %rdi
        call    subctx_callback_dispatch
        ldmxcsr SUBCTX_CB_MXCSR(%rsp)
        fldcw   SUBCTX_CB_FPUCW(%rsp)
        movq    SUBCTX_CB_FRAME(%rsp), %rax
        \to_subcontext
        movq    SUBCTX_CB_FRAME(%rsp), %rax
        movq    SUBCTX_FRAME_SELECTOR(%rax), %r10
        testq   %r10, %r10
        jz      1f
        movb    $1, (%r10)              /* block the subcontext's system calls again */
1:      movq    SUBCTX_CB_RAX(%rsp), %rax
        movsd   SUBCTX_CB_XMM0(%rsp), %xmm0
        movq    SUBCTX_CB_SUB_SP(%rsp), %rsp
        ret
        .cfi_endproc
        .size   \name, .-\name
.endm

        CALLBACK_ENTRY subctx_callback_entry_fsgsbase, FS_TO_CLIENT_FSGSBASE, FS_TO_SUBCONTEXT_FSGSBASE
        CALLBACK_ENTRY subctx_callback_entry_syscall, FS_TO_CLIENT_SYSCALL, FS_TO_SUBCONTEXT_SYSCALL

/* An import called on another stack than the call's: from a thread that
 * subcontext code started (docs/threads.md), which must not run client
 * code on the call's client stack.  It faults here (%r11d: the import),
 * and the fault handler makes that the thread's failure. */
        HIDDEN_FUNCTION subctx_callback_refused
        ud2
        .size   subctx_callback_refused, .-subctx_callback_refused

/* [[noreturn]] subctx_callback_abandon(Frame *f): the dispatcher gives up
 * the call (a callback threw, an import could not run): as a signal
 * handler's abandon, with the client's thread pointer already set. */
        HIDDEN_FUNCTION subctx_callback_abandon
        .cfi_startproc
        movq    SUBCTX_FRAME_CLIENT_SP(%rdi), %rsp
        jmp     subctx_gate_abort
        .cfi_endproc
        .size   subctx_callback_abandon, .-subctx_callback_abandon

/* void subctx_call_with_registers(fn, args, result): the bound function
 * called with the import call's registers. */
        HIDDEN_FUNCTION subctx_call_with_registers
        .cfi_startproc
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_offset %rbx, -16
        movq    %rdx, %rbx
        movq    %rdi, %r11
        movq    %rsi, %r10
        LOAD_ARGUMENT_REGISTERS %r10
        movl    $8, %eax
        callq   *%r11
        movq    %rax, SUBCTX_RESULT_RAX(%rbx)
        movsd   %xmm0, SUBCTX_RESULT_XMM0(%rbx)
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   subctx_call_with_registers, .-subctx_call_with_registers

/* subctx_raw_entry: where the fault handler sends a raw call (a fetch from
 * a raw-call address).  The thread arrives as at the callee's first
 * instruction: the caller's return address on the stack, the arguments in
 * registers, and in %r11 the key of the export.  The registers are handed
 * to subctx_raw_dispatch, which calls through the gate; its result comes
 * back in rax/xmm0 and the caller is returned to as from the export. */
        HIDDEN_FUNCTION subctx_raw_entry
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_offset %rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        subq    $112, %rsp              /* 6 integer + 8 vector registers; stays 16-aligned */
        STORE_ARGUMENT_REGISTERS %rsp
        movq    %r11, %rdi
        movq    %rsp, %rsi
        call    subctx_raw_dispatch
        leave
        .cfi_def_cfa %rsp, 8
        ret
        .cfi_endproc
        .size   subctx_raw_entry, .-subctx_raw_entry

        .bss
        .globl  subctx_pkeys_in_use
        .hidden subctx_pkeys_in_use
        .type   subctx_pkeys_in_use, @object
subctx_pkeys_in_use:
        .byte   0
        .size   subctx_pkeys_in_use, 1
        .text

        .section .note.GNU-stack,"",@progbits
