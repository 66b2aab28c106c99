/* store.h — the store's internal structures, shared by store.c (generic
 * logic: registry cache, auth, group commit, cursors) and the backends
 * behind struct lss_backend_ops. */
#ifndef LSS_STORE_H
#define LSS_STORE_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

#include "hub.h"
#include "uuid.h"

typedef struct lss__ns lss__ns;
typedef struct lss__waiter lss__waiter;
typedef struct lss_backend_ops lss_backend_ops;

#define LSS_NS_ID_MAX 255
#define LSS_ERRMSG_MAX 512
/* Most append requests one commit group takes. */
#define LSS__GROUP_MAX 1024

/* A namespace instance.  Re-creating an id after deletion makes a new
 * instance, so subscriptions and caches bound to the old one never see the
 * new one's data. */
struct lss__ns {
    atomic_int refs;
    atomic_int deleted;
    char id[LSS_NS_ID_MAX + 1];
    size_t id_n;
    char token_hash[64];
    char storage[256];          /* backend storage name (file / schema) */
    char *description;          /* from the db allocator; never NULL */
    size_t description_n;
    int64_t created_us;
    lss__hub *hub;
    void *be;                   /* backend state (writer connection, ...) */

    /* Group commit: appends queue here; the first waiter leads. */
    pthread_mutex_t qlock;
    lss__waiter *qhead, *qtail;
    int qlen;                   /* waiters queued, the leader included */
    int peak;                   /* appenders seen together lately */
    int gathering;              /* a leader waits on qcond for more */
    int64_t commit_ns;          /* how long the last commit took */
    atomic_uint wake;           /* bumped by each hand-back; waiters' futex */
    pthread_cond_t qcond;
    /* Held by the leader while it writes and publishes, and by imports. */
    pthread_mutex_t wlock;
};

/* One caller of lss_append_many waiting in a namespace's queue. */
enum { LSS__W_QUEUED, LSS__W_DONE, LSS__W_LEAD };
struct lss__waiter {
    lss__waiter *next;
    lss_conn *conn;
    lss_append **reqs;          /* requests for this namespace */
    size_t n;
    atomic_int state;           /* LSS__W_* */
};

struct lss_db {
    lss_allocator a;
    lss_options o;
    const lss_backend_ops *ops;
    void *be;                   /* backend state */
    int memory;
    pthread_mutex_t lock;       /* guards the namespace table */
    lss__ns **ns;
    size_t ns_n, ns_cap;
    char errmsg[LSS_ERRMSG_MAX];
};

/* Cursor kinds. */
enum { LSS__CUR_NONE, LSS__CUR_MSG, LSS__CUR_STREAMS, LSS__CUR_CATS,
       LSS__CUR_NS };

struct lss_cursor {
    lss_conn *conn;
    int kind;
    int open;
    lss__ns *ns;                /* held while open */
    void *stmt;                 /* backend statement */
    int own_stmt;               /* finalize at close (not cached) */
    int single;                 /* last-message cursor: at most one row */
    size_t ns_index;            /* lss_ns_list: next registry entry */
    lss_message msg;
    lss_stream_row srow;
    lss_category_row crow;
    lss_ns_row nrow;
    char idtext[36];
};

struct lss_conn {
    lss_db *db;
    char errmsg[LSS_ERRMSG_MAX];
    lss_cursor cur;
    void *be;                   /* backend per-session state */
    lss__uuid_gen uuid;
    /* Last namespace used, to skip the registry lookup. */
    lss__ns *last_ns;
    /* Last token verified, to skip the SHA-256. */
    lss__ns *auth_ns;
    char auth_token[LSS_TOKEN_MAX];
    size_t auth_token_n;
    int auth_verified;          /* the cached token's hash was compared */
    lss_ns_row info;
    char *info_desc;            /* grown to the longest description seen */
    size_t info_desc_cap;
    char info_id[LSS_NS_ID_MAX + 1];
    char auth_id[LSS_NS_ID_MAX + 1];
    struct lss__rpc *rpc;       /* rpc.c's per-session state, lazily made */
    char *nd;                   /* ndjson.c: unescaped strings of a line */
    size_t nd_cap;
    /* JSON scratch tape, grown on demand and kept (see json_scratch). */
    struct lss_json_tok *jt;
    size_t jt_cap;
};

