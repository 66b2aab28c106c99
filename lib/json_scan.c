/* json_scan.c — the strict in-place JSON scanner (PROTOCOL.md 1.3).
 *
 * One pass, no recursion, no allocation: an explicit depth stack of
 * LSS_JSON_MAX_DEPTH frames lives in the scanner state, tokens go to the
 * front of the caller's array and the member names of open objects are
 * parked at its back until the object closes, when they are sorted to find
 * duplicates.  Error texts follow PROTOCOL.md 5.1, which borrows them from
 * Go's encoding/json.
 */
#include "json.h"

#include <stdio.h>
#include <string.h>

#define NO_TOKEN UINT32_MAX

/* Member-name order, shared by the duplicate check and equality (below). */
static int key_equal(const char *sa, const lss_json_tok *a, const char *sb,
                     const lss_json_tok *b);
static int key_cmp(const char *sa, const lss_json_tok *a, const char *sb,
                   const lss_json_tok *b);
static void sort_keys(const char *src, lss_json_tok *k, size_t m);

/* Scanner results besides the LSS_E* codes. */
enum { VALUE_DONE = 0, VALUE_NEXT = 1, DOC_DONE = 2 };

typedef struct frame {
    uint32_t tok;      /* tape index of the container, or NO_TOKEN */
    uint32_t count;    /* children put on the tape */
    uint32_t key_base; /* key stack top when the container opened */
    uint32_t obj;
} frame;

typedef struct scanner {
    const unsigned char *p;
    size_t n;
    size_t pos;
    lss_json_tok *tok;
    size_t ntok; /* tokens in tok[0, ntok) */
    size_t klo;  /* parked member names in tok[klo, cap) */
    unsigned expand;
    unsigned depth;
    lss_json_err *err;
    frame st[LSS_JSON_MAX_DEPTH];
} scanner;

/* Bytes that end the fast path inside a string: '"', '\\', controls and
 * everything non-ASCII. */
#define X16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const uint8_t str_stop[256] = {
    X16(1), X16(1),                                 /* 0x00-0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20-0x2f */
    X16(0),                                         /* 0x30-0x3f */
    X16(0),                                         /* 0x40-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50-0x5f */
    X16(0), X16(0),                                 /* 0x60-0x7f */
    X16(1), X16(1), X16(1), X16(1),                 /* 0x80-0xbf */
    X16(1), X16(1), X16(1), X16(1),                 /* 0xc0-0xff */
};
#undef X16

static inline int is_ws(unsigned c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

static int fail_msg(scanner *s, size_t off, const char *msg)
{
    s->err->off = off;
    snprintf(s->err->msg, sizeof s->err->msg, "%s", msg);
    return LSS_EJSON;
}

static int fail_eof(scanner *s)
{
    return fail_msg(s, s->n, "unexpected end of JSON input");
}

static int fail_space(scanner *s)
{
    s->err->off = s->pos;
    snprintf(s->err->msg, sizeof s->err->msg, "%s",
             "token storage exhausted");
    return LSS_ENOSPACE;
}

/* Go quotes the offending byte as if it were the code point of the same
 * value; do that, in valid UTF-8 so the text can go into a JSON reply. */
static void quote_byte(unsigned c, char out[16])
{
    static const char named[] = "\a\b\t\n\v\f\r";
    static const char letter[] = "abtnvfr";
    const char *k = c ? strchr(named, (int)c) : NULL;
    if (c == '\'')
        snprintf(out, 16, "'\\''");
    else if (k)
        snprintf(out, 16, "'\\%c'", letter[k - named]);
    else if (c < 0x20 || c == 0x7f)
        snprintf(out, 16, "'\\x%02x'", c);
    else if (c < 0x80)
        snprintf(out, 16, "'%c'", (int)c);
    else if (c <= 0xa0 || c == 0xad)
        snprintf(out, 16, "'\\u%04x'", c);
    else
        snprintf(out, 16, "'%c%c'", (int)(0xc0 | (c >> 6)),
                 (int)(0x80 | (c & 0x3f)));
}

static int fail_char(scanner *s, size_t off, const char *context)
{
    char q[16];
    if (off >= s->n)
        return fail_eof(s);
    quote_byte(s->p[off], q);
    s->err->off = off;
    snprintf(s->err->msg, sizeof s->err->msg, "invalid character %s %s", q,
             context);
    return LSS_EJSON;
}

/* The duplicate's name unescaped, cut at a character boundary when long. */
static int fail_dup(scanner *s, const lss_json_tok *a, const lss_json_tok *b)
{
    const lss_json_tok *k = a->off > b->off ? a : b;
    char name[64];
    size_t need = 0, keep = sizeof name - 4; /* room for "..." */
    const char *src = (const char *)s->p;
    /* one byte more than kept, to see whether the cut splits a character */
    lss__json_unescape(src + k->off + 1, k->len - 2, name, keep + 1, &need);
    size_t n = need;
    if (need > keep) {
        n = keep;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            n--;
        memcpy(name + n, "...", 3);
        n += 3;
    }
    s->err->off = k->off;
    snprintf(s->err->msg, sizeof s->err->msg, "duplicate object key \"%.*s\"",
             (int)n, name);
    return LSS_EJSON;
}

/* ------------------------------------------------------------------------
 * Tape
 * ---------------------------------------------------------------------- */

static inline int push_tok(scanner *s, uint32_t *idx, unsigned type,
                           size_t off, size_t len, unsigned flags)
{
    if (LSS_UNLIKELY(s->ntok >= s->klo))
        return fail_space(s);
    lss_json_tok *t = &s->tok[s->ntok];
    t->off = (uint32_t)off;
    t->len = (uint32_t)len;
    t->next = (uint32_t)(s->ntok + 1);
    t->count = 0;
    t->type = (uint8_t)type;
    t->flags = (uint8_t)flags;
    *idx = (uint32_t)s->ntok++;
    return 0;
}

/* A value (not a key) in the current container: on the tape when the
 * container is expanded, and counted as one of its elements. */
static inline int emit_value(scanner *s, uint32_t *idx, unsigned type,
                             size_t off, size_t len, unsigned flags)
{
    *idx = NO_TOKEN;
    if (s->depth > s->expand)
        return 0;
    if (s->depth > 0 && !s->st[s->depth - 1].obj)
        s->st[s->depth - 1].count++;
    return push_tok(s, idx, type, off, len, flags);
}

static inline int park_key(scanner *s, size_t off, size_t len, unsigned flags)
{
    if (LSS_UNLIKELY(s->klo <= s->ntok))
        return fail_space(s);
    lss_json_tok *k = &s->tok[--s->klo];
    k->off = (uint32_t)off;
    k->len = (uint32_t)len;
    k->flags = (uint8_t)flags;
    return 0;
}

/* ------------------------------------------------------------------------
 * Strings
 * ---------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p[i] (a byte >= 0x80), or 0.
 * Rejects overlongs, encoded surrogates, > U+10FFFF and truncation
 * (RFC 3629 table 3-7). */
static size_t utf8_seq(const unsigned char *p, size_t i, size_t n)
{
    unsigned c = p[i], lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : lo;
        hi = c == 0xed ? 0x9f : hi;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : lo;
        hi = c == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((p[i + k] & 0xc0) != 0x80)
            return 0;
    return len;
}

int lss__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = utf8_seq(p, i, n);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

static int hex_val(unsigned c)
{
    if (c - '0' < 10u)
        return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6u)
        return (int)(c - 'a' + 10);
    return -1;
}

