/* test_conformance.c — the store contract of include/streamstore.h and
 * PROTOCOL.md sections 6, 7 and 10, through the public C API only.
 * The store comes from LSS_TEST_URL; see conformance.h. */
#include "conformance.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

/* ======================================================== open and close */

static void open_should_accept_the_memory_url(void **state)
{
    (void)state;
    lss_db *db = NULL;
    lss_conn *c = NULL;
    ASSERT_RC(NULL, lss_open(":memory:", NULL, &db), LSS_OK);
    assert_non_null(db);
    ASSERT_RC(NULL, lss_conn_open(db, &c), LSS_OK);
    assert_non_null(c);
    char tok[LSS_TOKEN_MAX];
    size_t tok_n = 0;
    ASSERT_RC(c, lss_ns_create(c, "m", 1, NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL),
              LSS_OK);
    lss_msg_in m = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq_ns("m", 1, "s-1", &m, 1);
    ASSERT_RC(c, lss_append_one(c, &a), LSS_OK);
    ASSERT_I64(a.position, 0);
    ASSERT_I64(a.global_position, 1);
    lss_conn_close(c);
    lss_close(db);
}

static void memory_stores_should_be_private(void **state)
{
    (void)state;
    lss_db *d1 = NULL, *d2 = NULL;
    lss_conn *c1 = NULL, *c2 = NULL;
    ASSERT_RC(NULL, lss_open(":memory:", NULL, &d1), LSS_OK);
    ASSERT_RC(NULL, lss_open(":memory:", NULL, &d2), LSS_OK);
    ASSERT_RC(NULL, lss_conn_open(d1, &c1), LSS_OK);
    ASSERT_RC(NULL, lss_conn_open(d2, &c2), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    ASSERT_RC(c1, lss_ns_create(c1, "p", 1, NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL),
              LSS_OK);
    const lss_ns_row *row;
    ASSERT_RC(c2, lss_ns_info(c2, "p", 1, &row), LSS_ENOTFOUND);
    ASSERT_RC(c2, lss_ns_create(c2, "p", 1, NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL),
              LSS_OK);
    lss_conn_close(c1);
    lss_conn_close(c2);
    lss_close(d1);
    lss_close(d2);
}

static void open_should_create_a_missing_data_directory_and_keep_data(void **state)
{
    (void)state;
    char tmp[PATH_MAX / 2], url[PATH_MAX];
    make_tmp(tmp, sizeof tmp);
    snprintf(url, sizeof url, "%s/data", tmp);
    lss_db *db = NULL;
    lss_conn *c = NULL;
    ASSERT_RC(NULL, lss_open(url, NULL, &db), LSS_OK);
    struct stat st;
    assert_int_equal(stat(url, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    ASSERT_RC(NULL, lss_conn_open(db, &c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tok_n = 0;
    ASSERT_RC(c, lss_ns_create(c, "keep", 4, "kept", 4, NULL, 0, tok, sizeof tok, &tok_n, NULL),
              LSS_OK);
    lss_msg_in m[2] = {mk(NULL, "A", "{\"n\":1}", NULL), mk(NULL, "B", "{\"n\":2}", "{\"m\":1}")};
    lss_append a = mkreq_ns("keep", 4, "s-1", m, 2);
    ASSERT_RC(c, lss_append_one(c, &a), LSS_OK);
    lss_conn_close(c);
    lss_close(db);

    db = NULL;
    ASSERT_RC(NULL, lss_open(url, NULL, &db), LSS_OK);
    ASSERT_RC(NULL, lss_conn_open(db, &c), LSS_OK);
    int64_t v = -9;
    ASSERT_RC(c, lss_stream_version(c, "keep", 4, "s-1", 3, &v), LSS_OK);
    ASSERT_I64(v, 1);
    const lss_ns_row *row = NULL;
    ASSERT_RC(c, lss_ns_info(c, "keep", 4, &row), LSS_OK);
    ASSERT_I64(row->message_count, 2);
    ASSERT_SPAN(row->description.p, row->description.n, "kept");
    const char *ns;
    size_t ns_n;
    ASSERT_RC(c, lss_authorize(c, tok, tok_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, "keep");
    lss_cursor *cur = NULL;
    ASSERT_RC(c, lss_read_stream(c, "keep", 4, "s-1", 3, NULL, &cur), LSS_OK);
    rlist l = drain(cur);
    assert_int_equal(l.n, 2);
    ASSERT_SPAN(l.v[1].data, l.v[1].data_n, "{\"n\":2}");
    ASSERT_SPAN(l.v[1].meta, l.v[1].meta_n, "{\"m\":1}");
    assert_null(l.v[0].meta);
    rfree(&l);
    /* the global position counter continues */
    lss_msg_in m3 = mk(NULL, "C", "{}", NULL);
    a = mkreq_ns("keep", 4, "s-2", &m3, 1);
    ASSERT_RC(c, lss_append_one(c, &a), LSS_OK);
    assert_true(a.global_position > 2);
    lss_conn_close(c);
    lss_close(db);
    rm_rf(tmp);
}

static void open_should_fail_cleanly_when_the_path_is_a_regular_file(void **state)
{
    (void)state;
    char tmp[PATH_MAX / 2], path[PATH_MAX], sub[PATH_MAX + 8];
    make_tmp(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/file", tmp);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a directory\n", fp);
    fclose(fp);
    snprintf(sub, sizeof sub, "%s/sub", path);
    const char *urls[] = {path, sub};
    for (size_t i = 0; i < 2; i++) {
        lss_db *db = NULL;
        int rc = lss_open(urls[i], NULL, &db);
        if (rc >= 0) {
            print_error("lss_open(%s) = %s, want an error\n", urls[i], lss_errname(rc));
            fail();
        }
        assert_true(rc == LSS_EINVAL || rc == LSS_EIO || rc == LSS_EBACKEND ||
                    rc == LSS_ENOTSUP || rc == LSS_ENOMEM);
        if (rc != LSS_ENOMEM) {
            assert_non_null(db);
            const char *msg = lss_db_errmsg(db);
            assert_non_null(msg);
            assert_true(strlen(msg) > 0);
        }
        lss_close(db);
    }
    char buf[64] = {0};
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "not a directory\n");
    rm_rf(tmp);
}

static void open_should_reject_null_arguments(void **state)
{
    (void)state;
    lss_db *db = NULL;
    int rc = lss_open(NULL, NULL, &db);
    assert_int_equal(rc, LSS_EINVAL);
    lss_close(db);
    assert_int_equal(lss_open(":memory:", NULL, NULL), LSS_EINVAL);
    lss_conn *c = NULL;
    assert_int_equal(lss_conn_open(NULL, &c), LSS_EINVAL);
    db = NULL;
    ASSERT_RC(NULL, lss_open(":memory:", NULL, &db), LSS_OK);
    assert_int_equal(lss_conn_open(db, NULL), LSS_EINVAL);
    lss_close(db);
    /* destructors accept NULL */
    lss_close(NULL);
    lss_conn_close(NULL);
    lss_cursor_close(NULL);
    lss_sub_close(NULL);
}

static void options_init_should_fill_the_documented_defaults(void **state)
{
    (void)state;
    lss_options o;
    memset(&o, 0xab, sizeof o);
    lss_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_null(o.allocator);
    assert_int_equal(o.sync, LSS_SYNC_FULL);
    assert_int_equal(o.busy_timeout_ms, 5000);
    assert_null(o.metadata_file);
    assert_int_equal(o.create_default, 0);
    assert_int_equal(o.group_commit_max, 512);

    lss_read_opts r;
    memset(&r, 0xab, sizeof r);
    lss_read_opts_init(&r);
    assert_int_equal(r.struct_size, sizeof r);
    assert_int_equal(r.flags, 0);
    ASSERT_I64(r.position, 0);
    ASSERT_I64(r.batch_size, 1000);
    assert_null(r.types);
    assert_int_equal(r.types_n, 0);
    assert_int_equal(r.correlation_n, 0);

    lss_sub_opts s;
    memset(&s, 0xab, sizeof s);
    lss_sub_opts_init(&s);
    assert_int_equal(s.struct_size, sizeof s);
    ASSERT_I64(s.position, 0);
    ASSERT_I64(s.group_size, 0);
    ASSERT_I64(s.replay_max, 1000);
    assert_int_equal(s.queue_bytes, 1u << 20);
}

static void open_should_create_the_default_namespace_only_when_asked(void **state)
{
    (void)state;
    store s;
    lss_conn *c = NULL;
    const lss_ns_row *row;
    if (store_kind() != KIND_URL) {
        store_open(&s, NULL);
        ASSERT_RC(NULL, lss_conn_open(s.db, &c), LSS_OK);
        int rc = lss_ns_info(c, "default", 7, &row);
        lss_conn_close(c);
        store_close(&s);
        ASSERT_RC(NULL, rc, LSS_ENOTFOUND);
    }
    lss_options o;
    lss_options_init(&o);
    o.create_default = 1;
    store_open(&s, &o);
    ASSERT_RC(NULL, lss_conn_open(s.db, &c), LSS_OK);
    int rc = lss_ns_info(c, "default", 7, &row);
    int id_ok = rc == LSS_OK && row->id.n == 7 && !memcmp(row->id.p, "default", 7);
    lss_conn_close(c);
    int rc2 = LSS_OK;
    if (rc == LSS_OK && store_kind() == KIND_DIR) {
        /* reopening with the option finds it and does not fail */
        lss_close(s.db);
        s.db = NULL;
        rc2 = lss_open(s.url, &o, &s.db);
        if (rc2 == LSS_OK && lss_conn_open(s.db, &c) == LSS_OK) {
            rc2 = lss_ns_info(c, "default", 7, &row);
            lss_conn_close(c);
        }
    }
    store_close(&s);
    ASSERT_RC(NULL, rc, LSS_OK); /* lss_options.create_default = 1 */
    assert_true(id_ok);
    ASSERT_RC(NULL, rc2, LSS_OK);
}

static void open_should_name_the_registry_after_the_metadata_file_option(void **state)
{
    (void)state;
    char tmp[PATH_MAX / 2], url[PATH_MAX], p[PATH_MAX + 32];
    make_tmp(tmp, sizeof tmp);
    snprintf(url, sizeof url, "%s/data", tmp);
    lss_options o;
    lss_options_init(&o);
    o.metadata_file = "registry.sqlite";
    lss_db *db = NULL;
    lss_conn *c = NULL;
    ASSERT_RC(NULL, lss_open(url, &o, &db), LSS_OK);
    ASSERT_RC(NULL, lss_conn_open(db, &c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    ASSERT_RC(c, lss_ns_create(c, "r", 1, NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL),
              LSS_OK);
    lss_conn_close(c);
    lss_close(db);
    snprintf(p, sizeof p, "%s/registry.sqlite", url);
    assert_true(path_exists(p));
    snprintf(p, sizeof p, "%s/metadata.db", url);
    assert_false(path_exists(p));
    db = NULL;
    ASSERT_RC(NULL, lss_open(url, &o, &db), LSS_OK);
    ASSERT_RC(NULL, lss_conn_open(db, &c), LSS_OK);
    const lss_ns_row *row;
    ASSERT_RC(c, lss_ns_info(c, "r", 1, &row), LSS_OK);
    lss_conn_close(c);
    lss_close(db);
    rm_rf(tmp);
}

/* An allocator that counts live blocks and checks realloc's old_size. */
typedef struct track_alloc {
    lss_allocator a;
    pthread_mutex_t mu;
    long calls, live, bad_old_size;
} track_alloc;

static void *ta_malloc(void *ctx, size_t n)
{
    track_alloc *t = ctx;
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    pthread_mutex_lock(&t->mu);
    t->calls++;
    t->live++;
    pthread_mutex_unlock(&t->mu);
    return (char *)p + 16;
}

static void *ta_realloc(void *ctx, void *ptr, size_t old, size_t n)
{
    track_alloc *t = ctx;
    if (!ptr) {
        if (old != 0) {
            pthread_mutex_lock(&t->mu);
            t->bad_old_size++;
            pthread_mutex_unlock(&t->mu);
        }
        return ta_malloc(ctx, n);
    }
    size_t *h = (size_t *)((char *)ptr - 16);
    size_t had = h[0];
    size_t *q = realloc(h, n + 16);
    if (!q)
        return NULL;
    q[0] = n;
    pthread_mutex_lock(&t->mu);
    t->calls++;
    if (had != old)
        t->bad_old_size++;
    pthread_mutex_unlock(&t->mu);
    return (char *)q + 16;
}

static void ta_free(void *ctx, void *ptr)
{
    track_alloc *t = ctx;
    if (!ptr)
        return;
    pthread_mutex_lock(&t->mu);
    t->live--;
    pthread_mutex_unlock(&t->mu);
    free((char *)ptr - 16);
}

static void store_should_allocate_only_through_the_given_allocator(void **state)
{
    (void)state;
    track_alloc t;
    memset(&t, 0, sizeof t);
    pthread_mutex_init(&t.mu, NULL);
    t.a.malloc = ta_malloc;
    t.a.realloc = ta_realloc;
    t.a.free = ta_free;
    t.a.ctx = &t;
    lss_options o;
    lss_options_init(&o);
    o.allocator = &t.a;
    fx f;
    memset(&f, 0, sizeof f);
    store_open(&f.st, &o);
    ASSERT_RC(NULL, lss_conn_open(f.st.db, &f.c), LSS_OK);
    unique_id(f.ns, sizeof f.ns, "alloc");
    f.ns_n = strlen(f.ns);
    ASSERT_RC(f.c, lss_ns_create(f.c, f.ns, f.ns_n, "d", 1, NULL, 0, f.token, sizeof f.token,
                                 &f.token_n, NULL),
              LSS_OK);
    lss_sub *s = sub_open(&f, LSS_SUB_ALL, NULL, 0);
    char big[4096];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"b\":\"", 6);
    memcpy(big + sizeof big - 3, "\"}", 3);
    for (int i = 0; i < 50; i++)
        PUT(&f, i % 2 ? "a-1" : "b-2", "T", big, "{\"m\":1}");
    rlist l = rd_stream(&f, "a-1", NULL);
    assert_int_equal(l.n, 25);
    rfree(&l);
    l = rd_all(&f);
    assert_int_equal(l.n, 50);
    rfree(&l);
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f.c, lss_authorize(f.c, f.token, f.token_n, 0, &ns, &ns_n), LSS_OK);
    lss_sub_close(s);
    drop_ns(f.c, f.ns);
    lss_conn_close(f.c);
    store_close(&f.st);
    assert_true(t.calls > 0);
    if (t.live != 0) {
        print_error("%ld blocks from the allocator were not freed\n", t.live);
        fail();
    }
    if (t.bad_old_size) {
        print_error("%ld realloc calls passed a wrong old_size\n", t.bad_old_size);
        fail();
    }
    pthread_mutex_destroy(&t.mu);
}

/* ============================================================ namespaces */

static void ns_create_should_store_the_given_token(void **state)
{
    fx *f = *state;
    char id[96], tok[LSS_TOKEN_MAX], out[LSS_TOKEN_MAX];
    unique_id(id, sizeof id, "given");
    size_t tok_n = make_token(id, strlen(id), '0', tok);
    size_t out_n = 0;
    int64_t created = 0;
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), "a description", 13, tok, tok_n, out,
                                  sizeof out, &out_n, &created),
              LSS_OK);
    assert_int_equal(out_n, tok_n);
    assert_memory_equal(out, tok, tok_n);
    ASSERT_NEAR_NOW(created);
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, tok, tok_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, id);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, id, strlen(id), &row), LSS_OK);
    ASSERT_SPAN(row->description.p, row->description.n, "a description");
    /* upper-case hex is accepted too */
    char id2[96], tok2[LSS_TOKEN_MAX];
    unique_id(id2, sizeof id2, "upper");
    size_t tok2_n = make_token(id2, strlen(id2), 'A', tok2);
    ASSERT_RC(f->c, lss_ns_create(f->c, id2, strlen(id2), NULL, 0, tok2, tok2_n, out,
                                  sizeof out, &out_n, NULL),
              LSS_OK);
    ASSERT_RC(f->c, lss_authorize(f->c, tok2, tok2_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, id2);
    drop_ns(f->c, id);
    drop_ns(f->c, id2);
}

static void ns_create_should_generate_a_well_formed_token(void **state)
{
    fx *f = *state;
    char want[LSS_TOKEN_MAX];
    size_t want_n = make_token(f->ns, f->ns_n, '0', want);
    assert_int_equal(f->token_n, want_n);
    /* prefix and base64url part as computed here, then 64 lower-case hex */
    assert_memory_equal(f->token, want, want_n - 64);
    for (size_t i = want_n - 64; i < want_n; i++)
        assert_true(is_hex_lower(f->token[i]));
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, f->ns);
    /* another namespace gets another secret */
    char id[96], tok[LSS_TOKEN_MAX];
    size_t tok_n;
    unique_id(id, sizeof id, "gen");
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, NULL, 0, tok, sizeof tok,
                                  &tok_n, NULL),
              LSS_OK);
    assert_memory_not_equal(tok + tok_n - 64, f->token + f->token_n - 64, 64);
    drop_ns(f->c, id);
}

static void ns_create_should_reject_a_token_for_another_namespace(void **state)
{
    fx *f = *state;
    char id[96], tok[LSS_TOKEN_MAX], out[LSS_TOKEN_MAX];
    unique_id(id, sizeof id, "mine");
    size_t tok_n = make_token("someone-else", 12, '0', tok);
    size_t out_n;
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, tok, tok_n, out, sizeof out,
                                  &out_n, NULL),
              LSS_ETOKEN);
    assert_true(strlen(lss_errmsg(f->c)) > 0);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, id, strlen(id), &row), LSS_ENOTFOUND);
    /* the token of the fixture's namespace is for another namespace too */
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, f->token, f->token_n, out,
                                  sizeof out, &out_n, NULL),
              LSS_ETOKEN);
    ASSERT_RC(f->c, lss_ns_info(f->c, id, strlen(id), &row), LSS_ENOTFOUND);
}

static void ns_create_should_reject_unparseable_tokens(void **state)
{
    fx *f = *state;
    char id[96], out[LSS_TOKEN_MAX];
    unique_id(id, sizeof id, "bad");
    char t1[LSS_TOKEN_MAX];
    size_t t1n = make_token(id, strlen(id), '0', t1);
    t1[t1n - 1] = 'g';
    const char *bad[] = {"garbage", "ns_", "ns_abc", "ns_ZGVmYXVsdA_0123"};
    size_t out_n;
    const lss_ns_row *row;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, bad[i], strlen(bad[i]), out,
                                      sizeof out, &out_n, NULL),
                  LSS_ETOKEN);
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, t1, t1n, out, sizeof out,
                                  &out_n, NULL),
              LSS_ETOKEN);
    ASSERT_RC(f->c, lss_ns_info(f->c, id, strlen(id), &row), LSS_ENOTFOUND);
}

static void ns_create_should_reject_an_existing_id(void **state)
{
    fx *f = *state;
    char out[LSS_TOKEN_MAX], tok[LSS_TOKEN_MAX];
    size_t out_n;
    ASSERT_RC(f->c, lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, NULL, 0, out, sizeof out,
                                  &out_n, NULL),
              LSS_EEXISTS);
    size_t tok_n = make_token(f->ns, f->ns_n, '7', tok);
    ASSERT_RC(f->c, lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, tok, tok_n, out, sizeof out,
                                  &out_n, NULL),
              LSS_EEXISTS);
    /* the namespace keeps the token it was created with */
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_RC(f->c, lss_authorize(f->c, tok, tok_n, 0, &ns, &ns_n), LSS_EAUTH);
}

static void ns_create_should_reject_bad_ids(void **state)
{
    fx *f = *state;
    char long256[257], mb256[257];
    memset(long256, 'a', 256);
    long256[256] = 0;
    for (int i = 0; i < 128; i++)
        memcpy(mb256 + 2 * i, "\xc3\xa9", 2);
    mb256[256] = 0;
    struct {
        const char *p;
        size_t n;
    } bad[] = {
        {"", 0},
        {NULL, 0},
        {long256, 256},
        {mb256, 256},
        {"\xff", 1},
        {"a\xc0\xaf", 3},         /* overlong '/' */
        {"a\xed\xa0\x80", 4},     /* encoded surrogate */
        {"a\xe2\x82", 3},         /* truncated sequence */
        {"\xf4\x90\x80\x80", 4},  /* above U+10FFFF */
        {"a\0b", 3},              /* U+0000 */
    };
    char out[LSS_TOKEN_MAX];
    size_t out_n;
    const lss_ns_row *row;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = lss_ns_create(f->c, bad[i].p, bad[i].n, NULL, 0, NULL, 0, out, sizeof out,
                               &out_n, NULL);
        if (rc != LSS_ENAME) {
            print_error("bad id #%zu: lss_ns_create = %s, want ENAME\n", i, lss_errname(rc));
            fail();
        }
        ASSERT_RC(f->c, lss_ns_info(f->c, bad[i].p, bad[i].n, &row), LSS_ENAME);
        ASSERT_RC(f->c, lss_ns_delete(f->c, bad[i].p, bad[i].n, NULL, NULL), LSS_ENAME);
    }
    /* 255 bytes is fine, and its token is exactly LSS_TOKEN_MAX long */
    char id255[256];
    memset(id255, 'z', 255);
    id255[255] = 0;
    memcpy(id255, f->ns, f->ns_n); /* unique on shared stores */
    ASSERT_RC(f->c, lss_ns_create(f->c, id255, 255, NULL, 0, NULL, 0, out, LSS_TOKEN_MAX,
                                  &out_n, NULL),
              LSS_OK);
    assert_int_equal(out_n, LSS_TOKEN_MAX);
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, out, out_n, 0, &ns, &ns_n), LSS_OK);
    assert_int_equal(ns_n, 255);
    assert_memory_equal(ns, id255, 255);
    ASSERT_RC(f->c, lss_ns_delete(f->c, id255, 255, NULL, NULL), LSS_OK);
    /* multi-byte UTF-8 up to 255 bytes */
    char mb[256];
    memcpy(mb, mb256, 254);
    mb[254] = 'x';
    mb[255] = 0;
    ASSERT_RC(f->c, lss_ns_create(f->c, mb, 255, NULL, 0, NULL, 0, out, sizeof out, &out_n,
                                  NULL),
              LSS_OK);
    ASSERT_RC(f->c, lss_ns_info(f->c, mb, 255, &row), LSS_OK);
    ASSERT_SPAN(row->id.p, row->id.n, mb);
    drop_ns(f->c, mb);
}

