/* fuzz_json.c — the strict JSON scanner (lib/json_scan.c, PROTOCOL.md 1.3)
 * and the compactor of lib/json_write.c.
 *
 * Properties, on any input of up to MAX_IN bytes:
 *   - the scan gives LSS_OK or LSS_EJSON with a tape of
 *     lss__json_tape_need(n) slots (never LSS_ENOSPACE), and the same
 *     answer, error offset and text the second time;
 *   - an error has an offset within the input and a NUL-terminated, non-empty,
 *     UTF-8 description;
 *   - an accepted text gives a well-formed tape: spans inside the input,
 *     subtrees nested by `next`, `count` children per container, string
 *     keys, unique keys (lss__json_get finds each member's own value);
 *   - the expand depth changes only what is on the tape, never the verdict
 *     or the root's span, and expand 0 is one token;
 *   - a smaller tape gives the same tape or LSS_ENOSPACE, never a write past
 *     its end;
 *   - cJSON, which is more lenient, accepts whatever we accept;
 *   - the compact form is valid, JSON-equal to the input, no longer, and a
 *     fixed point of compaction;
 *   - strings unescape to UTF-8 without U+0000 that re-escapes to itself;
 *     integer literals convert exactly (lss__json_int64 agrees with the
 *     truncating conversion, and writes back as the same number). */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "json.h"

#define MAX_IN (64 * 1024)

static lss_json_tok *tape(size_t cap)
{
    lss_json_tok *t = malloc((cap ? cap : 1) * sizeof *t);
    CHECK(t != NULL, "out of memory");
    return t;
}

/* Field by field: the struct has padding the scanner need not write. */
static int tapes_equal(const lss_json_tok *a, const lss_json_tok *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].off != b[i].off || a[i].len != b[i].len ||
            a[i].next != b[i].next || a[i].count != b[i].count ||
            a[i].type != b[i].type || a[i].flags != b[i].flags)
            return 0;
    return 1;
}

static void check_err(const lss_json_err *e, size_t n)
{
    size_t len = strnlen(e->msg, sizeof e->msg);
    CHECK(len < sizeof e->msg, "error text not NUL-terminated");
    CHECK(len > 0, "empty error text");
    CHECK(lss__utf8_valid(e->msg, len), "error text is not UTF-8: %s", e->msg);
    CHECK(e->off <= n, "error offset %zu past the input (%zu)", e->off, n);
}

/* Walk the subtree at index i; returns the index just past it. */
static uint32_t check_tree(const lss_json_doc *d, uint32_t i, unsigned depth)
{
    CHECK(i < d->ntok, "token %u past the tape (%zu)", i, d->ntok);
    const lss_json_tok *t = &d->tok[i];
    CHECK(t->type >= LSS_JSON_NULL && t->type <= LSS_JSON_OBJECT,
          "token %u has type %u", i, t->type);
    CHECK((size_t)t->off + t->len <= d->len, "token %u spans past the input", i);
    CHECK(t->len > 0, "token %u is empty", i);
    CHECK(t->next > i && t->next <= d->ntok, "token %u: bad next %u", i,
          t->next);
    CHECK(depth <= LSS_JSON_MAX_DEPTH, "depth %u", depth);
    const char *s = d->src + t->off;
    switch (t->type) {
    case LSS_JSON_STRING:
        CHECK(s[0] == '"' && s[t->len - 1] == '"' && t->len >= 2,
              "token %u: string without quotes", i);
        CHECK(t->next == i + 1, "token %u: string with children", i);
        return t->next;
    case LSS_JSON_ARRAY:
    case LSS_JSON_OBJECT:
        break;
    default:
        CHECK(t->next == i + 1, "token %u: scalar with children", i);
        return t->next;
    }
    CHECK(!(t->flags & LSS_JSON_RAW), "token %u: RAW with EXPAND_ALL", i);
    int obj = t->type == LSS_JSON_OBJECT;
    CHECK(s[0] == (obj ? '{' : '[') && s[t->len - 1] == (obj ? '}' : ']'),
          "token %u: container without brackets", i);
    uint32_t j = i + 1, kids = 0;
    while (j < t->next) {
        const lss_json_tok *c = &d->tok[j];
        CHECK(c->off >= t->off && c->off + c->len <= t->off + t->len,
              "token %u outside its parent %u", j, i);
        if (obj) {
            CHECK(c->type == LSS_JSON_STRING, "token %u: key not a string", j);
            uint32_t v = check_tree(d, j + 1, depth + 1);
            /* Keys are unique, so looking the key up finds this value
             * (checked on small objects: the lookup is linear). */
            char kb[256];
            size_t need = 0;
            if (t->count <= 64 &&
                lss__json_str_copy(d, c, kb, sizeof kb, &need) == LSS_OK) {
                const lss_json_tok *got = lss__json_get(d, t, kb, need);
                CHECK(got == &d->tok[j + 1], "member %u not found by its key",
                      j);
            }
            j = v;
        } else {
            j = check_tree(d, j, depth + 1);
        }
        kids++;
    }
    CHECK(j == t->next, "token %u: children overrun next", i);
    CHECK(kids == t->count, "token %u: count %u but %u children", i, t->count,
          kids);
    return t->next;
}

