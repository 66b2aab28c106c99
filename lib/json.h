/* json.h — the core's one JSON reader and one JSON writer (internal).
 *
 * Reader (json_scan.c): a strict in-place scanner for PROTOCOL.md 1.3 that
 * fills a flat token tape in caller storage, accessors over that tape, the
 * number conversions of PROTOCOL.md 1.4 and the JSON equality of 7.4.
 * Writer (json_write.c): appends JSON into a caller buffer with snprintf
 * semantics (PROTOCOL.md 1.5), and compacts validated texts (9.1).
 *
 * Nothing here allocates, recurses on input depth, or keeps global state;
 * every function is thread-safe on distinct arguments.
 */
#ifndef LSS_JSON_H
#define LSS_JSON_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Tokens
 * ---------------------------------------------------------------------- */

enum lss_json_type {
    LSS_JSON_NULL = 1,
    LSS_JSON_FALSE,
    LSS_JSON_TRUE,
    LSS_JSON_NUMBER,
    LSS_JSON_STRING,
    LSS_JSON_ARRAY,
    LSS_JSON_OBJECT
};

/* Token flags. */
#define LSS_JSON_ESCAPED 0x01u /* string: contains at least one backslash */
#define LSS_JSON_INTEGER 0x02u /* number: plain integer literal, -?digits */
#define LSS_JSON_RAW 0x04u     /* container deeper than the expand depth:
                                * validated, but its children are not on
                                * the tape and count is 0 */

/* One value on the tape.  off/len cover the value's bytes in the input,
 * quotes and brackets included.  next is the tape index just past this
 * value's subtree, so a subtree is skipped in O(1).  count is the number of
 * array elements or object members on the tape; an object's members follow
 * it as key token, value token, key token, ... */
typedef struct lss_json_tok {
    uint32_t off;
    uint32_t len;
    uint32_t next;
    uint32_t count;
    uint8_t type;
    uint8_t flags;
} lss_json_tok;

/* A scanned document: the input (borrowed, must outlive the doc) and the
 * tape in caller storage.  tok[0] is the root value. */
typedef struct lss_json_doc {
    const char *src;
    size_t len;
    lss_json_tok *tok;
    size_t ntok;
} lss_json_doc;

#define LSS_JSON_MAX_DEPTH 512
/* Token offsets are 32-bit: longer inputs are refused with LSS_ETOOBIG. */
#define LSS_JSON_MAX_INPUT ((size_t)UINT32_MAX)
/* An expand depth that puts every value on the tape. */
#define LSS_JSON_EXPAND_ALL ((unsigned)LSS_JSON_MAX_DEPTH)

/* Why a scan failed: byte offset into the input and a human description in
 * the wording of PROTOCOL.md 5.1 ("invalid character 'x' after array
 * element", "duplicate object key \"a\"", ...).  msg is valid UTF-8 and
 * NUL-terminated. */
#define LSS_JSON_ERR_MAX 160
typedef struct lss_json_err {
    size_t off;
    char msg[LSS_JSON_ERR_MAX];
} lss_json_err;

/* ------------------------------------------------------------------------
 * Scanner
 * ---------------------------------------------------------------------- */

/* Token slots that scanning n bytes can need at worst, whatever the expand
 * depth.  The tape and the scanner's scratch share the caller's array:
 * tokens grow from the front, and the names of every object still open (for
 * duplicate detection) are parked in the unused tail.  A member `"":0,`
 * costs 5 bytes and 3 slots (key token, value token, parked name); nothing
 * is denser, so 3 slots per 5 bytes plus a constant always suffice. */
static inline size_t lss__json_tape_need(size_t n)
{
    return n / 5 * 3 + 4;
}

/* Validate p[0..n) strictly (PROTOCOL.md 1.3) and fill tok[0..cap) with its
 * tape.  Containers at depth <= expand (the outermost has depth 1) have
 * their children on the tape; deeper ones are validated completely but
 * appear as one LSS_JSON_RAW token.  expand 0 yields a single token;
 * LSS_JSON_EXPAND_ALL yields everything.  On success fills *doc and returns
 * LSS_OK.  Errors: LSS_EJSON (malformed; *err says where and why),
 * LSS_ENOSPACE (cap too small; lss__json_tape_need(n) slots always
 * suffice), LSS_ETOOBIG (n > LSS_JSON_MAX_INPUT), LSS_EINVAL (NULL
 * argument).  err may be NULL.  Never allocates; worst case O(n log n);
 * uses about 9 KB of stack for its depth stack. */
