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
 *   - A session has at most one open cursor, and while it is open every
 *     other call on that session that reads or writes the store returns
 *     LSS_EMISUSE: close the cursor first (or use a second session).
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
 * Options
 * ---------------------------------------------------------------------- */

/* Durability of SQLite file stores (PRAGMA synchronous). */
#define LSS_SYNC_FULL 2   /* default: an acknowledged write survives power loss */
#define LSS_SYNC_NORMAL 1 /* WAL: survives a process crash, not power loss */
#define LSS_SYNC_OFF 0

typedef struct lss_options {
    size_t struct_size;             /* set by lss_options_init; lets the struct grow */
    const lss_allocator *allocator; /* NULL = libc */
    int sync;                       /* LSS_SYNC_*; default LSS_SYNC_FULL */
    int busy_timeout_ms;            /* default 5000 */
    const char *metadata_file;      /* registry file name in the data directory;
                                       NULL = "metadata.db" */
    int create_default;             /* create namespace "default" if missing;
                                       default 0 */
    int group_commit_max;           /* appends per transaction at most; default 512 */
} lss_options;

/* Fill o with the defaults.  o must not be NULL. */
LSS_API void lss_options_init(lss_options *o);

/* ------------------------------------------------------------------------
 * Lifecycle
 * ---------------------------------------------------------------------- */

/* Open a store.  url is
 *   ":memory:"                 a private in-memory store (tests; lost at close)
 *   "postgres://..." / "postgresql://..."   PostgreSQL (when built with it)
 *   anything else              a SQLite data directory, created if missing,
 *                              holding the registry (o->metadata_file) and
 *                              one database file per namespace.
 * o may be NULL (defaults).  On success *out is a new handle.  On failure
 * returns a negative code and, unless the code is LSS_ENOMEM, *out is still
 * a handle whose lss_db_errmsg() explains the failure; close it with
 * lss_close().  Errors: LSS_EINVAL, LSS_ENOMEM, LSS_EIO, LSS_EBACKEND,
 * LSS_ENOTSUP.  Thread-safe. */
LSS_API int lss_open(const char *url, const lss_options *o, lss_db **out);

/* Close a store.  Every lss_conn, lss_cursor and lss_sub opened from it must
 * be closed first.  Accepts NULL. */
LSS_API void lss_close(lss_db *db);

/* Text of the last error of lss_open() or of a store-wide failure; valid
 * until the next call on db. */
LSS_API const char *lss_db_errmsg(lss_db *db);

/* Open a session for one thread.  Errors: LSS_ENOMEM, LSS_EBACKEND.
 * Thread-safe; the returned handle is used by one thread at a time. */
LSS_API int lss_conn_open(lss_db *db, lss_conn **out);

/* Close a session; closes its open cursor.  Accepts NULL. */
LSS_API void lss_conn_close(lss_conn *c);

/* Text of the last error on c (argument checks, backend failures with the
 * backend's own code).  Valid until the next call on c.  Never NULL. */
LSS_API const char *lss_errmsg(lss_conn *c);

/* ------------------------------------------------------------------------
 * Namespaces.  A namespace is an isolated tenant with its own streams and
 * global positions.  Ids are 1..255 bytes of UTF-8 without U+0000.
 * ---------------------------------------------------------------------- */

/* Longest token: "ns_" + base64url(255 bytes) + "_" + 64 hex digits. */
#define LSS_TOKEN_MAX 408

/* Create namespace ns.  token (token_n bytes) is stored (as its SHA-256)
 * when given, and must parse and name ns; NULL generates one.  The token is
 * copied to token_out (token_cap >= LSS_TOKEN_MAX, not NUL-terminated) with
 * its length in *token_len; *created_us (may be NULL) receives the creation
 * time.  Errors: LSS_ENAME (bad id), LSS_ETOKEN (token unparseable or for
 * another namespace; see lss_errmsg), LSS_EEXISTS, LSS_ENOSPACE (token_cap),
 * LSS_EBACKEND, LSS_EIO, LSS_ENOMEM.  Thread-safe across sessions. */
