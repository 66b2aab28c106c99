/* http.h — an incremental, in-place HTTP/1.1 request parser (PROTOCOL.md
 * 3.2-3.3): the head is parsed where it lies in the connection buffer and
 * described by offsets, so the buffer may move (grow, compact) between
 * calls; chunked bodies are decoded in place.  No allocation. */
#ifndef SHIM_HTTP_H
#define SHIM_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest request head: request line, header fields, final CRLF. */
#define HTTP_HEAD_MAX 16384

/* Bytes [off, off + n) of the request, counted from its first byte. */
typedef struct http_span {
    uint32_t off;
    uint32_t n;
} http_span;

enum { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

typedef struct http_req {
    http_span method;
    http_span path;          /* percent-decoded, runs of '/' collapsed */
    http_span query;         /* raw, without the '?' */
    int minor;               /* HTTP/1.<minor> */
    int has_auth;
    http_span auth;          /* first Authorization value */
    int expect_continue;
    int conn_close;          /* "Connection: close" */
    int conn_keep_alive;     /* "Connection: keep-alive" (HTTP/1.0) */
    int body_kind;           /* HTTP_BODY_* */
    uint64_t content_length; /* HTTP_BODY_LENGTH */
    uint32_t head_n;         /* bytes of the head */
    int status;              /* on error: 400, 431 or 501 */
} http_req;

/* Parse the head of the request at p[0..n).  *scanned is 0 before the first
 * call for a request and lets later calls skip what was searched already.
 * Returns LSS_OK with *r filled (p is modified in place: the path is
 * decoded), LSS_AGAIN when the head is not complete, or LSS_EINVAL with
 * r->status the answer (400 malformed, 431 too large, 501 transfer coding). */
int http_parse_head(char *p, size_t n, size_t *scanned, http_req *r);

/* Body decoding state.  Offsets are from the request's first byte. */
typedef struct http_body {
    int kind;
    int st;          /* chunked: parser state */
    uint64_t left;   /* bytes left: of the body (length) or of the chunk */
    size_t rpos;     /* raw bytes consumed so far */
    size_t wpos;     /* end of the decoded body (starts at head_n) */
    uint64_t total;  /* decoded bytes */
    size_t trailer;  /* trailer bytes seen */
    int done;
} http_body;

void http_body_init(http_body *b, const http_req *r);

/* Decode what p[0..n) holds of the body (p = the request's first byte).
 * Returns LSS_OK when the body is complete (the decoded bytes are
 * p[r->head_n .. b->wpos), the request ends at b->rpos), LSS_AGAIN for more,
 * LSS_ETOOBIG when the decoded size exceeds limit, LSS_EINVAL on bad
 * chunked framing. */
int http_body_feed(http_body *b, char *p, size_t n, uint64_t limit);

/* The first value of form-encoded key in query q[0..n), decoded into out
 * (out needs at most n bytes).  Returns 1 and sets *out_n when present, 0
 * when absent.  Pairs with bad escapes or ';' are skipped (Go's ParseQuery). */
int http_query_get(const char *q, size_t n, const char *key, char *out,
                   size_t *out_n);

/* "OK", "Not Found", ...; "Unknown" for other codes. */
const char *http_reason(int status);

/* IMF-fixdate of t ("Sun, 06 Nov 1994 08:49:37 GMT"): 29 bytes + NUL. */
void http_date(time_t t, char out[30]);

/* Case-insensitive comparison of a[0..n) with the NUL-terminated lower-case
 * word w. */
int http_ieq(const char *a, size_t n, const char *w);

#endif