/* Four hex digits at p[i]. */
static int hex4(scanner *s, size_t i, unsigned *cp)
{
    unsigned v = 0;
    for (size_t k = i; k < i + 4; k++) {
        if (k >= s->n)
            return fail_eof(s);
        int h = hex_val(s->p[k]);
        if (h < 0)
            return fail_char(s, k, "in \\u hexadecimal character escape");
        v = v << 4 | (unsigned)h;
    }
    *cp = v;
    return 0;
}

/* A \u escape at p[*pi] ('\\'); a high surrogate must be followed at once
 * by an escaped low one. */
static int scan_uescape(scanner *s, size_t *pi)
{
    size_t i = *pi;
    unsigned cp = 0, lo = 0;
    int rc = hex4(s, i + 2, &cp);
    if (rc)
        return rc;
    if (cp == 0)
        return fail_msg(s, i, "U+0000 is not allowed in strings");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail_msg(s, i, "invalid surrogate escape");
    if (cp < 0xd800 || cp > 0xdbff) {
        *pi = i + 6;
        return 0;
    }
    for (size_t k = 6; k < 8; k++) {
        if (i + k >= s->n)
            return fail_eof(s);
        if (s->p[i + k] != "\\u"[k - 6])
            return fail_msg(s, i, "invalid surrogate escape");
    }
    rc = hex4(s, i + 8, &lo);
    if (rc)
        return rc;
    if (lo < 0xdc00 || lo > 0xdfff)
        return fail_msg(s, i, "invalid surrogate escape");
    *pi = i + 12;
    return 0;
}

static int scan_escape(scanner *s, size_t *pi)
{
    size_t i = *pi + 1;
    if (i >= s->n)
        return fail_eof(s);
    switch (s->p[i]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        *pi = i + 1;
        return 0;
    case 'u':
        return scan_uescape(s, pi);
    default:
        return fail_char(s, i, "in string escape code");
    }
}

/* Eight bytes at a time while none of them is special: a byte has its top
 * bit set in t when it is < 0x20, '"', '\\' or >= 0x80 (false positives
 * only drop to the byte loop). */
static inline size_t skip_plain(const unsigned char *p, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    while (n - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t t = (x - ones * 0x20) | ((x ^ (ones * '"')) - ones) |
                     ((x ^ (ones * '\\')) - ones) | x;
        if (t & high)
            break;
        i += 8;
    }
    while (i < n && !str_stop[p[i]])
        i++;
    return i;
}

/* The special byte at p[*pi] inside a string. */
static int string_special(scanner *s, size_t *pi, unsigned *flags)
{
    size_t i = *pi;
    unsigned c = s->p[i];
    if (c == '\\') {
        *flags |= LSS_JSON_ESCAPED;
        return scan_escape(s, pi);
    }
    if (c == 0)
        return fail_msg(s, i, "U+0000 is not allowed in strings");
    if (c < 0x20)
        return fail_char(s, i, "in string literal");
    size_t len = utf8_seq(s->p, i, s->n);
    if (!len)
        return fail_msg(s, i, "invalid UTF-8 in string");
    *pi = i + len;
    return 0;
}