LSS_API int lss_ns_create(lss_conn *c, const char *ns, size_t ns_n,
                          const char *description, size_t description_n,
                          const char *token, size_t token_n, char *token_out,
                          size_t token_cap, size_t *token_len,
                          int64_t *created_us);

/* Delete namespace ns and all its messages.  *messages_deleted (may be
 * NULL) receives how many it held, *deleted_us (may be NULL) the time.
 * Open subscriptions stay open and receive nothing more.
 * Errors: LSS_ENAME, LSS_ENOTFOUND, LSS_EBACKEND, LSS_EIO. */
LSS_API int lss_ns_delete(lss_conn *c, const char *ns, size_t ns_n,
                          int64_t *messages_deleted, int64_t *deleted_us);

/* One namespace, as lss_ns_info() and lss_cursor_next_ns() report it. */
typedef struct lss_ns_row {
    lss_span id;
    lss_span description;
    int64_t created_us;       /* registry time (whole seconds on disk) */
    int64_t message_count;
    int64_t stream_count;     /* lss_ns_info only; -1 in listings */
    int64_t last_activity_us; /* newest message time; lss_ns_info only */
    int has_last_activity;    /* 0 when the namespace has no messages */
} lss_ns_row;

/* Describe namespace ns.  *row points into c and stays valid until the next
 * call on c.  Errors: LSS_ENAME, LSS_ENOTFOUND, LSS_EBACKEND. */
LSS_API int lss_ns_info(lss_conn *c, const char *ns, size_t ns_n,
                        const lss_ns_row **row);

/* List every namespace, newest first (ties by id in byte order); rows via
 * lss_cursor_next_ns().  Errors: LSS_EMISUSE (a cursor is open on c),
 * LSS_EBACKEND. */
LSS_API int lss_ns_list(lss_conn *c, lss_cursor **out);

/* lss_authorize() flags. */
#define LSS_AUTH_NO_HASH 0x1 /* test mode: accept a well-formed token of an
                                existing namespace without comparing hashes */

/* Resolve a bearer token to its namespace.  On success *ns / *ns_n view the
 * namespace id (valid until the next call on c).  Errors: LSS_ETOKEN (the
 * parse error text is lss_errmsg(c)), LSS_EAUTH (unknown namespace or wrong
 * secret — indistinguishable on purpose; *ns still views the decoded id).
 * Hashes are compared in constant time; results are cached. */
LSS_API int lss_authorize(lss_conn *c, const char *token, size_t token_n,
                          unsigned flags, const char **ns, size_t *ns_n);

/* ------------------------------------------------------------------------
 * Write
 * ---------------------------------------------------------------------- */

/* One message to append.  data is a JSON object text, metadata a JSON
 * object text or NULL (none); both are validated strictly and then stored
 * byte for byte.  id is any UUID spelling (canonical, braced, URN, 32 hex)
 * or NULL/empty to generate a UUIDv7. */
typedef struct lss_msg_in {
    const char *id;
    size_t id_n;
    const char *type;
    size_t type_n;
    const char *data;
    size_t data_n;
    const char *metadata;
    size_t metadata_n;
} lss_msg_in;

/* lss_append flags. */
#define LSS_APPEND_EXPECT 0x1 /* check expected_version */

/* Most messages in one append (one atomic batch to one stream). */
#define LSS_BATCH_MAX 1000

/* An append request and its result.  Inputs are borrowed for the call. */
typedef struct lss_append {
    /* in */
    const char *ns;
    size_t ns_n;
    const char *stream;
    size_t stream_n;
    const lss_msg_in *msgs;
    size_t count;             /* 1..LSS_BATCH_MAX */
    unsigned flags;           /* LSS_APPEND_* */
    int64_t expected_version; /* with LSS_APPEND_EXPECT; -1 = no stream yet */
    /* out */
    int rc;                   /* this request's result */
    int64_t position;         /* of the last message */
    int64_t global_position;  /* of the last message */
    int64_t actual_version;   /* LSS_EVERSION: the stream's version */
    size_t bad_index;         /* LSS_EDUPLICATE / argument errors: which msg */
    char id[36];              /* canonical id of the last message written, or
                                 of the conflicting one (LSS_EDUPLICATE) */
} lss_append;

