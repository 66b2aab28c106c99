/* cases_store.c — lss-bench's W2 store cases (BENCH.md): appends, reads and
 * subscription wake-ups through the public API, each beside its baseline,
 * the plain SQLite program of baseline_sqlite.c doing the same statements.
 *
 * Append cases write W1's message (bench.h) to W1's streams test-stream-0
 * .. test-stream-99 and read back what they wrote into r->check; read cases
 * hash what they read.  A library case and its baseline must agree (same
 * rows, same positions).  Most cases are steppers (bench_ops) so that the
 * harness can interleave them with their baseline.  Nothing in a timed loop
 * allocates on the bench's side: buffers, message arrays and histograms are
 * set up in open(). */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS "bench"
#define NS_N (sizeof NS - 1)

bench_name w1_stream[W1_STREAMS];

void bench_names_init(void)
{
    for (int i = 0; i < W1_STREAMS; i++)
        w1_stream[i].n = (size_t)snprintf(w1_stream[i].s,
                                          sizeof w1_stream[i].s,
                                          "test-stream-%d", i);
}

/* ------------------------------------------------------------------------
 * Scratch directories and stores
 * ---------------------------------------------------------------------- */

static int make_dir(const bench_run *r, const char *tag, char *out, size_t cap)
{
    static unsigned seq;
    int n = snprintf(out, cap, "%s/%s-%u", r->dir, tag, ++seq);
    if (n < 0 || (size_t)n >= cap || mkdir(out, 0700) != 0) {
        fprintf(stderr, "lss-bench: cannot create %s: %s\n", out,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* Our scratch directories hold plain files only. */
void bench_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX + 256];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

typedef struct lib_store {
    lss_db *db;
    lss_conn *c;
    char dir[PATH_MAX];
} lib_store;

static void lib_close(lib_store *s)
{
    lss_conn_close(s->c);
    lss_close(s->db);
    if (s->dir[0])
        bench_remove_dir(s->dir);
    memset(s, 0, sizeof *s);
}

int bench_session_with_ns(lss_db *db, const char *ns, size_t ns_n,
                          lss_conn **c)
{
    int rc = lss_conn_open(db, c);
    if (rc != LSS_OK)
        return rc;
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    rc = lss_ns_create(*c, ns, ns_n, NULL, 0, NULL, 0, tok, sizeof tok, &tn,
                       NULL);
    if (rc != LSS_OK)
        fprintf(stderr, "lss-bench: lss_ns_create: %s\n", lss_errmsg(*c));
    return rc;
}

/* A store with namespace NS: memory, or a fresh data directory. */
static int lib_open(lib_store *s, const bench_run *r, int file, int sync)
{
    memset(s, 0, sizeof *s);
    lss_options o;
    lss_options_init(&o);
    o.allocator = &bench_allocator;
    o.sync = sync;
    if (file && make_dir(r, "lss", s->dir, sizeof s->dir) != 0)
        return LSS_EIO;
    int rc = lss_open(file ? s->dir : ":memory:", &o, &s->db);
    if (rc != LSS_OK) {
        fprintf(stderr, "lss-bench: lss_open: %s\n", lss_db_errmsg(s->db));
        lib_close(s);
        return rc;
    }
    rc = bench_session_with_ns(s->db, NS, NS_N, &s->c);
    if (rc != LSS_OK)
        lib_close(s);
    return rc;
}

typedef struct base_store {
    base_db *b;
    char dir[PATH_MAX];
} base_store;

static void base_store_close(base_store *s)
{
    base_close(s->b);
    if (s->dir[0])
        bench_remove_dir(s->dir);
    memset(s, 0, sizeof *s);
}

static int base_store_open(base_store *s, const bench_run *r, int file,
                           int sync)
{
    memset(s, 0, sizeof *s);
    char path[PATH_MAX + 16];
    if (file) {
        if (make_dir(r, "sqlite", s->dir, sizeof s->dir) != 0)
            return LSS_EIO;
        snprintf(path, sizeof path, "%s/bench.db", s->dir);
    }
    if (base_open(file ? path : NULL, sync, &s->b) != 0) {
        fprintf(stderr, "lss-bench: baseline open: %s\n", base_errmsg(s->b));
        base_store_close(s);
        return LSS_EBACKEND;
    }
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Read-back checks
 * ---------------------------------------------------------------------- */

static int lib_hash_stream(lss_conn *c, const char *stream, size_t stream_n,
                           int64_t from, int64_t limit, uint64_t *h,
                           long *rows)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = from;
    o.batch_size = limit;
    lss_cursor *cur;
    int rc = lss_read_stream(c, NS, NS_N, stream, stream_n, &o, &cur);
    if (rc != LSS_OK)
        return rc;
    const lss_message *m;
    uint64_t x = *h;
    long k = 0;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        x = check_msg(x, m->stream.p, m->stream.n, check_lib_pos(m->position),
                      m->global_position, m->type.p, m->type.n, m->data.p,
                      m->data.n, m->metadata.p, m->metadata.n);
        k++;
    }
    lss_cursor_close(cur);
    *h = x;
    *rows += k;
    return rc == LSS_DONE ? LSS_OK : rc;
}

/* Every W1 stream in full, in order. */
static int lib_readback(lss_conn *c, uint64_t *check)
{
    uint64_t h = CHECK_SEED;
    long rows = 0;
    for (int s = 0; s < W1_STREAMS; s++) {
        int rc = lib_hash_stream(c, w1_stream[s].s, w1_stream[s].n, 0, 0, &h,
                                 &rows);
        if (rc != LSS_OK) {
            fprintf(stderr, "lss-bench: read back: %s\n", lss_errmsg(c));
            return rc;
        }
    }
    *check = check_mix(h, (uint64_t)rows);
    return LSS_OK;
}

static int base_readback(base_db *b, uint64_t *check)
{
    uint64_t h = CHECK_SEED;
    long rows = 0;
    for (int s = 0; s < W1_STREAMS; s++)
        if (base_read_stream(b, w1_stream[s].s, w1_stream[s].n, 0, 0, &h,
                             &rows) != 0) {
            fprintf(stderr, "lss-bench: baseline read back: %s\n",
                    base_errmsg(b));
            return LSS_EBACKEND;
        }
    *check = check_mix(h, (uint64_t)rows);
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Appends, one thread: operation i appends one request of `batch` W1
 * messages to stream i % 100.  Written as steppers (bench_ops) so that the
 * harness can run the library and its baseline in alternating chunks.
 * ---------------------------------------------------------------------- */

#define MAX_BATCH 100

typedef struct w1_batch {
    char data[MAX_BATCH][W1_DATA_LEN + 1];
    char id[MAX_BATCH][36];
    size_t n;
    int with_id;
    uint64_t seq;
} w1_batch;

static void batch_init(w1_batch *b, size_t n, int with_id, uint64_t seq)
{
    b->n = n;
    b->with_id = with_id;
    b->seq = seq;
    for (size_t k = 0; k < n; k++)
        memcpy(b->data[k], W1_DATA, sizeof W1_DATA);
}

/* The next request's counters (and ids). */
static void batch_next(w1_batch *b)
{
    for (size_t k = 0; k < b->n; k++, b->seq++) {
        w1_set_counter(b->data[k], b->seq);
        if (b->with_id)
            w1_set_id(b->id[k], b->seq);
    }
}

static void lib_msgs(const w1_batch *b, lss_msg_in *m)
{
    for (size_t k = 0; k < b->n; k++) {
        memset(&m[k], 0, sizeof m[k]);
        if (b->with_id) {
            m[k].id = b->id[k];
            m[k].id_n = 36;
        }
        m[k].type = W1_TYPE;
        m[k].type_n = sizeof W1_TYPE - 1;
        m[k].data = b->data[k];
        m[k].data_n = W1_DATA_LEN;
        m[k].metadata = W1_META;
        m[k].metadata_n = W1_META_LEN;
    }
}

static void base_msgs(const w1_batch *b, base_msg *m)
{
    for (size_t k = 0; k < b->n; k++) {
        memset(&m[k], 0, sizeof m[k]);
        if (b->with_id) {
            m[k].id = b->id[k];
            m[k].id_n = 36;
        }
        m[k].type = W1_TYPE;
        m[k].type_n = sizeof W1_TYPE - 1;
        m[k].data = b->data[k];
        m[k].data_n = W1_DATA_LEN;
        m[k].meta = W1_META;
        m[k].meta_n = W1_META_LEN;
    }
}

typedef struct append_cfg {
    int lib, file, with_id;
    size_t batch;
} append_cfg;

typedef struct append_state {
    append_cfg cfg;
    lib_store ls;
    base_store bs;
    w1_batch b;
    lss_msg_in lm[MAX_BATCH];
    base_msg bm[MAX_BATCH];
} append_state;

static int append_open(const append_cfg *cfg, bench_run *r, void **out)
{
    append_state *st = calloc(1, sizeof *st);
    if (!st)
        return LSS_ENOMEM;
    st->cfg = *cfg;
    int rc = cfg->lib ? lib_open(&st->ls, r, cfg->file, LSS_SYNC_FULL)
                      : base_store_open(&st->bs, r, cfg->file, LSS_SYNC_FULL);
    if (rc != LSS_OK) {
        free(st);
        return rc;
    }
    batch_init(&st->b, cfg->batch, cfg->with_id, 0);
    if (cfg->lib)
        lib_msgs(&st->b, st->lm);
    else
        base_msgs(&st->b, st->bm);
    if (cfg->batch > 1)
        r->msgs_per_op = (double)cfg->batch;
    *out = st;
    return LSS_OK;
}

static int append_op(void *state, long i)
{
    append_state *st = state;
    const bench_name *name = &w1_stream[i % W1_STREAMS];
    batch_next(&st->b);
    if (!st->cfg.lib) {
        if (base_append(st->bs.b, name->s, name->n, st->bm, st->cfg.batch) == 0)
            return LSS_OK;
        fprintf(stderr, "lss-bench: baseline append: %s\n",
                base_errmsg(st->bs.b));
        return LSS_EBACKEND;
    }
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = NS;
    a.ns_n = NS_N;
    a.stream = name->s;
    a.stream_n = name->n;
    a.msgs = st->lm;
    a.count = st->cfg.batch;
    int rc = lss_append_one(st->ls.c, &a);
    if (rc != LSS_OK)
        fprintf(stderr, "lss-bench: append: %s\n", lss_errmsg(st->ls.c));
    return rc;
}

/* Read every stream back into r->check (when ok) and free everything. */
static int append_close(void *state, bench_run *r, int ok)
{
    append_state *st = state;
    int rc = LSS_OK;
    if (st->cfg.lib) {
        if (ok)
            rc = lib_readback(st->ls.c, &r->check);
        lib_close(&st->ls);
    } else {
        if (ok)
            rc = base_readback(st->bs.b, &r->check);
        base_store_close(&st->bs);
    }
    free(st);
    return rc;
}

#define APPEND_CASE(sym, n_ops, lib_, file_, id_, batch_)                    \
    static int sym##_open(bench_run *r, void **out)                          \
    {                                                                        \
        static const append_cfg cfg = {lib_, file_, id_, batch_};            \
        return append_open(&cfg, r, out);                                    \
    }                                                                        \
    const bench_ops sym = {n_ops, sym##_open, append_op, append_close, NULL};

#define N_APPEND_MEM 40000
#define N_APPEND_FILE 3000
#define N_APPEND_100 2000

APPEND_CASE(ops_append_1_mem, N_APPEND_MEM, 1, 0, 0, 1)
APPEND_CASE(ops_base_append_1_mem, N_APPEND_MEM, 0, 0, 0, 1)
APPEND_CASE(ops_append_1_file, N_APPEND_FILE, 1, 1, 0, 1)
APPEND_CASE(ops_base_append_1_file, N_APPEND_FILE, 0, 1, 0, 1)
APPEND_CASE(ops_append_1_id_mem, N_APPEND_MEM, 1, 0, 1, 1)
APPEND_CASE(ops_base_append_1_id_mem, N_APPEND_MEM, 0, 0, 1, 1)
APPEND_CASE(ops_append_100_mem, N_APPEND_100, 1, 0, 0, 100)
APPEND_CASE(ops_base_append_100_mem, N_APPEND_100, 0, 0, 0, 100)

/* ------------------------------------------------------------------------
 * Appends, 8 threads on one durable file store (group commit).  Operation
 * i belongs to worker w = i % 8 as its j = i / 8-th append, of
 * k = w*1,000,000 + j to test-stream-<k % 100>, as W1's workers do, so all
 * workers write the same stream at once and positions within a stream
 * interleave in whatever order the commits fell.  The workers live from
 * open to close; each chunk of operations is one start/end barrier round
 * (bench_ops.chunk), so the harness can interleave this case with its
 * baseline like any stepper.  The check is order-free: per stream the
 * message count, whether positions are exactly 0..n-1, and sums of
 * per-message position and payload hashes.
 * ---------------------------------------------------------------------- */

#define THREADS 8
#define N_APPEND_8T 12000 /* all threads together */

typedef struct mt_state mt_state;

typedef struct worker {
    mt_state *st;
    lss_conn *c;
    int w;
    bench_hist hist;
    int rc;
    char err[256];
} worker;

struct mt_state {
    lib_store s;
    worker wk[THREADS];
    pthread_t tid[THREADS];
    int nthreads; /* started */
    pthread_barrier_t start, end;
    long from, to;
    int timed, quit;
};

static void *worker_main(void *arg)
{
    worker *wk = arg;
    mt_state *st = wk->st;
    char data[W1_DATA_LEN + 1];
    memcpy(data, W1_DATA, sizeof data);
    lss_msg_in m = {NULL, 0, W1_TYPE, sizeof W1_TYPE - 1, data, W1_DATA_LEN,
                    W1_META, W1_META_LEN};
    for (;;) {
        pthread_barrier_wait(&st->start);
        if (st->quit)
            break;
        long i = st->from + (wk->w - st->from % THREADS + THREADS) % THREADS;
        uint64_t t = bench_ns();
        for (; i < st->to; i += THREADS) {
            uint64_t k = (uint64_t)wk->w * 1000000u + (uint64_t)(i / THREADS);
            w1_set_counter(data, k);
            lss_append a;
            memset(&a, 0, sizeof a);
            a.ns = NS;
            a.ns_n = NS_N;
            a.stream = w1_stream[k % W1_STREAMS].s;
            a.stream_n = w1_stream[k % W1_STREAMS].n;
            a.msgs = &m;
            a.count = 1;
            int rc = lss_append_one(wk->c, &a);
            if (rc != LSS_OK && !wk->rc) {
                wk->rc = rc;
                snprintf(wk->err, sizeof wk->err, "%s", lss_errmsg(wk->c));
            }
            uint64_t t1 = bench_ns();
            if (st->timed)
                hist_add(&wk->hist, t1 - t);
            t = t1;
        }
        pthread_barrier_wait(&st->end);
    }
    return NULL;
}

static int readback_unordered(lss_conn *c, uint64_t *check)
{
    uint64_t h = CHECK_SEED;
    for (int s = 0; s < W1_STREAMS; s++) {
        lss_read_opts o;
        lss_read_opts_init(&o);
        o.batch_size = 0;
        lss_cursor *cur;
        int rc = lss_read_stream(c, NS, NS_N, w1_stream[s].s, w1_stream[s].n,
                                 &o, &cur);
        if (rc != LSS_OK)
            return rc;
        const lss_message *m;
        uint64_t payloads = 0, positions = 0, count = 0;
        int gapless = 1;
        while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
            int64_t pos = check_lib_pos(m->position);
            if (pos != (int64_t)count)
                gapless = 0;
            positions += check_mix(CHECK_SEED, (uint64_t)pos);
            uint64_t x = check_bytes(CHECK_SEED, m->type.p, m->type.n);
            x = check_bytes(x, m->data.p, m->data.n);
            x = check_bytes(x, m->metadata.p, m->metadata.n);
            payloads += x;
            count++;
        }
        lss_cursor_close(cur);
        if (rc != LSS_DONE)
            return rc;
        if (!gapless && !bench_break) {
            fprintf(stderr, "lss-bench: %s: positions are not 0..%llu\n",
                    w1_stream[s].s, (unsigned long long)count - 1);
            return LSS_EINTERNAL;
        }
        h = check_bytes(h, w1_stream[s].s, w1_stream[s].n);
        h = check_mix(h, count);
        h = check_mix(h, (uint64_t)gapless);
        h = check_mix(h, positions);
        h = check_mix(h, payloads);
    }
    *check = h;
    return LSS_OK;
}

static void mt_stop(mt_state *st)
{
    if (st->nthreads == THREADS) {
        st->quit = 1;
        pthread_barrier_wait(&st->start);
        for (int w = 0; w < THREADS; w++)
            pthread_join(st->tid[w], NULL);
    }
    if (st->nthreads >= 0) {
        pthread_barrier_destroy(&st->start);
        pthread_barrier_destroy(&st->end);
    }
    for (int w = 0; w < THREADS; w++)
        lss_conn_close(st->wk[w].c);
    lib_close(&st->s);
    free(st);
}

static int mt_open(bench_run *r, void **out)
{
    mt_state *st = calloc(1, sizeof *st);
    if (!st)
        return LSS_ENOMEM;
    st->nthreads = -1; /* barriers not made yet */
    int rc = lib_open(&st->s, r, 1, LSS_SYNC_FULL);
    for (int w = 0; rc == LSS_OK && w < THREADS; w++) {
        st->wk[w].st = st;
        st->wk[w].w = w;
        rc = lss_conn_open(st->s.db, &st->wk[w].c);
    }
    if (rc != LSS_OK) {
        lib_close(&st->s);
        for (int w = 0; w < THREADS; w++)
            lss_conn_close(st->wk[w].c);
        free(st);
        return rc;
    }
    pthread_barrier_init(&st->start, NULL, THREADS + 1);
    pthread_barrier_init(&st->end, NULL, THREADS + 1);
    st->nthreads = 0;
    for (int w = 0; w < THREADS; w++) {
        if (pthread_create(&st->tid[w], NULL, worker_main, &st->wk[w]) != 0) {
            /* the barriers would never open: nothing sensible is left */
            fprintf(stderr, "lss-bench: cannot start %d threads\n", THREADS);
            exit(1);
        }
        st->nthreads++;
    }
    *out = st;
    return LSS_OK;
}

/* Operations [from, to) by all workers at once; timed (recorded in the
 * workers' histograms) unless they are the warm-up. */
static int mt_chunk(void *state, long from, long to, int timed)
{
    mt_state *st = state;
    st->from = from;
    st->to = to;
    st->timed = timed;
    pthread_barrier_wait(&st->start);
    pthread_barrier_wait(&st->end);
    for (int w = 0; w < THREADS; w++)
        if (st->wk[w].rc) {
            fprintf(stderr, "lss-bench: worker %d: %s\n", w, st->wk[w].err);
            return st->wk[w].rc;
        }
    return LSS_OK;
}

static int mt_close(void *state, bench_run *r, int ok)
{
    mt_state *st = state;
    for (int w = 0; w < THREADS; w++)
        hist_merge(r->hist, &st->wk[w].hist);
    int rc = ok ? readback_unordered(st->s.c, &r->check) : LSS_OK;
    mt_stop(st);
    return rc;
}

const bench_ops ops_append_8t_file = {N_APPEND_8T, mt_open, NULL, mt_close,
                                      mt_chunk};

/* ------------------------------------------------------------------------
 * Reads.  One store per side, seeded once per process and shared by the
 * read cases: categories "test" and "other", 20 streams each
 * (test-0 .. test-19), 1,000 messages per stream, appended in requests of
 * 10 that alternate between the 40 streams, so a category's messages are
 * interleaved with the other's in global-position order.  File stores are
 * seeded with synchronous=NORMAL (reads do not depend on it).
 * ---------------------------------------------------------------------- */

#define SEED_STREAMS 20
#define SEED_PER_STREAM 1000
#define SEED_REQ 10

static bench_name seed_name[2][SEED_STREAMS];
static lib_store lib_seed;
static base_store base_seed;
static int lib_seeded = -1, base_seeded = -1; /* backend seeded, -1 none */

static void seed_names(void)
{
    static const char *const cat[2] = {"test", "other"};
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < SEED_STREAMS; s++)
            seed_name[c][s].n = (size_t)snprintf(
                seed_name[c][s].s, sizeof seed_name[c][s].s, "%s-%d", cat[c], s);
}

static int seed_lib(const bench_run *r)
{
    if (lib_seeded == r->backend)
        return LSS_OK;
    if (lib_seeded >= 0)
        lib_close(&lib_seed);
    lib_seeded = -1;
    seed_names();
    int rc = lib_open(&lib_seed, r, r->backend == BENCH_FILE, LSS_SYNC_NORMAL);
    if (rc != LSS_OK)
        return rc;
    static w1_batch b;
    lss_msg_in m[SEED_REQ];
    batch_init(&b, SEED_REQ, 0, 0);
    lib_msgs(&b, m);
    for (int round = 0; round < SEED_PER_STREAM / SEED_REQ; round++)
        for (int s = 0; s < SEED_STREAMS; s++)
            for (int c = 0; c < 2; c++) {
                batch_next(&b);
                lss_append a;
                memset(&a, 0, sizeof a);
                a.ns = NS;
                a.ns_n = NS_N;
                a.stream = seed_name[c][s].s;
                a.stream_n = seed_name[c][s].n;
                a.msgs = m;
                a.count = SEED_REQ;
                rc = lss_append_one(lib_seed.c, &a);
                if (rc != LSS_OK) {
                    fprintf(stderr, "lss-bench: seed: %s\n",
                            lss_errmsg(lib_seed.c));
                    lib_close(&lib_seed);
                    return rc;
                }
            }
    lib_seeded = r->backend;
    return LSS_OK;
}

static int seed_base(const bench_run *r)
{
    if (base_seeded == r->backend)
        return LSS_OK;
    if (base_seeded >= 0)
        base_store_close(&base_seed);
    base_seeded = -1;
    seed_names();
    int rc = base_store_open(&base_seed, r, r->backend == BENCH_FILE,
                             LSS_SYNC_NORMAL);
    if (rc != LSS_OK)
        return rc;
    static w1_batch b;
    base_msg m[SEED_REQ];
    batch_init(&b, SEED_REQ, 0, 0);
    base_msgs(&b, m);
    for (int round = 0; round < SEED_PER_STREAM / SEED_REQ; round++)
        for (int s = 0; s < SEED_STREAMS; s++)
            for (int c = 0; c < 2; c++) {
                batch_next(&b);
                if (base_append(base_seed.b, seed_name[c][s].s,
                                seed_name[c][s].n, m, SEED_REQ) != 0) {
                    fprintf(stderr, "lss-bench: baseline seed: %s\n",
                            base_errmsg(base_seed.b));
                    base_store_close(&base_seed);
                    return LSS_EBACKEND;
                }
            }
    base_seeded = r->backend;
    return LSS_OK;
}

void bench_store_cleanup(void)
{
    if (lib_seeded >= 0)
        lib_close(&lib_seed);
    if (base_seeded >= 0)
        base_store_close(&base_seed);
    lib_seeded = base_seeded = -1;
}

/* What read operation i asks for. */
typedef struct read_op {
    int category;   /* 0 stream read, 1 category read */
    int group;      /* consumer group of 4, member i % 4 */
    int64_t limit;  /* rows expected */
} read_op;

static void read_args(const read_op *op, long i, const bench_name **name,
                      int64_t *from, int64_t *member)
{
    static const bench_name test_cat = {"test", 4};
    uint64_t k = (uint64_t)i * 7919u;
    if (op->category) {
        *name = &test_cat;
        /* from 1 .. 30,000: at least 5,000 "test" messages follow */
        *from = 1 + (int64_t)(k % 30000u);
    } else {
        *name = &seed_name[0][i % SEED_STREAMS];
        *from = (int64_t)(k % (uint64_t)(SEED_PER_STREAM - op->limit + 1));
    }
    *member = op->group ? i % 4 : 0;
}

static int lib_read_one(lss_conn *c, const read_op *op, long i, uint64_t *h)
{
    const bench_name *name;
    int64_t from, member;
    read_args(op, i, &name, &from, &member);
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = from;
    o.batch_size = op->limit;
    if (op->group) {
        o.flags |= LSS_READ_GROUP;
        o.group_member = member;
        o.group_size = 4;
    }
    lss_cursor *cur;
    int rc = op->category
                 ? lss_read_category(c, NS, NS_N, name->s, name->n, &o, &cur)
                 : lss_read_stream(c, NS, NS_N, name->s, name->n, &o, &cur);
    if (rc != LSS_OK)
        return rc;
    const lss_message *m;
    uint64_t x = *h;
    int64_t rows = 0;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        x = check_msg(x, m->stream.p, m->stream.n, check_lib_pos(m->position),
                      m->global_position, m->type.p, m->type.n, m->data.p,
                      m->data.n, m->metadata.p, m->metadata.n);
        rows++;
    }
    lss_cursor_close(cur);
    if (rc != LSS_DONE)
        return rc;
    if (rows != op->limit) {
        fprintf(stderr, "lss-bench: read %ld: %lld rows, expected %lld\n", i,
                (long long)rows, (long long)op->limit);
        return LSS_EINTERNAL;
    }
    *h = x;
    return LSS_OK;
}