/* The string opening at s->pos; on success s->pos is past its quote. */
static int scan_string(scanner *s, unsigned *flags)
{
    const unsigned char *p = s->p;
    size_t n = s->n, i = s->pos + 1;
    *flags = 0;
    for (;;) {
        i = skip_plain(p, i, n);
        if (LSS_UNLIKELY(i >= n))
            return fail_eof(s);
        if (LSS_LIKELY(p[i] == '"'))
            break;
        int rc = string_special(s, &i, flags);
        if (rc)
            return rc;
    }
    s->pos = i + 1;
    return 0;
}

/* ------------------------------------------------------------------------
 * Scalars
 * ---------------------------------------------------------------------- */

static size_t skip_digits(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && is_digit(p[i]))
        i++;
    return i;
}

/* RFC 8259 number at s->pos; the byte after it is checked by the caller's
 * grammar (so "01" fails there, as in Go). */
static int scan_number(scanner *s, size_t *end, unsigned *flags)
{
    const unsigned char *p = s->p;
    size_t n = s->n, i = s->pos;
    *flags = LSS_JSON_INTEGER;
    if (p[i] == '-' && ++i >= n)
        return fail_eof(s);
    if (p[i] == '0')
        i++;
    else if (is_digit(p[i]))
        i = skip_digits(p, i, n);
    else
        return fail_char(s, i, "in numeric literal");
    if (i < n && p[i] == '.') {
        *flags = 0;
        if (++i >= n)
            return fail_eof(s);
        if (!is_digit(p[i]))
            return fail_char(s, i, "after decimal point in numeric literal");
        i = skip_digits(p, i, n);
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        *flags = 0;
        if (++i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n)
            return fail_eof(s);
        if (!is_digit(p[i]))
            return fail_char(s, i, "in exponent of numeric literal");
        i = skip_digits(p, i, n);
    }
    *end = i;
    return 0;
}

static int scan_literal(scanner *s, const char *word, size_t len,
                        unsigned type)
{
    char ctx[48];
    uint32_t idx;
    size_t i = s->pos;
    for (size_t k = 1; k < len; k++) {
        if (i + k >= s->n)
            return fail_eof(s);
        if (s->p[i + k] != (unsigned char)word[k]) {
            snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", word,
                     word[k]);
            return fail_char(s, i + k, ctx);
        }
    }
    s->pos = i + len;
    return emit_value(s, &idx, type, i, len, 0);
}

static int scan_number_value(scanner *s)
{
    size_t start = s->pos, end = start;
    unsigned flags;
    uint32_t idx;
    int rc = scan_number(s, &end, &flags);
    if (rc)
        return rc;
    s->pos = end;
    return emit_value(s, &idx, LSS_JSON_NUMBER, start, end - start, flags);
}

static int scan_string_value(scanner *s)
{
    size_t start = s->pos;
    unsigned flags;
    uint32_t idx;
    int rc = scan_string(s, &flags);
    if (rc)
        return rc;
    return emit_value(s, &idx, LSS_JSON_STRING, start, s->pos - start, flags);
}

/* ------------------------------------------------------------------------
 * Containers
 * ---------------------------------------------------------------------- */

static inline void skip_ws(scanner *s)
{
    const unsigned char *p = s->p;
    size_t i = s->pos, n = s->n;
    while (i < n && is_ws(p[i]))
        i++;
    s->pos = i;
}

/* A member name, parked for the duplicate check, then the colon. */
static int scan_key(scanner *s)
{
    frame *f = &s->st[s->depth - 1];
    unsigned flags;
    uint32_t idx;
    skip_ws(s);
    if (s->pos >= s->n)
        return fail_eof(s);
    if (s->p[s->pos] != '"')
        return fail_char(s, s->pos,
                         "looking for beginning of object key string");
    size_t start = s->pos;
    int rc = scan_string(s, &flags);
    if (!rc)
        rc = park_key(s, start, s->pos - start, flags);
    if (!rc && s->depth <= s->expand) {
        f->count++;
        rc = push_tok(s, &idx, LSS_JSON_STRING, start, s->pos - start, flags);
    }
    if (rc)
        return rc;
    skip_ws(s);
    if (s->pos >= s->n)
        return fail_eof(s);
    if (s->p[s->pos] != ':')
        return fail_char(s, s->pos, "after object key");
    s->pos++;
    return VALUE_NEXT;
}

static int check_dups(scanner *s, size_t lo, size_t hi)
{
    const char *src = (const char *)s->p;
    lss_json_tok *k = s->tok + lo;
    size_t m = hi - lo;
    if (m <= 8) {
        /* Small objects: pairwise, mostly decided by the lengths. */
        for (size_t i = 1; i < m; i++)
            for (size_t j = 0; j < i; j++)
                if (key_equal(src, &k[i], src, &k[j]))
                    return fail_dup(s, &k[i], &k[j]);
        return 0;
    }
    sort_keys(src, k, m);
    for (size_t i = 1; i < m; i++)
        if (key_cmp(src, &k[i - 1], src, &k[i]) == 0)
            return fail_dup(s, &k[i - 1], &k[i]);
    return 0;
}

static int close_container(scanner *s)
{
    frame *f = &s->st[s->depth - 1];
    if (f->obj && f->key_base - s->klo > 1) {
        int rc = check_dups(s, s->klo, f->key_base);
        if (rc)
            return rc;
    }
    s->klo = f->key_base;
    if (f->tok != NO_TOKEN) {
        lss_json_tok *t = &s->tok[f->tok];
        t->len = (uint32_t)(s->pos + 1 - t->off);
        t->next = (uint32_t)s->ntok;
        t->count = f->count;
    }
    s->depth--;
    s->pos++;
    return VALUE_DONE;
}

