/* conformance.h — fixtures and helpers of the conformance suite.  Only the
 * public header is used, so the suite runs unchanged on every backend.
 *
 * LSS_TEST_URL selects the store each test runs against:
 *   ":memory:" (default)  a private in-memory store per test
 *   "dir"                 a fresh temporary data directory per test (mkdtemp
 *                         under /tmp, removed afterwards)
 *   anything else         a store URL (e.g. postgres://...) shared by all
 *                         tests; every test works in a namespace of its own
 * Tests about opening stores or the file layout open stores of their own. */
#ifndef LSS_CONFORMANCE_H
#define LSS_CONFORMANCE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "streamstore.h"

/* ------------------------------------------------------------------ kinds */

enum store_kind { KIND_MEMORY, KIND_DIR, KIND_URL };

static enum store_kind store_kind(void)
{
    const char *u = getenv("LSS_TEST_URL");
    if (!u || !*u || !strcmp(u, ":memory:"))
        return KIND_MEMORY;
    if (!strcmp(u, "dir"))
        return KIND_DIR;
    return KIND_URL;
}

/* SQLite stores keep payloads byte for byte; PostgreSQL stores jsonb. */
static int keeps_payload_bytes(void)
{
    return store_kind() != KIND_URL;
}

/* ------------------------------------------------------------ assertions */

#define ASSERT_RC(conn, expr, want)                                          \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        int want_ = (want);                                                  \
        if (rc_ != want_) {                                                  \
            lss_conn *c_ = (conn);                                           \
            print_error("%s:%d: %s\n  returned %s (%d), want %s (%d)%s%s\n", \
                        __FILE__, __LINE__, #expr, lss_errname(rc_), rc_,    \
                        lss_errname(want_), want_, c_ ? "\n  errmsg: " : "", \
                        c_ ? lss_errmsg(c_) : "");                           \
            fail();                                                          \
        }                                                                    \
    } while (0)

#define ASSERT_SPAN(ptr, len, cstr)                                          \
    do {                                                                     \
        const char *as_p_ = (const char *)(ptr);                             \
        size_t as_n_ = (len);                                                \
        const char *as_s_ = (cstr);                                          \
        if (as_n_ != strlen(as_s_) || (as_n_ && memcmp(as_p_, as_s_, as_n_))) { \
            print_error("%s:%d: '%.*s' (%zu bytes) != '%s'\n", __FILE__,     \
                        __LINE__, (int)as_n_, as_p_ ? as_p_ : "", as_n_,     \
                        as_s_);                                              \
            fail();                                                          \
        }                                                                    \
    } while (0)

#define ASSERT_I64(got, want)                                                \
    do {                                                                     \
        int64_t g_ = (got), w_ = (want);                                     \
        if (g_ != w_) {                                                      \
            print_error("%s:%d: %s == %" PRId64 ", want %" PRId64 "\n",      \
                        __FILE__, __LINE__, #got, g_, w_);                   \
            fail();                                                          \
        }                                                                    \
    } while (0)

/* ------------------------------------------------------------------ time */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

#define ASSERT_NEAR_NOW(us)                                                  \
    do {                                                                     \
        int64_t d_ = (us) - now_us();                                        \
        if (d_ < -120 * 1000000LL || d_ > 5 * 1000000LL) {                   \
            print_error("%s:%d: %s = %" PRId64 " is not near now (%" PRId64  \
                        " us off)\n", __FILE__, __LINE__, #us, (int64_t)(us), d_); \
            fail();                                                          \
        }                                                                    \
    } while (0)

/* ----------------------------------------------------------- file system */

/* Every temporary directory made, so that main() can remove those a failed
 * test left behind. */
static char tmp_made[256][64];
static size_t tmp_made_n;

static void make_tmp(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/lss-conf-XXXXXX");
    assert_non_null(mkdtemp(buf));
    if (tmp_made_n < 256 && strlen(buf) < sizeof tmp_made[0])
        memcpy(tmp_made[tmp_made_n++], buf, strlen(buf) + 1);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p)
{
    if (p && *p)
        nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void tmp_sweep(void)
{
    for (size_t i = 0; i < tmp_made_n; i++)
        rm_rf(tmp_made[i]);
    tmp_made_n = 0;
}

static int path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* ----------------------------------------------------------------- store */

typedef struct store {
    lss_db *db;
    char tmp[PATH_MAX / 2]; /* temporary root to remove; "" when none */
    char url[PATH_MAX];
} store;

/* Opens the store LSS_TEST_URL asks for. */
static void store_open(store *s, const lss_options *o)
{
    memset(s, 0, sizeof *s);
    switch (store_kind()) {
    case KIND_MEMORY:
        snprintf(s->url, sizeof s->url, ":memory:");
        break;
    case KIND_DIR:
        make_tmp(s->tmp, sizeof s->tmp);
        snprintf(s->url, sizeof s->url, "%s/data", s->tmp);
        break;
    case KIND_URL:
        snprintf(s->url, sizeof s->url, "%s", getenv("LSS_TEST_URL"));
        break;
    }
    int rc = lss_open(s->url, o, &s->db);
    if (rc != LSS_OK) {
        print_error("lss_open(%s): %s: %s\n", s->url, lss_errname(rc),
                    s->db ? lss_db_errmsg(s->db) : "(no handle)");
        fail();
    }
}

static void store_close(store *s)
{
    lss_close(s->db);
    s->db = NULL;
    rm_rf(s->tmp);
    s->tmp[0] = 0;
}

/* --------------------------------------------------------------- fixture */

typedef struct fx {
    store st;
    lss_conn *c;
    char ns[96];
    size_t ns_n;
    char token[LSS_TOKEN_MAX];
    size_t token_n;
} fx;

static unsigned long conf_counter;

/* A namespace id unique in this process and across processes. */
static void unique_id(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "conf-%s-%ld-%lu-%lld", tag, (long)getpid(), ++conf_counter,
             (long long)(now_us() % 1000000000));
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    store_open(&f->st, NULL);
    ASSERT_RC(NULL, lss_conn_open(f->st.db, &f->c), LSS_OK);
    unique_id(f->ns, sizeof f->ns, "t");
    f->ns_n = strlen(f->ns);
    ASSERT_RC(f->c,
              lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, NULL, 0, f->token,
                            sizeof f->token, &f->token_n, NULL),
              LSS_OK);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (!f)
        return 0;
    if (store_kind() == KIND_URL)
        lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL);
    lss_conn_close(f->c);
    store_close(&f->st);
    free(f);
    *state = NULL;
    return 0;
}

