/* fuzz_rpc.c — the JSON-RPC decoder and dispatcher (lib/rpc.c, PROTOCOL.md
 * 5, 6, 12.1-12.2) on an in-memory store.
 *
 * The input is one flags byte and up to MAX_REQS request bodies separated
 * by 0x1E (RFC 7464's record separator, which no valid body contains).
 * Store A runs the bodies as one lss_rpc_batch (group commit), store B one
 * lss_rpc_call at a time.  Both stay open across inputs (opening a store
 * and creating a namespace cost ~30 times a run) but every input starts
 * from the same state: namespace NS alone, empty, global positions from 1
 * (other namespaces deleted, NS cleared, or re-created when an input
 * deleted or changed it).  Every REOPEN_EVERY inputs both are closed,
 * which must free everything, and opened afresh.
 *
 * Properties:
 *   - lss_rpc_batch and lss_rpc_call return LSS_OK and every request gets a
 *     status (200, 400, 404, 409 or 500), a method id and a response that is
 *     strict JSON ending in exactly one "\n";
 *   - an error response is {"error":{"code":..,"message":..[,"details":{}]}}
 *     with the code PROTOCOL.md 5.3 pairs with its status; a 500 is only the
 *     documented "<prefix>: namespace not found" (a store in memory has no
 *     other backend failures, and nothing else may leak SQLite text);
 *   - a 200 response is not an error object;
 *   - "as if one after another" (streamstore.h, lss_rpc_batch): the batch
 *     gives every request the status and the response that calling it
 *     alone gives, in order, except that the calls flagged
 *     LSS_RPC_MAY_DEFER other than writes come after all the others; times,
 *     UUIDs and token secrets aside (and the order of ns.list, which sorts
 *     by a creation time of whole seconds);
 *   - memory: what a run adds to the store's allocator peak stays under a
 *     bound linear in the input, and everything is freed at close. */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "json.h"
#include "token.h"

#define MAX_IN (32 * 1024)
#define MAX_REQS 16
#define NS "fuzz"
#define SEP 0x1e
/* Flags byte: bit 0 on, request i is marked LSS_RPC_MAY_DEFER when bit
 * 1 + i % 7 is set too. */
#define FLAG_DEFER 0x1
#define REOPEN_EVERY 256

typedef struct store {
    fuzz_alloc fa;
    lss_db *db;
    lss_conn *c;
    size_t base; /* live bytes when the run started */
} store;

static void create_ns(store *s)
{
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    CHECK(lss_ns_create(s->c, NS, strlen(NS), "", 0, NULL, 0, tok, sizeof tok,
                        &tn, NULL) == LSS_OK,
          "lss_ns_create");
}

static void store_open(store *s)
{
    fuzz_alloc_init(&s->fa);
    lss_options o;
    lss_options_init(&o);
    o.allocator = &s->fa.a;
    CHECK(lss_open(":memory:", &o, &s->db) == LSS_OK, "lss_open");
    CHECK(lss_conn_open(s->db, &s->c) == LSS_OK, "lss_conn_open");
    create_ns(s);
}

static void store_close(store *s)
{
    lss_conn_close(s->c);
    lss_close(s->db);
    s->c = NULL;
    s->db = NULL;
    CHECK(s->fa.live == 0 && s->fa.blocks == 0,
          "%zu bytes in %ld blocks not freed at close", s->fa.live,
          s->fa.blocks);
}

static int is_ns(lss_span id)
{
    return id.n == strlen(NS) && memcmp(id.p, NS, id.n) == 0;
}

/* Delete up to 8 namespaces other than NS (and NS itself when an input
 * gave it a description); returns how many, *have whether NS is left. */
static size_t delete_others(store *s, int *have)
{
    char ids[8][LSS_NS_ID_MAX];
    size_t idn[8], m = 0;
    lss_cursor *cur;
    const lss_ns_row *row;
    int rc;
    *have = 0;
    CHECK(lss_ns_list(s->c, &cur) == LSS_OK, "lss_ns_list");
    while ((rc = lss_cursor_next_ns(cur, &row)) == LSS_ROW) {
        if (is_ns(row->id) && row->description.n == 0) {
            *have = 1;
        } else if (m < 8) {
            memcpy(ids[m], row->id.p, row->id.n);
            idn[m++] = row->id.n;
        }
    }
    CHECK(rc == LSS_DONE, "lss_cursor_next_ns: %d", rc);
    lss_cursor_close(cur);
    for (size_t i = 0; i < m; i++)
        CHECK(lss_ns_delete(s->c, ids[i], idn[i], NULL, NULL) == LSS_OK,
              "lss_ns_delete");
    return m;
}

/* Back to namespace NS alone, empty, with an empty description. */
static void store_reset(store *s)
{
    if (!s->db) {
        store_open(s);
    } else {
        int have;
        while (delete_others(s, &have) > 0)
            ;
        if (have)
            CHECK(lss_ns_clear(s->c, NS, strlen(NS)) == LSS_OK, "lss_ns_clear");
        else
            create_ns(s);
    }
    s->fa.peak = s->fa.live;
    s->base = s->fa.live;
}