static int open_container(scanner *s, int obj)
{
    uint32_t idx;
    if (s->depth >= LSS_JSON_MAX_DEPTH)
        return fail_msg(s, s->pos, "nesting depth exceeds 512");
    unsigned flags = s->depth + 1 > s->expand ? LSS_JSON_RAW : 0;
    int rc = emit_value(s, &idx, obj ? LSS_JSON_OBJECT : LSS_JSON_ARRAY,
                        s->pos, 0, flags);
    if (rc)
        return rc;
    frame *f = &s->st[s->depth++];
    f->tok = idx;
    f->count = 0;
    f->key_base = (uint32_t)s->klo;
    f->obj = (uint32_t)obj;
    s->pos++;
    skip_ws(s);
    if (s->pos >= s->n)
        return fail_eof(s);
    if (s->p[s->pos] == (obj ? '}' : ']'))
        return close_container(s);
    return obj ? scan_key(s) : VALUE_NEXT;
}

/* One value at s->pos (whitespace skipped).  VALUE_NEXT when it opened a
 * non-empty container whose first child comes next. */
static int scan_value(scanner *s)
{
    switch (s->p[s->pos]) {
    case '"':
        return scan_string_value(s);
    case '{':
        return open_container(s, 1);
    case '[':
        return open_container(s, 0);
    case '-': case '0': case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9':
        return scan_number_value(s);
    case 't':
        return scan_literal(s, "true", 4, LSS_JSON_TRUE);
    case 'f':
        return scan_literal(s, "false", 5, LSS_JSON_FALSE);
    case 'n':
        return scan_literal(s, "null", 4, LSS_JSON_NULL);
    default:
        return fail_char(s, s->pos, "looking for beginning of value");
    }
}

/* After a complete value: a separator (VALUE_NEXT), closing brackets, or
 * the end of the document (DOC_DONE). */
static int after_value(scanner *s)
{
    for (;;) {
        skip_ws(s);
        if (s->depth == 0)
            return s->pos == s->n
                       ? DOC_DONE
                       : fail_char(s, s->pos, "after top-level value");
        if (s->pos >= s->n)
            return fail_eof(s);
        const frame *f = &s->st[s->depth - 1];
        unsigned c = s->p[s->pos];
        if (c == ',') {
            s->pos++;
            return f->obj ? scan_key(s) : VALUE_NEXT;
        }
        if (c != (f->obj ? '}' : ']'))
            return fail_char(s, s->pos,
                             f->obj ? "after object key:value pair"
                                    : "after array element");
        int rc = close_container(s);
        if (rc)
            return rc;
    }
}

static int scan_doc(scanner *s)
{
    for (;;) {
        skip_ws(s);
        if (s->pos >= s->n)
            return fail_eof(s);
        int rc = scan_value(s);
        if (rc == VALUE_DONE)
            rc = after_value(s);
        if (rc < 0)
            return rc;
        if (rc == DOC_DONE)
            return LSS_OK;
    }
}

int lss__json_scan(lss_json_doc *doc, const char *p, size_t n, unsigned expand,
                   lss_json_tok *tok, size_t cap, lss_json_err *err)
{
    lss_json_err dummy;
    scanner s;
    if (!doc || (!p && n) || (!tok && cap))
        return LSS_EINVAL;
    s.err = err ? err : &dummy;
    s.err->off = 0;
    s.err->msg[0] = '\0';
    doc->src = p;
    doc->len = n;
    doc->tok = tok;
    doc->ntok = 0;
    if (n > LSS_JSON_MAX_INPUT) {
        snprintf(s.err->msg, sizeof s.err->msg, "%s", "input too large");
        return LSS_ETOOBIG;
    }
    if (cap > UINT32_MAX) /* indices are 32-bit; more could never be used */
        cap = UINT32_MAX;
    s.p = (const unsigned char *)p;
    s.n = n;
    s.pos = 0;
    s.tok = tok;
    s.ntok = 0;
    s.klo = cap;
    s.expand = expand;
    s.depth = 0;
    int rc = scan_doc(&s);
    /* lss__json_tape_need bounds what a text that can still be valid needs,
     * but a malformed one ("[[[[..." cut short) may open more than its
     * length could ever close and exhaust even that tape.  It is malformed,
     * so say where and why: expand 0 keeps only the root and the names of
     * open objects, which never outgrow the bound, and validates the same. */
    if (rc == LSS_ENOSPACE && expand > 0 && cap >= lss__json_tape_need(n)) {
        s.err->off = 0;
        s.err->msg[0] = '\0';
        s.pos = 0;
        s.ntok = 0;
        s.klo = cap;
        s.expand = 0;
        s.depth = 0;
        rc = scan_doc(&s);
        if (rc == LSS_OK) /* cannot happen: a valid text fits */
            return LSS_ENOSPACE;
    }
    if (rc == LSS_OK)
        doc->ntok = s.ntok;
    return rc;
}

/* ------------------------------------------------------------------------
 * Unescaping.  These read strings the scanner has accepted; they stay in
 * bounds on any input but only promise meaningful output for valid JSON.
 * ---------------------------------------------------------------------- */

static unsigned hex4_value(const unsigned char *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex_val(p[k]);
        v = v << 4 | (unsigned)(h < 0 ? 0 : h);
    }
    return v;
}

