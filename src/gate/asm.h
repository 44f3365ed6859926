/* Assembly helpers of the library's .S files (gate.S, fault/signal_entry.S). */
#ifndef SUBCTX_GATE_ASM_H
#define SUBCTX_GATE_ASM_H

/* A function only this library calls: global for the linker, hidden from
 * other objects, 16-byte aligned. */
/* Assembler, not C: */
/* clang-format off */
.macro HIDDEN_FUNCTION name
        .globl  \name
        .hidden \name
        .type   \name, @function
        .p2align 4
\name:
.endm
/* clang-format on */

#endif
