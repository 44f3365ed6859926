/* The signal side's assembly (fault/signal_entry.hpp): the entries of the
 * Matchmaker's signal handlers, the switch to the client's stack for a
 * client handler, and the range Syscall User Dispatch always allows.  All
 * of it runs in signal context. */
#include "gate/asm.h"
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

/* The system calls Syscall User Dispatch always lets through: the restorer
 * of the Matchmaker's signal handlers (a handler that returns into the
 * subcontext re-blocks system calls first, and its rt_sigreturn must still
 * pass) and one generic system call for handlers.  Nothing else goes here. */
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