/* A backend: how the core meets SQLite or PostgreSQL. */
struct lss_backend_ops {
    const char *name;
    int (*open)(lss_db *db, const char *url);
    void (*close)(lss_db *db);
    /* Load every registry row into db->ns (called once at open). */
    int (*load)(lss_db *db);
    /* Create storage and registry row for ns atomically. */
    int (*ns_create)(lss_db *db, lss__ns *ns, char *err, size_t errcap);
    /* Remove storage and registry row; *count = messages it held. */
    int (*ns_delete)(lss_db *db, lss__ns *ns, int64_t *count, char *err,
                     size_t errcap);
    void (*ns_free)(lss_db *db, lss__ns *ns);
    int (*ns_stats)(lss_conn *c, lss__ns *ns, lss_ns_row *row);
    /* A commit group, built while its appenders arrive; the caller holds
     * ns->wlock throughout.  group_begin opens the transaction.  group_add
     * runs reqs[from..to) in it, setting each request's rc and positions;
     * on a backend error it rolls the transaction back, fails every
     * request of reqs[0..to) and returns the error (the group is over).
     * group_end commits reqs[0..n) and publishes them, or on failure rolls
     * back and fails them. */
    int (*group_begin)(lss_conn *c, lss__ns *ns);
    int (*group_add)(lss_conn *c, lss__ns *ns, lss_append **reqs,
                     size_t from, size_t to);
    int (*group_end)(lss_conn *c, lss__ns *ns, lss_append **reqs, size_t n);
    int (*conn_open)(lss_conn *c);
    void (*conn_close)(lss_conn *c);
    int (*read)(lss_conn *c, lss__ns *ns, lss_cursor *cur, int what,
                const char *name, size_t name_n, const lss_read_opts *o,
                const char *aux, size_t aux_n);
    int (*step)(lss_cursor *cur);
    void (*reset)(lss_cursor *cur);
    int (*version)(lss_conn *c, lss__ns *ns, const char *stream,
                   size_t stream_n, int64_t *version);
    /* Insert validated records in one transaction (caller holds wlock). */
    int (*import)(lss_conn *c, lss__ns *ns, const lss_import_rec *recs,
                  size_t n, size_t *bad_index);
    /* Delete all messages and restart global positions (holds wlock). */
    int (*clear)(lss_conn *c, lss__ns *ns);
};

/* What a backend read selects. */
enum { LSS__READ_STREAM, LSS__READ_CATEGORY, LSS__READ_LAST,
       LSS__READ_STREAMS, LSS__READ_CATS };

extern const lss_backend_ops lss__sqlite_ops;

/* Set c's error message (printf-style) and return code. */
int lss__err(lss_conn *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void lss__ns_unref(lss_db *db, lss__ns *ns);
lss__ns *lss__ns_new(lss_db *db, const char *id, size_t id_n);
/* Give ns a copy of desc[0..n).  LSS_ENOMEM on failure. */
int lss__ns_set_description(lss_db *db, lss__ns *ns, const char *desc,
                            size_t n);
int lss__ns_add(lss_db *db, lss__ns *ns);
/* Free rpc.c's per-session state (lss_conn_close calls it). */
void lss__rpc_free(lss_conn *c);
/* Free session scratch larger than max_bytes (kept otherwise). */
void lss__conn_trim(lss_conn *c, size_t max_bytes);
/* The session's JSON scratch tape, at least `need` tokens (kept). */
int lss__json_tape(lss_conn *c, size_t need);
/* 1 if p[0..n) is a valid JSON object text, 0 if not, or LSS_ENOMEM. */
int lss__json_is_object(lss_conn *c, const char *p, size_t n);
/* lss_append_many() for callers inside the library that have already
 * scanned every message's data and metadata strictly and found objects
 * (rpc.c: the whole request body): json_checked skips that second scan. */
int lss__append_many(lss_conn *c, lss_append *a, size_t n, int json_checked);
/* JSON equality of PROTOCOL.md 7.4: 1 equal, 0 not, negative on error. */
int lss__json_same(lss_conn *c, const char *a, size_t na, const char *b,
                   size_t nb);

#endif /* LSS_STORE_H */
