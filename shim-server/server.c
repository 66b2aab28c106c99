/* server.c — the event loop: one epoll loop, non-blocking sockets,
 * keep-alive and pipelining, timers, and the turn's RPC batch.
 *
 * A turn reads every ready socket once, parses every complete request, and
 * queues the /rpc calls in a batch, which goes to the store as one
 * lss_rpc_batch() call (the writes in it commit in one transaction: group
 * commit).  For file stores, and in-memory ones while SSE subscribers are
 * connected (worker_mode()), a worker thread runs it: at the end of a turn,
 * if the worker is idle, the batch goes to it and the loop goes on
 * reading, parsing and sending; calls that arrive meanwhile make the next
 * batch, so the longer a commit takes (an fsync), the larger the next
 * group.  When the worker is done, the loop writes the answers, in order
 * per connection.  Otherwise (and always with --null-store, the cheapest
 * server: the HTTP ceiling W1 is measured against) the batch runs inline
 * at the end of the turn.  A connection with calls not yet answered parses
 * no further non-RPC request, and its socket is not read (its input buffer
 * holds the bodies the worker is reading): on the first readiness it is
 * taken off epoll ("parked") until its calls are answered.
 *
 * SIGTERM/SIGINT are taken by a small thread (sigwait): it shuts the
 * listening socket down at once, wakes the loop, and ends the process if
 * the loop has not finished within the 100 ms of PROTOCOL.md 2.8 (a long
 * storage call cannot delay the exit). */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_INITIAL 8192
#define OUT_HIGH ((size_t)4 << 20) /* stop parsing a connection's requests */
#define BUF_KEEP ((size_t)64 << 10) /* pooled buffers above this are freed */
#define MAX_EVENTS 256
#define HOLD_MAX_US 1000 /* longest wait for a batch to fill */
/* From the signal to _exit() at the latest.  Tearing down a large process
 * (an in-memory store of a few hundred MB) takes tens of milliseconds more,
 * and the whole must stay under PROTOCOL.md 2.8's 100 ms. */
#define EXIT_GRACE_MS 30

static const int64_t TIMER_MS[T_N] = {
    [T_IDLE] = 120000, [T_HEAD] = 30000, [T_BODY] = 30000,
    [T_WRITE] = 60000, [T_PING] = 15000, [T_LINGER] = 2000,
};

/* keep_alive values of put_response: 0 close, 1 keep, KA_ANNOUNCE keep and
 * say so (HTTP/1.0 clients close otherwise). */
#define KA_ANNOUNCE 2

static int ka(const conn *c)
{
    return c->keep_alive ? (c->req.minor == 0 ? KA_ANNOUNCE : 1) : 0;
}

typedef struct slot {
    conn *c;
    uint32_t ns_off, ns_n;
    int keep_alive;
} slot;

/* A batch of /rpc calls: filled by the loop, run by the worker. */
typedef struct batch {
    lss_rpc_req *reqs;
    slot *slots;
    size_t n, cap;
    sbuf nsbuf;
    int rc;
    int64_t t0_us, t1_us;
} batch;

struct server {
    const shim_cfg *cfg;
    lss_db *db;
    lss_conn *lc;
    int ep, lfd, stopfd, spare_fd;
    evsrc src_listen, src_stop;
    int64_t now_ms;
    time_t date_sec;
    char common[160]; /* "Server: ...\r\nDate: ...\r\n" */
    size_t common_n;
    conn *pool;       /* free connections, buffers kept */
    conn *dead;       /* closed this turn, pooled at its end */
    conn *work;       /* to process this turn */
    conn *ready;      /* to process next turn */
    conn live;        /* sentinel of the open connections */
    conn thead[T_N];  /* sentinels of the timer lists */
    batch bt[2];
    batch *fill;      /* calls being queued */
    batch *run;       /* on the worker (or done, not yet answered) */
    unsigned batch_seq;
    int expect;         /* calls lately seen in one batch */
    int64_t hold_until; /* us: waiting for them since the worker is free */
    int64_t last_run;   /* us the last batch took */
    unsigned rpc_flags;
    int stopping;
    /* The store worker (see worker_mode(); absent with --null-store). */
    lss_conn *wc;
    pthread_t wthread;
    int wmode;        /* worker_mode() */
    int wstarted;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    batch *wjob;      /* handed over, not yet taken */
    int wquit;
    int donefd;       /* eventfd: the worker finished s->run */
    evsrc src_done;
};

/* The signal thread outlives server_run() so that its deadline also covers
 * closing the store; it touches only these. */
static struct {
    pthread_t thread;
    int started;
    atomic_int lfd;
    int stopfd;
    atomic_int ending; /* server_signals_end asked the thread to stop */
} g_sig;

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