/* Append a->count messages to a->stream atomically.  Rules (PROTOCOL.md 7):
 * positions continue the stream gaplessly; global positions increase in
 * commit order; with LSS_APPEND_EXPECT the stream version must equal
 * expected_version (-1 = empty) else LSS_EVERSION with actual_version set.
 * An id already stored with the same stream, type, data and metadata makes
 * the request an idempotent retry: LSS_OK with the original positions and
 * nothing written; otherwise LSS_EDUPLICATE.  Concurrent appends from many
 * sessions are committed together (group commit), each keeping its own
 * checks and result.  Returns a->rc.  Errors: LSS_EINVAL (count, NULL),
 * LSS_ENAME (empty stream or type), LSS_EJSON (data/metadata not a valid
 * JSON object), LSS_EUUID, LSS_ENOTFOUND (namespace), LSS_EVERSION,
 * LSS_EDUPLICATE, LSS_EBACKEND, LSS_EIO, LSS_EFULL, LSS_ENOMEM. */
LSS_API int lss_append_one(lss_conn *c, lss_append *a);

/* Submit n appends at once (e.g. all parsed in one event-loop turn); they
 * are committed together where possible, each with its own a[i].rc.
 * Returns LSS_OK when every request was processed (look at each rc), or a
 * negative code for a failure before any was. */
LSS_API int lss_append_many(lss_conn *c, lss_append *a, size_t n);

/* ------------------------------------------------------------------------
 * Read cursor.  A session has at most one open cursor.  Row views are valid
 * until the next lss_cursor_next*() or lss_cursor_close() on the cursor.
 * ---------------------------------------------------------------------- */

/* A stored message.  data.p is NULL only for an imported record without
 * data; metadata.p is NULL when the message has none. */
typedef struct lss_message {
    lss_span id;     /* canonical lower-case UUID, 36 bytes */
    lss_span stream;
    lss_span type;
    int64_t position;
    int64_t global_position;
    lss_span data;
    lss_span metadata;
    int64_t time_us; /* microseconds since the Unix epoch, UTC */
} lss_message;

/* lss_read_opts flags. */
#define LSS_READ_GLOBAL 0x1 /* stream reads: select by global_position */
#define LSS_READ_GROUP 0x2  /* category reads: consumer group member/size */
#define LSS_READ_SINCE 0x4  /* time_us >= since_us */
#define LSS_READ_UNTIL 0x8  /* time_us < until_us */

typedef struct lss_read_opts {
    size_t struct_size;        /* set by lss_read_opts_init */
    unsigned flags;            /* LSS_READ_* */
    int64_t position;          /* stream: stream position; category: global
                                  position; default 0 */
    int64_t global_position;   /* with LSS_READ_GLOBAL */
    int64_t batch_size;        /* default 1000; <= 0 = unlimited */
    const lss_span *types;     /* keep only these types (types_n 0 = all) */
    size_t types_n;
    const char *correlation;   /* category reads: category of
                                  metadata.correlationStreamName; NULL or
                                  empty = no filter */
    size_t correlation_n;
    int64_t group_member;      /* with LSS_READ_GROUP: 0 <= member < size */
    int64_t group_size;
    int64_t since_us;          /* with LSS_READ_SINCE */
    int64_t until_us;          /* with LSS_READ_UNTIL */
} lss_read_opts;

/* Fill o with the defaults.  o must not be NULL. */
LSS_API void lss_read_opts_init(lss_read_opts *o);

/* Messages of one stream in position order.  o may be NULL (defaults).
 * Errors: LSS_ENAME (empty stream), LSS_EINVAL (bad options),
 * LSS_ENOTFOUND (namespace), LSS_EMISUSE (a cursor is open), LSS_EBACKEND,
 * LSS_EIO (the storage failed a read; also from lss_cursor_next). */