static void check_string(const lss_json_doc *d, const lss_json_tok *t)
{
    size_t need = 0;
    char small[8];
    int rc = lss__json_str_copy(d, t, small, sizeof small, &need);
    CHECK(rc == LSS_OK || rc == LSS_ENOSPACE, "str_copy: %d", rc);
    CHECK(need <= t->len, "unescaped string longer than its literal");
    char *u = malloc(need + 1);
    CHECK(u != NULL, "out of memory");
    CHECK(lss__json_str_copy(d, t, u, need + 1, &need) == LSS_OK, "str_copy");
    CHECK(u[need] == '\0', "str_copy: no NUL");
    CHECK(memchr(u, 0, need) == NULL, "U+0000 in an accepted string");
    CHECK(lss__utf8_valid(u, need), "unescaped string is not UTF-8");
    CHECK(lss__json_str_equal(d, t, u, need), "str_equal disagrees");
    CHECK(((t->flags & LSS_JSON_ESCAPED) != 0) ==
              (memchr(d->src + t->off, '\\', t->len) != NULL),
          "ESCAPED flag wrong");
    /* Escape it again; the new literal unescapes to the same bytes. */
    size_t wn = 0;
    lss_json_writer w;
    lss__jw_init(&w, NULL, 0);
    lss__jw_str(&w, u, need);
    lss__jw_finish(&w, &wn);
    char *lit = malloc(wn);
    CHECK(lit != NULL, "out of memory");
    lss__jw_init(&w, lit, wn);
    lss__jw_str(&w, u, need);
    CHECK(lss__jw_finish(&w, &wn) == LSS_OK, "jw_str did not fit");
    lss_json_tok t2[4];
    lss_json_doc d2;
    CHECK(lss__json_scan(&d2, lit, wn, LSS_JSON_EXPAND_ALL, t2, 4, NULL) ==
              LSS_OK,
          "re-escaped string does not scan: %.*s", (int)wn, lit);
    CHECK(lss__json_str_equal(&d2, &t2[0], u, need),
          "re-escaped string differs");
    free(lit);
    free(u);
}

static void check_number(const lss_json_doc *d, const lss_json_tok *t)
{
    int64_t a, b;
    int rc = lss__json_to_int64(d, t, &b);
    CHECK(rc == LSS_OK, "to_int64 on a number: %d", rc);
    if (!(t->flags & LSS_JSON_INTEGER)) {
        CHECK(lss__json_int64(d, t, &a) == LSS_EINVAL,
              "int64 accepts a non-integer literal");
        return;
    }
    rc = lss__json_int64(d, t, &a);
    CHECK(rc == LSS_OK || rc == LSS_ERANGE, "int64: %d", rc);
    if (rc == LSS_ERANGE) {
        CHECK(b == INT64_MAX || b == INT64_MIN, "out-of-range not clamped");
        return;
    }
    CHECK(a == b, "exact and truncating conversions differ");
    char out[24];
    lss_json_writer w;
    lss__jw_init(&w, out, sizeof out);
    lss__jw_int(&w, a);
    size_t wn;
    CHECK(lss__jw_finish(&w, &wn) == LSS_OK, "jw_int");
    int64_t c;
    CHECK(lss__json_num_int64(out, wn, &c) == LSS_OK && c == a,
          "integer does not write back");
}