char *sbuf_reserve(sbuf *b, size_t n)
{
    if (!b->p || b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return NULL;
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

int sbuf_add(sbuf *b, const void *p, size_t n)
{
    if (!n)
        return 0;
    char *o = sbuf_reserve(b, n);
    if (!o)
        return -1;
    memcpy(o, p, n);
    b->len += n;
    return 0;
}

void sbuf_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int64_t shim_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t shim_now_ms(const server *s)
{
    return s->now_ms;
}

const shim_cfg *srv_cfg(const server *s)
{
    return s->cfg;
}

lss_conn *srv_lss(const server *s)
{
    return s->lc;
}

size_t conn_pending(const conn *c)
{
    return c->out.len - c->out.off;
}

static void tick(server *s)
{
    s->now_ms = shim_now_us() / 1000;
    time_t t = time(NULL);
    if (t == s->date_sec)
        return;
    s->date_sec = t;
    char d[30];
    http_date(t, d);
    s->common_n = (size_t)snprintf(s->common, sizeof s->common,
                                   "Server: libstreamstore/%s\r\nDate: %s\r\n",
                                   lss_version_string(), d);
}

static char *put_u64(char *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

static char *put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_status(char *o, int status)
{
    switch (status) {
    case 200:
        memcpy(o, "HTTP/1.1 200 OK\r\n", 17);
        return o + 17;
    default:
        o = put_str(o, "HTTP/1.1 ");
        o = put_u64(o, (uint64_t)status);
        *o++ = ' ';
        o = put_str(o, http_reason(status));
        *o++ = '\r';
        *o++ = '\n';
        return o;
    }
}

/* ------------------------------------------------------------------------
 * Lists
 * ---------------------------------------------------------------------- */

static void timer_unlink(conn *c)
{
    if (c->tlist == T_NONE)
        return;
    c->tprev->tnext = c->tnext;
    c->tnext->tprev = c->tprev;
    c->tprev = c->tnext = NULL;
    c->tlist = T_NONE;
}

/* Every list has one duration, so appending keeps it sorted by deadline. */
void conn_timer(server *s, conn *c, int list)
{
    timer_unlink(c);
    if (list == T_NONE || c->dead)
        return;
    conn *h = &s->thead[list];
    c->deadline_ms = s->now_ms + TIMER_MS[list];
    c->tprev = h->tprev;
    c->tnext = h;
    h->tprev->tnext = c;
    h->tprev = c;
    c->tlist = list;
}

static void push_work(server *s, conn *c)
{
    if (c->in_work || c->dead)
        return;
    c->in_work = 1;
    c->next_work = s->work;
    s->work = c;
}

static void push_ready(server *s, conn *c)
{
    if (c->in_work || c->dead)
        return;
    c->in_work = 1;
    c->next_work = s->ready;
    s->ready = c;
}

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */

static conn *conn_new(server *s)
{
    conn *c = s->pool;
    if (c) {
        s->pool = c->next_free;
    } else {
        c = calloc(1, sizeof *c);
        if (!c)
            return NULL;
    }
    sbuf in = c->in, out = c->out;
    memset(c, 0, sizeof *c);
    c->in = in;
    c->out = out;
    c->in.len = c->out.len = c->out.off = 0;
    c->fd = -1;
    c->src_sock.type = SRC_SOCK;
    c->src_sock.c = c;
    c->src_sub.type = SRC_SUB;
    c->src_sub.c = c;
    c->route = EP_OTHER;
    c->lnext = s->live.lnext;
    c->lprev = &s->live;
    s->live.lnext->lprev = c;
    s->live.lnext = c;
    return c;
}

static void conn_mask(server *s, conn *c)
{
    if (c->dead || c->parked)
        return;
    uint32_t m = 0;
    int want_in = !c->rd_eof;
    if (c->mode == M_EXPORT || (c->mode == M_HTTP && conn_pending(c) > OUT_HIGH))
        want_in = 0;
    if (want_in)
        m |= EPOLLIN;
    if (conn_pending(c))
        m |= EPOLLOUT;
    if (m == c->ev_mask)
        return;
    struct epoll_event ev = {.events = m, .data.ptr = &c->src_sock};
    if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->ev_mask = m;
}

void conn_close(server *s, conn *c, int abort)
{
    if (c->dead)
        return;
    if (c->sub)
        sse_end(s, c, c->sse_reason);
    stream_state_free(c);
    if (abort) {
        struct linger l = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd);
    c->fd = -1;
    c->dead = 1;
    timer_unlink(c);
    c->lprev->lnext = c->lnext;
    c->lnext->lprev = c->lprev;
    c->next_free = s->dead;
    s->dead = c;
}

/* Graceful close once everything is sent: half-close, then drain what the
 * client still sends for a moment, so that it reads our answer instead of
 * a reset caused by unread bytes. */
static void conn_linger(server *s, conn *c)
{
    if (c->mode == M_LINGER)
        return;
    if (c->rd_eof) {
        conn_close(s, c, 0);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->mode = M_LINGER;
    c->in_pos = c->in.len = 0;
    conn_timer(s, c, T_LINGER);
    conn_mask(s, c);
}

int conn_flush(server *s, conn *c)
{
    if (c->dead)
        return -1;
    int progress = 0;
    while (c->out.off < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out.off += (size_t)w;
            progress = 1;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        c->sse_reason = SD_CLIENT;
        conn_close(s, c, 0);
        return -1;
    }
    if (c->out.off == c->out.len) {
        c->out.off = c->out.len = 0;
        if (c->closing && c->mode == M_HTTP && !c->n_pending) {
            conn_linger(s, c);
            return c->dead ? -1 : 0;
        }
    } else if (progress && c->mode == M_HTTP) {
        conn_timer(s, c, T_WRITE);
    }
    conn_mask(s, c);
    return 0;
}

void conn_set_close(conn *c)
{
    c->keep_alive = 0;
}

void conn_request_done(server *s, conn *c)
{
    (void)s;
    if (!c->keep_alive) {
        c->closing = 1;
        c->in_pos = c->in.len;
    } else {
        c->in_pos += c->body.rpos;
    }
    c->rs = RS_HEAD;
    c->scanned = 0;
    c->continued = 0;
}

static void log_request(conn *c, int status)
{
    if (!shim_log_enabled(LOG_DEBUG))
        return;
    char method[16], path[256], st[8], dur[32];
    const char *base = c->in.p + c->in_pos;
    snprintf(method, sizeof method, "%.*s", (int)c->req.method.n,
             base + c->req.method.off);
    snprintf(path, sizeof path, "%.*s", (int)c->req.path.n,
             base + c->req.path.off);
    snprintf(st, sizeof st, "%d", status);
    snprintf(dur, sizeof dur, "%.3fms",
             (double)(shim_now_us() - c->t_start_us) / 1000.0);
    shim_log(LOG_DEBUG, "HTTP request", "method", method, "path", path,
             "status", st, "duration", dur, (char *)NULL);
}

static int put_response(server *s, conn *c, int ep, int status,
                        const char *ctype, const char *headers,
                        const char *body, size_t n, int keep_alive,
                        int is_head)
{
    size_t hl = headers ? strlen(headers) : 0;
    size_t need = 64 + s->common_n + (ctype ? strlen(ctype) + 16 : 0) + 40 +
                  hl + 24 + (is_head ? 0 : n);
    char *o = sbuf_reserve(&c->out, need);
    if (!o)
        return -1;
    char *start = o;
    o = put_status(o, status);
    memcpy(o, s->common, s->common_n);
    o += s->common_n;
    if (ctype) {
        o = put_str(o, "Content-Type: ");
        o = put_str(o, ctype);
        *o++ = '\r';
        *o++ = '\n';
    }
    memcpy(o, "Content-Length: ", 16);
    o = put_u64(o + 16, n);
    *o++ = '\r';
    *o++ = '\n';
    if (hl) {
        memcpy(o, headers, hl);
        o += hl;
    }
    if (!keep_alive)
        o = put_str(o, "Connection: close\r\n");
    else if (keep_alive == KA_ANNOUNCE)
        o = put_str(o, "Connection: keep-alive\r\n");
    *o++ = '\r';
    *o++ = '\n';
    if (!is_head && n) {
        memcpy(o, body, n);
        o += n;
    }
    c->out.len += (size_t)(o - start);
    metrics_http(ep, status);
    return 0;
}

void conn_respond(server *s, conn *c, int status, const char *ctype,
                  const char *headers, const char *body, size_t n)
{
    log_request(c, status);
    if (put_response(s, c, c->route, status, ctype, headers, body, n, ka(c),
                     c->is_head) != 0) {
        conn_close(s, c, 1);
        return;
    }
    conn_request_done(s, c);
}

void conn_stream_begin(server *s, conn *c, int status, const char *headers)
{
    c->chunked = c->req.minor >= 1;
    if (!c->chunked)
        c->keep_alive = 0;
    log_request(c, status);
    size_t hl = headers ? strlen(headers) : 0;
    char *o = sbuf_reserve(&c->out, 128 + s->common_n + hl);
    if (!o) {
        conn_close(s, c, 1);
        return;
    }
    char *start = o;
    o = put_status(o, status);
    memcpy(o, s->common, s->common_n);
    o += s->common_n;
    memcpy(o, headers, hl);
    o += hl;
    o = put_str(o, c->keep_alive ? "Connection: keep-alive\r\n"
                                 : "Connection: close\r\n");
    if (c->chunked)
        o = put_str(o, "Transfer-Encoding: chunked\r\n");
    *o++ = '\r';
    *o++ = '\n';
    c->out.len += (size_t)(o - start);
    metrics_http(c->route, status);
}

int conn_chunk(conn *c, const char *p, size_t n)
{
    char *o = sbuf_reserve(&c->out, n + 24);
    if (!o)
        return -1;
    char *start = o;
    if (c->chunked) {
        o += snprintf(o, 20, "%zx\r\n", n);
    }
    memcpy(o, p, n);
    o += n;
    if (c->chunked) {
        *o++ = '\r';
        *o++ = '\n';
    }
    c->out.len += (size_t)(o - start);
    return 0;
}

void conn_stream_end(server *s, conn *c)
{
    if (c->chunked)
        sbuf_add(&c->out, "0\r\n\r\n", 5);
    else
        c->closing = 1;
    c->mode = M_HTTP;
    c->chunked = 0;
    if (!c->keep_alive)
        c->closing = 1;
    conn_timer(s, c, T_WRITE);
    if (conn_flush(s, c) == 0 && !c->closing && c->in.len > c->in_pos)
        push_ready(s, c);
}

int conn_watch_sub(server *s, conn *c, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->src_sub};
    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
}

void conn_unwatch_sub(server *s, conn *c, int fd)
{
    (void)c;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, fd, NULL);
}

/* ------------------------------------------------------------------------
 * Reading and processing
 * ---------------------------------------------------------------------- */

/* Take c off epoll while its calls are unanswered: reading could move its
 * input buffer under the worker, and a hang-up would be reported again and
 * again.  batch_done() puts it back. */
static void conn_park(server *s, conn *c)
{
    if (c->parked)
        return;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->parked = 1;
    c->ev_mask = 0;
}

static void conn_unpark(server *s, conn *c)
{
    if (!c->parked || c->dead)
        return;
    c->parked = 0;
    uint32_t m = EPOLLIN;
    struct epoll_event ev = {.events = m, .data.ptr = &c->src_sock};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_close(s, c, 1);
        return;
    }
    c->ev_mask = m;
    conn_mask(s, c);
}

static void conn_read(server *s, conn *c)
{
    if (c->n_pending) {
        conn_park(s, c);
        return;
    }
    if (c->mode == M_HTTP && c->in_pos) {
        size_t rest = c->in.len - c->in_pos;
        if (rest)
            memmove(c->in.p, c->in.p + c->in_pos, rest);
        c->in.len = rest;
        c->in_pos = 0;
    }
    size_t want = 4096;
    if (c->mode == M_HTTP && c->rs == RS_BODY && c->body.kind == HTTP_BODY_LENGTH &&
        c->body.left > want)
        want = c->body.left > ((size_t)1 << 20) ? (size_t)1 << 20 : c->body.left;
    int discard = c->mode == M_SSE || c->mode == M_LINGER;
    if (discard) {
        c->in.len = c->in_pos = 0;
    }
    if (c->in.cap < IN_INITIAL || c->in.cap - c->in.len < want / 2) {
        if (!sbuf_reserve(&c->in, c->in.cap < IN_INITIAL ? IN_INITIAL : want)) {
            conn_close(s, c, 1);
            return;
        }
    }
    ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (r > 0) {
        if (discard)
            return; /* SSE clients and lingering ones have nothing to say */
        int fresh = c->in.len == c->in_pos && c->rs == RS_HEAD;
        c->in.len += (size_t)r;
        if (c->mode == M_HTTP) {
            if (fresh)
                conn_timer(s, c, T_HEAD);
            else if (c->rs == RS_BODY)
                conn_timer(s, c, T_BODY);
        } else if (c->mode == M_IMPORT) {
            conn_timer(s, c, T_BODY);
        }
        push_work(s, c);
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* EOF or error: the client is gone or has said all it will. */
    c->rd_eof = 1;
    c->sse_reason = SD_CLIENT;
    if (r == 0 && c->mode == M_EXPORT) {
        conn_mask(s, c); /* a half-close: keep sending */
        return;
    }
    int idle = c->in.len == c->in_pos && c->rs == RS_HEAD && !conn_pending(c);
    if (r < 0 || c->mode != M_HTTP || (idle && !c->n_pending)) {
        conn_close(s, c, r < 0);
        return;
    }
    /* Answer what was sent before the half-close, then close. */
    conn_mask(s, c);
    push_work(s, c);
}

static void send_error(server *s, conn *c, int status)
{
    char body[512];
    size_t n;
    switch (status) {
    case 431:
        n = json_error(body, sizeof body, "HEADERS_TOO_LARGE",
                       "Request header fields too large", NULL, NULL, 0);
        break;
    case 413: {
        char msg[80];
        snprintf(msg, sizeof msg, "Request body exceeds %lld bytes",
                 s->cfg->max_body);
        n = json_error(body, sizeof body, "PAYLOAD_TOO_LARGE", msg, NULL, NULL, 0);
        break;
    }
    case 501:
        n = json_error(body, sizeof body, "NOT_IMPLEMENTED",
                       "Unsupported Transfer-Encoding", NULL, NULL, 0);
        break;
    default:
        n = json_error(body, sizeof body, "INVALID_REQUEST",
                       "Malformed HTTP request", NULL, NULL, 0);
        break;
    }
    conn_set_close(c);
    conn_respond(s, c, status, "application/json", NULL, body, n);
}

static void conn_process(server *s, conn *c)
{
    while (!c->dead && c->mode == M_HTTP && !c->closing) {
        if (conn_pending(c) > OUT_HIGH)
            break;
        char *base = c->in.p + c->in_pos;
        size_t avail = c->in.len - c->in_pos;
        switch (c->rs) {
        case RS_HEAD: {
            if (!c->scanned)
                while (avail && (*base == '\r' || *base == '\n')) {
                    base++;
                    avail--;
                    c->in_pos++;
                }
            if (!avail)
                goto out;
            int rc = http_parse_head(base, avail, &c->scanned, &c->req);
            if (rc == LSS_AGAIN)
                goto out;
            if (rc != LSS_OK) {
                c->err_status = c->req.status;
                c->route = EP_OTHER;
                c->is_head = 0;
                c->rs = RS_ERROR;
                continue;
            }
            http_body_init(&c->body, &c->req);
            const http_req *r = &c->req;
            c->keep_alive = r->minor >= 1 ? !r->conn_close
                                          : r->conn_keep_alive && !r->conn_close;
            c->is_head = http_ieq(base + r->method.off, r->method.n, "head") &&
                         !memcmp(base + r->method.off, "HEAD", 4);
            c->route = EP_OTHER;
            c->t_start_us = shim_log_enabled(LOG_DEBUG) ? shim_now_us() : 0;
            c->rs = RS_ROUTE;
            continue;
        }
        case RS_ERROR:
            if (c->n_pending)
                goto out;
            send_error(s, c, c->err_status);
            continue;
        case RS_ROUTE:
            if (routes_on_head(s, c) == R_DEFER)
                goto out;
            continue;
        case RS_BODY: {
            int rc = http_body_feed(&c->body, base, avail,
                                    (uint64_t)s->cfg->max_body);
            if (rc == LSS_AGAIN)
                goto out;
            if (rc != LSS_OK) {
                c->err_status = rc == LSS_ETOOBIG ? 413 : 400;
                c->rs = RS_ERROR;
                continue;
            }
            c->rs = RS_DISPATCH;
            continue;
        }
        case RS_DISPATCH:
            if (routes_dispatch(s, c) == R_DEFER)
                goto out;
            continue;
        default:
            goto out;
        }
    }
out:
    if (c->dead)
        return;
    if (c->mode == M_IMPORT)
        import_feed(s, c);
    if (c->dead)
        return;
    if (c->rd_eof && c->mode == M_HTTP)
        c->closing = 1;
    if (!c->n_pending)
        conn_flush(s, c);
}

/* The timer list a connection belongs on after a turn's work on it. */
static void conn_retime(server *s, conn *c)
{
    if (c->dead)
        return;
    int want;
    switch (c->mode) {
    case M_HTTP:
        if (conn_pending(c))
            want = T_WRITE;
        else if (c->rs == RS_BODY)
            want = T_BODY;
        else if (c->in.len > c->in_pos)
            want = T_HEAD;
        else
            want = T_IDLE;
        break;
    case M_IMPORT:
        want = T_BODY;
        break;
    case M_EXPORT:
        want = T_NONE;
        break;
    default:
        return; /* SSE and linger manage their own */
    }
    if (want != c->tlist)
        conn_timer(s, c, want);
}

/* ------------------------------------------------------------------------
 * The RPC batch
 * ---------------------------------------------------------------------- */

int batch_add(server *s, conn *c, const char *body, size_t n)
{
    batch *b = s->fill;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        lss_rpc_req *r = realloc(b->reqs, cap * sizeof *r);
        if (!r)
            return -1;
        b->reqs = r;
        slot *sl = realloc(b->slots, cap * sizeof *sl);
        if (!sl)
            return -1;
        b->slots = sl;
        b->cap = cap;
    }
    size_t off = b->nsbuf.len;
    if (sbuf_add(&b->nsbuf, c->ns, c->ns_n) != 0)
        return -1;
    lss_rpc_req *r = &b->reqs[b->n];
    memset(r, 0, sizeof *r);
    r->body = body;
    r->body_n = n;
    r->flags = s->rpc_flags;
    slot *sl = &b->slots[b->n];
    sl->c = c;
    sl->ns_off = (uint32_t)off;
    sl->ns_n = (uint32_t)c->ns_n;
    sl->keep_alive = ka(c);
    b->n++;
    c->n_pending++;
    return 0;
}

static int is_write_method(int m)
{
    return m == LSS_RPC_STREAM_WRITE || m == LSS_RPC_STREAM_WRITE_BATCH;
}

static int is_read_method(int m)
{
    return m == LSS_RPC_STREAM_GET || m == LSS_RPC_STREAM_LAST ||
           m == LSS_RPC_STREAM_VERSION || m == LSS_RPC_CATEGORY_GET ||
           m == LSS_RPC_NS_STREAMS || m == LSS_RPC_NS_CATEGORIES;
}

/* Whether /rpc batches run on the worker thread: for stores whose commits
 * wait on the disk (the loop goes on serving while one fsyncs, and the
 * next group fills meanwhile), and for an in-memory store while SSE
 * subscribers are connected (the loop's fan-out passes then overlap the
 * commits).  An in-memory store's batch is CPU work otherwise, and on a
 * small machine that the clients share the hand-offs cost more than the
 * overlap gains (docs/PERFORMANCE.md): it runs inline.  LSS_STORE_THREAD=1
 * / =0 forces either way.  Returns 0 never, 1 always, 2 as just said. */
static int worker_mode(const shim_cfg *cfg)
{
    if (cfg->null_store)
        return 0;
    const char *e = getenv("LSS_STORE_THREAD");
    if (e && (*e == '0' || *e == '1') && !e[1])
        return *e == '1';
    return cfg->is_memory ? 2 : 1;
}

static int use_worker(const server *s)
{
    return s->wstarted && (s->wmode == 1 || sse_count() > 0);
}

static void batch_exec(lss_conn *lc, batch *b)
{
    b->t0_us = shim_now_us();
    b->rc = lss_rpc_batch(lc, b->reqs, b->n);
    b->t1_us = shim_now_us();
}

/* Answer the calls of a batch the store has run. */
static void batch_done(server *s, batch *b)
{
    double dt = (double)(b->t1_us - b->t0_us) / 1e6;
    metrics_batch(b->n);
    for (size_t i = 0; i < b->n; i++) {
        conn *c = b->slots[i].c;
        lss_rpc_req *r = &b->reqs[i];
        int status = r->status ? r->status : 500;
        const char *body = r->resp;
        size_t n = r->resp_n;
        char fallback[512];
        if (!body || !n) {
            status = 500;
            n = json_error(fallback, sizeof fallback, "INTERNAL_ERROR",
                           lss_strerror(b->rc), NULL, NULL, 0);
            body = fallback;
        }
        metrics_rpc(r->method, status);
        if (shim_log_enabled(LOG_DEBUG)) {
            char st[8], dur[32];
            snprintf(st, sizeof st, "%d", status);
            snprintf(dur, sizeof dur, "%.3fms", dt * 1000.0);
            shim_log(LOG_DEBUG, "HTTP request", "method", "POST", "path", "/rpc",
                     "status", st, "rpc", lss_rpc_method_name(r->method),
                     "duration", dur, (char *)NULL);
        }
        if (is_write_method(r->method))
            metrics_write_seconds(dt);
        else if (is_read_method(r->method))
            metrics_read_seconds(dt);
        c->n_pending--;
        if (c->dead)
            continue;
        if (put_response(s, c, EP_RPC, status, "application/json", NULL, body,
                         n, b->slots[i].keep_alive, 0) != 0) {
            conn_close(s, c, 1);
            continue;
        }
        if (!c->n_pending) {
            conn_unpark(s, c);
            if (c->dead)
                continue;
            if (conn_flush(s, c) == 0 && !c->closing && c->in.len > c->in_pos)
                push_ready(s, c);
            conn_retime(s, c);
        }
    }
    b->n = 0;
    b->nsbuf.len = 0;
}

/* Hand the queued calls to the store, if it is free.  A call may be
 * answered after later writes of the batch when nothing later in the batch
 * comes from its connection (the calls of different connections are
 * concurrent), so that the batch's writes commit as one group. */
static void batch_submit(server *s)
{
    batch *b = s->fill;
    if (s->run || !b->n)
        return;
    int worker = use_worker(s);
    if (worker) {
        /* The clients just answered will be back shortly: when more calls
         * were seen together lately than are queued, wait a little for them
         * (at most what the last batch took) so that one commit serves them
         * all -- the store's commit delay (store.c gather()) one level up.
         * A wait that runs out lowers the expectation. */
        if ((int)b->n < s->expect) {
            int64_t now = shim_now_us();
            if (!s->hold_until) {
                int64_t d = s->last_run < HOLD_MAX_US ? s->last_run : HOLD_MAX_US;
                s->hold_until = now + d;
            }
            if (now < s->hold_until)
                return;
            s->expect = (s->expect + (int)b->n) / 2;
        }
        if ((int)b->n > s->expect)
            s->expect = (int)b->n;
    }
    s->hold_until = 0;
    unsigned mark = ++s->batch_seq;
    if (!mark)
        mark = ++s->batch_seq;
    for (size_t i = b->n; i-- > 0;) {
        conn *c = b->slots[i].c;
        b->reqs[i].ns = b->nsbuf.p + b->slots[i].ns_off;
        b->reqs[i].ns_n = b->slots[i].ns_n;
        if (c->batch_mark != mark) {
            c->batch_mark = mark;
            b->reqs[i].flags |= LSS_RPC_MAY_DEFER;
        }
    }
    if (!worker) {
        batch_exec(s->lc, b);
        batch_done(s, b);
        return;
    }
    s->run = b;
    s->fill = b == &s->bt[0] ? &s->bt[1] : &s->bt[0];
    pthread_mutex_lock(&s->wmu);
    s->wjob = b;
    pthread_cond_signal(&s->wcv);
    pthread_mutex_unlock(&s->wmu);
}

static void *worker_main(void *arg)
{
    server *s = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        pthread_mutex_lock(&s->wmu);
        while (!s->wjob && !s->wquit)
            pthread_cond_wait(&s->wcv, &s->wmu);
        batch *b = s->wjob;
        s->wjob = NULL;
        pthread_mutex_unlock(&s->wmu);
        if (!b)
            break;
        batch_exec(s->wc, b);
        uint64_t one = 1;
        while (write(s->donefd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    return NULL;
}

static void worker_done(server *s)
{
    uint64_t v;
    while (read(s->donefd, &v, sizeof v) < 0 && errno == EINTR) {
    }
    batch *b = s->run;
    if (!b)
        return;
    s->run = NULL;
    s->last_run = b->t1_us - b->t0_us;
    batch_done(s, b);
}

static int worker_start(server *s)
{
    s->wmode = worker_mode(s->cfg);
    if (!s->wmode)
        return 0;
    if (lss_conn_open(s->db, &s->wc) != LSS_OK)
        return -1;
    s->donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->donefd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->src_done};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->donefd, &ev) != 0)
        return -1;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcv, NULL);
    if (pthread_create(&s->wthread, NULL, worker_main, s) != 0) {
        pthread_cond_destroy(&s->wcv);
        pthread_mutex_destroy(&s->wmu);
        return -1;
    }
    s->wstarted = 1;
    return 0;
}

