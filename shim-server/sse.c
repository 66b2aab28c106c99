/* sse.c — /subscribe (PROTOCOL.md section 8): parameters, the
 * subscription (registered before its replay, by lss_subscribe), headers and
 * ": ready" at once, then one chunk per poke.  Output per connection is
 * bounded: a subscriber whose socket does not take its pokes is closed
 * abortively and counted, never silently skipped.
 *
 * Every subscription of the loop shares one lss_notifier: a publish to
 * 10,000 idle subscribers sets one descriptor readable, and the loop walks
 * the notifier's ready list, writing all of a subscriber's pending pokes
 * with one send().  It serves a bounded slice per turn, so the writes that
 * feed the subscribers are read and committed between slices instead of
 * waiting for a whole fan-out; a subscriber not yet reached picks up the
 * pokes committed meanwhile in the same send. */
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define SSE_OUT_MAX ((size_t)1 << 20)
#define SSE_REPLAY 1000
/* Formatted pokes kept for the next subscriber (direct-mapped by global
 * position): with N subscribers of one namespace each poke is formatted
 * once instead of N times.  Longer events are formatted every time. */
#define CACHE_SLOTS 1024
#define CACHE_TEXT 224

typedef struct poke_text {
    int64_t position, global_position;
    size_t stream_n;
    char stream[96];
    size_t n;          /* bytes of the event; 0 = empty slot */
    char text[CACHE_TEXT];
} poke_text;

/* One event loop per process (server_run). */
static struct {
    lss_notifier *nt;
    evsrc src;
    size_t nsubs;      /* open subscriptions of the loop */
    poke_text *cache;  /* CACHE_SLOTS, or NULL */
} g_loop;

static const char TEXT[] = "text/plain; charset=utf-8";

/* Base-10 int64 with an optional sign (Go's strconv.ParseInt(s, 10, 64)). */
static int parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* An absent or empty parameter is 0; anything else must parse.  Spaces
 * around the number are ignored: "+5" in a query decodes to " 5". */
static int int_param(const char *q, size_t qn, const char *key, char *tmp,
                     int64_t *out)
{
    size_t n = 0;
    *out = 0;
    if (!http_query_get(q, qn, key, tmp, &n) || !n)
        return 0;
    const char *p = tmp;
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return parse_i64(p, n, out);
}

static void bad_request(server *s, conn *c, const char *msg)
{
    conn_respond(s, c, 400, TEXT, NULL, msg, strlen(msg));
}

/* Space left under the bound, after trying to send what is queued. */
static int room_for(server *s, conn *c, size_t n)
{
    if (conn_pending(c) + n <= SSE_OUT_MAX)
        return 1;
    if (conn_flush(s, c) != 0)
        return 0;
    return conn_pending(c) + n <= SSE_OUT_MAX;
}

static void overflow(server *s, conn *c)
{
    c->sse_reason = SD_OVERFLOW;
    conn_close(s, c, 1);
}

/* The event text of p (PROTOCOL.md 8.5) into ev (96 + 6 * stream.n
 * bytes); returns its length. */
static size_t format_poke(char *ev, const lss_poke *p)
{
    char *o = ev;
    memcpy(o, "event: poke\ndata: {\"stream\":", 28);
    o += 28;
    o += json_str(o, p->stream.p, p->stream.n);
    o += sprintf(o, ",\"position\":%lld,\"globalPosition\":%lld}\n\n",
                 (long long)p->position, (long long)p->global_position);
    return (size_t)(o - ev);
}

/* The cached text of p, formatting it on a miss; NULL when p is too long
 * for the cache. */
static const poke_text *cached_poke(const lss_poke *p)
{
    if (!g_loop.cache || p->stream.n > sizeof g_loop.cache->stream ||
        96 + 6 * p->stream.n > CACHE_TEXT)
        return NULL;
    poke_text *t = &g_loop.cache[(uint64_t)p->global_position % CACHE_SLOTS];
    if (t->n && t->global_position == p->global_position &&
        t->position == p->position && t->stream_n == p->stream.n &&
        !memcmp(t->stream, p->stream.p, p->stream.n))
        return t;
    t->position = p->position;
    t->global_position = p->global_position;
    t->stream_n = p->stream.n;
    memcpy(t->stream, p->stream.p, p->stream.n);
    t->n = format_poke(t->text, p);
    return t;
}

