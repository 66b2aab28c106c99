/* store.c — the lss_* entry points: open/close, sessions, the namespace
 * registry cache, token checks, argument validation, group commit and
 * cursors.  Everything that speaks SQL lives behind lss_backend_ops. */
#include "store.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "json.h"
#include "names.h"
#include "token.h"

/* ------------------------------------------------------------------------
 * Options and errors
 * ---------------------------------------------------------------------- */

void lss_options_init(lss_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->sync = LSS_SYNC_FULL;
    o->busy_timeout_ms = 5000;
    o->group_commit_max = 512;
}

void lss_read_opts_init(lss_read_opts *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->batch_size = 1000;
}

int lss__err(lss_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

static int ok(lss_conn *c)
{
    c->errmsg[0] = '\0';
    return LSS_OK;
}

const char *lss_errmsg(lss_conn *c)
{
    if (!c)
        return "no session";
    return c->errmsg[0] ? c->errmsg : "not an error";
}

const char *lss_db_errmsg(lss_db *db)
{
    if (!db)
        return "no store";
    return db->errmsg[0] ? db->errmsg : "not an error";
}

/* ------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------- */

static int is_postgres_url(const char *url)
{
    return !strncasecmp(url, "postgres://", 11) ||
           !strncasecmp(url, "postgresql://", 13);
}

/* lss_options.create_default: "default" with a generated token (callers
 * that need to know the token create it themselves). */
static int create_default(lss_db *db)
{
    lss_conn *c;
    int rc = lss_conn_open(db, &c);
    if (rc != LSS_OK)
        return rc;
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    rc = lss_ns_create(c, "default", 7, "Default namespace", 17, NULL, 0, tok,
                       sizeof tok, &tn, NULL);
    if (rc == LSS_EEXISTS)
        rc = LSS_OK;
    if (rc != LSS_OK)
        snprintf(db->errmsg, sizeof db->errmsg, "%s", lss_errmsg(c));
    lss_conn_close(c);
    return rc;
}

int lss_open(const char *url, const lss_options *o, lss_db **out)
{
    if (!out)
        return LSS_EINVAL;
    *out = NULL;
    lss_options opt;
    lss_options_init(&opt);
    if (o) {
        size_t n = o->struct_size && o->struct_size < sizeof opt
                       ? o->struct_size
                       : sizeof opt;
        memcpy(&opt, o, n);
        opt.struct_size = sizeof opt;
    }
    const lss_allocator *a = lss__alloc_or_libc(opt.allocator);
    lss_db *db = lss__malloc(a, sizeof *db);
    if (!db)
        return LSS_ENOMEM;
    memset(db, 0, sizeof *db);
    db->a = *a;
    db->o = opt;
    db->o.allocator = &db->a;
    if (db->o.group_commit_max <= 0)
        db->o.group_commit_max = 512;
    pthread_mutex_init(&db->lock, NULL);
    *out = db;
    if (!url || !*url) {
        snprintf(db->errmsg, sizeof db->errmsg, "empty store URL");
        return LSS_EINVAL;
    }
    if (is_postgres_url(url)) {
        snprintf(db->errmsg, sizeof db->errmsg,
                 "PostgreSQL backend not built into this library");
        return LSS_ENOTSUP;
    }
    db->memory = !strcmp(url, ":memory:");
    db->ops = &lss__sqlite_ops;
    int rc = db->ops->open(db, url);
    if (rc == LSS_OK)
        rc = db->ops->load(db);
    if (rc == LSS_OK && db->o.create_default)
        rc = create_default(db);
    if (rc != LSS_OK) {
        if (rc == LSS_ENOMEM && !db->errmsg[0]) {
            lss_close(db);
            *out = NULL;
        }
        return rc;
    }
    return LSS_OK;
}

void lss_close(lss_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->ns_n; i++)
        lss__ns_unref(db, db->ns[i]);
    lss__free(&db->a, db->ns);
    if (db->ops && db->be)
        db->ops->close(db);
    pthread_mutex_destroy(&db->lock);
    lss_allocator a = db->a;
    lss__free(&a, db);
}

int lss_conn_open(lss_db *db, lss_conn **out)
{
    if (!db || !out)
        return LSS_EINVAL;
    *out = NULL;
    lss_conn *c = lss__malloc(&db->a, sizeof *c);
    if (!c)
        return LSS_ENOMEM;
    memset(c, 0, sizeof *c);
    c->db = db;
    c->cur.conn = c;
    lss__uuid_gen_init(&c->uuid);
    int rc = db->ops->conn_open(c);
    if (rc != LSS_OK) {
        lss__free(&db->a, c);
        return rc;
    }
    *out = c;
    return LSS_OK;
}

void lss_conn_close(lss_conn *c)
{
    if (!c)
        return;
    lss_cursor_close(&c->cur);
    lss_db *db = c->db;
    lss__rpc_free(c);
    db->ops->conn_close(c);
    if (c->last_ns)
        lss__ns_unref(db, c->last_ns);
    if (c->auth_ns)
        lss__ns_unref(db, c->auth_ns);
    lss__free(&db->a, c->jt);
    lss__free(&db->a, c->nd);
    lss__free(&db->a, c->info_desc);
    lss__free(&db->a, c);
}

/* ------------------------------------------------------------------------
 * Namespace table
 * ---------------------------------------------------------------------- */

void lss__ns_unref(lss_db *db, lss__ns *ns)
{
    if (atomic_fetch_sub(&ns->refs, 1) != 1)
        return;
    if (db->ops)
        db->ops->ns_free(db, ns);
    if (ns->hub)
        lss__hub_unref(ns->hub);
    pthread_mutex_destroy(&ns->qlock);
    pthread_mutex_destroy(&ns->wlock);
    pthread_cond_destroy(&ns->qcond);
    lss__free(&db->a, ns->description);
    lss__free(&db->a, ns);
}

int lss__ns_set_description(lss_db *db, lss__ns *ns, const char *desc,
                            size_t n)
{
    char *p = lss__malloc(&db->a, n + 1);
    if (!p)
        return LSS_ENOMEM;
    if (n)
        memcpy(p, desc, n);
    p[n] = '\0';
    lss__free(&db->a, ns->description);
    ns->description = p;
    ns->description_n = n;
    return LSS_OK;
}

