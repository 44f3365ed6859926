/* What the first instructions of a subcontext thread read (ThreadStart,
 * fault/threads.hpp; subctx_clone_thread, fault/signal_entry.S).  C
 * preprocessor only; threads.hpp static_asserts the offsets. */
#ifndef SUBCTX_FAULT_THREAD_ABI_H
#define SUBCTX_FAULT_THREAD_ABI_H

/* regs[]: the ucontext's general registers, in its order (REG_R8 .. REG_RIP). */
#define SUBCTX_START_R8 0
#define SUBCTX_START_R9 8
#define SUBCTX_START_R10 16
#define SUBCTX_START_R11 24
#define SUBCTX_START_R12 32
#define SUBCTX_START_R13 40
#define SUBCTX_START_R14 48
#define SUBCTX_START_R15 56
#define SUBCTX_START_RDI 64
#define SUBCTX_START_RSI 72
#define SUBCTX_START_RBP 80
#define SUBCTX_START_RBX 88
#define SUBCTX_START_RDX 96
#define SUBCTX_START_RAX 104
#define SUBCTX_START_RCX 112
#define SUBCTX_START_RSP 120
#define SUBCTX_START_RIP 128
#define SUBCTX_START_MASK 136
#define SUBCTX_START_PKRU 144
#define SUBCTX_START_MXCSR 148
#define SUBCTX_START_TID 152
#define SUBCTX_START_SELECTOR 156
/* A stack_t for sigaltstack (ss_sp, ss_flags, ss_size at +16); the child's
 * first instructions run on it too. */
#define SUBCTX_START_ALTSTACK 160
/* A child process (fault/children.hpp): a function its first instructions
 * call with the ThreadStart (0: a thread), and the parent's stack
 * [save_lo, save_hi) saved in save_buf (save_cap bytes; save_len made)
 * across the child's run (save_hi 0: nothing saved). */
#define SUBCTX_START_PREPARE 184
#define SUBCTX_START_SAVE_HI 192
#define SUBCTX_START_SAVE_LO 200
#define SUBCTX_START_SAVE_LEN 208
#define SUBCTX_START_SAVE_BUF 216
#define SUBCTX_START_SAVE_CAP 224

#endif