static void ns_create_should_refuse_a_small_token_buffer_and_create_nothing(void **state)
{
    fx *f = *state;
    char id[96], out[LSS_TOKEN_MAX];
    unique_id(id, sizeof id, "small");
    size_t out_n = 0;
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, NULL, 0, out, 10, &out_n, NULL),
              LSS_ENOSPACE);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, id, strlen(id), &row), LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, NULL, 0, out, sizeof out,
                                  &out_n, NULL),
              LSS_OK);
    drop_ns(f->c, id);
}

/* Files under root that are not under inside. */
typedef struct walk_state {
    const char *inside;
    size_t inside_n;
    int outside;
    int unsafe_names;
} walk_state;
static walk_state g_walk;

static int walk_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (flag == FTW_D || flag == FTW_DP)
        return 0;
    if (strncmp(p, g_walk.inside, g_walk.inside_n) || p[g_walk.inside_n] != '/') {
        print_error("file outside the data directory: %s\n", p);
        g_walk.outside++;
        return 0;
    }
    const char *name = p + ftw->base;
    for (const char *q = name; *q; q++) {
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
              (*q >= '0' && *q <= '9') || strchr("_-.%", *q))) {
            print_error("storage file name outside the safe alphabet: %s\n", name);
            g_walk.unsafe_names++;
            break;
        }
    }
    return 0;
}

static void ns_ids_like_paths_should_work_and_stay_inside_the_data_directory(void **state)
{
    (void)state;
    char tmp[PATH_MAX / 2], url[PATH_MAX], abs_id[PATH_MAX];
    make_tmp(tmp, sizeof tmp);
    snprintf(url, sizeof url, "%s/d1/d2/data", tmp);
    snprintf(abs_id, sizeof abs_id, "%s/abs-x", tmp);
    const char *ids[] = {"../../x", "..", ".", "../x.db", "a/b", "x\\y", abs_id,
                         "ns-default.db", "Tenant.A", "%2e%2e"};
    size_t nid = sizeof ids / sizeof ids[0];
    for (int kind = 0; kind < 2; kind++) {
        lss_db *db = NULL;
        lss_conn *c = NULL;
        ASSERT_RC(NULL, lss_open(kind ? url : ":memory:", NULL, &db), LSS_OK);
        ASSERT_RC(NULL, lss_conn_open(db, &c), LSS_OK);
        for (size_t i = 0; i < nid; i++) {
            char tok[LSS_TOKEN_MAX];
            size_t tok_n;
            ASSERT_RC(c, lss_ns_create(c, ids[i], strlen(ids[i]), NULL, 0, NULL, 0, tok,
                                       sizeof tok, &tok_n, NULL),
                      LSS_OK);
            lss_msg_in m = mk(NULL, "T", "{\"k\":1}", NULL);
            lss_append a = mkreq_ns(ids[i], strlen(ids[i]), "s-1", &m, 1);
            ASSERT_RC(c, lss_append_one(c, &a), LSS_OK);
            ASSERT_I64(a.global_position, 1);
            const char *ns;
            size_t ns_n;
            ASSERT_RC(c, lss_authorize(c, tok, tok_n, 0, &ns, &ns_n), LSS_OK);
            ASSERT_SPAN(ns, ns_n, ids[i]);
            const lss_ns_row *row;
            ASSERT_RC(c, lss_ns_info(c, ids[i], strlen(ids[i]), &row), LSS_OK);
            ASSERT_SPAN(row->id.p, row->id.n, ids[i]);
            ASSERT_I64(row->message_count, 1);
        }
        lss_conn_close(c);
        lss_close(db);
    }
    assert_false(path_exists(abs_id));
    snprintf(abs_id, sizeof abs_id, "%s/d1/x", tmp);
    assert_false(path_exists(abs_id));
    memset(&g_walk, 0, sizeof g_walk);
    g_walk.inside = url;
    g_walk.inside_n = strlen(url);
    assert_int_equal(nftw(tmp, walk_cb, 16, FTW_PHYS), 0);
    assert_int_equal(g_walk.outside, 0);
    assert_int_equal(g_walk.unsafe_names, 0);
    rm_rf(tmp);
}

static void ns_delete_should_report_the_message_count_then_not_found(void **state)
{
    fx *f = *state;
    put_n(f, "d-1", 3);
    put_n(f, "d-2", 2);
    put_n(f, "e", 2);
    int64_t deleted = -1, when = 0;
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, &deleted, &when), LSS_OK);
    ASSERT_I64(deleted, 7);
    ASSERT_NEAR_NOW(when);
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, &deleted, &when), LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL), LSS_ENOTFOUND);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, f->ns, f->ns_n, &row), LSS_ENOTFOUND);
    /* data operations on a missing namespace */
    lss_append a = try_put(f, "d-1", NULL, "T", "{}", NULL);
    ASSERT_RC(f->c, a.rc, LSS_ENOTFOUND);
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "d-1", 3, NULL, &cur), LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_read_category(f->c, f->ns, f->ns_n, "d", 1, NULL, &cur), LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "d-1", 3, NULL, 0, &cur), LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_list_streams(f->c, f->ns, f->ns_n, "", 0, "", 0, 10, &cur),
              LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_list_categories(f->c, f->ns, f->ns_n, &cur), LSS_ENOTFOUND);
    int64_t v;
    ASSERT_RC(f->c, lss_stream_version(f->c, f->ns, f->ns_n, "d-1", 3, &v), LSS_ENOTFOUND);
    lss_sub_opts so;
    lss_sub_opts_init(&so);
    so.kind = LSS_SUB_ALL;
    lss_sub *s = NULL;
    ASSERT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, &so, &s), LSS_ENOTFOUND);
    /* an empty namespace reports 0 */
    char id[96], tok[LSS_TOKEN_MAX];
    size_t tok_n;
    unique_id(id, sizeof id, "empty");
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, NULL, 0, tok, sizeof tok,
                                  &tok_n, NULL),
              LSS_OK);
    deleted = -1;
    ASSERT_RC(f->c, lss_ns_delete(f->c, id, strlen(id), &deleted, NULL), LSS_OK);
    ASSERT_I64(deleted, 0);
}

static int count_files(const char *dir)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void ns_delete_should_remove_the_namespace_files(void **state)
{
    fx *f = *state;
    if (store_kind() != KIND_DIR) {
        skip();
        return;
    }
    /* settle the registry's own files first */
    lss_conn_close(f->c);
    lss_close(f->st.db);
    ASSERT_RC(NULL, lss_open(f->st.url, NULL, &f->st.db), LSS_OK);
    ASSERT_RC(NULL, lss_conn_open(f->st.db, &f->c), LSS_OK);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, f->ns, f->ns_n, &row), LSS_OK);
    int before = count_files(f->st.url);
    char id[96], tok[LSS_TOKEN_MAX];
    size_t tok_n;
    unique_id(id, sizeof id, "files");
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, NULL, 0, tok, sizeof tok,
                                  &tok_n, NULL),
              LSS_OK);
    lss_msg_in m = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq_ns(id, strlen(id), "s-1", &m, 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    assert_true(count_files(f->st.url) > before);
    ASSERT_RC(f->c, lss_ns_delete(f->c, id, strlen(id), NULL, NULL), LSS_OK);
    int after = count_files(f->st.url);
    if (after > before) {
        char cmd[PATH_MAX + 32];
        snprintf(cmd, sizeof cmd, "ls -la '%s' >&2", f->st.url);
        if (system(cmd)) {
        }
        print_error("%d files before create, %d after delete\n", before, after);
        fail();
    }
}

static void ns_info_should_count_messages_and_streams_and_report_last_activity(void **state)
{
    fx *f = *state;
    const lss_ns_row *row = NULL;
    ASSERT_RC(f->c, lss_ns_info(f->c, f->ns, f->ns_n, &row), LSS_OK);
    ASSERT_SPAN(row->id.p, row->id.n, f->ns);
    ASSERT_SPAN(row->description.p, row->description.n, "");
    ASSERT_I64(row->message_count, 0);
    ASSERT_I64(row->stream_count, 0);
    assert_int_equal(row->has_last_activity, 0);
    ASSERT_NEAR_NOW(row->created_us);
    put_n(f, "i-1", 2);
    put_n(f, "i-2", 2);
    lss_msg_in m[3] = {mk(NULL, "T", "{}", NULL), mk(NULL, "T", "{}", NULL),
                       mk(NULL, "T", "{}", NULL)};
    lss_append a = mkreq(f, "i", m, 3);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    rlist l = rd_all(f);
    assert_int_equal(l.n, 7);
    int64_t newest = l.v[6].time_us;
    rfree(&l);
    ASSERT_RC(f->c, lss_ns_info(f->c, f->ns, f->ns_n, &row), LSS_OK);
    ASSERT_I64(row->message_count, 7);
    ASSERT_I64(row->stream_count, 3);
    assert_int_equal(row->has_last_activity, 1);
    ASSERT_I64(row->last_activity_us, newest);
    ASSERT_RC(f->c, lss_ns_info(f->c, "no-such-ns", 10, &row), LSS_ENOTFOUND);
}

static int ns_row_before(const lss_ns_row *a, const lss_ns_row *b)
{
    if (a->created_us != b->created_us)
        return a->created_us > b->created_us;
    size_t n = a->id.n < b->id.n ? a->id.n : b->id.n;
    int c = memcmp(a->id.p, b->id.p, n);
    return c < 0 || (c == 0 && a->id.n < b->id.n);
}

static void ns_list_should_order_newest_first_with_counts(void **state)
{
    fx *f = *state;
    char base[64], ids[3][96];
    unique_id(base, sizeof base, "list");
    snprintf(ids[0], sizeof ids[0], "%s-b", base);
    snprintf(ids[1], sizeof ids[1], "%s-a", base);
    snprintf(ids[2], sizeof ids[2], "%s-c", base);
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    ASSERT_RC(f->c, lss_ns_create(f->c, ids[0], strlen(ids[0]), "first", 5, NULL, 0, tok,
                                  sizeof tok, &tok_n, NULL),
              LSS_OK);
    sleep_ms(1100); /* registry times may be whole seconds */
    for (int i = 1; i < 3; i++)
        ASSERT_RC(f->c, lss_ns_create(f->c, ids[i], strlen(ids[i]), NULL, 0, NULL, 0, tok,
                                      sizeof tok, &tok_n, NULL),
                  LSS_OK);
    for (int i = 0; i < 3; i++) {
        lss_msg_in m = mk(NULL, "T", "{}", NULL);
        lss_append a = mkreq_ns(ids[2], strlen(ids[2]), "s-1", &m, 1);
        ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    }
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_ns_list(f->c, &cur), LSS_OK);
    const lss_ns_row *row;
    lss_ns_row prev;
    char prev_id[300];
    int seen = 0, order_ok = 1, fixture_seen = 0, rc;
    int pos[3] = {-1, -1, -1};
    while ((rc = lss_cursor_next_ns(cur, &row)) == LSS_ROW) {
        assert_int_equal(row->stream_count, -1);
        if (seen > 0) {
            lss_ns_row a = prev;
            a.id.p = prev_id;
            if (!ns_row_before(&a, row)) {
                print_error("ns.list out of order at '%.*s'\n", (int)row->id.n, row->id.p);
                order_ok = 0;
            }
        }
        for (int i = 0; i < 3; i++)
            if (row->id.n == strlen(ids[i]) && !memcmp(row->id.p, ids[i], row->id.n)) {
                pos[i] = seen;
                if (i == 0)
                    ASSERT_SPAN(row->description.p, row->description.n, "first");
                else
                    ASSERT_SPAN(row->description.p, row->description.n, "");
                ASSERT_I64(row->message_count, i == 2 ? 3 : 0);
            }
        if (row->id.n == f->ns_n && !memcmp(row->id.p, f->ns, f->ns_n))
            fixture_seen = 1;
        prev = *row;
        assert_true(row->id.n < sizeof prev_id);
        memcpy(prev_id, row->id.p, row->id.n);
        seen++;
    }
    lss_cursor_close(cur);
    ASSERT_RC(f->c, rc, LSS_DONE);
    assert_true(order_ok);
    assert_true(fixture_seen);
    for (int i = 0; i < 3; i++)
        assert_true(pos[i] >= 0);
    /* the older one comes after both newer ones */
    assert_true(pos[0] > pos[1] && pos[0] > pos[2]);
    for (int i = 0; i < 3; i++)
        drop_ns(f->c, ids[i]);
}

static void recreated_namespace_should_start_empty_at_global_position_one(void **state)
{
    fx *f = *state;
    put_n(f, "r-1", 3);
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL), LSS_OK);
    ASSERT_RC(f->c, lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, NULL, 0, f->token,
                                  sizeof f->token, &f->token_n, NULL),
              LSS_OK);
    ASSERT_I64(version_of(f, "r-1"), -1);
    ASSERT_I64(message_count(f), 0);
    lss_append a = PUT(f, "r-1", "T", "{}", NULL);
    ASSERT_I64(a.position, 0);
    ASSERT_I64(a.global_position, 1);
    rlist l = rd_all(f);
    assert_int_equal(l.n, 1);
    rfree(&l);
}

typedef struct racing_create {
    lss_db *db;
    const char *id;
    pthread_barrier_t *barrier;
    int rc;
} racing_create;

static void *racing_create_main(void *p)
{
    racing_create *r = p;
    lss_conn *c = NULL;
    r->rc = lss_conn_open(r->db, &c);
    pthread_barrier_wait(r->barrier);
    if (r->rc == LSS_OK) {
        char tok[LSS_TOKEN_MAX];
        size_t tok_n;
        r->rc = lss_ns_create(c, r->id, strlen(r->id), NULL, 0, NULL, 0, tok, sizeof tok,
                              &tok_n, NULL);
    }
    lss_conn_close(c);
    return NULL;
}

static void ns_create_should_let_exactly_one_of_concurrent_creations_win(void **state)
{
    fx *f = *state;
    enum { N = 8 };
    char id[96], other[N][128];
    unique_id(id, sizeof id, "race");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2 * N);
    racing_create r[2 * N];
    pthread_t th[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        if (i >= N)
            snprintf(other[i - N], sizeof other[0], "%s-%d", id, i - N);
        r[i] = (racing_create){f->st.db, i < N ? id : other[i - N], &barrier, 0};
        assert_int_equal(pthread_create(&th[i], NULL, racing_create_main, &r[i]), 0);
    }
    for (int i = 0; i < 2 * N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    int won = 0;
    for (int i = 0; i < N; i++) {
        if (r[i].rc == LSS_OK)
            won++;
        else if (r[i].rc != LSS_EEXISTS) {
            print_error("same id: %s, want OK or EEXISTS\n", lss_errname(r[i].rc));
            fail();
        }
    }
    assert_int_equal(won, 1);
    for (int i = N; i < 2 * N; i++) /* different ids all succeed */
        ASSERT_RC(NULL, r[i].rc, LSS_OK);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, id, strlen(id), &row), LSS_OK);
    drop_ns(f->c, id);
    for (int i = 0; i < N; i++)
        drop_ns(f->c, other[i]);
}

/* ========================================================= authorization */

static void authorize_should_resolve_a_token_to_its_namespace(void **state)
{
    fx *f = *state;
    const char *ns = NULL;
    size_t ns_n = 0;
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, f->ns);
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, LSS_AUTH_NO_HASH, &ns, &ns_n),
              LSS_OK);
    ASSERT_SPAN(ns, ns_n, f->ns);
}

static void authorize_should_reject_a_wrong_secret_with_eauth(void **state)
{
    fx *f = *state;
    char tok[LSS_TOKEN_MAX];
    size_t tok_n = make_token(f->ns, f->ns_n, '1', tok);
    const char *ns = NULL;
    size_t ns_n = 0;
    ASSERT_RC(f->c, lss_authorize(f->c, tok, tok_n, 0, &ns, &ns_n), LSS_EAUTH);
    ASSERT_SPAN(ns, ns_n, f->ns);
    /* one changed hex digit of the real token */
    memcpy(tok, f->token, f->token_n);
    tok[f->token_n - 1] = tok[f->token_n - 1] == '0' ? '1' : '0';
    ASSERT_RC(f->c, lss_authorize(f->c, tok, f->token_n, 0, &ns, &ns_n), LSS_EAUTH);
    /* test mode skips the hash comparison */
    ns = NULL;
    ASSERT_RC(f->c, lss_authorize(f->c, tok, f->token_n, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, f->ns);
    /* and the right token still works after all that (cache) */
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
}

static void authorize_should_reject_malformed_tokens_with_etoken(void **state)
{
    fx *f = *state;
    char z64[65];
    memset(z64, '0', 64);
    z64[64] = 0;
    char badhex[128], badb64[128], empty[128], three[128];
    snprintf(badhex, sizeof badhex, "ns_ZGVmYXVsdA_%.*sg", 63, z64);
    snprintf(badb64, sizeof badb64, "ns_ZG=mYXVsdA_%s", z64);
    snprintf(empty, sizeof empty, "ns__%s", z64);
    snprintf(three, sizeof three, "ns_a_b_%.3s", z64);
    struct {
        const char *tok;
        const char *msg;
    } cases[] = {
        {"invalid-token-format", "missing 'ns_' prefix"},
        {"ns_abc", "expected 2 parts after prefix, got 1"},
        {"ns_ZGVmYXVsdA_0123", "random part must be 64 hex characters, got 4"},
        {badhex, "random part is not valid hexadecimal"},
        {badb64, "namespace part is not valid base64url"},
        {empty, "namespace is empty"},
        {three, "expected 2 parts after prefix, got 3"},
        {"Bearer ns_ZGVmYXVsdA_0", "missing 'ns_' prefix"},
    };
    const char *ns;
    size_t ns_n;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (unsigned flags = 0; flags < 2; flags++) {
            int rc = lss_authorize(f->c, cases[i].tok, strlen(cases[i].tok),
                                   flags ? LSS_AUTH_NO_HASH : 0, &ns, &ns_n);
            if (rc != LSS_ETOKEN) {
                print_error("token '%s': %s, want ETOKEN\n", cases[i].tok, lss_errname(rc));
                fail();
            }
            const char *msg = lss_errmsg(f->c);
            if (!strstr(msg, cases[i].msg) || !strstr(msg, "invalid token format: ")) {
                print_error("token '%s': errmsg '%s' lacks 'invalid token format: ...%s'\n",
                            cases[i].tok, msg, cases[i].msg);
                fail();
            }
        }
    }
    ASSERT_RC(f->c, lss_authorize(f->c, "", 0, 0, &ns, &ns_n), LSS_ETOKEN);
}

static void authorize_should_reject_an_unknown_namespace_with_eauth(void **state)
{
    fx *f = *state;
    char tok[LSS_TOKEN_MAX];
    size_t tok_n = make_token("never-created-ns", 16, 'a', tok);
    const char *ns = NULL;
    size_t ns_n = 0;
    ASSERT_RC(f->c, lss_authorize(f->c, tok, tok_n, 0, &ns, &ns_n), LSS_EAUTH);
    ASSERT_SPAN(ns, ns_n, "never-created-ns");
    ASSERT_RC(f->c, lss_authorize(f->c, tok, tok_n, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_EAUTH);
}

static void authorize_should_reject_a_deleted_namespace(void **state)
{
    fx *f = *state;
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL), LSS_OK);
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_EAUTH);
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, LSS_AUTH_NO_HASH, &ns, &ns_n),
              LSS_EAUTH);
    /* another session's cache must not keep it alive either */
    lss_conn *c2 = NULL;
    ASSERT_RC(NULL, lss_conn_open(f->st.db, &c2), LSS_OK);
    ASSERT_RC(c2, lss_authorize(c2, f->token, f->token_n, 0, &ns, &ns_n), LSS_EAUTH);
    /* re-created with a new secret: the old token is refused in strict mode */
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    ASSERT_RC(f->c, lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, NULL, 0, tok, sizeof tok,
                                  &tok_n, NULL),
              LSS_OK);
    ASSERT_RC(c2, lss_authorize(c2, f->token, f->token_n, 0, &ns, &ns_n), LSS_EAUTH);
    ASSERT_RC(c2, lss_authorize(c2, tok, tok_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_RC(c2, lss_authorize(c2, f->token, f->token_n, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_OK);
    lss_conn_close(c2);
}

static void authorize_should_accept_ids_whose_base64_contains_underscores(void **state)
{
    fx *f = *state;
    char id[128], tok[LSS_TOKEN_MAX];
    snprintf(id, sizeof id, "ab?%s", f->ns); /* "ab?" encodes to "YWI_" */
    size_t tok_n;
    ASSERT_RC(f->c, lss_ns_create(f->c, id, strlen(id), NULL, 0, NULL, 0, tok, sizeof tok,
                                  &tok_n, NULL),
              LSS_OK);
    assert_memory_equal(tok, "ns_YWI_", 7);
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, tok, tok_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_SPAN(ns, ns_n, id);
    drop_ns(f->c, id);
}

/* ================================================================ append */

static void append_should_assign_positions_and_global_positions(void **state)
{
    fx *f = *state;
    lss_append a = PUT(f, "account-1", "Opened", "{\"n\":1}", NULL);
    ASSERT_I64(a.position, 0);
    ASSERT_I64(a.global_position, 1);
    assert_uuidv7(a.id, 36);
    lss_append b = PUT(f, "account-1", "Deposited", "{\"n\":2}", "{\"m\":true}");
    ASSERT_I64(b.position, 1);
    ASSERT_I64(b.global_position, 2);
    lss_append c = PUT(f, "account-2", "Opened", "{\"n\":3}", NULL);
    ASSERT_I64(c.position, 0);
    ASSERT_I64(c.global_position, 3);
    lss_append d = PUT(f, "account", "Named", "{}", NULL);
    ASSERT_I64(d.position, 0);
    ASSERT_I64(d.global_position, 4);
    ASSERT_I64(version_of(f, "account-1"), 1);
    ASSERT_I64(version_of(f, "account"), 0);

    rlist l = rd_stream(f, "account-1", NULL);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.v[0].id_n, 36);
    assert_memory_equal(l.v[0].id, a.id, 36);
    assert_memory_equal(l.v[1].id, b.id, 36);
    ASSERT_SPAN(l.v[0].stream, l.v[0].stream_n, "account-1");
    ASSERT_SPAN(l.v[0].type, l.v[0].type_n, "Opened");
    ASSERT_SPAN(l.v[1].type, l.v[1].type_n, "Deposited");
    ASSERT_I64(l.v[0].pos, 0);
    ASSERT_I64(l.v[1].pos, 1);
    ASSERT_I64(l.v[0].gpos, 1);
    ASSERT_I64(l.v[1].gpos, 2);
    assert_payload(l.v[0].data, l.v[0].data_n, "{\"n\":1}");
    assert_null(l.v[0].meta);
    assert_payload(l.v[1].meta, l.v[1].meta_n, "{\"m\":true}");
    ASSERT_NEAR_NOW(l.v[0].time_us);
    assert_true(l.v[1].time_us >= l.v[0].time_us);
    rfree(&l);
}

static void append_should_write_a_batch_of_up_to_1000_atomically(void **state)
{
    fx *f = *state;
    PUT(f, "other-1", "T", "{}", NULL);
    static lss_msg_in m[LSS_BATCH_MAX + 1];
    static char data[LSS_BATCH_MAX + 1][32];
    for (int i = 0; i <= LSS_BATCH_MAX; i++) {
        snprintf(data[i], sizeof data[i], "{\"i\":%d}", i);
        m[i] = mk(NULL, i % 2 ? "Odd" : "Even", data[i], NULL);
    }
    lss_append a = mkreq(f, "batch-1", m, LSS_BATCH_MAX);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 999);
    assert_true(a.global_position >= 1001);
    rlist l = rd_stream(f, "batch-1", &(lss_read_opts){.struct_size = sizeof(lss_read_opts),
                                                      .batch_size = -1});
    assert_int_equal(l.n, 1000);
    for (int i = 0; i < 1000; i++) {
        ASSERT_I64(l.v[i].pos, i);
        if (i)
            assert_true(l.v[i].gpos > l.v[i - 1].gpos);
        assert_payload(l.v[i].data, l.v[i].data_n, data[i]);
        ASSERT_SPAN(l.v[i].type, l.v[i].type_n, i % 2 ? "Odd" : "Even");
        assert_uuidv7(l.v[i].id, l.v[i].id_n);
        ASSERT_I64(l.v[i].time_us, l.v[0].time_us); /* one time per batch */
    }
    ASSERT_I64(l.v[999].gpos, a.global_position);
    assert_memory_equal(l.v[999].id, a.id, 36);
    for (int i = 1; i < 1000; i++)
        assert_memory_not_equal(l.v[i].id, l.v[i - 1].id, 36);
    rfree(&l);
    /* a batch of one continues the stream */
    a = mkreq(f, "batch-1", m, 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 1000);
}

