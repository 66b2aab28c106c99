/* test_concurrency.c — RELIABILITY.md "Contention": optimistic concurrency is
 * exact under 16 racing writers, and 64 parallel appends all land.  Runs on
 * ":memory:" and on a durable (synchronous=FULL) file store.  Public API
 * only.  LSS_CONTENTION_ROUNDS overrides the number of rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "streamstore.h"

#define HOT_THREADS 16
#define PAR_THREADS 64
#define NS "contention"

typedef struct store {
    lss_db *db;
    char dir[64];
} store;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void store_open(store *s, int file)
{
    memset(s, 0, sizeof *s);
    char url[128] = ":memory:";
    if (file) {
        snprintf(s->dir, sizeof s->dir, "/tmp/lss-conc-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        snprintf(url, sizeof url, "%s/data", s->dir);
    }
    lss_options o;
    lss_options_init(&o);
    o.sync = LSS_SYNC_FULL;
    int rc = lss_open(url, &o, &s->db);
    if (rc != LSS_OK) {
        print_error("lss_open(%s): %s %s\n", url, lss_errname(rc),
                    s->db ? lss_db_errmsg(s->db) : "");
        fail();
    }
    lss_conn *c = NULL;
    assert_int_equal(lss_conn_open(s->db, &c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tok_n;
    rc = lss_ns_create(c, NS, strlen(NS), NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL);
    if (rc != LSS_OK) {
        print_error("lss_ns_create: %s %s\n", lss_errname(rc), lss_errmsg(c));
        fail();
    }
    lss_conn_close(c);
}

static void store_close(store *s)
{
    lss_close(s->db);
    if (s->dir[0])
        nftw(s->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int rounds(void)
{
    const char *e = getenv("LSS_CONTENTION_ROUNDS");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : 60;
}

/* ---------------------------------------------------------- hot stream */

typedef struct attempt {
    int64_t expected;
    int rc;
    int64_t position, actual;
} attempt;

typedef struct hot {
    lss_db *db;
    pthread_barrier_t barrier;
    int rounds;
    attempt *log; /* [thread][round] */
    atomic_int setup_failures;
} hot;

typedef struct hot_arg {
    hot *h;
    int t;
} hot_arg;

static void *hot_writer(void *p)
{
    hot_arg *ha = p;
    hot *h = ha->h;
    lss_conn *c = NULL;
    if (lss_conn_open(h->db, &c) != LSS_OK)
        atomic_fetch_add(&h->setup_failures, 1);
    for (int r = 0; r < h->rounds; r++) {
        pthread_barrier_wait(&h->barrier);
        attempt *at = &h->log[ha->t * h->rounds + r];
        at->rc = LSS_EINTERNAL;
        if (!c)
            continue;
        int64_t v = -99;
        int rc = lss_stream_version(c, NS, strlen(NS), "hot-1", 5, &v);
        if (rc != LSS_OK) {
            at->rc = rc;
            at->expected = INT64_MIN;
            continue;
        }
        char data[96];
        snprintf(data, sizeof data, "{\"thread\":%d,\"round\":%d,\"expected\":%" PRId64 "}",
                 ha->t, r, v);
        lss_msg_in m = {NULL, 0, "Won", 3, data, strlen(data), NULL, 0};
        lss_append a;
        memset(&a, 0, sizeof a);
        a.ns = NS;
        a.ns_n = strlen(NS);
        a.stream = "hot-1";
        a.stream_n = 5;
        a.msgs = &m;
        a.count = 1;
        a.flags = LSS_APPEND_EXPECT;
        a.expected_version = v;
        at->expected = v;
        at->rc = lss_append_one(c, &a);
        at->position = a.position;
        at->actual = a.actual_version;
    }
    lss_conn_close(c);
    return NULL;
}

