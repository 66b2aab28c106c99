/* cli_transfer.c — the `export` and `import` subcommands (PROTOCOL.md 9.3,
 * 9.4): small blocking HTTP/1.1 clients of a running server.  Cold code:
 * clarity over speed.  gzip goes through zlib when the build has it. */
#include "shim.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifdef SHIM_HAVE_ZLIB
#include <zlib.h>
#endif

#define IO_CHUNK 65536

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int fail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Error: %s\n", msg);
    return 1;
}

/* ------------------------------------------------------------------------
 * URLs and connections
 * ---------------------------------------------------------------------- */

typedef struct url {
    char host[256];
    char port[8];
    char base[1024]; /* path prefix without a trailing '/' */
} url;

static int url_parse(const char *s, url *u)
{
    memset(u, 0, sizeof *u);
    if (strncasecmp(s, "http://", 7) != 0)
        return -1;
    s += 7;
    const char *hs = s, *he;
    if (*s == '[') {
        he = strchr(s, ']');
        if (!he)
            return -1;
        hs = s + 1;
        s = he + 1;
    } else {
        while (*s && *s != ':' && *s != '/')
            s++;
        he = s;
    }
    size_t hn = (size_t)(he - hs);
    if (!hn || hn >= sizeof u->host)
        return -1;
    memcpy(u->host, hs, hn);
    snprintf(u->port, sizeof u->port, "80");
    if (*s == ':') {
        s++;
        size_t pn = strspn(s, "0123456789");
        if (!pn || pn >= sizeof u->port)
            return -1;
        memcpy(u->port, s, pn);
        u->port[pn] = '\0';
        s += pn;
    }
    if (*s && *s != '/')
        return -1;
    snprintf(u->base, sizeof u->base, "%s", s);
    size_t bn = strlen(u->base);
    while (bn && u->base[bn - 1] == '/')
        u->base[--bn] = '\0';
    return 0;
}