static void append_should_reject_batches_of_zero_and_over_1000(void **state)
{
    fx *f = *state;
    static lss_msg_in m[LSS_BATCH_MAX + 1];
    for (int i = 0; i <= LSS_BATCH_MAX; i++)
        m[i] = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq(f, "b-1", m, 0);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    ASSERT_RC(f->c, a.rc, LSS_EINVAL);
    a = mkreq(f, "b-1", m, LSS_BATCH_MAX + 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    ASSERT_I64(version_of(f, "b-1"), -1);
    ASSERT_I64(message_count(f), 0);
}

static void append_batch_with_one_bad_message_should_store_nothing(void **state)
{
    fx *f = *state;
    struct {
        int bad;
        lss_msg_in msg;
        int want;
    } cases[] = {
        {3, mk(NULL, "T", "{", NULL), LSS_EJSON},
        {2, mk(NULL, "", "{}", NULL), LSS_ENAME},
        {4, mk("not-a-uuid", "T", "{}", NULL), LSS_EUUID},
        {1, mk(NULL, "T", "{}", "[1]"), LSS_EJSON},
        {0, mk(NULL, "T", "[]", NULL), LSS_EJSON},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lss_msg_in m[5];
        for (int i = 0; i < 5; i++)
            m[i] = mk(NULL, "T", "{\"ok\":1}", NULL);
        m[cases[k].bad] = cases[k].msg;
        lss_append a = mkreq(f, "bad-1", m, 5);
        a.bad_index = 77;
        int rc = lss_append_one(f->c, &a);
        if (rc != cases[k].want || a.bad_index != (size_t)cases[k].bad) {
            print_error("case %zu: rc %s bad_index %zu, want %s bad_index %d\n", k,
                        lss_errname(rc), a.bad_index, lss_errname(cases[k].want), cases[k].bad);
            fail();
        }
        ASSERT_I64(version_of(f, "bad-1"), -1);
    }
    ASSERT_I64(message_count(f), 0);
    /* an id repeated inside one batch is refused, nothing stored */
    const char *id = "0190a5b4-7c3e-7def-8abc-00000000000a";
    lss_msg_in m[3] = {mk(id, "T", "{}", NULL), mk(NULL, "T", "{}", NULL),
                       mk("{0190A5B4-7C3E-7DEF-8ABC-00000000000A}", "T", "{}", NULL)};
    lss_append a = mkreq(f, "bad-1", m, 3);
    int rc = lss_append_one(f->c, &a);
    if (rc != LSS_EINVAL && rc != LSS_EDUPLICATE) {
        print_error("repeated id in a batch: %s, want EINVAL or EDUPLICATE\n", lss_errname(rc));
        fail();
    }
    assert_int_equal(a.bad_index, 2);
    ASSERT_I64(version_of(f, "bad-1"), -1);
    ASSERT_I64(message_count(f), 0);
}

static void append_should_apply_the_expected_version_rule_exactly(void **state)
{
    fx *f = *state;
    struct {
        int64_t ev;
        int want;
        int64_t actual; /* for EVERSION; else the new position */
    } steps[] = {
        {0, LSS_EVERSION, -1},        {-2, LSS_EVERSION, -1},
        {INT64_MIN, LSS_EVERSION, -1}, {5, LSS_EVERSION, -1},
        {-1, LSS_OK, 0},              {-1, LSS_EVERSION, 0},
        {1, LSS_EVERSION, 0},         {-2, LSS_EVERSION, 0},
        {-3, LSS_EVERSION, 0},        {INT64_MAX, LSS_EVERSION, 0},
        {0, LSS_OK, 1},               {1, LSS_OK, 2},
        {1, LSS_EVERSION, 2},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        lss_append a = try_put_ev(f, "ev-1", NULL, "{}", steps[i].ev);
        if (a.rc != steps[i].want) {
            print_error("step %zu (expected %" PRId64 "): %s, want %s\n", i, steps[i].ev,
                        lss_errname(a.rc), lss_errname(steps[i].want));
            fail();
        }
        if (a.rc == LSS_EVERSION) {
            ASSERT_I64(a.actual_version, steps[i].actual);
            assert_true(strlen(lss_errmsg(f->c)) > 0);
        } else {
            ASSERT_I64(a.position, steps[i].actual);
        }
        ASSERT_I64(version_of(f, "ev-1"), steps[i].actual);
    }
    /* without the flag expected_version is ignored */
    lss_msg_in m = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq(f, "ev-1", &m, 1);
    a.expected_version = 77;
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 3);
    /* a batch is checked once, before its first message */
    lss_msg_in mb[3] = {mk(NULL, "T", "{}", NULL), mk(NULL, "T", "{}", NULL),
                        mk(NULL, "T", "{}", NULL)};
    a = mkreq(f, "ev-1", mb, 3);
    a.flags = LSS_APPEND_EXPECT;
    a.expected_version = 3;
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 6);
    a = mkreq(f, "ev-1", mb, 3);
    a.flags = LSS_APPEND_EXPECT;
    a.expected_version = 3;
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_EVERSION);
    ASSERT_I64(a.actual_version, 6);
    ASSERT_I64(version_of(f, "ev-1"), 6);
    /* -1 for a batch on an empty stream */
    a = mkreq(f, "ev-2", mb, 3);
    a.flags = LSS_APPEND_EXPECT;
    a.expected_version = -1;
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 2);
    ASSERT_I64(message_count(f), 10);
}

static void append_should_return_the_original_positions_for_an_identical_retry(void **state)
{
    fx *f = *state;
    const char *id = "0190a5b4-7c3e-7def-8abc-0123456789ab";
    const char *data = "{\"a\":1,\"b\":[true,null,\"x\"],\"n\":12345678901234567890123}";
    const char *meta = "{\"m\":1}";
    PUT(f, "idem-1", "T", "{}", NULL);
    lss_append a = try_put(f, "idem-1", id, "Thing", data, meta);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    ASSERT_I64(a.position, 1);
    int64_t g = a.global_position;
    PUT(f, "idem-1", "T", "{}", NULL);
    PUT(f, "idem-2", "T", "{}", NULL);
    ASSERT_I64(message_count(f), 4);

    const char *equal_data[] = {
        data,
        "{ \"n\" : 12345678901234567890123 , \"b\" : [ true , null , \"\\u0078\" ] , \"a\" : 1.0 }",
        "{\"a\":1e0,\"b\":[true,null,\"x\"],\"n\":1.2345678901234567890123e22}",
        "{\"b\":[true,null,\"x\"],\"a\":10e-1,\"n\":12345678901234567890123.000}",
    };
    const char *equal_meta[] = {meta, "{ \"m\" : 1.00 }", "{\"\\u006d\":1}"};
    for (size_t i = 0; i < sizeof equal_data / sizeof equal_data[0]; i++)
        for (size_t j = 0; j < sizeof equal_meta / sizeof equal_meta[0]; j++) {
            lss_append r = try_put(f, "idem-1", id, "Thing", equal_data[i], equal_meta[j]);
            if (r.rc != LSS_OK || r.position != 1 || r.global_position != g) {
                print_error("retry data #%zu meta #%zu: %s pos %" PRId64 " gpos %" PRId64
                            ", want OK 1 %" PRId64 "\n  %s\n", i, j, lss_errname(r.rc),
                            r.position, r.global_position, g, lss_errmsg(f->c));
                fail();
            }
            assert_memory_equal(r.id, id, 36);
        }
    /* the expected version is not evaluated again */
    lss_msg_in m = mk(id, "Thing", data, meta);
    lss_append r = mkreq(f, "idem-1", &m, 1);
    r.flags = LSS_APPEND_EXPECT;
    r.expected_version = 99;
    ASSERT_RC(f->c, lss_append_one(f->c, &r), LSS_OK);
    ASSERT_I64(r.position, 1);
    ASSERT_I64(r.global_position, g);
    /* nothing was written */
    ASSERT_I64(message_count(f), 4);
    ASSERT_I64(version_of(f, "idem-1"), 2);
    rlist l = rd_stream(f, "idem-1", NULL);
    assert_int_equal(l.n, 3);
    assert_payload(l.v[1].data, l.v[1].data_n, data);
    assert_payload(l.v[1].meta, l.v[1].meta_n, meta);
    rfree(&l);
    /* a new write still gets a fresh, higher global position */
    lss_append n = PUT(f, "idem-1", "T", "{}", NULL);
    ASSERT_I64(n.position, 3);
    assert_true(n.global_position > 4);
}

typedef struct racing_retry {
    fx *f;
    pthread_barrier_t *barrier;
    int rc;
    int64_t pos, gpos;
} racing_retry;

static void *racing_retry_main(void *p)
{
    racing_retry *r = p;
    lss_conn *c = NULL;
    r->rc = lss_conn_open(r->f->st.db, &c);
    pthread_barrier_wait(r->barrier);
    if (r->rc == LSS_OK) {
        lss_msg_in m = mk("0190a5b4-7c3e-7def-8abc-0000000000ee", "T", "{\"same\":true}", NULL);
        lss_append a = mkreq(r->f, "race-idem-1", &m, 1);
        r->rc = lss_append_one(c, &a);
        r->pos = a.position;
        r->gpos = a.global_position;
    }
    lss_conn_close(c);
    return NULL;
}

static void identical_writes_racing_should_insert_once_and_agree_on_positions(void **state)
{
    fx *f = *state;
    enum { N = 8 };
    PUT(f, "race-idem-1", "T", "{}", NULL);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    racing_retry r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racing_retry){f, &barrier, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, racing_retry_main, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < N; i++) {
        ASSERT_RC(NULL, r[i].rc, LSS_OK);
        ASSERT_I64(r[i].pos, 1);
        ASSERT_I64(r[i].gpos, r[0].gpos);
    }
    ASSERT_I64(version_of(f, "race-idem-1"), 1);
    ASSERT_I64(message_count(f), 2);
}

static void append_should_reject_a_known_id_with_other_content_as_duplicate(void **state)
{
    fx *f = *state;
    const char *id = "0190a5b4-7c3e-7def-8abc-0123456789cd";
    const char *data = "{\"a\":1,\"n\":12345678901234567890123}";
    lss_append a = try_put(f, "dup-1", id, "Thing", data, "{\"m\":1}");
    ASSERT_RC(f->c, a.rc, LSS_OK);
    const char *id2 = "0190a5b4-7c3e-7def-8abc-0123456789ce";
    a = try_put(f, "dup-1", id2, "Thing", "{}", NULL);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    struct {
        const char *id, *stream, *type, *data, *meta;
    } cases[] = {
        {id, "dup-1", "Thing", "{\"a\":2,\"n\":12345678901234567890123}", "{\"m\":1}"},
        {id, "dup-1", "Thing", "{\"a\":1,\"n\":12345678901234567890124}", "{\"m\":1}"},
        {id, "dup-1", "Thing", "{\"a\":1,\"n\":12345678901234567890123,\"x\":0}", "{\"m\":1}"},
        {id, "dup-1", "Thing", "{\"a\":\"1\",\"n\":12345678901234567890123}", "{\"m\":1}"},
        {id, "dup-1", "Other", data, "{\"m\":1}"},
        {id, "dup-1", "thing", data, "{\"m\":1}"},
        {id, "dup-2", "Thing", data, "{\"m\":1}"},
        {id, "dup-1", "Thing", data, NULL},
        {id, "dup-1", "Thing", data, "{\"m\":2}"},
        {id, "dup-1", "Thing", data, "{}"},
        {id2, "dup-1", "Thing", "{}", "{}"},
        {id2, "dup-1", "Thing", "{\"a\":null}", NULL},
        {id2, "dup-1", "Thing", "{}", "{\"correlationStreamName\":\"x-1\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lss_msg_in m = mk(cases[i].id, cases[i].type, cases[i].data, cases[i].meta);
        lss_append r = mkreq(f, cases[i].stream, &m, 1);
        r.bad_index = 55;
        int rc = lss_append_one(f->c, &r);
        if (rc != LSS_EDUPLICATE) {
            print_error("case %zu: %s, want EDUPLICATE\n", i, lss_errname(rc));
            fail();
        }
        assert_memory_equal(r.id, cases[i].id, 36);
        assert_int_equal(r.bad_index, 0);
    }
    ASSERT_I64(message_count(f), 2);
    ASSERT_I64(version_of(f, "dup-2"), -1);
    /* ids are unique across streams of a namespace: no new message */
    rlist l = rd_stream(f, "dup-1", NULL);
    assert_int_equal(l.n, 2);
    assert_payload(l.v[0].data, l.v[0].data_n, data);
    rfree(&l);
}

static void append_should_canonicalise_ids_in_every_spelling(void **state)
{
    fx *f = *state;
    const char *canon = "5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b";
    const char *spellings[] = {
        "{5F8D0D55-3C8A-4F0E-9B1A-2C3D4E5F6A7B}",
        "5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b",
        "5F8D0D55-3C8A-4F0E-9B1A-2C3D4E5F6A7B",
        "{5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b}",
        "urn:uuid:5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b",
        "URN:UUID:5F8D0D55-3C8A-4F0E-9B1A-2C3D4E5F6A7B",
        "Urn:Uuid:5f8d0d55-3C8A-4f0e-9b1a-2c3d4e5f6a7b",
        "5f8d0d553c8a4f0e9b1a2c3d4e5f6a7b",
        "5F8D0D553C8A4F0E9B1A2C3D4E5F6A7B",
    };
    lss_append a = try_put(f, "uuid-1", spellings[0], "T", "{}", NULL);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    assert_memory_equal(a.id, canon, 36);
    for (size_t i = 1; i < sizeof spellings / sizeof spellings[0]; i++) {
        lss_append r = try_put(f, "uuid-1", spellings[i], "T", "{}", NULL);
        if (r.rc != LSS_OK || r.position != a.position ||
            r.global_position != a.global_position) {
            print_error("retry as '%s': %s pos %" PRId64 "\n", spellings[i], lss_errname(r.rc),
                        r.position);
            fail();
        }
        assert_memory_equal(r.id, canon, 36);
    }
    /* every spelling stores the canonical form */
    const char *fresh[] = {
        "{A0000000-0000-4000-8000-000000000001}",
        "urn:uuid:a0000000-0000-4000-8000-000000000002",
        "A0000000000040008000000000000003",
        "A0000000-0000-4000-8000-000000000004",
        "00000000-0000-0000-0000-000000000000", /* nil: any version accepted */
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    };
    const char *want[] = {
        "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002",
        "a0000000-0000-4000-8000-000000000003", "a0000000-0000-4000-8000-000000000004",
        "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    };
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++) {
        lss_append r = try_put(f, "uuid-2", fresh[i], "T", "{}", NULL);
        ASSERT_RC(f->c, r.rc, LSS_OK);
        assert_memory_equal(r.id, want[i], 36);
    }
    rlist l = rd_stream(f, "uuid-2", NULL);
    assert_int_equal(l.n, 6);
    for (size_t i = 0; i < 6; i++)
        ASSERT_SPAN(l.v[i].id, l.v[i].id_n, want[i]);
    rfree(&l);
    const char *bad[] = {
        "5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7",     "5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7bb",
        "5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7g",    "{5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b",
        "5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b}",   "urn:uuid:5f8d0d553c8a4f0e9b1a2c3d4e5f6a7b",
        "uuid:5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b", "5f8d0d55_3c8a_4f0e_9b1a_2c3d4e5f6a7b",
        " 5f8d0d55-3c8a-4f0e-9b1a-2c3d4e5f6a7b",   "5f8d0d553c8a-4f0e-9b1a-2c3d4e5f6a7b0",
        "not-a-uuid",                              "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lss_append r = try_put(f, "uuid-3", bad[i], "T", "{}", NULL);
        if (r.rc != LSS_EUUID) {
            print_error("id '%s': %s, want EUUID\n", bad[i], lss_errname(r.rc));
            fail();
        }
    }
    ASSERT_I64(version_of(f, "uuid-3"), -1);
}

static void append_should_generate_uuidv7_ids(void **state)
{
    fx *f = *state;
    char ids[20][36];
    for (int i = 0; i < 20; i++) {
        lss_append a = PUT(f, "gen-1", "T", "{}", NULL);
        assert_uuidv7(a.id, 36);
        memcpy(ids[i], a.id, 36);
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(ids[i], ids[j], 36);
    }
    /* an empty id (non-NULL, length 0) also means "generate" */
    lss_msg_in m = mk("", "T", "{}", NULL);
    lss_append a = mkreq(f, "gen-1", &m, 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    assert_uuidv7(a.id, 36);
    rlist l = rd_stream(f, "gen-1", NULL);
    assert_int_equal(l.n, 21);
    for (int i = 0; i < 20; i++)
        assert_memory_equal(l.v[i].id, ids[i], 36);
    rfree(&l);
}

static const char pretty_data[] =
    "{\n  \"name\" :\t\"caf\\u00e9 \\\"q\\\" \\/ \\n\\t\\\\\",\r\n"
    "  \"big\": 12345678901234567890123,\n"
    "  \"neg\" : -0.000000000000000000001e-5 ,\"f\": 1.50, \"e\": 1E+2, \"z\": -0,\n"
    "  \"utf8\": \"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\", "
    "\"esc\": \"\\ud83d\\ude00\\u2028\",\n"
    "  \"nested\" : { \"a\" : [ ] , \"b\" : { } , \"c\": [1, [2, [3, {\"d\": null}]]] },\n"
    "  \"t\": true, \"n\": null, \"s\": \"\"\n}";
static const char pretty_meta[] =
    "{ \"correlationStreamName\" : \"x-1\" ,\"k\":[ 1 ,2 ],\"big\":-98765432109876543210 }";

static void append_should_store_payloads_byte_for_byte(void **state)
{
    fx *f = *state;
    lss_append a = PUT(f, "bytes-1", "T", pretty_data, pretty_meta);
    rlist l = rd_stream(f, "bytes-1", NULL);
    assert_int_equal(l.n, 1);
    assert_payload(l.v[0].data, l.v[0].data_n, pretty_data);
    assert_payload(l.v[0].meta, l.v[0].meta_n, pretty_meta);
    if (!keeps_payload_bytes()) { /* at least the exact integers survive */
        assert_non_null(strstr(l.v[0].data, "12345678901234567890123"));
        assert_non_null(strstr(l.v[0].meta, "-98765432109876543210"));
    }
    rfree(&l);
    l = rd_cat(f, "bytes", NULL);
    assert_int_equal(l.n, 1);
    assert_payload(l.v[0].data, l.v[0].data_n, pretty_data);
    rfree(&l);
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "bytes-1", 7, NULL, 0, &cur), LSS_OK);
    l = drain(cur);
    assert_int_equal(l.n, 1);
    assert_payload(l.v[0].data, l.v[0].data_n, pretty_data);
    rfree(&l);
    /* surrounding white space is allowed */
    a = try_put(f, "bytes-2", NULL, "T", " \t\r\n{\"a\":1}\n ", "\n{}\t");
    ASSERT_RC(f->c, a.rc, LSS_OK);
    l = rd_stream(f, "bytes-2", NULL);
    assert_int_equal(l.n, 1);
    cJSON *j = cJSON_ParseWithLength(l.v[0].data, l.v[0].data_n);
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    assert_int_equal(cJSON_GetObjectItem(j, "a")->valueint, 1);
    cJSON_Delete(j);
    rfree(&l);
}

