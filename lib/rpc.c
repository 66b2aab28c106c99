/* rpc.c — the EventoDB JSON-RPC methods over the lss_* API: request bytes
 * in, response bytes out (PROTOCOL.md sections 5, 6, 12.1, 12.2).
 *
 * Per-session state (struct lss__rpc) keeps everything a batch needs and
 * keeps its capacity: the token tape, one output buffer holding every
 * response of the batch, an arena for unescaped strings, and the append and
 * message arrays of the run of consecutive writes waiting to be committed
 * with one lss_append_many call.  A steady workload therefore makes no
 * allocator call.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "mem.h"
#include "token.h"
#include "uuid.h"

const char *lss_rpc_method_name(int method)
{
    switch (method) {
#define LSS__RPC_NAME(name, value, text) \
    case (value):                        \
        return text;
        LSS_RPC_METHOD_MAP(LSS__RPC_NAME)
#undef LSS__RPC_NAME
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------------------
 * Session state
 * ---------------------------------------------------------------------- */

#define TAPE_MIN 256
#define BATCH_SIZE_MAX 10000
#define TYPES_MAX 100
#define LIMIT_MAX 1000

/* Returned without touching the session when memory runs out. */
static const char OOM_BODY[] =
    "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\"}}\n";
static const char EINVAL_BODY[] =
    "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"invalid argument\"}}\n";
static const char MISUSE_BODY[] =
    "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":"
    "\"a cursor is open on this session\"}}\n";

/* A validated write waiting for the end of its run.  Entry i belongs to
 * append ap[i]; its messages start at mi[msg0]. */
typedef struct pend {
    size_t req;
    size_t msg0;
    int batch; /* stream.writeBatch */
} pend;

/* Where a response lies in the output buffer (offsets survive growth). */
typedef struct slot {
    size_t off, len;
    const char *fixed; /* a static body instead (out of memory) */
    int deferred;      /* LSS_RPC_MAY_DEFER: served after the writes */
} slot;

struct lss__rpc {
    const lss_allocator *a;
    lss_json_tok *tok;
    size_t tok_cap;
    lss__buf out;     /* every response of the batch */
    lss__buf tmp;     /* composing messages that quote the request */
    lss__arena arena; /* unescaped strings; reset per batch */
    lss_append *ap;
    size_t ap_n, ap_cap;
    pend *pend;
    size_t pend_cap;
    lss_msg_in *mi;
    size_t mi_n, mi_cap;
    slot *slot;
    size_t slot_cap;
    size_t start; /* offset of the response being written */
    int oom;      /* it could not be written */
};

/* One request being served. */
typedef struct call {
    lss_conn *c;
    struct lss__rpc *r;
    lss_rpc_req *q;
    size_t idx;
    int status;
    lss_json_doc d;
    const lss_json_tok *arg[4];
    size_t nargs;
} call;

/* Array p of *cap elements of size elem, grown (doubling) to hold at least
 * need; NULL with p and *cap untouched when memory runs out. */
static void *grow(const lss_allocator *a, void *p, size_t *cap, size_t need,
                  size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return NULL;
        n *= 2;
    }
    if (n > SIZE_MAX / elem)
        return NULL;
    void *q = lss__realloc(a, p, *cap * elem, n * elem);
    if (q)
        *cap = n;
    return q;
}



void lss__rpc_free(lss_conn *c)
{
    struct lss__rpc *r = c ? c->rpc : NULL;
    if (!r)
        return;
    const lss_allocator *a = r->a;
    lss__free(a, r->tok);
    lss__buf_free(&r->out);
    lss__buf_free(&r->tmp);
    lss__arena_destroy(&r->arena);
    lss__free(a, r->ap);
    lss__free(a, r->pend);
    lss__free(a, r->mi);
    lss__free(a, r->slot);
    lss__free(a, r);
    c->rpc = NULL;
}

