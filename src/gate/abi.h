/* Facts shared by C++ and assembly (gate.S, server/import_stubs.S): the
 * frame's layout the gate, the import stubs and the callback entry read,
 * the argument records, and the number of import stubs.  C preprocessor only; gate.hpp static_asserts the
 * offsets against the Frame and CallbackRecord structs. */
#ifndef SUBCTX_GATE_ABI_H
#define SUBCTX_GATE_ABI_H

/* Frame (gate.hpp) */
#define SUBCTX_FRAME_FN 0
#define SUBCTX_FRAME_TCB 8
#define SUBCTX_FRAME_STACK_TOP 16
#define SUBCTX_FRAME_CLIENT_FS 152
#define SUBCTX_FRAME_CLIENT_SP 160
#define SUBCTX_FRAME_SELECTOR 168
#define SUBCTX_FRAME_CLIENT_MXCSR 176
#define SUBCTX_FRAME_CLIENT_FPUCW 180
#define SUBCTX_FRAME_BATCH_ARGS 184
#define SUBCTX_FRAME_BATCH_RESULTS 192
#define SUBCTX_FRAME_BATCH_COUNT 200
#define SUBCTX_FRAME_BATCH_DONE 208
/* Where an import stub jumps: the client's callback entry.  Part of the
 * image format (version 3): a server library's stubs read it. */
#define SUBCTX_FRAME_CALLBACK_ENTRY 216
#define SUBCTX_FRAME_STACK_LO 232

/* A call's argument record (detail::CallArgs: ints, then f64s) and result
 * slot (detail::CallResult: rax, xmm0), as the gate's loop walks them. */
#define SUBCTX_ARGS_INTS 0
#define SUBCTX_ARGS_F64S 48
#define SUBCTX_ARGS_STRIDE 120
#define SUBCTX_RESULT_RAX 0
#define SUBCTX_RESULT_XMM0 8
#define SUBCTX_RESULT_STRIDE 16

/* CallbackRecord (gate.hpp): the registers of an import call, on the
 * client's stack below the frame's client_sp. */
#define SUBCTX_CB_INTS 0
#define SUBCTX_CB_F64S 48
#define SUBCTX_CB_RAX 112
#define SUBCTX_CB_XMM0 120
#define SUBCTX_CB_SUB_SP 128
#define SUBCTX_CB_FRAME 136
#define SUBCTX_CB_INDEX 144
#define SUBCTX_CB_MXCSR 148
#define SUBCTX_CB_FPUCW 152
#define SUBCTX_CB_SUB_BP 160
#define SUBCTX_CB_SIZE 176

/* Imports per image: the server library's stubs, 16 bytes each. */
#define SUBCTX_MAX_IMPORTS 256
#define SUBCTX_IMPORT_STUB_SIZE 16

#endif
