/* The floor of a gate (bench/floor_gate.hpp): what any gate must do to run
 * a function on another stack with another thread pointer, and nothing
 * else.  x86-64 System V.
 *
 * int64_t bench_floor_<kind>(int64_t (*fn)(int64_t), int64_t x,
 *                            void *stack_top, uint64_t thread_pointer)
 */
        .text

/* Saves rbx/r12/r13 (3 pushes: the stack is 16-byte aligned again). */
.macro FLOOR_PROLOGUE
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        movq    %rdi, %rbx              /* fn */
        movq    %rsp, %r13              /* our stack */
.endm

.macro FLOOR_CALL
        movq    %rdx, %rsp              /* the other stack */
        movq    %rsi, %rdi
        callq   *%rbx
        movq    %r13, %rsp
.endm

.macro FLOOR_EPILOGUE
        popq    %r13
        popq    %r12
        popq    %rbx
        ret
.endm

        .globl  bench_floor_fsgsbase
        .type   bench_floor_fsgsbase, @function
        .p2align 4
bench_floor_fsgsbase:
        FLOOR_PROLOGUE
        rdfsbase %r12
        wrfsbase %rcx
        FLOOR_CALL
        wrfsbase %r12
        FLOOR_EPILOGUE
        .size   bench_floor_fsgsbase, .-bench_floor_fsgsbase

/* Plus a WRPKRU pair: closes and opens access for key 15 (bit 30: access
 * disable), as a pkey gate writes PKRU on the way in and out. */
        .globl  bench_floor_fsgsbase_pkru
        .type   bench_floor_fsgsbase_pkru, @function
        .p2align 4
bench_floor_fsgsbase_pkru:
        FLOOR_PROLOGUE
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        movq    %rsp, %r13
        movq    %rdx, %r15              /* stack_top: rdx is PKRU's operand */
        rdfsbase %r12
        wrfsbase %rcx
        xorl    %ecx, %ecx
        .byte   0x0f, 0x01, 0xee        /* rdpkru */
        movl    %eax, %r14d
        xorl    $0x40000000, %eax
        xorl    %edx, %edx
        .byte   0x0f, 0x01, 0xef        /* wrpkru: in */
        movq    %r15, %rdx
        FLOOR_CALL
        movq    %rax, %r15
        movl    %r14d, %eax
        xorl    %ecx, %ecx
        xorl    %edx, %edx
        .byte   0x0f, 0x01, 0xef        /* wrpkru: out */
        movq    %r15, %rax
        wrfsbase %r12
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        FLOOR_EPILOGUE
        .size   bench_floor_fsgsbase_pkru, .-bench_floor_fsgsbase_pkru

/* Without FSGSBASE: arch_prctl(ARCH_SET_FS) each way. */
        .globl  bench_floor_arch_prctl
        .type   bench_floor_arch_prctl, @function
        .p2align 4
bench_floor_arch_prctl:
        FLOOR_PROLOGUE
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        movq    %rsp, %r13
        movq    %rsi, %r14              /* x: the system call clobbers rsi */
        movq    %rdx, %r15              /* stack_top */
        movq    %fs:0, %r12             /* glibc: the TCB's first word is its address */
        movl    $158, %eax              /* SYS_arch_prctl */
        movl    $0x1002, %edi           /* ARCH_SET_FS */
        movq    %rcx, %rsi
        syscall
        movq    %r15, %rdx
        movq    %r14, %rsi
        FLOOR_CALL
        movq    %rax, %r15
        movl    $158, %eax
        movl    $0x1002, %edi
        movq    %r12, %rsi
        syscall
        movq    %r15, %rax
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        FLOOR_EPILOGUE
        .size   bench_floor_arch_prctl, .-bench_floor_arch_prctl

        .section .note.GNU-stack,"",@progbits
