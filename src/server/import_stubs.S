/* Import stubs (docs/callbacks.md): sbc_import() returns stub N for the
 * N-th import.  Server code calls it as the function itself; in a client
 * the stub finds the frame of the call in progress in the slot at the gate
 * stack's top (subctx_import_slot holds the slot's address, patched into
 * the image at snapshot; 0 in the server process) and jumps to the callback
 * entry the frame names, with the import's number in %r11d.  The argument
 * registers and the return address are left as the caller set them. */
#include "gate/abi.h"

        .text
        .p2align 4
        .globl  subctx_import_stubs
        .hidden subctx_import_stubs
subctx_import_stubs:
        .set    stub_number, 0
        .rept   SUBCTX_MAX_IMPORTS
        movl    $stub_number, %r11d
        jmp     subctx_import_common
        .p2align 4                      /* SUBCTX_IMPORT_STUB_SIZE bytes each */
        .set    stub_number, stub_number + 1
        .endr
        .globl  subctx_import_stubs_end
        .hidden subctx_import_stubs_end
subctx_import_stubs_end:

        .type   subctx_import_common, @function
subctx_import_common:
        movq    subctx_import_slot(%rip), %rax
        testq   %rax, %rax
        jz      1f
        movq    (%rax), %rax            /* the frame of the call in progress */
        testq   %rax, %rax
        jz      1f
        jmp     *SUBCTX_FRAME_CALLBACK_ENTRY(%rax)
1:      movl    %r11d, %edi             /* not in a client's call: say so and abort */
        jmp     subctx_import_outside_call
        .size   subctx_import_common, .-subctx_import_common

        .bss
        .p2align 3
        .globl  subctx_import_slot
        .hidden subctx_import_slot
        .type   subctx_import_slot, @object
subctx_import_slot:
        .zero   8
        .size   subctx_import_slot, 8

        .section .note.GNU-stack,"",@progbits
