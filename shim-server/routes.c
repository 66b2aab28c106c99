/* routes.c — routing, authentication (PROTOCOL.md 3.5, 4), the small
 * endpoints, /rpc into the turn's batch, and the streamed /import and
 * /export (9.2, 12.3). */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_BATCH 1000
#define IMPORT_LINE_MAX ((size_t)1 << 20)
#define EXPORT_BATCH 1000
#define EXPORT_LOW ((size_t)64 << 10)
#define EXPORT_CHUNK ((size_t)256 << 10)

static const char HDR_JSON[] = "application/json";

/* ------------------------------------------------------------------------
 * JSON text
 * ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t json_str(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    *o++ = '"';
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            *o++ = (char)c;
            i++;
            continue;
        }
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; i++; continue;
        case '\\': *o++ = '\\'; *o++ = '\\'; i++; continue;
        case '\b': *o++ = '\\'; *o++ = 'b'; i++; continue;
        case '\f': *o++ = '\\'; *o++ = 'f'; i++; continue;
        case '\n': *o++ = '\\'; *o++ = 'n'; i++; continue;
        case '\r': *o++ = '\\'; *o++ = 'r'; i++; continue;
        case '\t': *o++ = '\\'; *o++ = 't'; i++; continue;
        default: break;
        }
        if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
            i++;
            continue;
        }
        size_t l = utf8_len(p + i, n - i);
        if (!l) {
            memcpy(o, "\\ufffd", 6); /* as Go's encoder does */
            o += 6;
            i++;
            continue;
        }
        memcpy(o, p + i, l);
        o += l;
        i += l;
    }
    *o++ = '"';
    return (size_t)(o - out);
}

size_t json_error(char *out, size_t cap, const char *code, const char *msg,
                  const char *dkey, const char *dval, size_t dval_n)
{
    size_t mn = strlen(msg);
    size_t need = 64 + strlen(code) + 6 * mn + (dkey ? strlen(dkey) + 6 * dval_n + 32 : 0);
    if (need > cap) {
        mn = 0;
        dkey = NULL;
        if (cap < 80 + strlen(code))
            return 0;
    }
    char *o = out;
    memcpy(o, "{\"error\":{\"code\":", 17);
    o += 17;
    o += json_str(o, code, strlen(code));
    memcpy(o, ",\"message\":", 11);
    o += 11;
    o += json_str(o, msg, mn);
    if (dkey) {
        memcpy(o, ",\"details\":{", 12);
        o += 12;
        o += json_str(o, dkey, strlen(dkey));
        *o++ = ':';
        o += json_str(o, dval, dval_n);
        *o++ = '}';
    }
    memcpy(o, "}}\n", 3);
    return (size_t)(o + 3 - out);
}

/* ------------------------------------------------------------------------
 * Time
 * ---------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int shim_parse_time(const char *s, size_t n, int64_t *us)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (n < 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) ||
        digits(s + 5, 2, &mo) || digits(s + 8, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return -1;
    int64_t frac = 0, off = 0;
    if (n > 10) {
        if (n < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
            digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
            digits(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 59)
            return -1;
        size_t i = 19;
        if (s[i] == '.') {
            size_t f0 = ++i;
            int64_t scale = 100000;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                frac += (s[i] - '0') * scale;
                scale /= 10;
                i++;
            }
            if (i == f0)
                return -1;
        }
        if (i == n - 1 && s[i] == 'Z') {
            off = 0;
        } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
            int oh, om;
            if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) ||
                oh > 23 || om > 59)
                return -1;
            off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        } else {
            return -1;
        }
    }
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    *us = t * 1000000 + frac;
    return 0;
}

void shim_time_text(int64_t unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[80];
    snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, b, 21); /* years 0..9999: always 20 bytes and a NUL */
}

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static char *cbase(conn *c)
{
    return c->in.p + c->in_pos;
}

static int method_is(conn *c, const char *m)
{
    size_t n = strlen(m);
    return c->req.method.n == n && !memcmp(cbase(c) + c->req.method.off, m, n);
}

static int query(conn *c, const char *key, char *out, size_t *n)
{
    return http_query_get(cbase(c) + c->req.query.off, c->req.query.n, key, out, n);
}

/* An answer given before the body was read: the connection closes unless
 * the whole body is already here. */