static int dial(const url *u, int timeout_s, char *err, size_t ecap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(u->host, u->port, &hints, &res);
    if (g != 0) {
        snprintf(err, ecap, "%s: %s", u->host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, ecap, "connect %s:%s: %s", u->host, u->port, strerror(e));
        return -1;
    }
    if (timeout_s > 0) {
        struct timeval tv = {timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Append s[0..n) to b, percent-encoded as a query value. */
static int query_add(sbuf *b, const char *key, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    if (sbuf_add(b, b->len && memchr(b->p, '?', b->len) ? "&" : "?", 1) ||
        sbuf_add(b, key, strlen(key)) || sbuf_add(b, "=", 1))
        return -1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char e[3];
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || strchr("-_.~", *p)) {
            if (sbuf_add(b, p, 1))
                return -1;
            continue;
        }
        e[0] = '%';
        e[1] = hex[*p >> 4];
        e[2] = hex[*p & 15];
        if (sbuf_add(b, e, 3))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * An incremental HTTP/1.1 response reader
 * ---------------------------------------------------------------------- */

enum { HR_SIZE, HR_DATA, HR_CRLF, HR_DONE };

typedef struct hresp {
    sbuf raw;        /* received, not yet consumed */
    int head_done;
    int status;
    int chunked;
    int64_t left;    /* Content-Length left, -1 = until EOF */
    int cst;         /* chunked state */
    uint64_t cleft;
    int done;
} hresp;

static void hresp_drop(hresp *r, size_t n)
{
    if (!n)
        return;
    memmove(r->raw.p, r->raw.p + n, r->raw.len - n);
    r->raw.len -= n;
}

static int hresp_head(hresp *r)
{
    for (;;) {
        char *e = r->raw.len ? memmem(r->raw.p, r->raw.len, "\r\n\r\n", 4) : NULL;
        if (!e)
            return 0;
        size_t hn = (size_t)(e - r->raw.p) + 4;
        if (hn < 12 || memcmp(r->raw.p, "HTTP/1.", 7) != 0)
            return -1;
        r->status = atoi(r->raw.p + 9);
        r->left = -1;
        r->chunked = 0;
        for (char *l = memchr(r->raw.p, '\n', hn); l && l < e; l = memchr(l, '\n', (size_t)(e - l))) {
            l++;
            if (!strncasecmp(l, "content-length:", 15))
                r->left = strtoll(l + 15, NULL, 10);
            else if (!strncasecmp(l, "transfer-encoding:", 18)) {
                const char *v = l + 18;
                while (*v == ' ')
                    v++;
                r->chunked = !strncasecmp(v, "chunked", 7);
            }
        }
        hresp_drop(r, hn);
        if (r->status >= 100 && r->status < 200)
            continue; /* interim */
        r->head_done = 1;
        if (r->chunked)
            r->left = -1;
        else if (r->left == 0)
            r->done = 1;
        return 1;
    }
}

/* Decode what r->raw holds into out.  eof: the peer closed.  Returns 0 or
 * -1 on a malformed response. */
static int hresp_feed(hresp *r, sbuf *out, int eof)
{
    if (!r->head_done) {
        int h = hresp_head(r);
        if (h < 0)
            return -1;
        if (!h)
            return eof ? -1 : 0;
    }
    while (!r->done) {
        if (!r->chunked) {
            size_t take = r->raw.len;
            if (r->left >= 0 && (uint64_t)r->left < take)
                take = (size_t)r->left;
            if (take && sbuf_add(out, r->raw.p, take))
                return -1;
            hresp_drop(r, take);
            if (r->left >= 0) {
                r->left -= (int64_t)take;
                if (!r->left)
                    r->done = 1;
            }
            if (eof && !r->done && r->left < 0)
                r->done = 1;
            return eof && !r->done ? -1 : 0;
        }
        if (r->cst == HR_SIZE) {
            char *nl = r->raw.len ? memchr(r->raw.p, '\n', r->raw.len) : NULL;
            if (!nl)
                return eof ? -1 : 0;
            r->cleft = strtoull(r->raw.p, NULL, 16);
            hresp_drop(r, (size_t)(nl - r->raw.p) + 1);
            if (!r->cleft) {
                r->done = 1; /* trailers are not read: the connection closes */
                return 0;
            }
            r->cst = HR_DATA;
        } else if (r->cst == HR_DATA) {
            size_t take = r->raw.len < r->cleft ? r->raw.len : (size_t)r->cleft;
            if (!take)
                return eof ? -1 : 0;
            if (sbuf_add(out, r->raw.p, take))
                return -1;
            hresp_drop(r, take);
            r->cleft -= take;
            if (!r->cleft)
                r->cst = HR_CRLF;
        } else {
            if (r->raw.len < 2)
                return eof ? -1 : 0;
            hresp_drop(r, 2);
            r->cst = HR_SIZE;
        }
    }
    return 0;
}

/* Read once from fd into r and decode.  Returns 1 while open, 0 at EOF,
 * -1 on an error. */
static int hresp_read(int fd, hresp *r, sbuf *out)
{
    char *w = sbuf_reserve(&r->raw, IO_CHUNK);
    if (!w)
        return -1;
    ssize_t n = recv(fd, w, IO_CHUNK, 0);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n < 0)
        return -1;
    r->raw.len += (size_t)n;
    if (hresp_feed(r, out, n == 0) != 0)
        return -1;
    return n > 0;
}

/* ------------------------------------------------------------------------
 * Output and input, gzip optional
 * ---------------------------------------------------------------------- */

typedef struct sink {
    FILE *f;
    int gz;
#ifdef SHIM_HAVE_ZLIB
    z_stream z;
#endif
} sink;

static int sink_open(sink *k, const char *path, int gz)
{
    memset(k, 0, sizeof *k);
    k->f = path && *path ? fopen(path, "wb") : stdout;
    if (!k->f)
        return fail("cannot create %s: %s", path, strerror(errno));
    if (gz) {
#ifdef SHIM_HAVE_ZLIB
        if (deflateInit2(&k->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return fail("cannot start gzip");
        k->gz = 1;
#else
        return fail("--gzip: this build has no zlib");
#endif
    }
    return 0;
}

static int sink_write(sink *k, const void *p, size_t n, int finish)
{
    if (!k->gz)
        return n && fwrite(p, 1, n, k->f) != n ? -1 : 0;
#ifdef SHIM_HAVE_ZLIB
    unsigned char out[IO_CHUNK];
    k->z.next_in = (unsigned char *)(uintptr_t)p;
    k->z.avail_in = (uInt)n;
    int zr;
    do {
        k->z.next_out = out;
        k->z.avail_out = sizeof out;
        zr = deflate(&k->z, finish ? Z_FINISH : Z_NO_FLUSH);
        if (zr == Z_STREAM_ERROR)
            return -1;
        size_t have = sizeof out - k->z.avail_out;
        if (have && fwrite(out, 1, have, k->f) != have)
            return -1;
    } while (k->z.avail_out == 0 || (finish && zr != Z_STREAM_END));
    return 0;
#else
    return -1;
#endif
}

static int sink_close(sink *k, int ok)
{
    int rc = 0;
    if (k->gz) {
        if (ok && sink_write(k, NULL, 0, 1) != 0)
            rc = -1;
#ifdef SHIM_HAVE_ZLIB
        deflateEnd(&k->z);
#endif
    }
    if (k->f && fflush(k->f) != 0)
        rc = -1;
    if (k->f && k->f != stdout && fclose(k->f) != 0)
        rc = -1;
    k->f = NULL;
    return rc;
}

typedef struct source {
    FILE *f;
    int gz, end;
#ifdef SHIM_HAVE_ZLIB
    z_stream z;
    unsigned char in[IO_CHUNK];
#endif
} source;

static int source_open(source *s, const char *path, int gz)
{
    memset(s, 0, sizeof *s);
    s->f = path && *path ? fopen(path, "rb") : stdin;
    if (!s->f)
        return fail("cannot open %s: %s", path, strerror(errno));
    if (gz) {
#ifdef SHIM_HAVE_ZLIB
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
            return fail("cannot start gunzip");
        s->gz = 1;
#else
        return fail("--gzip: this build has no zlib");
#endif
    }
    return 0;
}

/* Up to cap bytes; 0 at the end; -1 on an error. */
static ssize_t source_read(source *s, char *out, size_t cap)
{
    if (!s->gz) {
        size_t n = fread(out, 1, cap, s->f);
        return n ? (ssize_t)n : ferror(s->f) ? -1 : 0;
    }
#ifdef SHIM_HAVE_ZLIB
    s->z.next_out = (unsigned char *)out;
    s->z.avail_out = (uInt)cap;
    while (s->z.avail_out == cap && !s->end) {
        if (!s->z.avail_in) {
            size_t n = fread(s->in, 1, sizeof s->in, s->f);
            if (!n) {
                if (ferror(s->f))
                    return -1;
                s->end = 1;
                break;
            }
            s->z.next_in = s->in;
            s->z.avail_in = (uInt)n;
        }
        int zr = inflate(&s->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            if (s->z.avail_in)
                inflateReset(&s->z); /* another gzip member follows */
            else
                s->end = feof(s->f) ? 1 : 0;
            if (!s->end && !s->z.avail_in)
                inflateReset(&s->z);
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return -1;
        }
    }
    return (ssize_t)(cap - s->z.avail_out);
#else
    return -1;
#endif
}

static void source_close(source *s)
{
#ifdef SHIM_HAVE_ZLIB
    if (s->gz)
        inflateEnd(&s->z);
#endif
    if (s->f && s->f != stdin)
        fclose(s->f);
}

/* ------------------------------------------------------------------------
 * A little JSON reading for the server's answers (valid JSON by contract)
 * ---------------------------------------------------------------------- */

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *js_skip_str(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* The end of the value at p. */
static const char *js_skip(const char *p, const char *e)
{
    p = js_ws(p, e);
    if (p >= e)
        return NULL;
    if (*p == '"')
        return js_skip_str(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            if (*p == '"') {
                p = js_skip_str(p, e);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < e && !strchr(",]} \t\r\n", *p))
        p++;
    return p;
}

static void put_utf8(sbuf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    sbuf_add(b, u, n);
}

/* Unescape the string at p into b; returns its end. */
static const char *js_str(const char *p, const char *e, sbuf *b)
{
    p = js_ws(p, e);
    if (p >= e || *p != '"')
        return NULL;
    for (p++; p < e && *p != '"'; p++) {
        if (*p != '\\') {
            sbuf_add(b, p, 1);
            continue;
        }
        if (++p >= e)
            return NULL;
        char c = *p, lit;
        switch (c) {
        case '"': case '\\': case '/': lit = c; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        default: lit = 0; break;
        }
        if (c == 'u' && e - p > 4) {
            unsigned cp = (unsigned)strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && e - p > 6 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo = (unsigned)strtoul((char[5]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            put_utf8(b, cp);
        } else if (lit) {
            sbuf_add(b, &lit, 1);
        } else {
            return NULL;
        }
    }
    return p < e ? p + 1 : NULL;
}

/* The value of key in the flat object o[0..n), or NULL. */
static const char *js_get(const char *o, size_t n, const char *key, const char **vend)
{
    const char *p = js_ws(o, o + n), *e = o + n;
    if (p >= e || *p != '{')
        return NULL;
    p++;
    size_t kl = strlen(key);
    for (;;) {
        p = js_ws(p, e);
        if (p >= e || *p != '"')
            return NULL;
        const char *ks = p + 1, *ke = js_skip_str(p, e);
        if (!ke)
            return NULL;
        p = js_ws(ke, e);
        if (p >= e || *p != ':')
            return NULL;
        const char *v = js_ws(p + 1, e), *ve = js_skip(v, e);
        if (!ve)
            return NULL;
        if ((size_t)(ke - 1 - ks) == kl && !memcmp(ks, key, kl)) {
            *vend = ve;
            return v;
        }
        p = js_ws(ve, e);
        if (p >= e || *p != ',')
            return NULL;
        p++;
    }
}

/* ------------------------------------------------------------------------
 * export
 * ---------------------------------------------------------------------- */

typedef struct xfer {
    const char *url, *token, *categories, *since, *until, *output, *input;
    int gz, force;
    int64_t since_us, until_us;
    int has_since, has_until;
    url u;
    int64_t count;
} xfer;

static void progress_export(const xfer *x)
{
    fprintf(stderr, "\rExported: %lld events...", (long long)x->count);
}

/* Send one request (Connection: close) and read the answer's head. */
static int request(const xfer *x, const char *method, const char *path_q,
                   const char *extra, const char *body, size_t body_n,
                   int timeout_s, hresp *r, sbuf *out, int *fd_out)
{
    char err[512];
    int fd = dial(&x->u, timeout_s, err, sizeof err);
    if (fd < 0)
        return fail("%s", err);
    char head[4096];
    int hn = snprintf(head, sizeof head,
                      "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\n"
                      "Authorization: Bearer %s\r\n%s"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      method, x->u.base, path_q, x->u.host, x->u.port, x->token,
                      extra ? extra : "", body_n);
    if (hn < 0 || (size_t)hn >= sizeof head || send_all(fd, head, (size_t)hn) ||
        (body_n && send_all(fd, body, body_n))) {
        close(fd);
        return fail("failed to send the request: %s", strerror(errno));
    }
    memset(r, 0, sizeof *r);
    while (!r->head_done) {
        int k = hresp_read(fd, r, out);
        if (k < 0 || (k == 0 && !r->head_done)) {
            sbuf_free(&r->raw);
            close(fd);
            return fail("failed to read the response: %s",
                        k < 0 && errno ? strerror(errno) : "connection closed");
        }
    }
    *fd_out = fd;
    return 0;
}

static int read_rest(int fd, hresp *r, sbuf *out)
{
    while (!r->done) {
        int k = hresp_read(fd, r, out);
        if (k < 0)
            return -1;
        if (k == 0 && !r->done)
            return -1;
    }
    return 0;
}

static int keep(const xfer *x, int64_t t_us)
{
    return (!x->has_since || t_us >= x->since_us) && (!x->has_until || t_us < x->until_us);
}

/* Servers without /export: category.get page by page (9.3). */
static int export_fallback(xfer *x, sink *k)
{
    sbuf cats = {0};
    size_t ncat = 0;
    const char *c = x->categories ? x->categories : "";
    /* the list as "a\0b\0" */
    while (1) {
        const char *comma = strchr(c, ',');
        size_t n = comma ? (size_t)(comma - c) : strlen(c);
        const char *a = c, *b = c + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            sbuf_add(&cats, a, (size_t)(b - a));
            sbuf_add(&cats, "", 1);
            ncat++;
        }
        if (!comma)
            break;
        c = comma + 1;
    }
    if (!ncat)
        sbuf_add(&cats, "", 1), ncat = 1;
    int rc = 0;
    sbuf body = {0}, strs = {0}, line = {0};
    const char *cat = cats.p;
    for (size_t ci = 0; ci < ncat && !rc; ci++, cat += strlen(cat) + 1) {
        int64_t pos = 0;
        for (;;) {
            char esc[6 * 256 + 2];
            size_t cl = strlen(cat);
            if (cl > 256)
                cl = 256;
            char req[2048];
            int rn = snprintf(req, sizeof req,
                              "[\"category.get\",%.*s,{\"batchSize\":1000,\"position\":%lld}]",
                              (int)json_str(esc, cat, cl), esc, (long long)pos);
            hresp r;
            int fd = -1;
            body.len = 0;
            if (request(x, "POST", "/rpc", "Content-Type: application/json\r\n", req,
                        (size_t)rn, 30, &r, &body, &fd)) {
                rc = 1;
                break;
            }
            int rr = read_rest(fd, &r, &body);
            close(fd);
            sbuf_free(&r.raw);
            if (rr) {
                rc = fail("failed to fetch messages: incomplete response");
                break;
            }
            if (r.status != 200) {
                rc = fail("failed to fetch messages: HTTP %d: %.*s", r.status,
                          (int)(body.len > 1000 ? 1000 : body.len), body.p ? body.p : "");
                break;
            }
            const char *p = js_ws(body.p, body.p + body.len), *e = body.p + body.len;
            if (p >= e || *p != '[') {
                rc = fail("failed to fetch messages: unexpected answer");
                break;
            }
            p = js_ws(p + 1, e);
            int64_t rows = 0;
            while (p < e && *p == '[') {
                /* [id, stream, type, pos, gpos, data, meta, time] */
                lss_message m;
                memset(&m, 0, sizeof m);
                strs.len = 0;
                size_t so[4], sn[4];
                const char *q = p + 1, *ve;
                int bad = 0;
                for (int f = 0; f < 8 && !bad; f++) {
                    q = js_ws(q, e);
                    if (f == 0 || f == 1 || f == 2 || f == 7) {
                        int i = f == 7 ? 3 : f;
                        so[i] = strs.len;
                        ve = js_str(q, e, &strs);
                        sn[i] = strs.len - so[i];
                    } else {
                        ve = js_skip(q, e);
                        if (ve && f == 3)
                            m.position = strtoll(q, NULL, 10);
                        else if (ve && f == 4)
                            m.global_position = strtoll(q, NULL, 10);
                        else if (ve && f == 5 && strncmp(q, "null", 4)) {
                            m.data.p = q;
                            m.data.n = (size_t)(ve - q);
                        } else if (ve && f == 6 && strncmp(q, "null", 4)) {
                            m.metadata.p = q;
                            m.metadata.n = (size_t)(ve - q);
                        }
                    }
                    if (!ve) {
                        bad = 1;
                        break;
                    }
                    q = js_ws(ve, e);
                    if (q < e && *q == ',')
                        q++;
                }
                q = js_ws(q, e);
                if (bad || q >= e || *q != ']') {
                    rc = fail("failed to fetch messages: unexpected answer");
                    break;
                }
                m.id.p = strs.p + so[0];
                m.id.n = sn[0];
                m.stream.p = strs.p + so[1];
                m.stream.n = sn[1];
                m.type.p = strs.p + so[2];
                m.type.n = sn[2];
                if (shim_parse_time(strs.p + so[3], sn[3], &m.time_us) != 0) {
                    rc = fail("failed to fetch messages: bad time");
                    break;
                }
                rows++;
                pos = m.global_position + 1;
                if (keep(x, m.time_us)) {
                    size_t need = 0;
                    lss_ndjson_write(&m, NULL, 0, &need);
                    line.len = 0;
                    if (!sbuf_reserve(&line, need) ||
                        lss_ndjson_write(&m, line.p, need, &need) != LSS_OK ||
                        sink_write(k, line.p, need, 0) != 0) {
                        rc = fail("cannot write the output");
                        break;
                    }
                    if (++x->count % 1000 == 0)
                        progress_export(x);
                }
                p = js_ws(q + 1, e);
                if (p < e && *p == ',')
                    p = js_ws(p + 1, e);
            }
            if (rc || !rows)
                break;
        }
    }
    sbuf_free(&cats);
    sbuf_free(&body);
    sbuf_free(&strs);
    sbuf_free(&line);
    return rc;
}

static int export_run(xfer *x)
{
    sink k;
    if (sink_open(&k, x->output, x->gz))
        return 1;
    sbuf path = {0}, body = {0};
    sbuf_add(&path, "/export", 7);
    if ((x->categories && *x->categories && query_add(&path, "categories", x->categories)) ||
        (x->since && *x->since && query_add(&path, "since", x->since)) ||
        (x->until && *x->until && query_add(&path, "until", x->until)) ||
        sbuf_add(&path, "", 1)) {
        sink_close(&k, 0);
        return fail("out of memory");
    }
    hresp r;
    int fd = -1, rc = 0;
    if (request(x, "GET", path.p, NULL, NULL, 0, 0, &r, &body, &fd)) {
        sbuf_free(&path);
        sink_close(&k, 0);
        return 1;
    }
    if (r.status == 200) {
        int64_t shown = 0;
        for (;;) {
            if (body.len) {
                for (size_t i = 0; i < body.len; i++)
                    x->count += body.p[i] == '\n';
                if (sink_write(&k, body.p, body.len, 0) != 0) {
                    rc = fail("cannot write the output");
                    break;
                }
                body.len = 0;
                if (x->count / 1000 != shown / 1000) {
                    progress_export(x);
                    shown = x->count;
                }
            }
            if (r.done)
                break;
            int n = hresp_read(fd, &r, &body);
            if (n < 0 || (n == 0 && !r.done && !body.len)) {
                rc = fail("failed to fetch messages: the transfer was cut short");
                break;
            }
        }
        close(fd);
    } else if (r.status == 404) {
        close(fd);
        rc = export_fallback(x, &k);
    } else {
        read_rest(fd, &r, &body);
        close(fd);
        rc = fail("failed to fetch messages: HTTP %d: %.*s", r.status,
                  (int)(body.len > 1000 ? 1000 : body.len), body.p ? body.p : "");
    }
    sbuf_free(&r.raw);
    sbuf_free(&body);
    sbuf_free(&path);
    if (sink_close(&k, !rc) != 0 && !rc)
        rc = fail("cannot write the output");
    if (!rc)
        fprintf(stderr, "\rExported: %lld events total\n", (long long)x->count);
    return rc;
}

static int common_checks(xfer *x)
{
    if (!x->url || !*x->url)
        return fail("--url is required");
    if (!x->token || !*x->token)
        return fail("--token is required");
    if (url_parse(x->url, &x->u) != 0)
        return fail("invalid --url: %s (expected http://host[:port])", x->url);
    return 0;
}

int cli_export(int argc, char **argv)
{
    xfer x;
    memset(&x, 0, sizeof x);
    flagdef tab[] = {
        {"categories", F_STR, NULL, "string", "comma-separated categories (default: all)", &x.categories},
        {"gzip", F_BOOL, NULL, "", "gzip-compress the output", &x.gz},
        {"output", F_STR, NULL, "string", "output file (default stdout)", &x.output},
        {"since", F_STR, NULL, "string", "from this time on (RFC 3339 or YYYY-MM-DD)", &x.since},
        {"token", F_STR, NULL, "string", "namespace token", &x.token},
        {"until", F_STR, NULL, "string", "before this time (RFC 3339 or YYYY-MM-DD)", &x.until},
        {"url", F_STR, NULL, "string", "server base URL, e.g. http://localhost:8080", &x.url},
    };
    int rc = shim_flags_parse(tab, sizeof tab / sizeof tab[0], argc, argv, "export");
    if (rc)
        return rc;
    if (common_checks(&x))
        return 1;
    if (x.since && *x.since) {
        if (shim_parse_time(x.since, strlen(x.since), &x.since_us) != 0)
            return fail("invalid --since: expected YYYY-MM-DD or RFC3339 format");
        x.has_since = 1;
    }
    if (x.until && *x.until) {
        if (shim_parse_time(x.until, strlen(x.until), &x.until_us) != 0)
            return fail("invalid --until: expected YYYY-MM-DD or RFC3339 format");
        x.has_until = 1;
    }
    return export_run(&x);
}

/* ------------------------------------------------------------------------
 * import
 * ---------------------------------------------------------------------- */

static int confirm(void)
{
    fprintf(stderr, "WARNING: --force deletes every message of the namespace "
                    "before importing.\n");
    fprintf(stderr, "Are you sure you want to continue? [y/N]: ");
    fflush(stderr);
    char line[256];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    char *a = line, *b = line + strlen(line);
    while (*a == ' ' || *a == '\t')
        a++;
    while (b > a && (b[-1] == '\n' || b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t'))
        b--;
    *b = '\0';
    return !strcasecmp(a, "y") || !strcasecmp(a, "yes");
}

/* Handle the complete events in ev; returns 1 when done (exit status in
 * *status), 0 to go on. */
static int import_events(sbuf *ev, int *status)
{
    size_t start = 0;
    for (;;) {
        char *blk = ev->len > start ? memmem(ev->p + start, ev->len - start, "\n\n", 2) : NULL;
        if (!blk)
            break;
        const char *b = ev->p + start;
        size_t n = (size_t)(blk - b);
        start += n + 2;
        if (n < 6 || memcmp(b, "data: ", 6) != 0)
            continue;
        b += 6;
        n -= 6;
        const char *ve, *v;
        if ((v = js_get(b, n, "error", &ve)) != NULL) {
            sbuf code = {0}, msg = {0};
            js_str(v, ve, &code);
            const char *mv = js_get(b, n, "message", &ve);
            if (mv)
                js_str(mv, ve, &msg);
            const char *lv = js_get(b, n, "line", &ve);
            sbuf_add(&code, "", 1);
            sbuf_add(&msg, "", 1);
            if (lv)
                fail("%s: %s (line %lld)", code.p, msg.p, strtoll(lv, NULL, 10));
            else
                fail("%s: %s", code.p, msg.p);
            sbuf_free(&code);
            sbuf_free(&msg);
            *status = 1;
            return 1;
        }
        if (js_get(b, n, "done", &ve)) {
            const char *iv = js_get(b, n, "imported", &ve);
            sbuf el = {0};
            const char *evv = js_get(b, n, "elapsed", &ve);
            if (evv)
                js_str(evv, ve, &el);
            sbuf_add(&el, "", 1);
            fprintf(stderr, "\rImported: %lld events in %s\n",
                    iv ? strtoll(iv, NULL, 10) : 0LL, el.p);
            sbuf_free(&el);
            *status = 0;
            return 1;
        }
        const char *iv = js_get(b, n, "imported", &ve);
        const char *gv = js_get(b, n, "gpos", &ve);
        if (iv)
            fprintf(stderr, "\rImported: %lld events (gpos: %lld)...",
                    strtoll(iv, NULL, 10), gv ? strtoll(gv, NULL, 10) : 0LL);
    }
    if (start) {
        memmove(ev->p, ev->p + start, ev->len - start);
        ev->len -= start;
    }
    return 0;
}

static int import_run(xfer *x)
{
    source src;
    if (source_open(&src, x->input, x->gz))
        return 1;
    char err[512];
    int fd = dial(&x->u, 0, err, sizeof err);
    if (fd < 0) {
        source_close(&src);
        return fail("%s", err);
    }
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "POST %s/import%s HTTP/1.1\r\nHost: %s:%s\r\n"
                      "Authorization: Bearer %s\r\n"
                      "Content-Type: application/x-ndjson\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                      x->u.base, x->force ? "?force=true" : "", x->u.host, x->u.port,
                      x->token);
    int status = -1, sending = 1;
    static char chunk[IO_CHUNK + 32];
    hresp r;
    memset(&r, 0, sizeof r);
    sbuf body = {0};
    if (hn < 0 || (size_t)hn >= sizeof head || send_all(fd, head, (size_t)hn))
        sending = 0;
    while (status < 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sending ? POLLOUT : 0)};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            int k = hresp_read(fd, &r, &body);
            if (r.head_done && r.status != 200) {
                if (k > 0 && !r.done)
                    continue;
                status = fail("server error (HTTP %d): %.*s", r.status,
                              (int)(body.len > 1000 ? 1000 : body.len),
                              body.p ? body.p : "");
                break;
            }
            if (r.head_done && import_events(&body, &status))
                break;
            if (k <= 0) {
                status = fail("the server closed the connection before the import ended");
                break;
            }
        }
        if (sending && (p.revents & POLLOUT)) {
            ssize_t n = source_read(&src, chunk + 10, IO_CHUNK);
            if (n < 0) {
                status = fail("cannot read the input");
                break;
            }
            size_t len;
            if (n == 0) {
                memcpy(chunk, "0\r\n\r\n", 5);
                len = 5;
                sending = 0;
                if (send_all(fd, chunk, len))
                    sending = 0;
                continue;
            }
            char h[16];
            int k = snprintf(h, sizeof h, "%zx\r\n", (size_t)n);
            memcpy(chunk + 10 - k, h, (size_t)k);
            memcpy(chunk + 10 + n, "\r\n", 2);
            len = (size_t)k + (size_t)n + 2;
            if (send_all(fd, chunk + 10 - k, len))
                sending = 0; /* the server stopped reading: its answer says why */
        }
    }
    close(fd);
    source_close(&src);
    sbuf_free(&r.raw);
    sbuf_free(&body);
    return status < 0 ? 1 : status;
}

int cli_import(int argc, char **argv)
{
    xfer x;
    memset(&x, 0, sizeof x);
    flagdef tab[] = {
        {"force", F_BOOL, NULL, "", "delete the namespace's messages first (asks)", &x.force},
        {"gzip", F_BOOL, NULL, "", "the input is gzip-compressed", &x.gz},
        {"input", F_STR, NULL, "string", "input file (default stdin)", &x.input},
        {"token", F_STR, NULL, "string", "namespace token", &x.token},
        {"url", F_STR, NULL, "string", "server base URL, e.g. http://localhost:8080", &x.url},
    };
    int rc = shim_flags_parse(tab, sizeof tab / sizeof tab[0], argc, argv, "import");
    if (rc)
        return rc;
    if (common_checks(&x))
        return 1;
    if (x.force && !confirm()) {
        fprintf(stderr, "Import cancelled.\n");
        return 0;
    }
    return import_run(&x);
}