static char *big_payload(size_t bytes, int seed)
{
    char *p = malloc(bytes + 64);
    assert_non_null(p);
    size_t o = (size_t)sprintf(p, "{\"seed\":%d,\"blob\":\"", seed);
    while (o < bytes - 2) {
        p[o] = (char)('a' + (o * 7 + (size_t)seed) % 26);
        o++;
    }
    memcpy(p + o, "\"}", 3);
    return p;
}

static void append_should_round_trip_100_kb_payloads(void **state)
{
    fx *f = *state;
    char *d = big_payload(100 * 1024, 1);
    char *m = big_payload(100 * 1024, 2);
    PUT(f, "big-1", "T", d, m);
    lss_msg_in ms[10];
    char *bd[10];
    for (int i = 0; i < 10; i++) {
        bd[i] = big_payload(100 * 1024 + (size_t)i, i + 3);
        ms[i] = mk(NULL, "T", bd[i], NULL);
    }
    lss_append a = mkreq(f, "big-1", ms, 10);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    rlist l = rd_stream(f, "big-1", NULL);
    assert_int_equal(l.n, 11);
    assert_payload(l.v[0].data, l.v[0].data_n, d);
    assert_payload(l.v[0].meta, l.v[0].meta_n, m);
    for (int i = 0; i < 10; i++)
        assert_payload(l.v[i + 1].data, l.v[i + 1].data_n, bd[i]);
    rfree(&l);
    free(d);
    free(m);
    for (int i = 0; i < 10; i++)
        free(bd[i]);
}

static void append_should_reject_invalid_json_and_store_nothing(void **state)
{
    fx *f = *state;
    static char deep[200040];
    size_t o = (size_t)sprintf(deep, "{\"a\":");
    for (int i = 0; i < 100000; i++)
        deep[o++] = '[';
    for (int i = 0; i < 100000; i++)
        deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = 0;
    const char *bad[] = {
        "", " ", "{", "}", "[]", "null", "1", "\"s\"", "true",
        "{\"a\":1,}", "{\"a\":[1,]}", "{'a':1}", "{a:1}", "{\"a\":NaN}",
        "{\"a\":Infinity}", "{\"a\":-Infinity}", "{\"a\":01}", "{\"a\":+1}", "{\"a\":.5}",
        "{\"a\":1.}", "{\"a\":1e}", "{\"a\":0x10}", "{\"a\":1} x", "{}{}", "{\"a\":1}]",
        "\xef\xbb\xbf{}", "{} // c", "/* c */ {}", "{\"a\":\"x\ty\"}", "{\"a\":\"x\ny\"}",
        "{\"a\":\"\\u0000\"}", "{\"a\\u0000\":1}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\x41\"}", "{\"a\":\"\\'\"}", "{\"a\":\"\\u00g1\"}",
        "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"\\u0061\":2}", "{\"o\":{\"k\":1,\"k\":1}}", "{\"a\":tru}", "{\"a\":nul}",
        "{\"a\":\"unterminated}", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{1:2}", deep,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lss_append a = try_put(f, "json-1", NULL, "T", bad[i], NULL);
        if (a.rc != LSS_EJSON) {
            print_error("data #%zu '%.60s': %s, want EJSON\n", i, bad[i], lss_errname(a.rc));
            fail();
        }
        a = try_put(f, "json-1", NULL, "T", "{}", bad[i]);
        if (a.rc != LSS_EJSON) {
            print_error("metadata #%zu '%.60s': %s, want EJSON\n", i, bad[i], lss_errname(a.rc));
            fail();
        }
    }
    /* a raw NUL byte inside the text */
    lss_msg_in m = mk(NULL, "T", "{\"a\":\"x\"}", NULL);
    char nul[] = {'{', '"', 'a', '"', ':', '"', 'x', '\0', '"', '}'};
    m.data = nul;
    m.data_n = sizeof nul;
    lss_append a = mkreq(f, "json-1", &m, 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_EJSON);
    ASSERT_I64(version_of(f, "json-1"), -1);
    ASSERT_I64(message_count(f), 0);
    /* the edges that are valid */
    static char nest200[1024];
    o = (size_t)sprintf(nest200, "{\"a\":");
    for (int i = 0; i < 200; i++)
        nest200[o++] = '[';
    for (int i = 0; i < 200; i++)
        nest200[o++] = ']';
    nest200[o++] = '}';
    nest200[o] = 0;
    const char *good[] = {
        "{}", "{\"a\":-0}", "{\"a\":1e400}", "{\"a\":-1.5E-400}", "{\"a\":\"\\ud83d\\ude00\"}",
        "{\"\":\"\"}", "{\"a\":\"\\u0001\"}", "{\"a\":[{},[],\"\",0,false]}", nest200,
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        a = try_put(f, "json-2", NULL, "T", good[i], good[i]);
        if (a.rc != LSS_OK) {
            print_error("valid #%zu '%.60s': %s\n", i, good[i], lss_errname(a.rc));
            fail();
        }
    }
}

static void append_should_reject_an_empty_stream_or_type(void **state)
{
    fx *f = *state;
    lss_append a = try_put(f, "", NULL, "T", "{}", NULL);
    ASSERT_RC(f->c, a.rc, LSS_ENAME);
    lss_msg_in m = mk(NULL, "T", "{}", NULL);
    a = mkreq(f, NULL, &m, 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_ENAME);
    a = try_put(f, "s-1", NULL, "", "{}", NULL);
    ASSERT_RC(f->c, a.rc, LSS_ENAME);
    a = try_put(f, "s-1", NULL, NULL, "{}", NULL);
    ASSERT_RC(f->c, a.rc, LSS_ENAME);
    ASSERT_I64(message_count(f), 0);
    /* names are any bytes otherwise, wildcards and all */
    const char *names[] = {"a%b-1", "a_b-1", "x'); DROP TABLE messages;--", "-x", "x-", "*"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        PUT(f, names[i], names[i], "{}", NULL);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        rlist l = rd_stream(f, names[i], NULL);
        assert_int_equal(l.n, 1);
        ASSERT_SPAN(l.v[0].stream, l.v[0].stream_n, names[i]);
        ASSERT_SPAN(l.v[0].type, l.v[0].type_n, names[i]);
        rfree(&l);
    }
    rlist l = rd_stream(f, "axb-1", NULL);
    assert_int_equal(l.n, 0);
    rfree(&l);
}

static void api_should_reject_null_arguments_without_crashing(void **state)
{
    fx *f = *state;
    int soft = 0; /* every deviation is reported, then the test fails */
#define SOFT_RC(conn, expr, want)                                            \
    do {                                                                     \
        int sr_ = (expr);                                                    \
        if (sr_ != (want)) {                                                 \
            print_error("line %d: %s\n  returned %s, want %s\n", __LINE__,  \
                        #expr, lss_errname(sr_), lss_errname(want));         \
            soft++;                                                          \
        }                                                                    \
    } while (0)
    lss_msg_in m = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq(f, "n-1", &m, 1);
    SOFT_RC(NULL, lss_append_one(NULL, &a), LSS_EINVAL);
    SOFT_RC(NULL, lss_append_one(f->c, NULL), LSS_EINVAL);
    a = mkreq(f, "n-1", NULL, 1);
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    a = mkreq(f, "n-1", &m, 1);
    a.stream = NULL;
    a.stream_n = 3;
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    lss_msg_in mt = m;
    mt.type = NULL;
    mt.type_n = 3;
    a = mkreq(f, "n-1", &mt, 1);
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    lss_msg_in md = m;
    md.data = NULL;
    md.data_n = 0;
    a = mkreq(f, "n-1", &md, 1);
    int rc = lss_append_one(f->c, &a);
    assert_true(rc == LSS_EINVAL || rc == LSS_EJSON);
    md.data_n = 5;
    a = mkreq(f, "n-1", &md, 1);
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    lss_msg_in mm = m;
    mm.metadata_n = 4; /* NULL pointer with a length */
    a = mkreq(f, "n-1", &mm, 1);
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    lss_msg_in mi = m;
    mi.id_n = 36;
    a = mkreq(f, "n-1", &mi, 1);
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
    SOFT_RC(NULL, lss_append_many(NULL, &a, 1), LSS_EINVAL);
    SOFT_RC(NULL, lss_append_many(f->c, NULL, 1), LSS_EINVAL);
    if (message_count(f) != 0) {
        print_error("rejected appends stored %" PRId64 " messages\n", message_count(f));
        soft++;
    }

    lss_cursor *cur = NULL;
    const lss_ns_row *row;
    const char *ns;
    size_t ns_n;
    int64_t v;
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    SOFT_RC(NULL, lss_read_stream(NULL, f->ns, f->ns_n, "s", 1, NULL, &cur), LSS_EINVAL);
    SOFT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "s", 1, NULL, NULL), LSS_EINVAL);
    SOFT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, NULL, 4, NULL, &cur), LSS_EINVAL);
    SOFT_RC(f->c, lss_read_category(f->c, f->ns, f->ns_n, "s", 1, NULL, NULL), LSS_EINVAL);
    SOFT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "s", 1, NULL, 0, NULL), LSS_EINVAL);
    SOFT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "s", 1, NULL, 3, &cur), LSS_EINVAL);
    SOFT_RC(f->c, lss_stream_version(f->c, f->ns, f->ns_n, "s", 1, NULL), LSS_EINVAL);
    SOFT_RC(NULL, lss_stream_version(NULL, f->ns, f->ns_n, "s", 1, &v), LSS_EINVAL);
    SOFT_RC(f->c, lss_list_streams(f->c, f->ns, f->ns_n, "", 0, "", 0, 10, NULL), LSS_EINVAL);
    SOFT_RC(f->c, lss_list_streams(f->c, f->ns, f->ns_n, NULL, 2, "", 0, 10, &cur), LSS_EINVAL);
    SOFT_RC(f->c, lss_list_categories(f->c, f->ns, f->ns_n, NULL), LSS_EINVAL);
    SOFT_RC(f->c, lss_ns_list(f->c, NULL), LSS_EINVAL);
    SOFT_RC(NULL, lss_ns_list(NULL, &cur), LSS_EINVAL);
    SOFT_RC(f->c, lss_ns_info(f->c, f->ns, f->ns_n, NULL), LSS_EINVAL);
    SOFT_RC(NULL, lss_ns_info(NULL, f->ns, f->ns_n, &row), LSS_EINVAL);
    SOFT_RC(NULL, lss_ns_delete(NULL, f->ns, f->ns_n, NULL, NULL), LSS_EINVAL);
    SOFT_RC(NULL, lss_ns_create(NULL, "x", 1, NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL), LSS_EINVAL);
    SOFT_RC(f->c, lss_ns_create(f->c, "x", 1, NULL, 0, NULL, 0, NULL, sizeof tok, &tok_n, NULL),
              LSS_EINVAL);
    SOFT_RC(f->c, lss_ns_create(f->c, "x", 1, NULL, 0, NULL, 0, tok, sizeof tok, NULL, NULL),
              LSS_EINVAL);
    SOFT_RC(f->c, lss_ns_info(f->c, "x", 1, &row), LSS_ENOTFOUND);
    SOFT_RC(f->c, lss_authorize(f->c, NULL, 5, 0, &ns, &ns_n), LSS_EINVAL);
    SOFT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, NULL, &ns_n), LSS_EINVAL);
    SOFT_RC(NULL, lss_authorize(NULL, f->token, f->token_n, 0, &ns, &ns_n), LSS_EINVAL);
    const lss_message *msg;
    SOFT_RC(NULL, lss_cursor_next(NULL, &msg), LSS_EINVAL);
    const lss_stream_row *sr;
    SOFT_RC(NULL, lss_cursor_next_stream(NULL, &sr), LSS_EINVAL);
    const lss_category_row *cr;
    SOFT_RC(NULL, lss_cursor_next_category(NULL, &cr), LSS_EINVAL);
    SOFT_RC(NULL, lss_cursor_next_ns(NULL, &row), LSS_EINVAL);
    PUT(f, "n-1", "T", "{}", NULL);
    int64_t n1 = version_of(f, "n-1");
    SOFT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "n-1", 3, NULL, &cur), LSS_OK);
    SOFT_RC(NULL, lss_cursor_next(cur, NULL), LSS_EINVAL);
    lss_cursor_close(cur);
    lss_sub_opts so;
    lss_sub_opts_init(&so);
    so.kind = LSS_SUB_ALL;
    lss_sub *s = NULL;
    SOFT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, NULL, &s), LSS_EINVAL);
    SOFT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, &so, NULL), LSS_EINVAL);
    SOFT_RC(NULL, lss_subscribe(NULL, f->ns, f->ns_n, &so, &s), LSS_EINVAL);
    lss_poke pk;
    SOFT_RC(NULL, lss_sub_next(NULL, &pk), LSS_EINVAL);
    s = sub_open(f, LSS_SUB_ALL, NULL, 0);
    SOFT_RC(NULL, lss_sub_next(s, NULL), LSS_EINVAL);
    lss_sub_close(s);
    /* the session still works */
    const char *e = lss_errmsg(f->c);
    assert_non_null(e);
    ASSERT_I64(version_of(f, "n-1"), n1);
    /* last: a namespace pointer that is NULL with a length */
    a = mkreq_ns(NULL, 5, "n-1", &m, 1);
    SOFT_RC(f->c, lss_append_one(f->c, &a), LSS_EINVAL);
#undef SOFT_RC
    assert_int_equal(soft, 0);
}

static void append_many_should_give_each_request_its_own_result(void **state)
{
    fx *f = *state;
    const char *dup_id = "0190a5b4-7c3e-7def-8abc-0000000000d1";
    lss_append pre = try_put(f, "many-9", dup_id, "T", "{\"v\":1}", NULL);
    ASSERT_RC(f->c, pre.rc, LSS_OK);
    lss_msg_in one = mk(NULL, "T", "{}", NULL);
    lss_msg_in three[3] = {mk(NULL, "T", "{\"k\":0}", NULL), mk(NULL, "T", "{\"k\":1}", NULL),
                           mk(NULL, "T", "{\"k\":2}", NULL)};
    lss_msg_in badjson = mk(NULL, "T", "{", NULL);
    lss_msg_in dup = mk(dup_id, "T", "{\"v\":2}", NULL);
    lss_msg_in retry = mk(dup_id, "T", "{\"v\":1}", NULL);
    lss_append a[8];
    a[0] = mkreq(f, "many-1", &one, 1);
    a[0].flags = LSS_APPEND_EXPECT;
    a[0].expected_version = -1;
    a[1] = mkreq(f, "many-1", &one, 1);
    a[1].flags = LSS_APPEND_EXPECT;
    a[1].expected_version = 0;
    a[2] = mkreq(f, "many-2", &one, 1);
    a[2].flags = LSS_APPEND_EXPECT;
    a[2].expected_version = 5;
    a[3] = mkreq(f, "many-3", three, 3);
    a[4] = mkreq(f, "many-4", &badjson, 1);
    a[5] = mkreq(f, "many-5", &dup, 1);
    a[6] = mkreq(f, "many-1", &one, 1);
    a[6].flags = LSS_APPEND_EXPECT;
    a[6].expected_version = 0;
    a[7] = mkreq(f, "many-9", &retry, 1);
    ASSERT_RC(f->c, lss_append_many(f->c, a, 8), LSS_OK);
    const int want[8] = {LSS_OK,    LSS_OK,         LSS_EVERSION, LSS_OK,
                         LSS_EJSON, LSS_EDUPLICATE, LSS_EVERSION, LSS_OK};
    for (int i = 0; i < 8; i++)
        if (a[i].rc != want[i]) {
            print_error("a[%d].rc = %s, want %s\n", i, lss_errname(a[i].rc),
                        lss_errname(want[i]));
            fail();
        }
    ASSERT_I64(a[0].position, 0);
    ASSERT_I64(a[1].position, 1);
    assert_true(a[1].global_position > a[0].global_position);
    ASSERT_I64(a[2].actual_version, -1);
    ASSERT_I64(a[3].position, 2);
    assert_int_equal(a[4].bad_index, 0);
    assert_memory_equal(a[5].id, dup_id, 36);
    ASSERT_I64(a[6].actual_version, 1);
    ASSERT_I64(a[7].position, pre.position);
    ASSERT_I64(a[7].global_position, pre.global_position);
    assert_true(a[0].global_position != a[3].global_position &&
                a[1].global_position != a[3].global_position);
    ASSERT_I64(version_of(f, "many-1"), 1);
    ASSERT_I64(version_of(f, "many-2"), -1);
    ASSERT_I64(version_of(f, "many-3"), 2);
    ASSERT_I64(version_of(f, "many-4"), -1);
    ASSERT_I64(version_of(f, "many-5"), -1);
    ASSERT_I64(message_count(f), 1 + 2 + 3);

    /* many requests to many streams */
    static lss_append b[200];
    static char names[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "mm-%d", i % 50);
        b[i] = mkreq(f, names[i], &one, 1);
    }
    ASSERT_RC(f->c, lss_append_many(f->c, b, 200), LSS_OK);
    for (int i = 0; i < 200; i++) {
        ASSERT_RC(f->c, b[i].rc, LSS_OK);
        ASSERT_I64(b[i].position, i / 50);
    }
    rlist l = rd_cat(f, "mm", &(lss_read_opts){.struct_size = sizeof(lss_read_opts),
                                               .batch_size = -1});
    assert_int_equal(l.n, 200);
    rfree(&l);
}

static void append_batch_should_follow_the_batch_idempotency_rules(void **state)
{
    fx *f = *state;
    const char *id1 = "0190a5b4-7c3e-7def-8abc-0000000000b1";
    const char *id2 = "0190a5b4-7c3e-7def-8abc-0000000000b2";
    const char *id3 = "0190a5b4-7c3e-7def-8abc-0000000000b3";
    const char *id4 = "0190a5b4-7c3e-7def-8abc-0000000000b4";
    PUT(f, "wb-1", "T", "{}", NULL);
    lss_msg_in m[3] = {mk(id1, "A", "{\"k\":1}", NULL), mk(id2, "B", "{\"k\":2}", "{\"m\":2}"),
                       mk(id3, "C", "{\"k\":3}", NULL)};
    lss_append a = mkreq(f, "wb-1", m, 3);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 3);
    int64_t g3 = a.global_position;
    PUT(f, "wb-1", "T", "{}", NULL);
    int64_t count = message_count(f);

    /* the whole batch again, ids respelled, JSON-equal bodies: the original result */
    lss_msg_in r[3] = {mk("{0190A5B4-7C3E-7DEF-8ABC-0000000000B1}", "A", "{ \"k\" : 1 }", NULL),
                       mk(id2, "B", "{\"k\":2.0}", "{\"m\":2}"), mk(id3, "C", "{\"k\":3}", NULL)};
    a = mkreq(f, "wb-1", r, 3);
    a.flags = LSS_APPEND_EXPECT;
    a.expected_version = 0; /* not evaluated for a retry */
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 3);
    ASSERT_I64(a.global_position, g3);
    ASSERT_I64(message_count(f), count);

    /* a consecutive run that is a sub-range is a retry as well */
    a = mkreq(f, "wb-1", r + 1, 2);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 3);
    a = mkreq(f, "wb-1", r, 1);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    ASSERT_I64(a.position, 1);

    struct {
        lss_msg_in m[3];
        size_t n;
        const char *stream;
        const char *conflict, *conflict_alt;
    } dups[] = {
        /* order differs from the stored run */
        {{mk(id2, "B", "{\"k\":2}", "{\"m\":2}"), mk(id1, "A", "{\"k\":1}", NULL)}, 2, "wb-1", id2, NULL},
        /* not consecutive */
        {{mk(id1, "A", "{\"k\":1}", NULL), mk(id3, "C", "{\"k\":3}", NULL)}, 2, "wb-1", id1, NULL},
        /* a new id after known ones */
        {{mk(id2, "B", "{\"k\":2}", "{\"m\":2}"), mk(id4, "D", "{}", NULL)}, 2, "wb-1", id2, NULL},
        /* a new id before a known one */
        {{mk(id4, "D", "{}", NULL), mk(id1, "A", "{\"k\":1}", NULL)}, 2, "wb-1", id1, NULL},
        /* a message without an id */
        {{mk(id1, "A", "{\"k\":1}", NULL), mk(NULL, "B", "{\"k\":2}", "{\"m\":2}")}, 2, "wb-1", id1, NULL},
        /* other content */
        {{mk(id1, "A", "{\"k\":1}", NULL), mk(id2, "B", "{\"k\":2}", NULL)}, 2, "wb-1", id1, id2},
        /* other stream */
        {{mk(id1, "A", "{\"k\":1}", NULL), mk(id2, "B", "{\"k\":2}", "{\"m\":2}")}, 2, "wb-2", id1, NULL},
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        a = mkreq(f, dups[i].stream, dups[i].m, dups[i].n);
        int rc = lss_append_one(f->c, &a);
        if (rc != LSS_EDUPLICATE) {
            print_error("case %zu: %s, want EDUPLICATE\n", i, lss_errname(rc));
            fail();
        }
        if (memcmp(a.id, dups[i].conflict, 36) &&
            (!dups[i].conflict_alt || memcmp(a.id, dups[i].conflict_alt, 36))) {
            print_error("case %zu: conflicting id %.36s, want %s\n", i, a.id, dups[i].conflict);
            fail();
        }
    }
    ASSERT_I64(message_count(f), count);
    rlist l = rd_stream(f, "wb-1", NULL);
    for (size_t i = 0; i < l.n; i++)
        assert_false(l.v[i].id_n == 36 && !memcmp(l.v[i].id, id4, 36));
    rfree(&l);
    ASSERT_I64(version_of(f, "wb-2"), -1);
}

/* ================================================================= reads */

static lss_read_opts ropts(void)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    return o;
}