/* A new instance with one reference (the caller's). */
lss__ns *lss__ns_new(lss_db *db, const char *id, size_t id_n)
{
    lss__ns *ns = lss__malloc(&db->a, sizeof *ns);
    if (!ns)
        return NULL;
    memset(ns, 0, sizeof *ns);
    atomic_init(&ns->refs, 1);
    atomic_init(&ns->deleted, 0);
    atomic_init(&ns->wake, 0);
    memcpy(ns->id, id, id_n);
    ns->id_n = id_n;
    if (lss__hub_new(&db->a, &ns->hub) != LSS_OK) {
        lss__free(&db->a, ns);
        return NULL;
    }
    pthread_mutex_init(&ns->qlock, NULL);
    pthread_mutex_init(&ns->wlock, NULL);
    pthread_cond_init(&ns->qcond, NULL);
    return ns;
}

/* Add ns to the table (takes over the caller's reference).  db->lock held. */
int lss__ns_add(lss_db *db, lss__ns *ns)
{
    if (db->ns_n == db->ns_cap) {
        size_t cap = db->ns_cap ? db->ns_cap * 2 : 16;
        lss__ns **p = lss__realloc(&db->a, db->ns,
                                   db->ns_cap * sizeof *p, cap * sizeof *p);
        if (!p)
            return LSS_ENOMEM;
        db->ns = p;
        db->ns_cap = cap;
    }
    db->ns[db->ns_n++] = ns;
    return LSS_OK;
}

/* Index of id in the table or -1.  db->lock held. */
static long ns_find_locked(lss_db *db, const char *id, size_t id_n)
{
    for (size_t i = 0; i < db->ns_n; i++) {
        lss__ns *ns = db->ns[i];
        if (ns->id_n == id_n && !memcmp(ns->id, id, id_n))
            return (long)i;
    }
    return -1;
}

/* The live instance of namespace id with a reference for the caller, or
 * NULL.  The session remembers the last one so repeated calls on one
 * namespace skip the table. */
static lss__ns *ns_get(lss_conn *c, const char *id, size_t id_n)
{
    lss__ns *last = c->last_ns;
    if (last && last->id_n == id_n && !memcmp(last->id, id, id_n) &&
        !atomic_load(&last->deleted)) {
        atomic_fetch_add(&last->refs, 1);
        return last;
    }
    lss_db *db = c->db;
    pthread_mutex_lock(&db->lock);
    long i = ns_find_locked(db, id, id_n);
    lss__ns *ns = NULL;
    if (i >= 0) {
        ns = db->ns[i];
        atomic_fetch_add(&ns->refs, 2); /* caller + session cache */
    }
    pthread_mutex_unlock(&db->lock);
    if (ns) {
        if (last)
            lss__ns_unref(db, last);
        c->last_ns = ns;
    }
    return ns;
}

