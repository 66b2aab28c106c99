/* fuzz_http.c — the shim's incremental HTTP/1.1 request parser
 * (shim-server/http.c: http_parse_head, http_body_feed, http_query_get).
 *
 * The input is what a client sends on one connection (pipelined requests
 * included).  It is run the way server.c runs it — skip blank lines before
 * a request, parse the head, decode the body, continue at the end of the
 * request — and every outcome goes into a transcript: each request's
 * method, decoded path, query, flags, framing and decoded body, or the
 * error that ended the connection, or "incomplete".
 *
 * Properties, on any input of up to MAX_IN bytes:
 *   - the transcript is the same whether the bytes arrive all at once, one
 *     at a time, or in two pieces split at several points; in the two-piece
 *     runs every call sees a fresh buffer of exactly the bytes received, so
 *     a parser that keeps a pointer or reads past what it was given is
 *     caught (http.h promises offsets only);
 *   - spans lie inside the head, the head fits HTTP_HEAD_MAX, a path is "*"
 *     or starts with '/' without "//", an error is 400, 431 or 501;
 *   - a body never decodes past its raw bytes nor over the limit, and a
 *     Content-Length body is exactly that long;
 *   - http_query_get never writes more than the query's length. */
#include "fuzz.h"

#include <stdarg.h>

#include "http.h"

#define MAX_IN (24 * 1024)
#define BODY_LIMIT 1000

typedef struct out {
    char *p;
    size_t n, cap;
} out;

static void put(out *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        size_t cap = (o->n + n) * 2 + 64;
        char *q = realloc(o->p, cap);
        CHECK(q != NULL, "out of memory");
        o->p = q;
        o->cap = cap;
    }
    if (n)
        memcpy(o->p + o->n, p, n);
    o->n += n;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void putf(out *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    CHECK(k >= 0 && (size_t)k < sizeof tmp, "transcript line too long");
    put(o, tmp, (size_t)k);
}

static void check_span(http_span s, uint32_t head_n, const char *what)
{
    CHECK((uint64_t)s.off + s.n <= head_n, "%s span outside the head", what);
}

static void check_head(const char *p, const http_req *r)
{
    CHECK(r->head_n > 0 && r->head_n <= HTTP_HEAD_MAX, "head_n %u",
          r->head_n);
    check_span(r->method, r->head_n, "method");
    check_span(r->path, r->head_n, "path");
    check_span(r->query, r->head_n, "query");
    if (r->has_auth)
        check_span(r->auth, r->head_n, "auth");
    CHECK(r->method.n > 0 && r->path.n > 0, "empty method or path");
    const char *path = p + r->path.off;
    CHECK((r->path.n == 1 && path[0] == '*') || path[0] == '/',
          "path does not start with '/': %.*s", (int)r->path.n, path);
    for (uint32_t i = 1; i < r->path.n; i++)
        CHECK(!(path[i] == '/' && path[i - 1] == '/'), "'//' in the path");
    CHECK(r->minor >= 0 && r->minor <= 9, "minor %d", r->minor);
    CHECK(r->body_kind >= HTTP_BODY_NONE && r->body_kind <= HTTP_BODY_CHUNKED,
          "body kind %d", r->body_kind);

    /* Query lookups write at most the query's length. */
    static const char *const keys[] = {"stream", "position", "all", "force"};
    char *buf = malloc(r->query.n ? r->query.n : 1);
    CHECK(buf != NULL, "out of memory");
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t got = (size_t)-1;
        if (http_query_get(p + r->query.off, r->query.n, keys[k], buf, &got))
            CHECK(got <= r->query.n, "query value longer than the query");
    }
    free(buf);
}

static void record_head(out *o, const char *p, const http_req *r)
{
    putf(o, "REQ minor=%d kind=%d cl=%llu head=%u exp=%d close=%d ka=%d "
            "auth=%d\n",
         r->minor, r->body_kind, (unsigned long long)r->content_length,
         (unsigned)r->head_n, r->expect_continue, r->conn_close,
         r->conn_keep_alive, r->has_auth);
    put(o, p + r->method.off, r->method.n);
    put(o, "|", 1);
    put(o, p + r->path.off, r->path.n);
    put(o, "|", 1);
    put(o, p + r->query.off, r->query.n);
    put(o, "|", 1);
    if (r->has_auth)
        put(o, p + r->auth.off, r->auth.n);
    put(o, "\n", 1);
}

/* The connection's parsing state between arrivals. */
typedef struct conn {
    size_t start;   /* first byte of the current request */
    size_t scanned; /* http_parse_head's resume point */
    int in_body;
    int over;       /* an error ended the connection */
    http_req req;
    http_body body;
} conn;

