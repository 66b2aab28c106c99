/* test_store.c — store properties that the conformance suite does not
 * cover: the zero-allocation steady state and allocation-failure safety. */
#include "testutil.h"

#include <dirent.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>

static lss_msg_in w1_msg(void)
{
    static const char data[] =
        "{\"counter\":1732233600123456789,\"payload\":\"test data for profiling "
        "with some content to make it realistic\",\"nested\":{\"field1\":"
        "\"value1\",\"field2\":42,\"field3\":true}}";
    static const char meta[] =
        "{\"correlationStreamName\":\"test-correlation\",\"source\":\"load-test\"}";
    lss_msg_in m = {0};
    m.type = "TestEvent";
    m.type_n = 9;
    m.data = data;
    m.data_n = sizeof data - 1;
    m.metadata = meta;
    m.metadata_n = sizeof meta - 1;
    return m;
}

static void append_to(lss_conn *c, lss_append *a, const lss_msg_in *m,
                      const char *stream)
{
    memset(a, 0, sizeof *a);
    a->ns = "default";
    a->ns_n = 7;
    a->stream = stream;
    a->stream_n = strlen(stream);
    a->msgs = m;
    a->count = 1;
    assert_int_equal(lss_append_one(c, a), LSS_OK);
}

static int read_ten(lss_conn *c, const char *stream)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = 10;
    lss_cursor *cur;
    assert_int_equal(lss_read_stream(c, "default", 7, stream, strlen(stream),
                                     &o, &cur), LSS_OK);
    const lss_message *m;
    int n = 0, rc;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW)
        n++;
    assert_int_equal(rc, LSS_DONE);
    lss_cursor_close(cur);
    return n;
}