LSS_API int lss_read_stream(lss_conn *c, const char *ns, size_t ns_n,
                            const char *stream, size_t stream_n,
                            const lss_read_opts *o, lss_cursor **out);

/* Messages of a category ("" = every message) in global-position order,
 * from global position o->position.  Errors as lss_read_stream, plus
 * LSS_EINVAL for a consumer group with member < 0, size <= 0 or
 * member >= size. */
LSS_API int lss_read_category(lss_conn *c, const char *ns, size_t ns_n,
                              const char *category, size_t category_n,
                              const lss_read_opts *o, lss_cursor **out);

/* The message with the highest position of a stream, optionally only of
 * type (NULL or empty = any); the cursor yields zero or one row. */
LSS_API int lss_read_last(lss_conn *c, const char *ns, size_t ns_n,
                          const char *stream, size_t stream_n,
                          const char *type, size_t type_n, lss_cursor **out);

/* The stream's version: the highest position, -1 when it has no messages.
 * Errors: LSS_ENAME, LSS_ENOTFOUND, LSS_EBACKEND, LSS_EIO. */
LSS_API int lss_stream_version(lss_conn *c, const char *ns, size_t ns_n,
                               const char *stream, size_t stream_n,
                               int64_t *version);

/* A stream in a listing. */
typedef struct lss_stream_row {
    lss_span stream;
    int64_t version;
    int64_t last_activity_us;
} lss_stream_row;

/* A category in a listing. */
typedef struct lss_category_row {
    lss_span category;
    int64_t stream_count;
    int64_t message_count;
} lss_category_row;

/* Streams whose name starts with prefix (literal bytes) and sorts after
 * `after` in byte order ("" = from the start), at most limit (1..1000)
 * rows, by name in byte order.  Rows via lss_cursor_next_stream(). */
LSS_API int lss_list_streams(lss_conn *c, const char *ns, size_t ns_n,
                             const char *prefix, size_t prefix_n,
                             const char *after, size_t after_n, int64_t limit,
                             lss_cursor **out);

/* Every category with its counts, in byte order; rows via
 * lss_cursor_next_category(). */
LSS_API int lss_list_categories(lss_conn *c, const char *ns, size_t ns_n,
                                lss_cursor **out);

/* Step a cursor: LSS_ROW with *row set, LSS_DONE at the end, or a negative
 * error.  Each function is for the cursor kind its name says; another kind
 * is LSS_EMISUSE. */
LSS_API int lss_cursor_next(lss_cursor *cur, const lss_message **row);
LSS_API int lss_cursor_next_stream(lss_cursor *cur,
                                   const lss_stream_row **row);
LSS_API int lss_cursor_next_category(lss_cursor *cur,
                                     const lss_category_row **row);
LSS_API int lss_cursor_next_ns(lss_cursor *cur, const lss_ns_row **row);

/* Finish a cursor and release its read snapshot.  Accepts NULL. */
LSS_API void lss_cursor_close(lss_cursor *cur);

/* ------------------------------------------------------------------------
 * Subscribe.  A subscription is registered with the namespace's hub first,
 * then (stream and category kinds) replays existing messages from its
 * position, then delivers live pokes published after each commit, in
 * global-position order, never repeating one and never skipping one.
 * ---------------------------------------------------------------------- */

#define LSS_SUB_STREAM 1   /* one stream; key = stream position */
#define LSS_SUB_CATEGORY 2 /* one category (+ consumer group); key = gpos */
#define LSS_SUB_ALL 3      /* every write; key = gpos; no replay */

typedef struct lss_sub_opts {
    size_t struct_size;   /* set by lss_sub_opts_init */
    int kind;             /* LSS_SUB_* */
    const char *name;     /* stream or category name (not for LSS_SUB_ALL) */
    size_t name_n;
    int64_t position;     /* first key delivered; default 0 */
    int64_t group_member; /* category: used when group_size > 0 */
    int64_t group_size;   /* 0 = no grouping */
    int64_t replay_max;   /* messages replayed at most; default 1000; -1 =
                             unlimited; 0 = no replay */
    size_t queue_bytes;   /* bound of queued pokes; default 1 MiB */
} lss_sub_opts;

