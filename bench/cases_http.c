/* cases_http.c — W1 over HTTP (BENCH.md): the load generator and the cases
 * that run it against shim-server.
 *
 *   lss-bench http --url http://127.0.0.1:PORT [--workers 10]
 *                  [--seconds 30 | --requests N] [--token T] [--null-store]
 *
 * The loader is one thread and one epoll loop over `workers` keep-alive
 * connections (non-blocking sockets, level-triggered, one epoll_ctl per
 * connection for its whole life).  Each connection loops as EventoDB's load
 * test does: `stream.write` of W1's message to test-stream-<k % 100>, k a
 * per-connection counter starting at worker * 1,000,000, then, when
 * k % 10 == 0, a `stream.get` of the same stream with
 * {"position":0,"batchSize":10}.  A request costs the loader one send(),
 * one recv() and its share of an epoll_wait(); requests are copied from
 * per-stream templates with only the counter (a nanosecond wall-clock
 * timestamp, as W1 sends) patched in.  Responses are framed by
 * Content-Length.  A non-200 answer is an error; the ops/s and latencies
 * count the 200s, each request timed from send() to its last byte.
 *
 * Verification (a fast wrong answer must fail):
 *   - per connection, each stream's write positions and the global
 *     positions increase strictly;
 *   - each stream.get answer holds positions 0, 1, ... of type TestEvent,
 *     at most 10 and at least as many as the connection knows exist;
 *   - at the end, each stream's write positions are gapless and unique
 *     (from 0 on a fresh server), and a read-back of every stream returns,
 *     at each position we were given, exactly the data and metadata we
 *     sent with it.
 * The check value hashes the (stream, position) pairs: deterministic for a
 * fixed number of requests on a fresh server (--requests; the cases' default)
 * since the multiset of streams written is then fixed, whichever connection
 * gets which position.  Against --null-store, whose /rpc answers a fixed
 * body, only that body and the counts are verified.
 *
 * Cases 500-502 start shim-server themselves (--shim PATH, default
 * ../shim-server/shim-server next to lss-bench) on an ephemeral port, one
 * fresh server per measurement, and stop it with SIGTERM. */
#include "bench.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

http_opts bench_http = {NULL, 0, 0, 10};

#define HTTP_TOKEN                                                           \
    "ns_ZGVmYXVsdA_"                                                         \
    "0000000000000000000000000000000000000000000000000000000000000000"
#define NULL_BODY "{\"globalPosition\":1,\"position\":0}"
#define NULL_BODY_LEN (sizeof NULL_BODY - 1)
#define MAX_WORKERS 4096
#define IN_CAP0 16384
#define HDR_MAX 65536

/* ------------------------------------------------------------------------
 * Target
 * ---------------------------------------------------------------------- */

typedef struct http_target {
    struct sockaddr_storage addr;
    socklen_t addr_n;
    char host[300]; /* Host header */
    char path[256]; /* prefix before /rpc, "" or "/x" */
    const char *token;
} http_target;

/* http://host[:port][/prefix] */
static int parse_url(const char *url, http_target *t)
{
    memset(t, 0, sizeof *t);
    if (strncmp(url, "http://", 7)) {
        fprintf(stderr, "lss-bench http: --url must start with http://\n");
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hn = slash ? (size_t)(slash - h) : strlen(h);
    if (!hn || hn >= sizeof t->host) {
        fprintf(stderr, "lss-bench http: bad --url %s\n", url);
        return -1;
    }
    memcpy(t->host, h, hn);
    t->host[hn] = '\0';
    if (slash) {
        size_t pn = strlen(slash);
        while (pn && slash[pn - 1] == '/')
            pn--;
        if (pn >= sizeof t->path)
            return -1;
        memcpy(t->path, slash, pn);
        t->path[pn] = '\0';
    }
    char name[300], port[16] = "80";
    const char *hp = t->host, *colon;
    if (*hp == '[') {
        const char *rb = strchr(hp, ']');
        if (!rb)
            return -1;
        snprintf(name, sizeof name, "%.*s", (int)(rb - hp - 1), hp + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(hp, ':');
        snprintf(name, sizeof name, "%.*s",
                 (int)(colon ? (size_t)(colon - hp) : strlen(hp)), hp);
    }
    if (colon)
        snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(name, port, &hints, &res);
    if (e || !res) {
        fprintf(stderr, "lss-bench http: %s: %s\n", t->host, gai_strerror(e));
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addr_n = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void local_target(http_target *t, int port, const char *token)
{
    memset(t, 0, sizeof *t);
    struct sockaddr_in *a = (struct sockaddr_in *)&t->addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->addr_n = sizeof *a;
    snprintf(t->host, sizeof t->host, "127.0.0.1:%d", port);
    t->token = token;
}

/* A connected socket, TCP_NODELAY; non-blocking unless timeout_ms > 0,
 * which sets send and receive timeouts instead. */
static int dial(const http_target *t, int timeout_ms)
{
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_n) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    } else {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
}

/* ------------------------------------------------------------------------
 * HTTP/1.1 response framing
 * ---------------------------------------------------------------------- */

typedef struct http_resp {
    size_t hdr_n;  /* head length, blank line included; 0 = not parsed */
    size_t body_n; /* Content-Length */
    int status;
    int close;     /* Connection: close */
} http_resp;

static int hdr_is(const char *line, size_t n, const char *name, size_t nn)
{
    return n > nn && !strncasecmp(line, name, nn);
}

/* Parse the head of p[0..n): 1 with *r filled, 0 when incomplete, -1 when
 * malformed or framed other than by Content-Length. */
static int parse_head(const char *p, size_t n, http_resp *r)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > HDR_MAX ? -1 : 0;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) || p[8] != ' ' || p[9] < '1' ||
        p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9')
        return -1;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    r->hdr_n = (size_t)(end - p) + 4;
    r->close = p[7] == '0';
    int have_len = 0;
    const char *line = (const char *)memchr(p, '\n', r->hdr_n) + 1;
    while (line < end + 2) {
        const char *eol = memchr(line, '\n', (size_t)(end + 4 - line));
        size_t ln = (size_t)(eol - line);
        if (hdr_is(line, ln, "content-length:", 15)) {
            size_t v = 0;
            const char *q = line + 15;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q < '0' || *q > '9')
                return -1;
            for (; *q >= '0' && *q <= '9'; q++)
                v = v * 10 + (size_t)(*q - '0');
            r->body_n = v;
            have_len = 1;
        } else if (hdr_is(line, ln, "transfer-encoding:", 18)) {
            return -1;
        } else if (hdr_is(line, ln, "connection:", 11)) {
            const char *q = line + 11;
            while (*q == ' ')
                q++;
            r->close = !strncasecmp(q, "close", 5);
        }
        line = eol + 1;
    }
    return have_len ? 1 : -1;
}