static int early(server *s, conn *c, int status, const char *ctype,
                 const char *headers, const char *body, size_t n)
{
    if (c->n_pending)
        return R_DEFER;
    if (http_body_feed(&c->body, cbase(c), c->in.len - c->in_pos,
                       (uint64_t)srv_cfg(s)->max_body) != LSS_OK)
        conn_set_close(c);
    conn_respond(s, c, status, ctype, headers, body, n);
    return R_OK;
}

static int early_error(server *s, conn *c, int status, const char *code,
                       const char *msg, const char *dkey, const char *dval,
                       size_t dval_n, const char *headers)
{
    char body[4096];
    size_t n = json_error(body, sizeof body, code, msg, dkey, dval, dval_n);
    return early(s, c, status, HDR_JSON, headers, body, n);
}

static int too_big(server *s, conn *c)
{
    return c->req.body_kind == HTTP_BODY_LENGTH &&
           c->req.content_length > (uint64_t)srv_cfg(s)->max_body;
}

static int answer_too_big(server *s, conn *c)
{
    char msg[80];
    snprintf(msg, sizeof msg, "Request body exceeds %lld bytes",
             srv_cfg(s)->max_body);
    conn_set_close(c);
    return early_error(s, c, 413, "PAYLOAD_TOO_LARGE", msg, NULL, NULL, 0, NULL);
}

/* Sections 4.4 and 4.5.  On success c->ns is the request namespace and 0 is
 * returned; otherwise the answer is given (or deferred) and 1 returned with
 * *r the routing result. */
static int authenticate(server *s, conn *c, int *r)
{
    const shim_cfg *cfg = srv_cfg(s);
    int test = cfg->effective_test;
    char qtok[HTTP_HEAD_MAX];
    size_t tn = 0;
    const char *tok = NULL;
    const char *why = NULL;
    if (query(c, "token", qtok, &tn) && tn > 0) {
        tok = qtok;
    } else if (!c->req.has_auth || !c->req.auth.n) {
        why = "Authorization header required";
    } else {
        const char *a = cbase(c) + c->req.auth.off;
        size_t an = c->req.auth.n;
        if (an == 6 && !memcmp(a, "Bearer", 6)) { /* "Bearer " trimmed */
            why = "Token required";
        } else if (an < 7 || memcmp(a, "Bearer ", 7) != 0) {
            why = "Authorization header must use Bearer scheme";
        } else {
            tok = a + 7;
            tn = an - 7;
            if (!tn)
                why = "Token required";
        }
    }
    if (why) {
        if (test) {
            memcpy(c->ns, "default", 7);
            c->ns_n = 7;
            return 0;
        }
        *r = early_error(s, c, 401, "AUTH_REQUIRED", why, NULL, NULL, 0, NULL);
        return 1;
    }
    const char *ns = NULL;
    size_t ns_n = 0;
    lss_conn *lc = srv_lss(s);
    int rc = lss_authorize(lc, tok, tn, test ? LSS_AUTH_NO_HASH : 0, &ns, &ns_n);
    if (rc == LSS_OK && ns_n <= sizeof c->ns) {
        memcpy(c->ns, ns, ns_n);
        c->ns_n = ns_n;
        return 0;
    }
    if (rc == LSS_ETOKEN) {
        const char *e = lss_errmsg(lc);
        *r = early_error(s, c, 401, "AUTH_INVALID_TOKEN", "Invalid token format",
                         "error", e, strlen(e), NULL);
        return 1;
    }
    char nsb[256];
    size_t nb = ns && ns_n <= sizeof nsb ? ns_n : 0;
    if (nb)
        memcpy(nsb, ns, nb);
    *r = early_error(s, c, 403, "AUTH_UNAUTHORIZED",
                     "Token not authorized for namespace", "namespace", nsb, nb,
                     NULL);
    return 1;
}

/* Send 100 Continue when the client waits for it, then read the body. */
static int begin_body(server *s, conn *c)
{
    if (c->req.expect_continue && c->req.minor >= 1 && !c->body.done &&
        !c->continued && c->in.len - c->in_pos <= c->req.head_n) {
        if (c->n_pending)
            return R_DEFER;
        sbuf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->continued = 1;
        conn_flush(s, c);
    }
    c->rs = RS_BODY;
    return R_OK;
}

