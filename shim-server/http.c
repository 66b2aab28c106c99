/* http.c — the HTTP/1.1 request parser (see http.h). */
#include "http.h"

#include <string.h>

#include "streamstore.h"

/* RFC 9110 tchar. */
static const unsigned char TCHAR[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int http_ieq(const char *a, size_t n, const char *w)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!w[i] || lower((unsigned char)a[i]) != (unsigned char)w[i])
            return 0;
    return w[i] == '\0';
}

static http_span span(size_t off, size_t n)
{
    http_span s = {(uint32_t)off, (uint32_t)n};
    return s;
}

static int bad(http_req *r, int status)
{
    r->status = status;
    return LSS_EINVAL;
}

/* The index one past the blank line ending the head, or 0. */
static size_t find_head_end(const char *p, size_t from, size_t lim)
{
    size_t i = from;
    while (i < lim) {
        const char *nl = memchr(p + i, '\n', lim - i);
        if (!nl)
            return 0;
        size_t k = (size_t)(nl - p);
        if (k >= 1 && p[k - 1] == '\n')
            return k + 1;
        if (k >= 2 && p[k - 1] == '\r' && p[k - 2] == '\n')
            return k + 1;
        i = k + 1;
    }
    return 0;
}

/* Decode %XX and collapse runs of '/' in p[a..b) in place; returns the new
 * length or -1 on a bad escape. */
static long clean_path(char *p, size_t a, size_t b)
{
    size_t w = a;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= b)
                return -1;
            if ((h = hexval((unsigned char)p[i + 1])) < 0 ||
                (l = hexval((unsigned char)p[i + 2])) < 0)
                return -1;
            c = (unsigned char)(h << 4 | l);
            i += 2;
        }
        if (c == '/' && w > a && p[w - 1] == '/')
            continue;
        p[w++] = (char)c;
    }
    return (long)(w - a);
}

/* Comma-separated tokens of a Connection header. */
static void connection_tokens(const char *v, size_t n, http_req *r)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (http_ieq(v + s, i - s, "close"))
            r->conn_close = 1;
        else if (http_ieq(v + s, i - s, "keep-alive"))
            r->conn_keep_alive = 1;
    }
}

static int parse_target(char *p, size_t t0, size_t t1, http_req *r)
{
    size_t ps = t0;
    if (p[t0] != '/') {
        size_t skip = 0;
        if (t1 - t0 >= 7 && http_ieq(p + t0, 7, "http://"))
            skip = 7;
        else if (t1 - t0 >= 8 && http_ieq(p + t0, 8, "https://"))
            skip = 8;
        if (!skip) {
            if (t1 - t0 == 1 && p[t0] == '*') {
                r->path = span(t0, 1);
                r->query = span(t1, 0);
                return LSS_OK;
            }
            return bad(r, 400);
        }
        ps = t0 + skip;
        while (ps < t1 && p[ps] != '/' && p[ps] != '?')
            ps++;
        if (ps == t1 || p[ps] == '?') {
            /* No path: it is "/"; borrow the byte before the query. */
            ps--;
            p[ps] = '/';
        }
    }
    size_t pe = ps;
    while (pe < t1 && p[pe] != '?')
        pe++;
    r->query = pe < t1 ? span(pe + 1, t1 - pe - 1) : span(t1, 0);
    long n = clean_path(p, ps, pe);
    if (n < 0)
        return bad(r, 400);
    r->path = span(ps, (size_t)n);
    return LSS_OK;
}