static void check_compact(const char *p, size_t n)
{
    lss_json_writer w;
    size_t need = 0;
    lss__jw_init(&w, NULL, 0);
    lss__json_compact(&w, p, n);
    lss__jw_finish(&w, &need);
    CHECK(need <= n, "compact form longer (%zu) than the input (%zu)", need, n);
    char *c = malloc(need ? need : 1);
    CHECK(c != NULL, "out of memory");
    lss__jw_init(&w, c, need);
    lss__json_compact(&w, p, n);
    CHECK(lss__jw_finish(&w, &need) == LSS_OK, "compact did not fit");

    size_t cap = lss__json_equal_need(n, need);
    lss_json_tok *scratch = tape(cap);
    int eq = lss__json_equal(p, n, c, need, scratch, cap);
    CHECK(eq == 1, "compact form not equal to the input (%d): %.*s", eq,
          (int)need, c);
    cap = lss__json_equal_need(n, n);
    free(scratch);
    scratch = tape(cap);
    CHECK(lss__json_equal(p, n, p, n, scratch, cap) == 1,
          "a text is not equal to itself");
    free(scratch);

    char *c2 = malloc(need ? need : 1);
    CHECK(c2 != NULL, "out of memory");
    lss__jw_init(&w, c2, need);
    lss__json_compact(&w, c, need);
    size_t need2;
    CHECK(lss__jw_finish(&w, &need2) == LSS_OK && need2 == need &&
              memcmp(c, c2, need) == 0,
          "compaction is not idempotent");
    free(c2);
    free(c);
}

static void check_cjson(const char *p, size_t n)
{
    char *z = malloc(n + 1);
    CHECK(z != NULL, "out of memory");
    memcpy(z, p, n);
    z[n] = '\0';
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(z, &end, 1);
    CHECK(j != NULL, "cJSON rejects a text we accept: %.*s", (int)n, p);
    cJSON_Delete(j);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    const char *p = fuzz_dup(data, size);
    size_t cap = lss__json_tape_need(size);
    lss_json_tok *tok = tape(cap);
    lss_json_doc d;
    lss_json_err e;
    int rc = lss__json_scan(&d, p, size, LSS_JSON_EXPAND_ALL, tok, cap, &e);
    CHECK(rc == LSS_OK || rc == LSS_EJSON, "scan returned %d", rc);

    /* The same again, with every other expand depth. */
    lss_json_tok *tok2 = tape(cap);
    static const unsigned depths[] = {LSS_JSON_EXPAND_ALL, 0, 1, 2, 3};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        lss_json_doc d2;
        lss_json_err e2;
        int rc2 = lss__json_scan(&d2, p, size, depths[k], tok2, cap, &e2);
        CHECK(rc2 == rc, "scan at expand %u: %d, then %d", depths[k], rc, rc2);
        if (rc != LSS_OK) {
            CHECK(e2.off == e.off && strcmp(e2.msg, e.msg) == 0,
                  "second scan: another error");
            continue;
        }
        CHECK(d2.tok[0].off == d.tok[0].off && d2.tok[0].len == d.tok[0].len &&
                  d2.tok[0].type == d.tok[0].type,
              "root differs at expand %u", depths[k]);
        if (depths[k] == 0)
            CHECK(d2.ntok == 1, "expand 0 gives %zu tokens", d2.ntok);
        if (k == 0)
            CHECK(d2.ntok == d.ntok && tapes_equal(d2.tok, d.tok, d.ntok),
                  "second scan: another tape");
    }
    free(tok2);

    if (rc != LSS_OK) {
        check_err(&e, size);
    } else {
        CHECK(d.ntok >= 1 && d.ntok <= cap, "ntok %zu", d.ntok);
        CHECK(check_tree(&d, 0, 1) == d.ntok, "root does not span the tape");
        for (size_t i = 0; i < d.ntok; i++) {
            if (d.tok[i].type == LSS_JSON_STRING)
                check_string(&d, &d.tok[i]);
            else if (d.tok[i].type == LSS_JSON_NUMBER)
                check_number(&d, &d.tok[i]);
        }
        /* A tape of exactly ntok slots, and one less. */
        for (size_t less = 0; less <= 1; less++) {
            size_t c2 = d.ntok - less;
            lss_json_tok *t3 = tape(c2);
            lss_json_doc d3;
            int rc3 = lss__json_scan(&d3, p, size, LSS_JSON_EXPAND_ALL, t3,
                                     c2, NULL);
            if (less)
                CHECK(rc3 == LSS_ENOSPACE, "a short tape gives %d", rc3);
            else
                CHECK(rc3 == LSS_ENOSPACE ||
                          (rc3 == LSS_OK && d3.ntok == d.ntok &&
                           tapes_equal(t3, d.tok, d.ntok)),
                      "an exact tape gives %d", rc3);
            free(t3);
        }
        check_cjson(p, size);
        check_compact(p, size);
    }
    free(tok);
    free((void *)p);
    return 0;
}