/* The integer at the start of p[0..n): 1, or 0 when there is none. */
static int parse_int(const char *p, size_t n, int64_t *out)
{
    const char *q = p, *e = p + n;
    int neg = q < e && *q == '-';
    q += neg;
    if (q >= e || *q < '0' || *q > '9')
        return 0;
    int64_t v = 0;
    for (; q < e && *q >= '0' && *q <= '9'; q++)
        v = v * 10 + (*q - '0');
    *out = neg ? -v : v;
    return 1;
}

/* The integer after "key": in p[0..n), or 0 when absent. */
static int int_after(const char *p, size_t n, const char *key, size_t kn,
                     int64_t *out)
{
    const char *k = memmem(p, n, key, kn);
    return k && parse_int(k + kn, (size_t)(p + n - (k + kn)), out);
}

/* ------------------------------------------------------------------------
 * The loader
 * ---------------------------------------------------------------------- */

typedef struct pos_rec {
    int64_t pos;
    uint64_t counter; /* the data's counter sent with that write */
} pos_rec;

typedef struct pos_list {
    pos_rec *v;
    size_t n, cap;
} pos_list;

typedef struct hconn {
    int fd;
    int w;            /* worker index */
    int busy;         /* a request is in flight */
    int get;          /* ... and it is the stream.get of k */
    int next_get;     /* the next request is the stream.get of k */
    int want_out;     /* EPOLLOUT armed */
    uint64_t k;       /* k % 100: the stream */
    long quota;       /* requests left in this phase; < 0: unbounded */
    uint64_t t0;      /* request sent */
    uint64_t counter; /* of the write in flight */
    size_t out_n, out_off;
    char *out;
    char *in;
    size_t in_n, in_cap;
    http_resp resp;
    int64_t last_gpos;
    int64_t last_pos[W1_STREAMS];
} hconn;

typedef struct tmpl {
    char *p;
    size_t n;
    size_t ctr; /* offset of the counter's 19 digits (writes) */
} tmpl;

typedef struct http_load {
    /* in */
    const http_target *t;
    int workers;
    long requests;      /* timed requests (when seconds <= 0) */
    long warm;          /* warm-up requests (when seconds <= 0) */
    double seconds;     /* > 0: timed window of that length */
    double warm_seconds;
    int null_store;     /* expect the null store's fixed answers */
    int fresh;          /* the server was empty: positions start at 0 */
    bench_run *r;
    pid_t server;       /* its CPU time is read when > 0 */
    /* out */
    uint64_t ok, errors, writes, reads, reconnects;
    uint64_t verified;  /* messages read back and compared */
    double elapsed;     /* timed window, seconds */
    double loader_us, server_us; /* CPU per timed request */
    uint64_t check;
    int bad;            /* verification failed; why says how */
    char why[512];
    /* state */
    int ep;
    hconn *c;
    tmpl wt[W1_STREAMS], gt[W1_STREAMS];
    size_t out_cap;
    pos_list pos[W1_STREAMS];
    uint64_t real_off;  /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
    int timed;
    uint64_t now;       /* the last clock reading */
    http_write_hook on_write; /* W3: every acknowledged write, or NULL */
    void *on_write_arg;
} http_load;

static void fail(http_load *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(http_load *h, const char *fmt, ...)
{
    if (h->bad++)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->why, sizeof h->why, fmt, ap);
    va_end(ap);
}

static const char w1_data[] = W1_DATA;

static int make_tmpl(tmpl *t, const http_target *tg, const char *body,
                     size_t body_n, size_t ctr_in_body)
{
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "POST %s/rpc HTTP/1.1\r\nHost: %s\r\n"
                      "Authorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      tg->path, tg->host, tg->token, body_n);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return -1;
    t->n = (size_t)hn + body_n;
    t->p = malloc(t->n);
    if (!t->p)
        return -1;
    memcpy(t->p, head, (size_t)hn);
    memcpy(t->p + hn, body, body_n);
    t->ctr = (size_t)hn + ctr_in_body;
    return 0;
}

static int make_templates(http_load *h)
{
    char body[1024];
    for (int s = 0; s < W1_STREAMS; s++) {
        int pre = snprintf(body, sizeof body,
                           "[\"stream.write\",\"%s\",{\"type\":\"" W1_TYPE
                           "\",\"data\":",
                           w1_stream[s].s);
        int n = snprintf(body + pre, sizeof body - (size_t)pre,
                         "%s,\"metadata\":%s}]", W1_DATA, W1_META);
        if (make_tmpl(&h->wt[s], h->t, body, (size_t)(pre + n),
                      (size_t)pre + W1_COUNTER_OFF) != 0)
            return -1;
        n = snprintf(body, sizeof body,
                     "[\"stream.get\",\"%s\",{\"position\":0,"
                     "\"batchSize\":10}]",
                     w1_stream[s].s);
        if (make_tmpl(&h->gt[s], h->t, body, (size_t)n, 0) != 0)
            return -1;
        size_t m = h->wt[s].n > h->gt[s].n ? h->wt[s].n : h->gt[s].n;
        if (m > h->out_cap)
            h->out_cap = m;
    }
    return 0;
}

static void put_counter(char *p, uint64_t v)
{
    for (int i = 18; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
}

static int conn_open(http_load *h, hconn *c)
{
    c->fd = dial(h->t, 0);
    if (c->fd < 0) {
        fail(h, "connect to %s: %s", h->t->host, strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        fail(h, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    c->want_out = 0;
    c->in_n = 0;
    memset(&c->resp, 0, sizeof c->resp);
    return 0;
}

static int conn_reopen(http_load *h, hconn *c)
{
    close(c->fd); /* leaves the epoll set with it */
    h->reconnects++;
    return conn_open(h, c);
}

static int set_out(http_load *h, hconn *c, int on)
{
    if (c->want_out == on)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u),
                             .data.ptr = c};
    c->want_out = on;
    return epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what is left of the request; EAGAIN arms EPOLLOUT. */
static int flush_out(http_load *h, hconn *c)
{
    while (c->out_off < c->out_n) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_n - c->out_off,
                         MSG_NOSIGNAL);
        if (k > 0) {
            c->out_off += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return set_out(h, c, 1);
        return -1;
    }
    return c->want_out ? set_out(h, c, 0) : 0;
}

/* Start the connection's next request. */
static int issue(http_load *h, hconn *c)
{
    int s = (int)(c->k % W1_STREAMS);
    c->get = c->next_get;
    const tmpl *t = c->get ? &h->gt[s] : &h->wt[s];
    memcpy(c->out, t->p, t->n);
    c->out_n = t->n;
    c->out_off = 0;
    c->t0 = bench_ns();
    if (!c->get) {
        c->counter = c->t0 + h->real_off;
        put_counter(c->out + t->ctr, c->counter);
    }
    c->busy = 1;
    if (c->quota > 0)
        c->quota--;
    if (flush_out(h, c) != 0)
        return conn_reopen(h, c) == 0 ? 1 : -1; /* answered as an error */
    return 0;
}

static int pos_add(pos_list *l, int64_t pos, uint64_t counter)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        pos_rec *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].pos = pos;
    l->v[l->n].counter = counter;
    l->n++;
    return 0;
}