static int base_read_one(base_db *b, const read_op *op, long i, uint64_t *h)
{
    const bench_name *name;
    int64_t from, member;
    read_args(op, i, &name, &from, &member);
    long rows = 0;
    int rc = op->category
                 ? base_read_category(b, name->s, name->n, from, op->limit,
                                      member, op->group ? 4 : 0, h, &rows)
                 : base_read_stream(b, name->s, name->n, from, op->limit, h,
                                    &rows);
    if (rc != 0) {
        fprintf(stderr, "lss-bench: baseline read: %s\n", base_errmsg(b));
        return LSS_EBACKEND;
    }
    if (rows != op->limit) {
        fprintf(stderr, "lss-bench: baseline read %ld: %ld rows, expected %lld\n",
                i, rows, (long long)op->limit);
        return LSS_EINTERNAL;
    }
    return LSS_OK;
}

typedef struct read_state {
    const read_op *op;
    int lib;
    uint64_t h;
    long count;
} read_state;

static int read_open(const read_op *op, int lib, bench_run *r, void **out)
{
    int rc = lib ? seed_lib(r) : seed_base(r);
    if (rc != LSS_OK)
        return rc;
    read_state *st = calloc(1, sizeof *st);
    if (!st)
        return LSS_ENOMEM;
    st->op = op;
    st->lib = lib;
    st->h = CHECK_SEED;
    r->msgs_per_op = (double)op->limit;
    *out = st;
    return LSS_OK;
}