static void assert_positions(const rlist *l, const int64_t *want, size_t n)
{
    int ok = l->n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = l->v[i].pos == want[i];
    if (!ok) {
        char buf[512];
        size_t o = 0;
        for (size_t i = 0; i < l->n && o < sizeof buf - 32; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, " %" PRId64, l->v[i].pos);
        buf[o] = 0;
        print_error("positions [%s ] (%zu rows), want %zu rows\n", buf, l->n, n);
        fail();
    }
}

static void read_stream_should_return_messages_from_a_position(void **state)
{
    fx *f = *state;
    const char *types[] = {"A", "B", "A", "B", "C"};
    for (int i = 0; i < 5; i++) {
        char d[32];
        snprintf(d, sizeof d, "{\"i\":%d}", i);
        PUT(f, "rs-1", types[i], d, i == 2 ? "{\"m\":2}" : NULL);
        PUT(f, "rs-2", "X", "{}", NULL);
    }
    lss_read_opts o = ropts();
    o.position = 2;
    rlist l = rd_stream(f, "rs-1", &o);
    assert_positions(&l, (int64_t[]){2, 3, 4}, 3);
    ASSERT_SPAN(l.v[0].type, l.v[0].type_n, "A");
    assert_payload(l.v[0].data, l.v[0].data_n, "{\"i\":2}");
    assert_payload(l.v[0].meta, l.v[0].meta_n, "{\"m\":2}");
    assert_null(l.v[1].meta);
    ASSERT_I64(l.v[0].gpos, 5);
    ASSERT_I64(l.v[2].gpos, 9);
    rfree(&l);
    o.position = -5;
    l = rd_stream(f, "rs-1", &o);
    assert_int_equal(l.n, 5);
    rfree(&l);
    o.position = INT64_MIN;
    l = rd_stream(f, "rs-1", &o);
    assert_int_equal(l.n, 5);
    rfree(&l);
    o.position = 5;
    l = rd_stream(f, "rs-1", &o);
    assert_int_equal(l.n, 0);
    rfree(&l);
    o.position = INT64_MAX;
    l = rd_stream(f, "rs-1", &o);
    assert_int_equal(l.n, 0);
    rfree(&l);
    l = rd_stream(f, "rs-1", NULL);
    assert_int_equal(l.n, 5);
    rfree(&l);
    /* no such stream; a category-like name is an ordinary stream name */
    l = rd_stream(f, "rs-3", NULL);
    assert_int_equal(l.n, 0);
    rfree(&l);
    l = rd_stream(f, "rs", NULL);
    assert_int_equal(l.n, 0);
    rfree(&l);
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "", 0, NULL, &cur), LSS_ENAME);
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, NULL, 0, NULL, &cur), LSS_ENAME);
}

static void read_stream_should_select_by_global_position_when_asked(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 4; i++) {
        PUT(f, "gp-1", "T", "{}", NULL); /* gpos 1, 3, 5, 7 */
        PUT(f, "gp-2", "T", "{}", NULL);
    }
    lss_read_opts o = ropts();
    o.flags = LSS_READ_GLOBAL;
    o.global_position = 4;
    rlist l = rd_stream(f, "gp-1", &o);
    assert_positions(&l, (int64_t[]){2, 3}, 2);
    ASSERT_I64(l.v[0].gpos, 5);
    rfree(&l);
    o.position = 100; /* ignored with LSS_READ_GLOBAL */
    o.global_position = 1;
    l = rd_stream(f, "gp-1", &o);
    assert_int_equal(l.n, 4);
    rfree(&l);
    o.global_position = 8;
    l = rd_stream(f, "gp-1", &o);
    assert_int_equal(l.n, 0);
    rfree(&l);
    o.global_position = 7;
    o.batch_size = 1;
    l = rd_stream(f, "gp-1", &o);
    assert_positions(&l, (int64_t[]){3}, 1);
    rfree(&l);
}

static void read_should_honour_the_batch_size(void **state)
{
    fx *f = *state;
    static lss_msg_in m[LSS_BATCH_MAX];
    for (int i = 0; i < LSS_BATCH_MAX; i++)
        m[i] = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq(f, "bs-1", m, LSS_BATCH_MAX);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    PUT(f, "bs-1", "T", "{}", NULL);
    rlist l = rd_stream(f, "bs-1", NULL);
    assert_int_equal(l.n, 1000); /* default */
    rfree(&l);
    l = rd_cat(f, "bs", NULL);
    assert_int_equal(l.n, 1000);
    rfree(&l);
    lss_read_opts o = ropts();
    int64_t sizes[] = {1, 7, 0, -1, -100, 1001, 5000, INT64_MAX};
    size_t want[] = {1, 7, 1001, 1001, 1001, 1001, 1001, 1001};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        o.batch_size = sizes[i];
        l = rd_stream(f, "bs-1", &o);
        if (l.n != want[i]) {
            print_error("stream batch_size %" PRId64 ": %zu rows, want %zu\n", sizes[i], l.n,
                        want[i]);
            fail();
        }
        ASSERT_I64(l.v[0].pos, 0);
        rfree(&l);
        l = rd_cat(f, "bs", &o);
        if (l.n != want[i]) {
            print_error("category batch_size %" PRId64 ": %zu rows, want %zu\n", sizes[i], l.n,
                        want[i]);
            fail();
        }
        rfree(&l);
    }
    o.batch_size = 10;
    o.position = 995;
    l = rd_stream(f, "bs-1", &o);
    assert_positions(&l, (int64_t[]){995, 996, 997, 998, 999, 1000}, 6);
    rfree(&l);
}

static void read_should_count_only_matching_types_for_the_limit(void **state)
{
    fx *f = *state;
    const char *t[] = {"A", "B", "C"};
    for (int i = 0; i < 10; i++) {
        PUT(f, "ty-1", t[i % 3], "{}", NULL);
        PUT(f, "ty-2", t[i % 3], "{}", NULL);
    }
    lss_span only_b[] = {{"B", 1}};
    lss_span a_and_c[] = {{"A", 1}, {"C", 1}, {"A", 1}};
    lss_span none[] = {{"Z", 1}, {"b", 1}, {"BB", 2}};
    lss_read_opts o = ropts();
    o.types = only_b;
    o.types_n = 1;
    o.batch_size = 2;
    rlist l = rd_stream(f, "ty-1", &o);
    assert_positions(&l, (int64_t[]){1, 4}, 2);
    rfree(&l);
    o.position = 5;
    o.batch_size = -1;
    l = rd_stream(f, "ty-1", &o);
    assert_positions(&l, (int64_t[]){7}, 1);
    rfree(&l);
    o.position = 0;
    o.types = a_and_c;
    o.types_n = 3;
    l = rd_stream(f, "ty-1", &o);
    assert_positions(&l, (int64_t[]){0, 2, 3, 5, 6, 8, 9}, 7);
    rfree(&l);
    o.types = none;
    o.types_n = 3;
    l = rd_stream(f, "ty-1", &o);
    assert_int_equal(l.n, 0);
    rfree(&l);
    /* category reads: the limit counts matching messages of the category */
    o.types = only_b;
    o.types_n = 1;
    o.batch_size = 3;
    l = rd_cat(f, "ty", &o);
    assert_int_equal(l.n, 3);
    for (size_t i = 0; i < l.n; i++)
        ASSERT_SPAN(l.v[i].type, l.v[i].type_n, "B");
    ASSERT_I64(l.v[0].gpos, 3);
    ASSERT_I64(l.v[1].gpos, 4);
    ASSERT_I64(l.v[2].gpos, 9);
    rfree(&l);
    o.types = NULL;
    o.types_n = 2;
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "ty-1", 4, &o, &cur), LSS_EINVAL);
    ASSERT_RC(f->c, lss_read_category(f->c, f->ns, f->ns_n, "ty", 2, &o, &cur), LSS_EINVAL);
}

static void read_should_filter_by_time_when_asked(void **state)
{
    fx *f = *state;
    PUT(f, "tm-1", "T", "{}", NULL);
    sleep_ms(20);
    PUT(f, "tm-1", "T", "{}", NULL);
    sleep_ms(20);
    PUT(f, "tm-1", "T", "{}", NULL);
    rlist all = rd_stream(f, "tm-1", NULL);
    assert_int_equal(all.n, 3);
    assert_true(all.v[0].time_us < all.v[1].time_us && all.v[1].time_us < all.v[2].time_us);
    lss_read_opts o = ropts();
    o.flags = LSS_READ_SINCE;
    o.since_us = all.v[1].time_us;
    rlist l = rd_stream(f, "tm-1", &o);
    assert_positions(&l, (int64_t[]){1, 2}, 2);
    rfree(&l);
    o.flags = LSS_READ_UNTIL;
    o.until_us = all.v[1].time_us;
    l = rd_stream(f, "tm-1", &o);
    assert_positions(&l, (int64_t[]){0}, 1);
    rfree(&l);
    o.flags = LSS_READ_SINCE | LSS_READ_UNTIL;
    o.since_us = all.v[1].time_us;
    o.until_us = all.v[2].time_us;
    l = rd_stream(f, "tm-1", &o);
    assert_positions(&l, (int64_t[]){1}, 1);
    rfree(&l);
    l = rd_cat(f, "tm", &o);
    assert_positions(&l, (int64_t[]){1}, 1);
    rfree(&l);
    rfree(&all);
}

static void assert_streams(const rlist *l, const char *const *want, size_t n)
{
    int ok = l->n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = l->v[i].stream_n == strlen(want[i]) &&
             !memcmp(l->v[i].stream, want[i], l->v[i].stream_n);
    for (size_t i = 1; ok && i < l->n; i++)
        ok = l->v[i].gpos > l->v[i - 1].gpos;
    if (!ok) {
        print_error("got %zu rows, want %zu:\n", l->n, n);
        for (size_t i = 0; i < l->n; i++)
            print_error("  %s g%" PRId64 "\n", l->v[i].stream, l->v[i].gpos);
        fail();
    }
}

static void read_category_should_match_the_category_exactly(void **state)
{
    fx *f = *state;
    const char *streams[] = {"account-1", "account-2+x", "account",   "account:command-1",
                             "accountLog-1", "Account-1", "account-", "acc-1",
                             "account-1",  "a%b-1",       "a_b-1",    "axb-1"};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++)
        PUT(f, streams[i], "T", "{}", NULL);
    lss_read_opts o = ropts();
    rlist l = rd_cat(f, "account", &o);
    assert_streams(&l, (const char *[]){"account-1", "account-2+x", "account", "account-",
                                        "account-1"}, 5);
    ASSERT_I64(l.v[4].pos, 1);
    rfree(&l);
    l = rd_cat(f, "account:command", &o);
    assert_streams(&l, (const char *[]){"account:command-1"}, 1);
    rfree(&l);
    l = rd_cat(f, "accountLog", &o);
    assert_streams(&l, (const char *[]){"accountLog-1"}, 1);
    rfree(&l);
    l = rd_cat(f, "Account", &o);
    assert_streams(&l, (const char *[]){"Account-1"}, 1);
    rfree(&l);
    l = rd_cat(f, "acc", &o);
    assert_streams(&l, (const char *[]){"acc-1"}, 1);
    rfree(&l);
    l = rd_cat(f, "a_b", &o);
    assert_streams(&l, (const char *[]){"a_b-1"}, 1);
    rfree(&l);
    const char *nothing[] = {"account-1", "accoun", "ACCOUNT", "account:", "a%", "a_",
                             "%", "_", "*", "account-2"};
    for (size_t i = 0; i < sizeof nothing / sizeof nothing[0]; i++) {
        l = rd_cat(f, nothing[i], &o);
        if (l.n) {
            print_error("category '%s' returned %zu rows\n", nothing[i], l.n);
            fail();
        }
        rfree(&l);
    }
    l = rd_cat(f, "", &o);
    assert_int_equal(l.n, sizeof streams / sizeof streams[0]);
    for (size_t i = 0; i < l.n; i++)
        ASSERT_I64(l.v[i].gpos, (int64_t)i + 1);
    rfree(&l);
    /* position is a global position; 0 and 1 both mean the start */
    o.position = 0;
    l = rd_cat(f, "account", &o);
    assert_int_equal(l.n, 5);
    rfree(&l);
    o.position = 1;
    l = rd_cat(f, "account", &o);
    assert_int_equal(l.n, 5);
    rfree(&l);
    o.position = -7;
    l = rd_cat(f, "account", &o);
    assert_int_equal(l.n, 5);
    rfree(&l);
    o.position = 4;
    l = rd_cat(f, "account", &o);
    assert_streams(&l, (const char *[]){"account-", "account-1"}, 2);
    rfree(&l);
    o.position = 3;
    o.batch_size = 1;
    l = rd_cat(f, "account", &o);
    assert_streams(&l, (const char *[]){"account"}, 1);
    ASSERT_I64(l.v[0].gpos, 3);
    rfree(&l);
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_category(f->c, f->ns, f->ns_n, NULL, 0, NULL, &cur), LSS_OK);
    l = drain(cur);
    assert_int_equal(l.n, sizeof streams / sizeof streams[0]);
    rfree(&l);
}

static void read_category_should_filter_by_correlation(void **state)
{
    fx *f = *state;
    struct {
        const char *stream, *meta;
    } w[] = {
        {"wf-1", "{\"correlationStreamName\":\"workflow-abc\"}"},
        {"wf-2", "{\"x\":1,\"correlationStreamName\":\"workflow-xyz\"}"},
        {"wf-3", "{\"correlationStreamName\":\"process-123\"}"},
        {"wf-4", NULL},
        {"wf-5", "{\"other\":1}"},
        {"wf-6", "{\"correlationStreamName\":42}"},
        {"wf-7", "{\"correlationStreamName\":\"workflow\"}"},
        {"wf-8", "{\"x\":\"\\\"correlationStreamName\\\":\\\"workflow-1\\\"\"}"},
        {"wf-9", "{ \"correlationStreamName\" : \"work\\u0066low-q\" }"},
        {"wf-10", "{\"n\":{\"correlationStreamName\":\"workflow-z\"}}"},
        {"wf-11", "{\"correlationStreamName\":[\"workflow-1\"]}"},
        {"wf-12", "{\"correlationStreamName\":null}"},
        {"wf-13", "{\"correlationStreamName\":\"Workflow-1\"}"},
        {"other-1", "{\"correlationStreamName\":\"workflow-abc\"}"},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        PUT(f, w[i].stream, "T", "{}", w[i].meta);
    lss_read_opts o = ropts();
    o.correlation = "workflow";
    o.correlation_n = 8;
    rlist l = rd_cat(f, "wf", &o);
    assert_streams(&l, (const char *[]){"wf-1", "wf-2", "wf-7", "wf-9"}, 4);
    rfree(&l);
    o.batch_size = 2;
    l = rd_cat(f, "wf", &o);
    assert_streams(&l, (const char *[]){"wf-1", "wf-2"}, 2);
    rfree(&l);
    o.batch_size = 1000;
    o.position = 3;
    l = rd_cat(f, "wf", &o);
    assert_streams(&l, (const char *[]){"wf-7", "wf-9"}, 2);
    rfree(&l);
    o.position = 0;
    o.correlation = "process";
    o.correlation_n = 7;
    l = rd_cat(f, "wf", &o);
    assert_streams(&l, (const char *[]){"wf-3"}, 1);
    rfree(&l);
    const char *none[] = {"work", "workflow-abc", "WORKFLOW", "process-123", "-"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        o.correlation = none[i];
        o.correlation_n = strlen(none[i]);
        l = rd_cat(f, "wf", &o);
        if (l.n) {
            print_error("correlation '%s' returned %zu rows\n", none[i], l.n);
            fail();
        }
        rfree(&l);
    }
    o.correlation = "Workflow";
    o.correlation_n = 8;
    l = rd_cat(f, "", &o);
    assert_streams(&l, (const char *[]){"wf-13"}, 1);
    rfree(&l);
    o.correlation = "workflow";
    l = rd_cat(f, "", &o);
    assert_streams(&l, (const char *[]){"wf-1", "wf-2", "wf-7", "wf-9", "other-1"}, 5);
    rfree(&l);
    /* "" and NULL mean no filter */
    o.correlation = "";
    o.correlation_n = 0;
    l = rd_cat(f, "wf", &o);
    assert_int_equal(l.n, 13);
    rfree(&l);
    o.correlation = NULL;
    l = rd_cat(f, "wf", &o);
    assert_int_equal(l.n, 13);
    rfree(&l);
}

/* Members of a consumer group, in global-position order of the streams
 * written (one message each). */
static void assert_group(fx *f, const char *cat, int64_t size, const char *const *streams,
                         size_t n, const int *members)
{
    size_t covered = 0;
    for (int64_t m = 0; m < size; m++) {
        lss_read_opts o = ropts();
        o.flags = LSS_READ_GROUP;
        o.group_member = m;
        o.group_size = size;
        o.batch_size = -1;
        rlist l = rd_cat(f, cat, &o);
        size_t k = 0;
        int ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (members[i] != m)
                continue;
            if (k >= l.n || strcmp(l.v[k].stream, streams[i]))
                ok = 0;
            k++;
        }
        if (!ok || k != l.n) {
            print_error("category %s, size %" PRId64 ", member %" PRId64 ": got\n", cat, size, m);
            for (size_t i = 0; i < l.n; i++)
                print_error("  %s\n", l.v[i].stream);
            fail();
        }
        covered += l.n;
        rfree(&l);
    }
    size_t with_id = 0;
    for (size_t i = 0; i < n; i++)
        with_id += members[i] >= 0;
    assert_int_equal(covered, with_id);
}

static void read_category_should_split_consumer_groups_as_message_db_does(void **state)
{
    fx *f = *state;
    const char *cg[] = {"cg-0", "cg-1", "cg-2", "cg-3", "cg-4", "cg-5"};
    for (int i = 0; i < 6; i++)
        PUT(f, cg[i], "T", "{}", NULL);
    assert_group(f, "cg", 2, cg, 6, (const int[]){1, 0, 1, 0, 1, 1});
    const char *cgb[] = {"cgb-1", "cgb-2", "cgb-3", "cgb-4"};
    for (int i = 0; i < 4; i++)
        PUT(f, cgb[i], "T", "{}", NULL);
    assert_group(f, "cgb", 2, cgb, 4, (const int[]){0, 1, 0, 1});
    const char *pay[12];
    char payn[12][24];
    for (int i = 0; i < 12; i++) {
        snprintf(payn[i], sizeof payn[i], "payment-stream%d", i);
        pay[i] = payn[i];
        PUT(f, pay[i], "T", "{}", NULL);
    }
    assert_group(f, "payment", 3, pay, 12, (const int[]){1, 2, 2, 1, 2, 0, 1, 1, 0, 1, 0, 1});
    const char *acc[] = {"account-123", "account-123+deposit", "account-456", "account-42",
                         "account",     "account-",            "account-+x",  "account-123+456+789"};
    for (int i = 0; i < 8; i++)
        PUT(f, acc[i], "T", "{}", NULL);
    assert_group(f, "account", 2, acc, 8, (const int[]){1, 1, 1, 1, -1, -1, -1, 1});
    assert_group(f, "account", 3, acc, 8, (const int[]){1, 1, 1, 0, -1, -1, -1, 1});
    assert_group(f, "account", 4, acc, 8, (const int[]){3, 3, 3, 1, -1, -1, -1, 3});
    assert_group(f, "account", 1, acc, 8, (const int[]){0, 0, 0, 0, -1, -1, -1, 0});
    const char *misc[] = {"order-1", "user-abc"};
    PUT(f, "order-1", "T", "{}", NULL);
    PUT(f, "user-abc", "T", "{}", NULL);
    assert_group(f, "order", 4, misc, 1, (const int[]){2});
    assert_group(f, "user", 3, misc + 1, 1, (const int[]){2});
    /* the library's own utility agrees */
    int64_t m = -1;
    assert_int_equal(lss_group_member("payment-stream5", 15, 3, &m), 1);
    ASSERT_I64(m, 0);
    /* with position and limit: the limit counts messages of the member */
    lss_read_opts o = ropts();
    o.flags = LSS_READ_GROUP;
    o.group_member = 1;
    o.group_size = 2;
    o.batch_size = 2;
    rlist l = rd_cat(f, "cg", &o);
    assert_streams(&l, (const char *[]){"cg-0", "cg-2"}, 2);
    rfree(&l);
    o.position = 4;
    o.batch_size = -1;
    l = rd_cat(f, "cg", &o);
    assert_streams(&l, (const char *[]){"cg-4", "cg-5"}, 2);
    rfree(&l);
    /* grouping over every category */
    o.position = 0;
    o.group_member = 0;
    o.group_size = 1;
    l = rd_cat(f, "", &o);
    assert_int_equal(l.n, 6 + 4 + 12 + 5 + 2);
    rfree(&l);
    /* without the flag the member/size fields are ignored */
    o.flags = 0;
    o.group_member = 7;
    o.group_size = 2;
    l = rd_cat(f, "cg", &o);
    assert_int_equal(l.n, 6);
    rfree(&l);
}

static void read_category_should_reject_bad_consumer_groups(void **state)
{
    fx *f = *state;
    PUT(f, "cg-1", "T", "{}", NULL);
    int64_t bad[][2] = {{2, 2}, {3, 2}, {-1, 2}, {0, 0}, {0, -3}, {1, 0}, {INT64_MIN, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lss_read_opts o = ropts();
        o.flags = LSS_READ_GROUP;
        o.group_member = bad[i][0];
        o.group_size = bad[i][1];
        lss_cursor *cur = NULL;
        int rc = lss_read_category(f->c, f->ns, f->ns_n, "cg", 2, &o, &cur);
        if (rc != LSS_EINVAL) {
            print_error("member %" PRId64 " size %" PRId64 ": %s, want EINVAL\n", bad[i][0],
                        bad[i][1], lss_errname(rc));
            lss_cursor_close(cur);
            fail();
        }
    }
    /* no cursor was left open */
    rlist l = rd_cat(f, "cg", NULL);
    assert_int_equal(l.n, 1);
    rfree(&l);
}

static rlist rd_last(fx *f, const char *stream, const char *type, size_t type_n)
{
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, stream, strlen(stream), type, type_n,
                                  &cur),
              LSS_OK);
    return drain(cur);
}