static int route_of(const char *p, size_t n)
{
    switch (n) {
    case 4:
        if (!memcmp(p, "/rpc", 4))
            return EP_RPC;
        break;
    case 7:
        if (!memcmp(p, "/health", 7))
            return EP_HEALTH;
        if (!memcmp(p, "/import", 7))
            return EP_IMPORT;
        if (!memcmp(p, "/export", 7))
            return EP_EXPORT;
        break;
    case 8:
        if (!memcmp(p, "/version", 8))
            return EP_VERSION;
        if (!memcmp(p, "/metrics", 8))
            return EP_METRICS;
        break;
    case 10:
        if (!memcmp(p, "/subscribe", 10))
            return EP_SUBSCRIBE;
        break;
    default:
        break;
    }
    return EP_OTHER;
}

/* ------------------------------------------------------------------------
 * Import (9.2)
 * ---------------------------------------------------------------------- */

typedef struct imp_rec {
    size_t id, id_n, stream, stream_n, type, type_n; /* in strs */
    size_t data, data_n, meta, meta_n;               /* in the input buffer */
    int has_data, has_meta;
    int64_t pos, gpos, time_us, line;
} imp_rec;

struct import_state {
    imp_rec recs[IMPORT_BATCH];
    lss_import_rec lrecs[IMPORT_BATCH];
    size_t nrec;
    sbuf strs;
    size_t line_start;  /* next line, from the request's first byte */
    int64_t line_no;
    int64_t imported;
    int64_t t0_us;
};

struct export_state {
    int64_t next;
    int64_t since, until;
    int has_since, has_until;
    char *cats;         /* the categories, '\0'-separated */
    size_t *cat_off, *cat_n;
    size_t ncat;
    int done;
};

void stream_state_free(conn *c)
{
    if (c->imp) {
        sbuf_free(&c->imp->strs);
        free(c->imp);
        c->imp = NULL;
    }
    if (c->exp) {
        free(c->exp->cats);
        free(c->exp->cat_off);
        free(c->exp->cat_n);
        free(c->exp);
        c->exp = NULL;
    }
}

static int force_param(conn *c)
{
    char v[HTTP_HEAD_MAX];
    size_t n;
    return query(c, "force", v, &n) && n == 4 && !memcmp(v, "true", 4);
}

static int import_start(server *s, conn *c)
{
    int r;
    if (authenticate(s, c, &r))
        return r;
    if (too_big(s, c))
        return answer_too_big(s, c);
    if (c->n_pending)
        return R_DEFER;
    lss_conn *lc = srv_lss(s);
    if (force_param(c) && lss_ns_clear(lc, c->ns, c->ns_n) != LSS_OK) {
        char body[1024];
        size_t n = json_error(body, sizeof body, "CLEAR_FAILED", lss_errmsg(lc),
                              NULL, NULL, 0);
        return early(s, c, 500, HDR_JSON, NULL, body, n);
    }
    import_state *st = calloc(1, sizeof *st);
    if (!st)
        return early_error(s, c, 500, "INTERNAL_ERROR", "out of memory", NULL,
                           NULL, 0, NULL);
    st->line_start = c->req.head_n;
    st->t0_us = shim_now_us();
    c->imp = st;
    if (c->req.expect_continue && c->req.minor >= 1 &&
        c->in.len - c->in_pos <= c->req.head_n)
        sbuf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    conn_stream_begin(s, c, 200,
                      "Content-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\n"
                      "X-Accel-Buffering: no\r\n");
    if (c->dead)
        return R_OK;
    c->mode = M_IMPORT;
    conn_flush(s, c);
    return R_OK;
}

static void import_event(conn *c, const char *json, size_t n)
{
    char buf[8192];
    if (n + 8 > sizeof buf)
        n = sizeof buf - 8;
    memcpy(buf, "data: ", 6);
    memcpy(buf + 6, json, n);
    buf[6 + n] = '\n';
    buf[7 + n] = '\n';
    conn_chunk(c, buf, n + 8);
}

static void import_error(conn *c, const char *code, const char *msg, int64_t line)
{
    char buf[7000];
    size_t mn = strlen(msg);
    if (mn > 1000)
        mn = 1000;
    char *o = buf;
    o += sprintf(o, "{\"error\":\"%s\",\"message\":", code);
    o += json_str(o, msg, mn);
    if (line > 0)
        o += sprintf(o, ",\"line\":%lld", (long long)line);
    *o++ = '}';
    import_event(c, buf, (size_t)(o - buf));
}

