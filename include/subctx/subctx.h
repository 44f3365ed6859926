/* subctx — virtual memory subcontexts: the C API.
 *
 * Client side (link subctx-client): map an image written by a server and call
 * its exports.  Server side (link subctx-server): declare exports, then write
 * the image with sbc_snapshot() or sbc_snapshot_and_exit().
 *
 * Every function that can fail returns a negative SBC_E_* code and sets a
 * thread-local, human-readable message that sbc_last_error() returns.
 */
#ifndef SUBCTX_SUBCTX_H
#define SUBCTX_SUBCTX_H

#include <stddef.h>
#include <stdint.h>

#include "subctx/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes; functions return their negation. */
enum {
  SBC_OK = 0,
  SBC_E_INVALID_ARGUMENT = 1, /* a NULL or malformed argument */
  SBC_E_NOT_INITIALIZED = 2,  /* the Matchmaker is not installed (after sbc_finalize) */
  SBC_E_NOT_FOUND = 3,        /* the image file does not exist */
  SBC_E_NOT_REGULAR = 4,      /* the image path is not a regular file */
  SBC_E_PERMISSION = 5,       /* unreadable, writable by others, or foreign owner */
  SBC_E_BAD_IMAGE = 6,        /* malformed image: magic, truncation, segment table, exports */
  SBC_E_VERSION = 7,          /* image format version not supported */
  SBC_E_DIGEST = 8,           /* header or segment digest mismatch */
  SBC_E_CPU = 9,              /* this CPU lacks features the image needs */
  SBC_E_LIMIT = 10,           /* a configured limit was exceeded */
  SBC_E_CONFLICT = 11,        /* image address range is used by the client */
  SBC_E_ALREADY_MAPPED = 12,  /* this image is already mapped in this client */
  SBC_E_NO_SUBCONTEXT = 13,   /* unknown or unmapped subcontext handle */
  SBC_E_NO_EXPORT = 14,       /* no export of that name */
  SBC_E_SIGNATURE = 15,       /* call does not match the export's signature */
  SBC_E_SNAPSHOT = 16,        /* the server cannot be snapshotted as it is */
  SBC_E_IO = 17,              /* reading or writing a file failed */
  SBC_E_SYSTEM = 18,          /* an unexpected system call failure */
  SBC_E_POLICY = 19,          /* the client's policy denies this map or call */
  SBC_E_UNSUPPORTED = 20,     /* this machine cannot do what was asked (protection keys) */
  SBC_E_FAULT = 21,           /* the call faulted inside the subcontext (signal, abort, exit) */
  SBC_E_TIMEOUT = 22,         /* the call ran past its deadline and was stopped */
  SBC_E_QUOTA = 23,           /* the call went over the subcontext's memory quota */
  SBC_E_POISONED = 24         /* an earlier fault poisoned the subcontext: sbc_reset() it */
};

/* Protection backends (docs/protection.md): what keeps the client out of a
 * subcontext's memory outside calls.  AUTO: SUBCTX_PROTECTION if set, else
 * pkey where protection keys work, else mprotect. */
enum {
  SBC_PROTECT_AUTO = 0,
  SBC_PROTECT_NONE = 1,     /* no protection: trusted images, fastest calls */
  SBC_PROTECT_MPROTECT = 2, /* the gate opens and closes the memory per call */
  SBC_PROTECT_PKEY = 3      /* one protection key per subcontext, rights per thread */
};
/* Map flags. */
enum {
  SBC_MAP_READABLE = 1u,          /* the client may read (not write, not run) it outside calls */
  SBC_MAP_EXACT_PERMISSIONS = 2u, /* mprotect: in calls each segment keeps its own permissions */
  /* Where subcontext code's system calls are not mediated (SUBCTX_SYSCALLS=off,
   * no Syscall User Dispatch), map an image that restores descriptors or a
   * working directory anyway: its descriptor numbers then name the client's
   * (docs/identity.md).  Without this flag such a map is refused. */
  SBC_MAP_UNISOLATED = 4u
};