/* Process what p[0..n) (the whole stream received so far) allows. */
static void advance(conn *c, char *p, size_t n, out *o)
{
    while (!c->over) {
        if (!c->in_body) {
            if (!c->scanned)
                while (c->start < n && (p[c->start] == '\r' || p[c->start] == '\n'))
                    c->start++;
            if (c->start == n)
                return;
            int rc = http_parse_head(p + c->start, n - c->start, &c->scanned,
                                     &c->req);
            if (rc == LSS_AGAIN)
                return;
            if (rc != LSS_OK) {
                CHECK(rc == LSS_EINVAL, "parse_head returned %d", rc);
                CHECK(c->req.status == 400 || c->req.status == 431 ||
                          c->req.status == 501,
                      "error status %d", c->req.status);
                putf(o, "HEADERR %d\n", c->req.status);
                c->over = 1;
                return;
            }
            check_head(p + c->start, &c->req);
            record_head(o, p + c->start, &c->req);
            http_body_init(&c->body, &c->req);
            c->in_body = 1;
        }
        http_body *b = &c->body;
        int rc = http_body_feed(b, p + c->start, n - c->start, BODY_LIMIT);
        CHECK(b->wpos <= b->rpos && b->rpos <= n - c->start,
              "body offsets wpos %zu rpos %zu of %zu", b->wpos, b->rpos,
              n - c->start);
        CHECK(b->total == b->wpos - c->req.head_n, "total is not wpos - head");
        if (rc == LSS_AGAIN)
            return;
        if (rc != LSS_OK) {
            CHECK(rc == LSS_EINVAL || rc == LSS_ETOOBIG, "body_feed: %d", rc);
            putf(o, "BODYERR %d\n", rc);
            c->over = 1;
            return;
        }
        CHECK(b->total <= BODY_LIMIT || c->req.body_kind == HTTP_BODY_LENGTH,
              "chunked body over the limit");
        if (c->req.body_kind == HTTP_BODY_LENGTH)
            CHECK(b->total == c->req.content_length, "length body of %llu",
                  (unsigned long long)b->total);
        putf(o, "BODY %llu end=%zu\n", (unsigned long long)b->total, b->rpos);
        put(o, p + c->start + c->req.head_n, b->total);
        put(o, "\n", 1);
        c->start += b->rpos;
        c->scanned = 0;
        c->in_body = 0;
    }
}

static void finish(conn *c, out *o)
{
    if (!c->over)
        putf(o, "END in_body=%d start=%zu\n", c->in_body, c->start);
}

/* All at once, in a buffer of exactly n bytes. */
static void run_whole(const uint8_t *d, size_t n, out *o)
{
    char *p = fuzz_dup(d, n);
    conn c = {0};
    advance(&c, p, n, o);
    finish(&c, o);
    free(p);
}

/* One byte at a time; the bytes not yet received hold junk. */
static void run_bytes(const uint8_t *d, size_t n, out *o)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL, "out of memory");
    memset(p, '\n', n);
    conn c = {0};
    for (size_t i = 0; i < n; i++) {
        p[i] = (char)d[i];
        advance(&c, p, i + 1, o);
    }
    finish(&c, o);
    free(p);
}

/* Two pieces split at k; each call gets a fresh buffer holding exactly the
 * bytes received, carrying over the decoding done in place. */
static void run_split(const uint8_t *d, size_t n, size_t k, out *o)
{
    char *p = fuzz_dup(d, k);
    conn c = {0};
    advance(&c, p, k, o);
    char *q = malloc(n ? n : 1);
    CHECK(q != NULL, "out of memory");
    if (k)
        memcpy(q, p, k);
    memcpy(q + k, d + k, n - k);
    free(p);
    advance(&c, q, n, o);
    finish(&c, o);
    free(q);
}

static void expect_same(const out *a, const out *b, const char *how)
{
    CHECK(a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0),
          "%s differs from all at once:\n--- whole\n%.*s\n--- %s\n%.*s", how,
          (int)a->n, a->p, how, (int)b->n, b->p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    out whole = {0}, other = {0};
    run_whole(data, size, &whole);
    run_bytes(data, size, &other);
    expect_same(&whole, &other, "one byte at a time");
    size_t h = 0;
    for (size_t i = 0; i < size; i++)
        h = h * 31 + data[i];
    size_t ks[] = {1, size / 2, size - 1, size ? h % size : 0};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        if (ks[i] >= size)
            continue;
        other.n = 0;
        run_split(data, size, ks[i], &other);
        char how[64];
        snprintf(how, sizeof how, "split at %zu", ks[i]);
        expect_same(&whole, &other, how);
    }
    free(whole.p);
    free(other.p);
    return 0;
}
