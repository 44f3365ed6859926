/* The signal side's assembly (fault/signal_entry.hpp): the entries of the
 * Matchmaker's signal handlers, the switch to the client's stack for a
 * client handler, and the range Syscall User Dispatch always allows.  All
 * of it runs in signal context. */
#include "gate/asm.h"
#include "fault/thread_abi.h"
        .section .text.subctx_signal,"ax",@progbits
/* Signal handler entries.  Under the pkey backend the kernel runs a handler
 * with its default PKRU, which denies every subcontext's key -- and a signal
 * that interrupts a call has its frame on the gate stack, which carries the
 * key: the handler could not even push.  So, before touching the stack, the
 * entry opens every key (PKRU = 0; sigreturn restores the interrupted
 * value) and hands the PKRU the kernel gave to the C handler, which gives it
 * back to any client code it runs.  Without pkey subcontexts (CPUs without
 * the instructions included) the fourth argument is ~0 and PKRU is untouched. */
.macro SIGNAL_ENTRY name, target
        HIDDEN_FUNCTION \name
        .cfi_startproc
        cmpb    $0, subctx_pkeys_in_use(%rip)
        je      1f
        movq    %rdx, %r10
        xorl    %ecx, %ecx
        .byte   0x0f, 0x01, 0xee        /* rdpkru: eax = the handler's PKRU */
        movl    %eax, %r11d
        xorl    %eax, %eax
        xorl    %edx, %edx
        .byte   0x0f, 0x01, 0xef        /* wrpkru 0 */
        movq    %r10, %rdx
        movl    %r11d, %ecx
        jmp     \target
1:      movl    $-1, %ecx
        jmp     \target
        .cfi_endproc
        .size   \name, .-\name
.endm

        SIGNAL_ENTRY subctx_signal_entry, subctx_signal_trampoline
        SIGNAL_ENTRY subctx_fault_entry, subctx_fault_handler
        SIGNAL_ENTRY subctx_deadline_entry, subctx_deadline_handler
        SIGNAL_ENTRY subctx_syscall_entry, subctx_syscall_handler

/* void subctx_call_on_stack(fn, a, b, c, stack): a signal handler of the
 * client runs on the client's stack, not the gate stack it interrupted. */
        HIDDEN_FUNCTION subctx_call_on_stack
        .cfi_startproc
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_offset %rbx, -16
        movq    %rsp, %rbx
        .cfi_def_cfa_register %rbx
        movq    %rdi, %rax
        movq    %rsi, %rdi
        movq    %rdx, %rsi
        movq    %rcx, %rdx
        movq    %r8, %rsp
        callq   *%rax
        movq    %rbx, %rsp
        .cfi_def_cfa_register %rsp
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   subctx_call_on_stack, .-subctx_call_on_stack

/* long subctx_clone_thread(flags, stack, ptid, ctid, tls, start): the
 * clone of a thread for subcontext code (fault/threads.cpp), or of a child
 * process (fault/children.cpp: start->prepare set, the parent's stack
 * saved and put back around the clone), made by the SIGSYS handler.  The child's first instructions are these, on the
 * Matchmaker's stack for the thread (the slot's alternate signal stack):
 * its system calls go through subctx_allowed_syscall (Syscall User
 * Dispatch, if the kernel let the child keep its parent's, would otherwise
 * read the parent's selector) until it has turned dispatch on with its own
 * selector; then its alternate stack, signal mask, PKRU and MXCSR; then the
 * registers subcontext code had at the clone (rax 0, rsp its new stack),
 * and on where glibc's clone wrapper expects the child. */
        HIDDEN_FUNCTION subctx_clone_thread
        .cfi_startproc
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_offset %r12, -16
        movq    %r9, %r12
        movq    %rcx, %r10
        movq    $0, SUBCTX_START_SAVE_LEN(%r12)
        movq    SUBCTX_START_SAVE_HI(%r12), %rcx
        testq   %rcx, %rcx
        jz      5f
        subq    %rsp, %rcx              /* a child process: the parent's live stack [rsp, save_hi), */
        jbe     8f                      /* where it may write, saved in the Matchmaker's memory */
        cmpq    SUBCTX_START_SAVE_CAP(%r12), %rcx
        ja      8f
        movq    %rdi, %r11
        movq    %rsi, %rax
        movq    %rcx, SUBCTX_START_SAVE_LEN(%r12)
        movq    %rsp, SUBCTX_START_SAVE_LO(%r12)
        movq    %rsp, %rsi
        movq    SUBCTX_START_SAVE_BUF(%r12), %rdi
        rep movsb
        movq    %r11, %rdi
        movq    %rax, %rsi