/* Deletes an extra namespace a test made (matters on shared stores). */
static void drop_ns(lss_conn *c, const char *ns)
{
    lss_ns_delete(c, ns, strlen(ns), NULL, NULL);
}

/* -------------------------------------------------------------- appends */

static lss_msg_in mk(const char *id, const char *type, const char *data,
                     const char *meta)
{
    lss_msg_in m;
    m.id = id;
    m.id_n = id ? strlen(id) : 0;
    m.type = type;
    m.type_n = type ? strlen(type) : 0;
    m.data = data;
    m.data_n = data ? strlen(data) : 0;
    m.metadata = meta;
    m.metadata_n = meta ? strlen(meta) : 0;
    return m;
}

static lss_append mkreq_ns(const char *ns, size_t ns_n, const char *stream,
                           const lss_msg_in *m, size_t n)
{
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = ns;
    a.ns_n = ns_n;
    a.stream = stream;
    a.stream_n = stream ? strlen(stream) : 0;
    a.msgs = m;
    a.count = n;
    a.rc = 12345; /* must be overwritten */
    a.position = -99;
    a.global_position = -99;
    a.actual_version = -99;
    return a;
}

static lss_append mkreq(const fx *f, const char *stream, const lss_msg_in *m,
                        size_t n)
{
    return mkreq_ns(f->ns, f->ns_n, stream, m, n);
}

/* One message; returns the request with its results (rc not asserted). */
static lss_append try_put(fx *f, const char *stream, const char *id,
                          const char *type, const char *data, const char *meta)
{
    lss_msg_in m = mk(id, type, data, meta);
    lss_append a = mkreq(f, stream, &m, 1);
    int rc = lss_append_one(f->c, &a);
    assert_int_equal(rc, a.rc);
    a.msgs = NULL; /* m goes out of scope */
    return a;
}

/* As try_put, with an expected version. */
static lss_append try_put_ev(fx *f, const char *stream, const char *id,
                             const char *data, int64_t ev)
{
    lss_msg_in m = mk(id, "T", data, NULL);
    lss_append a = mkreq(f, stream, &m, 1);
    a.flags = LSS_APPEND_EXPECT;
    a.expected_version = ev;
    int rc = lss_append_one(f->c, &a);
    assert_int_equal(rc, a.rc);
    a.msgs = NULL;
    return a;
}

static lss_append put_at(fx *f, const char *stream, const char *type,
                         const char *data, const char *meta, int line)
{
    lss_append a = try_put(f, stream, NULL, type, data, meta);
    if (a.rc != LSS_OK) {
        print_error("line %d: append to %s: %s: %s\n", line, stream,
                    lss_errname(a.rc), lss_errmsg(f->c));
        fail();
    }
    return a;
}