int lss__json_scan(lss_json_doc *doc, const char *p, size_t n, unsigned expand,
                   lss_json_tok *tok, size_t cap, lss_json_err *err);

/* 1 if s[0..n) is well-formed UTF-8 by the scanner's own rules (no
 * overlongs, surrogates, > U+10FFFF or truncation), else 0.  U+0000 is
 * allowed here; callers that forbid it check for it. */
int lss__utf8_valid(const char *s, size_t n);

/* ------------------------------------------------------------------------
 * Accessors.  Token pointers are into doc->tok; NULL means "absent" and is
 * accepted everywhere a token is read.
 * ---------------------------------------------------------------------- */

static inline const lss_json_tok *lss__json_root(const lss_json_doc *d)
{
    return d->ntok ? d->tok : NULL;
}

static inline int lss__json_type(const lss_json_tok *t)
{
    return t ? t->type : 0;
}

/* The value's bytes exactly as they appear in the input. */
static inline lss_span lss__json_span(const lss_json_doc *d,
                                      const lss_json_tok *t)
{
    lss_span s = {d->src + t->off, t->len};
    return s;
}

/* Walks the elements of an array or the members of an object. */
typedef struct lss_json_iter {
    const lss_json_tok *tok; /* the doc's tape */
    uint32_t i;              /* next child's index */
    uint32_t left;           /* children still to visit */
    int obj;
} lss_json_iter;

/* Start at the first child of t; a scalar, RAW or NULL t has none. */
void lss__json_iter_init(lss_json_iter *it, const lss_json_doc *d,
                         const lss_json_tok *t);
/* The next element (arrays) or member value (objects; *key, when key is not
 * NULL, receives the member's key token), or NULL when done. */
const lss_json_tok *lss__json_iter_next(lss_json_iter *it,
                                        const lss_json_tok **key);

/* Element i of array t, or NULL.  O(i). */
const lss_json_tok *lss__json_at(const lss_json_doc *d, const lss_json_tok *t,
                                 size_t i);

/* The value of member key[0..n) of object t (compared with the member name
 * unescaped, so "\u0061" matches "a"), or NULL. */
const lss_json_tok *lss__json_get(const lss_json_doc *d, const lss_json_tok *t,
                                  const char *key, size_t n);

static inline const lss_json_tok *
lss__json_getz(const lss_json_doc *d, const lss_json_tok *t, const char *key)
{
    return lss__json_get(d, t, key, strlen(key));
}

/* 1 if string token t unescaped equals s[0..n), else 0 (also for non-strings). */
int lss__json_str_equal(const lss_json_doc *d, const lss_json_tok *t,
                        const char *s, size_t n);

/* String token t unescaped.  Zero-copy when t has no escapes: *out points
 * into the input and buf is untouched.  Otherwise the text is unescaped into
 * buf and *out points there.  Returns LSS_OK; LSS_ENOSPACE when buf is too
 * small (out->p NULL, out->n the size needed); LSS_EINVAL if t is not a
 * string. */
int lss__json_str(const lss_json_doc *d, const lss_json_tok *t, char *buf,
                  size_t cap, lss_span *out);

/* String token t unescaped into buf with a terminating NUL (strings never
 * contain U+0000), snprintf-like: *need (may be NULL) receives the unescaped
 * length without the NUL.  Returns LSS_OK when need + 1 <= cap, else
 * LSS_ENOSPACE (buf[0..cap) may hold a prefix; nothing is written past
 * cap); LSS_EINVAL if t is not a string. */
int lss__json_str_copy(const lss_json_doc *d, const lss_json_tok *t,
                       char *buf, size_t cap, size_t *need);

/* The same on the bytes between the quotes of a validated string; no NUL is
 * written and LSS_OK means need <= cap. */