/* One notification: a message was committed.  stream is a view valid until
 * the next lss_sub_next() or lss_sub_close(). */
typedef struct lss_poke {
    lss_span stream;
    int64_t position;
    int64_t global_position;
} lss_poke;

/* Fill o with the defaults.  o must not be NULL. */
LSS_API void lss_sub_opts_init(lss_sub_opts *o);

/* Subscribe in namespace ns.  The replay is read through c at once, so the
 * subscription never holds a read snapshot.  Errors: LSS_EINVAL (kind,
 * empty name, group member/size), LSS_ENOTFOUND (namespace), LSS_ENOMEM,
 * LSS_EBACKEND.  The subscription may be used from any one thread at a
 * time; publishing is thread-safe. */
LSS_API int lss_subscribe(lss_conn *c, const char *ns, size_t ns_n,
                          const lss_sub_opts *o, lss_sub **out);

/* A file descriptor that is readable while pokes are queued (for poll or
 * epoll); owned by the subscription.  Do not read from it: lss_sub_next()
 * drains it.  -1 for NULL and for a subscription made with a notifier
 * (lss_subscribe_notify), which has no descriptor of its own. */
LSS_API int lss_sub_fd(const lss_sub *s);

/* Take the next poke: LSS_ROW with *out set, LSS_AGAIN when none is queued,
 * LSS_EOVERFLOW when the subscriber fell further behind than queue_bytes
 * (the subscription is then dead: close it; nothing was skipped silently). */
LSS_API int lss_sub_next(lss_sub *s, lss_poke *out);

/* Unregister and free a subscription.  Accepts NULL. */
LSS_API void lss_sub_close(lss_sub *s);

/* A shared wake-up for many subscriptions, for a server with thousands of
 * them on one event loop: one file descriptor in all, instead of one per
 * subscription, and one wake-up per burst of publishes instead of one per
 * subscription.  It keeps a ready list of its subscriptions that have
 * something for lss_sub_next(): a subscription joins it when a poke (or
 * its replay, or an error) becomes deliverable, and leaves it when
 * lss_sub_next() returns LSS_AGAIN or it is closed.  The descriptor is
 * readable exactly while that list is not empty. */
typedef struct lss_notifier lss_notifier;

/* Create a notifier.  a may be NULL (libc); it is copied.  Errors:
 * LSS_EINVAL (out NULL), LSS_ENOMEM, LSS_EIO (no eventfd: descriptor
 * limit).  Thread-safe. */
LSS_API int lss_notifier_new(const lss_allocator *a, lss_notifier **out);

/* The notifier's descriptor (for poll or epoll), readable while a
 * subscription is ready; owned by the notifier.  Do not read from it.
 * -1 for NULL. */
LSS_API int lss_notifier_fd(const lss_notifier *nt);

/* The next ready subscription: LSS_ROW with *sub set and *user (when user
 * is not NULL) the pointer given to lss_subscribe_notify(); LSS_AGAIN with
 * *sub NULL when none is ready; LSS_EINVAL when nt or sub is NULL.  The
 * subscription stays ready but moves to the back of the list, so a caller
 * that takes a bounded number per turn, or does not drain one fully,
 * still serves every subscription in turn.  Drain it with lss_sub_next()
 * (from the thread that owns it) until LSS_AGAIN, or close it.
 * Thread-safe. */
LSS_API int lss_notifier_next(lss_notifier *nt, lss_sub **sub, void **user);

/* Drop the caller's reference.  Subscriptions made with nt keep it alive
 * (and its descriptor open) until the last of them is closed.  Accepts
 * NULL.  Thread-safe. */
LSS_API void lss_notifier_free(lss_notifier *nt);