static void read_last_should_return_the_highest_position_optionally_of_a_type(void **state)
{
    fx *f = *state;
    const char *types[] = {"A", "B", "A", "C"};
    for (int i = 0; i < 4; i++) {
        char d[32];
        snprintf(d, sizeof d, "{\"i\":%d}", i);
        PUT(f, "last-1", types[i], d, NULL);
        PUT(f, "last-2", "A", "{}", NULL);
    }
    rlist l = rd_last(f, "last-1", NULL, 0);
    assert_positions(&l, (int64_t[]){3}, 1);
    ASSERT_SPAN(l.v[0].type, l.v[0].type_n, "C");
    assert_payload(l.v[0].data, l.v[0].data_n, "{\"i\":3}");
    ASSERT_SPAN(l.v[0].stream, l.v[0].stream_n, "last-1");
    rfree(&l);
    l = rd_last(f, "last-1", "", 0);
    assert_positions(&l, (int64_t[]){3}, 1);
    rfree(&l);
    l = rd_last(f, "last-1", "A", 1);
    assert_positions(&l, (int64_t[]){2}, 1);
    ASSERT_I64(l.v[0].gpos, 5);
    rfree(&l);
    l = rd_last(f, "last-1", "B", 1);
    assert_positions(&l, (int64_t[]){1}, 1);
    rfree(&l);
    l = rd_last(f, "last-1", "Z", 1);
    assert_int_equal(l.n, 0);
    rfree(&l);
    l = rd_last(f, "last-1", "a", 1);
    assert_int_equal(l.n, 0);
    rfree(&l);
    l = rd_last(f, "last-3", NULL, 0);
    assert_int_equal(l.n, 0);
    rfree(&l);
    l = rd_last(f, "last", NULL, 0);
    assert_int_equal(l.n, 0);
    rfree(&l);
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "", 0, NULL, 0, &cur), LSS_ENAME);
}

static void stream_version_should_be_minus_one_then_the_last_position(void **state)
{
    fx *f = *state;
    ASSERT_I64(version_of(f, "ver-1"), -1);
    put_n(f, "ver-1", 3);
    ASSERT_I64(version_of(f, "ver-1"), 2);
    ASSERT_I64(version_of(f, "ver"), -1);
    ASSERT_I64(version_of(f, "ver-10"), -1);
    int64_t v;
    ASSERT_RC(f->c, lss_stream_version(f->c, f->ns, f->ns_n, "", 0, &v), LSS_ENAME);
    ASSERT_RC(f->c, lss_stream_version(f->c, "no-such-namespace", 17, "ver-1", 5, &v),
              LSS_ENOTFOUND);
}

typedef struct slist {
    char names[64][64];
    int64_t version[64], last[64];
    size_t n;
} slist;

static int list_streams(fx *f, const char *prefix, const char *after, int64_t limit, slist *out)
{
    lss_cursor *cur = NULL;
    int rc = lss_list_streams(f->c, f->ns, f->ns_n, prefix, strlen(prefix), after,
                              strlen(after), limit, &cur);
    if (rc != LSS_OK)
        return rc;
    memset(out, 0, sizeof *out);
    const lss_stream_row *r;
    while ((rc = lss_cursor_next_stream(cur, &r)) == LSS_ROW) {
        assert_true(out->n < 64 && r->stream.n < 64);
        memcpy(out->names[out->n], r->stream.p, r->stream.n);
        out->version[out->n] = r->version;
        out->last[out->n] = r->last_activity_us;
        out->n++;
    }
    lss_cursor_close(cur);
    ASSERT_RC(f->c, rc, LSS_DONE);
    return LSS_OK;
}

static void assert_names(const slist *l, const char *const *want, size_t n)
{
    int ok = l->n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = !strcmp(l->names[i], want[i]);
    if (!ok) {
        print_error("got %zu streams, want %zu:\n", l->n, n);
        for (size_t i = 0; i < l->n; i++)
            print_error("  '%s'%s\n", l->names[i], i < n && !strcmp(l->names[i], want[i]) ? "" : " *");
        fail();
    }
}

static void list_streams_should_match_prefixes_literally_in_byte_order(void **state)
{
    fx *f = *state;
    const char *names[] = {"a%b-1", "a%c-1", "a_b-1", "axb-1", "a%", "ab", "b-1",
                           "B-1",   "\xc3\xa9-1", "a",  "ab", "ab"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        PUT(f, names[i], "T", "{}", NULL);
    slist l;
    ASSERT_RC(f->c, list_streams(f, "", "", 1000, &l), LSS_OK);
    assert_names(&l, (const char *[]){"B-1", "a", "a%", "a%b-1", "a%c-1", "a_b-1", "ab",
                                      "axb-1", "b-1", "\xc3\xa9-1"}, 10);
    ASSERT_I64(l.version[6], 2);
    ASSERT_I64(l.version[0], 0);
    rlist ab = rd_stream(f, "ab", NULL);
    ASSERT_I64(l.last[6], ab.v[2].time_us);
    rfree(&ab);
    ASSERT_RC(f->c, list_streams(f, "a%", "", 100, &l), LSS_OK);
    assert_names(&l, (const char *[]){"a%", "a%b-1", "a%c-1"}, 3);
    ASSERT_RC(f->c, list_streams(f, "a_", "", 100, &l), LSS_OK);
    assert_names(&l, (const char *[]){"a_b-1"}, 1);
    ASSERT_RC(f->c, list_streams(f, "a", "", 100, &l), LSS_OK);
    assert_names(&l, (const char *[]){"a", "a%", "a%b-1", "a%c-1", "a_b-1", "ab", "axb-1"}, 7);
    ASSERT_RC(f->c, list_streams(f, "A", "", 100, &l), LSS_OK);
    assert_int_equal(l.n, 0);
    ASSERT_RC(f->c, list_streams(f, "%", "", 100, &l), LSS_OK);
    assert_int_equal(l.n, 0);
    ASSERT_RC(f->c, list_streams(f, "_", "", 100, &l), LSS_OK);
    assert_int_equal(l.n, 0);
    ASSERT_RC(f->c, list_streams(f, "\xc3", "", 100, &l), LSS_OK);
    assert_names(&l, (const char *[]){"\xc3\xa9-1"}, 1);
    ASSERT_RC(f->c, list_streams(f, "a", "a%c-1", 100, &l), LSS_OK);
    assert_names(&l, (const char *[]){"a_b-1", "ab", "axb-1"}, 3);
}

static void list_streams_should_page_with_after_exactly_once(void **state)
{
    fx *f = *state;
    int order[25];
    for (int i = 0; i < 25; i++)
        order[i] = (i * 7) % 25;
    for (int i = 0; i < 25; i++) {
        char s[16];
        snprintf(s, sizeof s, "pg-%02d", order[i]);
        PUT(f, s, "T", "{}", NULL);
    }
    PUT(f, "zz", "T", "{}", NULL);
    char after[64] = "";
    int seen = 0, pages = 0;
    for (;;) {
        slist l;
        ASSERT_RC(f->c, list_streams(f, "pg-", after, 7, &l), LSS_OK);
        if (l.n == 0)
            break;
        assert_true(l.n <= 7);
        pages++;
        for (size_t i = 0; i < l.n; i++) {
            char want[16];
            snprintf(want, sizeof want, "pg-%02d", seen);
            assert_string_equal(l.names[i], want);
            seen++;
        }
        snprintf(after, sizeof after, "%s", l.names[l.n - 1]);
    }
    assert_int_equal(seen, 25);
    assert_int_equal(pages, 4);
    slist l;
    ASSERT_RC(f->c, list_streams(f, "", "pg-10", 3, &l), LSS_OK);
    assert_names(&l, (const char *[]){"pg-11", "pg-12", "pg-13"}, 3);
    ASSERT_RC(f->c, list_streams(f, "", "pg-10x", 2, &l), LSS_OK);
    assert_names(&l, (const char *[]){"pg-11", "pg-12"}, 2);
    ASSERT_RC(f->c, list_streams(f, "", "pg-24", 10, &l), LSS_OK);
    assert_names(&l, (const char *[]){"zz"}, 1);
    ASSERT_RC(f->c, list_streams(f, "", "", 1, &l), LSS_OK);
    assert_names(&l, (const char *[]){"pg-00"}, 1);
    ASSERT_RC(f->c, list_streams(f, "", "zz", 10, &l), LSS_OK);
    assert_int_equal(l.n, 0);
    ASSERT_RC(f->c, list_streams(f, "", "", 1000, &l), LSS_OK);
    assert_int_equal(l.n, 26);
    int64_t bad[] = {0, -1, 1001, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_RC(f->c, list_streams(f, "", "", bad[i], &l), LSS_EINVAL);
}

static void list_categories_should_count_streams_and_messages(void **state)
{
    fx *f = *state;
    lss_cursor *cur = NULL;
    const lss_category_row *r;
    ASSERT_RC(f->c, lss_list_categories(f->c, f->ns, f->ns_n, &cur), LSS_OK);
    ASSERT_RC(f->c, lss_cursor_next_category(cur, &r), LSS_DONE);
    lss_cursor_close(cur);
    const char *streams[] = {"account-1", "account-1", "account", "account:command-1",
                             "accountLog-1", "Account-1", "account-2", "-x", "b%-1"};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++)
        PUT(f, streams[i], "T", "{}", NULL);
    struct {
        const char *cat;
        int64_t streams, messages;
    } want[] = {{"", 1, 1},
                {"Account", 1, 1},
                {"account", 3, 4},
                {"account:command", 1, 1},
                {"accountLog", 1, 1},
                {"b%", 1, 1}};
    ASSERT_RC(f->c, lss_list_categories(f->c, f->ns, f->ns_n, &cur), LSS_OK);
    size_t k = 0;
    int rc;
    while ((rc = lss_cursor_next_category(cur, &r)) == LSS_ROW) {
        if (k >= sizeof want / sizeof want[0]) {
            print_error("extra category '%.*s'\n", (int)r->category.n, r->category.p);
            fail();
        }
        ASSERT_SPAN(r->category.p, r->category.n, want[k].cat);
        ASSERT_I64(r->stream_count, want[k].streams);
        ASSERT_I64(r->message_count, want[k].messages);
        k++;
    }
    lss_cursor_close(cur);
    ASSERT_RC(f->c, rc, LSS_DONE);
    assert_int_equal(k, sizeof want / sizeof want[0]);
}

/* ================================================================ import */

static lss_import_rec irec(const char *id, const char *stream, const char *type, int64_t pos,
                           int64_t gpos, const char *data, const char *meta, int64_t time_us)
{
    lss_import_rec r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.id_n = id ? strlen(id) : 0;
    r.stream = stream;
    r.stream_n = stream ? strlen(stream) : 0;
    r.type = type;
    r.type_n = type ? strlen(type) : 0;
    r.position = pos;
    r.global_position = gpos;
    r.data = data;
    r.data_n = data ? strlen(data) : 0;
    r.metadata = meta;
    r.metadata_n = meta ? strlen(meta) : 0;
    r.time_us = time_us;
    return r;
}

static void import_should_keep_ids_positions_and_times_and_continue_after_them(void **state)
{
    fx *f = *state;
    lss_sub *all = sub_open(f, LSS_SUB_ALL, NULL, 0);
    lss_sub *st = sub_open(f, LSS_SUB_STREAM, "imp-1", 0);
    const int64_t t0 = 1700000000123456;
    lss_import_rec r[4] = {
        irec("{0190A5B4-7C3E-7DEF-8ABC-00000000F001}", "imp-1", "A", 0, 10, "{\"a\": 1}",
             "{\"m\":1}", t0),
        irec("0190a5b4-7c3e-7def-8abc-00000000f002", "imp-2", "B", 3, 15, NULL, NULL, t0 + 1),
        irec("0190a5b4-7c3e-7def-8abc-00000000f003", "imp-1", "C", 5, 20, "{}", NULL, t0 + 2),
        irec("0190a5b4-7c3e-7def-8abc-00000000f004", "imp-3", "D", 0, 2, "{}", NULL, t0 + 3),
    };
    size_t bad = 99;
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, r, 4, &bad), LSS_OK);
    rlist l = rd_stream(f, "imp-1", NULL);
    assert_positions(&l, (int64_t[]){0, 5}, 2);
    ASSERT_SPAN(l.v[0].id, l.v[0].id_n, "0190a5b4-7c3e-7def-8abc-00000000f001");
    ASSERT_I64(l.v[0].gpos, 10);
    ASSERT_I64(l.v[1].gpos, 20);
    ASSERT_I64(l.v[0].time_us, t0);
    ASSERT_I64(l.v[1].time_us, t0 + 2);
    ASSERT_SPAN(l.v[0].type, l.v[0].type_n, "A");
    assert_payload(l.v[0].data, l.v[0].data_n, "{\"a\": 1}");
    assert_payload(l.v[0].meta, l.v[0].meta_n, "{\"m\":1}");
    rfree(&l);
    l = rd_stream(f, "imp-2", NULL);
    assert_positions(&l, (int64_t[]){3}, 1);
    assert_null(l.v[0].data); /* imported without data */
    assert_null(l.v[0].meta);
    rfree(&l);
    l = rd_all(f);
    assert_int_equal(l.n, 4);
    ASSERT_I64(l.v[0].gpos, 2);
    ASSERT_I64(l.v[3].gpos, 20);
    rfree(&l);
    ASSERT_I64(version_of(f, "imp-1"), 5);
    ASSERT_I64(message_count(f), 4);
    /* imports publish nothing */
    EXPECT_SILENCE(all, 50);
    EXPECT_SILENCE(st, 50);
    /* appends continue after the highest position and global position */
    lss_append a = PUT(f, "imp-1", "T", "{}", NULL);
    ASSERT_I64(a.position, 6);
    assert_true(a.global_position > 20);
    EXPECT_POKE(st, "imp-1", 6, a.global_position);
    EXPECT_POKE(all, "imp-1", 6, a.global_position);
    a = try_put_ev(f, "imp-2", NULL, "{}", 3);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    ASSERT_I64(a.position, 4);
    /* a lower global position imported later does not move the counter back */
    lss_import_rec low = irec("0190a5b4-7c3e-7def-8abc-00000000f005", "imp-4", "E", 0, 1, "{}",
                              NULL, t0);
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, &low, 1, NULL), LSS_OK);
    lss_append b = PUT(f, "imp-4", "T", "{}", NULL);
    ASSERT_I64(b.position, 1);
    assert_true(b.global_position > a.global_position);
    /* an imported id is a known id for appends (7.4) */
    lss_append r1 = try_put(f, "imp-1", "0190a5b4-7c3e-7def-8abc-00000000f003", "C", "{}", NULL);
    ASSERT_RC(f->c, r1.rc, LSS_OK);
    ASSERT_I64(r1.position, 5);
    ASSERT_I64(r1.global_position, 20);
    r1 = try_put(f, "imp-1", "0190a5b4-7c3e-7def-8abc-00000000f003", "C", "{\"x\":1}", NULL);
    ASSERT_RC(f->c, r1.rc, LSS_EDUPLICATE);
    lss_sub_close(all);
    lss_sub_close(st);
}

static void import_should_refuse_conflicts_and_bad_records_and_store_nothing(void **state)
{
    fx *f = *state;
    const int64_t t0 = 1700000000000000;
    lss_import_rec base[2] = {
        irec("0190a5b4-7c3e-7def-8abc-00000000e001", "ic-1", "A", 0, 5, "{}", NULL, t0),
        irec("0190a5b4-7c3e-7def-8abc-00000000e002", "ic-1", "A", 1, 6, "{}", NULL, t0),
    };
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, base, 2, NULL), LSS_OK);
    const char *fresh = "0190a5b4-7c3e-7def-8abc-00000000e0ff";
    struct {
        lss_import_rec r[2];
        size_t n;
        const char *msg;
    } conflicts[] = {
        {{irec(fresh, "ic-2", "A", 0, 5, "{}", NULL, t0)}, 1, "global position already exists: 5"},
        {{irec(fresh, "ic-1", "A", 1, 9, "{}", NULL, t0)}, 1,
         "stream position already exists: ic-1 1"},
        {{irec("0190a5b4-7c3e-7def-8abc-00000000e001", "ic-2", "A", 0, 9, "{}", NULL, t0)}, 1,
         "message id already exists: 0190a5b4-7c3e-7def-8abc-00000000e001"},
        /* the global position is reported first */
        {{irec("0190a5b4-7c3e-7def-8abc-00000000e001", "ic-1", "A", 0, 5, "{}", NULL, t0)}, 1,
         "global position already exists: 5"},
        /* conflicts inside the batch, the first record would be fine alone */
        {{irec(fresh, "ic-3", "A", 0, 30, "{}", NULL, t0),
          irec("0190a5b4-7c3e-7def-8abc-00000000e0fe", "ic-4", "A", 0, 30, "{}", NULL, t0)},
         2, "global position already exists: 30"},
        {{irec(fresh, "ic-3", "A", 0, 30, "{}", NULL, t0),
          irec("0190a5b4-7c3e-7def-8abc-00000000e0fe", "ic-3", "A", 0, 31, "{}", NULL, t0)},
         2, "stream position already exists: ic-3 0"},
        {{irec(fresh, "ic-3", "A", 0, 30, "{}", NULL, t0),
          irec(fresh, "ic-4", "A", 0, 31, "{}", NULL, t0)},
         2, "message id already exists: 0190a5b4-7c3e-7def-8abc-00000000e0ff"},
    };
    for (size_t i = 0; i < sizeof conflicts / sizeof conflicts[0]; i++) {
        int rc = lss_import(f->c, f->ns, f->ns_n, conflicts[i].r, conflicts[i].n, NULL);
        if (rc != LSS_ECONFLICT || !strstr(lss_errmsg(f->c), conflicts[i].msg)) {
            print_error("conflict %zu: %s '%s', want ECONFLICT '%s'\n", i, lss_errname(rc),
                        lss_errmsg(f->c), conflicts[i].msg);
            fail();
        }
        ASSERT_I64(message_count(f), 2);
    }
    struct {
        lss_import_rec r[2];
        size_t n, bad;
    } rules[] = {
        {{irec(fresh, "ic-5", "A", -1, 40, "{}", NULL, t0)}, 1, 0},
        {{irec(fresh, "ic-5", "A", 0, 0, "{}", NULL, t0)}, 1, 0},
        {{irec(fresh, "ic-5", "A", 0, -5, "{}", NULL, t0)}, 1, 0},
        {{irec(fresh, "", "A", 0, 40, "{}", NULL, t0)}, 1, 0},
        {{irec(fresh, "ic-5", "", 0, 40, "{}", NULL, t0)}, 1, 0},
        {{irec(fresh, "ic-5", "A", 0, 40, "[1]", NULL, t0)}, 1, 0},
        {{irec(fresh, "ic-5", "A", 0, 40, "{}", "\"s\"", t0)}, 1, 0},
        {{irec(fresh, "ic-5", "A", 0, 40, "{", NULL, t0)}, 1, 0},
        {{irec(fresh, "ic-5", "A", 0, 40, "{}", NULL, t0),
          irec("not-a-uuid", "ic-5", "A", 1, 41, "{}", NULL, t0)}, 2, 1},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        size_t bad = 99;
        int rc = lss_import(f->c, f->ns, f->ns_n, rules[i].r, rules[i].n, &bad);
        if (rc >= 0 || rc == LSS_ECONFLICT || bad != rules[i].bad) {
            print_error("rule %zu: %s bad_index %zu, want an error at %zu\n", i,
                        lss_errname(rc), bad, rules[i].bad);
            fail();
        }
        ASSERT_I64(message_count(f), 2);
        ASSERT_I64(version_of(f, "ic-5"), -1);
    }
    lss_import_rec ok = irec(fresh, "ic-5", "A", 0, 40, "{}", NULL, t0);
    ASSERT_RC(f->c, lss_import(f->c, "no-such-namespace", 17, &ok, 1, NULL), LSS_ENOTFOUND);
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, &ok, 1, NULL), LSS_OK);
    ASSERT_I64(message_count(f), 3);
}

static void ns_clear_should_delete_every_message_and_restart_at_global_position_one(void **state)
{
    fx *f = *state;
    put_n(f, "clr-1", 3);
    put_n(f, "clr-2", 2);
    ASSERT_RC(f->c, lss_ns_clear(f->c, f->ns, f->ns_n), LSS_OK);
    ASSERT_I64(message_count(f), 0);
    ASSERT_I64(version_of(f, "clr-1"), -1);
    rlist l = rd_all(f);
    assert_int_equal(l.n, 0);
    rfree(&l);
    lss_append a = PUT(f, "clr-1", "T", "{}", NULL);
    ASSERT_I64(a.position, 0);
    ASSERT_I64(a.global_position, 1);
    /* the namespace and its token survive */
    const char *ns;
    size_t ns_n;
    ASSERT_RC(f->c, lss_authorize(f->c, f->token, f->token_n, 0, &ns, &ns_n), LSS_OK);
    ASSERT_RC(f->c, lss_ns_clear(f->c, "no-such-namespace", 17), LSS_ENOTFOUND);
    /* clear then import keeps the imported global positions */
    ASSERT_RC(f->c, lss_ns_clear(f->c, f->ns, f->ns_n), LSS_OK);
    lss_import_rec r = irec("0190a5b4-7c3e-7def-8abc-00000000c001", "clr-1", "A", 0, 1, "{}", NULL,
                            1700000000000000);
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, &r, 1, NULL), LSS_OK);
    a = PUT(f, "clr-1", "T", "{}", NULL);
    ASSERT_I64(a.position, 1);
    ASSERT_I64(a.global_position, 2);
}

/* A store may remember stream versions between appends (the SQLite
 * backend does); whatever changes a stream by another path must be seen
 * by the next append. */