static int parse_uint(const char *v, size_t n, uint64_t *out)
{
    if (!n || n > 19)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

int http_parse_head(char *p, size_t n, size_t *scanned, http_req *r)
{
    size_t lim = n < HTTP_HEAD_MAX ? n : HTTP_HEAD_MAX;
    size_t end = find_head_end(p, *scanned, lim);
    if (!end) {
        *scanned = lim;
        if (n >= HTTP_HEAD_MAX)
            return bad(r, 431);
        return LSS_AGAIN;
    }
    memset(r, 0, sizeof *r);

    /* Request line: method SP target SP HTTP/1.x CRLF */
    size_t pos = 0;
    while (pos < end && TCHAR[(unsigned char)p[pos]])
        pos++;
    if (pos == 0 || p[pos] != ' ')
        return bad(r, 400);
    r->method = span(0, pos);
    size_t t0 = ++pos;
    while (pos < end && (unsigned char)p[pos] > ' ' && p[pos] != 0x7f)
        pos++;
    if (pos == t0 || p[pos] != ' ')
        return bad(r, 400);
    size_t t1 = pos++;
    if (end - pos < 9 || memcmp(p + pos, "HTTP/1.", 7) != 0 ||
        p[pos + 7] < '0' || p[pos + 7] > '9')
        return bad(r, 400);
    r->minor = p[pos + 7] - '0';
    pos += 8;
    if (p[pos] == '\r')
        pos++;
    if (p[pos] != '\n')
        return bad(r, 400);
    pos++;
    if (parse_target(p, t0, t1, r) != LSS_OK)
        return LSS_EINVAL;

    /* Header fields. */
    int cl_seen = 0, te_n = 0, te_chunked = 0;
    uint64_t cl = 0;
    for (;;) {
        if (pos >= end)
            return bad(r, 400);
        if (p[pos] == '\n' || (p[pos] == '\r' && p[pos + 1] == '\n'))
            break; /* the blank line: find_head_end made it the last */
        size_t ns = pos;
        while (pos < end && TCHAR[(unsigned char)p[pos]])
            pos++;
        if (pos == ns || p[pos] != ':')
            return bad(r, 400); /* also obs-fold and space before ':' */
        size_t nn = pos - ns;
        pos++;
        while (pos < end && (p[pos] == ' ' || p[pos] == '\t'))
            pos++;
        size_t vs = pos;
        while (pos < end && p[pos] != '\r' && p[pos] != '\n') {
            unsigned char c = (unsigned char)p[pos];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(r, 400);
            pos++;
        }
        size_t ve = pos;
        while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
            ve--;
        if (p[pos] == '\r' && p[++pos] != '\n')
            return bad(r, 400);
        pos++;
        const char *name = p + ns, *v = p + vs;
        size_t vn = ve - vs;
        switch (nn) {
        case 6:
            if (http_ieq(name, nn, "expect") &&
                http_ieq(v, vn, "100-continue"))
                r->expect_continue = 1;
            break;
        case 10:
            if (http_ieq(name, nn, "connection"))
                connection_tokens(v, vn, r);
            break;
        case 13:
            if (!r->has_auth && http_ieq(name, nn, "authorization")) {
                r->has_auth = 1;
                r->auth = span(vs, vn);
            }
            break;
        case 14:
            if (http_ieq(name, nn, "content-length")) {
                uint64_t x;
                if (parse_uint(v, vn, &x) != 0 || (cl_seen && x != cl))
                    return bad(r, 400);
                cl_seen = 1;
                cl = x;
            }
            break;
        case 17:
            if (http_ieq(name, nn, "transfer-encoding")) {
                te_n++;
                te_chunked = http_ieq(v, vn, "chunked");
            }
            break;
        default:
            break;
        }
    }
    if (te_n && cl_seen)
        return bad(r, 400);
    if (te_n) {
        if (te_n > 1 || !te_chunked)
            return bad(r, 501);
        r->body_kind = HTTP_BODY_CHUNKED;
    } else if (cl_seen) {
        r->body_kind = HTTP_BODY_LENGTH;
        r->content_length = cl;
    }
    r->head_n = (uint32_t)end;
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Bodies
 * ---------------------------------------------------------------------- */

enum { CS_SIZE0, CS_SIZE, CS_SIZE_WS, CS_EXT, CS_SIZE_LF, CS_DATA, CS_DATA_CR,
       CS_DATA_LF, CS_TRAILER, CS_TRAILER_LINE, CS_TRAILER_LF, CS_END_LF };

void http_body_init(http_body *b, const http_req *r)
{
    memset(b, 0, sizeof *b);
    b->kind = r->body_kind;
    b->rpos = b->wpos = r->head_n;
    if (b->kind == HTTP_BODY_LENGTH)
        b->left = r->content_length;
    b->done = b->kind == HTTP_BODY_NONE ||
              (b->kind == HTTP_BODY_LENGTH && b->left == 0);
}

static int chunked_feed(http_body *b, char *p, size_t n, uint64_t limit)
{
    while (b->rpos < n) {
        unsigned char c = (unsigned char)p[b->rpos];
        int h;
        switch (b->st) {
        case CS_SIZE0:
        case CS_SIZE:
            if ((h = hexval(c)) >= 0) {
                if (b->left >> 59)
                    return LSS_EINVAL;
                b->left = b->left << 4 | (uint64_t)h;
                b->st = CS_SIZE;
            } else if (b->st == CS_SIZE0) {
                return LSS_EINVAL;
            } else if (c == ';') {
                b->st = CS_EXT;
            } else if (c == ' ' || c == '\t') {
                b->st = CS_SIZE_WS;
            } else if (c == '\r') {
                b->st = CS_SIZE_LF;
            } else if (c == '\n') {
                goto size_done;
            } else {
                return LSS_EINVAL;
            }
            b->rpos++;
            continue;
        case CS_SIZE_WS:
            if (c == ';')
                b->st = CS_EXT;
            else if (c == '\r')
                b->st = CS_SIZE_LF;
            else if (c == '\n')
                goto size_done;
            else if (c != ' ' && c != '\t')
                return LSS_EINVAL;
            b->rpos++;
            continue;
        case CS_EXT:
            if (c == '\n')
                goto size_done;
            if (c == '\r')
                b->st = CS_SIZE_LF;
            else if (c < 0x20 && c != '\t')
                return LSS_EINVAL;
            b->rpos++;
            continue;
        case CS_SIZE_LF:
            if (c != '\n')
                return LSS_EINVAL;
            goto size_done;
        case CS_DATA: {
            size_t avail = n - b->rpos;
            size_t take = b->left < avail ? (size_t)b->left : avail;
            if (b->total + take > limit)
                return LSS_ETOOBIG;
            if (b->wpos != b->rpos)
                memmove(p + b->wpos, p + b->rpos, take);
            b->wpos += take;
            b->rpos += take;
            b->total += take;
            b->left -= take;
            if (!b->left)
                b->st = CS_DATA_CR;
            continue;
        }
        case CS_DATA_CR:
            if (c == '\r')
                b->st = CS_DATA_LF;
            else if (c == '\n')
                b->st = CS_SIZE0;
            else
                return LSS_EINVAL;
            b->rpos++;
            continue;
        case CS_DATA_LF:
            if (c != '\n')
                return LSS_EINVAL;
            b->st = CS_SIZE0;
            b->rpos++;
            continue;
        case CS_TRAILER:
            if (c == '\r') {
                b->st = CS_END_LF;
            } else if (c == '\n') {
                b->rpos++;
                b->done = 1;
                return LSS_OK;
            } else {
                b->st = CS_TRAILER_LINE;
            }
            b->rpos++;
            b->trailer++;
            continue;
        case CS_TRAILER_LINE:
            if (++b->trailer > HTTP_HEAD_MAX)
                return LSS_EINVAL;
            if (c == '\n')
                b->st = CS_TRAILER;
            b->rpos++;
            continue;
        case CS_END_LF:
            if (c != '\n')
                return LSS_EINVAL;
            b->rpos++;
            b->done = 1;
            return LSS_OK;
        default:
            return LSS_EINVAL;
        }
    size_done:
        b->rpos++;
        b->st = b->left ? CS_DATA : CS_TRAILER;
    }
    return LSS_AGAIN;
}

int http_body_feed(http_body *b, char *p, size_t n, uint64_t limit)
{
    if (b->done)
        return LSS_OK;
    if (b->kind == HTTP_BODY_CHUNKED)
        return chunked_feed(b, p, n, limit);
    size_t avail = n > b->rpos ? n - b->rpos : 0;
    size_t take = b->left < avail ? (size_t)b->left : avail;
    b->rpos += take;
    b->wpos = b->rpos;
    b->total += take;
    b->left -= take;
    b->done = b->left == 0;
    return b->done ? LSS_OK : LSS_AGAIN;
}

/* ------------------------------------------------------------------------
 * Query strings
 * ---------------------------------------------------------------------- */

/* Form-decode s[0..n) into out; -1 on a bad escape. */
static long form_decode(const char *s, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h, l;
            if (n - i < 3 || (h = hexval((unsigned char)s[i + 1])) < 0 ||
                (l = hexval((unsigned char)s[i + 2])) < 0)
                return -1;
            c = (char)(h << 4 | l);
            i += 2;
        }
        out[w++] = c;
    }
    return (long)w;
}