/* Let the worker finish what it runs, then stop it.  Unanswered calls are
 * dropped: their connections are closed next. */
static void worker_stop(server *s)
{
    if (s->wstarted) {
        pthread_mutex_lock(&s->wmu);
        s->wquit = 1;
        pthread_cond_signal(&s->wcv);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->wthread, NULL);
        pthread_cond_destroy(&s->wcv);
        pthread_mutex_destroy(&s->wmu);
        s->wstarted = 0;
    }
    for (int k = 0; k < 2; k++) {
        batch *b = &s->bt[k];
        for (size_t i = 0; i < b->n; i++)
            b->slots[i].c->n_pending--;
        b->n = 0;
    }
    s->run = NULL;
    if (s->wc) {
        lss_conn_close(s->wc);
        s->wc = NULL;
    }
}

/* ------------------------------------------------------------------------
 * Accepting, timers
 * ---------------------------------------------------------------------- */

static void do_accept(server *s)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
                /* Out of descriptors: accept and close at once. */
                close(s->spare_fd);
                fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                    close(fd);
                s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            return;
        }
        int one = 1, idle = 30, intvl = 10;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        conn *c = conn_new(s);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->ev_mask = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->src_sock};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(s, c, 1);
            continue;
        }
        conn_timer(s, c, T_IDLE);
    }
}