/* Appends one message and asserts success. */
#define PUT(f, stream, type, data, meta) \
    put_at((f), (stream), (type), (data), (meta), __LINE__)

static void put_n(fx *f, const char *stream, int n)
{
    for (int i = 0; i < n; i++) {
        char data[48];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        lss_append a = try_put(f, stream, NULL, "T", data, NULL);
        ASSERT_RC(f->c, a.rc, LSS_OK);
    }
}

/* ---------------------------------------------------------------- reads */

typedef struct rmsg {
    char *id, *stream, *type, *data, *meta;
    size_t id_n, stream_n, type_n, data_n, meta_n;
    int64_t pos, gpos, time_us;
} rmsg;

typedef struct rlist {
    rmsg *v;
    size_t n;
} rlist;

static char *dupspan(lss_span s, size_t *n)
{
    *n = 0;
    if (!s.p)
        return NULL;
    char *p = malloc(s.n + 1);
    assert_non_null(p);
    memcpy(p, s.p, s.n);
    p[s.n] = 0;
    *n = s.n;
    return p;
}

static void rfree(rlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].stream);
        free(l->v[i].type);
        free(l->v[i].data);
        free(l->v[i].meta);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static rlist drain(lss_cursor *cur)
{
    rlist l = {NULL, 0};
    size_t cap = 0;
    const lss_message *m = NULL;
    int rc;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        if (l.n == cap) {
            cap = cap ? cap * 2 : 16;
            l.v = realloc(l.v, cap * sizeof *l.v);
            assert_non_null(l.v);
        }
        rmsg *r = &l.v[l.n++];
        r->id = dupspan(m->id, &r->id_n);
        r->stream = dupspan(m->stream, &r->stream_n);
        r->type = dupspan(m->type, &r->type_n);
        r->data = dupspan(m->data, &r->data_n);
        r->meta = dupspan(m->metadata, &r->meta_n);
        r->pos = m->position;
        r->gpos = m->global_position;
        r->time_us = m->time_us;
    }
    lss_cursor_close(cur);
    if (rc != LSS_DONE) {
        print_error("lss_cursor_next: %s (%d)\n", lss_errname(rc), rc);
        rfree(&l);
        fail();
    }
    return l;
}

static rlist rd_stream(fx *f, const char *stream, const lss_read_opts *o)
{
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c,
              lss_read_stream(f->c, f->ns, f->ns_n, stream, strlen(stream), o, &cur),
              LSS_OK);
    assert_non_null(cur);
    return drain(cur);
}

static rlist rd_cat(fx *f, const char *cat, const lss_read_opts *o)
{
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c,
              lss_read_category(f->c, f->ns, f->ns_n, cat, strlen(cat), o, &cur),
              LSS_OK);
    assert_non_null(cur);
    return drain(cur);
}

static rlist rd_all(fx *f)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = -1;
    return rd_cat(f, "", &o);
}

static int64_t version_of(fx *f, const char *stream)
{
    int64_t v = 4242;
    ASSERT_RC(f->c,
              lss_stream_version(f->c, f->ns, f->ns_n, stream, strlen(stream), &v),
              LSS_OK);
    return v;
}

static int64_t message_count(fx *f)
{
    const lss_ns_row *row = NULL;
    ASSERT_RC(f->c, lss_ns_info(f->c, f->ns, f->ns_n, &row), LSS_OK);
    return row->message_count;
}

/* Stored payload equals what was sent: the same bytes on SQLite, the same
 * JSON value elsewhere. */
static void assert_payload(const char *got, size_t got_n, const char *want)
{
    if (!want) {
        if (got) {
            print_error("payload '%.*s', want none\n", (int)got_n, got);
            fail();
        }
        return;
    }
    if (!got) {
        print_error("no payload, want '%s'\n", want);
        fail();
    }
    if (keeps_payload_bytes()) {
        if (got_n != strlen(want) || memcmp(got, want, got_n)) {
            print_error("payload bytes differ:\n got  (%zu) '%.*s'\n want (%zu) '%s'\n",
                        got_n, (int)got_n, got, strlen(want), want);
            fail();
        }
        return;
    }
    cJSON *a = cJSON_ParseWithLength(got, got_n);
    cJSON *b = cJSON_Parse(want);
    int eq = a && b && cJSON_Compare(a, b, 1);
    cJSON_Delete(a);
    cJSON_Delete(b);
    if (!eq) {
        print_error("payload '%.*s' is not JSON-equal to '%s'\n", (int)got_n, got, want);
        fail();
    }
}

