/*
 * streamstore.h — the public API of libstreamstore, an embeddable event store
 * with Message DB semantics.
 *
 * This header is the specification of the library.  Conventions that hold
 * for every function unless its comment says otherwise:
 *
 *   - Return value: 0 (LSS_OK) on success, a negative LSS_E* code on error,
 *     or a small positive status (LSS_ROW, LSS_DONE, LSS_AGAIN).
 *   - Strings are (pointer, length) pairs; they need not be NUL-terminated
 *     and may contain any bytes unless stated.  A NULL pointer with length 0
 *     is an empty string.
 *   - Pointers passed in are borrowed for the duration of the call only.
 *   - Pointers returned are views into library-owned memory; each function
 *     says how long they stay valid.
 *   - Positions, versions and counts are int64_t.
 *   - Nothing in this library calls exit() or abort(), and nothing keeps
 *     process-global mutable state.
 */
#ifndef STREAMSTORE_H
#define STREAMSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Export macro
 * ---------------------------------------------------------------------- */
#if defined(LSS_STATIC)
#define LSS_API
#elif defined(__GNUC__) || defined(__clang__)
#define LSS_API __attribute__((visibility("default")))
#else
#define LSS_API
#endif

/* ------------------------------------------------------------------------
 * Feature macros
 * ---------------------------------------------------------------------- */

/* The EventoDB wire protocol version the server speaks. */
#define LSS_PROTOCOL_VERSION "0.7.0"

/* ------------------------------------------------------------------------
 * Version.  The macros describe the header compiled against; the functions
 * describe the library actually linked.  The build checks both against the
 * VERSION file at the top of the source tree.
 * ---------------------------------------------------------------------- */
#define LSS_VERSION_MAJOR 0
#define LSS_VERSION_MINOR 1
#define LSS_VERSION_PATCH 0
#define LSS_VERSION_STRING "0.1.0"
#define LSS_VERSION_NUMBER \
    (LSS_VERSION_MAJOR * 1000000 + LSS_VERSION_MINOR * 1000 + LSS_VERSION_PATCH)

/* LSS_VERSION_NUMBER of the linked library.  Thread-safe. */
LSS_API int lss_version_number(void);
/* LSS_VERSION_STRING of the linked library; static storage.  Thread-safe. */
LSS_API const char *lss_version_string(void);

/* ------------------------------------------------------------------------
 * Error and status codes.  One table generates the enum, lss_strerror()
 * and lss_errname().  Values are fixed forever; new codes are appended.
 * ---------------------------------------------------------------------- */
#define LSS_ERRNO_MAP(X)                                                     \
    X(OK, 0, "not an error")                                                 \
    X(ROW, 100, "a row is ready")                                            \
    X(DONE, 101, "no more rows")                                             \
    X(AGAIN, 102, "not ready yet: more input or a later call is needed")     \
    X(EINVAL, -1, "invalid argument")                                        \
    X(ENOMEM, -2, "out of memory")                                           \
    X(ENOSPACE, -3, "output buffer too small")                               \
    X(EJSON, -4, "malformed JSON")                                           \
    X(ERANGE, -5, "number out of range")                                     \
    X(ENAME, -6, "invalid name")                                             \
    X(EUUID, -7, "invalid UUID")                                             \
    X(ETIME, -8, "invalid timestamp")                                        \
    X(ETOKEN, -9, "invalid token format")                                    \
    X(EAUTH, -10, "token not authorized for namespace")                      \
    X(ENOTFOUND, -11, "not found")                                           \
    X(EEXISTS, -12, "already exists")                                        \
    X(EVERSION, -13, "wrong expected version")                               \
    X(EDUPLICATE, -14, "message id already exists with different content")   \
    X(ECONFLICT, -15, "position or id already exists")                       \
    X(EBUSY, -16, "resource busy")                                           \
    X(EIO, -17, "I/O error")                                                 \
    X(EFULL, -18, "storage full")                                            \
    X(EBACKEND, -19, "storage backend error")                                \
    X(ECLOSED, -20, "handle closed")                                         \
    X(EOVERFLOW, -21, "subscriber queue overflowed")                         \
    X(ENOTSUP, -22, "not supported")                                         \
    X(EINTERNAL, -23, "internal error")                                      \
    X(ETOOBIG, -24, "input too large")                                       \
    X(EMISUSE, -25, "library used incorrectly")