static size_t utf8_put(unsigned cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The escape at p[0] ('\\'), n bytes available: its UTF-8 goes to out,
 * *used gets the input consumed.  Returns the output length. */
static size_t decode_escape(const unsigned char *p, size_t n,
                            unsigned char out[4], size_t *used)
{
    static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
    *used = 2;
    if (n < 2) {
        *used = n;
        out[0] = '\\';
        return 1;
    }
    const char *k = p[1] ? strchr(from, p[1]) : NULL;
    if (p[1] != 'u' || n < 6) {
        out[0] = k ? (unsigned char)to[k - from] : p[1];
        return 1;
    }
    unsigned cp = hex4_value(p + 2);
    *used = 6;
    if (cp >= 0xd800 && cp <= 0xdbff && n >= 12 && p[6] == '\\' &&
        p[7] == 'u') {
        unsigned lo = hex4_value(p + 8);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            *used = 12;
        }
    }
    return utf8_put(cp, out);
}

/* Yields the unescaped bytes of a string one at a time, so names can be
 * compared without a buffer. */
typedef struct uiter {
    const unsigned char *p, *end;
    unsigned char buf[4];
    size_t nbuf, ibuf;
} uiter;

static void uiter_init(uiter *it, const char *p, size_t n)
{
    it->p = (const unsigned char *)p;
    it->end = it->p + n;
    it->nbuf = it->ibuf = 0;
}

static inline int uiter_next(uiter *it)
{
    if (it->ibuf < it->nbuf)
        return it->buf[it->ibuf++];
    if (it->p >= it->end)
        return -1;
    if (*it->p != '\\')
        return *it->p++;
    size_t used;
    it->nbuf = decode_escape(it->p, (size_t)(it->end - it->p), it->buf, &used);
    it->p += used;
    it->ibuf = 1;
    return it->buf[0];
}

static void put_bytes(char *buf, size_t cap, size_t *out, const void *p,
                      size_t n)
{
    if (*out < cap) {
        size_t room = cap - *out;
        memcpy(buf + *out, p, n < room ? n : room);
    }
    *out += n;
}

int lss__json_unescape(const char *p, size_t n, char *buf, size_t cap,
                       size_t *need)
{
    size_t out = 0, i = 0;
    if (!buf)
        cap = 0;
    while (i < n) {
        const char *bs = memchr(p + i, '\\', n - i);
        size_t stop = bs ? (size_t)(bs - p) : n;
        put_bytes(buf, cap, &out, p + i, stop - i);
        i = stop;
        if (!bs)
            break;
        unsigned char u[4];
        size_t used, k = decode_escape((const unsigned char *)p + i, n - i, u,
                                       &used);
        put_bytes(buf, cap, &out, u, k);
        i += used;
    }
    if (need)
        *need = out;
    return out <= cap ? LSS_OK : LSS_ENOSPACE;
}

/* ------------------------------------------------------------------------
 * Member-name order: bytewise on the unescaped names, so that names equal
 * after unescaping sort together.  Tokens span the quotes.
 * ---------------------------------------------------------------------- */

static int key_cmp(const char *sa, const lss_json_tok *a, const char *sb,
                   const lss_json_tok *b)
{
    const char *pa = sa + a->off + 1, *pb = sb + b->off + 1;
    size_t na = a->len - 2, nb = b->len - 2;
    if (!((a->flags | b->flags) & LSS_JSON_ESCAPED)) {
        int c = memcmp(pa, pb, na < nb ? na : nb);
        if (c)
            return c;
        return na < nb ? -1 : na > nb;
    }
    uiter ia, ib;
    uiter_init(&ia, pa, na);
    uiter_init(&ib, pb, nb);
    for (;;) {
        int x = uiter_next(&ia), y = uiter_next(&ib);
        if (x != y)
            return x - y;
        if (x < 0)
            return 0;
    }
}

static int key_equal(const char *sa, const lss_json_tok *a, const char *sb,
                     const lss_json_tok *b)
{
    if (!((a->flags | b->flags) & LSS_JSON_ESCAPED))
        return a->len == b->len &&
               !memcmp(sa + a->off + 1, sb + b->off + 1, a->len - 2u);
    return key_cmp(sa, a, sb, b) == 0;
}

static inline void swap_tok(lss_json_tok *a, lss_json_tok *b)
{
    lss_json_tok t = *a;
    *a = *b;
    *b = t;
}

static void sift_down(const char *src, lss_json_tok *k, size_t root,
                      size_t end)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= end)
            return;
        if (child + 1 < end && key_cmp(src, &k[child], src, &k[child + 1]) < 0)
            child++;
        if (key_cmp(src, &k[root], src, &k[child]) >= 0)
            return;
        swap_tok(&k[root], &k[child]);
        root = child;
    }
}

/* Heapsort: in place, no recursion and O(m log m) even on adversarial
 * input, which quicksort cannot promise; insertion sort for small m. */
static void sort_keys(const char *src, lss_json_tok *k, size_t m)
{
    if (m <= 12) {
        for (size_t i = 1; i < m; i++)
            for (size_t j = i; j > 0 && key_cmp(src, &k[j - 1], src, &k[j]) > 0;
                 j--)
                swap_tok(&k[j - 1], &k[j]);
        return;
    }
    for (size_t i = m / 2; i-- > 0;)
        sift_down(src, k, i, m);
    for (size_t end = m - 1; end > 0; end--) {
        swap_tok(&k[0], &k[end]);
        sift_down(src, k, 0, end);
    }
}

/* ------------------------------------------------------------------------
 * Accessors
 * ---------------------------------------------------------------------- */