5:      movl    $56, %eax               /* clone(flags, stack, ptid, ctid, tls) */
        syscall
        testq   %rax, %rax
        jz      1f
        jl      6f
        cmpq    $0, SUBCTX_START_SAVE_LEN(%r12)
        je      6f
        movq    %rax, %r8               /* the parent, after its child's exec or exit: its stack */
        movq    SUBCTX_START_SAVE_LO(%r12), %rdi    /* back before it is read (the return */
        movq    SUBCTX_START_SAVE_BUF(%r12), %rsi   /* address, r12, the signal frame) */
        movq    SUBCTX_START_SAVE_LEN(%r12), %rcx
        rep movsb
        movq    %r8, %rax
6:      popq    %r12
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_adjust_cfa_offset 8
8:      movq    $-11, %rax              /* -EAGAIN: more stack than the save area holds */
        popq    %r12
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_adjust_cfa_offset 8
1:      movq    SUBCTX_START_ALTSTACK(%r12), %rsp   /* the child (r12 = start), on the Matchmaker's */
        addq    SUBCTX_START_ALTSTACK+16(%r12), %rsp /* stack (its slot's alternate signal stack): */
        andq    $-16, %rsp              /* nothing written where the subcontext said until PKRU is its */
        subq    $16, %rsp               /* subctx_allowed_syscall reads a seventh argument above its return address */
        movl    $186, %edi              /* gettid */
        call    subctx_allowed_syscall
        movl    %eax, SUBCTX_START_TID(%r12)
        movl    $157, %edi              /* prctl(PR_SET_SYSCALL_USER_DISPATCH, ON, range, len, selector) */
        movl    $59, %esi
        movl    $1, %edx
        leaq    subctx_allowed_begin(%rip), %rcx
        leaq    subctx_allowed_end(%rip), %r8
        subq    %rcx, %r8
        leaq    SUBCTX_START_SELECTOR(%r12), %r9
        call    subctx_allowed_syscall
        testq   %rax, %rax
        jnz     9f
        cmpq    $0, SUBCTX_START_ALTSTACK(%r12)
        je      3f
        movl    $131, %edi              /* sigaltstack(&start->ss, 0): faults of an overflowed stack */
        leaq    SUBCTX_START_ALTSTACK(%r12), %rsi
        xorl    %edx, %edx
        call    subctx_allowed_syscall
3:      movq    SUBCTX_START_PREPARE(%r12), %rax
        testq   %rax, %rax
        jz      4f
        movq    %r12, %rdi              /* a child process: the subcontext's view made real in it */
        call    *%rax
        testq   %rax, %rax
        jnz     7f