/* Check one stream.get answer: rows of positions 0, 1, ..., TestEvent. */
static void verify_get(http_load *h, hconn *c, int s, const char *b,
                       size_t n)
{
    static const char key[] = "\"" W1_TYPE "\",";
    if (!n || b[0] != '[') {
        fail(h, "stream.get test-stream-%d: not an array: %.*s", s,
             (int)(n < 120 ? n : 120), b);
        return;
    }
    const char *p = b, *e = b + n;
    int64_t rows = 0;
    for (;;) {
        const char *k = memmem(p, (size_t)(e - p), key, sizeof key - 1);
        if (!k)
            break;
        int64_t pos = -1;
        p = k + sizeof key - 1;
        if (!parse_int(p, (size_t)(e - p), &pos) || pos != rows) {
            fail(h, "stream.get test-stream-%d: row %lld has position %lld",
                 s, (long long)rows, (long long)pos);
            return;
        }
        rows++;
    }
    int64_t known = c->last_pos[s] + 1; /* positions 0..last_pos exist */
    int64_t need = known < 10 ? known : 10;
    if (rows > 10 || rows < need)
        fail(h, "stream.get test-stream-%d: %lld rows, expected %lld..10",
             s, (long long)rows, (long long)need);
}

/* A complete answer to the request in flight on c. */
static void answered(http_load *h, hconn *c, const char *b, size_t n,
                     int status, uint64_t t1)
{
    int s = (int)(c->k % W1_STREAMS);
    if (n && b[n - 1] == '\n')
        n--; /* the shim ends its bodies with a newline */
    if (status != 200) {
        h->errors++;
        if (h->errors == 1 && !h->bad)
            fprintf(stderr, "lss-bench http: first error: %d %.*s\n", status,
                    (int)(n < 200 ? n : 200), b);
    } else {
        if (h->timed) {
            h->ok++;
            hist_add(h->r->hist, t1 - c->t0);
        }
        if (h->null_store) {
            if (n != NULL_BODY_LEN || memcmp(b, NULL_BODY, n) ||
                (atomic_load_explicit(&bench_break_pending,
                                      memory_order_relaxed) &&
                 atomic_exchange(&bench_break_pending, 0)))
                fail(h, "null store answered %.*s", (int)(n < 120 ? n : 120),
                     b);
            if (!c->get)
                pos_add(&h->pos[s], 0, 0);
        } else if (c->get) {
            verify_get(h, c, s, b, n);
        } else {
            int64_t pos = -1, gpos = -1;
            if (!int_after(b, n, "\"position\":", 11, &pos) ||
                !int_after(b, n, "\"globalPosition\":", 17, &gpos)) {
                fail(h, "stream.write test-stream-%d: answer %.*s", s,
                     (int)(n < 120 ? n : 120), b);
            } else {
                pos = check_lib_pos(pos); /* LSS_BENCH_BREAK: a wrong answer */
                if (pos <= c->last_pos[s] || gpos <= c->last_gpos)
                    fail(h, "connection %d, test-stream-%d: position %lld "
                            "(global %lld) after %lld (global %lld)",
                         c->w, s, (long long)pos, (long long)gpos,
                         (long long)c->last_pos[s], (long long)c->last_gpos);
                c->last_pos[s] = pos;
                c->last_gpos = gpos;
                if (pos_add(&h->pos[s], pos, c->counter) != 0)
                    fail(h, "out of memory");
            }
        }
    }
    if (c->get) {
        h->reads += h->timed;
        c->next_get = 0;
        c->k++;
    } else {
        h->writes += h->timed;
        if (c->k % 10 == 0) {
            c->next_get = 1;
        } else {
            c->k++;
        }
    }
    c->busy = 0;
}

/* Read what is there; returns the number of requests answered (0 or 1),
 * -1 on a fatal error. */
static int on_readable(http_load *h, hconn *c)
{
    if (c->in_n == c->in_cap) {
        size_t cap = c->in_cap * 2;
        char *p = realloc(c->in, cap);
        if (!p) {
            fail(h, "out of memory");
            return -1;
        }
        c->in = p;
        c->in_cap = cap;
    }
    ssize_t k = recv(c->fd, c->in + c->in_n, c->in_cap - c->in_n, 0);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (k <= 0) {
        /* closed or reset: the request in flight is an error */
        if (conn_reopen(h, c) != 0)
            return -1;
        if (!c->busy)
            return 0;
        h->now = bench_ns();
        answered(h, c, "", 0, 0, h->now);
        return 1;
    }
    c->in_n += (size_t)k;
    if (!c->resp.hdr_n) {
        int pr = parse_head(c->in, c->in_n, &c->resp);
        if (pr < 0) {
            fail(h, "malformed HTTP response: %.*s",
                 (int)(c->in_n < 200 ? c->in_n : 200), c->in);
            return -1;
        }
        if (!pr)
            return 0;
    }
    size_t total = c->resp.hdr_n + c->resp.body_n;
    if (c->in_n < total) {
        if (total > c->in_cap) {
            char *p = realloc(c->in, total);
            if (!p) {
                fail(h, "out of memory");
                return -1;
            }
            c->in = p;
            c->in_cap = total;
        }
        return 0;
    }
    uint64_t t1 = bench_ns();
    h->now = t1;
    if (!c->busy || c->in_n > total) {
        fail(h, "unexpected bytes from the server");
        return -1;
    }
    answered(h, c, c->in + c->resp.hdr_n, c->resp.body_n, c->resp.status, t1);
    int close_it = c->resp.close;
    c->in_n = 0;
    memset(&c->resp, 0, sizeof c->resp);
    if (close_it && conn_reopen(h, c) != 0)
        return -1;
    return 1;
}

/* Start c's next request unless its quota or the deadline says stop;
 * a request that cannot be sent is answered as an error and the next one
 * tried.  1 when one is in flight, 0 when none, -1 on failure. */
static int start_next(http_load *h, hconn *c, uint64_t deadline)
{
    while (c->quota != 0 && (!deadline || h->now < deadline)) {
        int rc = issue(h, c);
        if (rc <= 0)
            return rc == 0 ? 1 : -1;
        h->now = bench_ns();
        answered(h, c, "", 0, 0, h->now);
    }
    return 0;
}

/* Requests of one phase: total (split over the connections) or, with a
 * deadline, as many as are started before it. */