/* The import ends: terminating chunk; close unless the body was all read. */
static void import_finish(server *s, conn *c, int body_done)
{
    stream_state_free(c);
    if (!body_done)
        conn_set_close(c);
    conn_request_done(s, c);
    conn_stream_end(s, c);
}

/* Drop the body bytes no buffered record refers to any more. */
static void import_compact(conn *c)
{
    import_state *st = c->imp;
    size_t body0 = c->req.head_n;
    size_t drop = st->line_start - body0;
    if (st->nrec || drop < 65536)
        return;
    char *base = cbase(c);
    size_t tail = c->in.len - c->in_pos - st->line_start;
    memmove(base + body0, base + st->line_start, tail);
    c->in.len -= drop;
    c->body.rpos -= drop;
    c->body.wpos -= drop;
    st->line_start = body0;
}

static int import_flush(server *s, conn *c, int progress)
{
    import_state *st = c->imp;
    if (!st->nrec)
        return 0;
    const char *in = c->in.p;
    for (size_t i = 0; i < st->nrec; i++) {
        const imp_rec *r = &st->recs[i];
        lss_import_rec *l = &st->lrecs[i];
        l->id = st->strs.p + r->id;
        l->id_n = r->id_n;
        l->stream = st->strs.p + r->stream;
        l->stream_n = r->stream_n;
        l->type = st->strs.p + r->type;
        l->type_n = r->type_n;
        l->position = r->pos;
        l->global_position = r->gpos;
        l->data = r->has_data ? in + r->data : NULL;
        l->data_n = r->has_data ? r->data_n : 0;
        l->metadata = r->has_meta ? in + r->meta : NULL;
        l->metadata_n = r->has_meta ? r->meta_n : 0;
        l->time_us = r->time_us;
    }
    lss_conn *lc = srv_lss(s);
    size_t bad = (size_t)-1;
    int rc = lss_import(lc, c->ns, c->ns_n, st->lrecs, st->nrec, &bad);
    if (rc != LSS_OK) {
        int64_t line = bad < st->nrec ? st->recs[bad].line : 0;
        if (rc == LSS_ECONFLICT) {
            import_error(c, "POSITION_EXISTS", lss_errmsg(lc), line);
        } else if (rc == LSS_EINVAL) {
            char msg[700];
            snprintf(msg, sizeof msg, "invalid record at line %lld: %s",
                     (long long)line, lss_errmsg(lc));
            import_error(c, "INVALID_RECORD", msg, line);
        } else {
            import_error(c, "IMPORT_FAILED", lss_errmsg(lc), line);
        }
        return -1;
    }
    st->imported += (int64_t)st->nrec;
    if (progress) {
        char ev[96];
        int n = snprintf(ev, sizeof ev, "{\"imported\":%lld,\"gpos\":%lld}",
                         (long long)st->imported,
                         (long long)st->recs[st->nrec - 1].gpos);
        import_event(c, ev, (size_t)n);
    }
    st->nrec = 0;
    st->strs.len = 0;
    return 0;
}

static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\v' &&
            p[i] != '\f')
            return 0;
    return 1;
}

static int keep_str(import_state *st, const char *p, size_t n, size_t *off)
{
    *off = st->strs.len;
    return n ? sbuf_add(&st->strs, p, n) : 0;
}

/* One line: 0 to go on, -1 after an error event. */
static int import_line(server *s, conn *c, size_t ls, size_t le)
{
    import_state *st = c->imp;
    char *base = cbase(c);
    st->line_no++;
    size_t n = le - ls;
    if (n && base[le - 1] == '\r')
        n--;
    if (blank(base + ls, n))
        return 0;
    lss_import_rec rec;
    char err[512];
    lss_conn *lc = srv_lss(s);
    int rc = lss_ndjson_parse(lc, base + ls, n, &rec, err, sizeof err);
    if (rc != LSS_OK) {
        char msg[700];
        int json = rc == LSS_EJSON;
        snprintf(msg, sizeof msg, "%s at line %lld: %s",
                 json ? "malformed JSON" : "invalid record",
                 (long long)st->line_no, err);
        import_error(c, json ? "INVALID_JSON" : "INVALID_RECORD", msg, st->line_no);
        return -1;
    }
    imp_rec *r = &st->recs[st->nrec];
    if (keep_str(st, rec.id, rec.id_n, &r->id) ||
        keep_str(st, rec.stream, rec.stream_n, &r->stream) ||
        keep_str(st, rec.type, rec.type_n, &r->type)) {
        import_error(c, "IMPORT_FAILED", "out of memory", st->line_no);
        return -1;
    }
    r->id_n = rec.id_n;
    r->stream_n = rec.stream_n;
    r->type_n = rec.type_n;
    r->has_data = rec.data != NULL;
    r->data = r->has_data ? (size_t)(rec.data - c->in.p) : 0;
    r->data_n = rec.data_n;
    r->has_meta = rec.metadata != NULL;
    r->meta = r->has_meta ? (size_t)(rec.metadata - c->in.p) : 0;
    r->meta_n = rec.metadata_n;
    r->pos = rec.position;
    r->gpos = rec.global_position;
    r->time_us = rec.time_us;
    r->line = st->line_no;
    if (++st->nrec == IMPORT_BATCH)
        return import_flush(s, c, 1);
    return 0;
}