static void hot_stream(int file)
{
    store s;
    store_open(&s, file);
    hot h;
    memset(&h, 0, sizeof h);
    h.db = s.db;
    h.rounds = rounds();
    h.log = calloc((size_t)HOT_THREADS * (size_t)h.rounds, sizeof *h.log);
    assert_non_null(h.log);
    pthread_barrier_init(&h.barrier, NULL, HOT_THREADS);
    pthread_t th[HOT_THREADS];
    hot_arg args[HOT_THREADS];
    for (int t = 0; t < HOT_THREADS; t++) {
        args[t].h = &h;
        args[t].t = t;
        assert_int_equal(pthread_create(&th[t], NULL, hot_writer, &args[t]), 0);
    }
    for (int t = 0; t < HOT_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&h.barrier);
    assert_int_equal(atomic_load(&h.setup_failures), 0);

    /* every attempt: OK at expected + 1, or EVERSION with another version */
    int64_t wins = 0;
    int bad = 0;
    int64_t nattempts = (int64_t)HOT_THREADS * h.rounds;
    for (int64_t i = 0; i < nattempts; i++) {
        attempt *at = &h.log[i];
        if (at->rc == LSS_OK) {
            wins++;
            if (at->position != at->expected + 1 && bad++ < 10)
                print_error("thread %d round %d won at %" PRId64 " expecting %" PRId64 "\n",
                            (int)(i / h.rounds), (int)(i % h.rounds), at->position,
                            at->expected);
        } else if (at->rc == LSS_EVERSION) {
            if (at->actual == at->expected && bad++ < 10)
                print_error("EVERSION with actual == expected == %" PRId64 "\n", at->expected);
        } else if (bad++ < 10) {
            print_error("thread %d round %d: %s, want OK or EVERSION\n", (int)(i / h.rounds),
                        (int)(i % h.rounds), lss_errname(at->rc));
        }
    }
    assert_int_equal(bad, 0);

    /* the stream is exactly 0..K-1, one winner per version */
    lss_conn *c = NULL;
    assert_int_equal(lss_conn_open(s.db, &c), LSS_OK);
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = -1;
    lss_cursor *cur = NULL;
    assert_int_equal(lss_read_stream(c, NS, strlen(NS), "hot-1", 5, &o, &cur), LSS_OK);
    const lss_message *m;
    int64_t k = 0, last_g = 0;
    int rc;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        if (m->position != k) {
            print_error("message #%" PRId64 " has position %" PRId64 "\n", k, m->position);
            fail();
        }
        assert_true(m->global_position > last_g);
        last_g = m->global_position;
        cJSON *j = cJSON_ParseWithLength(m->data.p, m->data.n);
        assert_non_null(j);
        cJSON *e = cJSON_GetObjectItem(j, "expected");
        assert_non_null(e);
        if ((int64_t)e->valuedouble != k - 1) {
            print_error("position %" PRId64 " was written expecting %g\n", k, e->valuedouble);
            fail();
        }
        int t = cJSON_GetObjectItem(j, "thread")->valueint;
        int r = cJSON_GetObjectItem(j, "round")->valueint;
        attempt *at = &h.log[t * h.rounds + r];
        assert_int_equal(at->rc, LSS_OK);
        assert_true(at->position == k);
        cJSON_Delete(j);
        k++;
    }
    lss_cursor_close(cur);
    assert_int_equal(rc, LSS_DONE);
    if (k != wins) {
        print_error("%" PRId64 " winners, %" PRId64 " messages\n", wins, k);
        fail();
    }
    /* at least one winner per round (every round starts at a barrier) */
    assert_true(k >= h.rounds);
    int64_t v = -5;
    assert_int_equal(lss_stream_version(c, NS, strlen(NS), "hot-1", 5, &v), LSS_OK);
    assert_true(v == k - 1);
    printf("# %s: %d threads x %d rounds: %" PRId64 " winners, %" PRId64 " conflicts\n",
           file ? "file" : "memory", HOT_THREADS, h.rounds, k, nattempts - k);
    lss_conn_close(c);
    free(h.log);
    store_close(&s);
}

static void hot_stream_should_have_one_winner_per_version_in_memory(void **state)
{
    (void)state;
    hot_stream(0);
}

static void hot_stream_should_have_one_winner_per_version_on_a_file_store(void **state)
{
    (void)state;
    hot_stream(1);
}

/* ----------------------------------------------------- parallel appends */

typedef struct par {
    lss_db *db;
    pthread_barrier_t barrier;
    int rc[PAR_THREADS];
    int64_t pos[PAR_THREADS], gpos[PAR_THREADS];
} par;