static int run_phase(http_load *h, long total, uint64_t deadline)
{
    int n = h->workers, inflight = 0;
    struct epoll_event ev[256];
    h->now = bench_ns();
    for (int i = 0; i < n; i++) {
        hconn *c = &h->c[i];
        c->quota = deadline ? -1 : total / n + (i < total % n);
        int rc = start_next(h, c, deadline);
        if (rc < 0)
            return -1;
        inflight += rc;
    }
    while (inflight > 0) {
        int m = epoll_wait(h->ep, ev, (int)(sizeof ev / sizeof ev[0]), -1);
        if (m < 0) {
            if (errno == EINTR)
                continue;
            fail(h, "epoll_wait: %s", strerror(errno));
            return -1;
        }
        for (int i = 0; i < m; i++) {
            hconn *c = ev[i].data.ptr;
            int got = 0;
            if ((ev[i].events & EPOLLOUT) && c->busy &&
                c->out_off < c->out_n && flush_out(h, c) != 0) {
                if (conn_reopen(h, c) != 0)
                    return -1;
                h->now = bench_ns();
                answered(h, c, "", 0, 0, h->now);
                got = 1;
            } else if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                got = on_readable(h, c);
                if (got < 0)
                    return -1;
            }
            if (!got)
                continue;
            inflight--;
            int rc = start_next(h, c, deadline);
            if (rc < 0)
                return -1;
            inflight += rc;
        }
    }
    return 0;
}

static uint64_t proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%lu %lu", &ut, &st) != 2)
        return 0;
    return (uint64_t)ut + st;
}

static double self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_pos(const void *a, const void *b)
{
    int64_t x = ((const pos_rec *)a)->pos, y = ((const pos_rec *)b)->pos;
    return (x > y) - (x < y);
}

/* A request on a blocking socket; the answer's body in *buf (grown). */
static int sync_request(int fd, const char *req, size_t n, char **buf,
                        size_t *cap, http_resp *r, const char **body)
{
    for (size_t off = 0; off < n;) {
        ssize_t k = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        off += (size_t)k;
    }
    size_t have = 0;
    memset(r, 0, sizeof *r);
    for (;;) {
        if (r->hdr_n && have >= r->hdr_n + r->body_n)
            break;
        size_t want = r->hdr_n ? r->hdr_n + r->body_n : have + 65536;
        if (want > *cap) {
            char *p = realloc(*buf, want);
            if (!p)
                return -1;
            *buf = p;
            *cap = want;
        }
        ssize_t k = recv(fd, *buf + have, *cap - have, 0);
        if (k <= 0)
            return -1;
        have += (size_t)k;
        if (!r->hdr_n && parse_head(*buf, have, r) < 0)
            return -1;
    }
    *body = *buf + r->hdr_n;
    return 0;
}

/* The server's allocation counters from GET /metrics: *lib the library
 * allocator's calls, *mal the process's mallocs (UINT64_MAX when the
 * server has no counting preload).  0, or -1 when they cannot be read. */
static int server_allocs(const http_target *t, uint64_t *lib, uint64_t *mal)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n";
    int fd = dial(t, 5000);
    if (fd < 0)
        return -1;
    char *buf = NULL;
    size_t cap = 0;
    http_resp r;
    const char *body;
    int rc = -1;
    if (sync_request(fd, req, sizeof req - 1, &buf, &cap, &r, &body) == 0 &&
        r.status == 200) {
        static const char kl[] = "\nstreamstore_library_allocations_total ";
        static const char km[] = "\nstreamstore_process_mallocs_total ";
        const char *end = body + r.body_n;
        const char *p = memmem(body, r.body_n, kl, sizeof kl - 1);
        const char *q = memmem(body, r.body_n, km, sizeof km - 1);
        *mal = UINT64_MAX;
        if (p) {
            *lib = strtoull(p + sizeof kl - 1, NULL, 10);
            if (q && q + sizeof km - 1 < end)
                *mal = strtoull(q + sizeof km - 1, NULL, 10);
            rc = 0;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

/* Every stream read back from its first recorded position: each recorded
 * position must hold the message sent with it, byte for byte. */
static int read_back(http_load *h)
{
    int fd = dial(h->t, 60000);
    if (fd < 0) {
        fail(h, "read-back: connect: %s", strerror(errno));
        return -1;
    }
    char *buf = NULL, req[2048], data[sizeof w1_data];
    size_t cap = 0, tcap = 0;
    lss_json_tok *tok = NULL;
    memcpy(data, w1_data, sizeof data);
    int rc = 0;
    for (int s = 0; s < W1_STREAMS && !rc && !h->bad; s++) {
        pos_list *l = &h->pos[s];
        if (!l->n)
            continue;
        char body[256];
        int bn = snprintf(body, sizeof body,
                          "[\"stream.get\",\"%s\",{\"position\":%lld,"
                          "\"batchSize\":-1}]",
                          w1_stream[s].s, (long long)l->v[0].pos);
        int n = snprintf(req, sizeof req,
                         "POST %s/rpc HTTP/1.1\r\nHost: %s\r\n"
                         "Authorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         h->t->path, h->t->host, h->t->token, bn, body);
        http_resp r;
        const char *b;
        if (sync_request(fd, req, (size_t)n, &buf, &cap, &r, &b) != 0) {
            fail(h, "read-back of %s: %s", w1_stream[s].s,
                 errno ? strerror(errno) : "bad response");
            rc = -1;
            break;
        }
        if (r.status != 200) {
            fail(h, "read-back of %s: status %d", w1_stream[s].s, r.status);
            rc = -1;
            break;
        }
        size_t need = lss__json_tape_need(r.body_n);
        if (need > tcap) {
            lss_json_tok *t = realloc(tok, need * sizeof *t);
            if (!t) {
                rc = -1;
                break;
            }
            tok = t;
            tcap = need;
        }
        lss_json_doc d;
        const lss_json_tok *root = NULL;
        if (lss__json_scan(&d, b, r.body_n, 2, tok, tcap, NULL) == LSS_OK)
            root = lss__json_root(&d);
        if (lss__json_type(root) != LSS_JSON_ARRAY) {
            fail(h, "read-back of %s: not an array", w1_stream[s].s);
            break;
        }
        lss_json_iter it;
        lss__json_iter_init(&it, &d, root);
        const lss_json_tok *row;
        size_t j = 0;
        int64_t at = l->v[0].pos, last_g = -1;
        while ((row = lss__json_iter_next(&it, NULL)) && j < l->n) {
            const lss_json_tok *f[7];
            for (size_t i = 0; i < 7; i++)
                f[i] = lss__json_at(&d, row, i);
            int64_t pos = -1, gpos = -1;
            if (lss__json_type(row) != LSS_JSON_ARRAY || row->count != 7 ||
                lss__json_int64(&d, f[2], &pos) != LSS_OK ||
                lss__json_int64(&d, f[3], &gpos) != LSS_OK || pos != at ||
                gpos <= last_g) {
                fail(h, "read-back of %s: row at position %lld malformed or "
                        "out of order",
                     w1_stream[s].s, (long long)at);
                break;
            }
            at++;
            last_g = gpos;
            if (pos != l->v[j].pos)
                continue; /* written by someone else */
            put_counter(data + W1_COUNTER_OFF, l->v[j].counter);
            if (!lss__json_str_equal(&d, f[1], W1_TYPE, sizeof W1_TYPE - 1) ||
                f[4]->len != W1_DATA_LEN ||
                memcmp(b + f[4]->off, data, W1_DATA_LEN) ||
                f[5]->len != W1_META_LEN ||
                memcmp(b + f[5]->off, W1_META, W1_META_LEN)) {
                fail(h, "read-back of %s: position %lld differs from what "
                        "was written",
                     w1_stream[s].s, (long long)pos);
                break;
            }
            h->verified++;
            j++;
        }
        if (!h->bad && j != l->n)
            fail(h, "read-back of %s: %zu of %zu messages found",
                 w1_stream[s].s, j, l->n);
        if (!h->bad && h->fresh && (row || lss__json_iter_next(&it, NULL)))
            fail(h, "read-back of %s: more messages than were written",
                 w1_stream[s].s);
    }
    free(tok);
    free(buf);
    close(fd);
    return rc;
}

/* Gapless, unique positions per stream; the check value. */
static void verify_positions(http_load *h)
{
    uint64_t x = CHECK_SEED;
    for (int s = 0; s < W1_STREAMS; s++) {
        pos_list *l = &h->pos[s];
        if (h->null_store) {
            x = check_mix(check_mix(x, (uint64_t)s), l->n);
            continue;
        }
        qsort(l->v, l->n, sizeof *l->v, cmp_pos);
        int64_t base = l->n ? l->v[0].pos : 0;
        if (h->fresh && base != 0)
            fail(h, "test-stream-%d: first position %lld on a fresh server",
                 s, (long long)base);
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i].pos != base + (int64_t)i) {
                fail(h, "test-stream-%d: positions not gapless and unique: "
                        "%lld where %lld was due",
                     s, (long long)l->v[i].pos, (long long)(base + (int64_t)i));
                break;
            }
            x = check_mix(check_mix(x, (uint64_t)s), (uint64_t)l->v[i].pos);
        }
    }
    h->check = check_mix(check_mix(x, h->writes + h->reads), h->errors);
}