void import_feed(server *s, conn *c)
{
    import_state *st = c->imp;
    if (!st)
        return;
    const shim_cfg *cfg = srv_cfg(s);
    int rc = http_body_feed(&c->body, cbase(c), c->in.len - c->in_pos,
                            (uint64_t)cfg->max_body);
    if (rc == LSS_ETOOBIG || rc == LSS_EINVAL) {
        char msg[120];
        if (rc == LSS_ETOOBIG)
            snprintf(msg, sizeof msg,
                     "error reading input: request body exceeds %lld bytes",
                     cfg->max_body);
        else
            snprintf(msg, sizeof msg, "error reading input: malformed chunked body");
        import_error(c, "READ_ERROR", msg, 0);
        import_finish(s, c, 0);
        return;
    }
    int eof = rc == LSS_OK;
    for (;;) {
        char *base = cbase(c);
        size_t ls = st->line_start, end = c->body.wpos;
        const char *nl = memchr(base + ls, '\n', end - ls);
        size_t le;
        if (nl) {
            le = (size_t)(nl - base);
            st->line_start = le + 1;
        } else {
            if (end - ls >= IMPORT_LINE_MAX || !eof || end == ls) {
                if (end - ls >= IMPORT_LINE_MAX)
                    goto too_long;
                break;
            }
            le = end;
            st->line_start = end;
        }
        if (le - ls >= IMPORT_LINE_MAX)
            goto too_long;
        if (import_line(s, c, ls, le) != 0) {
            import_finish(s, c, eof && st->line_start == c->body.wpos);
            return;
        }
    }
    if (eof) {
        if (import_flush(s, c, 0) != 0) {
            import_finish(s, c, 1);
            return;
        }
        char ev[128];
        double el = (double)(shim_now_us() - st->t0_us) / 1e6;
        int n = snprintf(ev, sizeof ev,
                         "{\"done\":true,\"imported\":%lld,\"elapsed\":\"%.1fs\"}",
                         (long long)st->imported, el);
        import_event(c, ev, (size_t)n);
        import_finish(s, c, 1);
        return;
    }
    import_compact(c);
    conn_flush(s, c);
    return;
too_long:
    import_error(c, "READ_ERROR",
                 "error reading input: bufio.Scanner: token too long", 0);
    import_finish(s, c, 0);
}

/* ------------------------------------------------------------------------
 * Export (12.3)
 * ---------------------------------------------------------------------- */

static int cat_match(const export_state *x, const char *s, size_t n)
{
    size_t cl = lss_category_len(s, n);
    for (size_t i = 0; i < x->ncat; i++)
        if (x->cat_n[i] == cl && !memcmp(x->cats + x->cat_off[i], s, cl))
            return 1;
    return 0;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' ||
           ch == '\f';
}

static int export_cats(export_state *x, const char *v, size_t n)
{
    x->cats = malloc(n + 1);
    x->cat_off = malloc((n / 2 + 1) * sizeof *x->cat_off);
    x->cat_n = malloc((n / 2 + 1) * sizeof *x->cat_n);
    if (!x->cats || !x->cat_off || !x->cat_n)
        return -1;
    memcpy(x->cats, v, n);
    x->cats[n] = '\0';
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_space(v[a]))
            a++;
        while (b > a && is_space(v[b - 1]))
            b--;
        if (b > a) {
            x->cat_off[x->ncat] = a;
            x->cat_n[x->ncat] = b - a;
            x->ncat++;
        }
        i = j + 1;
    }
    return 0;
}