static int check_ns_id(lss_conn *c, const char *id, size_t n)
{
    if (!id || n == 0)
        return lss__err(c, LSS_ENAME, "namespace ID must be a non-empty string");
    if (n > LSS_NS_ID_MAX)
        return lss__err(c, LSS_ENAME, "namespace ID must be at most 255 bytes");
    if (!lss__utf8_valid(id, n) || memchr(id, '\0', n))
        return lss__err(c, LSS_ENAME,
                        "namespace ID must be UTF-8 without U+0000");
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Namespaces
 * ---------------------------------------------------------------------- */

int lss_ns_create(lss_conn *c, const char *id, size_t id_n, const char *desc,
                  size_t desc_n, const char *token, size_t token_n,
                  char *token_out, size_t token_cap, size_t *token_len,
                  int64_t *created_us)
{
    if (!c)
        return LSS_EINVAL;
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    int rc = check_ns_id(c, id, id_n);
    if (rc)
        return rc;
    if (!token_out || !token_len)
        return lss__err(c, LSS_EINVAL, "token_out and token_len are required");
    if (desc_n && !desc)
        return lss__err(c, LSS_EINVAL, "description is NULL");
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    if (token) {
        char dec[LSS_TOKEN_MAX];
        size_t dec_n;
        char perr[200];
        if (token_n > LSS_TOKEN_MAX ||
            lss__token_parse(token, token_n, dec, sizeof dec, &dec_n, perr,
                             sizeof perr) != LSS_OK)
            return lss__err(c, LSS_ETOKEN, "Invalid token format: %s",
                            token_n > LSS_TOKEN_MAX ? "token too long" : perr);
        if (dec_n != id_n || memcmp(dec, id, id_n))
            return lss__err(c, LSS_ETOKEN, "Token is for namespace '%.*s', not '%.*s'",
                            (int)dec_n, dec, (int)id_n, id);
        memcpy(tok, token, token_n);
        tok_n = token_n;
    } else {
        rc = lss__token_generate(id, id_n, tok, sizeof tok, &tok_n);
        if (rc)
            return lss__err(c, LSS_EINTERNAL, "Failed to generate token");
    }
    if (token_cap < tok_n)
        return lss__err(c, LSS_ENOSPACE, "token buffer too small");

    lss_db *db = c->db;
    lss__ns *ns = lss__ns_new(db, id, id_n);
    if (!ns)
        return lss__err(c, LSS_ENOMEM, "out of memory");
    if (lss__sha256_hex(tok, tok_n, ns->token_hash) != LSS_OK) {
        lss__ns_unref(db, ns);
        return lss__err(c, LSS_EINTERNAL, "Failed to generate token: sha256 failed");
    }
    if (lss__ns_set_description(db, ns, desc, desc_n) != LSS_OK) {
        lss__ns_unref(db, ns);
        return lss__err(c, LSS_ENOMEM, "out of memory");
    }
    /* The registry keeps whole seconds; the caller gets the exact time. */
    int64_t now = lss__now_us();
    ns->created_us = now;

    pthread_mutex_lock(&db->lock);
    if (ns_find_locked(db, id, id_n) >= 0) {
        pthread_mutex_unlock(&db->lock);
        lss__ns_unref(db, ns);
        return lss__err(c, LSS_EEXISTS, "Namespace '%.*s' already exists",
                        (int)id_n, id);
    }
    char err[256] = "";
    rc = db->ops->ns_create(db, ns, err, sizeof err);
    if (rc == LSS_OK) {
        rc = lss__ns_add(db, ns);
        if (rc != LSS_OK) { /* undo the storage we just made */
            int64_t cnt;
            db->ops->ns_delete(db, ns, &cnt, err, sizeof err);
        }
    }
    pthread_mutex_unlock(&db->lock);
    if (rc != LSS_OK) {
        lss__ns_unref(db, ns);
        return lss__err(c, rc, "Failed to create namespace: %s",
                        err[0] ? err : lss_strerror(rc));
    }
    memcpy(token_out, tok, tok_n);
    *token_len = tok_n;
    if (created_us)
        *created_us = now;
    return ok(c);
}

int lss_ns_delete(lss_conn *c, const char *id, size_t id_n,
                  int64_t *messages_deleted, int64_t *deleted_us)
{
    if (!c)
        return LSS_EINVAL;
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    int rc = check_ns_id(c, id, id_n);
    if (rc)
        return rc;
    lss_db *db = c->db;
    pthread_mutex_lock(&db->lock);
    long i = ns_find_locked(db, id, id_n);
    if (i < 0) {
        pthread_mutex_unlock(&db->lock);
        return lss__err(c, LSS_ENOTFOUND, "Namespace '%.*s' not found",
                        (int)id_n, id);
    }
    lss__ns *ns = db->ns[i];
    /* Wait for a running write group, then remove storage and row. */
    pthread_mutex_lock(&ns->wlock);
    int64_t count = 0;
    char err[256] = "";
    rc = db->ops->ns_delete(db, ns, &count, err, sizeof err);
    if (rc == LSS_OK) {
        atomic_store(&ns->deleted, 1);
        lss__hub_retire(ns->hub);
        db->ns[i] = db->ns[--db->ns_n];
    }
    pthread_mutex_unlock(&ns->wlock);
    pthread_mutex_unlock(&db->lock);
    if (rc != LSS_OK)
        return lss__err(c, rc, "Failed to delete namespace: %s",
                        err[0] ? err : lss_strerror(rc));
    lss__ns_unref(db, ns);
    if (messages_deleted)
        *messages_deleted = count;
    if (deleted_us)
        *deleted_us = lss__now_us();
    return ok(c);
}

/* Copy ns's registry data into c's row buffers (the row outlives our
 * reference to ns). */
static int fill_ns_row(lss_conn *c, lss_ns_row *r, const lss__ns *ns)
{
    if (c->info_desc_cap < ns->description_n + 1) {
        char *p = lss__realloc(&c->db->a, c->info_desc, c->info_desc_cap,
                               ns->description_n + 1);
        if (!p)
            return lss__err(c, LSS_ENOMEM, "out of memory");
        c->info_desc = p;
        c->info_desc_cap = ns->description_n + 1;
    }
    memcpy(c->info_id, ns->id, ns->id_n);
    memcpy(c->info_desc, ns->description, ns->description_n);
    r->id.p = c->info_id;
    r->id.n = ns->id_n;
    r->description.p = c->info_desc;
    r->description.n = ns->description_n;
    r->created_us = ns->created_us;
    return LSS_OK;
}

int lss_ns_info(lss_conn *c, const char *id, size_t id_n,
                const lss_ns_row **row)
{
    if (!c || !row)
        return c ? lss__err(c, LSS_EINVAL, "row is NULL") : LSS_EINVAL;
    if (c->cur.open && c->cur.kind != LSS__CUR_NS)
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    int rc = check_ns_id(c, id, id_n);
    if (rc)
        return rc;
    lss__ns *ns = ns_get(c, id, id_n);
    if (!ns)
        return lss__err(c, LSS_ENOTFOUND, "Namespace '%.*s' not found",
                        (int)id_n, id);
    lss_ns_row *r = &c->info;
    memset(r, 0, sizeof *r);
    rc = fill_ns_row(c, r, ns);
    if (rc == LSS_OK)
        rc = c->db->ops->ns_stats(c, ns, r);
    lss__ns_unref(c->db, ns);
    if (rc != LSS_OK)
        return rc;
    *row = r;
    return ok(c);
}

/* ------------------------------------------------------------------------
 * Authorization
 * ---------------------------------------------------------------------- */

int lss_authorize(lss_conn *c, const char *token, size_t token_n,
                  unsigned flags, const char **ns_out, size_t *ns_n_out)
{
    if (!c || !ns_out || !ns_n_out)
        return c ? lss__err(c, LSS_EINVAL, "NULL argument") : LSS_EINVAL;
    if (!token && token_n)
        return lss__err(c, LSS_EINVAL, "token is NULL");
    /* Same token as last time, and its namespace still alive: done.  A
     * token cached without a hash check (test mode) serves only calls that
     * skip the check too. */
    lss__ns *cached = c->auth_ns;
    if (cached && token_n == c->auth_token_n && !atomic_load(&cached->deleted) &&
        (c->auth_verified || (flags & LSS_AUTH_NO_HASH)) &&
        !memcmp(token, c->auth_token, token_n)) {
        *ns_out = cached->id;
        *ns_n_out = cached->id_n;
        return ok(c);
    }
    char perr[200];
    size_t id_n;
    if (token_n > LSS_TOKEN_MAX)
        return lss__err(c, LSS_ETOKEN, "invalid token format: token too long");
    if (lss__token_parse(token, token_n, c->auth_id, sizeof c->auth_id, &id_n,
                         perr, sizeof perr) != LSS_OK)
        return lss__err(c, LSS_ETOKEN, "%s", perr);
    *ns_out = c->auth_id;
    *ns_n_out = id_n;
    lss__ns *ns = ns_get(c, c->auth_id, id_n);
    if (!ns)
        return lss__err(c, LSS_EAUTH, "Token not authorized for namespace");
    if (!(flags & LSS_AUTH_NO_HASH)) {
        char h[64];
        if (lss__sha256_hex(token, token_n, h) != LSS_OK ||
            !lss__ct_equal(h, ns->token_hash, 64)) {
            lss__ns_unref(c->db, ns);
            return lss__err(c, LSS_EAUTH, "Token not authorized for namespace");
        }
    }
    if (c->auth_ns)
        lss__ns_unref(c->db, c->auth_ns);
    atomic_fetch_add(&ns->refs, 1);
    c->auth_ns = ns;
    memcpy(c->auth_token, token, token_n);
    c->auth_token_n = token_n;
    c->auth_verified = !(flags & LSS_AUTH_NO_HASH);
    *ns_out = ns->id;
    lss__ns_unref(c->db, ns);
    return ok(c);
}

/* ------------------------------------------------------------------------
 * JSON with the session's scratch tape.  The scanner never allocates; it
 * asks for more room with LSS_ENOSPACE, so the tape grows (x4, up to the
 * worst case for the input) only for inputs bigger than any seen before and
 * steady-state requests reuse it.
 * ---------------------------------------------------------------------- */

static int json_grow(lss_conn *c, size_t need)
{
    size_t cap = c->jt_cap ? c->jt_cap * 4 : 256;
    if (cap > need)
        cap = need;
    if (cap <= c->jt_cap)
        return LSS_ETOOBIG;
    lss_json_tok *t = lss__realloc(&c->db->a, c->jt, c->jt_cap * sizeof *t,
                                   cap * sizeof *t);
    if (!t)
        return LSS_ENOMEM;
    c->jt = t;
    c->jt_cap = cap;
    return LSS_OK;
}

void lss__conn_trim(lss_conn *c, size_t max_bytes)
{
    if (c->jt_cap * sizeof *c->jt > max_bytes) {
        lss__free(&c->db->a, c->jt);
        c->jt = NULL;
        c->jt_cap = 0;
    }
    if (c->nd_cap > max_bytes) {
        lss__free(&c->db->a, c->nd);
        c->nd = NULL;
        c->nd_cap = 0;
    }
}

int lss__json_tape(lss_conn *c, size_t need)
{
    while (c->jt_cap < need) {
        int rc = json_grow(c, need);
        if (rc != LSS_OK)
            return rc;
    }
    return LSS_OK;
}

int lss__json_is_object(lss_conn *c, const char *p, size_t n)
{
    for (;;) {
        lss_json_doc d;
        int rc = lss__json_scan(&d, p, n, 0, c->jt, c->jt_cap, NULL);
        if (rc == LSS_OK)
            return d.tok[0].type == LSS_JSON_OBJECT;
        if (rc != LSS_ENOSPACE)
            return 0;
        rc = json_grow(c, lss__json_tape_need(n));
        if (rc != LSS_OK)
            return rc == LSS_ETOOBIG ? 0 : rc;
    }
}

int lss__json_same(lss_conn *c, const char *a, size_t na, const char *b,
                   size_t nb)
{
    for (;;) {
        int rc = lss__json_equal(a, na, b, nb, c->jt, c->jt_cap);
        if (rc != LSS_ENOSPACE)
            return rc;
        rc = json_grow(c, lss__json_equal_need(na, nb));
        if (rc != LSS_OK)
            return rc == LSS_ETOOBIG ? LSS_EINTERNAL : rc;
    }
}

/* ------------------------------------------------------------------------
 * Append: validation in the caller's thread, then group commit.
 * ---------------------------------------------------------------------- */

static int check_append(lss_conn *c, lss_append *a, int json_checked)
{
    a->bad_index = 0;
    if (!a->stream && a->stream_n)
        return lss__err(c, LSS_EINVAL, "stream is NULL");
    if (!a->stream || a->stream_n == 0)
        return lss__err(c, LSS_ENAME, "streamName must be a non-empty string");
    if (!a->msgs || a->count == 0 || a->count > LSS_BATCH_MAX)
        return lss__err(c, LSS_EINVAL,
                        "messages must contain between 1 and 1000 messages");
    for (size_t i = 0; i < a->count; i++) {
        const lss_msg_in *m = &a->msgs[i];
        a->bad_index = i;
        if ((!m->type && m->type_n) || (!m->data && m->data_n) ||
            (!m->metadata && m->metadata_n) || (!m->id && m->id_n))
            return lss__err(c, LSS_EINVAL, "messages[%zu] has a NULL pointer with a length", i);
        if (!m->type || m->type_n == 0)
            return lss__err(c, LSS_ENAME, "messages[%zu].type must be a non-empty string", i);
        if (!m->data)
            return lss__err(c, LSS_EJSON, "messages[%zu].data must be an object", i);
        int rc = json_checked ? 1 : lss__json_is_object(c, m->data, m->data_n);
        if (rc < 0)
            return lss__err(c, rc, "out of memory");
        if (rc == 0)
            return lss__err(c, LSS_EJSON, "messages[%zu].data must be an object", i);
        if (m->metadata && !json_checked) {
            rc = lss__json_is_object(c, m->metadata, m->metadata_n);
            if (rc < 0)
                return lss__err(c, rc, "out of memory");
            if (rc == 0)
                return lss__err(c, LSS_EJSON,
                                "messages[%zu].metadata must be an object", i);
        }
        if (m->id && m->id_n) {
            uint8_t u[16];
            if (lss__uuid_parse(m->id, m->id_n, u) != LSS_OK)
                return lss__err(c, LSS_EUUID, "messages[%zu].id must be a valid UUID", i);
            for (size_t j = 0; j < i; j++) {
                const lss_msg_in *p = &a->msgs[j];
                uint8_t v[16];
                if (p->id && p->id_n && lss__uuid_parse(p->id, p->id_n, v) == LSS_OK &&
                    !memcmp(u, v, 16))
                    return lss__err(c, LSS_EINVAL,
                                    "messages[%zu].id duplicates messages[%zu].id", i, j);
            }
        }
    }
    return LSS_OK;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Durable stores only: when more appenders were seen together lately than
 * are queued now, the group waits a little (until *deadline, at most the
 * last commit) for them to arrive, so that one fsync serves them all --
 * PostgreSQL's commit_delay with commit_siblings, made adaptive: a wait
 * that times out lowers the expectation.  A lone appender (peak 1) never
 * waits.  Returns 1 if more may have arrived, 0 to commit now.  qlock
 * held. */
static int gather(lss_db *db, lss__ns *ns, int64_t *deadline)
{
    if (db->memory || db->o.sync < LSS_SYNC_FULL || ns->qlen >= ns->peak)
        return 0;
    if (!*deadline) {
        int64_t wait = ns->commit_ns;
        if (wait > 1000000)
            wait = 1000000;
        *deadline = mono_ns() + wait;
    }
    int64_t left = *deadline - mono_ns();
    if (left <= 0) {
        ns->peak--;
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t abs_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + left;
    ts.tv_sec = abs_ns / 1000000000;
    ts.tv_nsec = abs_ns % 1000000000;
    ns->gathering = 1;
    int rc = pthread_cond_timedwait(&ns->qcond, &ns->qlock, &ts);
    ns->gathering = 0;
    if (rc != 0 && ns->qlen < ns->peak) {
        ns->peak--;
        return 0;
    }
    return 1;
}

/* Build one commit group from the queue's head and commit it; returns the
 * last waiter taken.  The transaction is open while the group gathers:
 * each request runs as soon as it is taken, so the work of the early ones
 * overlaps the arrival of the late ones instead of following it.  Nothing
 * is visible to readers, nor acknowledged, before the commit.  wlock held;
 * takes qlock. */
static lss__waiter *run_group(lss_conn *c, lss__ns *ns, int *taken)
{
    lss_db *db = c->db;
    size_t max = (size_t)db->o.group_commit_max;
    lss_append *batch[LSS__GROUP_MAX];
    if (max > LSS__GROUP_MAX)
        max = LSS__GROUP_MAX;
    int rc = atomic_load(&ns->deleted) ? LSS_ENOTFOUND
                                       : db->ops->group_begin(c, ns);
    int open = rc == LSS_OK;
    int64_t deadline = 0;
    size_t n = 0;
    lss__waiter *last = NULL;
    int full = 0;
    pthread_mutex_lock(&ns->qlock);
    for (;;) {
        size_t from = n;
        for (lss__waiter *w = last ? last->next : ns->qhead; w; w = w->next) {
            if (n && n + w->n > max) {
                full = 1;
                break;
            }
            for (size_t i = 0; i < w->n && n < LSS__GROUP_MAX; i++)
                batch[n++] = w->reqs[i];
            last = w;
            ++*taken;
        }
        if (n > from && open) {
            pthread_mutex_unlock(&ns->qlock);
            rc = db->ops->group_add(c, ns, batch, from, n);
            pthread_mutex_lock(&ns->qlock);
            if (rc != LSS_OK) { /* the group is over: take no more */
                open = 0;
                break;
            }
        } else if (n == from && (full || !open || !gather(db, ns, &deadline))) {
            break;
        }
    }
    pthread_mutex_unlock(&ns->qlock);
    if (open) {
        int64_t t0 = mono_ns();
        rc = db->ops->group_end(c, ns, batch, n);
        ns->commit_ns = mono_ns() - t0;
    }
    if (rc != LSS_OK)
        for (size_t i = 0; i < n; i++)
            if (batch[i]->rc == LSS_OK)
                batch[i]->rc = rc;
    return last;
}

/* Run the queue of ns as leader until our own waiter is done. */
static void lead(lss_conn *c, lss__ns *ns, lss__waiter *self)
{
    for (;;) {
        int taken = 0;
        pthread_mutex_lock(&ns->wlock);
        lss__waiter *last = run_group(c, ns, &taken);
        pthread_mutex_unlock(&ns->wlock);

        /* Hand results back and pass leadership on: take the finished
         * waiters off the queue, mark them (and the next leader), then wake
         * them all with one system call: waking them one by one took the
         * leader ~12 us each on 2 vCPUs, and the next group waits for the
         * last of them. */
        pthread_mutex_lock(&ns->qlock);
        ns->qlen -= taken;
        lss__waiter *w = ns->qhead, *stop = last->next;
        ns->qhead = stop;
        if (!stop)
            ns->qtail = NULL;
        else /* queued, so still there */
            atomic_store_explicit(&stop->state, LSS__W_LEAD, memory_order_release);
        pthread_mutex_unlock(&ns->qlock);
        int self_done = 0;
        while (w != stop) {
            /* Once marked done, w (on its owner's stack) may be gone. */
            lss__waiter *next = w->next;
            if (w == self)
                self_done = 1;
            else
                atomic_store_explicit(&w->state, LSS__W_DONE, memory_order_release);
            w = next;
        }
        atomic_fetch_add_explicit(&ns->wake, 1, memory_order_release);
        syscall(SYS_futex, &ns->wake, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        if (self_done)
            return;
    }
}

/* Queue reqs[0..n) (all of namespace ns) and wait until committed, or
 * until it is our turn to lead.  Waiters sleep on ns->wake, which every
 * hand-back bumps after marking its waiters; a waiter reads it before its
 * own state, so a mark it misses makes the futex wait return at once. */
static void group_commit(lss_conn *c, lss__ns *ns, lss_append **reqs, size_t n)
{
    lss__waiter self = {NULL, c, reqs, n, LSS__W_QUEUED};
    pthread_mutex_lock(&ns->qlock);
    if (ns->qtail)
        ns->qtail->next = &self;
    else
        ns->qhead = &self;
    ns->qtail = &self;
    if (++ns->qlen > ns->peak)
        ns->peak = ns->qlen;
    if (ns->gathering)
        pthread_cond_signal(&ns->qcond);
    int first = ns->qhead == &self;
    pthread_mutex_unlock(&ns->qlock);
    while (!first) {
        unsigned seen = atomic_load_explicit(&ns->wake, memory_order_acquire);
        int st = atomic_load_explicit(&self.state, memory_order_acquire);
        if (st == LSS__W_DONE)
            return;
        if (st == LSS__W_LEAD)
            break;
        syscall(SYS_futex, &ns->wake, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    }
    lead(c, ns, &self);
}

int lss_append_many(lss_conn *c, lss_append *a, size_t n)
{
    return lss__append_many(c, a, n, 0);
}

int lss__append_many(lss_conn *c, lss_append *a, size_t n, int json_checked)
{
    if (!c)
        return LSS_EINVAL;
    if (!a || n == 0)
        return lss__err(c, LSS_EINVAL, "no appends");
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    /* Group by namespace: one queue entry per run of equal namespaces. */
    lss_append *ptrs[LSS__GROUP_MAX];
    size_t i = 0;
    int first_err = LSS_OK;
    while (i < n) {
        size_t k = 0;
        const char *id = a[i].ns;
        size_t id_n = a[i].ns_n;
        size_t j = i;
        for (; j < n && k < LSS__GROUP_MAX; j++) {
            lss_append *r = &a[j];
            if (j > i && (r->ns_n != id_n || !r->ns != !id ||
                          (id_n && id && memcmp(r->ns, id, id_n))))
                break;
            r->position = r->global_position = -1;
            r->actual_version = -1;
            r->rc = (!r->ns && r->ns_n) ? lss__err(c, LSS_EINVAL, "ns is NULL")
                                        : check_append(c, r, json_checked);
            if (r->rc == LSS_OK)
                ptrs[k++] = r;
        }
        if (k) {
            lss__ns *ns = id && id_n ? ns_get(c, id, id_n) : NULL;
            if (!ns) {
                for (size_t m = 0; m < k; m++)
                    ptrs[m]->rc = LSS_ENOTFOUND;
                lss__err(c, LSS_ENOTFOUND, "namespace not found");
            } else {
                group_commit(c, ns, ptrs, k);
                lss__ns_unref(c->db, ns);
            }
        }
        if (first_err == LSS_OK)
            for (size_t m = i; m < j; m++)
                if (a[m].rc != LSS_OK) {
                    first_err = a[m].rc;
                    break;
                }
        i = j;
    }
    if (first_err == LSS_OK)
        ok(c);
    return LSS_OK;
}

int lss_append_one(lss_conn *c, lss_append *a)
{
    if (!c || !a)
        return LSS_EINVAL;
    int rc = lss_append_many(c, a, 1);
    return rc != LSS_OK ? rc : a->rc;
}

/* ------------------------------------------------------------------------
 * Reads
 * ---------------------------------------------------------------------- */

static int begin_read(lss_conn *c, const char *id, size_t id_n, lss__ns **out)
{
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "a cursor is already open on this session");
    if (!id || !id_n)
        return lss__err(c, LSS_ENAME, "namespace ID must be a non-empty string");
    lss__ns *ns = ns_get(c, id, id_n);
    if (!ns)
        return lss__err(c, LSS_ENOTFOUND, "namespace not found");
    *out = ns;
    return LSS_OK;
}

static int open_cursor(lss_conn *c, lss__ns *ns, int kind, int what,
                       const char *name, size_t name_n, const lss_read_opts *o,
                       const char *aux, size_t aux_n, lss_cursor **out)
{
    lss_cursor *cur = &c->cur;
    cur->kind = kind;
    cur->ns = ns;
    cur->single = what == LSS__READ_LAST;
    int rc = c->db->ops->read(c, ns, cur, what, name, name_n, o, aux, aux_n);
    if (rc != LSS_OK) {
        cur->ns = NULL;
        lss__ns_unref(c->db, ns);
        return rc;
    }
    cur->open = 1;
    *out = cur;
    return ok(c);
}

static int check_read_opts(lss_conn *c, const lss_read_opts *o)
{
    if (o->types_n > 100 || (o->types_n && !o->types))
        return lss__err(c, LSS_EINVAL,
                        "options.types must be an array of 1 to 100 non-empty strings");
    for (size_t i = 0; i < o->types_n; i++)
        if (!o->types[i].p || !o->types[i].n)
            return lss__err(c, LSS_EINVAL,
                            "options.types must be an array of 1 to 100 non-empty strings");
    if (o->correlation_n && !o->correlation)
        return lss__err(c, LSS_EINVAL, "options.correlation is NULL");
    return LSS_OK;
}

static const lss_read_opts *opts_or_default(const lss_read_opts *o,
                                            lss_read_opts *def)
{
    if (o)
        return o;
    lss_read_opts_init(def);
    return def;
}

int lss_read_stream(lss_conn *c, const char *id, size_t id_n,
                    const char *stream, size_t stream_n,
                    const lss_read_opts *o, lss_cursor **out)
{
    if (!c || !out)
        return c ? lss__err(c, LSS_EINVAL, "out is NULL") : LSS_EINVAL;
    lss_read_opts def;
    o = opts_or_default(o, &def);
    if (!stream && stream_n)
        return lss__err(c, LSS_EINVAL, "stream is NULL");
    if (!stream || !stream_n)
        return lss__err(c, LSS_ENAME, "streamName must be a non-empty string");
    int rc = check_read_opts(c, o);
    lss__ns *ns = NULL;
    if (rc || (rc = begin_read(c, id, id_n, &ns)))
        return rc;
    return open_cursor(c, ns, LSS__CUR_MSG, LSS__READ_STREAM, stream, stream_n,
                       o, NULL, 0, out);
}

int lss_read_category(lss_conn *c, const char *id, size_t id_n,
                      const char *cat, size_t cat_n, const lss_read_opts *o,
                      lss_cursor **out)
{
    if (!c || !out)
        return c ? lss__err(c, LSS_EINVAL, "out is NULL") : LSS_EINVAL;
    lss_read_opts def;
    o = opts_or_default(o, &def);
    if (cat_n && !cat)
        return lss__err(c, LSS_EINVAL, "categoryName is NULL");
    if (o->flags & LSS_READ_GROUP) {
        if (o->group_member < 0)
            return lss__err(c, LSS_EINVAL, "options.consumerGroup.member must be non-negative");
        if (o->group_size <= 0)
            return lss__err(c, LSS_EINVAL, "options.consumerGroup.size must be positive");
        if (o->group_member >= o->group_size)
            return lss__err(c, LSS_EINVAL, "options.consumerGroup.member must be < size");
    }
    int rc = check_read_opts(c, o);
    lss__ns *ns = NULL;
    if (rc || (rc = begin_read(c, id, id_n, &ns)))
        return rc;
    return open_cursor(c, ns, LSS__CUR_MSG, LSS__READ_CATEGORY, cat ? cat : "",
                       cat_n, o, NULL, 0, out);
}

int lss_read_last(lss_conn *c, const char *id, size_t id_n,
                  const char *stream, size_t stream_n, const char *type,
                  size_t type_n, lss_cursor **out)
{
    if (!c || !out)
        return c ? lss__err(c, LSS_EINVAL, "out is NULL") : LSS_EINVAL;
    if (!stream || !stream_n)
        return lss__err(c, LSS_ENAME, "streamName must be a non-empty string");
    if (type_n && !type)
        return lss__err(c, LSS_EINVAL, "type is NULL");
    lss__ns *ns = NULL;
    int rc = begin_read(c, id, id_n, &ns);
    if (rc)
        return rc;
    return open_cursor(c, ns, LSS__CUR_MSG, LSS__READ_LAST, stream, stream_n,
                       NULL, type, type_n, out);
}

int lss_stream_version(lss_conn *c, const char *id, size_t id_n,
                       const char *stream, size_t stream_n, int64_t *version)
{
    if (!c || !version)
        return c ? lss__err(c, LSS_EINVAL, "version is NULL") : LSS_EINVAL;
    if (!stream || !stream_n)
        return lss__err(c, LSS_ENAME, "streamName must be a non-empty string");
    lss__ns *ns = NULL;
    int rc = begin_read(c, id, id_n, &ns);
    if (rc)
        return rc;
    rc = c->db->ops->version(c, ns, stream, stream_n, version);
    lss__ns_unref(c->db, ns);
    return rc == LSS_OK ? ok(c) : rc;
}

int lss_list_streams(lss_conn *c, const char *id, size_t id_n,
                     const char *prefix, size_t prefix_n, const char *after,
                     size_t after_n, int64_t limit, lss_cursor **out)
{
    if (!c || !out)
        return c ? lss__err(c, LSS_EINVAL, "out is NULL") : LSS_EINVAL;
    if ((prefix_n && !prefix) || (after_n && !after))
        return lss__err(c, LSS_EINVAL, "prefix or after is NULL");
    if (limit < 1 || limit > 1000)
        return lss__err(c, LSS_EINVAL, "limit must be between 1 and 1000");
    lss__ns *ns = NULL;
    int rc = begin_read(c, id, id_n, &ns);
    if (rc)
        return rc;
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = limit;
    return open_cursor(c, ns, LSS__CUR_STREAMS, LSS__READ_STREAMS,
                       prefix ? prefix : "", prefix_n, &o, after ? after : "",
                       after_n, out);
}

int lss_list_categories(lss_conn *c, const char *id, size_t id_n,
                        lss_cursor **out)
{
    if (!c || !out)
        return c ? lss__err(c, LSS_EINVAL, "out is NULL") : LSS_EINVAL;
    lss__ns *ns = NULL;
    int rc = begin_read(c, id, id_n, &ns);
    if (rc)
        return rc;
    return open_cursor(c, ns, LSS__CUR_CATS, LSS__READ_CATS, "", 0, NULL, NULL,
                       0, out);
}

int lss_ns_list(lss_conn *c, lss_cursor **out)
{
    if (!c || !out)
        return c ? lss__err(c, LSS_EINVAL, "out is NULL") : LSS_EINVAL;
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "a cursor is already open on this session");
    lss_cursor *cur = &c->cur;
    cur->kind = LSS__CUR_NS;
    cur->ns = NULL;
    cur->ns_index = 0;
    cur->open = 1;
    *out = cur;
    return ok(c);
}

/* The namespace after `prev` in list order (created desc, id asc), with a
 * reference, or NULL.  Walking the live table each step keeps the cursor
 * free of allocations and of snapshots that could go stale. */
static int ns_before(const lss__ns *a, const lss__ns *b)
{
    if (a->created_us != b->created_us)
        return a->created_us > b->created_us;
    size_t n = a->id_n < b->id_n ? a->id_n : b->id_n;
    int d = memcmp(a->id, b->id, n);
    return d ? d < 0 : a->id_n < b->id_n;
}

static lss__ns *ns_next_in_order(lss_db *db, const lss__ns *prev)
{
    lss__ns *best = NULL;
    pthread_mutex_lock(&db->lock);
    for (size_t i = 0; i < db->ns_n; i++) {
        lss__ns *ns = db->ns[i];
        if (prev && !ns_before(prev, ns))
            continue;
        if (!best || ns_before(ns, best))
            best = ns;
    }
    if (best)
        atomic_fetch_add(&best->refs, 1);
    pthread_mutex_unlock(&db->lock);
    return best;
}

static int next_ns_row(lss_cursor *cur, const lss_ns_row **row)
{
    lss_conn *c = cur->conn;
    lss__ns *ns = ns_next_in_order(c->db, cur->ns);
    if (cur->ns)
        lss__ns_unref(c->db, cur->ns);
    cur->ns = ns;
    if (!ns)
        return LSS_DONE;
    lss_ns_row *r = &cur->nrow;
    memset(r, 0, sizeof *r);
    int rc = fill_ns_row(c, r, ns);
    if (rc == LSS_OK)
        rc = c->db->ops->ns_stats(c, ns, r);
    if (rc != LSS_OK)
        return rc;
    r->stream_count = -1;
    r->has_last_activity = 0;
    *row = r;
    return LSS_ROW;
}

static int step_kind(lss_cursor *cur, int kind)
{
    if (!cur)
        return LSS_EINVAL;
    if (!cur->open)
        return LSS_EMISUSE;
    if (cur->kind != kind)
        return lss__err(cur->conn, LSS_EMISUSE, "wrong row function for this cursor");
    return cur->conn->db->ops->step(cur);
}

int lss_cursor_next(lss_cursor *cur, const lss_message **row)
{
    if (!row)
        return LSS_EINVAL;
    int rc = step_kind(cur, LSS__CUR_MSG);
    if (rc == LSS_ROW)
        *row = &cur->msg;
    return rc;
}

int lss_cursor_next_stream(lss_cursor *cur, const lss_stream_row **row)
{
    if (!row)
        return LSS_EINVAL;
    int rc = step_kind(cur, LSS__CUR_STREAMS);
    if (rc == LSS_ROW)
        *row = &cur->srow;
    return rc;
}

int lss_cursor_next_category(lss_cursor *cur, const lss_category_row **row)
{
    if (!row)
        return LSS_EINVAL;
    int rc = step_kind(cur, LSS__CUR_CATS);
    if (rc == LSS_ROW)
        *row = &cur->crow;
    return rc;
}

int lss_cursor_next_ns(lss_cursor *cur, const lss_ns_row **row)
{
    if (!row || !cur)
        return LSS_EINVAL;
    if (!cur->open)
        return LSS_EMISUSE;
    if (cur->kind != LSS__CUR_NS)
        return lss__err(cur->conn, LSS_EMISUSE, "wrong row function for this cursor");
    return next_ns_row(cur, row);
}

void lss_cursor_close(lss_cursor *cur)
{
    if (!cur || !cur->open)
        return;
    lss_conn *c = cur->conn;
    if (cur->kind != LSS__CUR_NS)
        c->db->ops->reset(cur);
    if (cur->ns)
        lss__ns_unref(c->db, cur->ns);
    cur->ns = NULL;
    cur->open = 0;
    cur->kind = LSS__CUR_NONE;
}

/* ------------------------------------------------------------------------
 * Subscribe: register with the hub first, then replay, so that no write
 * falls between the replay and the live queue.
 * ---------------------------------------------------------------------- */

int lss_subscribe(lss_conn *c, const char *id, size_t id_n,
                  const lss_sub_opts *o, lss_sub **out)
{
    return lss_subscribe_notify(c, id, id_n, o, NULL, NULL, out);
}

int lss_subscribe_notify(lss_conn *c, const char *id, size_t id_n,
                         const lss_sub_opts *o, lss_notifier *nt, void *user,
                         lss_sub **out)
{
    if (!c || !o || !out)
        return c ? lss__err(c, LSS_EINVAL, "NULL argument") : LSS_EINVAL;
    *out = NULL;
    if (o->kind != LSS_SUB_STREAM && o->kind != LSS_SUB_CATEGORY &&
        o->kind != LSS_SUB_ALL)
        return lss__err(c, LSS_EINVAL, "unknown subscription kind");
    if (o->kind == LSS_SUB_STREAM && (!o->name || !o->name_n))
        return lss__err(c, LSS_EINVAL, "stream name required");
    if (o->kind == LSS_SUB_CATEGORY) {
        if (!o->name || !o->name_n)
            return lss__err(c, LSS_EINVAL, "category name required");
        if (o->group_size < 0 || o->group_member < 0 ||
            ((o->group_member > 0 || o->group_size > 0) &&
             (o->group_size == 0 || o->group_member >= o->group_size)))
            return lss__err(c, LSS_EINVAL,
                            "Invalid consumer group: member must be < size");
    }
    lss__ns *ns = NULL;
    int rc = begin_read(c, id, id_n, &ns);
    if (rc)
        return rc;
    lss_sub *s;
    rc = lss__hub_subscribe(ns->hub, &c->db->a, o, nt, user, &s);
    if (rc != LSS_OK) {
        lss__ns_unref(c->db, ns);
        return lss__err(c, rc, "cannot register subscription");
    }
    if (o->kind != LSS_SUB_ALL && o->replay_max != 0) {
        lss_read_opts ro;
        lss_read_opts_init(&ro);
        ro.position = o->position;
        ro.batch_size = o->replay_max < 0 ? -1 : o->replay_max;
        if (o->kind == LSS_SUB_CATEGORY && o->group_size > 0) {
            ro.flags |= LSS_READ_GROUP;
            ro.group_member = o->group_member;
            ro.group_size = o->group_size;
        }
        lss_cursor *cur;
        atomic_fetch_add(&ns->refs, 1); /* open_cursor consumes one */
        rc = open_cursor(c, ns,  LSS__CUR_MSG,
                         o->kind == LSS_SUB_STREAM ? LSS__READ_STREAM
                                                   : LSS__READ_CATEGORY,
                         o->name, o->name_n, &ro, NULL, 0, &cur);
        const lss_message *m;
        while (rc == LSS_OK && (rc = lss_cursor_next(cur, &m)) == LSS_ROW)
            rc = lss__sub_add_replay(s, m->stream.p, m->stream.n, m->position,
                                     m->global_position);
        if (rc == LSS_DONE)
            rc = LSS_OK;
        lss_cursor_close(&c->cur);
    }
    lss__ns_unref(c->db, ns);
    if (rc != LSS_OK) {
        lss_sub_close(s);
        return lss__err(c, rc, "replay failed: %s", lss_errmsg(c));
    }
    lss__sub_replay_done(s);
    *out = s;
    return ok(c);
}

/* ------------------------------------------------------------------------
 * Import
 * ---------------------------------------------------------------------- */

static int check_record(lss_conn *c, const lss_import_rec *r)
{
    uint8_t u[16];
    if ((!r->id && r->id_n) || (!r->stream && r->stream_n) ||
        (!r->type && r->type_n) || (!r->data && r->data_n) ||
        (!r->metadata && r->metadata_n))
        return lss__err(c, LSS_EINVAL, "NULL pointer with a length");
    if (!r->id || lss__uuid_parse(r->id, r->id_n, u) != LSS_OK)
        return lss__err(c, LSS_EINVAL, "invalid id");
    if (!r->stream_n)
        return lss__err(c, LSS_EINVAL, "stream must be a non-empty string");
    if (!r->type_n)
        return lss__err(c, LSS_EINVAL, "type must be a non-empty string");
    if (r->position < 0)
        return lss__err(c, LSS_EINVAL, "pos must be non-negative");
    if (r->global_position < 1)
        return lss__err(c, LSS_EINVAL, "gpos must be positive");
    int rc;
    if (r->data && (rc = lss__json_is_object(c, r->data, r->data_n)) != 1)
        return rc < 0 ? lss__err(c, rc, "out of memory")
                      : lss__err(c, LSS_EINVAL, "data must be an object or null");
    if (r->metadata && (rc = lss__json_is_object(c, r->metadata, r->metadata_n)) != 1)
        return rc < 0 ? lss__err(c, rc, "out of memory")
                      : lss__err(c, LSS_EINVAL, "meta must be an object or null");
    return LSS_OK;
}

int lss_import(lss_conn *c, const char *id, size_t id_n,
               const lss_import_rec *recs, size_t n, size_t *bad_index)
{
    size_t bad_dummy;
    if (!bad_index)
        bad_index = &bad_dummy;
    *bad_index = 0;
    if (!c)
        return LSS_EINVAL;
    if (!recs && n)
        return lss__err(c, LSS_EINVAL, "recs is NULL");
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    for (size_t i = 0; i < n; i++) {
        int rc = check_record(c, &recs[i]);
        if (rc != LSS_OK) {
            *bad_index = i;
            return rc;
        }
    }
    if (!id || !id_n)
        return lss__err(c, LSS_ENAME, "namespace ID must be a non-empty string");
    lss__ns *ns = ns_get(c, id, id_n);
    if (!ns)
        return lss__err(c, LSS_ENOTFOUND, "namespace not found");
    int rc = LSS_OK;
    if (n) {
        pthread_mutex_lock(&ns->wlock);
        rc = atomic_load(&ns->deleted)
                 ? lss__err(c, LSS_ENOTFOUND, "namespace not found")
                 : c->db->ops->import(c, ns, recs, n, bad_index);
        pthread_mutex_unlock(&ns->wlock);
    }
    lss__ns_unref(c->db, ns);
    return rc == LSS_OK ? ok(c) : rc;
}

int lss_ns_clear(lss_conn *c, const char *id, size_t id_n)
{
    if (!c)
        return LSS_EINVAL;
    if (c->cur.open)
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    if (!id || !id_n)
        return lss__err(c, LSS_ENAME, "namespace ID must be a non-empty string");
    lss__ns *ns = ns_get(c, id, id_n);
    if (!ns)
        return lss__err(c, LSS_ENOTFOUND, "namespace not found");
    pthread_mutex_lock(&ns->wlock);
    int rc = atomic_load(&ns->deleted)
                 ? lss__err(c, LSS_ENOTFOUND, "namespace not found")
                 : c->db->ops->clear(c, ns);
    pthread_mutex_unlock(&ns->wlock);
    lss__ns_unref(c->db, ns);
    return rc == LSS_OK ? ok(c) : rc;
}