static struct lss__rpc *rpc_get(lss_conn *c)
{
    if (c->rpc)
        return c->rpc;
    const lss_allocator *a = &c->db->a;
    struct lss__rpc *r = lss__malloc(a, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->a = a;
    lss__buf_init(&r->out, a);
    lss__buf_init(&r->tmp, a);
    /* A failed first block is retried by the first allocation. */
    lss__arena_init(&r->arena, a, 0);
    c->rpc = r;
    return r;
}

/* ------------------------------------------------------------------------
 * Output.  Appends go straight into r->out; a failure sets r->oom and the
 * response becomes OOM_BODY when it is finished.
 * ---------------------------------------------------------------------- */

static void o_raw(struct lss__rpc *r, const char *p, size_t n)
{
    if (LSS_UNLIKELY(r->oom))
        return;
    if (lss__buf_append(&r->out, p, n) != LSS_OK)
        r->oom = 1;
}

#define O_LIT(r, lit) o_raw((r), "" lit "", sizeof(lit) - 1)

static void o_str(struct lss__rpc *r, const char *s, size_t n)
{
    for (int pass = 0; pass < 2 && !r->oom; pass++) {
        size_t room = r->out.cap - r->out.len;
        lss_json_writer w;
        lss__jw_init(&w, r->out.p ? r->out.p + r->out.len : NULL, room);
        lss__jw_str(&w, s, n);
        if (w.len <= room) {
            lss__buf_commit(&r->out, w.len);
            return;
        }
        if (lss__buf_reserve(&r->out, w.len) != LSS_OK)
            break;
    }
    r->oom = 1;
}

static void o_int(struct lss__rpc *r, int64_t v)
{
    char b[24];
    lss_json_writer w;
    lss__jw_init(&w, b, sizeof b);
    lss__jw_int(&w, v);
    o_raw(r, b, w.len);
}

static void o_time(struct lss__rpc *r, int64_t us)
{
    char b[LSS_TIME_MAX + 2];
    b[0] = '"';
    size_t n = lss__time_format(us, b + 1);
    b[n + 1] = '"';
    o_raw(r, b, n + 2);
}

/* A stored payload as stored; NULL is JSON null. */
static void o_payload(struct lss__rpc *r, lss_span s)
{
    if (s.p)
        o_raw(r, s.p, s.n);
    else
        O_LIT(r, "null");
}

static void resp_begin(call *k)
{
    k->r->start = k->r->out.len;
    k->r->oom = 0;
    k->status = 200;
}

static void resp_end(call *k)
{
    struct lss__rpc *r = k->r;
    slot *s = &r->slot[k->idx];
    O_LIT(r, "\n");
    if (r->oom) {
        lss__buf_truncate(&r->out, r->start);
        r->oom = 0;
        s->fixed = OOM_BODY;
        k->q->status = 500;
        return;
    }
    s->fixed = NULL;
    s->off = r->start;
    s->len = r->out.len - r->start;
    k->q->status = k->status;
}

/* The error body up to the end of "message"; the caller may add
 * ,"details":{...} before error_end.  Drops anything already written for
 * this response (a read failing halfway). */
static void error_begin(call *k, int status, const char *code,
                        const char *msg, size_t msg_n)
{
    struct lss__rpc *r = k->r;
    lss__buf_truncate(&r->out, r->start);
    r->oom = 0;
    k->status = status;
    O_LIT(r, "{\"error\":{\"code\":\"");
    o_raw(r, code, strlen(code));
    O_LIT(r, "\",\"message\":");
    o_str(r, msg, msg_n);
}

static void error_end(call *k)
{
    O_LIT(k->r, "}}");
}

static void error_msg(call *k, int status, const char *code, const char *msg)
{
    error_begin(k, status, code, msg, strlen(msg));
    error_end(k);
}

/* 400 INVALID_REQUEST without details: every validation failure. */
static void bad(call *k, const char *msg)
{
    error_msg(k, 400, "INVALID_REQUEST", msg);
}

static void oom(call *k)
{
    k->r->oom = 1;
}

/* Messages that quote the request are composed in r->tmp. */
static void tmp_reset(struct lss__rpc *r)
{
    lss__buf_clear(&r->tmp);
}

static void tmp_add(struct lss__rpc *r, const char *p, size_t n)
{
    if (lss__buf_append(&r->tmp, p, n) != LSS_OK)
        r->oom = 1;
}

static void tmp_addz(struct lss__rpc *r, const char *s)
{
    tmp_add(r, s, strlen(s));
}

/* Bytes that are not well-formed UTF-8 (a decoded token may hold any),
 * and NUL, become U+FFFD, so the message stays valid JSON that our own
 * scanner would accept (it refuses \u0000). */
static void tmp_add_utf8(struct lss__rpc *r, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned b = s[i];
        size_t len = b == 0 ? 0 /* never echo U+0000 (see json.h) */
                   : b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2
                                 : b >= 0xE0 && b <= 0xEF  ? 3
                                 : b >= 0xF0 && b <= 0xF4  ? 4
                                                           : 0;
        int good = len > 0 && n - i >= len;
        for (size_t j = 1; good && j < len; j++)
            good = (s[i + j] & 0xC0) == 0x80;
        if (good && len == 3)
            good = !(b == 0xE0 && s[i + 1] < 0xA0) &&
                   !(b == 0xED && s[i + 1] >= 0xA0);
        if (good && len == 4)
            good = !(b == 0xF0 && s[i + 1] < 0x90) &&
                   !(b == 0xF4 && s[i + 1] >= 0x90);
        if (good) {
            i += len;
            continue;
        }
        tmp_add(r, p + run, i - run);
        tmp_add(r, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    tmp_add(r, p + run, n - run);
}

static void error_tmp(call *k, int status, const char *code)
{
    struct lss__rpc *r = k->r;
    if (r->oom)
        return;
    error_begin(k, status, code, r->tmp.p ? r->tmp.p : "", r->tmp.len);
    error_end(k);
}

/* 500 BACKEND_ERROR "<prefix>: <reason>".  The reason is the code's fixed
 * text, never lss_errmsg (which may quote SQLite). */
static void backend_error(call *k, const char *prefix, int rc)
{
    struct lss__rpc *r = k->r;
    tmp_reset(r);
    tmp_addz(r, prefix);
    tmp_addz(r, ": ");
    tmp_addz(r, rc == LSS_ENOTFOUND ? "namespace not found" : lss_strerror(rc));
    error_tmp(k, 500, "BACKEND_ERROR");
}

/* ------------------------------------------------------------------------
 * Request access
 * ---------------------------------------------------------------------- */

static int is_type(const lss_json_tok *t, int type)
{
    return lss__json_type(t) == type;
}

static int nonempty_str(const lss_json_tok *t)
{
    return is_type(t, LSS_JSON_STRING) && t->len > 2;
}

static const lss_json_tok *get(call *k, const lss_json_tok *obj,
                               const char *key)
{
    return lss__json_getz(&k->d, obj, key);
}

/* The unescaped text of string t: a view into the body when it has no
 * escapes, else a copy in the batch arena (valid until the batch ends). */
static int str_of(call *k, const lss_json_tok *t, lss_span *out)
{
    const char *p = k->d.src + t->off + 1;
    size_t n = t->len - 2u;
    out->p = p;
    out->n = n;
    if (!(t->flags & LSS_JSON_ESCAPED))
        return LSS_OK;
    char *buf = lss__arena_alloc(&k->r->arena, n, 1); /* never longer */
    if (!buf)
        return LSS_ENOMEM;
    size_t need = 0;
    lss__json_unescape(p, n, buf, n, &need);
    out->p = buf;
    out->n = need;
    return LSS_OK;
}

/* options.<key> under "must be a number" (PROTOCOL.md 1.4): 0 absent,
 * 1 converted into *v, -1 not a number. */
static int num_opt(call *k, const lss_json_tok *opts, const char *key,
                   int64_t *v)
{
    const lss_json_tok *t = get(k, opts, key);
    if (!t)
        return 0;
    return lss__json_to_int64(&k->d, t, v) == LSS_OK ? 1 : -1;
}

static int has_ns(call *k)
{
    return k->q->ns && k->q->ns_n;
}

/* ------------------------------------------------------------------------
 * Writes: validated here, queued, committed by flush() with the rest of the
 * run, answered from the lss_append results.
 * ---------------------------------------------------------------------- */

/* Room for one more append and `msgs` more messages. */
static int queue_reserve(struct lss__rpc *r, size_t msgs)
{
    lss_append *ap = grow(r->a, r->ap, &r->ap_cap, r->ap_n + 1, sizeof *ap);
    if (!ap)
        return LSS_ENOMEM;
    r->ap = ap;
    pend *p = grow(r->a, r->pend, &r->pend_cap, r->ap_n + 1, sizeof *p);
    if (!p)
        return LSS_ENOMEM;
    r->pend = p;
    lss_msg_in *mi = grow(r->a, r->mi, &r->mi_cap, r->mi_n + msgs, sizeof *mi);
    if (!mi)
        return LSS_ENOMEM;
    r->mi = mi;
    return LSS_OK;
}

/* An optional message id (`what`.id: options.id, messages[i].id) into m:
 * "" means none; anything else must parse as a UUID (the store
 * canonicalises it).  0, or -1 after answering. */
static int check_id(call *k, const lss_json_tok *id, const char *what,
                    lss_msg_in *m)
{
    char e[96];
    if (!id)
        return 0;
    if (!is_type(id, LSS_JSON_STRING)) {
        snprintf(e, sizeof e, "%s.id must be a string", what);
        bad(k, e);
        return -1;
    }
    lss_span s;
    if (str_of(k, id, &s)) {
        oom(k);
        return -1;
    }
    uint8_t u[16];
    if (s.n && lss__uuid_parse(s.p, s.n, u) != LSS_OK) {
        snprintf(e, sizeof e, "%s.id must be a valid UUID", what);
        bad(k, e);
        return -1;
    }
    m->id = s.n ? s.p : NULL;
    m->id_n = s.n;
    return 0;
}

/* Checks one message object (stream.write's message, or an element of
 * stream.writeBatch's array when with_id) into *m.  `what` names it in the
 * messages: "message" or "messages[i]".  Returns 0, or -1 after answering. */
static int check_message(call *k, const lss_json_tok *msg, const char *what,
                         int with_id, lss_msg_in *m)
{
    char e[96];
    memset(m, 0, sizeof *m);
    if (!is_type(msg, LSS_JSON_OBJECT)) {
        snprintf(e, sizeof e, "%s must be an object", what);
        bad(k, e);
        return -1;
    }
    const lss_json_tok *type = get(k, msg, "type");
    if (!nonempty_str(type)) {
        snprintf(e, sizeof e, "%s.type must be a non-empty string", what);
        bad(k, e);
        return -1;
    }
    const lss_json_tok *data = get(k, msg, "data");
    if (!is_type(data, LSS_JSON_OBJECT)) {
        snprintf(e, sizeof e, "%s.data must be an object", what);
        bad(k, e);
        return -1;
    }
    const lss_json_tok *meta = get(k, msg, "metadata");
    if (meta && !is_type(meta, LSS_JSON_OBJECT)) {
        snprintf(e, sizeof e, "%s.metadata must be an object", what);
        bad(k, e);
        return -1;
    }
    lss_span s;
    if (str_of(k, type, &s)) {
        oom(k);
        return -1;
    }
    m->type = s.p;
    m->type_n = s.n;
    s = lss__json_span(&k->d, data);
    m->data = s.p;
    m->data_n = s.n;
    if (meta) {
        s = lss__json_span(&k->d, meta);
        m->metadata = s.p;
        m->metadata_n = s.n;
    }
    return with_id ? check_id(k, get(k, msg, "id"), what, m) : 0;
}

/* options.expectedVersion into a; 0, or -1 after answering. */
static int check_expected(call *k, const lss_json_tok *opts, lss_append *a)
{
    int64_t v;
    int got = num_opt(k, opts, "expectedVersion", &v);
    if (got < 0) {
        bad(k, "options.expectedVersion must be a number");
        return -1;
    }
    if (got) {
        a->flags |= LSS_APPEND_EXPECT;
        a->expected_version = v;
    }
    return 0;
}

static void queue(call *k, lss_append *a, size_t msg0, size_t count,
                  int batch)
{
    struct lss__rpc *r = k->r;
    a->ns = k->q->ns;
    a->ns_n = k->q->ns_n;
    a->msgs = NULL; /* set by flush: r->mi may still move */
    a->count = count;
    pend *p = &r->pend[r->ap_n++];
    p->req = k->idx;
    p->msg0 = msg0;
    p->batch = batch;
    r->mi_n += count;
}

/* Returns 1 when queued (no response yet), 0 when answered. */
static int m_stream_write(call *k)
{
    struct lss__rpc *r = k->r;
    if (k->nargs < 2) {
        bad(k, "stream.write requires at least 2 arguments: streamName and message");
        return 0;
    }
    if (!nonempty_str(k->arg[0])) {
        bad(k, "streamName must be a non-empty string");
        return 0;
    }
    if (queue_reserve(r, 1)) {
        oom(k);
        return 0;
    }
    lss_append *a = &r->ap[r->ap_n];
    lss_msg_in *m = &r->mi[r->mi_n];
    memset(a, 0, sizeof *a);
    if (check_message(k, k->arg[1], "message", 0, m))
        return 0;
    const lss_json_tok *opts = k->nargs > 2 ? k->arg[2] : NULL;
    if (k->nargs > 2 && !is_type(opts, LSS_JSON_OBJECT)) {
        bad(k, "options must be an object");
        return 0;
    }
    if (check_id(k, get(k, opts, "id"), "options", m) ||
        check_expected(k, opts, a))
        return 0;
    if (!has_ns(k)) {
        backend_error(k, "Failed to write message", LSS_ENOTFOUND);
        return 0;
    }
    lss_span s;
    if (str_of(k, k->arg[0], &s)) {
        oom(k);
        return 0;
    }
    a->stream = s.p;
    a->stream_n = s.n;
    queue(k, a, r->mi_n, 1, 0);
    return 1;
}

static int m_stream_write_batch(call *k)
{
    struct lss__rpc *r = k->r;
    if (k->nargs < 2) {
        bad(k, "stream.writeBatch requires at least 2 arguments: streamName and messages");
        return 0;
    }
    if (!nonempty_str(k->arg[0])) {
        bad(k, "streamName must be a non-empty string");
        return 0;
    }
    const lss_json_tok *list = k->arg[1];
    if (!is_type(list, LSS_JSON_ARRAY)) {
        bad(k, "messages must be an array");
        return 0;
    }
    size_t count = list->count;
    if (count == 0 || count > LSS_BATCH_MAX) {
        bad(k, "messages must contain between 1 and 1000 messages");
        return 0;
    }
    if (queue_reserve(r, count)) {
        oom(k);
        return 0;
    }
    uint8_t(*ids)[16] = lss__arena_alloc(&r->arena, count * 16, 1);
    if (!ids) {
        oom(k);
        return 0;
    }
    lss_append *a = &r->ap[r->ap_n];
    lss_msg_in *msgs = &r->mi[r->mi_n];
    memset(a, 0, sizeof *a);
    lss_json_iter it;
    lss__json_iter_init(&it, &k->d, list);
    const lss_json_tok *t;
    for (size_t i = 0; (t = lss__json_iter_next(&it, NULL)); i++) {
        char what[32];
        snprintf(what, sizeof what, "messages[%zu]", i);
        lss_msg_in *m = &msgs[i];
        if (check_message(k, t, what, 1, m))
            return 0;
        if (!m->id)
            continue;
        lss__uuid_parse(m->id, m->id_n, ids[i]);
        for (size_t j = 0; j < i; j++) {
            if (msgs[j].id && !memcmp(ids[i], ids[j], 16)) {
                char e[96];
                snprintf(e, sizeof e, "messages[%zu].id duplicates messages[%zu].id",
                         i, j);
                bad(k, e);
                return 0;
            }
        }
    }
    const lss_json_tok *opts = k->nargs > 2 ? k->arg[2] : NULL;
    if (k->nargs > 2 && !is_type(opts, LSS_JSON_OBJECT)) {
        bad(k, "options must be an object");
        return 0;
    }
    if (check_expected(k, opts, a))
        return 0;
    if (!has_ns(k)) {
        backend_error(k, "Failed to write messages", LSS_ENOTFOUND);
        return 0;
    }
    lss_span s;
    if (str_of(k, k->arg[0], &s)) {
        oom(k);
        return 0;
    }
    a->stream = s.p;
    a->stream_n = s.n;
    queue(k, a, r->mi_n, count, 1);
    return 1;
}

static void write_result(call *k, const lss_append *a, int batch)
{
    struct lss__rpc *r = k->r;
    char e[128];
    switch (a->rc) {
    case LSS_OK:
        if (batch) {
            O_LIT(r, "{\"count\":");
            o_int(r, (int64_t)a->count);
            O_LIT(r, ",\"globalPosition\":");
        } else {
            O_LIT(r, "{\"globalPosition\":");
        }
        o_int(r, a->global_position);
        O_LIT(r, ",\"position\":");
        o_int(r, a->position);
        O_LIT(r, "}");
        return;
    case LSS_EVERSION:
        snprintf(e, sizeof e, "Expected version %lld, stream is at version %lld",
                 (long long)a->expected_version, (long long)a->actual_version);
        error_begin(k, 409, "STREAM_VERSION_CONFLICT", e, strlen(e));
        O_LIT(r, ",\"details\":{\"actual\":");
        o_int(r, a->actual_version);
        O_LIT(r, ",\"expected\":");
        o_int(r, a->expected_version);
        O_LIT(r, "}");
        error_end(k);
        return;
    case LSS_EDUPLICATE:
        snprintf(e, sizeof e, "Message ID '%.36s' already exists", a->id);
        error_begin(k, 409, "DUPLICATE_MESSAGE_ID", e, strlen(e));
        O_LIT(r, ",\"details\":{\"id\":");
        o_str(r, a->id, sizeof a->id);
        O_LIT(r, "}");
        error_end(k);
        return;
    default:
        backend_error(k, batch ? "Failed to write messages"
                               : "Failed to write message",
                      a->rc);
    }
}

/* Commit the queued run with one lss_append_many and answer each write. */
static void flush(lss_conn *c, struct lss__rpc *r, lss_rpc_req *reqs)
{
    size_t n = r->ap_n;
    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        r->ap[i].msgs = r->mi + r->pend[i].msg0;
    int rc = lss__append_many(c, r->ap, n, 1);
    for (size_t i = 0; i < n; i++) {
        lss_append *a = &r->ap[i];
        if (rc != LSS_OK)
            a->rc = rc;
        call k;
        memset(&k, 0, sizeof k);
        k.c = c;
        k.r = r;
        k.idx = r->pend[i].req;
        k.q = &reqs[k.idx];
        resp_begin(&k);
        write_result(&k, a, r->pend[i].batch);
        resp_end(&k);
    }
    r->ap_n = 0;
    r->mi_n = 0;
}

/* ------------------------------------------------------------------------
 * Reads
 * ---------------------------------------------------------------------- */

static void o_message(struct lss__rpc *r, const lss_message *m, int with_stream)
{
    O_LIT(r, "[");
    o_str(r, m->id.p, m->id.n);
    O_LIT(r, ",");
    if (with_stream) {
        o_str(r, m->stream.p, m->stream.n);
        O_LIT(r, ",");
    }
    o_str(r, m->type.p, m->type.n);
    O_LIT(r, ",");
    o_int(r, m->position);
    O_LIT(r, ",");
    o_int(r, m->global_position);
    O_LIT(r, ",");
    o_payload(r, m->data);
    O_LIT(r, ",");
    o_payload(r, m->metadata);
    O_LIT(r, ",");
    o_time(r, m->time_us);
    O_LIT(r, "]");
}

/* Answer with the rows of an opened message cursor (or the error that
 * opened none), then close it. */
static void message_rows(call *k, int rc, lss_cursor *cur, int with_stream,
                         const char *prefix)
{
    struct lss__rpc *r = k->r;
    if (rc != LSS_OK) {
        backend_error(k, prefix, rc);
        return;
    }
    O_LIT(r, "[");
    const lss_message *m;
    size_t i = 0;
    while (!r->oom && (rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        if (i++)
            O_LIT(r, ",");
        o_message(r, m, with_stream);
    }
    lss_cursor_close(cur);
    if (r->oom)
        return;
    if (rc != LSS_DONE) {
        backend_error(k, prefix, rc);
        return;
    }
    O_LIT(r, "]");
}

/* options.types (PROTOCOL.md 12.2) into types[]; 0, or -1 after
 * answering. */
static int check_types(call *k, const lss_json_tok *opts, lss_span *types,
                       size_t *n)
{
    *n = 0;
    const lss_json_tok *t = get(k, opts, "types");
    if (!t)
        return 0;
    if (!is_type(t, LSS_JSON_ARRAY) || t->count == 0 || t->count > TYPES_MAX)
        goto invalid;
    lss_json_iter it;
    lss__json_iter_init(&it, &k->d, t);
    const lss_json_tok *e;
    while ((e = lss__json_iter_next(&it, NULL))) {
        if (!nonempty_str(e))
            goto invalid;
        if (str_of(k, e, &types[*n])) {
            oom(k);
            return -1;
        }
        (*n)++;
    }
    return 0;
invalid:
    bad(k, "options.types must be an array of 1 to 100 non-empty strings");
    return -1;
}

/* The shared checks of stream.get and category.get (6.4 steps 3-7). */
static int check_read_opts(call *k, const lss_json_tok **opts_out,
                           lss_read_opts *o, int *has_gp, int64_t *gp)
{
    const lss_json_tok *opts = k->nargs > 1 ? k->arg[1] : NULL;
    *opts_out = opts;
    if (k->nargs > 1 && !is_type(opts, LSS_JSON_OBJECT)) {
        bad(k, "options must be an object");
        return -1;
    }
    int got = num_opt(k, opts, "position", &o->position);
    if (got < 0) {
        bad(k, "options.position must be a number");
        return -1;
    }
    *has_gp = num_opt(k, opts, "globalPosition", gp);
    if (*has_gp < 0) {
        bad(k, "options.globalPosition must be a number");
        return -1;
    }
    got = num_opt(k, opts, "batchSize", &o->batch_size);
    if (got < 0) {
        bad(k, "options.batchSize must be a number");
        return -1;
    }
    if (o->batch_size > BATCH_SIZE_MAX && o->batch_size != -1) {
        bad(k, "options.batchSize must be <= 10000 or -1 for unlimited");
        return -1;
    }
    return 0;
}

static void m_stream_get(call *k)
{
    static const char prefix[] = "Failed to get messages";
    if (k->nargs < 1) {
        bad(k, "stream.get requires at least 1 argument: streamName");
        return;
    }
    if (!nonempty_str(k->arg[0])) {
        bad(k, "streamName must be a non-empty string");
        return;
    }
    lss_read_opts o;
    lss_read_opts_init(&o);
    const lss_json_tok *opts;
    int has_gp;
    int64_t gp = 0;
    if (check_read_opts(k, &opts, &o, &has_gp, &gp))
        return;
    lss_span types[TYPES_MAX];
    if (check_types(k, opts, types, &o.types_n))
        return;
    o.types = o.types_n ? types : NULL;
    if (has_gp) {
        o.flags |= LSS_READ_GLOBAL;
        o.global_position = gp;
    }
    lss_span s;
    if (str_of(k, k->arg[0], &s)) {
        oom(k);
        return;
    }
    if (!has_ns(k)) {
        backend_error(k, prefix, LSS_ENOTFOUND);
        return;
    }
    lss_cursor *cur = NULL;
    int rc = lss_read_stream(k->c, k->q->ns, k->q->ns_n, s.p, s.n, &o, &cur);
    message_rows(k, rc, cur, 0, prefix);
}

static void m_stream_last(call *k)
{
    static const char prefix[] = "Failed to get last message";
    if (k->nargs < 1) {
        bad(k, "stream.last requires at least 1 argument: streamName");
        return;
    }
    if (!nonempty_str(k->arg[0])) {
        bad(k, "streamName must be a non-empty string");
        return;
    }
    const lss_json_tok *opts = k->nargs > 1 ? k->arg[1] : NULL;
    if (k->nargs > 1 && !is_type(opts, LSS_JSON_OBJECT)) {
        bad(k, "options must be an object");
        return;
    }
    const lss_json_tok *type = get(k, opts, "type");
    if (type && !is_type(type, LSS_JSON_STRING)) {
        bad(k, "options.type must be a string");
        return;
    }
    lss_span s, ts = {NULL, 0};
    if (str_of(k, k->arg[0], &s) || (type && str_of(k, type, &ts))) {
        oom(k);
        return;
    }
    if (!has_ns(k)) {
        backend_error(k, prefix, LSS_ENOTFOUND);
        return;
    }
    lss_cursor *cur = NULL;
    int rc = lss_read_last(k->c, k->q->ns, k->q->ns_n, s.p, s.n, ts.p, ts.n,
                           &cur);
    if (rc != LSS_OK) {
        backend_error(k, prefix, rc);
        return;
    }
    const lss_message *m;
    rc = lss_cursor_next(cur, &m);
    if (rc == LSS_ROW)
        o_message(k->r, m, 0);
    else if (rc == LSS_DONE)
        O_LIT(k->r, "null");
    lss_cursor_close(cur);
    if (rc != LSS_ROW && rc != LSS_DONE)
        backend_error(k, prefix, rc);
}

static void m_stream_version(call *k)
{
    static const char prefix[] = "Failed to get stream version";
    if (k->nargs < 1) {
        bad(k, "stream.version requires 1 argument: streamName");
        return;
    }
    if (!nonempty_str(k->arg[0])) {
        bad(k, "streamName must be a non-empty string");
        return;
    }
    lss_span s;
    if (str_of(k, k->arg[0], &s)) {
        oom(k);
        return;
    }
    if (!has_ns(k)) {
        backend_error(k, prefix, LSS_ENOTFOUND);
        return;
    }
    int64_t v = -1;
    int rc = lss_stream_version(k->c, k->q->ns, k->q->ns_n, s.p, s.n, &v);
    if (rc != LSS_OK)
        backend_error(k, prefix, rc);
    else if (v < 0)
        O_LIT(k->r, "null");
    else
        o_int(k->r, v);
}

/* options.consumerGroup (6.7 steps 6-10) into o; 0, or -1 after
 * answering. */
static int check_group(call *k, const lss_json_tok *opts, lss_read_opts *o)
{
    const lss_json_tok *g = get(k, opts, "consumerGroup");
    if (!g)
        return 0;
    if (!is_type(g, LSS_JSON_OBJECT)) {
        bad(k, "options.consumerGroup must be an object");
        return -1;
    }
    int64_t member = 0, size = 0;
    int hm = num_opt(k, g, "member", &member);
    if (hm < 0) {
        bad(k, "options.consumerGroup.member must be a number");
        return -1;
    }
    int hs = num_opt(k, g, "size", &size);
    if (hs < 0) {
        bad(k, "options.consumerGroup.size must be a number");
        return -1;
    }
    if (hm && hs) {
        if (member < 0) {
            bad(k, "options.consumerGroup.member must be non-negative");
            return -1;
        }
        if (size <= 0) {
            bad(k, "options.consumerGroup.size must be positive");
            return -1;
        }
        if (member >= size) {
            bad(k, "options.consumerGroup.member must be < size");
            return -1;
        }
        o->flags |= LSS_READ_GROUP;
        o->group_member = member;
        o->group_size = size;
    } else if (hm || hs) {
        bad(k, "options.consumerGroup requires both member and size");
        return -1;
    }
    return 0;
}

static void m_category_get(call *k)
{
    static const char prefix[] = "Failed to get category messages";
    if (k->nargs < 1) {
        bad(k, "category.get requires at least 1 argument: categoryName");
        return;
    }
    if (!is_type(k->arg[0], LSS_JSON_STRING)) {
        bad(k, "categoryName must be a string");
        return;
    }
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = 1;
    const lss_json_tok *opts;
    int has_gp;
    int64_t gp = 0;
    if (check_read_opts(k, &opts, &o, &has_gp, &gp))
        return;
    const lss_json_tok *corr = get(k, opts, "correlation");
    if (corr && !is_type(corr, LSS_JSON_STRING)) {
        bad(k, "options.correlation must be a string");
        return;
    }
    if (check_group(k, opts, &o))
        return;
    lss_span types[TYPES_MAX];
    if (check_types(k, opts, types, &o.types_n))
        return;
    o.types = o.types_n ? types : NULL;
    if (has_gp)
        o.position = gp;
    lss_span s, cs = {NULL, 0};
    if (str_of(k, k->arg[0], &s) || (corr && str_of(k, corr, &cs))) {
        oom(k);
        return;
    }
    o.correlation = cs.p;
    o.correlation_n = cs.n;
    if (!has_ns(k)) {
        backend_error(k, prefix, LSS_ENOTFOUND);
        return;
    }
    lss_cursor *cur = NULL;
    int rc = lss_read_category(k->c, k->q->ns, k->q->ns_n, s.p, s.n, &o, &cur);
    message_rows(k, rc, cur, 1, prefix);
}

/* ------------------------------------------------------------------------
 * Namespaces
 * ---------------------------------------------------------------------- */

/* args[0] as a namespace id for ns.create/delete/info: 0, or -1 after
 * answering.  `usage` is the message for a missing argument. */
static int ns_id_arg(call *k, const char *usage, lss_span *id)
{
    if (k->nargs < 1) {
        bad(k, usage);
        return -1;
    }
    if (!nonempty_str(k->arg[0])) {
        bad(k, "namespace ID must be a non-empty string");
        return -1;
    }
    if (str_of(k, k->arg[0], id)) {
        oom(k);
        return -1;
    }
    return 0;
}

static void ns_message(call *k, int status, const char *code, lss_span id,
                       const char *tail)
{
    struct lss__rpc *r = k->r;
    tmp_reset(r);
    tmp_addz(r, "Namespace '");
    tmp_add(r, id.p, id.n);
    tmp_addz(r, tail);
    error_tmp(k, status, code);
}

/* options.token of ns.create (6.8 step 6): 0 valid or absent, -1 after
 * answering. */
static int check_token(call *k, const lss_json_tok *tok, lss_span id,
                       lss_span *out)
{
    struct lss__rpc *r = k->r;
    if (!is_type(tok, LSS_JSON_STRING)) {
        bad(k, "options.token must be a string");
        return -1;
    }
    if (str_of(k, tok, out)) {
        oom(k);
        return -1;
    }
    /* The decoded id is never longer than the token. */
    char *dec = lss__arena_alloc(&r->arena, out->n + 1, 1);
    if (!dec) {
        oom(k);
        return -1;
    }
    char perr[LSS_TOKEN_ERR_MAX];
    size_t dec_n = 0;
    int rc = lss__token_parse(out->p, out->n, dec, out->n + 1, &dec_n, perr,
                              sizeof perr);
    tmp_reset(r);
    if (rc == LSS_ETOKEN) {
        tmp_addz(r, "Invalid token format: ");
        tmp_addz(r, perr);
        error_tmp(k, 400, "INVALID_REQUEST");
        return -1;
    }
    if (rc != LSS_OK || dec_n != id.n || memcmp(dec, id.p, id.n)) {
        tmp_addz(r, "Token is for namespace '");
        tmp_add_utf8(r, dec, rc == LSS_OK ? dec_n : 0);
        tmp_addz(r, "', not '");
        tmp_add(r, id.p, id.n);
        tmp_addz(r, "'");
        error_tmp(k, 400, "INVALID_REQUEST");
        return -1;
    }
    return 0;
}

static void m_ns_create(call *k)
{
    struct lss__rpc *r = k->r;
    lss_span id;
    if (ns_id_arg(k, "ns.create requires at least 1 argument: namespace ID", &id))
        return;
    if (id.n > LSS_NS_ID_MAX) {
        bad(k, "namespace ID must be at most 255 bytes");
        return;
    }
    const lss_json_tok *opts = k->nargs > 1 ? k->arg[1] : NULL;
    if (k->nargs > 1 && !is_type(opts, LSS_JSON_OBJECT)) {
        bad(k, "options must be an object");
        return;
    }
    const lss_json_tok *desc = get(k, opts, "description");
    if (desc && !is_type(desc, LSS_JSON_STRING)) {
        bad(k, "options.description must be a string");
        return;
    }
    const lss_json_tok *tok = get(k, opts, "token");
    lss_span ts = {NULL, 0}, ds = {NULL, 0};
    if (tok && check_token(k, tok, id, &ts))
        return;
    const lss_json_tok *meta = get(k, opts, "metadata");
    if (meta && !is_type(meta, LSS_JSON_OBJECT)) {
        bad(k, "options.metadata must be an object");
        return;
    }
    if (desc && str_of(k, desc, &ds)) {
        oom(k);
        return;
    }
    char token[LSS_TOKEN_MAX];
    size_t token_n = 0;
    int64_t created = 0;
    int rc = lss_ns_create(k->c, id.p, id.n, ds.p, ds.n,
                           tok ? (ts.p ? ts.p : "") : NULL, ts.n, token,
                           sizeof token, &token_n, &created);
    switch (rc) {
    case LSS_OK:
        O_LIT(r, "{\"createdAt\":");
        o_time(r, created);
        O_LIT(r, ",\"namespace\":");
        o_str(r, id.p, id.n);
        O_LIT(r, ",\"token\":");
        o_str(r, token, token_n);
        O_LIT(r, "}");
        return;
    case LSS_EEXISTS:
        ns_message(k, 409, "NAMESPACE_EXISTS", id, "' already exists");
        return;
    case LSS_ETOKEN: /* only what check_token cannot see ("token too long") */
        error_msg(k, 400, "INVALID_REQUEST", lss_errmsg(k->c));
        return;
    case LSS_EINTERNAL: /* token generation or hashing */
        backend_error(k, "Failed to generate token", rc);
        return;
    default:
        backend_error(k, "Failed to create namespace", rc);
    }
}

static void m_ns_delete(call *k)
{
    struct lss__rpc *r = k->r;
    lss_span id;
    if (ns_id_arg(k, "ns.delete requires 1 argument: namespace ID", &id))
        return;
    int64_t count = 0, deleted = 0;
    int rc = id.n > LSS_NS_ID_MAX
                 ? LSS_ENOTFOUND /* no such id can exist */
                 : lss_ns_delete(k->c, id.p, id.n, &count, &deleted);
    if (rc == LSS_ENOTFOUND) {
        ns_message(k, 404, "NAMESPACE_NOT_FOUND", id, "' not found");
        return;
    }
    if (rc != LSS_OK) {
        backend_error(k, "Failed to delete namespace", rc);
        return;
    }
    O_LIT(r, "{\"deletedAt\":");
    o_time(r, deleted);
    O_LIT(r, ",\"messagesDeleted\":");
    o_int(r, count);
    O_LIT(r, ",\"namespace\":");
    o_str(r, id.p, id.n);
    O_LIT(r, "}");
}

static void m_ns_info(call *k)
{
    struct lss__rpc *r = k->r;
    lss_span id;
    if (ns_id_arg(k, "ns.info requires 1 argument: namespace ID", &id))
        return;
    const lss_ns_row *row = NULL;
    int rc = id.n > LSS_NS_ID_MAX ? LSS_ENOTFOUND
                                  : lss_ns_info(k->c, id.p, id.n, &row);
    if (rc == LSS_ENOTFOUND) {
        ns_message(k, 404, "NAMESPACE_NOT_FOUND", id, "' not found");
        return;
    }
    if (rc != LSS_OK) {
        backend_error(k, "Failed to get namespace", rc);
        return;
    }
    O_LIT(r, "{\"createdAt\":");
    o_time(r, row->created_us);
    O_LIT(r, ",\"description\":");
    o_str(r, row->description.p, row->description.n);
    O_LIT(r, ",\"lastActivity\":");
    if (row->has_last_activity)
        o_time(r, row->last_activity_us);
    else
        O_LIT(r, "null");
    O_LIT(r, ",\"messageCount\":");
    o_int(r, row->message_count);
    O_LIT(r, ",\"namespace\":");
    o_str(r, row->id.p, row->id.n);
    O_LIT(r, ",\"streamCount\":");
    o_int(r, row->stream_count);
    O_LIT(r, "}");
}

static void m_ns_list(call *k)
{
    static const char prefix[] = "Failed to list namespaces";
    struct lss__rpc *r = k->r;
    lss_cursor *cur = NULL;
    int rc = lss_ns_list(k->c, &cur);
    if (rc != LSS_OK) {
        backend_error(k, prefix, rc);
        return;
    }
    O_LIT(r, "[");
    const lss_ns_row *row;
    size_t i = 0;
    while (!r->oom && (rc = lss_cursor_next_ns(cur, &row)) == LSS_ROW) {
        if (i++)
            O_LIT(r, ",");
        O_LIT(r, "{\"createdAt\":");
        o_time(r, row->created_us);
        O_LIT(r, ",\"description\":");
        o_str(r, row->description.p, row->description.n);
        O_LIT(r, ",\"messageCount\":");
        o_int(r, row->message_count);
        O_LIT(r, ",\"namespace\":");
        o_str(r, row->id.p, row->id.n);
        O_LIT(r, "}");
    }
    lss_cursor_close(cur);
    if (r->oom)
        return;
    if (rc != LSS_DONE)
        backend_error(k, prefix, rc);
    else
        O_LIT(r, "]");
}

static void m_ns_streams(call *k)
{
    static const char prefix[] = "Failed to list streams";
    struct lss__rpc *r = k->r;
    const lss_json_tok *opts = k->nargs > 0 ? k->arg[0] : NULL;
    if (k->nargs > 0 && !is_type(opts, LSS_JSON_OBJECT)) {
        bad(k, "options must be an object");
        return;
    }
    const lss_json_tok *prefix_t = get(k, opts, "prefix");
    if (prefix_t && !is_type(prefix_t, LSS_JSON_STRING)) {
        bad(k, "prefix must be a string");
        return;
    }
    const lss_json_tok *cursor_t = get(k, opts, "cursor");
    if (cursor_t && !is_type(cursor_t, LSS_JSON_STRING)) {
        bad(k, "cursor must be a string");
        return;
    }
    int64_t limit = 100;
    int got = num_opt(k, opts, "limit", &limit);
    if (got < 0) {
        bad(k, "limit must be a number");
        return;
    }
    if (limit <= 0 || limit > LIMIT_MAX) {
        bad(k, "limit must be between 1 and 1000");
        return;
    }
    lss_span ps = {NULL, 0}, cs = {NULL, 0};
    if ((prefix_t && str_of(k, prefix_t, &ps)) ||
        (cursor_t && str_of(k, cursor_t, &cs))) {
        oom(k);
        return;
    }
    if (!has_ns(k)) {
        backend_error(k, prefix, LSS_ENOTFOUND);
        return;
    }
    lss_cursor *cur = NULL;
    int rc = lss_list_streams(k->c, k->q->ns, k->q->ns_n, ps.p, ps.n, cs.p,
                              cs.n, limit, &cur);
    if (rc != LSS_OK) {
        backend_error(k, prefix, rc);
        return;
    }
    O_LIT(r, "[");
    const lss_stream_row *row;
    size_t i = 0;
    while (!r->oom && (rc = lss_cursor_next_stream(cur, &row)) == LSS_ROW) {
        if (i++)
            O_LIT(r, ",");
        O_LIT(r, "{\"lastActivity\":");
        o_time(r, row->last_activity_us);
        O_LIT(r, ",\"stream\":");
        o_str(r, row->stream.p, row->stream.n);
        O_LIT(r, ",\"version\":");
        o_int(r, row->version);
        O_LIT(r, "}");
    }
    lss_cursor_close(cur);
    if (r->oom)
        return;
    if (rc != LSS_DONE)
        backend_error(k, prefix, rc);
    else
        O_LIT(r, "]");
}

static void m_ns_categories(call *k)
{
    static const char prefix[] = "Failed to list categories";
    struct lss__rpc *r = k->r;
    if (!has_ns(k)) {
        backend_error(k, prefix, LSS_ENOTFOUND);
        return;
    }
    lss_cursor *cur = NULL;
    int rc = lss_list_categories(k->c, k->q->ns, k->q->ns_n, &cur);
    if (rc != LSS_OK) {
        backend_error(k, prefix, rc);
        return;
    }
    O_LIT(r, "[");
    const lss_category_row *row;
    size_t i = 0;
    while (!r->oom && (rc = lss_cursor_next_category(cur, &row)) == LSS_ROW) {
        if (i++)
            O_LIT(r, ",");
        O_LIT(r, "{\"category\":");
        o_str(r, row->category.p, row->category.n);
        O_LIT(r, ",\"messageCount\":");
        o_int(r, row->message_count);
        O_LIT(r, ",\"streamCount\":");
        o_int(r, row->stream_count);
        O_LIT(r, "}");
    }
    lss_cursor_close(cur);
    if (r->oom)
        return;
    if (rc != LSS_DONE)
        backend_error(k, prefix, rc);
    else
        O_LIT(r, "]");
}

/* ------------------------------------------------------------------------
 * Envelope (PROTOCOL.md 5.1 from step 4 on)
 * ---------------------------------------------------------------------- */

/* stream.write is the hot path: its payloads sit at depth 3, so expanding
 * two levels keeps them single RAW tokens.  Every other method needs three
 * (writeBatch messages, consumerGroup, types); a body whose method cannot
 * be seen at a glance gets three, which is always correct. */
static unsigned expand_for(const char *p, size_t n)
{
    static const char w[] = "\"stream.write\"";
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    if (i >= n || p[i] != '[')
        return 3;
    for (i++; i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r');)
        i++;
    return n - i >= sizeof w - 1 && !memcmp(p + i, w, sizeof w - 1) ? 2 : 3;
}

/* Scan with the session tape, growing it (x4, up to the worst case for the
 * body) only when a body needs more than any before. */
static int scan(struct lss__rpc *r, const char *p, size_t n, unsigned expand,
                lss_json_doc *d, lss_json_err *e)
{
    size_t need = lss__json_tape_need(n);
    for (;;) {
        if (r->tok_cap) {
            int rc = lss__json_scan(d, p, n, expand, r->tok, r->tok_cap, e);
            if (rc != LSS_ENOSPACE)
                return rc;
            if (r->tok_cap >= need)
                return LSS_EINTERNAL; /* cannot happen: need always suffices */
        }
        size_t cap = r->tok_cap ? r->tok_cap * 4 : TAPE_MIN;
        if (cap > need)
            cap = need;
        if (cap > SIZE_MAX / sizeof *r->tok)
            return LSS_ENOMEM;
        /* The old tape holds nothing worth keeping: no realloc copy. */
        lss_json_tok *t = lss__malloc(r->a, cap * sizeof *t);
        if (!t)
            return LSS_ENOMEM;
        lss__free(r->a, r->tok);
        r->tok = t;
        r->tok_cap = cap;
    }
}

static int method_id(call *k, const lss_json_tok *name)
{
    for (int m = LSS_RPC_SYS_VERSION; m < LSS_RPC_METHOD_COUNT; m++) {
        const char *s = lss_rpc_method_name(m);
        if (lss__json_str_equal(&k->d, name, s, strlen(s)))
            return m;
    }
    return LSS_RPC_UNKNOWN;
}

static void m_sys_version(call *k)
{
    O_LIT(k->r, "\"" LSS_PROTOCOL_VERSION "\"");
}

static void m_sys_health(call *k)
{
    O_LIT(k->r, "{\"backend\":\"unknown\",\"connections\":0,\"status\":\"ok\"}");
}

/* Every method but the two writes, by LSS_RPC_* id. */
static void (*const answer[LSS_RPC_METHOD_COUNT])(call *) = {
    [LSS_RPC_SYS_VERSION] = m_sys_version,
    [LSS_RPC_SYS_HEALTH] = m_sys_health,
    [LSS_RPC_STREAM_GET] = m_stream_get,
    [LSS_RPC_STREAM_LAST] = m_stream_last,
    [LSS_RPC_STREAM_VERSION] = m_stream_version,
    [LSS_RPC_CATEGORY_GET] = m_category_get,
    [LSS_RPC_NS_CREATE] = m_ns_create,
    [LSS_RPC_NS_DELETE] = m_ns_delete,
    [LSS_RPC_NS_LIST] = m_ns_list,
    [LSS_RPC_NS_INFO] = m_ns_info,
    [LSS_RPC_NS_STREAMS] = m_ns_streams,
    [LSS_RPC_NS_CATEGORIES] = m_ns_categories,
};

static void malformed(call *k, const char *why)
{
    struct lss__rpc *r = k->r;
    error_begin(k, 400, "INVALID_REQUEST", "Malformed JSON request", 22);
    O_LIT(r, ",\"details\":{\"error\":");
    o_str(r, why, strlen(why));
    O_LIT(r, "}");
    error_end(k);
}

/* PROTOCOL.md 5.1 steps 4-9: parse, find the method, collect the
 * arguments.  Returns 1 with q->method, k->arg and k->nargs set, or 0 when
 * the request has been answered. */
static int envelope(call *k)
{
    struct lss__rpc *r = k->r;
    lss_rpc_req *q = k->q;
    q->method = LSS_RPC_INVALID;
    if (!q->body && q->body_n) {
        error_msg(k, 400, "INVALID_REQUEST", "request body is NULL");
        return 0;
    }
    if (q->body_n > LSS_JSON_MAX_INPUT) {
        malformed(k, "input too large");
        return 0;
    }
    lss_json_err e;
    int rc = scan(r, q->body, q->body_n, expand_for(q->body, q->body_n),
                  &k->d, &e);
    if (rc == LSS_EJSON) {
        malformed(k, e.msg);
        return 0;
    }
    if (rc != LSS_OK) {
        if (rc == LSS_ENOMEM)
            oom(k);
        else
            error_msg(k, 500, "INTERNAL_ERROR", lss_strerror(rc));
        return 0;
    }
    const lss_json_tok *root = lss__json_root(&k->d);
    if (!is_type(root, LSS_JSON_ARRAY) && !is_type(root, LSS_JSON_NULL)) {
        malformed(k, "request body must be a JSON array");
        return 0;
    }
    if (is_type(root, LSS_JSON_NULL) || root->count == 0) {
        bad(k, "Missing method name");
        return 0;
    }
    lss_json_iter it;
    lss__json_iter_init(&it, &k->d, root);
    const lss_json_tok *name = lss__json_iter_next(&it, NULL);
    if (!is_type(name, LSS_JSON_STRING)) {
        bad(k, "Method name must be a string");
        return 0;
    }
    q->method = method_id(k, name);
    if (q->method == LSS_RPC_UNKNOWN) {
        lss_span s;
        if (str_of(k, name, &s)) {
            oom(k);
            return 0;
        }
        tmp_reset(r);
        tmp_addz(r, "Unknown method: ");
        tmp_add(r, s.p, s.n);
        error_tmp(k, 404, "METHOD_NOT_FOUND");
        return 0;
    }
    k->nargs = root->count - 1u;
    for (size_t i = 0; i < LSS_ARRAY_LEN(k->arg); i++)
        k->arg[i] = lss__json_iter_next(&it, NULL);
    return 1;
}

enum { SERVED, QUEUED, DEFERRED };

/* Serve one request.  Returns QUEUED when it is a write waiting in the
 * queue, DEFERRED when it is to be served again after the batch's writes
 * (may_defer), SERVED when it has been answered (resp_end is the
 * caller's). */
static int serve(call *k, lss_rpc_req *reqs, int may_defer)
{
    if (!envelope(k))
        return SERVED;
    int m = k->q->method;
    if (k->q->flags & LSS_RPC_NULL_STORE) {
        O_LIT(k->r, "{\"globalPosition\":1,\"position\":0}");
        return SERVED;
    }
    if (m == LSS_RPC_STREAM_WRITE)
        return m_stream_write(k) ? QUEUED : SERVED;
    if (m == LSS_RPC_STREAM_WRITE_BATCH)
        return m_stream_write_batch(k) ? QUEUED : SERVED;
    if (may_defer && (k->q->flags & LSS_RPC_MAY_DEFER))
        return DEFERRED;
    /* Anything else may read what the queued writes are about to write.
     * The flush answers them, so this response starts after theirs. */
    flush(k->c, k->r, reqs);
    resp_begin(k);
    if (m >= 0 && m < LSS_RPC_METHOD_COUNT && answer[m])
        answer[m](k);
    else
        error_msg(k, 500, "INTERNAL_ERROR", "unhandled method");
    return SERVED;
}

static void fail_all(lss_rpc_req *reqs, size_t n, const char *body)
{
    for (size_t i = 0; reqs && i < n; i++) {
        reqs[i].status = 500;
        reqs[i].method = LSS_RPC_INVALID;
        reqs[i].resp = body;
        reqs[i].resp_n = strlen(body);
    }
}

/* Give back what an unusually large request left behind (a 100 MB body
 * can grow the tape to hundreds of MB); ordinary requests never reach the
 * limit, so the steady state still makes no allocations. */
#define RPC_KEEP_BYTES ((size_t)8 << 20)

static void trim(lss_conn *c, struct lss__rpc *r)
{
    if (r->out.cap > RPC_KEEP_BYTES)
        lss__buf_shrink_to(&r->out, 0);
    if (r->tmp.cap > RPC_KEEP_BYTES)
        lss__buf_shrink_to(&r->tmp, 0);
    if (r->tok_cap * sizeof *r->tok > RPC_KEEP_BYTES) {
        lss__free(r->a, r->tok);
        r->tok = NULL;
        r->tok_cap = 0;
    }
    if (lss__arena_held(&r->arena) > RPC_KEEP_BYTES)
        lss__arena_trim(&r->arena);
    lss__conn_trim(c, RPC_KEEP_BYTES);
}

/* A fresh call for reqs[i], its response begun. */
static void call_begin(call *k, lss_conn *c, struct lss__rpc *r,
                       lss_rpc_req *reqs, size_t i)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->r = r;
    k->q = &reqs[i];
    k->idx = i;
    resp_begin(k);
}

int lss_rpc_batch(lss_conn *c, lss_rpc_req *reqs, size_t n)
{
    if (!c || (!reqs && n)) {
        fail_all(reqs, n, EINVAL_BODY);
        return LSS_EINVAL;
    }
    if (n == 0)
        return LSS_OK;
    if (c->cur.open) {
        fail_all(reqs, n, MISUSE_BODY);
        return lss__err(c, LSS_EMISUSE, "close the open cursor first");
    }
    struct lss__rpc *r = rpc_get(c);
    slot *slots = r ? grow(r->a, r->slot, &r->slot_cap, n, sizeof *slots) : NULL;
    if (!slots) {
        fail_all(reqs, n, OOM_BODY);
        return LSS_ENOMEM;
    }
    r->slot = slots;
    lss__buf_clear(&r->out);
    lss__buf_clear(&r->tmp);
    lss__arena_reset(&r->arena);
    trim(c, r);
    r->ap_n = r->mi_n = 0;
    size_t deferred = 0;
    for (size_t i = 0; i < n; i++) {
        call k;
        call_begin(&k, c, r, reqs, i);
        int st = serve(&k, reqs, 1);
        r->slot[i].deferred = st == DEFERRED;
        if (st == DEFERRED)
            deferred++;
        else if (st == SERVED)
            resp_end(&k);
    }
    flush(c, r, reqs);
    for (size_t i = 0; deferred && i < n; i++) {
        if (!r->slot[i].deferred)
            continue;
        deferred--;
        call k;
        call_begin(&k, c, r, reqs, i);
        serve(&k, reqs, 0);
        resp_end(&k);
    }
    for (size_t i = 0; i < n; i++) {
        const slot *s = &r->slot[i];
        reqs[i].resp = s->fixed ? s->fixed : r->out.p + s->off;
        reqs[i].resp_n = s->fixed ? strlen(s->fixed) : s->len;
    }
    return LSS_OK;
}

int lss_rpc_call(lss_conn *c, lss_rpc_req *req)
{
    if (!req)
        return LSS_EINVAL;
    return lss_rpc_batch(c, req, 1);
}