static int64_t next_timeout_ms(server *s)
{
    int64_t best = -1;
    for (int l = 1; l < T_N; l++) {
        conn *c = s->thead[l].tnext;
        if (c == &s->thead[l])
            continue;
        int64_t d = c->deadline_ms - s->now_ms;
        if (d < 0)
            d = 0;
        if (best < 0 || d < best)
            best = d;
    }
    if (best < 0 || best > 60000)
        best = 60000;
    return best + 1;
}

/* How long epoll may sleep: until the next timer, or the end of a batch
 * hold, or not at all when connections are ready. */
static struct timespec next_timeout(server *s)
{
    int64_t ns = s->ready ? 0 : next_timeout_ms(s) * 1000000;
    if (s->hold_until && !s->ready) {
        int64_t h = (s->hold_until - shim_now_us()) * 1000;
        if (h < 0)
            h = 0;
        if (h < ns)
            ns = h;
    }
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return ts;
}

static void timers_run(server *s)
{
    for (int l = 1; l < T_N; l++) {
        conn *h = &s->thead[l];
        conn *c;
        while ((c = h->tnext) != h && c->deadline_ms <= s->now_ms) {
            if (l == T_PING) {
                sse_ping(s, c); /* re-arms at the tail, or closes */
                continue;
            }
            c->sse_reason = SD_ERROR;
            conn_close(s, c, l == T_WRITE);
        }
    }
}