/* Violations: what the Matchmaker stops (docs/protection.md). */
enum {
  SBC_VIOLATION_READ = 1,        /* client read of subcontext memory */
  SBC_VIOLATION_WRITE = 2,       /* client write of subcontext memory */
  SBC_VIOLATION_EXEC = 3,        /* call or jump into a subcontext other than at an export */
  SBC_VIOLATION_DENIED_CALL = 4, /* raw call of an export the policy denies, or that failed */
  SBC_VIOLATION_STALE_CALL = 5,  /* raw call through a pointer of an unmapped subcontext */
  SBC_VIOLATION_CALL_FAULT = 6   /* a raw call faulted inside the subcontext (no error channel) */
};
typedef struct sbc_violation {
  int kind;                   /* SBC_VIOLATION_* */
  int signal;                 /* SIGSEGV, or SIGBUS */
  int subcontext;             /* handle; -1 when unknown */
  uintptr_t address;          /* the address read, written or jumped to */
  uintptr_t pc;               /* the client instruction */
  const char *image_path;     /* NULL when unknown */
  const char *region;         /* what is at address, e.g. "libc.so.6 rw-"; may be NULL */
  const char *nearest_export; /* may be NULL */
  intptr_t export_offset;     /* address - nearest export's address */
  const char *detail;         /* why a raw call was refused; may be NULL */
} sbc_violation;
/* Runs in signal context on the thread that made the access, with the
 * client's thread pointer: async-signal-safe functions only.  It may record
 * the violation, write(2), _exit(), or siglongjmp() out (the access is then
 * not made).  When it returns, the process dies of SIGSEGV. */
typedef void (*sbc_violation_handler)(const sbc_violation *violation, void *user);

/* Limits (sbc_set_limit / sbc_get_limit; environment variables in brackets). */
enum {
  SBC_LIMIT_SUBCONTEXTS = 0, /* subcontexts per client     [SUBCTX_MAX_SUBCONTEXTS] */
  SBC_LIMIT_IMAGE_SIZE = 1,  /* bytes of virtual memory    [SUBCTX_MAX_IMAGE_SIZE] */
  SBC_LIMIT_EXPORTS = 2,     /* exports per image          [SUBCTX_MAX_EXPORTS] */
  SBC_LIMIT_SEGMENTS = 3     /* segments per image         [SUBCTX_MAX_SEGMENTS] */
};

/* ---- client ---------------------------------------------------------- */

/* Installs the Matchmaker; already done at its first use (any sbc_ call of
 * the client), or before main when a SUBCTX_* variable is set.  Idempotent;
 * after sbc_finalize() it installs it again. */
SUBCTX_API int sbc_init(void);

/* Maps an image; returns a handle >= 0 or -SBC_E_*. */
SUBCTX_API int sbc_request_map(const char *image_path);

/* Calls an export.  args[i] holds the i-th argument: integers and pointers as
 * they are, f64 arguments as their IEEE-754 bit pattern (memcpy).  *ret (may
 * be NULL) receives the result the same way; i32/u32 results are sign- or
 * zero-extended.  nargs must equal the export's argument count. */
SUBCTX_API int sbc_request_call(int sc, const char *export_name, const uint64_t *args, size_t nargs, uint64_t *ret);

/* A batch: calls an export ncalls times in a row without leaving the
 * subcontext in between -- one policy check and one protection window for
 * all of them.  args holds ncalls rows of nargs values (row i: the i-th
 * call's arguments, as for sbc_request_call); rets (may be NULL) receives
 * ncalls results.  The call timeout covers the whole batch.  *completed (may
 * be NULL) receives how many calls returned: ncalls on success; when a call
 * fails (SBC_E_FAULT, _TIMEOUT, _QUOTA), the calls before it, whose results
 * are in rets (ncalls when every call returned and what failed came after:
 * the dirty-page quota, or the subcontext's stdout flushed at the end).  Exports returning str are refused unless the
 * client may read the subcontext (SBC_MAP_READABLE or no protection). */