/* lss_subscribe(), woken through nt instead of a descriptor of its own:
 * the subscription joins nt's ready list whenever it has something for
 * lss_sub_next(), and lss_notifier_next() hands back user with it.  nt
 * NULL is lss_subscribe().  Errors: those of lss_subscribe().  The
 * subscription holds a reference on nt. */
LSS_API int lss_subscribe_notify(lss_conn *c, const char *ns, size_t ns_n,
                                 const lss_sub_opts *o, lss_notifier *nt,
                                 void *user, lss_sub **out);

/* ------------------------------------------------------------------------
 * Import and export (PROTOCOL.md section 9): records with preserved ids and
 * positions, and their NDJSON form.
 * ---------------------------------------------------------------------- */

/* One record to import.  data / metadata: a JSON object text, or NULL for
 * JSON null. */
typedef struct lss_import_rec {
    const char *id;           /* any accepted UUID spelling */
    size_t id_n;
    const char *stream;
    size_t stream_n;
    const char *type;
    size_t type_n;
    int64_t position;         /* >= 0 */
    int64_t global_position;  /* >= 1 */
    const char *data;
    size_t data_n;
    const char *metadata;
    size_t metadata_n;
    int64_t time_us;
} lss_import_rec;

/* Insert recs[0..n) into namespace ns in one transaction, keeping their
 * ids, positions, global positions and times; publishes nothing.  The
 * global-position counter never moves backwards: later appends continue
 * after the highest global position.  All or nothing.  Errors: LSS_EINVAL
 * (a record breaks a rule; *bad_index says which, lss_errmsg why),
 * LSS_ECONFLICT (a global position, stream position or id already exists,
 * in the store or earlier in recs; lss_errmsg is "global position already
 * exists: <g>", "stream position already exists: <stream> <pos>" or
 * "message id already exists: <id>"), LSS_ENOTFOUND, LSS_EBACKEND.
 * bad_index may be NULL. */
LSS_API int lss_import(lss_conn *c, const char *ns, size_t ns_n,
                       const lss_import_rec *recs, size_t n,
                       size_t *bad_index);

/* Delete every message of namespace ns and restart its global positions at
 * 1 (import with force).  Errors: LSS_ENOTFOUND, LSS_EBACKEND. */
LSS_API int lss_ns_clear(lss_conn *c, const char *ns, size_t ns_n);

/* Parse one NDJSON import line (PROTOCOL.md 9.2 rules 5): on success fills
 * *rec with views into line and returns LSS_OK.  Errors: LSS_EJSON (not
 * valid JSON, not an object, or a known key of the wrong JSON type; the
 * event is INVALID_JSON) and LSS_EINVAL (a record rule; INVALID_RECORD);
 * err (err_cap bytes, NUL-terminated) receives the reason text without the
 * "at line" prefix.  Views into line stay valid as long as line does,
 * except id, stream and type when they contain JSON escapes: those are
 * unescaped into c's scratch memory and overwritten by the next call on c
 * (copy them before parsing another line). */
LSS_API int lss_ndjson_parse(lss_conn *c, const char *line, size_t n,
                             lss_import_rec *rec, char *err, size_t err_cap);

/* Write m as one NDJSON record line (PROTOCOL.md 9.1, ending in "\n") into
 * out[0..cap): returns LSS_OK with *len set, or LSS_ENOSPACE with *len the
 * size needed and nothing written past cap. */
LSS_API int lss_ndjson_write(const lss_message *m, char *out, size_t cap,
                             size_t *len);

/* ------------------------------------------------------------------------
 * JSON-RPC: the EventoDB protocol (PROTOCOL.md sections 5, 6 and 12.1-12.2)
 * as a library call.  Request bytes in, response bytes out; the HTTP shim is
 * framing and authentication around this.
 * ---------------------------------------------------------------------- */

/* lss_rpc_req flags. */
#define LSS_RPC_NULL_STORE 0x1 /* benchmarking: answer envelope-valid calls
                                  with {"globalPosition":1,"position":0} */
/* The call may be run after the writes that come later in the batch: set it
 * when no later request of the batch comes from the same client (calls of
 * different clients are concurrent, so either order is correct).  Reads so
 * marked no longer split the batch's writes into several transactions. */