static void reap(server *s)
{
    /* Closed connections may still sit on the ready list. */
    conn **pp = &s->ready;
    while (*pp) {
        if ((*pp)->dead) {
            (*pp)->in_work = 0;
            *pp = (*pp)->next_work;
        } else {
            pp = &(*pp)->next_work;
        }
    }
    conn *keep = NULL;
    while (s->dead) {
        conn *c = s->dead;
        s->dead = c->next_free;
        if (c->n_pending) {
            /* The worker may still read its input: pooled when answered. */
            c->next_free = keep;
            keep = c;
            continue;
        }
        if (c->in.cap > BUF_KEEP)
            sbuf_free(&c->in);
        if (c->out.cap > BUF_KEEP)
            sbuf_free(&c->out);
        c->next_free = s->pool;
        s->pool = c;
    }
    s->dead = keep;
}

/* ------------------------------------------------------------------------
 * Signals and shutdown
 * ---------------------------------------------------------------------- */

static void *signal_main(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR2) {
            if (atomic_load(&g_sig.ending))
                return NULL;
            continue; /* a stray SIGUSR2 from outside: not ours */
        }
        break;
    }
    shim_log(LOG_INFO, "Shutdown signal received", "signal",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", (char *)NULL);
    /* Free the port now, whatever the loop is doing. */
    int lfd = atomic_load(&g_sig.lfd);
    if (lfd >= 0)
        shutdown(lfd, SHUT_RDWR);
    uint64_t one = 1;
    if (write(g_sig.stopfd, &one, sizeof one) < 0) {
        /* the loop still sees the listening socket fail */
    }
    /* SHIM_EXIT_GRACE_MS lengthens the deadline for runs under valgrind,
     * whose teardown is many times slower. */
    int64_t grace_ms = EXIT_GRACE_MS;
    const char *g = getenv("SHIM_EXIT_GRACE_MS");
    if (g && *g)
        grace_ms = atoll(g);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t end_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec +
                     grace_ms * 1000000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = end_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        if (left <= 0)
            break;
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        int r = sigtimedwait(&set, NULL, &ts);
        if (r == SIGUSR2 && atomic_load(&g_sig.ending))
            return NULL; /* the process is done */
        if (r == SIGTERM || r == SIGINT)
            _exit(0); /* a second signal: at once */
        if (r < 0 && errno == EAGAIN)
            break;
    }
    shim_log(LOG_WARN, "Shutdown deadline reached; exiting", (char *)NULL);
    _exit(0);
}