typedef enum lss_status {
#define LSS__ENUM(name, value, text) LSS_##name = (value),
    LSS_ERRNO_MAP(LSS__ENUM)
#undef LSS__ENUM
    LSS__STATUS_END_ = 0x7fffffff /* keeps the enum int-sized; not a code */
} lss_status;

/* A human-readable sentence for a code; static storage; "unknown error"
 * for values not in the table.  Thread-safe. */
LSS_API const char *lss_strerror(int code);
/* The symbolic name without prefix ("EVERSION", "ROW"); static storage;
 * "UNKNOWN" for values not in the table.  Thread-safe. */
LSS_API const char *lss_errname(int code);

/* ------------------------------------------------------------------------
 * Opaque types
 * ---------------------------------------------------------------------- */

/* One opened store (a SQLite data directory, ":memory:", or a PostgreSQL
 * URL).  Thread-safe. */
typedef struct lss_db lss_db;
/* A per-thread session opened from an lss_db: its own read connection,
 * statement cache and scratch memory.  Used by one thread at a time. */
typedef struct lss_conn lss_conn;
/* A read in progress; rows are views valid until the next step. */
typedef struct lss_cursor lss_cursor;
/* A live subscription fed by the store's hub after each commit. */
typedef struct lss_sub lss_sub;

/* ------------------------------------------------------------------------
 * Allocator.  Every handle takes one at open; NULL means libc.  The library
 * never allocates through anything else.  ctx is passed back untouched.
 *   malloc:  like malloc(3); NULL on failure.
 *   realloc: like realloc(3); old_size is the size previously requested for
 *            ptr (0 when ptr is NULL).  NULL on failure, ptr untouched.
 *   free:    like free(3); accepts NULL.
 * The functions must be callable from any thread that uses the handle.
 * ---------------------------------------------------------------------- */
typedef struct lss_allocator {
    void *(*malloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t old_size, size_t new_size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} lss_allocator;

/* A borrowed byte string: p[0..n).  Used in results; never NUL-terminated
 * unless stated. */
typedef struct lss_span {
    const char *p;
    size_t n;
} lss_span;

/* ------------------------------------------------------------------------
 * Utilities: stream-name rules (PROTOCOL.md section 7).  All are pure
 * functions of their arguments and thread-safe.
 * ---------------------------------------------------------------------- */

/* Length of the category of stream name s[0..n): the bytes before the first
 * '-', or n when there is none.  The category is therefore always the prefix
 * s[0..return value). */
LSS_API size_t lss_category_len(const char *s, size_t n);

/* 1 if s contains no '-' (it names a category), 0 otherwise. */
LSS_API int lss_is_category(const char *s, size_t n);

/* The id of stream name s: the bytes after the first '-'.  Returns 1 and sets
 * *id/*id_n (a view into s) when s has a '-', 0 (id absent) otherwise.
 * id/id_n may be NULL when only presence is wanted. */
LSS_API int lss_stream_id(const char *s, size_t n, const char **id,
                          size_t *id_n);

/* The cardinal id of stream name s: its id up to the first '+'.  Returns 1
 * and sets the view when s has an id (possibly empty), 0 when absent. */
LSS_API int lss_cardinal_id(const char *s, size_t n, const char **card,
                            size_t *card_n);

/* Message DB's hash_64: the first 8 bytes of MD5(s[0..n)) read big-endian as
 * a signed int64.  Sets *out and returns 0; LSS_EINTERNAL if libcrypto
 * fails. */
LSS_API int lss_hash64(const char *s, size_t n, int64_t *out);

/* Consumer-group member of stream s for a group of `size` members:
 * |hash64(cardinal_id(s))| mod size, with |INT64_MIN| = 2^63.
 * Returns 1 and sets *member (0 <= *member < size) when s has a non-empty
 * cardinal id; 0 (no member) when the cardinal id is absent or empty;
 * LSS_EINVAL when size <= 0 or member is NULL; LSS_EINTERNAL if libcrypto
 * fails. */
LSS_API int lss_group_member(const char *s, size_t n, int64_t size,
                             int64_t *member);

#ifdef __cplusplus
}
#endif
#endif /* STREAMSTORE_H */