/* ---------------------------------------------------------------- tokens */

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
    }
    return o;
}

/* "ns_" + base64url(ns) + "_" + 64 x hexch; out must hold LSS_TOKEN_MAX. */
static size_t make_token(const char *ns, size_t ns_n, char hexch, char *out)
{
    size_t o = 0;
    memcpy(out, "ns_", 3);
    o = 3;
    o += b64url((const unsigned char *)ns, ns_n, out + o);
    out[o++] = '_';
    memset(out + o, hexch, 64);
    return o + 64;
}

/* ----------------------------------------------------------------- uuids */

static int is_hex_lower(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static int is_canonical_uuid(const char *p, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (p[i] != '-')
                return 0;
        } else if (!is_hex_lower(p[i])) {
            return 0;
        }
    }
    return 1;
}

/* A canonical UUIDv7 whose timestamp is near now. */
static void assert_uuidv7(const char *p, size_t n)
{
    if (!is_canonical_uuid(p, n)) {
        print_error("'%.*s' is not a canonical UUID\n", (int)n, p);
        fail();
    }
    if (p[14] != '7' || !strchr("89ab", p[19])) {
        print_error("'%.*s' is not version 7, variant 10\n", (int)n, p);
        fail();
    }
    char hex[13];
    memcpy(hex, p, 8);
    memcpy(hex + 8, p + 9, 4);
    hex[12] = 0;
    int64_t ms = (int64_t)strtoll(hex, NULL, 16);
    ASSERT_NEAR_NOW(ms * 1000);
}

/* ------------------------------------------------------------ subscribe */

typedef struct poke {
    char stream[256];
    size_t stream_n;
    int64_t pos, gpos;
} poke;

/* Next poke within timeout_ms: LSS_ROW, LSS_AGAIN on timeout, or an error. */
static int sub_wait(lss_sub *s, poke *p, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        lss_poke k;
        memset(&k, 0, sizeof k);
        int rc = lss_sub_next(s, &k);
        if (rc == LSS_ROW) {
            assert_true(k.stream.n < sizeof p->stream);
            memcpy(p->stream, k.stream.p, k.stream.n);
            p->stream[k.stream.n] = 0;
            p->stream_n = k.stream.n;
            p->pos = k.position;
            p->gpos = k.global_position;
            return rc;
        }
        if (rc != LSS_AGAIN)
            return rc;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return LSS_AGAIN;
        struct pollfd pfd = {lss_sub_fd(s), POLLIN, 0};
        poll(&pfd, 1, left > 20 ? 20 : (int)left);
    }
}

#define EXPECT_POKE(s, stream_, pos_, gpos_)                                 \
    do {                                                                     \
        poke ep_;                                                            \
        int erc_ = sub_wait((s), &ep_, 5000);                                \
        if (erc_ != LSS_ROW) {                                               \
            print_error("%s:%d: want poke %s@%" PRId64 ", got %s\n",         \
                        __FILE__, __LINE__, (stream_), (int64_t)(pos_),      \
                        lss_errname(erc_));                                  \
            fail();                                                          \
        }                                                                    \
        if (strcmp(ep_.stream, (stream_)) || ep_.pos != (pos_) ||            \
            ((gpos_) >= 0 && ep_.gpos != (gpos_))) {                         \
            print_error("%s:%d: got poke %s@%" PRId64 " g%" PRId64           \
                        ", want %s@%" PRId64 " g%" PRId64 "\n",              \
                        __FILE__, __LINE__, ep_.stream, ep_.pos, ep_.gpos,   \
                        (stream_), (int64_t)(pos_), (int64_t)(gpos_));       \
            fail();                                                          \
        }                                                                    \
    } while (0)

#define EXPECT_SILENCE(s, ms)                                                \
    do {                                                                     \
        poke es_;                                                            \
        int src_ = sub_wait((s), &es_, (ms));                                \
        if (src_ != LSS_AGAIN) {                                             \
            print_error("%s:%d: want no poke, got %s (%s@%" PRId64 " g%"     \
                        PRId64 ")\n", __FILE__, __LINE__, lss_errname(src_), \
                        src_ == LSS_ROW ? es_.stream : "", es_.pos, es_.gpos); \
            fail();                                                          \
        }                                                                    \
    } while (0)

static lss_sub *sub_open(fx *f, int kind, const char *name, int64_t position)
{
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = kind;
    o.name = name;
    o.name_n = name ? strlen(name) : 0;
    o.position = position;
    lss_sub *s = NULL;
    ASSERT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, &o, &s), LSS_OK);
    assert_non_null(s);
    return s;
}

#endif