#define LSS_RPC_MAY_DEFER 0x2

/* RPC methods, for metrics (lss_rpc_req.method). */
#define LSS_RPC_METHOD_MAP(X)                                                \
    X(INVALID, 0, "invalid")                                                 \
    X(UNKNOWN, 1, "unknown")                                                 \
    X(SYS_VERSION, 2, "sys.version")                                         \
    X(SYS_HEALTH, 3, "sys.health")                                           \
    X(STREAM_WRITE, 4, "stream.write")                                       \
    X(STREAM_WRITE_BATCH, 5, "stream.writeBatch")                            \
    X(STREAM_GET, 6, "stream.get")                                           \
    X(STREAM_LAST, 7, "stream.last")                                         \
    X(STREAM_VERSION, 8, "stream.version")                                   \
    X(CATEGORY_GET, 9, "category.get")                                       \
    X(NS_CREATE, 10, "ns.create")                                            \
    X(NS_DELETE, 11, "ns.delete")                                            \
    X(NS_LIST, 12, "ns.list")                                                \
    X(NS_INFO, 13, "ns.info")                                                \
    X(NS_STREAMS, 14, "ns.streams")                                          \
    X(NS_CATEGORIES, 15, "ns.categories")

enum {
#define LSS__RPC_ENUM(name, value, text) LSS_RPC_##name = (value),
    LSS_RPC_METHOD_MAP(LSS__RPC_ENUM)
#undef LSS__RPC_ENUM
    LSS_RPC_METHOD_COUNT = 16
};

/* The method's wire name ("stream.write"; "invalid"/"unknown" for 0/1);
 * static storage. */
LSS_API const char *lss_rpc_method_name(int method);

/* One RPC call. */
typedef struct lss_rpc_req {
    /* in */
    const char *ns;      /* the request namespace (from authentication) */
    size_t ns_n;
    const char *body;    /* the HTTP body: ["method", args...] */
    size_t body_n;
    unsigned flags;      /* LSS_RPC_* */
    /* out */
    int status;          /* HTTP status: 200, 400, 404, 409, 500, ... */
    int method;          /* LSS_RPC_* method id */
    const char *resp;    /* response body, ending in "\n"; valid until the
                            next lss_rpc_* call on the session */
    size_t resp_n;
} lss_rpc_req;

/* Execute reqs[0..n) in order, as if one after another, with the appends of
 * consecutive write calls committed together (group commit): a read that
 * follows a write in the array sees it.  A call flagged LSS_RPC_MAY_DEFER
 * (other than a write) runs after every write of the batch instead.  Every
 * request gets a status and a response, errors included (the error body of PROTOCOL.md 5.2).  Returns
 * LSS_OK, or LSS_EINVAL / LSS_ENOMEM when no request could be processed
 * (each then has status 500 and a response where possible).  Uses the
 * session's cursor: close any open cursor first (else LSS_EMISUSE). */
LSS_API int lss_rpc_batch(lss_conn *c, lss_rpc_req *reqs, size_t n);

/* lss_rpc_batch() of one request. */
LSS_API int lss_rpc_call(lss_conn *c, lss_rpc_req *req);

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
 * *id and *id_n (a view into s) when s has a '-', 0 (id absent) otherwise.
 * id/id_n may be NULL when only presence is wanted. */
LSS_API int lss_stream_id(const char *s, size_t n, const char **id,
                          size_t *id_n);

/* The cardinal id of stream name s: its id up to the first '+'.  Returns 1
 * and sets the view when s has an id (possibly empty), 0 when absent. */
LSS_API int lss_cardinal_id(const char *s, size_t n, const char **card,
                            size_t *card_n);

/* Message DB's hash_64: the first 8 bytes of MD5(s[0..n)) read big-endian as
 * a signed int64.  Sets *out and returns 0; LSS_EINVAL when out is NULL;
 * LSS_EINTERNAL if libcrypto fails. */
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