static int export_step(server *s, conn *c)
{
    export_state *x = c->exp;
    lss_conn *lc = srv_lss(s);
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = x->next;
    o.batch_size = EXPORT_BATCH;
    if (x->has_since) {
        o.flags |= LSS_READ_SINCE;
        o.since_us = x->since;
    }
    if (x->has_until) {
        o.flags |= LSS_READ_UNTIL;
        o.until_us = x->until;
    }
    /* One category: read it.  Several: read everything in global order and
     * keep theirs (one cursor per session; the order must be global). */
    const char *cat = x->ncat == 1 ? x->cats + x->cat_off[0] : "";
    size_t cat_n = x->ncat == 1 ? x->cat_n[0] : 0;
    lss_cursor *cur;
    int rc = lss_read_category(lc, c->ns, c->ns_n, cat, cat_n, &o, &cur);
    if (rc != LSS_OK)
        return rc;
    size_t mark = c->out.len;
    size_t hdr = c->chunked ? 10 : 0;
    if (hdr && !sbuf_reserve(&c->out, hdr)) {
        lss_cursor_close(cur);
        return LSS_ENOMEM;
    }
    c->out.len += hdr;
    int64_t rows = 0;
    const lss_message *m;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        rows++;
        x->next = m->global_position + 1;
        if (x->ncat > 1 && !cat_match(x, m->stream.p, m->stream.n))
            continue;
        size_t len = 0, room = 1024;
        for (;;) {
            char *w = sbuf_reserve(&c->out, room);
            if (!w) {
                rc = LSS_ENOMEM;
                break;
            }
            rc = lss_ndjson_write(m, w, room, &len);
            if (rc != LSS_ENOSPACE)
                break;
            room = len;
        }
        if (rc != LSS_OK)
            break;
        c->out.len += len;
        if (c->out.len - mark > EXPORT_CHUNK) {
            rc = LSS_AGAIN; /* enough for one chunk; go on from x->next */
            break;
        }
    }
    lss_cursor_close(cur);
    if (rc != LSS_DONE && rc != LSS_AGAIN)
        return rc < 0 ? rc : LSS_EINTERNAL;
    size_t data = c->out.len - mark - hdr;
    if (!data) {
        c->out.len = mark;
    } else if (hdr) {
        char h[32]; /* data < 1 GiB here: 8 hex digits */
        snprintf(h, sizeof h, "%08zx\r\n", data);
        memcpy(c->out.p + mark, h, 10);
        sbuf_add(&c->out, "\r\n", 2);
    }
    if (rc == LSS_DONE && rows < EXPORT_BATCH)
        x->done = 1;
    return LSS_OK;
}

void export_pump(server *s, conn *c)
{
    while (!c->dead && c->mode == M_EXPORT && conn_pending(c) < EXPORT_LOW) {
        if (c->exp->done) {
            stream_state_free(c);
            conn_stream_end(s, c);
            return;
        }
        int rc = export_step(s, c);
        if (rc != LSS_OK) {
            /* Headers are out: abort, so the client sees a truncated
             * transfer rather than a complete file. */
            shim_log(LOG_ERROR, "Export failed", "error",
                     lss_errmsg(srv_lss(s)), (char *)NULL);
            conn_close(s, c, 1);
            return;
        }
        if (conn_flush(s, c) != 0)
            return;
    }
}

static int export_time(conn *c, const char *key, int64_t *us, int *has)
{
    char v[HTTP_HEAD_MAX];
    size_t n;
    *has = 0;
    if (!query(c, key, v, &n) || !n)
        return 0;
    if (shim_parse_time(v, n, us) != 0)
        return -1;
    *has = 1;
    return 0;
}

static int export_start(server *s, conn *c)
{
    export_state *x = calloc(1, sizeof *x);
    if (!x)
        goto oom;
    c->exp = x;
    if (export_time(c, "since", &x->since, &x->has_since) != 0) {
        stream_state_free(c);
        return early_error(s, c, 400, "INVALID_REQUEST",
                           "invalid since: expected YYYY-MM-DD or RFC3339 format",
                           NULL, NULL, 0, NULL);
    }
    if (export_time(c, "until", &x->until, &x->has_until) != 0) {
        stream_state_free(c);
        return early_error(s, c, 400, "INVALID_REQUEST",
                           "invalid until: expected YYYY-MM-DD or RFC3339 format",
                           NULL, NULL, 0, NULL);
    }
    char v[HTTP_HEAD_MAX];
    size_t n = 0;
    if (!query(c, "categories", v, &n))
        n = 0;
    if (export_cats(x, v, n) != 0)
        goto oom;
    x->next = 0;
    conn_stream_begin(s, c, 200,
                      "Content-Type: application/x-ndjson\r\n"
                      "Cache-Control: no-cache\r\n"
                      "X-Accel-Buffering: no\r\n");
    if (c->dead)
        return R_OK;
    c->mode = M_EXPORT;
    conn_request_done(s, c);
    export_pump(s, c);
    return R_OK;
oom:
    stream_state_free(c);
    return early_error(s, c, 500, "INTERNAL_ERROR", "out of memory", NULL, NULL,
                       0, NULL);
}