typedef struct par_arg {
    par *p;
    int t;
} par_arg;

static void *par_writer(void *arg)
{
    par_arg *pa = arg;
    par *p = pa->p;
    lss_conn *c = NULL;
    int orc = lss_conn_open(p->db, &c);
    pthread_barrier_wait(&p->barrier);
    if (orc != LSS_OK) {
        p->rc[pa->t] = orc;
        return NULL;
    }
    char data[32];
    snprintf(data, sizeof data, "{\"t\":%d}", pa->t);
    lss_msg_in m = {NULL, 0, "T", 1, data, strlen(data), NULL, 0};
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = NS;
    a.ns_n = strlen(NS);
    a.stream = "par-1";
    a.stream_n = 5;
    a.msgs = &m;
    a.count = 1;
    p->rc[pa->t] = lss_append_one(c, &a);
    p->pos[pa->t] = a.position;
    p->gpos[pa->t] = a.global_position;
    lss_conn_close(c);
    return NULL;
}

static void parallel_appends(int file)
{
    store s;
    store_open(&s, file);
    par p;
    memset(&p, 0, sizeof p);
    p.db = s.db;
    pthread_barrier_init(&p.barrier, NULL, PAR_THREADS);
    pthread_t th[PAR_THREADS];
    par_arg args[PAR_THREADS];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < PAR_THREADS; t++) {
        args[t].p = &p;
        args[t].t = t;
        assert_int_equal(pthread_create(&th[t], NULL, par_writer, &args[t]), 0);
    }
    for (int t = 0; t < PAR_THREADS; t++)
        pthread_join(th[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_barrier_destroy(&p.barrier);
    int seen_pos[PAR_THREADS] = {0};
    for (int t = 0; t < PAR_THREADS; t++) {
        if (p.rc[t] != LSS_OK) {
            print_error("thread %d: %s\n", t, lss_errname(p.rc[t]));
            fail();
        }
        assert_true(p.pos[t] >= 0 && p.pos[t] < PAR_THREADS);
        assert_int_equal(seen_pos[p.pos[t]], 0);
        seen_pos[p.pos[t]] = 1;
        for (int u = 0; u < t; u++)
            assert_true(p.gpos[u] != p.gpos[t]);
    }
    /* read back: positions 0..63, global positions rising with them */
    lss_conn *c = NULL;
    assert_int_equal(lss_conn_open(s.db, &c), LSS_OK);
    lss_cursor *cur = NULL;
    assert_int_equal(lss_read_stream(c, NS, strlen(NS), "par-1", 5, NULL, &cur), LSS_OK);
    const lss_message *m;
    int k = 0, rc;
    int64_t last_g = 0;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        assert_int_equal(m->position, k);
        assert_true(m->global_position > last_g);
        last_g = m->global_position;
        char buf[64];
        assert_true(m->data.n < sizeof buf);
        memcpy(buf, m->data.p, m->data.n);
        buf[m->data.n] = 0;
        int t = -1;
        assert_int_equal(sscanf(buf, "{\"t\":%d}", &t), 1);
        assert_true(t >= 0 && t < PAR_THREADS);
        assert_int_equal(p.pos[t], k);
        assert_int_equal(p.gpos[t], m->global_position);
        k++;
    }
    lss_cursor_close(cur);
    assert_int_equal(rc, LSS_DONE);
    assert_int_equal(k, PAR_THREADS);
    printf("# %s: %d parallel appends in %.1f ms\n", file ? "file" : "memory", PAR_THREADS,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    lss_conn_close(c);
    store_close(&s);
}

static void parallel_appends_should_all_land_in_memory(void **state)
{
    (void)state;
    parallel_appends(0);
}

static void parallel_appends_should_all_land_on_a_file_store(void **state)
{
    (void)state;
    parallel_appends(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hot_stream_should_have_one_winner_per_version_in_memory),
        cmocka_unit_test(hot_stream_should_have_one_winner_per_version_on_a_file_store),
        cmocka_unit_test(parallel_appends_should_all_land_in_memory),
        cmocka_unit_test(parallel_appends_should_all_land_on_a_file_store),
    };
    return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