int lss__json_unescape(const char *p, size_t n, char *buf, size_t cap,
                       size_t *need);

/* Exact int64 from an integer literal (LSS_JSON_INTEGER).  LSS_ERANGE
 * outside int64, LSS_EINVAL for any other token (1.0 included). */
int lss__json_int64(const lss_json_doc *d, const lss_json_tok *t,
                    int64_t *out);

/* PROTOCOL.md 1.4 "must be a number": any number token becomes its exact
 * decimal value truncated toward zero and clamped to int64 (never through
 * double).  LSS_EINVAL when t is not a number. */
int lss__json_to_int64(const lss_json_doc *d, const lss_json_tok *t,
                       int64_t *out);

/* The two conversions on a number literal's text.  LSS_EINVAL when p[0..n)
 * is not an RFC 8259 number. */
int lss__json_num_int64(const char *p, size_t n, int64_t *out);
int lss__json_num_trunc(const char *p, size_t n, int64_t *out);

/* ------------------------------------------------------------------------
 * Equality (PROTOCOL.md 7.4)
 * ---------------------------------------------------------------------- */

/* Scratch slots lss__json_equal needs at worst. */
static inline size_t lss__json_equal_need(size_t na, size_t nb)
{
    return 3 * lss__json_tape_need(na) + lss__json_tape_need(nb);
}

/* 1 if the JSON texts a and b are equal (members in any order, strings
 * after unescaping, numbers by exact decimal value, -0 == 0), 0 if not.
 * Both are validated on the way: LSS_EJSON if either is malformed;
 * LSS_ENOSPACE if scratch[0..cap) is too small.  Iterative; object members
 * are matched by sorting, O(n log n). */
int lss__json_equal(const char *a, size_t na, const char *b, size_t nb,
                    lss_json_tok *scratch, size_t cap);

/* ------------------------------------------------------------------------
 * Writer (json_write.c).  Appends never write past cap; len keeps counting
 * so that lss__jw_finish can report the size needed.  Output is not
 * NUL-terminated.
 * ---------------------------------------------------------------------- */

typedef struct lss_json_writer {
    char *buf;
    size_t cap;
    size_t len; /* bytes produced so far, possibly > cap */
} lss_json_writer;

static inline void lss__jw_init(lss_json_writer *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
}

void lss__jw_raw(lss_json_writer *w, const char *p, size_t n);

/* Append a string literal without counting its bytes by hand. */
#define LSS_JW_LIT(w, lit) lss__jw_raw((w), "" lit "", sizeof(lit) - 1)

static inline void lss__jw_char(lss_json_writer *w, char c)
{
    if (w->len < w->cap)
        w->buf[w->len] = c;
    w->len++;
}

/* s[0..n) as a JSON string, quotes included, escaped per PROTOCOL.md 1.5.
 * s must be UTF-8; it is copied as is. */
void lss__jw_str(lss_json_writer *w, const char *s, size_t n);

static inline void lss__jw_strz(lss_json_writer *w, const char *s)
{
    lss__jw_str(w, s, strlen(s));
}

/* v in plain decimal. */
void lss__jw_int(lss_json_writer *w, int64_t v);

static inline void lss__jw_null(lss_json_writer *w)
{
    lss__jw_raw(w, "null", 4);
}

static inline void lss__jw_bool(lss_json_writer *w, int b)
{
    if (b)
        lss__jw_raw(w, "true", 4);
    else
        lss__jw_raw(w, "false", 5);
}

/* LSS_OK if everything fit, else LSS_ENOSPACE; *need (may be NULL) gets the
 * total size the output needs. */
static inline int lss__jw_finish(const lss_json_writer *w, size_t *need)
{
    if (need)
        *need = w->len;
    return w->len <= w->cap ? LSS_OK : LSS_ENOSPACE;
}

/* Append the validated JSON text p[0..n) without insignificant whitespace;
 * member order, escapes and number spellings are kept (PROTOCOL.md 9.1). */
void lss__json_compact(lss_json_writer *w, const char *p, size_t n);

#endif /* LSS_JSON_H */
