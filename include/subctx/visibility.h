/* subctx — SUBCTX_API marks what the libraries export.
 *
 * libsubctx_client and libsubctx_server are built with -fvisibility=hidden:
 * their dynamic symbol tables hold only the declarations of the public
 * headers marked SUBCTX_API (and the libc functions the client library
 * interposes), so that a process loading them resolves a few dozen symbols,
 * not every internal one.  The mark goes on declarations only. */
#ifndef SUBCTX_VISIBILITY_H
#define SUBCTX_VISIBILITY_H

#define SUBCTX_API __attribute__((visibility("default")))

#endif /* SUBCTX_VISIBILITY_H */