int http_query_get(const char *q, size_t n, const char *key, char *out,
                   size_t *out_n)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t j = amp ? (size_t)(amp - q) : n;
        const char *pair = q + i;
        size_t pn = j - i;
        i = j + 1;
        if (!pn || memchr(pair, ';', pn))
            continue;
        const char *eq = memchr(pair, '=', pn);
        size_t kn = eq ? (size_t)(eq - pair) : pn;
        long dk = form_decode(pair, kn, out);
        if (dk < 0 || (size_t)dk != klen || memcmp(out, key, klen) != 0)
            continue;
        long dv = eq ? form_decode(eq + 1, pn - kn - 1, out) : 0;
        if (dv < 0)
            continue;
        *out_n = (size_t)dv;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Response helpers
 * ---------------------------------------------------------------------- */

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Request Entity Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void http_date(time_t t, char out[30])
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    gmtime_r(&t, &tm);
    char *o = out;
    memcpy(o, days + 3 * tm.tm_wday, 3);
    o += 3;
    *o++ = ',';
    *o++ = ' ';
    *o++ = (char)('0' + tm.tm_mday / 10);
    *o++ = (char)('0' + tm.tm_mday % 10);
    *o++ = ' ';
    memcpy(o, months + 3 * tm.tm_mon, 3);
    o += 3;
    *o++ = ' ';
    int y = tm.tm_year + 1900;
    *o++ = (char)('0' + y / 1000 % 10);
    *o++ = (char)('0' + y / 100 % 10);
    *o++ = (char)('0' + y / 10 % 10);
    *o++ = (char)('0' + y % 10);
    *o++ = ' ';
    *o++ = (char)('0' + tm.tm_hour / 10);
    *o++ = (char)('0' + tm.tm_hour % 10);
    *o++ = ':';
    *o++ = (char)('0' + tm.tm_min / 10);
    *o++ = (char)('0' + tm.tm_min % 10);
    *o++ = ':';
    *o++ = (char)('0' + tm.tm_sec / 10);
    *o++ = (char)('0' + tm.tm_sec % 10);
    memcpy(o, " GMT", 5);
}