SUBCTX_API int sbc_request_call_batch(int sc, const char *export_name, const uint64_t *args, size_t nargs,
                                      size_t ncalls, uint64_t *rets, size_t *completed);

/* Maps an image with a protection backend (SBC_PROTECT_*) and SBC_MAP_*
 * flags; sbc_request_map(path) is sbc_request_map_with(path, SBC_PROTECT_AUTO, 0). */
SUBCTX_API int sbc_request_map_with(const char *image_path, int protection, unsigned flags);
/* The backend in effect for a subcontext (SBC_PROTECT_NONE, _MPROTECT or _PKEY). */
SUBCTX_API int sbc_protection(int sc);

/* A plain function pointer to an export (a "raw call"): calling it faults
 * into the Matchmaker, which checks the call like sbc_request_call and
 * returns the export's result to the caller.  The caller must use the
 * export's signature.  A raw call the policy denies is a violation. */
SUBCTX_API int sbc_lookup(int sc, const char *export_name, void **fn);

/* NULL restores the default: a one-line diagnostic, then death by SIGSEGV. */
SUBCTX_API int sbc_set_violation_handler(sbc_violation_handler handler, void *user);

SUBCTX_API int sbc_unmap(int sc);
SUBCTX_API void sbc_finalize(void);
SUBCTX_API const char *sbc_last_error(void);

SUBCTX_API int sbc_set_limit(int limit, uint64_t value);
SUBCTX_API int sbc_get_limit(int limit, uint64_t *value);

/* Copies the signature of an export into buf (NUL-terminated). */
SUBCTX_API int sbc_export_signature(int sc, const char *export_name, char *buf, size_t size);

/* Installs a policy (see docs/policy.md) from text, replacing the current
 * one; NULL removes it.  Takes effect on the next map and the next call. */
SUBCTX_API int sbc_set_policy(const char *policy_text);
/* The same from a file (what SUBCTX_POLICY names at start-up). */
SUBCTX_API int sbc_load_policy(const char *path);

/* ---- faults, deadlines, reset, memory (docs/containment.md) ---------- */

/* What happens to a subcontext after a call faulted or timed out
 * [SUBCTX_ON_FAULT=reset|poison|keep]. */
enum {
  SBC_ON_FAULT_RESET = 0,  /* back to its snapshot state (the default) */
  SBC_ON_FAULT_POISON = 1, /* further calls fail with SBC_E_POISONED until sbc_reset() */
  SBC_ON_FAULT_KEEP = 2    /* left as the fault left it */
};
SUBCTX_API int sbc_set_on_fault(int sc, int policy);
/* A deadline for every call of this subcontext, in milliseconds; 0: none
 * [SUBCTX_CALL_TIMEOUT_MS].  A call past it fails with SBC_E_TIMEOUT. */
SUBCTX_API int sbc_set_call_timeout(int sc, uint32_t milliseconds);
/* Restores the snapshot state: dirtied pages dropped back to the image,
 * memory the subcontext mapped since released. */
SUBCTX_API int sbc_reset(int sc);

typedef struct sbc_memory_info {
  uint64_t dirty_pages;      /* private pages written since map or reset */
  uint64_t peak_dirty_pages; /* most seen after a call */
  uint64_t mapped_bytes;     /* memory mapped by subcontext code, now */
  uint64_t peak_mapped_bytes;
  uint64_t max_dirty_pages; /* the quota; 0: none */
  uint64_t max_mapped_bytes;
  uint64_t faults; /* calls that faulted, timed out or went over quota */
  uint64_t resets;
} sbc_memory_info;
SUBCTX_API int sbc_memory(int sc, sbc_memory_info *info);
/* Quotas: 0 removes one [SUBCTX_QUOTA_DIRTY_PAGES, SUBCTX_QUOTA_MAPPED_BYTES]. */
SUBCTX_API int sbc_set_quota(int sc, uint64_t max_dirty_pages, uint64_t max_mapped_bytes);