void server_signals_end(void)
{
    if (!g_sig.started)
        return;
    atomic_store(&g_sig.ending, 1);
    pthread_kill(g_sig.thread, SIGUSR2);
    pthread_join(g_sig.thread, NULL);
    g_sig.started = 0;
    if (g_sig.stopfd >= 0)
        close(g_sig.stopfd);
    g_sig.stopfd = -1;
}

static void shutdown_all(server *s)
{
    atomic_store(&g_sig.lfd, -1);
    if (s->lfd >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
        close(s->lfd);
        s->lfd = -1;
    }
    while (s->live.lnext != &s->live) {
        conn *c = s->live.lnext;
        if ((c->mode == M_SSE || c->mode == M_EXPORT || c->mode == M_IMPORT) &&
            c->chunked) {
            /* End streams cleanly where the socket takes it at once. */
            if (c->mode == M_SSE)
                sbuf_add(&c->out, "0\r\n\r\n", 5);
            if (conn_pending(c))
                (void)!send(c->fd, c->out.p + c->out.off, conn_pending(c),
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        c->sse_reason = SD_SHUTDOWN;
        conn_close(s, c, 0);
    }
    reap(s);
}

static void server_free(server *s)
{
    while (s->pool) {
        conn *c = s->pool;
        s->pool = c->next_free;
        sbuf_free(&c->in);
        sbuf_free(&c->out);
        free(c);
    }
    while (s->dead) { /* only if the loop could not stop the worker */
        conn *c = s->dead;
        s->dead = c->next_free;
        sbuf_free(&c->in);
        sbuf_free(&c->out);
        free(c);
    }
    for (int k = 0; k < 2; k++) {
        free(s->bt[k].reqs);
        free(s->bt[k].slots);
        sbuf_free(&s->bt[k].nsbuf);
    }
    if (s->donefd >= 0)
        close(s->donefd);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    if (s->stopfd >= 0)
        close(s->stopfd);
    if (s->ep >= 0)
        close(s->ep);
}

/* epoll_pwait2 (Linux 5.11) waits with microsecond timeouts, which the
 * batch hold needs; where it is missing (older kernels, valgrind 3.19, some
 * sandboxes answer ENOSYS) wait with epoll_wait, rounding the timeout up to
 * a millisecond. */
static int loop_wait(int ep, struct epoll_event *evs, const struct timespec *to)
{
    static int no_pwait2;
    if (!no_pwait2) {
        int n = epoll_pwait2(ep, evs, MAX_EVENTS, to, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1;
    }
    long long ms = (long long)to->tv_sec * 1000 + (to->tv_nsec + 999999) / 1000000;
    return epoll_wait(ep, evs, MAX_EVENTS, ms > INT_MAX ? INT_MAX : (int)ms);
}

int server_run(const shim_cfg *cfg, lss_db *db, lss_conn *lc, int lfd)
{
    server *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->cfg = cfg;
    s->db = db;
    s->lc = lc;
    s->lfd = lfd;
    s->rpc_flags = cfg->null_store ? LSS_RPC_NULL_STORE : 0;
    s->fill = &s->bt[0];
    s->donefd = -1;
    s->src_done.type = SRC_DONE;
    s->live.lnext = s->live.lprev = &s->live;
    for (int l = 0; l < T_N; l++)
        s->thead[l].tnext = s->thead[l].tprev = &s->thead[l];
    s->src_listen.type = SRC_LISTEN;
    s->src_stop.type = SRC_STOP;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = -1;
    if (s->ep < 0 || s->stopfd < 0)
        goto out;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->src_listen};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
        goto out;
    ev.data.ptr = &s->src_stop;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stopfd, &ev) != 0)
        goto out;
    atomic_store(&g_sig.lfd, lfd);
    g_sig.stopfd = s->stopfd;
    if (pthread_create(&g_sig.thread, NULL, signal_main, NULL) != 0)
        goto out;
    g_sig.started = 1;
    s->stopfd = -1; /* g_sig's now: closed by server_signals_end */
    sse_loop_init(s->ep);
    if (worker_start(s) != 0) {
        shim_log(LOG_ERROR, "Failed to start the store worker", (char *)NULL);
        goto out;
    }
    tick(s);

    struct epoll_event evs[MAX_EVENTS];
    while (!s->stopping) {
        struct timespec to = next_timeout(s);
        int n = loop_wait(s->ep, evs, &to);
        if (n < 0 && errno != EINTR) {
            shim_log(LOG_ERROR, "epoll_wait failed", "error", strerror(errno),
                     (char *)NULL);
            break;
        }
        tick(s);
        s->work = s->ready;
        s->ready = NULL;
        for (int i = 0; i < n; i++) {
            evsrc *src = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            switch (src->type) {
            case SRC_LISTEN:
                if (!s->stopping)
                    do_accept(s);
                break;
            case SRC_STOP:
                s->stopping = 1;
                break;
            case SRC_SUB:
                if (!src->c->dead)
                    sse_on_sub(s, src->c);
                break;
            case SRC_DONE:
                worker_done(s);
                break;
            case SRC_NOTIFY:
                sse_on_ready(s);
                break;
            case SRC_SOCK: {
                conn *c = src->c;
                if (c->dead)
                    break;
                if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    conn_read(s, c);
                if (!c->dead && (e & EPOLLOUT)) {
                    if (conn_flush(s, c) == 0) {
                        if (c->mode == M_EXPORT)
                            export_pump(s, c);
                        else if (c->mode == M_HTTP && conn_pending(c) <= OUT_HIGH &&
                                 c->in.len > c->in_pos)
                            push_work(s, c);
                    }
                }
                if (!c->dead && !c->in_work)
                    conn_retime(s, c);
                break;
            }
            }
        }
        if (s->stopping)
            break;
        while (s->work) {
            conn *c = s->work;
            s->work = c->next_work;
            c->in_work = 0;
            if (c->dead)
                continue;
            conn_process(s, c);
            conn_retime(s, c);
        }
        batch_submit(s);
        timers_run(s);
        reap(s);
    }
    /* Connections on the work list are simply closed below. */
    for (conn *c = s->work; c; c = c->next_work)
        c->in_work = 0;
    s->work = NULL;
    rc = 0;
out:
    worker_stop(s);
    shutdown_all(s);
    sse_loop_free();
    server_free(s);
    free(s);
    return rc;
}