static void stream_versions_should_follow_imports_clears_and_recreation(void **state)
{
    fx *f = *state;
    /* imported past the version an append saw */
    put_n(f, "sv-1", 2);
    lss_import_rec r = irec("0190a5b4-7c3e-7def-8abc-00000000a001", "sv-1", "A", 7, 1000,
                            "{}", NULL, 1700000000000000);
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, &r, 1, NULL), LSS_OK);
    lss_append a = try_put_ev(f, "sv-1", NULL, "{}", 1);
    ASSERT_RC(f->c, a.rc, LSS_EVERSION);
    ASSERT_I64(a.actual_version, 7);
    a = try_put_ev(f, "sv-1", NULL, "{}", 7);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    ASSERT_I64(a.position, 8);
    /* a refused import changes nothing */
    lss_import_rec bad[2] = {
        irec("0190a5b4-7c3e-7def-8abc-00000000a002", "sv-1", "A", 20, 2000, "{}", NULL,
             1700000000000000),
        irec("0190a5b4-7c3e-7def-8abc-00000000a003", "sv-1", "A", 8, 2001, "{}", NULL,
             1700000000000000),
    };
    size_t bad_index = 99;
    ASSERT_RC(f->c, lss_import(f->c, f->ns, f->ns_n, bad, 2, &bad_index), LSS_ECONFLICT);
    assert_int_equal(bad_index, 1);
    ASSERT_I64(PUT(f, "sv-1", "T", "{}", NULL).position, 9);
    /* cleared */
    ASSERT_RC(f->c, lss_ns_clear(f->c, f->ns, f->ns_n), LSS_OK);
    a = try_put_ev(f, "sv-1", NULL, "{}", -1);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    ASSERT_I64(a.position, 0);
    /* deleted and created again */
    put_n(f, "sv-2", 3);
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL), LSS_OK);
    ASSERT_RC(f->c, lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, NULL, 0, f->token,
                                  sizeof f->token, &f->token_n, NULL),
              LSS_OK);
    a = try_put_ev(f, "sv-2", NULL, "{}", -1);
    ASSERT_RC(f->c, a.rc, LSS_OK);
    ASSERT_I64(a.position, 0);
    ASSERT_I64(PUT(f, "sv-1", "T", "{}", NULL).position, 0);
}

/* Requests refused, retried or failed inside one group leave the stream
 * versions of what was stored, for that group and the next. */
static void stream_versions_should_not_move_for_refused_retried_or_failed_requests(void **state)
{
    fx *f = *state;
    const char *id0 = "0190a5b4-7c3e-7def-8abc-00000000b001";
    const char *id1 = "0190a5b4-7c3e-7def-8abc-00000000b002";
    ASSERT_I64(try_put(f, "sv-3", id0, "T", "{\"k\":0}", NULL).position, 0);
    ASSERT_I64(try_put(f, "sv-3", id1, "T", "{\"k\":1}", NULL).position, 1);
    /* one call, one group: a retry of an older message, a stale expected
     * version, a duplicate id, a batch that fails validation, then appends */
    lss_msg_in retry = mk(id0, "T", "{\"k\":0}", NULL);
    lss_msg_in plain = mk(NULL, "T", "{}", NULL);
    lss_msg_in dup = mk(id1, "T", "{\"other\":1}", NULL);
    lss_msg_in invalid = mk(NULL, "T", "[", NULL);
    lss_append a[6] = {
        mkreq(f, "sv-3", &retry, 1), mkreq(f, "sv-3", &plain, 1),
        mkreq(f, "sv-3", &dup, 1),   mkreq(f, "sv-3", &invalid, 1),
        mkreq(f, "sv-3", &plain, 1), mkreq(f, "sv-4", &plain, 1),
    };
    a[1].flags = LSS_APPEND_EXPECT;
    a[1].expected_version = 0;
    ASSERT_RC(f->c, lss_append_many(f->c, a, 6), LSS_OK);
    ASSERT_RC(f->c, a[0].rc, LSS_OK);
    ASSERT_I64(a[0].position, 0);
    ASSERT_RC(f->c, a[1].rc, LSS_EVERSION);
    ASSERT_I64(a[1].actual_version, 1);
    ASSERT_RC(f->c, a[2].rc, LSS_EDUPLICATE);
    ASSERT_RC(f->c, a[3].rc, LSS_EJSON);
    ASSERT_RC(f->c, a[4].rc, LSS_OK);
    ASSERT_I64(a[4].position, 2);
    ASSERT_RC(f->c, a[5].rc, LSS_OK);
    ASSERT_I64(a[5].position, 0);
    /* and the next group goes on from there */
    lss_append b = try_put_ev(f, "sv-3", NULL, "{}", 2);
    ASSERT_RC(f->c, b.rc, LSS_OK);
    ASSERT_I64(b.position, 3);
    ASSERT_I64(try_put(f, "sv-3", id1, "T", "{\"k\":1}", NULL).position, 1);
    ASSERT_I64(PUT(f, "sv-3", "T", "{}", NULL).position, 4);
    ASSERT_I64(version_of(f, "sv-3"), 4);
    /* a stream name too long to be remembered works the same */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    for (int i = 0; i < 3; i++) {
        b = try_put_ev(f, longname, NULL, "{}", i - 1);
        ASSERT_RC(f->c, b.rc, LSS_OK);
        ASSERT_I64(b.position, i);
    }
    /* many streams at once (more than a small cache holds) */
    char name[32];
    for (int round = 0; round < 3; round++)
        for (int s = 0; s < 600; s++) {
            snprintf(name, sizeof name, "sv-many-%d", s);
            b = try_put_ev(f, name, NULL, "{}", round - 1);
            if (b.rc != LSS_OK || b.position != round) {
                print_error("%s round %d: %s position %lld\n", name, round,
                            lss_errname(b.rc), (long long)b.position);
                fail();
            }
        }
}

/* ================================================================ cursors */

/* Runs fn(arg) on another thread; 1 if it finished within ms.  On 0 the
 * thread is still blocked: the caller must release what blocks it, then
 * call watchdog_join(). */
typedef struct watchdog {
    pthread_t th;
    void (*fn)(void *);
    void *arg;
    atomic_int done;
} watchdog;

static void *watchdog_main(void *p)
{
    watchdog *w = p;
    w->fn(w->arg);
    atomic_store(&w->done, 1);
    return NULL;
}

static int watchdog_run(watchdog *w, void (*fn)(void *), void *arg, int ms)
{
    w->fn = fn;
    w->arg = arg;
    atomic_store(&w->done, 0);
    assert_int_equal(pthread_create(&w->th, NULL, watchdog_main, w), 0);
    int64_t end = mono_ms() + ms;
    while (!atomic_load(&w->done) && mono_ms() < end)
        sleep_ms(2);
    return atomic_load(&w->done);
}

static void watchdog_join(watchdog *w)
{
    pthread_join(w->th, NULL);
}

typedef struct side_op {
    fx *f;
    lss_conn *c2;
    int what; /* 0: read the stream through c2; 1: append through c2 */
    const char *stream;
    int rc;
    size_t rows;
    int64_t position;
} side_op;

static void side_op_run(void *p)
{
    side_op *op = p;
    fx *f = op->f;
    if (op->what == 0) {
        lss_cursor *cur = NULL;
        op->rc = lss_read_stream(op->c2, f->ns, f->ns_n, op->stream, strlen(op->stream), NULL,
                                 &cur);
        if (op->rc == LSS_OK) {
            const lss_message *m;
            int rc;
            while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW)
                op->rows++;
            if (rc != LSS_DONE)
                op->rc = rc;
            lss_cursor_close(cur);
        }
    } else {
        lss_msg_in in = mk(NULL, "T", "{}", NULL);
        lss_append a = mkreq(f, op->stream, &in, 1);
        op->rc = lss_append_one(op->c2, &a);
        op->position = a.position;
    }
}

static void session_should_allow_one_open_cursor_at_a_time(void **state)
{
    fx *f = *state;
    put_n(f, "cur-1", 3);
    lss_cursor *cur = NULL, *other = NULL;
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "cur-1", 5, NULL, &cur), LSS_OK);
    const lss_message *m;
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_ROW);
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "cur-1", 5, NULL, &other),
              LSS_EMISUSE);
    ASSERT_RC(f->c, lss_read_category(f->c, f->ns, f->ns_n, "cur", 3, NULL, &other),
              LSS_EMISUSE);
    ASSERT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "cur-1", 5, NULL, 0, &other),
              LSS_EMISUSE);
    ASSERT_RC(f->c, lss_list_streams(f->c, f->ns, f->ns_n, "", 0, "", 0, 10, &other),
              LSS_EMISUSE);
    ASSERT_RC(f->c, lss_list_categories(f->c, f->ns, f->ns_n, &other), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_ns_list(f->c, &other), LSS_EMISUSE);
    /* the open cursor is unharmed */
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_ROW);
    ASSERT_I64(m->position, 1);
    /* another session is independent, also on the same namespace */
    lss_conn *c2 = NULL;
    ASSERT_RC(NULL, lss_conn_open(f->st.db, &c2), LSS_OK);
    side_op op = {f, c2, 0, "cur-1", 0, 0, 0};
    watchdog w;
    if (!watchdog_run(&w, side_op_run, &op, 5000)) {
        lss_cursor_close(cur); /* unblocks it */
        watchdog_join(&w);
        lss_conn_close(c2);
        print_error("a read on another session blocked while this session had a cursor "
                    "open on the namespace\n");
        fail();
    }
    watchdog_join(&w);
    ASSERT_RC(c2, op.rc, LSS_OK);
    assert_int_equal(op.rows, 3);
    lss_conn_close(c2);
    rlist l;
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_ROW);
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_DONE);
    lss_cursor_close(cur);
    l = rd_stream(f, "cur-1", NULL);
    assert_int_equal(l.n, 3);
    rfree(&l);
    /* closing a session closes its open cursor */
    lss_conn *c3 = NULL;
    ASSERT_RC(NULL, lss_conn_open(f->st.db, &c3), LSS_OK);
    ASSERT_RC(c3, lss_read_stream(c3, f->ns, f->ns_n, "cur-1", 5, NULL, &other), LSS_OK);
    lss_conn_close(c3);
}

static void cursor_next_functions_should_match_the_cursor_kind(void **state)
{
    fx *f = *state;
    put_n(f, "kind-1", 2);
    lss_cursor *cur = NULL;
    const lss_message *m;
    const lss_stream_row *sr;
    const lss_category_row *cr;
    const lss_ns_row *nr;
    /* message cursors: stream, category, last */
    for (int k = 0; k < 3; k++) {
        if (k == 0)
            ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "kind-1", 6, NULL, &cur),
                      LSS_OK);
        else if (k == 1)
            ASSERT_RC(f->c, lss_read_category(f->c, f->ns, f->ns_n, "kind", 4, NULL, &cur),
                      LSS_OK);
        else
            ASSERT_RC(f->c, lss_read_last(f->c, f->ns, f->ns_n, "kind-1", 6, NULL, 0, &cur),
                      LSS_OK);
        ASSERT_RC(f->c, lss_cursor_next_stream(cur, &sr), LSS_EMISUSE);
        ASSERT_RC(f->c, lss_cursor_next_category(cur, &cr), LSS_EMISUSE);
        ASSERT_RC(f->c, lss_cursor_next_ns(cur, &nr), LSS_EMISUSE);
        ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_ROW);
        lss_cursor_close(cur);
    }
    ASSERT_RC(f->c, lss_list_streams(f->c, f->ns, f->ns_n, "", 0, "", 0, 10, &cur), LSS_OK);
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_category(cur, &cr), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_ns(cur, &nr), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_stream(cur, &sr), LSS_ROW);
    ASSERT_SPAN(sr->stream.p, sr->stream.n, "kind-1");
    lss_cursor_close(cur);
    ASSERT_RC(f->c, lss_list_categories(f->c, f->ns, f->ns_n, &cur), LSS_OK);
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_stream(cur, &sr), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_ns(cur, &nr), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_category(cur, &cr), LSS_ROW);
    ASSERT_SPAN(cr->category.p, cr->category.n, "kind");
    lss_cursor_close(cur);
    ASSERT_RC(f->c, lss_ns_list(f->c, &cur), LSS_OK);
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_stream(cur, &sr), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_category(cur, &cr), LSS_EMISUSE);
    ASSERT_RC(f->c, lss_cursor_next_ns(cur, &nr), LSS_ROW);
    lss_cursor_close(cur);
}

static void cursor_should_read_a_snapshot_while_writers_go_on(void **state)
{
    fx *f = *state;
    put_n(f, "snap-1", 3);
    lss_cursor *cur = NULL;
    ASSERT_RC(f->c, lss_read_stream(f->c, f->ns, f->ns_n, "snap-1", 6, NULL, &cur), LSS_OK);
    const lss_message *m;
    ASSERT_RC(f->c, lss_cursor_next(cur, &m), LSS_ROW);
    lss_conn *c2 = NULL;
    ASSERT_RC(NULL, lss_conn_open(f->st.db, &c2), LSS_OK);
    side_op op = {f, c2, 1, "snap-1", 0, 0, 0};
    watchdog w;
    if (!watchdog_run(&w, side_op_run, &op, 5000)) {
        lss_cursor_close(cur); /* unblocks it */
        watchdog_join(&w);
        lss_conn_close(c2);
        print_error("an append on another session waited for an open read cursor\n");
        fail();
    }
    watchdog_join(&w);
    ASSERT_RC(c2, op.rc, LSS_OK);
    ASSERT_I64(op.position, 3);
    int rows = 1, rc;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW)
        rows++;
    ASSERT_RC(f->c, rc, LSS_DONE);
    assert_int_equal(rows, 3);
    lss_cursor_close(cur);
    /* read-your-writes once the cursor is gone */
    ASSERT_I64(version_of(f, "snap-1"), 3);
    rlist l = rd_stream(f, "snap-1", NULL);
    assert_int_equal(l.n, 4);
    rfree(&l);
    lss_conn_close(c2);
}

/* ============================================================= isolation */

static void namespaces_should_be_isolated(void **state)
{
    fx *f = *state;
    char nb[96], tok[LSS_TOKEN_MAX];
    size_t tok_n;
    unique_id(nb, sizeof nb, "iso");
    ASSERT_RC(f->c, lss_ns_create(f->c, nb, strlen(nb), NULL, 0, NULL, 0, tok, sizeof tok,
                                  &tok_n, NULL),
              LSS_OK);
    fx g = *f;
    snprintf(g.ns, sizeof g.ns, "%s", nb);
    g.ns_n = strlen(nb);
    lss_sub *sb = sub_open(&g, LSS_SUB_ALL, NULL, 0);
    const char *id = "0190a5b4-7c3e-7def-8abc-0000000150f1";
    lss_append a1 = try_put(f, "acct-1", id, "T", "{\"ns\":\"a\"}", NULL);
    ASSERT_RC(f->c, a1.rc, LSS_OK);
    EXPECT_SILENCE(sb, 100);
    PUT(f, "acct-1", "T", "{}", NULL);
    lss_append b1 = try_put(&g, "acct-1", id, "U", "{\"ns\":\"b\"}", NULL);
    ASSERT_RC(f->c, b1.rc, LSS_OK); /* the same id in another namespace is new */
    ASSERT_I64(b1.position, 0);
    ASSERT_I64(b1.global_position, 1);
    EXPECT_POKE(sb, "acct-1", 0, 1);
    ASSERT_I64(version_of(f, "acct-1"), 1);
    ASSERT_I64(version_of(&g, "acct-1"), 0);
    rlist l = rd_cat(&g, "acct", NULL);
    assert_int_equal(l.n, 1);
    assert_payload(l.v[0].data, l.v[0].data_n, "{\"ns\":\"b\"}");
    rfree(&l);
    slist sl;
    PUT(f, "only-in-a", "T", "{}", NULL);
    ASSERT_RC(f->c, list_streams(&g, "", "", 100, &sl), LSS_OK);
    assert_names(&sl, (const char *[]){"acct-1"}, 1);
    const lss_ns_row *row;
    ASSERT_RC(f->c, lss_ns_info(f->c, nb, strlen(nb), &row), LSS_OK);
    ASSERT_I64(row->message_count, 1);
    /* deleting one leaves the other intact */
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL), LSS_OK);
    ASSERT_I64(version_of(&g, "acct-1"), 0);
    lss_append b2 = PUT(&g, "acct-1", "T", "{}", NULL);
    ASSERT_I64(b2.global_position, 2);
    EXPECT_POKE(sb, "acct-1", 1, 2);
    lss_sub_close(sb);
    drop_ns(f->c, nb);
}

/* ========================================================= subscriptions */

static void subscribe_to_a_stream_should_replay_then_deliver_live_pokes(void **state)
{
    fx *f = *state;
    put_n(f, "ss-1", 3);
    PUT(f, "ss-2", "T", "{}", NULL);
    lss_sub *s = sub_open(f, LSS_SUB_STREAM, "ss-1", 0);
    int fd = lss_sub_fd(s);
    assert_true(fd >= 0);
    EXPECT_POKE(s, "ss-1", 0, 1);
    EXPECT_POKE(s, "ss-1", 1, 2);
    EXPECT_POKE(s, "ss-1", 2, 3);
    EXPECT_SILENCE(s, 50);
    struct pollfd pfd = {fd, POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 0), 0); /* nothing queued: not readable */
    PUT(f, "ss-2", "T", "{}", NULL);
    EXPECT_SILENCE(s, 50);
    lss_append a = PUT(f, "ss-1", "T", "{}", NULL);
    ASSERT_I64(a.global_position, 6);
    pfd.revents = 0;
    assert_int_equal(poll(&pfd, 1, 5000), 1); /* a poke is queued: readable */
    assert_true(pfd.revents & POLLIN);
    EXPECT_POKE(s, "ss-1", 3, 6);
    lss_msg_in m[3] = {mk(NULL, "T", "{}", NULL), mk(NULL, "T", "{}", NULL),
                       mk(NULL, "T", "{}", NULL)};
    lss_append b = mkreq(f, "ss-1", m, 3);
    ASSERT_RC(f->c, lss_append_one(f->c, &b), LSS_OK);
    EXPECT_POKE(s, "ss-1", 4, -1);
    EXPECT_POKE(s, "ss-1", 5, -1);
    EXPECT_POKE(s, "ss-1", 6, b.global_position);
    /* retries and failed writes publish nothing */
    lss_append r = try_put(f, "ss-1", "0190a5b4-7c3e-7def-8abc-00000000aaaa", "T", "{}", NULL);
    ASSERT_RC(f->c, r.rc, LSS_OK);
    EXPECT_POKE(s, "ss-1", 7, r.global_position);
    r = try_put(f, "ss-1", "0190a5b4-7c3e-7def-8abc-00000000aaaa", "T", "{}", NULL);
    ASSERT_RC(f->c, r.rc, LSS_OK);
    r = try_put(f, "ss-1", "0190a5b4-7c3e-7def-8abc-00000000aaaa", "T", "{\"x\":1}", NULL);
    ASSERT_RC(f->c, r.rc, LSS_EDUPLICATE);
    r = try_put_ev(f, "ss-1", NULL, "{}", 0);
    ASSERT_RC(f->c, r.rc, LSS_EVERSION);
    r = try_put(f, "ss-1", NULL, "T", "{", NULL);
    ASSERT_RC(f->c, r.rc, LSS_EJSON);
    EXPECT_SILENCE(s, 100);
    lss_sub_close(s);
}

static lss_sub *sub_open_opts(fx *f, const lss_sub_opts *o)
{
    lss_sub *s = NULL;
    ASSERT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, o, &s), LSS_OK);
    return s;
}

static void subscribe_to_a_stream_should_honour_position_and_replay_limit(void **state)
{
    fx *f = *state;
    put_n(f, "sp-1", 3);
    lss_sub *s2 = sub_open(f, LSS_SUB_STREAM, "sp-1", 2);
    lss_sub *s3 = sub_open(f, LSS_SUB_STREAM, "sp-1", 3);
    lss_sub *s10 = sub_open(f, LSS_SUB_STREAM, "sp-1", 10);
    EXPECT_POKE(s2, "sp-1", 2, 3);
    EXPECT_SILENCE(s2, 30);
    EXPECT_SILENCE(s3, 30);
    EXPECT_SILENCE(s10, 30);
    PUT(f, "sp-1", "T", "{}", NULL);
    EXPECT_POKE(s2, "sp-1", 3, 4);
    EXPECT_POKE(s3, "sp-1", 3, 4);
    EXPECT_SILENCE(s10, 30);
    static lss_msg_in m[7];
    for (int i = 0; i < 7; i++)
        m[i] = mk(NULL, "T", "{}", NULL);
    lss_append a = mkreq(f, "sp-1", m, 7);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    EXPECT_POKE(s10, "sp-1", 10, a.global_position);
    EXPECT_SILENCE(s10, 30);
    lss_sub_close(s2);
    lss_sub_close(s3);
    lss_sub_close(s10);

    put_n(f, "rm-1", 5);
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_STREAM;
    o.name = "rm-1";
    o.name_n = 4;
    o.replay_max = 0;
    lss_sub *none = sub_open_opts(f, &o);
    o.replay_max = 2;
    lss_sub *two = sub_open_opts(f, &o);
    EXPECT_SILENCE(none, 30);
    EXPECT_POKE(two, "rm-1", 0, -1);
    EXPECT_POKE(two, "rm-1", 1, -1);
    EXPECT_SILENCE(two, 30);
    PUT(f, "rm-1", "T", "{}", NULL);
    EXPECT_POKE(none, "rm-1", 5, -1);
    EXPECT_POKE(two, "rm-1", 5, -1); /* beyond the window, 2..4 are not poked */
    lss_sub_close(none);
    lss_sub_close(two);

    /* the default window is 1000; -1 is unlimited */
    static lss_msg_in big[LSS_BATCH_MAX];
    for (int i = 0; i < LSS_BATCH_MAX; i++)
        big[i] = mk(NULL, "T", "{}", NULL);
    a = mkreq(f, "rw-1", big, LSS_BATCH_MAX);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    a = mkreq(f, "rw-1", big, 500);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_STREAM;
    o.name = "rw-1";
    o.name_n = 4;
    lss_sub *dflt = sub_open_opts(f, &o);
    o.replay_max = -1;
    lss_sub *all = sub_open_opts(f, &o);
    for (int i = 0; i < 1000; i++)
        EXPECT_POKE(dflt, "rw-1", i, -1);
    EXPECT_SILENCE(dflt, 30);
    for (int i = 0; i < 1500; i++)
        EXPECT_POKE(all, "rw-1", i, -1);
    EXPECT_SILENCE(all, 30);
    PUT(f, "rw-1", "T", "{}", NULL);
    EXPECT_POKE(dflt, "rw-1", 1500, -1);
    EXPECT_POKE(all, "rw-1", 1500, -1);
    lss_sub_close(dflt);
    lss_sub_close(all);
}