/* ---- descriptors (docs/identity.md) ---------------------------------- */

/* Gives the subcontext its own duplicate of the client's descriptor fd;
 * returns the number subcontext code knows it by (>= 0), or -SBC_E_*.  The
 * grant lasts until sbc_revoke_fd(), or until subcontext code closes that
 * number; a reset keeps it. */
SUBCTX_API int sbc_grant_fd(int sc, int fd);
/* Closes the subcontext's descriptor `number` (a grant, or one its code
 * opened).  -SBC_E_INVALID_ARGUMENT if the subcontext has no such number. */
SUBCTX_API int sbc_revoke_fd(int sc, int number);
/* A duplicate of the subcontext's descriptor `number` for the client
 * (close-on-exec); returns the client's descriptor, or -SBC_E_*.  The
 * subcontext keeps its own. */
SUBCTX_API int sbc_claim_fd(int sc, int number);

/* ---- callbacks (docs/callbacks.md) ----------------------------------- */

/* Callbacks in progress on one thread, nested (a callback that calls an
 * export whose code calls an import, ...): past this, the import call fails
 * and so does the call it was made in (SBC_E_FAULT). */
#define SBC_MAX_CALLBACK_DEPTH 16

/* Binds the image's import `import_name` to fn, a function of the client
 * with that signature (the import's, else -SBC_E_SIGNATURE; no such import:
 * -SBC_E_NO_EXPORT).  fn NULL unbinds.  Takes effect on the next call;
 * refused inside a call of the same subcontext (a callback).  An import
 * called while unbound ends the call with SBC_E_FAULT naming it. */
SUBCTX_API int sbc_bind(int sc, const char *import_name, void *fn, const char *signature);
/* The same with a pointer for fn to read with sbc_callback_user(). */
SUBCTX_API int sbc_bind_user(int sc, const char *import_name, void *fn, const char *signature, void *user);
/* Inside a callback: the user pointer of the binding running; NULL elsewhere. */
SUBCTX_API void *sbc_callback_user(void);

/* ---- server ---------------------------------------------------------- */

/* Declares an export.  signature: "ret(arg,arg,...)", types from
 * void i32 i64 u32 u64 f64 ptr str, no spaces, e.g. "i64(i64)". */
SUBCTX_API int sbc_export(const char *name, void *fn, const char *signature);

/* Declares an import (docs/callbacks.md): a function the subcontext calls and
 * each client binds (sbc_bind).  Returns a pointer that server code casts to
 * the function's type and calls, inside calls of a client after the
 * snapshot (called in the server process, it ends it with a message); NULL
 * on error (sbc_last_error): a bad name or signature, the same name declared
 * with another signature, more than 256 imports. */
SUBCTX_API void *sbc_import(const char *name, const char *signature);

/* Declares descriptor fd dropped for the snapshot: a pipe, socket or other
 * descriptor that cannot be reopened by path is left behind instead of
 * refusing the snapshot; inside the subcontext its number is EBADF. */
SUBCTX_API int sbc_snapshot_drop_fd(int fd);

/* Declares that the image's code starts programs (posix_spawn, vfork +
 * exec): clients allow it unless their policy denies it (docs/policy.md).
 * Applies to every later sbc_snapshot*; returns 0.  SnapshotOptions::spawns
 * in C++. */
SUBCTX_API int sbc_snapshot_declare_spawns(void);

/* Writes the image of this process to image_path and returns 0. */
SUBCTX_API int sbc_snapshot(const char *image_path);

/* Writes the image and ends the process: exit status 0 on success; on failure
 * the message goes to stderr and the status is 1. */
SUBCTX_API void sbc_snapshot_and_exit(const char *image_path) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* SUBCTX_SUBCTX_H */
