/* json_write.c — JSON output into caller buffers (PROTOCOL.md 1.5, 9.1).
 *
 * Every append copies what still fits and counts the rest, so one pass
 * both fills a large enough buffer and measures the size a small one
 * needed (jansson's json_dumpb, snprintf).
 */
#include "json.h"

#include <string.h>

void lss__jw_raw(lss_json_writer *w, const char *p, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, p, n < room ? n : room);
    }
    w->len += n;
}

/* 1 for the bytes PROTOCOL.md 1.5 requires escaped: controls, '"', '\\'.
 * '/' and everything from 0x7f up go out raw. */
#define X16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const uint8_t needs_escape[256] = {
    X16(1), X16(1),                                 /* 0x00-0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20-0x2f */
    X16(0), X16(0),                                 /* 0x30-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50-0x5f */
    X16(0), X16(0),                                 /* 0x60-0x7f */
    X16(0), X16(0), X16(0), X16(0),                 /* 0x80-0xbf */
    X16(0), X16(0), X16(0), X16(0),                 /* 0xc0-0xff */
};
#undef X16

static void put_escape(lss_json_writer *w, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    switch (c) {
    case '"': case '\\': e[1] = (char)c; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default:
        lss__jw_raw(w, e, 6);
        return;
    }
    lss__jw_raw(w, e, 2);
}

void lss__jw_str(lss_json_writer *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    lss__jw_char(w, '"');
    for (size_t i = 0; i < n; i++) {
        if (LSS_LIKELY(!needs_escape[u[i]]))
            continue;
        lss__jw_raw(w, s + run, i - run);
        put_escape(w, u[i]);
        run = i + 1;
    }
    lss__jw_raw(w, s + run, n - run);
    lss__jw_char(w, '"');
}

void lss__jw_int(lss_json_writer *w, int64_t v)
{
    char tmp[20]; /* "-9223372036854775808" */
    size_t i = sizeof tmp;
    /* Negate in unsigned arithmetic so INT64_MIN needs no special case. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    lss__jw_raw(w, tmp + i, sizeof tmp - i);
}

/* Index just past the string whose opening quote is p[i]. */
static size_t string_end(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return n;
}

static inline int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Whitespace can only sit between tokens, so copying everything except
 * whitespace outside strings keeps every token byte for byte. */
void lss__json_compact(lss_json_writer *w, const char *p, size_t n)
{
    size_t i = 0, run = 0;
    while (i < n) {
        if (p[i] == '"') {
            i = string_end(p, i, n);
        } else if (is_ws(p[i])) {
            lss__jw_raw(w, p + run, i - run);
            while (i < n && is_ws(p[i]))
                i++;
            run = i;
        } else {
            i++;
        }
    }
    lss__jw_raw(w, p + run, n - run);
}