4:      movl    $14, %edi               /* rt_sigprocmask(SIG_SETMASK, &start->mask, 0, 8) */
        movl    $2, %esi
        leaq    SUBCTX_START_MASK(%r12), %rdx
        xorl    %ecx, %ecx
        movl    $8, %r8d
        call    subctx_allowed_syscall
        movl    SUBCTX_START_PKRU(%r12), %eax
        cmpl    $-1, %eax
        je      2f
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        .byte   0x0f, 0x01, 0xef        /* wrpkru */
2:      ldmxcsr SUBCTX_START_MXCSR(%r12)
        movq    SUBCTX_START_RSP(%r12), %rsp
        pushq   SUBCTX_START_RIP(%r12)  /* below its stack pointer: nothing of the subcontext's there */
        movq    SUBCTX_START_R8(%r12), %r8
        movq    SUBCTX_START_R9(%r12), %r9
        movq    SUBCTX_START_R10(%r12), %r10
        movq    SUBCTX_START_R11(%r12), %r11
        movq    SUBCTX_START_R13(%r12), %r13
        movq    SUBCTX_START_R14(%r12), %r14
        movq    SUBCTX_START_R15(%r12), %r15
        movq    SUBCTX_START_RDI(%r12), %rdi
        movq    SUBCTX_START_RSI(%r12), %rsi
        movq    SUBCTX_START_RBP(%r12), %rbp
        movq    SUBCTX_START_RBX(%r12), %rbx
        movq    SUBCTX_START_RDX(%r12), %rdx
        movq    SUBCTX_START_RCX(%r12), %rcx
        xorl    %eax, %eax
        movq    SUBCTX_START_R12(%r12), %r12
        ret
9:      movl    $60, %edi               /* dispatch refused: it ends before running any code of the subcontext's */
        movl    $1, %esi
        call    subctx_allowed_syscall
        ud2
7:      movl    $231, %edi              /* a child that could not be prepared: exit_group(127) */
        movl    $127, %esi
        call    subctx_allowed_syscall
        ud2
        .cfi_endproc
        .size   subctx_clone_thread, .-subctx_clone_thread

/* The system calls Syscall User Dispatch always lets through: the restorer
 * of the Matchmaker's signal handlers (a handler that returns into the
 * subcontext re-blocks system calls first, and its rt_sigreturn must still
 * pass), the end of a subcontext thread, and one generic system call for
 * handlers.  Nothing else goes here. */
        .section .text.subctx_allowed,"ax",@progbits
        .globl  subctx_allowed_begin
        .hidden subctx_allowed_begin
subctx_allowed_begin:
        .globl  subctx_sigreturn
        .hidden subctx_sigreturn
        .type   subctx_sigreturn, @function
subctx_sigreturn:
        /* mov $15, %rax; syscall -- these exact bytes: unwinders (libgcc,
         * gdb) recognize a signal frame's restorer by them. */
        .byte   0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00
        .byte   0x0f, 0x05
        ud2
        .size   subctx_sigreturn, .-subctx_sigreturn

/* [[noreturn]] subctx_thread_exit(ctid, status): the last instructions of
 * a thread subcontext code started (fault/threads.cpp).  Its thread id is
 * cleared at ctid (if not 0) and its joiner woken -- after which glibc may
 * reuse the thread's stack for the next thread -- then it exits: neither
 * step touches the stack, and both pass whatever its selector says. */
        HIDDEN_FUNCTION subctx_thread_exit
        movl    %esi, %r8d
        testq   %rdi, %rdi
        jz      1f
        movl    $0, (%rdi)
        movl    $1, %esi                /* futex(ctid, FUTEX_WAKE, INT_MAX) */
        movl    $0x7fffffff, %edx
        movl    $202, %eax
        syscall
1:      movl    %r8d, %edi
        movl    $60, %eax               /* exit(status): this thread only */
        syscall
        jmp     1b
        .size   subctx_thread_exit, .-subctx_thread_exit

/* long subctx_allowed_syscall(nr, a, b, c, d, e, f) */
        HIDDEN_FUNCTION subctx_allowed_syscall
        .cfi_startproc
        movq    %rdi, %rax
        movq    %rsi, %rdi
        movq    %rdx, %rsi
        movq    %rcx, %rdx
        movq    %r8, %r10
        movq    %r9, %r8
        movq    8(%rsp), %r9
        syscall
        ret
        .cfi_endproc
        .size   subctx_allowed_syscall, .-subctx_allowed_syscall
        .globl  subctx_allowed_end
        .hidden subctx_allowed_end
subctx_allowed_end:

        .section .note.GNU-stack,"",@progbits