static int put_poke(server *s, conn *c, const lss_poke *p)
{
    const poke_text *t = cached_poke(p);
    if (t) {
        if (!room_for(s, c, t->n + 16))
            return c->dead ? LSS_ECLOSED : LSS_EOVERFLOW;
        return conn_chunk(c, t->text, t->n) != 0 ? LSS_ENOMEM : LSS_OK;
    }
    char small[1024];
    size_t cap = 96 + 6 * p->stream.n;
    char *ev = cap <= sizeof small ? small : malloc(cap);
    if (!ev)
        return LSS_ENOMEM;
    size_t n = format_poke(ev, p);
    int rc = LSS_OK;
    if (!room_for(s, c, n + 16))
        rc = c->dead ? LSS_ECLOSED : LSS_EOVERFLOW;
    else if (conn_chunk(c, ev, n) != 0)
        rc = LSS_ENOMEM;
    if (ev != small)
        free(ev);
    return rc;
}

void sse_on_sub(server *s, conn *c)
{
    if (!c->sub || c->dead)
        return;
    lss_poke p;
    int rc, sent = 0;
    while ((rc = lss_sub_next(c->sub, &p)) == LSS_ROW) {
        rc = put_poke(s, c, &p);
        if (rc != LSS_OK)
            break;
        metrics_sse_poke();
        sent++;
    }
    if (c->dead)
        return;
    if (rc == LSS_EOVERFLOW) {
        overflow(s, c);
        return;
    }
    if (rc != LSS_AGAIN && rc != LSS_OK) {
        shim_log(LOG_WARN, "Subscription failed", "error", lss_strerror(rc),
                 (char *)NULL);
        c->sse_reason = SD_ERROR;
        conn_close(s, c, 1);
        return;
    }
    if (sent && conn_flush(s, c) == 0)
        conn_timer(s, c, T_PING);
}

void sse_ping(server *s, conn *c)
{
    if (c->mode != M_SSE) {
        conn_timer(s, c, T_NONE);
        return;
    }
    if (!room_for(s, c, 32)) {
        if (!c->dead)
            overflow(s, c);
        return;
    }
    conn_chunk(c, ": ping\n\n", 8);
    if (conn_flush(s, c) == 0)
        conn_timer(s, c, T_PING);
}

void sse_loop_init(int ep)
{
    g_loop.cache = calloc(CACHE_SLOTS, sizeof *g_loop.cache);
    lss_notifier *nt = NULL;
    int rc = lss_notifier_new(NULL, &nt);
    g_loop.src.type = SRC_NOTIFY;
    g_loop.src.c = NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g_loop.src};
    if (rc == LSS_OK &&
        epoll_ctl(ep, EPOLL_CTL_ADD, lss_notifier_fd(nt), &ev) != 0)
        rc = LSS_EIO;
    if (rc != LSS_OK) {
        shim_log(LOG_WARN, "No shared subscription wake-up", "error",
                 lss_strerror(rc), (char *)NULL);
        lss_notifier_free(nt);
        nt = NULL;
    }
    g_loop.nt = nt;
}

size_t sse_count(void)
{
    return g_loop.nsubs;
}

void sse_loop_free(void)
{
    lss_notifier_free(g_loop.nt);
    g_loop.nt = NULL;
    free(g_loop.cache);
    g_loop.cache = NULL;
}

/* One pass per turn: every ready subscriber once (the list rotates, and
 * has at most nsubs entries), then the turn's requests.  A pass costs
 * about one send() per ready subscriber, and the writes committed during
 * it are answered only at its end, so the writers cannot outrun the
 * fan-out: the pokes of a pass are bounded by the writers' concurrency,
 * and so is the pass. */
void sse_on_ready(server *s)
{
    for (size_t i = 0, n = g_loop.nsubs; i < n; i++) {
        lss_sub *sub;
        void *user;
        if (lss_notifier_next(g_loop.nt, &sub, &user) != LSS_ROW)
            return;
        sse_on_sub(s, user);
    }
}

void sse_end(server *s, conn *c, int reason)
{
    if (!c->sub)
        return;
    if (lss_sub_fd(c->sub) >= 0)
        conn_unwatch_sub(s, c, lss_sub_fd(c->sub));
    lss_sub_close(c->sub);
    c->sub = NULL;
    g_loop.nsubs--;
    metrics_sse_gauge(c->sub_kind, -1);
    metrics_sse_disconnect(reason);
}