static void subscribe_to_a_category_should_filter_by_category_and_position(void **state)
{
    fx *f = *state;
    const char *pre[] = {"cs-1", "cs-2", "csx-1", "cs:y-1", "cs"};
    for (int i = 0; i < 5; i++)
        PUT(f, pre[i], "T", "{}", NULL);
    lss_sub *s = sub_open(f, LSS_SUB_CATEGORY, "cs", 0);
    lss_sub *late = sub_open(f, LSS_SUB_CATEGORY, "cs", 10);
    lss_sub *mid = sub_open(f, LSS_SUB_CATEGORY, "cs", 2);
    EXPECT_POKE(s, "cs-1", 0, 1);
    EXPECT_POKE(s, "cs-2", 0, 2);
    EXPECT_POKE(s, "cs", 0, 5);
    EXPECT_SILENCE(s, 30);
    EXPECT_POKE(mid, "cs-2", 0, 2);
    EXPECT_POKE(mid, "cs", 0, 5);
    EXPECT_SILENCE(late, 30);
    PUT(f, "cs-3", "T", "{}", NULL);   /* 6 */
    PUT(f, "csx-2", "T", "{}", NULL);  /* 7 */
    PUT(f, "cs-1", "T", "{}", NULL);   /* 8 */
    PUT(f, "cs:y-2", "T", "{}", NULL); /* 9 */
    PUT(f, "cs-4", "T", "{}", NULL);   /* 10 */
    EXPECT_POKE(s, "cs-3", 0, 6);
    EXPECT_POKE(s, "cs-1", 1, 8);
    EXPECT_POKE(s, "cs-4", 0, 10);
    EXPECT_SILENCE(s, 30);
    EXPECT_POKE(mid, "cs-3", 0, 6);
    EXPECT_POKE(mid, "cs-1", 1, 8);
    EXPECT_POKE(mid, "cs-4", 0, 10);
    EXPECT_POKE(late, "cs-4", 0, 10);
    EXPECT_SILENCE(late, 30);
    lss_sub_close(s);
    lss_sub_close(mid);
    lss_sub_close(late);
}

static void subscribe_to_a_category_should_honour_the_consumer_group(void **state)
{
    fx *f = *state;
    PUT(f, "cg-0", "T", "{}", NULL);
    PUT(f, "cg-1", "T", "{}", NULL);
    PUT(f, "cg-2", "T", "{}", NULL);
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_CATEGORY;
    o.name = "cg";
    o.name_n = 2;
    o.group_size = 2;
    o.group_member = 0;
    lss_sub *m0 = sub_open_opts(f, &o);
    o.group_member = 1;
    lss_sub *m1 = sub_open_opts(f, &o);
    EXPECT_POKE(m0, "cg-1", 0, 2);
    EXPECT_SILENCE(m0, 30);
    EXPECT_POKE(m1, "cg-0", 0, 1);
    EXPECT_POKE(m1, "cg-2", 0, 3);
    EXPECT_SILENCE(m1, 30);
    const char *live[] = {"cg-3", "cg-4", "cg", "cg-", "cg-+x", "cgx-1", "cg-5", "cg-3+a"};
    for (int i = 0; i < 8; i++)
        PUT(f, live[i], "T", "{}", NULL);
    EXPECT_POKE(m0, "cg-3", 0, 4);
    EXPECT_POKE(m0, "cg-3+a", 0, 11);
    EXPECT_SILENCE(m0, 30);
    EXPECT_POKE(m1, "cg-4", 0, 5);
    EXPECT_POKE(m1, "cg-5", 0, 10);
    EXPECT_SILENCE(m1, 30);
    lss_sub_close(m0);
    lss_sub_close(m1);
}

static void subscribe_to_all_should_not_replay_and_should_deliver_every_write(void **state)
{
    fx *f = *state;
    PUT(f, "a-1", "T", "{}", NULL);
    PUT(f, "b-1", "T", "{}", NULL);
    lss_sub *s = sub_open(f, LSS_SUB_ALL, NULL, 0);
    lss_sub *late = sub_open(f, LSS_SUB_ALL, NULL, 10);
    EXPECT_SILENCE(s, 50);
    PUT(f, "c-1", "T", "{}", NULL);
    lss_msg_in m[2] = {mk(NULL, "T", "{}", NULL), mk(NULL, "T", "{}", NULL)};
    lss_append a = mkreq(f, "a-1", m, 2);
    ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK);
    PUT(f, "x", "T", "{}", NULL);
    EXPECT_POKE(s, "c-1", 0, 3);
    EXPECT_POKE(s, "a-1", 1, -1);
    EXPECT_POKE(s, "a-1", 2, a.global_position);
    EXPECT_POKE(s, "x", 0, a.global_position + 1);
    for (int i = 0; i < 5; i++)
        PUT(f, "d-1", "T", "{}", NULL);
    for (int i = 0; i < 5; i++)
        EXPECT_POKE(s, "d-1", i, -1);
    EXPECT_SILENCE(s, 30);
    /* gpos 7..11 were written; the late one starts at 10 */
    EXPECT_POKE(late, "d-1", 3, 10);
    EXPECT_POKE(late, "d-1", 4, 11);
    EXPECT_SILENCE(late, 30);
    lss_sub_close(s);
    lss_sub_close(late);
}

static void subscribe_should_reject_bad_options(void **state)
{
    fx *f = *state;
    struct {
        int kind;
        const char *name;
        int64_t member, size;
    } bad[] = {
        {0, "s-1", 0, 0},           {4, "s-1", 0, 0},          {-1, NULL, 0, 0},
        {LSS_SUB_STREAM, NULL, 0, 0}, {LSS_SUB_STREAM, "", 0, 0}, {LSS_SUB_CATEGORY, "", 0, 0},
        {LSS_SUB_CATEGORY, "c", 2, 2}, {LSS_SUB_CATEGORY, "c", -1, 2},
        {LSS_SUB_CATEGORY, "c", 0, -1}, {LSS_SUB_CATEGORY, "c", 1, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lss_sub_opts o;
        lss_sub_opts_init(&o);
        o.kind = bad[i].kind;
        o.name = bad[i].name;
        o.name_n = bad[i].name ? strlen(bad[i].name) : 0;
        o.group_member = bad[i].member;
        o.group_size = bad[i].size;
        lss_sub *s = NULL;
        int rc = lss_subscribe(f->c, f->ns, f->ns_n, &o, &s);
        if (rc != LSS_EINVAL) {
            print_error("case %zu: %s, want EINVAL\n", i, lss_errname(rc));
            lss_sub_close(s);
            fail();
        }
    }
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_STREAM;
    o.name = "s-1";
    o.name_n = 3;
    lss_sub *s = NULL;
    ASSERT_RC(f->c, lss_subscribe(f->c, "no-such-ns", 10, &o, &s), LSS_ENOTFOUND);
    /* a group of one, and 0/0 meaning no grouping, are fine */
    o.kind = LSS_SUB_CATEGORY;
    o.name = "c";
    o.name_n = 1;
    o.group_member = 0;
    o.group_size = 1;
    ASSERT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, &o, &s), LSS_OK);
    lss_sub_close(s);
    o.group_size = 0;
    ASSERT_RC(f->c, lss_subscribe(f->c, f->ns, f->ns_n, &o, &s), LSS_OK);
    lss_sub_close(s);
}

typedef struct racer {
    lss_db *db;
    const char *ns;
    size_t ns_n;
    int n;
    int many_streams;
    atomic_int acked;
    atomic_int done;
    atomic_int go; /* set by the subscriber right before lss_subscribe */
    int failed;
} racer;

static void *race_writer(void *arg)
{
    racer *r = arg;
    lss_conn *c = NULL;
    if (lss_conn_open(r->db, &c) != LSS_OK) {
        r->failed = -1;
        atomic_store(&r->done, 1);
        return NULL;
    }
    for (int i = 0; i < r->n; i++) {
        char stream[32];
        snprintf(stream, sizeof stream, "race-%d", r->many_streams ? i % 10 : 1);
        lss_msg_in m = mk(NULL, "T", "{}", NULL);
        lss_append a = mkreq_ns(r->ns, r->ns_n, stream, &m, 1);
        int rc = lss_append_one(c, &a);
        if (rc != LSS_OK) {
            r->failed = rc;
            break;
        }
        atomic_store(&r->acked, i + 1);
        /* pause after a quarter so that the rest races the subscribe */
        while (i + 1 == r->n / 4 && !atomic_load(&r->go))
            sleep_ms(1);
    }
    lss_conn_close(c);
    atomic_store(&r->done, 1);
    return NULL;
}

/* kind: LSS_SUB_STREAM (race-1), LSS_SUB_CATEGORY (race-*), LSS_SUB_ALL. */
static void race_subscribe_against_writer(fx *f, int kind)
{
    int n = store_kind() == KIND_MEMORY ? 2000 : 400;
    racer r;
    memset(&r, 0, sizeof r);
    r.db = f->st.db;
    r.ns = f->ns;
    r.ns_n = f->ns_n;
    r.n = n;
    r.many_streams = kind != LSS_SUB_STREAM;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_writer, &r), 0);
    int64_t deadline = mono_ms() + 60000;
    while (atomic_load(&r.acked) < n / 4 && !atomic_load(&r.done) && mono_ms() < deadline)
        sleep_ms(1);
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = kind;
    o.name = kind == LSS_SUB_STREAM ? "race-1" : kind == LSS_SUB_CATEGORY ? "race" : NULL;
    o.name_n = o.name ? strlen(o.name) : 0;
    o.replay_max = -1;
    lss_sub *s = NULL;
    atomic_store(&r.go, 1);
    int src = lss_subscribe(f->c, f->ns, f->ns_n, &o, &s);
    int k = atomic_load(&r.acked); /* writes from index k+1 on began after subscribe */
    poke *got = calloc((size_t)n + 16, sizeof *got);
    assert_non_null(got);
    size_t ng = 0;
    int err = LSS_OK;
    int64_t quiet_since = -1;
    while (src == LSS_OK && mono_ms() < deadline) {
        poke p;
        int rc = sub_wait(s, &p, 100);
        if (rc == LSS_ROW) {
            if (ng < (size_t)n + 16)
                got[ng] = p;
            ng++;
            quiet_since = -1;
            continue;
        }
        if (rc != LSS_AGAIN) {
            err = rc;
            break;
        }
        if (atomic_load(&r.done)) {
            if (quiet_since < 0)
                quiet_since = mono_ms();
            else if (mono_ms() - quiet_since > 500)
                break;
        }
    }
    pthread_join(th, NULL);
    lss_sub_close(s);
    if (src != LSS_OK || r.failed != LSS_OK || err != LSS_OK || atomic_load(&r.acked) != n)
        free(got); /* about to fail */
    ASSERT_RC(f->c, src, LSS_OK);
    ASSERT_RC(NULL, r.failed, LSS_OK);
    ASSERT_RC(NULL, err, LSS_OK);
    assert_int_equal(atomic_load(&r.acked), n);
    rlist l;
    lss_read_opts ro = ropts();
    ro.batch_size = -1;
    if (kind == LSS_SUB_STREAM)
        l = rd_stream(f, "race-1", &ro);
    else if (kind == LSS_SUB_CATEGORY)
        l = rd_cat(f, "race", &ro);
    else
        l = rd_all(f);
    char why[512] = "";
    size_t first = 0;
    if (l.n != (size_t)n) {
        snprintf(why, sizeof why, "%zu messages stored for %d writes", l.n, n);
    } else if (kind == LSS_SUB_ALL) {
        /* no replay: a suffix of the writes, covering all that began after
         * subscribe returned (none when the writer had already finished) */
        if (ng > l.n)
            snprintf(why, sizeof why, "%zu pokes for %zu writes", ng, l.n);
        else if ((first = l.n - ng) > (size_t)k + 1)
            snprintf(why, sizeof why,
                     "lost pokes: the first poke is write #%zu, subscribe returned at #%d", first,
                     k);
    } else if (ng != l.n) {
        snprintf(why, sizeof why, "%zu pokes for %zu messages (subscribed after %d)", ng, l.n, k);
    }
    for (size_t i = 0; !why[0] && i < ng; i++) {
        const rmsg *m = &l.v[first + i];
        if (got[i].gpos != m->gpos || got[i].pos != m->pos || strcmp(got[i].stream, m->stream))
            snprintf(why, sizeof why,
                     "poke #%zu is %s@%" PRId64 " g%" PRId64 ", want %s@%" PRId64 " g%" PRId64
                     " (subscribed after %d)", i, got[i].stream, got[i].pos, got[i].gpos,
                     m->stream, m->pos, m->gpos, k);
    }
    rfree(&l);
    free(got);
    if (why[0]) {
        print_error("%s\n", why);
        fail();
    }
}

static void stream_subscription_should_lose_and_repeat_nothing_when_writes_race(void **state)
{
    race_subscribe_against_writer(*state, LSS_SUB_STREAM);
}

static void category_subscription_should_lose_and_repeat_nothing_when_writes_race(void **state)
{
    race_subscribe_against_writer(*state, LSS_SUB_CATEGORY);
}

static void all_subscription_should_lose_and_repeat_nothing_when_writes_race(void **state)
{
    race_subscribe_against_writer(*state, LSS_SUB_ALL);
}

static void subscription_should_go_silent_when_its_namespace_is_deleted(void **state)
{
    fx *f = *state;
    put_n(f, "del-1", 2);
    lss_sub *st = sub_open(f, LSS_SUB_STREAM, "del-1", 0);
    lss_sub *all = sub_open(f, LSS_SUB_ALL, NULL, 0);
    lss_sub *cat = sub_open(f, LSS_SUB_CATEGORY, "del", 0);
    EXPECT_POKE(st, "del-1", 0, 1);
    EXPECT_POKE(st, "del-1", 1, 2);
    EXPECT_POKE(cat, "del-1", 0, 1);
    EXPECT_POKE(cat, "del-1", 1, 2);
    ASSERT_RC(f->c, lss_ns_delete(f->c, f->ns, f->ns_n, NULL, NULL), LSS_OK);
    EXPECT_SILENCE(st, 50);
    EXPECT_SILENCE(all, 50);
    /* a namespace re-created with the same id never feeds them */
    ASSERT_RC(f->c, lss_ns_create(f->c, f->ns, f->ns_n, NULL, 0, NULL, 0, f->token,
                                  sizeof f->token, &f->token_n, NULL),
              LSS_OK);
    put_n(f, "del-1", 4);
    EXPECT_SILENCE(st, 100);
    EXPECT_SILENCE(all, 50);
    EXPECT_SILENCE(cat, 50);
    /* a new subscription on the new namespace works */
    lss_sub *fresh = sub_open(f, LSS_SUB_STREAM, "del-1", 0);
    for (int i = 0; i < 4; i++)
        EXPECT_POKE(fresh, "del-1", i, i + 1);
    lss_sub_close(fresh);
    lss_sub_close(st);
    lss_sub_close(all);
    lss_sub_close(cat);
}

static void subscription_should_overflow_rather_than_skip_when_it_falls_behind(void **state)
{
    fx *f = *state;
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_STREAM;
    o.name = "of-1";
    o.name_n = 4;
    o.queue_bytes = 4096;
    lss_sub *s = sub_open_opts(f, &o);
    lss_sub *other = sub_open(f, LSS_SUB_STREAM, "of-2", 0);
    static lss_msg_in m[LSS_BATCH_MAX];
    for (int i = 0; i < LSS_BATCH_MAX; i++)
        m[i] = mk(NULL, "T", "{}", NULL);
    int batches = 50;
    for (int b = 0; b < batches; b++) {
        lss_append a = mkreq(f, "of-1", m, LSS_BATCH_MAX);
        ASSERT_RC(f->c, lss_append_one(f->c, &a), LSS_OK); /* writers are unaffected */
    }
    PUT(f, "of-2", "T", "{}", NULL);
    EXPECT_POKE(other, "of-2", 0, -1); /* other subscribers are unaffected */
    int64_t next = 0;
    int rc;
    for (;;) {
        lss_poke p;
        rc = lss_sub_next(s, &p);
        if (rc != LSS_ROW)
            break;
        if (p.position != next) {
            print_error("poke %" PRId64 " after %" PRId64 ": skipped silently\n", p.position,
                        next - 1);
            fail();
        }
        next++;
        if (next > (int64_t)batches * LSS_BATCH_MAX)
            break;
    }
    if (rc != LSS_EOVERFLOW) {
        print_error("after %" PRId64 " pokes: %s, want EOVERFLOW\n", next, lss_errname(rc));
        fail();
    }
    lss_sub_close(s);
    lss_sub_close(other);
}

/* ================================================================== main */

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_should_accept_the_memory_url),
        cmocka_unit_test(memory_stores_should_be_private),
        cmocka_unit_test(open_should_create_a_missing_data_directory_and_keep_data),
        cmocka_unit_test(open_should_fail_cleanly_when_the_path_is_a_regular_file),
        cmocka_unit_test(open_should_reject_null_arguments),
        cmocka_unit_test(options_init_should_fill_the_documented_defaults),
        cmocka_unit_test(open_should_create_the_default_namespace_only_when_asked),
        cmocka_unit_test(open_should_name_the_registry_after_the_metadata_file_option),
        cmocka_unit_test(store_should_allocate_only_through_the_given_allocator),
        T(ns_create_should_store_the_given_token),
        T(ns_create_should_generate_a_well_formed_token),
        T(ns_create_should_reject_a_token_for_another_namespace),
        T(ns_create_should_reject_unparseable_tokens),
        T(ns_create_should_reject_an_existing_id),
        T(ns_create_should_reject_bad_ids),
        T(ns_create_should_refuse_a_small_token_buffer_and_create_nothing),
        T(ns_create_should_let_exactly_one_of_concurrent_creations_win),
        cmocka_unit_test(ns_ids_like_paths_should_work_and_stay_inside_the_data_directory),
        T(ns_delete_should_report_the_message_count_then_not_found),
        T(ns_delete_should_remove_the_namespace_files),
        T(ns_info_should_count_messages_and_streams_and_report_last_activity),
        T(ns_list_should_order_newest_first_with_counts),
        T(recreated_namespace_should_start_empty_at_global_position_one),
        T(authorize_should_resolve_a_token_to_its_namespace),
        T(authorize_should_reject_a_wrong_secret_with_eauth),
        T(authorize_should_reject_malformed_tokens_with_etoken),
        T(authorize_should_reject_an_unknown_namespace_with_eauth),
        T(authorize_should_reject_a_deleted_namespace),
        T(authorize_should_accept_ids_whose_base64_contains_underscores),
        T(append_should_assign_positions_and_global_positions),
        T(append_should_write_a_batch_of_up_to_1000_atomically),
        T(append_should_reject_batches_of_zero_and_over_1000),
        T(append_batch_with_one_bad_message_should_store_nothing),
        T(append_should_apply_the_expected_version_rule_exactly),
        T(append_should_return_the_original_positions_for_an_identical_retry),
        T(identical_writes_racing_should_insert_once_and_agree_on_positions),
        T(append_should_reject_a_known_id_with_other_content_as_duplicate),
        T(append_should_canonicalise_ids_in_every_spelling),
        T(append_should_generate_uuidv7_ids),
        T(append_should_store_payloads_byte_for_byte),
        T(append_should_round_trip_100_kb_payloads),
        T(append_should_reject_invalid_json_and_store_nothing),
        T(append_should_reject_an_empty_stream_or_type),
        T(api_should_reject_null_arguments_without_crashing),
        T(append_many_should_give_each_request_its_own_result),
        T(append_batch_should_follow_the_batch_idempotency_rules),
        T(import_should_keep_ids_positions_and_times_and_continue_after_them),
        T(import_should_refuse_conflicts_and_bad_records_and_store_nothing),
        T(ns_clear_should_delete_every_message_and_restart_at_global_position_one),
        T(stream_versions_should_follow_imports_clears_and_recreation),
        T(stream_versions_should_not_move_for_refused_retried_or_failed_requests),
        T(read_stream_should_return_messages_from_a_position),
        T(read_stream_should_select_by_global_position_when_asked),
        T(read_should_honour_the_batch_size),
        T(read_should_count_only_matching_types_for_the_limit),
        T(read_should_filter_by_time_when_asked),
        T(read_category_should_match_the_category_exactly),
        T(read_category_should_filter_by_correlation),
        T(read_category_should_split_consumer_groups_as_message_db_does),
        T(read_category_should_reject_bad_consumer_groups),
        T(read_last_should_return_the_highest_position_optionally_of_a_type),
        T(stream_version_should_be_minus_one_then_the_last_position),
        T(list_streams_should_match_prefixes_literally_in_byte_order),
        T(list_streams_should_page_with_after_exactly_once),
        T(list_categories_should_count_streams_and_messages),
        T(session_should_allow_one_open_cursor_at_a_time),
        T(cursor_next_functions_should_match_the_cursor_kind),
        T(cursor_should_read_a_snapshot_while_writers_go_on),
        T(namespaces_should_be_isolated),
        T(subscribe_to_a_stream_should_replay_then_deliver_live_pokes),
        T(subscribe_to_a_stream_should_honour_position_and_replay_limit),
        T(subscribe_to_a_category_should_filter_by_category_and_position),
        T(subscribe_to_a_category_should_honour_the_consumer_group),
        T(subscribe_to_all_should_not_replay_and_should_deliver_every_write),
        T(subscribe_should_reject_bad_options),
        T(stream_subscription_should_lose_and_repeat_nothing_when_writes_race),
        T(category_subscription_should_lose_and_repeat_nothing_when_writes_race),
        T(all_subscription_should_lose_and_repeat_nothing_when_writes_race),
        T(subscription_should_go_silent_when_its_namespace_is_deleted),
        T(subscription_should_overflow_rather_than_skip_when_it_falls_behind),
    };
    const char *url = getenv("LSS_TEST_URL");
    printf("# conformance against LSS_TEST_URL=%s\n", url ? url : ":memory: (default)");
    int failed = cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
    tmp_sweep();
    return failed;
}