/* ------------------------------------------------------------------------
 * Routing
 * ---------------------------------------------------------------------- */

int routes_on_head(server *s, conn *c)
{
    const char *base = cbase(c);
    c->route = route_of(base + c->req.path.off, c->req.path.n);
    int r;
    switch (c->route) {
    case EP_RPC:
        if (authenticate(s, c, &r))
            return r;
        if (!method_is(c, "POST"))
            return early_error(s, c, 405, "INVALID_REQUEST",
                               "Only POST method allowed", NULL, NULL, 0,
                               "Allow: POST\r\n");
        break;
    case EP_EXPORT:
        if (authenticate(s, c, &r))
            return r;
        if (!method_is(c, "GET"))
            return early_error(s, c, 405, "INVALID_REQUEST",
                               "Only GET method allowed", NULL, NULL, 0,
                               "Allow: GET\r\n");
        break;
    case EP_SUBSCRIBE:
        if (authenticate(s, c, &r))
            return r;
        break;
    case EP_IMPORT:
        return import_start(s, c);
    default:
        break;
    }
    if (too_big(s, c))
        return answer_too_big(s, c);
    return begin_body(s, c);
}

static void respond_text(server *s, conn *c, int status, const char *ctype,
                         const char *headers, const char *body)
{
    conn_respond(s, c, status, ctype, headers, body, strlen(body));
}

int routes_dispatch(server *s, conn *c)
{
    if (c->route == EP_RPC) {
        const char *body = cbase(c) + c->req.head_n;
        size_t n = c->body.wpos - c->req.head_n;
        if (batch_add(s, c, body, n) != 0) {
            if (c->n_pending)
                return R_DEFER;
            char e[512];
            size_t en = json_error(e, sizeof e, "INTERNAL_ERROR", "out of memory",
                                   NULL, NULL, 0);
            conn_respond(s, c, 500, HDR_JSON, NULL, e, en);
            return R_OK;
        }
        conn_request_done(s, c);
        return R_OK;
    }
    if (c->n_pending)
        return R_DEFER;
    switch (c->route) {
    case EP_HEALTH:
        respond_text(s, c, 200, HDR_JSON, NULL, "{\"status\":\"ok\"}");
        return R_OK;
    case EP_VERSION:
        respond_text(s, c, 200, HDR_JSON, NULL,
                     "{\"version\":\"" LSS_PROTOCOL_VERSION "\"}");
        return R_OK;
    case EP_METRICS: {
        if (!method_is(c, "GET") && !method_is(c, "HEAD")) {
            respond_text(s, c, 405, HDR_JSON, "Allow: GET, HEAD\r\n",
                         "{\"error\":{\"code\":\"INVALID_REQUEST\","
                         "\"message\":\"Only GET method allowed\"}}\n");
            return R_OK;
        }
        sbuf b = {0};
        if (metrics_render(&b, srv_cfg(s)) != 0) {
            sbuf_free(&b);
            respond_text(s, c, 500, HDR_JSON, NULL,
                         "{\"error\":{\"code\":\"INTERNAL_ERROR\","
                         "\"message\":\"out of memory\"}}\n");
            return R_OK;
        }
        conn_respond(s, c, 200, "text/plain; version=0.0.4; charset=utf-8",
                     NULL, b.p, b.len);
        sbuf_free(&b);
        return R_OK;
    }
    case EP_SUBSCRIBE:
        return sse_start(s, c);
    case EP_EXPORT:
        return export_start(s, c);
    default:
        respond_text(s, c, 404, HDR_JSON, NULL,
                     "{\"error\":{\"code\":\"NOT_FOUND\","
                     "\"message\":\"Endpoint not found\"}}");
        return R_OK;
    }
}