static void load_free(http_load *h)
{
    for (int i = 0; h->c && i < h->workers; i++) {
        if (h->c[i].fd >= 0)
            close(h->c[i].fd);
        free(h->c[i].in);
        free(h->c[i].out);
    }
    free(h->c);
    h->c = NULL;
    for (int s = 0; s < W1_STREAMS; s++) {
        free(h->wt[s].p);
        free(h->gt[s].p);
        free(h->pos[s].v);
        memset(&h->pos[s], 0, sizeof h->pos[s]);
        h->wt[s].p = h->gt[s].p = NULL;
    }
    if (h->ep >= 0)
        close(h->ep);
    h->ep = -1;
}

/* Run warm-up and timed window; LSS_OK, LSS_EIO (connection or server
 * failure) or LSS_EINTERNAL (a wrong answer; h->why). */
static int http_load_run(http_load *h)
{
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->c = calloc((size_t)h->workers, sizeof *h->c);
    for (int i = 0; h->c && i < h->workers; i++)
        h->c[i].fd = -1;
    if (h->ep < 0 || !h->c || make_templates(h) != 0) {
        load_free(h);
        return LSS_ENOMEM;
    }
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    h->real_off = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec -
                  bench_ns();
    if (h->seconds <= 0) { /* sized for the whole run: no growth later */
        size_t per = (size_t)(h->requests + h->warm) / W1_STREAMS + 64;
        for (int s = 0; s < W1_STREAMS; s++) {
            h->pos[s].v = malloc(per * sizeof(pos_rec));
            h->pos[s].cap = h->pos[s].v ? per : 0;
        }
    }
    int rc = 0;
    for (int i = 0; i < h->workers; i++) {
        hconn *c = &h->c[i];
        c->w = i;
        c->k = (uint64_t)i * 1000000u;
        c->last_gpos = 0;
        for (int s = 0; s < W1_STREAMS; s++)
            c->last_pos[s] = -1;
        c->out = malloc(h->out_cap);
        c->in = malloc(IN_CAP0);
        c->in_cap = IN_CAP0;
        if (!c->out || !c->in) {
            load_free(h);
            return LSS_ENOMEM;
        }
        if (rc == 0)
            rc = conn_open(h, c);
    }
    if (rc == 0) {
        uint64_t now = bench_ns();
        rc = h->seconds > 0
                 ? run_phase(h, 0, now + (uint64_t)(h->warm_seconds * 1e9))
                 : run_phase(h, h->warm, 0);
    }
    uint64_t lib0 = 0, mal0 = 0;
    int allocs = rc == 0 && !h->bad && h->server > 0 &&
                 server_allocs(h->t, &lib0, &mal0) == 0;
    if (rc == 0 && !h->bad) {
        uint64_t s0 = h->server > 0 ? proc_cpu_ticks(h->server) : 0;
        double c0 = self_cpu_us();
        h->timed = 1;
        bench_start(h->r);
        uint64_t t0 = h->r->t0;
        rc = h->seconds > 0
                 ? run_phase(h, 0, t0 + (uint64_t)(h->seconds * 1e9))
                 : run_phase(h, h->requests, 0);
        bench_stop(h->r);
        h->timed = 0;
        uint64_t reqs = h->writes + h->reads;
        double c1 = self_cpu_us();
        uint64_t s1 = h->server > 0 ? proc_cpu_ticks(h->server) : 0;
        h->elapsed = (double)(h->r->t1 - t0) / 1e9;
        if (reqs) {
            h->loader_us = (c1 - c0) / (double)reqs;
            if (h->server > 0 && s1)
                h->server_us = (double)(s1 - s0) * 1e6 /
                               (double)sysconf(_SC_CLK_TCK) / (double)reqs;
        }
        h->r->ops = (double)h->ok;
        uint64_t lib1, mal1;
        if (allocs && rc == 0 && server_allocs(h->t, &lib1, &mal1) == 0) {
            h->r->ext_alloc = 1;
            h->r->ext_lib = lib1 - lib0;
            h->r->ext_mal = mal0 == UINT64_MAX || mal1 == UINT64_MAX
                                ? UINT64_MAX
                                : mal1 - mal0;
        }
    }
    if (rc == 0 && !h->bad) {
        verify_positions(h);
        if (!h->null_store && !h->bad)
            read_back(h);
    }
    for (int s = 0; h->on_write && s < W1_STREAMS; s++)
        for (size_t i = 0; i < h->pos[s].n; i++)
            h->on_write(h->on_write_arg, s, h->pos[s].v[i].pos,
                        h->pos[s].v[i].counter - h->real_off);
    load_free(h);
    if (rc != 0 && !h->bad)
        fail(h, "connection failed");
    if (h->bad)
        return rc != 0 ? LSS_EIO : LSS_EINTERNAL;
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * shim-server: start on an ephemeral port, stop with SIGTERM
 * ---------------------------------------------------------------------- */

enum { SHIM_NULL, SHIM_MEMORY, SHIM_FILE };

typedef struct shim_proc {
    pid_t pid;
    int out;            /* its stdout */
    int port;
    char dir[PATH_MAX]; /* data directory (file store) */
} shim_proc;

static char shim_path[PATH_MAX];
static int shim_looked; /* 1 found, -1 not */

const char *http_shim_path(void)
{
    if (shim_looked)
        return shim_looked > 0 ? shim_path : NULL;
    shim_looked = -1;
    if (bench_http.shim) {
        snprintf(shim_path, sizeof shim_path, "%s", bench_http.shim);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return NULL;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(shim_path, sizeof shim_path, "%.*s/../shim-server/shim-server",
                 (int)(sizeof shim_path - 32), exe);
    }
    if (access(shim_path, X_OK) == 0)
        shim_looked = 1;
    return shim_looked > 0 ? shim_path : NULL;
}

const char *http_shim_tried(void)
{
    http_shim_path();
    return shim_path;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Print what the server logged at warning level or worse. */
static void drain_log(shim_proc *p, int show)
{
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t k = read(p->out, buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            if (show && (strstr(line, " ERR ") || strstr(line, " FTL ")))
                fprintf(stderr, "shim-server: %s\n", line);
            line = nl + 1;
        }
        have = strlen(line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;
    }
}

static void shim_stop(shim_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int status = 0;
        for (int i = 0; i < 2000; i++) { /* 20 s */
            if (waitpid(p->pid, &status, WNOHANG) == p->pid)
                goto reaped;
            usleep(10000);
        }
        fprintf(stderr, "lss-bench: shim-server %d ignored SIGTERM; killed\n",
                (int)p->pid);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
    reaped:
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "lss-bench: shim-server exited with status %d\n",
                    WIFEXITED(status) ? WEXITSTATUS(status)
                                      : 128 + WTERMSIG(status));
        p->pid = 0;
    }
    if (p->out >= 0) {
        fcntl(p->out, F_SETFL, fcntl(p->out, F_GETFL) | O_NONBLOCK);
        drain_log(p, 1);
        close(p->out);
        p->out = -1;
    }
    if (p->dir[0])
        remove_tree(p->dir);
    p->dir[0] = '\0';
}