int sse_start(server *s, conn *c)
{
    const char *q = c->in.p + c->in_pos + c->req.query.off;
    size_t qn = c->req.query.n;
    char stream[HTTP_HEAD_MAX], cat[HTTP_HEAD_MAX], tmp[HTTP_HEAD_MAX];
    size_t sn = 0, cn = 0, an = 0;
    int has_stream = http_query_get(q, qn, "stream", stream, &sn) && sn > 0;
    int has_cat = http_query_get(q, qn, "category", cat, &cn) && cn > 0;
    int all = http_query_get(q, qn, "all", tmp, &an) && an == 4 &&
              !memcmp(tmp, "true", 4);
    int64_t position, consumer = 0, size = 0;
    if (!has_stream && !has_cat && !all) {
        bad_request(s, c, "Either 'stream', 'category', or 'all=true' parameter required");
        return R_OK;
    }
    if (all && (has_stream || has_cat)) {
        bad_request(s, c, "Cannot combine 'all' with 'stream' or 'category'");
        return R_OK;
    }
    if (has_stream && has_cat) {
        bad_request(s, c, "Cannot specify both 'stream' and 'category'");
        return R_OK;
    }
    if (int_param(q, qn, "position", tmp, &position) != 0) {
        bad_request(s, c, "Invalid position parameter");
        return R_OK;
    }
    if (has_cat) {
        if (int_param(q, qn, "consumer", tmp, &consumer) != 0) {
            bad_request(s, c, "Invalid consumer parameter");
            return R_OK;
        }
        if (int_param(q, qn, "size", tmp, &size) != 0) {
            bad_request(s, c, "Invalid size parameter");
            return R_OK;
        }
        if (consumer < 0 || size < 0 ||
            ((consumer > 0 || size > 0) && (size == 0 || consumer >= size))) {
            bad_request(s, c, "Invalid consumer group: member must be < size");
            return R_OK;
        }
    }
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.position = position;
    o.replay_max = SSE_REPLAY;
    o.queue_bytes = SSE_OUT_MAX;
    if (has_stream) {
        o.kind = LSS_SUB_STREAM;
        o.name = stream;
        o.name_n = sn;
        c->sub_kind = SK_STREAM;
    } else if (has_cat) {
        o.kind = LSS_SUB_CATEGORY;
        o.name = cat;
        o.name_n = cn;
        o.group_member = consumer;
        o.group_size = size;
        c->sub_kind = SK_CATEGORY;
    } else {
        o.kind = LSS_SUB_ALL;
        c->sub_kind = SK_ALL;
    }
    lss_conn *lc = srv_lss(s);
    lss_sub *sub = NULL;
    int rc = lss_subscribe_notify(lc, c->ns, c->ns_n, &o, g_loop.nt, c, &sub);
    if (rc != LSS_OK) {
        /* Registration or replay failed in storage: abort (8.3, 8.11). */
        shim_log(LOG_WARN, "Subscription failed", "error", lss_errmsg(lc),
                 (char *)NULL);
        conn_close(s, c, 1);
        return R_OK;
    }
    if (!g_loop.nt && conn_watch_sub(s, c, lss_sub_fd(sub)) != 0) {
        lss_sub_close(sub);
        shim_log(LOG_WARN, "Subscription failed", "error", strerror(errno),
                 (char *)NULL);
        conn_close(s, c, 1);
        return R_OK;
    }
    c->sub = sub;
    g_loop.nsubs++;
    metrics_sse_gauge(c->sub_kind, 1);
    conn_stream_begin(s, c, 200,
                      "Content-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\n"
                      "Access-Control-Allow-Origin: *\r\n"
                      "X-Accel-Buffering: no\r\n");
    if (c->dead)
        return R_OK;
    c->mode = M_SSE;
    c->sse_reason = SD_CLIENT;
    conn_request_done(s, c);
    conn_chunk(c, ": ready\n\n", 9);
    if (conn_flush(s, c) != 0)
        return R_OK;
    conn_timer(s, c, T_PING);
    sse_on_sub(s, c); /* the replay is queued already */
    return R_OK;
}