static void store_check(const store *s, size_t in_n)
{
    CHECK(s->fa.peak - s->base <= (size_t)16 * 1024 * 1024 + 256 * in_n,
          "a run of %zu input bytes took %zu bytes", in_n,
          s->fa.peak - s->base);
}

static const char *code_of(const lss_json_doc *d, const lss_json_tok *err,
                           char *buf, size_t cap)
{
    const lss_json_tok *code = lss__json_getz(d, err, "code");
    size_t need;
    CHECK(lss__json_type(code) == LSS_JSON_STRING &&
              lss__json_str_copy(d, code, buf, cap, &need) == LSS_OK,
          "error without a code string");
    return buf;
}

static int code_fits(int status, const char *code)
{
    switch (status) {
    case 400:
        return strcmp(code, "INVALID_REQUEST") == 0;
    case 404:
        return strcmp(code, "METHOD_NOT_FOUND") == 0 ||
               strcmp(code, "NAMESPACE_NOT_FOUND") == 0;
    case 409:
        return strcmp(code, "STREAM_VERSION_CONFLICT") == 0 ||
               strcmp(code, "DUPLICATE_MESSAGE_ID") == 0 ||
               strcmp(code, "NAMESPACE_EXISTS") == 0;
    case 500:
        return strcmp(code, "BACKEND_ERROR") == 0;
    default:
        return 0;
    }
}

static void check_response(const lss_rpc_req *q)
{
    CHECK(q->method >= 0 && q->method < LSS_RPC_METHOD_COUNT, "method %d",
          q->method);
    CHECK(q->status == 200 || q->status == 400 || q->status == 404 ||
              q->status == 409 || q->status == 500,
          "status %d", q->status);
    CHECK(q->resp && q->resp_n >= 2, "no response");
    CHECK(q->resp[q->resp_n - 1] == '\n' && q->resp[q->resp_n - 2] != '\n',
          "response does not end in exactly one newline");
    size_t n = q->resp_n - 1, cap = lss__json_tape_need(n);
    lss_json_tok *tok = malloc(cap * sizeof *tok);
    CHECK(tok != NULL, "out of memory");
    lss_json_doc d;
    lss_json_err e;
    int rc = lss__json_scan(&d, q->resp, n, 2, tok, cap, &e);
    CHECK(rc == LSS_OK, "response is not strict JSON (%s at %zu): %.*s", e.msg,
          e.off, (int)q->resp_n, q->resp);
    const lss_json_tok *root = lss__json_root(&d);
    const lss_json_tok *err = lss__json_type(root) == LSS_JSON_OBJECT
                                  ? lss__json_getz(&d, root, "error")
                                  : NULL;
    if (q->status == 200) {
        CHECK(err == NULL, "200 with an error body: %.*s", (int)n, q->resp);
    } else {
        CHECK(lss__json_type(err) == LSS_JSON_OBJECT && root->count == 1,
              "%d without an error object: %.*s", q->status, (int)n, q->resp);
        const lss_json_tok *first = err + 1;
        CHECK(lss__json_str_equal(&d, first, "code", 4),
              "error object does not start with code");
        const lss_json_tok *msg = lss__json_getz(&d, err, "message");
        const lss_json_tok *det = lss__json_getz(&d, err, "details");
        CHECK(lss__json_type(msg) == LSS_JSON_STRING, "error without message");
        CHECK(err->count == 2u + (det != NULL), "unexpected keys in error");
        CHECK(!det || lss__json_type(det) == LSS_JSON_OBJECT,
              "details is not an object");
        char code[64];
        code_of(&d, err, code, sizeof code);
        CHECK(code_fits(q->status, code), "code %s with status %d", code,
              q->status);
        if (q->status == 500) {
            static const char tail[] = ": namespace not found";
            lss_span m = lss__json_span(&d, msg);
            CHECK(m.n > sizeof tail &&
                      memcmp(m.p + m.n - sizeof tail, tail, sizeof tail - 1) ==
                          0,
                  "500 that is not a lost namespace: %.*s", (int)n, q->resp);
        }
    }
    free(tok);

    char *z = malloc(q->resp_n + 1);
    CHECK(z != NULL, "out of memory");
    memcpy(z, q->resp, q->resp_n);
    z[q->resp_n] = '\0';
    cJSON *j = cJSON_Parse(z);
    CHECK(j != NULL, "cJSON rejects a response");
    cJSON_Delete(j);
    free(z);
}

/* Responses with what the server chooses (times, UUIDs, token secrets)
 * replaced by placeholders. */
static int is_d(char c)
{
    return c >= '0' && c <= '9';
}

static int is_x(char c)
{
    return is_d(c) || (c >= 'a' && c <= 'f');
}

static size_t match(const char *s, size_t n, const char *shape)
{
    size_t i = 0;
    for (; shape[i]; i++) {
        if (i >= n)
            return 0;
        char c = shape[i];
        if (c == 'D' ? !is_d(s[i]) : c == 'X' ? !is_x(s[i]) : s[i] != c)
            return 0;
    }
    return i;
}