void lss__json_iter_init(lss_json_iter *it, const lss_json_doc *d,
                         const lss_json_tok *t)
{
    it->tok = d->tok;
    it->i = 0;
    it->left = 0;
    it->obj = 0;
    if (!t || (t->type != LSS_JSON_ARRAY && t->type != LSS_JSON_OBJECT) ||
        (t->flags & LSS_JSON_RAW))
        return;
    it->i = (uint32_t)(t - d->tok) + 1;
    it->left = t->count;
    it->obj = t->type == LSS_JSON_OBJECT;
}

const lss_json_tok *lss__json_iter_next(lss_json_iter *it,
                                        const lss_json_tok **key)
{
    if (key)
        *key = NULL;
    if (!it->left)
        return NULL;
    it->left--;
    const lss_json_tok *t = &it->tok[it->i];
    if (it->obj) {
        if (key)
            *key = t;
        t++;
    }
    it->i = t->next;
    return t;
}

const lss_json_tok *lss__json_at(const lss_json_doc *d, const lss_json_tok *t,
                                 size_t i)
{
    lss_json_iter it;
    const lss_json_tok *v;
    if (lss__json_type(t) != LSS_JSON_ARRAY)
        return NULL;
    lss__json_iter_init(&it, d, t);
    while ((v = lss__json_iter_next(&it, NULL)) && i > 0)
        i--;
    return v;
}

/* String token t (quotes included) unescaped equals s[0..n)? */
static int str_matches(const char *src, const lss_json_tok *t, const char *s,
                       size_t n)
{
    const char *p = src + t->off + 1;
    size_t m = t->len - 2u;
    if (!(t->flags & LSS_JSON_ESCAPED))
        return m == n && !memcmp(p, s, n);
    if (n > m) /* unescaping never lengthens a string */
        return 0;
    uiter it;
    uiter_init(&it, p, m);
    for (size_t i = 0; i < n; i++)
        if (uiter_next(&it) != (unsigned char)s[i])
            return 0;
    return uiter_next(&it) < 0;
}

int lss__json_str_equal(const lss_json_doc *d, const lss_json_tok *t,
                        const char *s, size_t n)
{
    if (lss__json_type(t) != LSS_JSON_STRING)
        return 0;
    return str_matches(d->src, t, s, n);
}

const lss_json_tok *lss__json_get(const lss_json_doc *d, const lss_json_tok *t,
                                  const char *key, size_t n)
{
    lss_json_iter it;
    const lss_json_tok *k, *v;
    if (lss__json_type(t) != LSS_JSON_OBJECT)
        return NULL;
    lss__json_iter_init(&it, d, t);
    while ((v = lss__json_iter_next(&it, &k)))
        if (str_matches(d->src, k, key, n))
            return v;
    return NULL;
}

int lss__json_str(const lss_json_doc *d, const lss_json_tok *t, char *buf,
                  size_t cap, lss_span *out)
{
    size_t need;
    if (lss__json_type(t) != LSS_JSON_STRING)
        return LSS_EINVAL;
    const char *p = d->src + t->off + 1;
    size_t n = t->len - 2u;
    out->p = p;
    out->n = n;
    if (!(t->flags & LSS_JSON_ESCAPED))
        return LSS_OK;
    int rc = lss__json_unescape(p, n, buf, cap, &need);
    out->p = rc == LSS_OK ? buf : NULL;
    out->n = need;
    return rc;
}

int lss__json_str_copy(const lss_json_doc *d, const lss_json_tok *t,
                       char *buf, size_t cap, size_t *need)
{
    size_t k;
    if (lss__json_type(t) != LSS_JSON_STRING)
        return LSS_EINVAL;
    if (!buf)
        cap = 0;
    lss__json_unescape(d->src + t->off + 1, t->len - 2u, buf,
                       cap ? cap - 1 : 0, &k);
    if (need)
        *need = k;
    if (k >= cap)
        return LSS_ENOSPACE;
    buf[k] = '\0';
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Numbers: exact decimal arithmetic on the literal's digits, never double.
 * ---------------------------------------------------------------------- */

/* A number literal split into its parts; digits I and F together read as
 * one digit string D. */
typedef struct decnum {
    int neg, eneg, integer;
    const char *ip, *fp, *ep; /* integer, fraction, exponent digits */
    size_t in, fn, en;
} decnum;

static int decnum_parse(const char *p, size_t n, decnum *d)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, j;
    memset(d, 0, sizeof *d);
    d->integer = 1;
    if (i < n && p[i] == '-') {
        d->neg = 1;
        i++;
    }
    d->ip = p + i;
    if (i < n && p[i] == '0')
        i++;
    else if (i < n && is_digit(u[i]))
        i = skip_digits(u, i, n);
    else
        return 0;
    d->in = (size_t)(p + i - d->ip);
    if (i < n && p[i] == '.') {
        d->integer = 0;
        d->fp = p + ++i;
        j = skip_digits(u, i, n);
        if (j == i)
            return 0;
        d->fn = j - i;
        i = j;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        d->integer = 0;
        if (++i < n && (p[i] == '+' || p[i] == '-'))
            d->eneg = p[i++] == '-';
        d->ep = p + i;
        j = skip_digits(u, i, n);
        if (j == i)
            return 0;
        d->en = j - i;
        i = j;
    }
    return i == n;
}

static inline unsigned dec_digit(const decnum *d, size_t k)
{
    return (unsigned)((k < d->in ? d->ip[k] : d->fp[k - d->in]) - '0');
}