static int read_op_step(void *state, long i)
{
    read_state *st = state;
    st->count++;
    if (!st->lib)
        return base_read_one(base_seed.b, st->op, i, &st->h);
    int rc = lib_read_one(lib_seed.c, st->op, i, &st->h);
    if (rc != LSS_OK)
        fprintf(stderr, "lss-bench: read: %s\n", lss_errmsg(lib_seed.c));
    return rc;
}

static int read_close(void *state, bench_run *r, int ok)
{
    read_state *st = state;
    if (ok)
        r->check = check_mix(st->h, (uint64_t)st->count);
    free(st);
    return LSS_OK;
}

static const read_op RS10 = {0, 0, 10};
static const read_op RS100 = {0, 0, 100};
static const read_op RS1000 = {0, 0, 1000};
static const read_op RC100 = {1, 0, 100};
static const read_op RG100 = {1, 1, 100};

#define READ_CASE(sym, shape, n_ops, lib_)                                   \
    static int sym##_open(bench_run *r, void **out)                          \
    {                                                                        \
        return read_open(&shape, lib_, r, out);                              \
    }                                                                        \
    const bench_ops sym = {n_ops, sym##_open, read_op_step, read_close, NULL};

READ_CASE(ops_read_stream_10, RS10, 40000, 1)
READ_CASE(ops_read_stream_100, RS100, 8000, 1)
READ_CASE(ops_read_stream_1000, RS1000, 800, 1)
READ_CASE(ops_read_category_100, RC100, 8000, 1)
READ_CASE(ops_read_category_100_group, RG100, 3000, 1)
READ_CASE(ops_base_read_stream_10, RS10, 40000, 0)
READ_CASE(ops_base_read_stream_100, RS100, 8000, 0)
READ_CASE(ops_base_read_stream_1000, RS1000, 800, 0)
READ_CASE(ops_base_read_category_100, RC100, 8000, 0)
READ_CASE(ops_base_read_category_100_group, RG100, 3000, 0)

/* ------------------------------------------------------------------------
 * Subscription wake-up.  The main thread appends one W1 message at a time;
 * a second thread blocks in poll() on lss_sub_fd() of an "all"
 * subscription, and on waking drains lss_sub_next() and acknowledges, so
 * appends never overlap.  The latency recorded is commit -> wake: from the
 * moment the store publishes the commit to the hub (lss__hub_publish, which
 * store_sqlite.c calls right after COMMIT; lss-bench is linked with
 * -Wl,--wrap=lss__hub_publish to take the time there) to the subscriber
 * thread running after poll().  Taking the time in the appending thread
 * after lss_append_one() returns would not do: on 2 cores the woken thread
 * often preempts the appender before it returns.  ops/s counts whole round
 * trips (append, wake, acknowledgement).  The baseline (eventfd-wake) is
 * the same two threads passing a bare eventfd, timed from just before the
 * write(): this machine's wake-up floor.
 * ---------------------------------------------------------------------- */

#define N_WAKE 10000

/* When the last publish (or bare eventfd write) began; read by the waker
 * after the eventfd write that follows it. */
static _Atomic uint64_t t_signal;

struct lss__hub;
void __real_lss__hub_publish(struct lss__hub *h, const char *stream,
                             size_t stream_n, int64_t position,
                             int64_t global_position);
void __wrap_lss__hub_publish(struct lss__hub *h, const char *stream,
                             size_t stream_n, int64_t position,
                             int64_t global_position);

void __wrap_lss__hub_publish(struct lss__hub *h, const char *stream,
                             size_t stream_n, int64_t position,
                             int64_t global_position)
{
    atomic_store_explicit(&t_signal, bench_ns(), memory_order_release);
    __real_lss__hub_publish(h, stream, stream_n, position, global_position);
}

typedef struct waker {
    int fd;        /* eventfd of the subscription, or a bare one */
    lss_sub *sub;  /* NULL for the bare eventfd */
    long total, warm;
    bench_hist *hist;
    uint64_t h;
    long pokes;
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long acked;
} waker;

static void *waker_main(void *arg)
{
    waker *w = arg;
    uint64_t h = CHECK_SEED;
    for (long i = 0; i < w->total; i++) {
        struct pollfd p = {w->fd, POLLIN, 0};
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
            ;
        uint64_t t = bench_ns();
        uint64_t t0 = atomic_load_explicit(&t_signal, memory_order_acquire);
        if (i >= w->warm)
            hist_add(w->hist, t > t0 ? t - t0 : 0);
        if (w->sub) {
            lss_poke pk;
            int rc;
            while ((rc = lss_sub_next(w->sub, &pk)) == LSS_ROW) {
                h = check_bytes(h, pk.stream.p, pk.stream.n);
                h = check_mix(h, (uint64_t)check_lib_pos(pk.position));
                h = check_mix(h, (uint64_t)pk.global_position);
                w->pokes++;
            }
            if (rc != LSS_AGAIN && !w->rc)
                w->rc = rc;
        } else {
            uint64_t v;
            if (read(w->fd, &v, sizeof v) == (ssize_t)sizeof v)
                w->pokes += (long)v;
        }
        pthread_mutex_lock(&w->mu);
        w->acked = i + 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    w->h = h;
    return NULL;
}

static int wake_loop(bench_run *r, int with_store)
{
    long n = scaled(r, N_WAKE), warm = n / 20 + 5, total = warm + n;
    lib_store s;
    memset(&s, 0, sizeof s);
    waker w;
    memset(&w, 0, sizeof w);
    w.total = total;
    w.warm = warm;
    w.hist = r->hist;
    int rc = LSS_OK;
    if (with_store) {
        rc = lib_open(&s, r, r->backend == BENCH_FILE, LSS_SYNC_FULL);
        if (rc == LSS_OK) {
            lss_sub_opts so;
            lss_sub_opts_init(&so);
            so.kind = LSS_SUB_ALL;
            rc = lss_subscribe(s.c, NS, NS_N, &so, &w.sub);
            if (rc != LSS_OK)
                fprintf(stderr, "lss-bench: subscribe: %s\n", lss_errmsg(s.c));
            else
                w.fd = lss_sub_fd(w.sub);
        }
    } else {
        w.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w.fd < 0)
            rc = LSS_EIO;
    }
    pthread_t tid;
    if (rc == LSS_OK) {
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        if (pthread_create(&tid, NULL, waker_main, &w) != 0)
            rc = LSS_EINTERNAL;
    }
    if (rc != LSS_OK) {
        lss_sub_close(w.sub);
        lib_close(&s);
        return rc;
    }
    char data[W1_DATA_LEN + 1];
    memcpy(data, W1_DATA, sizeof data);
    lss_msg_in m = {NULL, 0, W1_TYPE, sizeof W1_TYPE - 1, data, W1_DATA_LEN,
                    W1_META, W1_META_LEN};
    int arc = LSS_OK;
    for (long i = 0; i < total; i++) {
        if (i == warm)
            bench_start(r);
        if (with_store) {
            w1_set_counter(data, (uint64_t)i);
            lss_append a;
            memset(&a, 0, sizeof a);
            a.ns = NS;
            a.ns_n = NS_N;
            a.stream = w1_stream[i % W1_STREAMS].s;
            a.stream_n = w1_stream[i % W1_STREAMS].n;
            a.msgs = &m;
            a.count = 1;
            int rc2 = lss_append_one(s.c, &a);
            if (rc2 != LSS_OK && arc == LSS_OK) {
                arc = rc2;
                fprintf(stderr, "lss-bench: append: %s\n", lss_errmsg(s.c));
            }
        } else {
            uint64_t one = 1;
            atomic_store_explicit(&t_signal, bench_ns(), memory_order_release);
            if (write(w.fd, &one, sizeof one) != (ssize_t)sizeof one &&
                arc == LSS_OK)
                arc = LSS_EIO;
        }
        pthread_mutex_lock(&w.mu);
        while (w.acked <= i)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    bench_stop(r);
    pthread_join(tid, NULL);
    r->ops = (double)n;
    r->check = check_mix(w.h, (uint64_t)w.pokes);
    if (arc == LSS_OK && w.rc)
        arc = w.rc;
    if (arc == LSS_OK && w.pokes != total) {
        fprintf(stderr, "lss-bench: %ld pokes for %ld appends\n", w.pokes,
                total);
        arc = LSS_EINTERNAL;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (with_store) {
        lss_sub_close(w.sub);
        lib_close(&s);
    } else {
        close(w.fd);
    }
    return arc;
}

int case_subscribe_wake(bench_run *r)
{
    return wake_loop(r, 1);
}

int case_eventfd_wake(bench_run *r)
{
    return wake_loop(r, 0);
}