/* GET /health answers 200 */
static int healthy(int port)
{
    http_target t;
    local_target(&t, port, HTTP_TOKEN);
    int fd = dial(&t, 2000);
    if (fd < 0)
        return 0;
    static const char req[] =
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char *buf = NULL;
    size_t cap = 0;
    http_resp r;
    const char *b;
    int ok = sync_request(fd, req, sizeof req - 1, &buf, &cap, &r, &b) == 0 &&
             r.status == 200;
    free(buf);
    close(fd);
    return ok;
}

static int shim_start(shim_proc *p, int kind, const char *scratch)
{
    static unsigned seq;
    memset(p, 0, sizeof *p);
    p->out = -1;
    const char *exe = http_shim_path();
    if (!exe)
        return LSS_ENOTSUP;
    char data_dir[PATH_MAX + 16];
    const char *argv[8];
    int argc = 0;
    argv[argc++] = exe;
    argv[argc++] = "--port=0";
    argv[argc++] = "--token=" HTTP_TOKEN;
    if (kind == SHIM_FILE) {
        snprintf(p->dir, sizeof p->dir, "%s/shim-%d-%u", scratch,
                 (int)getpid(), ++seq);
        if (mkdir(p->dir, 0700) != 0) {
            fprintf(stderr, "lss-bench: mkdir %s: %s\n", p->dir,
                    strerror(errno));
            p->dir[0] = '\0';
            return LSS_EIO;
        }
        snprintf(data_dir, sizeof data_dir, "--data-dir=%s", p->dir);
        argv[argc++] = data_dir;
    } else {
        argv[argc++] = "--test-mode";
        if (kind == SHIM_NULL)
            argv[argc++] = "--null-store";
    }
    argv[argc] = NULL;
    /* The server gets our environment without EVENTODB_* settings that
     * would change what it runs, and with the malloc counter only when
     * --count-malloc loaded it here (its /metrics then reports it). */
    int keep_preload = bench_process_mallocs() != UINT64_MAX;
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = calloc(ne + 1, sizeof *envp);
    int fds[2] = {-1, -1};
    if (!envp || pipe2(fds, O_CLOEXEC) != 0) {
        free(envp);
        shim_stop(p);
        return LSS_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if ((keep_preload || strncmp(environ[i], "LD_PRELOAD=", 11)) &&
            strncmp(environ[i], "EVENTODB_", 9))
            envp[k++] = environ[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    pid_t pid;
    int e = posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(fds[1]);
    p->out = fds[0];
    if (e) {
        fprintf(stderr, "lss-bench: cannot run %s: %s\n", exe, strerror(e));
        shim_stop(p);
        return LSS_EIO;
    }
    p->pid = pid;
    /* "... Server listening address=[::]:N port=N ..." */
    char buf[8192];
    size_t have = 0;
    buf[0] = '\0';
    uint64_t until = bench_ns() + 20000000000u;
    while (!p->port) {
        int left = (int)(((int64_t)until - (int64_t)bench_ns()) / 1000000);
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            break;
        ssize_t got = read(p->out, buf + have, sizeof buf - 1 - have);
        if (got <= 0)
            break;
        have += (size_t)got;
        buf[have] = '\0';
        const char *q = strstr(buf, " port=");
        if (q && strchr(q, '\n'))
            p->port = atoi(q + 6);
        else if (have == sizeof buf - 1)
            break;
    }
    if (p->port <= 0) {
        fprintf(stderr, "lss-bench: %s did not start:\n%s\n", exe, buf);
        shim_stop(p);
        return LSS_EIO;
    }
    for (int i = 0; i < 200 && !healthy(p->port); i++)
        usleep(10000);
    if (!healthy(p->port)) {
        fprintf(stderr, "lss-bench: shim-server on port %d is not healthy\n",
                p->port);
        shim_stop(p);
        return LSS_EIO;
    }
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Cases 500-502
 * ---------------------------------------------------------------------- */

/* Requests per measurement at --size 100 (null, memory, file): about 4 s
 * each on the project's 2-core VM (docs/PERFORMANCE.md). */
static const long http_base_n[] = {400000, 150000, 45000};
static char http_note[3][320];

static int http_case(bench_run *r, int kind)
{
    shim_proc p;
    int rc = shim_start(&p, kind, r->dir);
    if (rc != LSS_OK)
        return rc;
    http_target t;
    local_target(&t, p.port, HTTP_TOKEN);
    http_load h;
    memset(&h, 0, sizeof h);
    h.ep = -1;
    h.t = &t;
    h.workers = bench_http.workers;
    h.seconds = bench_http.seconds;
    h.warm_seconds = h.seconds > 0 ? (h.seconds / 10 < 1 ? h.seconds / 10 : 1)
                                   : 0;
    h.requests = bench_http.requests > 0 ? bench_http.requests
                                         : scaled(r, http_base_n[kind]);
    h.warm = h.requests / 20 + 10L * h.workers;
    h.null_store = kind == SHIM_NULL;
    h.fresh = 1;
    h.r = r;
    h.server = p.pid;
    rc = http_load_run(&h);
    shim_stop(&p);
    if (rc != LSS_OK) {
        fprintf(stderr, "lss-bench: W1 over HTTP: %s%s%s\n",
                rc == LSS_EINTERNAL ? "verification FAILED: " : "", h.why,
                bench_break && rc == LSS_EINTERNAL
                    ? " (LSS_BENCH_BREAK: a simulated wrong answer)"
                    : "");
        return rc;
    }
    if (h.errors) {
        fprintf(stderr, "lss-bench: W1 over HTTP: %llu requests failed\n",
                (unsigned long long)h.errors);
        return LSS_EIO;
    }
    r->check = h.check;
    char *note = http_note[kind];
    int n = snprintf(note, sizeof http_note[0],
                     "%d conns, %llu writes + %llu gets%s; CPU per request: "
                     "loader %.1fus, server %.1fus",
                     h.workers, (unsigned long long)h.writes,
                     (unsigned long long)h.reads,
                     h.seconds > 0 ? " (--seconds: check not comparable)" : "",
                     h.loader_us, h.server_us);
    if (!h.null_store && n > 0 && (size_t)n < sizeof http_note[0])
        snprintf(note + n, sizeof http_note[0] - (size_t)n,
                 "; read back %llu msgs",
                 (unsigned long long)h.verified);
    r->note = note;
    return LSS_OK;
}

int case_http_null(bench_run *r)
{
    return http_case(r, SHIM_NULL);
}

int case_http_w1(bench_run *r)
{
    return http_case(r, SHIM_MEMORY);
}

int case_http_w1_file(bench_run *r)
{
    return http_case(r, SHIM_FILE);
}

/* ------------------------------------------------------------------------
 * wrk against the null store: a second ceiling, from a load generator that
 * is not ours (one thread, the same connections, one fixed stream.write)
 * ---------------------------------------------------------------------- */

static char wrk_path[PATH_MAX];
static int wrk_looked;

const char *http_wrk_path(void)
{
    if (wrk_looked)
        return wrk_looked > 0 ? wrk_path : NULL;
    wrk_looked = -1;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n && n < sizeof wrk_path - 8) {
            snprintf(wrk_path, sizeof wrk_path, "%.*s/wrk", (int)n, path);
            if (access(wrk_path, X_OK) == 0) {
                wrk_looked = 1;
                break;
            }
        }
        path += n + (path[n] == ':');
    }
    return wrk_looked > 0 ? wrk_path : NULL;
}

/* "87.00us" and the like, in ns; -1 when unreadable. */
static double wrk_time(const char *p)
{
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        return -1;
    if (!strncmp(end, "us", 2))
        return v * 1e3;
    if (!strncmp(end, "ms", 2))
        return v * 1e6;
    if (!strncmp(end, "s", 1))
        return v * 1e9;
    if (!strncmp(end, "m", 1))
        return v * 60e9;
    return -1;
}

static double wrk_field(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? wrk_time(p + strlen(key) + strspn(p + strlen(key), " ")) : -1;
}

int case_http_null_wrk(bench_run *r)
{
    static char note[256];
    const char *wrk = http_wrk_path();
    if (!wrk)
        return LSS_ENOTSUP;
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/wrk-w1-%d.lua", r->dir, (int)getpid());
    FILE *f = fopen(script, "w");
    if (!f)
        return LSS_EIO;
    fprintf(f,
            "wrk.method = \"POST\"\n"
            "wrk.path = \"/rpc\"\n"
            "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n"
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
            "wrk.body = '[\"stream.write\",\"%s\",{\"type\":\"%s\","
            "\"data\":%s,\"metadata\":%s}]'\n",
            HTTP_TOKEN, w1_stream[0].s, W1_TYPE, W1_DATA, W1_META);
    if (fclose(f) != 0) {
        unlink(script);
        return LSS_EIO;
    }
    shim_proc p;
    int rc = shim_start(&p, SHIM_NULL, r->dir);
    if (rc != LSS_OK) {
        unlink(script);
        return rc;
    }
    int secs = bench_http.seconds > 0 ? (int)(bench_http.seconds + 0.5) : 4;
    char conns[32], dur[32], url[64];
    snprintf(conns, sizeof conns, "-c%d", bench_http.workers);
    snprintf(dur, sizeof dur, "-d%ds", secs < 1 ? 1 : secs);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", p.port);
    const char *argv[] = {wrk, "-t1", conns, dur, "--latency", "-s", script,
                          url, NULL};
    int fds[2];
    char out[16384];
    size_t have = 0;
    rc = LSS_EIO;
    if (pipe2(fds, O_CLOEXEC) == 0) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        pid_t pid;
        int e = posix_spawn(&pid, wrk, &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(fds[1]);
        if (!e) {
            ssize_t k;
            while ((k = read(fds[0], out + have, sizeof out - 1 - have)) > 0)
                have += (size_t)k;
            int st;
            waitpid(pid, &st, 0);
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                rc = LSS_OK;
        }
        close(fds[0]);
    }
    shim_stop(&p);
    unlink(script);
    out[have] = '\0';
    const char *q = strstr(out, "Requests/sec:");
    const char *n = strstr(out, " requests in ");
    double rps = q ? strtod(q + 13, NULL) : 0;
    long long reqs = 0;
    if (n) {
        const char *b = n;
        while (b > out && b[-1] >= '0' && b[-1] <= '9')
            b--;
        reqs = atoll(b);
    }
    if (rc != LSS_OK || rps <= 0 || reqs <= 0) {
        fprintf(stderr, "lss-bench: wrk failed:\n%s\n", out);
        return LSS_EIO;
    }
    if (strstr(out, "Non-2xx or 3xx responses:") ||
        strstr(out, "Socket errors")) {
        fprintf(stderr, "lss-bench: wrk saw errors:\n%s\n", out);
        return LSS_EIO;
    }
    /* wrk's own figures: its rate over its own clock, its percentiles */
    r->started = r->stopped = 1;
    r->t0 = 0;
    r->t1 = (uint64_t)((double)reqs / rps * 1e9);
    r->lib0 = r->lib1 = 0;
    r->mal0 = r->mal1 = UINT64_MAX;
    r->ops = (double)reqs;
    r->lat_given = 1;
    r->lat_mean = wrk_field(out, "Latency");
    r->lat_p50 = wrk_field(out, " 50%");
    r->lat_p99 = wrk_field(out, " 99%");
    r->lat_p999 = -1;
    r->check = 0;
    snprintf(note, sizeof note,
             "wrk -t1 %s %s --latency, one fixed stream.write; not verified",
             conns, dur);
    r->note = note;
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * lss-bench http
 * ---------------------------------------------------------------------- */

static void fmt_lat(char *out, size_t cap, double ns)
{
    if (ns < 1e6)
        snprintf(out, cap, "%.1f us", ns / 1e3);
    else
        snprintf(out, cap, "%.2f ms", ns / 1e6);
}

static void http_usage(FILE *f)
{
    fprintf(f,
            "usage: lss-bench http --url http://HOST:PORT [--workers N]\n"
            "                      [--seconds S | --requests N] [--token T]\n"
            "                      [--null-store] [--fresh]\n");
}

int http_main(int argc, char **argv)
{
    const char *url = NULL, *token = HTTP_TOKEN;
    http_load h;
    memset(&h, 0, sizeof h);
    h.ep = -1;
    h.workers = 10;
    h.seconds = 30;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int v = i + 1 < argc;
        if (!strcmp(a, "--url") && v) {
            url = argv[++i];
        } else if (!strcmp(a, "--workers") && v) {
            h.workers = atoi(argv[++i]);
        } else if (!strcmp(a, "--seconds") && v) {
            h.seconds = atof(argv[++i]);
            h.requests = 0;
        } else if (!strcmp(a, "--requests") && v) {
            h.requests = atol(argv[++i]);
            h.seconds = 0;
        } else if (!strcmp(a, "--token") && v) {
            token = argv[++i];
        } else if (!strcmp(a, "--null-store")) {
            h.null_store = 1;
        } else if (!strcmp(a, "--fresh")) {
            h.fresh = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            http_usage(stdout);
            return 0;
        } else {
            http_usage(stderr);
            return 2;
        }
    }
    if (!url || h.workers < 1 || h.workers > MAX_WORKERS ||
        (h.seconds <= 0 && h.requests <= 0)) {
        http_usage(stderr);
        return 2;
    }
    http_target t;
    if (parse_url(url, &t) != 0)
        return 2;
    t.token = token;
    const char *brk = getenv("LSS_BENCH_BREAK");
    bench_break = brk && *brk && strcmp(brk, "0");
    bench_names_init();
    static bench_hist hist;
    bench_run r;
    memset(&r, 0, sizeof r);
    r.size = 100;
    r.hist = &hist;
    h.t = &t;
    h.r = &r;
    h.warm_seconds = h.seconds > 0 ? (h.seconds / 10 < 1 ? h.seconds / 10 : 1)
                                   : 0;
    h.warm = h.requests / 20 + 10L * h.workers;
    printf("W1 over HTTP: %s, %d connections, ", url, h.workers);
    if (h.seconds > 0)
        printf("%.1f s (after %.1f s warm-up)\n", h.seconds, h.warm_seconds);
    else
        printf("%ld requests (after %ld warm-up)\n", h.requests, h.warm);
    fflush(stdout);
    int rc = http_load_run(&h);
    if (rc == LSS_ENOMEM || rc == LSS_EIO) {
        fprintf(stderr, "lss-bench http: %s\n",
                rc == LSS_ENOMEM ? "out of memory" : h.why);
        return 1;
    }
    char mean[32], p50[32], p99[32], p999[32];
    fmt_lat(mean, sizeof mean, hist.n ? hist.sum / (double)hist.n : 0);
    fmt_lat(p50, sizeof p50, hist_quantile(&hist, 0.50));
    fmt_lat(p99, sizeof p99, hist_quantile(&hist, 0.99));
    fmt_lat(p999, sizeof p999, hist_quantile(&hist, 0.999));
    printf("requests   %llu in %.2f s: %llu writes, %llu gets, %llu errors"
           "%s\n",
           (unsigned long long)(h.writes + h.reads), h.elapsed,
           (unsigned long long)h.writes, (unsigned long long)h.reads,
           (unsigned long long)h.errors,
           h.reconnects ? " (connections were reopened)" : "");
    printf("ops/s      %.0f (200 answers)\n",
           h.elapsed > 0 ? (double)h.ok / h.elapsed : 0);
    printf("latency    mean %s, p50 %s, p99 %s, p99.9 %s\n", mean, p50, p99,
           p999);
    printf("loader CPU %.2f us per request\n", h.loader_us);
    if (rc != LSS_OK) {
        printf("verification FAILED: %s%s\n", h.why,
               bench_break ? " (LSS_BENCH_BREAK: a simulated wrong answer)"
                           : "");
        return 1;
    }
    if (h.null_store)
        printf("verified   every answer is the null store's %s\n", NULL_BODY);
    else
        printf("verified   positions increase per stream and connection, are "
               "gapless per stream; read back %llu messages\n",
               (unsigned long long)h.verified);
    printf("check      %016llx%s\n", (unsigned long long)h.check,
           h.seconds > 0 ? " (time-bounded: not comparable between runs)"
                         : " (comparable between runs on a fresh server)");
    return h.errors ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * For W3 (cases_sse.c): one shim-server --test-mode and the W1 loader
 * ---------------------------------------------------------------------- */

static shim_proc w3_shim = {.pid = 0, .out = -1};

const char *http_token(void)
{
    return HTTP_TOKEN;
}

int http_shim_memory_start(int *port, int *pid)
{
    int rc = shim_start(&w3_shim, SHIM_MEMORY, NULL);
    if (rc == LSS_OK) {
        *port = w3_shim.port;
        *pid = (int)w3_shim.pid;
    }
    return rc;
}

void http_shim_memory_stop(void)
{
    shim_stop(&w3_shim);
}

int http_w1_load(bench_run *r, int port, int pid, long requests,
                 http_write_hook on_write, void *arg)
{
    http_target t;
    local_target(&t, port, HTTP_TOKEN);
    http_load h;
    memset(&h, 0, sizeof h);
    h.ep = -1;
    h.t = &t;
    h.workers = bench_http.workers;
    h.requests = requests;
    h.warm = h.requests / 20 + 10L * h.workers;
    h.fresh = 1;
    h.r = r;
    h.server = (pid_t)pid;
    h.on_write = on_write;
    h.on_write_arg = arg;
    int rc = http_load_run(&h);
    if (rc != LSS_OK) {
        fprintf(stderr, "lss-bench: W1 over HTTP: %s%s\n",
                rc == LSS_EINTERNAL ? "verification FAILED: " : "", h.why);
        return rc;
    }
    if (h.errors) {
        fprintf(stderr, "lss-bench: W1 over HTTP: %llu requests failed\n",
                (unsigned long long)h.errors);
        return LSS_EIO;
    }
    r->check = h.check;
    return LSS_OK;
}