/* Index of the first non-zero digit of D; in + fn when D is all zeros. */
static size_t dec_lead(const decnum *d)
{
    size_t k = 0, t = d->in + d->fn;
    while (k < t && dec_digit(d, k) == 0)
        k++;
    return k;
}

/* The exponent, saturated at +-1e12: with |D| < 2^32 digits, anything that
 * large already decides truncation, and the sums below cannot overflow. */
static int64_t dec_exp_sat(const decnum *d)
{
    int64_t e = 0;
    for (size_t k = 0; k < d->en; k++)
        if (e < 1000000000000)
            e = e * 10 + (d->ep[k] - '0');
    return d->eneg ? -e : e;
}

static int to_int64(uint64_t mag, int neg, int64_t *out)
{
    const uint64_t lim = (uint64_t)INT64_MAX;
    if (!neg && mag > lim)
        return LSS_ERANGE;
    if (neg && mag > lim + 1)
        return LSS_ERANGE;
    if (neg)
        *out = mag == lim + 1 ? INT64_MIN : -(int64_t)mag;
    else
        *out = (int64_t)mag;
    return LSS_OK;
}

int lss__json_num_int64(const char *p, size_t n, int64_t *out)
{
    decnum d;
    uint64_t v = 0;
    if (!p || !decnum_parse(p, n, &d) || !d.integer)
        return LSS_EINVAL;
    if (d.in > 19)
        return LSS_ERANGE;
    for (size_t k = 0; k < d.in; k++)
        v = v * 10 + dec_digit(&d, k);
    return to_int64(v, d.neg, out);
}

/* Value = 0.D[lead..] x 10^(E + in - lead): its integer part has that many
 * digits, which decides everything before any digit is read. */
int lss__json_num_trunc(const char *p, size_t n, int64_t *out)
{
    decnum d;
    uint64_t v = 0;
    if (!p || !decnum_parse(p, n, &d))
        return LSS_EINVAL;
    size_t lead = dec_lead(&d), t = d.in + d.fn;
    int64_t idigits = dec_exp_sat(&d) + (int64_t)d.in - (int64_t)lead;
    if (lead == t || idigits <= 0) {
        *out = 0;
        return LSS_OK;
    }
    if (idigits > 19) {
        *out = d.neg ? INT64_MIN : INT64_MAX;
        return LSS_OK;
    }
    for (size_t k = lead; k < lead + (size_t)idigits; k++)
        v = v * 10 + (k < t ? dec_digit(&d, k) : 0);
    if (to_int64(v, d.neg, out) != LSS_OK)
        *out = d.neg ? INT64_MIN : INT64_MAX;
    return LSS_OK;
}

int lss__json_int64(const lss_json_doc *d, const lss_json_tok *t,
                    int64_t *out)
{
    if (lss__json_type(t) != LSS_JSON_NUMBER || !(t->flags & LSS_JSON_INTEGER))
        return LSS_EINVAL;
    return lss__json_num_int64(d->src + t->off, t->len, out);
}

int lss__json_to_int64(const lss_json_doc *d, const lss_json_tok *t,
                       int64_t *out)
{
    if (lss__json_type(t) != LSS_JSON_NUMBER)
        return LSS_EINVAL;
    return lss__json_num_trunc(d->src + t->off, t->len, out);
}

/* ------------------------------------------------------------------------
 * Number equality.  Two non-zero numbers are equal when they have the same
 * sign, the same significant digits G (D without leading and trailing
 * zeros) and the same position of the decimal point, E + in - lead.  The
 * exponents are compared exactly, however many digits they have.
 * ---------------------------------------------------------------------- */

static void exp_digits(const decnum *d, const char **p, size_t *n)
{
    size_t k = 0;
    while (k < d->en && d->ep[k] == '0')
        k++;
    *p = d->ep ? d->ep + k : "";
    *n = d->en - k;
}

/* |A| == |B| + m for decimal digit strings A, B and a small m: add m to B
 * from the last digit up, comparing as we go. */
static int mag_plus_equal(const char *a, size_t an, const char *b, size_t bn,
                          int64_t m)
{
    int64_t carry = m;
    size_t len = an > bn ? an : bn;
    for (size_t i = 0; i < len; i++) {
        int64_t ad = i < an ? a[an - 1 - i] - '0' : 0;
        int64_t v = (i < bn ? b[bn - 1 - i] - '0' : 0) + carry;
        int64_t r = v % 10;
        carry = v / 10;
        if (r < 0) {
            r += 10;
            carry--;
        }
        if (r != ad)
            return 0;
    }
    return carry == 0;
}

static int64_t small_exp(const char *p, size_t n, int neg)
{
    int64_t e = 0;
    for (size_t k = 0; k < n; k++)
        e = e * 10 + (p[k] - '0');
    return neg ? -e : e;
}

/* Ex + kx == Ey + ky, where |k| < 2^33.  Up to 18 digits int64 is exact;
 * beyond, a 17-digit exponent is too far from an exponent of 19 or more
 * digits, and so are opposite signs, for the small k to bridge. */
static int exp_equal(const decnum *x, int64_t kx, const decnum *y, int64_t ky)
{
    const char *px, *py;
    size_t nx, ny;
    exp_digits(x, &px, &nx);
    exp_digits(y, &py, &ny);
    if (nx <= 18 && ny <= 18)
        return small_exp(px, nx, x->eneg) + kx ==
               small_exp(py, ny, y->eneg) + ky;
    if (nx <= 17 || ny <= 17 || x->eneg != y->eneg)
        return 0;
    int64_t m = x->eneg ? kx - ky : ky - kx;
    return mag_plus_equal(px, nx, py, ny, m);
}