static char *normalize(const char *s, size_t n, size_t *out_n)
{
    char *o = malloc(n + 1);
    CHECK(o != NULL, "out of memory");
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k;
        if ((k = match(s + i, n - i, "DDDD-DD-DDTDD:DD:DD"))) {
            if (i + k < n && s[i + k] == '.')
                for (k++; i + k < n && is_d(s[i + k]); k++)
                    ;
            if (i + k < n && s[i + k] == 'Z')
                k++;
            o[w++] = 'T';
            i += k;
        } else if ((k = match(s + i, n - i,
                              "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"))) {
            o[w++] = 'U';
            i += k;
        } else if (n - i >= 64 && (k = 0, 1)) {
            while (k < 64 && is_x(s[i + k]))
                k++;
            if (k == 64) {
                o[w++] = 'H';
                i += 64;
            } else {
                o[w++] = s[i++];
            }
        } else {
            o[w++] = s[i++];
        }
    }
    *out_n = w;
    return o;
}

static void compare(const lss_rpc_req *a, const lss_rpc_req *b, size_t i)
{
    CHECK(a->status == b->status && a->method == b->method,
          "request %zu: batch gives %d (method %d), alone %d (method %d)\n"
          "batch: %.*s\nalone: %.*s",
          i, a->status, a->method, b->status, b->method, (int)a->resp_n,
          a->resp, (int)b->resp_n, b->resp);
    if (a->method == LSS_RPC_NS_LIST && a->status == 200)
        return;
    size_t an, bn;
    char *x = normalize(a->resp, a->resp_n, &an);
    char *y = normalize(b->resp, b->resp_n, &bn);
    CHECK(an == bn && memcmp(x, y, an) == 0,
          "request %zu: batch and alone differ\nbatch: %.*s\nalone: %.*s", i,
          (int)a->resp_n, a->resp, (int)b->resp_n, b->resp);
    free(y);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_IN)
        return 0;
    unsigned flags = data[0];
    char *in = fuzz_dup(data + 1, size - 1);
    size_t n = size - 1;

    lss_rpc_req reqs[MAX_REQS];
    char *bodies[MAX_REQS];
    size_t nreq = 0, pos = 0;
    while (nreq < MAX_REQS) {
        const char *sep = n > pos ? memchr(in + pos, SEP, n - pos) : NULL;
        size_t end = sep ? (size_t)(sep - in) : n;
        /* Each body in its own exact allocation: reads past it are caught. */
        bodies[nreq] = fuzz_dup(in + pos, end - pos);
        memset(&reqs[nreq], 0, sizeof reqs[nreq]);
        reqs[nreq].ns = NS;
        reqs[nreq].ns_n = strlen(NS);
        reqs[nreq].body = bodies[nreq];
        reqs[nreq].body_n = end - pos;
        if ((flags & FLAG_DEFER) && (flags >> (1 + nreq % 7) & 1))
            reqs[nreq].flags = LSS_RPC_MAY_DEFER;
        nreq++;
        if (!sep)
            break;
        pos = end + 1;
    }

    static store a, b;
    static unsigned runs;
    if (runs++ % REOPEN_EVERY == 0 && a.db) {
        store_close(&a);
        store_close(&b);
    }
    store_reset(&a);
    CHECK(lss_rpc_batch(a.c, reqs, nreq) == LSS_OK, "lss_rpc_batch failed");
    for (size_t i = 0; i < nreq; i++)
        check_response(&reqs[i]);
    store_check(&a, size);

    /* The order of the one-by-one calls: writes, calls that failed before
     * the method ran (their order does not matter) and unflagged calls as
     * they come, then the flagged others, which the batch deferred. */
    size_t order[MAX_REQS], no = 0;
    for (int late = 0; late <= 1; late++)
        for (size_t i = 0; i < nreq; i++) {
            int m = reqs[i].method;
            int deferred = (reqs[i].flags & LSS_RPC_MAY_DEFER) &&
                           m != LSS_RPC_STREAM_WRITE &&
                           m != LSS_RPC_STREAM_WRITE_BATCH &&
                           m != LSS_RPC_INVALID && m != LSS_RPC_UNKNOWN;
            if (deferred == late)
                order[no++] = i;
        }

    /* One request alone is the same call either way: skip store B. */
    if (nreq > 1) {
        /* The batch's responses live until the next call on a.c. */
        store_reset(&b);
        for (size_t k = 0; k < nreq; k++) {
            size_t i = order[k];
            lss_rpc_req one = reqs[i];
            one.flags = 0;
            one.status = one.method = 0;
            one.resp = NULL;
            one.resp_n = 0;
            CHECK(lss_rpc_call(b.c, &one) == LSS_OK, "lss_rpc_call failed");
            check_response(&one);
            compare(&reqs[i], &one, i);
        }
        store_check(&b, size);
    }
    for (size_t i = 0; i < nreq; i++)
        free(bodies[i]);
    free(in);
    return 0;
}