static void steady_state(const char *url)
{
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss_options o;
    lss_options_init(&o);
    o.allocator = &ca.a;
    o.sync = LSS_SYNC_NORMAL;
    lss_db *db;
    assert_int_equal(lss_open(url, &o, &db), LSS_OK);
    lss_conn *c;
    assert_int_equal(lss_conn_open(db, &c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    assert_int_equal(lss_ns_create(c, "default", 7, "", 0, NULL, 0, tok,
                                   sizeof tok, &tn, NULL), LSS_OK);
    lss_msg_in m = w1_msg();
    lss_append a;
    char stream[32];
    for (int i = 0; i < 200; i++) { /* warm-up */
        snprintf(stream, sizeof stream, "test-stream-%d", i % 100);
        append_to(c, &a, &m, stream);
        read_ten(c, stream);
    }
    long before = counting_alloc_calls(&ca);
    for (int i = 0; i < 10000; i++) {
        snprintf(stream, sizeof stream, "test-stream-%d", i % 100);
        append_to(c, &a, &m, stream);
    }
    for (int i = 0; i < 10000; i++) {
        snprintf(stream, sizeof stream, "test-stream-%d", i % 100);
        assert_int_equal(read_ten(c, stream), 10);
    }
    assert_int_equal(counting_alloc_calls(&ca) - before, 0);
    lss_conn_close(c);
    lss_close(db);
    assert_int_equal(ca.live, 0);
}

static void appends_and_reads_should_not_allocate_after_warm_up_in_memory(void **state)
{
    (void)state;
    steady_state(":memory:");
}

static void appends_and_reads_should_not_allocate_after_warm_up_on_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/lss-alloc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    steady_state(dir);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Fail the k-th allocation for k = 1, 2, ... through open, namespace
 * creation, append and read: every step fails cleanly or succeeds, nothing
 * leaks, and what was acknowledged is readable. */
static void every_allocation_failure_should_fail_cleanly(void **state)
{
    (void)state;
    for (long k = 1; k < 400; k++) {
        counting_alloc ca;
        counting_alloc_init(&ca);
        ca.fail_at = k;
        lss_options o;
        lss_options_init(&o);
        o.allocator = &ca.a;
        lss_db *db = NULL;
        int rc = lss_open(":memory:", &o, &db);
        lss_conn *c = NULL;
        int acked = 0;
        if (rc == LSS_OK && lss_conn_open(db, &c) == LSS_OK) {
            char tok[LSS_TOKEN_MAX];
            size_t tn;
            if (lss_ns_create(c, "default", 7, "", 0, NULL, 0, tok, sizeof tok,
                              &tn, NULL) == LSS_OK) {
                lss_msg_in m = w1_msg();
                lss_append a;
                memset(&a, 0, sizeof a);
                a.ns = "default";
                a.ns_n = 7;
                a.stream = "s-1";
                a.stream_n = 3;
                a.msgs = &m;
                a.count = 1;
                for (int i = 0; i < 3; i++)
                    if (lss_append_one(c, &a) == LSS_OK)
                        acked++;
                    else
                        assert_true(a.rc < 0);
                lss_cursor *cur;
                if (lss_read_stream(c, "default", 7, "s-1", 3, NULL, &cur) == LSS_OK) {
                    const lss_message *msg;
                    int n = 0;
                    while (lss_cursor_next(cur, &msg) == LSS_ROW)
                        n++;
                    lss_cursor_close(cur);
                    assert_int_equal(n, acked);
                }
            }
        }
        lss_conn_close(c);
        lss_close(db);
        assert_int_equal(ca.live, 0);
        if (ca.calls < k) /* the whole scenario ran without reaching k */
            break;
    }
}

/* The session caches the last token; a token accepted without a hash
 * check (test mode) must not pass a later checked call from the cache. */
static void token_cache_should_not_turn_an_unchecked_token_into_a_checked_one(void **state)
{
    (void)state;
    lss_db *db;
    lss_conn *c;
    assert_int_equal(lss_open(":memory:", NULL, &db), LSS_OK);
    assert_int_equal(lss_conn_open(db, &c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    assert_int_equal(lss_ns_create(c, "default", 7, "", 0, NULL, 0, tok,
                                   sizeof tok, &tn, NULL), LSS_OK);
    char wrong[LSS_TOKEN_MAX];
    memcpy(wrong, tok, tn);
    wrong[tn - 1] = wrong[tn - 1] == '0' ? '1' : '0';
    const char *ns;
    size_t ns_n;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(lss_authorize(c, wrong, tn, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_OK);
        assert_int_equal(lss_authorize(c, wrong, tn, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_OK);
        assert_int_equal(lss_authorize(c, wrong, tn, 0, &ns, &ns_n), LSS_EAUTH);
        assert_int_equal(lss_authorize(c, tok, tn, 0, &ns, &ns_n), LSS_OK);
        assert_int_equal(lss_authorize(c, tok, tn, 0, &ns, &ns_n), LSS_OK);
        assert_int_equal(lss_authorize(c, tok, tn, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_OK);
        assert_int_equal(lss_authorize(c, wrong, tn, 0, &ns, &ns_n), LSS_EAUTH);
    }
    /* Deleting the namespace invalidates the cache. */
    assert_int_equal(lss_ns_delete(c, "default", 7, NULL, NULL), LSS_OK);
    assert_int_equal(lss_authorize(c, tok, tn, 0, &ns, &ns_n), LSS_EAUTH);
    assert_int_equal(lss_authorize(c, tok, tn, LSS_AUTH_NO_HASH, &ns, &ns_n), LSS_EAUTH);
    lss_conn_close(c);
    lss_close(db);
}

/* One message to stream with an expected version (-2: none); its rc. */
static int put_ev(lss_conn *c, const char *stream, int64_t ev, int64_t *pos)
{
    lss_msg_in m = w1_msg();
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = "default";
    a.ns_n = 7;
    a.stream = stream;
    a.stream_n = strlen(stream);
    a.msgs = &m;
    a.count = 1;
    if (ev != -2) {
        a.flags = LSS_APPEND_EXPECT;
        a.expected_version = ev;
    }
    int rc = lss_append_one(c, &a);
    if (pos)
        *pos = a.position;
    return rc;
}

/* The namespace database of a data directory holding one namespace. */
static void ns_file(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    out[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "metadata.db") ||
            (n > 4 && (!strcmp(e->d_name + n - 4, "-wal") ||
                       !strcmp(e->d_name + n - 4, "-shm"))))
            continue;
        snprintf(out, cap, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    assert_true(out[0] != '\0');
}

static void open_dir_store(const char *dir, int create, lss_db **db, lss_conn **c)
{
    assert_int_equal(lss_open(dir, NULL, db), LSS_OK);
    assert_int_equal(lss_conn_open(*db, c), LSS_OK);
    if (create) {
        char tok[LSS_TOKEN_MAX];
        size_t tn;
        assert_int_equal(lss_ns_create(*c, "default", 7, "", 0, NULL, 0, tok,
                                       sizeof tok, &tn, NULL), LSS_OK);
    }
}

/* A group that fails after some of its requests were inserted is rolled
 * back whole, and the versions they reached must go with it. */
static void a_failed_group_should_leave_no_stream_version_behind(void **state)
{
    (void)state;
    char dir[] = "/tmp/lss-vc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    lss_db *db;
    lss_conn *c;
    open_dir_store(dir, 1, &db, &c);
    int64_t pos = -9;
    assert_int_equal(put_ev(c, "s-1", -1, &pos), LSS_OK);
    assert_int_equal(pos, 0);
    /* Make the insert of stream "boom" fail inside the transaction. */
    char path[PATH_MAX];
    ns_file(dir, path, sizeof path);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TRIGGER boom BEFORE INSERT ON messages"
                                  " WHEN NEW.stream_name = 'boom'"
                                  " BEGIN SELECT RAISE(ABORT, 'boom'); END;",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(put_ev(c, "s-1", 0, &pos), LSS_OK); /* sees the change */
    assert_int_equal(pos, 1);
    lss_msg_in m = w1_msg();
    lss_append a[3];
    const char *streams[3] = {"s-1", "s-2", "boom"};
    for (int i = 0; i < 3; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].ns = "default";
        a[i].ns_n = 7;
        a[i].stream = streams[i];
        a[i].stream_n = strlen(streams[i]);
        a[i].msgs = &m;
        a[i].count = 1;
    }
    assert_int_equal(lss_append_many(c, a, 3), LSS_OK);
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(a[i].rc, LSS_OK);
    /* Nothing of the group stayed: versions 1 and -1, no gap after them. */
    assert_int_equal(put_ev(c, "s-1", 1, &pos), LSS_OK);
    assert_int_equal(pos, 2);
    assert_int_equal(put_ev(c, "s-2", -1, &pos), LSS_OK);
    assert_int_equal(pos, 0);
    int64_t v = -9;
    assert_int_equal(lss_stream_version(c, "default", 7, "s-1", 3, &v), LSS_OK);
    assert_int_equal(v, 2);
    sqlite3_close(raw);
    lss_conn_close(c);
    lss_close(db);
    rm_tree(dir);
}

/* Another handle (or process) on the same files appends too: each writer
 * must see the other's appends. */
static void appends_through_another_handle_should_be_seen(void **state)
{
    (void)state;
    char dir[] = "/tmp/lss-vc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    lss_db *db1, *db2;
    lss_conn *c1, *c2;
    open_dir_store(dir, 1, &db1, &c1);
    int64_t pos = -9;
    assert_int_equal(put_ev(c1, "s-1", -1, &pos), LSS_OK);
    open_dir_store(dir, 0, &db2, &c2);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(put_ev(c2, "s-1", i - 1, &pos), LSS_OK);
        assert_int_equal(pos, i);
    }
    assert_int_equal(put_ev(c1, "s-1", 0, &pos), LSS_EVERSION);
    assert_int_equal(put_ev(c1, "s-1", 3, &pos), LSS_OK);
    assert_int_equal(pos, 4);
    assert_int_equal(put_ev(c2, "s-1", -2, &pos), LSS_OK);
    assert_int_equal(pos, 5);
    lss_conn_close(c2);
    lss_close(db2);
    lss_conn_close(c1);
    lss_close(db1);
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_and_reads_should_not_allocate_after_warm_up_in_memory),
        cmocka_unit_test(appends_and_reads_should_not_allocate_after_warm_up_on_files),
        cmocka_unit_test(every_allocation_failure_should_fail_cleanly),
        cmocka_unit_test(token_cache_should_not_turn_an_unchecked_token_into_a_checked_one),
        cmocka_unit_test(a_failed_group_should_leave_no_stream_version_behind),
        cmocka_unit_test(appends_through_another_handle_should_be_seen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