static int num_equal(const char *a, size_t na, const char *b, size_t nb)
{
    decnum x, y;
    if (!decnum_parse(a, na, &x) || !decnum_parse(b, nb, &y))
        return 0;
    size_t lx = dec_lead(&x), ly = dec_lead(&y);
    size_t tx = x.in + x.fn, ty = y.in + y.fn;
    if (lx == tx || ly == ty) /* a zero, whatever its sign or exponent */
        return lx == tx && ly == ty;
    if (x.neg != y.neg)
        return 0;
    while (dec_digit(&x, tx - 1) == 0)
        tx--;
    while (dec_digit(&y, ty - 1) == 0)
        ty--;
    if (tx - lx != ty - ly)
        return 0;
    for (size_t k = 0; k < tx - lx; k++)
        if (dec_digit(&x, lx + k) != dec_digit(&y, ly + k))
            return 0;
    return exp_equal(&x, (int64_t)x.in - (int64_t)lx, &y,
                     (int64_t)y.in - (int64_t)ly);
}

/* ------------------------------------------------------------------------
 * JSON equality: both texts on full tapes, then a work stack of pending
 * (a, b) pairs instead of recursion.  A stack entry is a token slot whose
 * off/len hold the two tape indices.
 * ---------------------------------------------------------------------- */

typedef struct eqwalk {
    const lss_json_doc *a, *b;
    lss_json_tok *st;
    size_t top, cap;
} eqwalk;

static int eq_push(eqwalk *w, uint32_t ia, uint32_t ib)
{
    if (w->top >= w->cap)
        return LSS_ENOSPACE;
    w->st[w->top].off = ia;
    w->st[w->top].len = ib;
    w->top++;
    return 1;
}

static int eq_array(eqwalk *w, const lss_json_tok *ta, const lss_json_tok *tb)
{
    if (ta->count != tb->count)
        return 0;
    uint32_t ia = (uint32_t)(ta - w->a->tok) + 1;
    uint32_t ib = (uint32_t)(tb - w->b->tok) + 1;
    for (uint32_t c = 0; c < ta->count; c++) {
        int rc = eq_push(w, ia, ib);
        if (rc != 1)
            return rc;
        ia = w->a->tok[ia].next;
        ib = w->b->tok[ib].next;
    }
    return 1;
}

/* Copy an object's key tokens to k[], each remembering its value's index
 * in next. */
static void eq_gather(const lss_json_doc *d, const lss_json_tok *t,
                      lss_json_tok *k)
{
    uint32_t i = (uint32_t)(t - d->tok) + 1;
    for (uint32_t c = 0; c < t->count; c++) {
        k[c] = d->tok[i];
        k[c].next = i + 1;
        i = d->tok[i + 1].next;
    }
}

/* Sort both objects' names (unique in each) and compare them in step; the
 * matched value pairs then replace the names on the stack. */
static int eq_object(eqwalk *w, const lss_json_tok *ta, const lss_json_tok *tb)
{
    size_t m = ta->count;
    if (m != tb->count)
        return 0;
    if (w->cap - w->top < 2 * m)
        return LSS_ENOSPACE;
    lss_json_tok *ka = w->st + w->top, *kb = ka + m;
    eq_gather(w->a, ta, ka);
    eq_gather(w->b, tb, kb);
    sort_keys(w->a->src, ka, m);
    sort_keys(w->b->src, kb, m);
    for (size_t i = 0; i < m; i++)
        if (!key_equal(w->a->src, &ka[i], w->b->src, &kb[i]))
            return 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t va = ka[i].next, vb = kb[i].next;
        ka[i].off = va;
        ka[i].len = vb;
    }
    w->top += m;
    return 1;
}

static int eq_pair(eqwalk *w, const lss_json_tok *ta, const lss_json_tok *tb)
{
    if (ta->type != tb->type)
        return 0;
    switch (ta->type) {
    case LSS_JSON_NUMBER:
        return num_equal(w->a->src + ta->off, ta->len, w->b->src + tb->off,
                         tb->len);
    case LSS_JSON_STRING:
        return key_equal(w->a->src, ta, w->b->src, tb);
    case LSS_JSON_ARRAY:
        return eq_array(w, ta, tb);
    case LSS_JSON_OBJECT:
        return eq_object(w, ta, tb);
    default:
        return 1;
    }
}

int lss__json_equal(const char *a, size_t na, const char *b, size_t nb,
                    lss_json_tok *scratch, size_t cap)
{
    lss_json_doc da, db;
    int rc = lss__json_scan(&da, a, na, LSS_JSON_EXPAND_ALL, scratch, cap,
                            NULL);
    if (rc)
        return rc;
    rc = lss__json_scan(&db, b, nb, LSS_JSON_EXPAND_ALL, scratch + da.ntok,
                        cap - da.ntok, NULL);
    if (rc)
        return rc;
    eqwalk w = {&da, &db, scratch + da.ntok + db.ntok, 0,
                cap - da.ntok - db.ntok};
    rc = eq_push(&w, 0, 0);
    while (rc == 1 && w.top > 0) {
        w.top--;
        rc = eq_pair(&w, &da.tok[w.st[w.top].off], &db.tok[w.st[w.top].len]);
    }
    return rc;
}
