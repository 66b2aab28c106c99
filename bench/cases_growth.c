/* cases_growth.c — W3 store growth (BENCH.md): append 10 M messages (at
 * --size 100) to one durable file store (synchronous=FULL) and show that
 * neither the append rate nor read latency grows with the store beyond the
 * B-tree's log factor.
 *
 * Shape of the store.  W1's message (bench.h) to many streams, as a real
 * event store holds them: one stream per entity, ten categories, streams of
 * ~100 messages at the end (S = total / 100 streams: 100,000 at --size
 * 100), all of them written throughout the run.  W1's 100 streams of
 * 100,000 messages each would keep the stream index's inserts on 100 hot
 * B-tree leaves and hide exactly the cost this case is after: with many
 * streams each append lands on a cold leaf of messages_stream, and its
 * version lookup is a seek down a deeper tree.  Message q (0, 1, ...) goes
 * to stream q % S at position q / S, with the data counter q; S is a
 * multiple of 10, so its category is q % 10 and its global position q + 1
 * (one writer).  Every value read back is therefore known in advance and
 * verified, not only hashed.
 *
 * Appends.  One thread; each operation is one lss_append_many() of 500
 * single-message appends to 500 different streams, which the library
 * commits as one transaction with one fsync (group commit, at most
 * group_commit_max = 512 appends) — what shim-server does with the writes
 * queued in one event-loop turn.  With groups of 100 the fsyncs alone kept
 * this machine under 20,000 messages/s, 10 M messages near 10 minutes; the
 * per-message work (a version seek and an insert into a cold leaf of
 * messages_stream) is the same either way.
 *
 * Checkpoints.  The run is cut into 10 segments (1 M messages each at
 * --size 100).  After each one, untimed for the append figures, it times
 * reads at random streams and positions: stream reads of 10, category
 * reads of 100, last-message and version reads.  The harness's row is the
 * appends alone (ops = lss_append_many calls, rate in messages/s, library
 * allocations per call); the per-segment table goes to stdout as the run
 * goes, into the note (verdict, disk size) and into --json as "detail".
 * At the end a sample of whole streams is read back and compared with what
 * was written.  The data directory is removed at the end. */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS "growth"
#define NS_N (sizeof NS - 1)

#define N_GROWTH 10000000L /* messages at --size 100 */
#define G_PER_STREAM 100   /* messages per stream at the end */
#define G_CATS 10
#define G_REQS 500         /* appends (of 1 message) per lss_append_many */
#define G_SEGS 10
#define G_READS 2000       /* per kind and checkpoint (category: / 4) */
#define G_SAMPLE 500       /* streams read back whole at the end */

enum { RD_STREAM, RD_CAT, RD_LAST, RD_VERSION, RD_KINDS };
static const char *const rd_name[RD_KINDS] = {"stream-10", "category-100",
                                              "last", "version"};

static const char *const g_cat[G_CATS] = {
    "account", "order", "payment", "shipment", "invoice",
    "customer", "product", "cart", "inventory", "session"};

typedef struct seg_fig {
    long msgs;      /* store size after the segment */
    double secs;    /* of its appends */
    double p50, p99; /* per lss_append_many call */
    double rd_p50[RD_KINDS], rd_p99[RD_KINDS];
} seg_fig;

typedef struct growth {
    bench_run *r;
    lss_db *db;
    lss_conn *c;
    char dir[PATH_MAX];
    long total, S;
    long nreads;
    uint64_t h;   /* check */
    long rows;    /* rows hashed */
    uint64_t rng;
    int bad;      /* verification failures */
    bench_hist seg, rd[RD_KINDS];
    seg_fig fig[G_SEGS];
    uint64_t read_ns, read_lib, read_mal, read_ops;
} growth;

static size_t stream_name(char *out, size_t cap, long s)
{
    int n = snprintf(out, cap, "%s-%ld", g_cat[s % G_CATS], s);
    return (size_t)n;
}

/* Messages in stream s once the store holds n. */
static int64_t stream_len(const growth *g, long s, long n)
{
    return s < n ? (n - 1 - s) / g->S + 1 : 0;
}

static uint64_t next_rand(growth *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void fail(growth *g, const char *what, long a, long b)
{
    if (g->bad++ < 5)
        fprintf(stderr, "lss-bench growth: %s: got %ld, expected %ld\n", what,
                a, b);
}

/* Verify a row against message q (stream s) and hash it into the check.
 * The check takes the position through check_lib_pos (a simulated wrong
 * answer changes the check); the verification compares what was read. */
static void take_row(growth *g, const lss_message *m, long q)
{
    char name[32], data[W1_DATA_LEN + 1];
    long s = q % g->S;
    size_t nn = stream_name(name, sizeof name, s);
    if (m->position != q / g->S)
        fail(g, "position", (long)m->position, q / g->S);
    if (m->global_position != q + 1)
        fail(g, "global position", (long)m->global_position, q + 1);
    memcpy(data, W1_DATA, sizeof data);
    w1_set_counter(data, (uint64_t)q);
    if (m->stream.n != nn || memcmp(m->stream.p, name, nn) ||
        m->type.n != sizeof W1_TYPE - 1 ||
        memcmp(m->type.p, W1_TYPE, m->type.n) || m->data.n != W1_DATA_LEN ||
        memcmp(m->data.p, data, W1_DATA_LEN) || !m->metadata.p ||
        m->metadata.n != W1_META_LEN ||
        memcmp(m->metadata.p, W1_META, W1_META_LEN))
        fail(g, "contents of message", q, q);
    g->h = check_msg(g->h, m->stream.p, m->stream.n,
                     check_lib_pos(m->position), m->global_position,
                     m->type.p, m->type.n, m->data.p, m->data.n,
                     m->metadata.p, m->metadata.n);
    g->rows++;
}

/* Read rows of a cursor; row k must be message q0 + k * step. */
static int take_cursor(growth *g, lss_cursor *cur, long q0, long step,
                       long want)
{
    const lss_message *m;
    long k = 0;
    int rc;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW)
        take_row(g, m, q0 + k++ * step);
    lss_cursor_close(cur);
    if (rc != LSS_DONE)
        return rc;
    if (k != want)
        fail(g, "rows", k, want);
    return LSS_OK;
}

/* One timed read of the given kind against a store of n messages. */
static int read_one(growth *g, int kind, long n)
{
    char name[32];
    long s = (long)(next_rand(g) % (uint64_t)(n < g->S ? n : g->S));
    size_t nn = stream_name(name, sizeof name, s);
    int64_t len = stream_len(g, s, n);
    lss_read_opts o;
    lss_read_opts_init(&o);
    lss_cursor *cur;
    int rc;
    switch (kind) {
    case RD_STREAM: {
        int64_t span = len > 10 ? len - 10 + 1 : 1;
        int64_t pos = (int64_t)(next_rand(g) % (uint64_t)span);
        o.position = pos;
        o.batch_size = 10;
        rc = lss_read_stream(g->c, NS, NS_N, name, nn, &o, &cur);
        if (rc == LSS_OK)
            rc = take_cursor(g, cur, pos * g->S + s, g->S,
                             len - pos < 10 ? (long)(len - pos) : 10);
        return rc;
    }
    case RD_CAT: {
        /* from global position g0 (message g0 - 1): 100 rows exist */
        long room = n > 1100 ? n - 1100 : 1;
        long g0 = 1 + (long)(next_rand(g) % (uint64_t)room);
        int c = (int)(next_rand(g) % G_CATS);
        long q0 = g0 - 1 + ((c - (g0 - 1) % G_CATS) + G_CATS) % G_CATS;
        long want = q0 < n ? (n - 1 - q0) / G_CATS + 1 : 0;
        o.position = g0;
        o.batch_size = 100;
        rc = lss_read_category(g->c, NS, NS_N, g_cat[c], strlen(g_cat[c]), &o,
                               &cur);
        if (rc == LSS_OK)
            rc = take_cursor(g, cur, q0, G_CATS, want < 100 ? want : 100);
        return rc;
    }
    case RD_LAST:
        rc = lss_read_last(g->c, NS, NS_N, name, nn, NULL, 0, &cur);
        if (rc == LSS_OK)
            rc = take_cursor(g, cur, (long)(len - 1) * g->S + s, 1,
                             len > 0);
        return rc;
    default: {
        int64_t v;
        rc = lss_stream_version(g->c, NS, NS_N, name, nn, &v);
        if (rc == LSS_OK && v != len - 1)
            fail(g, "version", (long)v, (long)(len - 1));
        g->h = check_mix(g->h, (uint64_t)v);
        return rc;
    }
    }
}

/* Timed reads after segment k; their time and allocations are kept out of
 * the append figures. */
static int checkpoint(growth *g, int k, long n)
{
    uint64_t lib0 = bench_lib_allocs(), mal0 = bench_process_mallocs();
    uint64_t t0 = bench_ns();
    g->rng = CHECK_SEED + (uint64_t)k; /* same reads in every run */
    int rc = LSS_OK;
    for (int kind = 0; kind < RD_KINDS && rc == LSS_OK; kind++) {
        hist_reset(&g->rd[kind]);
        long cnt = kind == RD_CAT ? g->nreads / 4 : g->nreads;
        for (long i = 0; i < cnt && rc == LSS_OK; i++) {
            uint64_t t = bench_ns();
            rc = read_one(g, kind, n);
            hist_add(&g->rd[kind], bench_ns() - t);
        }
        g->read_ops += (uint64_t)cnt;
        g->fig[k].rd_p50[kind] = hist_quantile(&g->rd[kind], 0.5);
        g->fig[k].rd_p99[kind] = hist_quantile(&g->rd[kind], 0.99);
    }
    if (rc != LSS_OK)
        fprintf(stderr, "lss-bench growth: read: %s\n", lss_errmsg(g->c));
    g->read_ns += bench_ns() - t0;
    g->read_lib += bench_lib_allocs() - lib0;
    uint64_t mal1 = bench_process_mallocs();
    if (mal1 != UINT64_MAX)
        g->read_mal += mal1 - mal0;
    return rc;
}

/* Whole streams, a spread sample, read back and compared at the end. */
static int sample_readback(growth *g)
{
    long n = g->total, count = g->S < G_SAMPLE ? g->S : G_SAMPLE;
    for (long k = 0; k < count; k++) {
        char name[32];
        long s = (long)(((uint64_t)k * 7919u) % (uint64_t)g->S);
        size_t nn = stream_name(name, sizeof name, s);
        lss_read_opts o;
        lss_read_opts_init(&o);
        o.batch_size = 0;
        lss_cursor *cur;
        int rc = lss_read_stream(g->c, NS, NS_N, name, nn, &o, &cur);
        if (rc == LSS_OK)
            rc = take_cursor(g, cur, s, g->S, (long)stream_len(g, s, n));
        if (rc != LSS_OK) {
            fprintf(stderr, "lss-bench growth: read back: %s\n",
                    lss_errmsg(g->c));
            return rc;
        }
    }
    return LSS_OK;
}

/* Bytes of the files in the data directory (database, WAL, registry). */
static long long dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    long long sum = 0;
    if (!d)
        return -1;
    struct dirent *e;
    char path[PATH_MAX + 256];
    struct stat st;
    while ((e = readdir(d))) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            sum += (long long)st.st_size;
    }
    closedir(d);
    return sum;
}


static int store_open(growth *g)
{
    static unsigned seq;
    int n = snprintf(g->dir, sizeof g->dir, "%s/growth-%u", g->r->dir, ++seq);
    if (n < 0 || (size_t)n >= sizeof g->dir || mkdir(g->dir, 0700) != 0) {
        fprintf(stderr, "lss-bench: cannot create %s: %s\n", g->dir,
                strerror(errno));
        g->dir[0] = '\0';
        return LSS_EIO;
    }
    lss_options o;
    lss_options_init(&o);
    o.allocator = &bench_allocator;
    o.sync = LSS_SYNC_FULL;
    int rc = lss_open(g->dir, &o, &g->db);
    if (rc != LSS_OK) {
        fprintf(stderr, "lss-bench: lss_open: %s\n", lss_db_errmsg(g->db));
        return rc;
    }
    return bench_session_with_ns(g->db, NS, NS_N, &g->c);
}

static void store_close(growth *g)
{
    lss_conn_close(g->c);
    lss_close(g->db);
    if (g->dir[0])
        bench_remove_dir(g->dir);
    g->c = NULL;
    g->db = NULL;
    g->dir[0] = '\0';
}

typedef struct call_buf {
    char data[G_REQS][W1_DATA_LEN + 1];
    char name[G_REQS][32];
    lss_msg_in m[G_REQS];
    lss_append a[G_REQS];
} call_buf;

/* One lss_append_many of messages q0 .. q0 + k - 1, results verified. */
static int append_call(growth *g, call_buf *b, long q0, long k)
{
    for (long j = 0; j < k; j++) {
        long q = q0 + j;
        w1_set_counter(b->data[j], (uint64_t)q);
        lss_append *a = &b->a[j];
        memset(a, 0, sizeof *a);
        a->ns = NS;
        a->ns_n = NS_N;
        a->stream = b->name[j];
        a->stream_n = stream_name(b->name[j], sizeof b->name[j], q % g->S);
        a->msgs = &b->m[j];
        a->count = 1;
    }
    int rc = lss_append_many(g->c, b->a, (size_t)k);
    for (long j = 0; j < k && rc == LSS_OK; j++) {
        long q = q0 + j;
        rc = b->a[j].rc;
        if (rc == LSS_OK && (b->a[j].position != q / g->S ||
                             b->a[j].global_position != q + 1))
            fail(g, "append position", (long)b->a[j].position, q / g->S);
    }
    if (rc != LSS_OK)
        fprintf(stderr, "lss-bench growth: append: %s\n", lss_errmsg(g->c));
    return rc;
}

static void fmt_ns(char *out, size_t cap, double ns)
{
    if (ns < 1e3)
        snprintf(out, cap, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(out, cap, "%.1fus", ns / 1e3);
    else
        snprintf(out, cap, "%.2fms", ns / 1e6);
}

static void print_seg(const seg_fig *f, int k, const seg_fig *prev)
{
    char v[2 * (RD_KINDS + 1)][16];
    fmt_ns(v[0], 16, f->p50);
    fmt_ns(v[1], 16, f->p99);
    for (int i = 0; i < RD_KINDS; i++) {
        fmt_ns(v[2 + 2 * i], 16, f->rd_p50[i]);
        fmt_ns(v[3 + 2 * i], 16, f->rd_p99[i]);
    }
    if (k == 0)
        printf("      growth  %11s %9s %8s %8s | %-17s %-17s %-17s %-17s "
               "(p50/p99)\n",
               "messages", "msg/s", "p50", "p99", rd_name[0], rd_name[1],
               rd_name[2], rd_name[3]);
    long seg = f->msgs - (prev ? prev->msgs : 0);
    printf("      growth  %11ld %9.0f %8s %8s | %8s/%-8s %8s/%-8s %8s/%-8s "
           "%8s/%-8s\n",
           f->msgs, (double)seg / f->secs, v[0], v[1], v[2], v[3], v[4], v[5],
           v[6], v[7], v[8], v[9]);
    fflush(stdout);
}

static char growth_note[1024];
static char growth_detail[8192];

static void write_detail(growth *g, long long bytes)
{
    size_t cap = sizeof growth_detail, n = 0;
    char *p = growth_detail;
#define PUT(...)                                                             \
    do {                                                                     \
        int w_ = snprintf(p + n, cap - n, __VA_ARGS__);                      \
        if (w_ > 0)                                                          \
            n = n + (size_t)w_ < cap ? n + (size_t)w_ : cap - 1;             \
    } while (0)
    PUT("{\"messages\":%ld,\"streams\":%ld,\"categories\":%d,"
        "\"appends_per_call\":%d,\"bytes\":%lld,\"segments\":[",
        g->total, g->S, G_CATS, G_REQS, bytes);
    for (int k = 0; k < G_SEGS; k++) {
        const seg_fig *f = &g->fig[k];
        long seg = f->msgs - (k ? g->fig[k - 1].msgs : 0);
        PUT("%s{\"messages\":%ld,\"msgs_per_sec\":%.1f,\"p50_ns\":%.0f,"
            "\"p99_ns\":%.0f",
            k ? "," : "", f->msgs, (double)seg / f->secs, f->p50, f->p99);
        for (int i = 0; i < RD_KINDS; i++)
            PUT(",\"%s\":{\"p50_ns\":%.0f,\"p99_ns\":%.0f}", rd_name[i],
                f->rd_p50[i], f->rd_p99[i]);
        PUT("}");
    }
    PUT("]}");
#undef PUT
}

/* The verdict: last segment's rate over the first's, read p50 at the end
 * over the first checkpoint's (the log factor: near 1). */
static void write_note(growth *g, long long bytes)
{
    const seg_fig *a = &g->fig[0], *z = &g->fig[G_SEGS - 1];
    double ra = (double)a->msgs / a->secs,
           rz = (double)(z->msgs - g->fig[G_SEGS - 2].msgs) / z->secs;
    int n = snprintf(growth_note, sizeof growth_note,
                     "%ld msgs to %ld streams in %d categories, %d appends of "
                     "1 per call; last segment %.0f msg/s = %.3fx the first "
                     "(%.0f); read p50 at %ld vs %ld msgs:",
                     g->total, g->S, G_CATS, G_REQS, rz, rz / ra, ra, z->msgs,
                     a->msgs);
    for (int i = 0; i < RD_KINDS && n > 0 && (size_t)n < sizeof growth_note;
         i++)
        n += snprintf(growth_note + n, sizeof growth_note - (size_t)n,
                      " %s %.2fx", rd_name[i],
                      a->rd_p50[i] > 0 ? z->rd_p50[i] / a->rd_p50[i] : 0);
    if (n > 0 && (size_t)n < sizeof growth_note)
        snprintf(growth_note + n, sizeof growth_note - (size_t)n,
                 "; store %.1f MB = %.0f bytes/msg; reads %.2f lib allocs "
                 "each",
                 (double)bytes / 1e6, (double)bytes / (double)g->total,
                 g->read_ops ? (double)g->read_lib / (double)g->read_ops : 0);
}

int case_growth_file(bench_run *r)
{
    growth *g = calloc(1, sizeof *g);
    call_buf *b = calloc(1, sizeof *b);
    if (!g || !b) {
        free(g);
        free(b);
        return LSS_ENOMEM;
    }
    g->r = r;
    g->total = scaled(r, N_GROWTH);
    if (g->total < G_SEGS * G_REQS)
        g->total = G_SEGS * G_REQS;
    g->S = g->total / G_PER_STREAM / G_CATS * G_CATS;
    if (g->S < 100)
        g->S = 100;
    g->nreads = scaled(r, G_READS);
    if (g->nreads < 200)
        g->nreads = 200;
    if (g->nreads > G_READS)
        g->nreads = G_READS;
    g->h = CHECK_SEED;
    for (long j = 0; j < G_REQS; j++) {
        memcpy(b->data[j], W1_DATA, sizeof W1_DATA);
        b->m[j] = (lss_msg_in){NULL, 0, W1_TYPE, sizeof W1_TYPE - 1,
                               b->data[j], W1_DATA_LEN, W1_META, W1_META_LEN};
    }
    int rc = store_open(g);
    long q = 0, calls = 0;
    if (rc == LSS_OK)
        bench_start(r);
    for (int k = 0; k < G_SEGS && rc == LSS_OK; k++) {
        long end = g->total * (k + 1) / G_SEGS;
        hist_reset(&g->seg);
        uint64_t t0 = bench_ns(), t = t0;
        while (q < end && rc == LSS_OK) {
            long m = end - q < G_REQS ? end - q : G_REQS;
            rc = append_call(g, b, q, m);
            uint64_t t1 = bench_ns();
            hist_add(&g->seg, t1 - t);
            t = t1;
            q += m;
            calls++;
        }
        seg_fig *f = &g->fig[k];
        f->msgs = q;
        f->secs = (double)(t - t0) / 1e9;
        f->p50 = hist_quantile(&g->seg, 0.5);
        f->p99 = hist_quantile(&g->seg, 0.99);
        hist_merge(r->hist, &g->seg);
        if (rc == LSS_OK)
            rc = checkpoint(g, k, q);
        if (rc == LSS_OK)
            print_seg(f, k, k ? &g->fig[k - 1] : NULL);
    }
    if (rc == LSS_OK) {
        bench_stop(r);
        /* the appends alone: the checkpoints' reads taken out */
        r->t1 -= g->read_ns;
        r->lib1 -= g->read_lib;
        if (r->mal1 != UINT64_MAX)
            r->mal1 -= g->read_mal;
        long long bytes = dir_bytes(g->dir);
        rc = sample_readback(g);
        write_detail(g, bytes);
        write_note(g, bytes);
        r->note = growth_note;
        r->detail = growth_detail;
    }
    r->ops = (double)calls;
    r->msgs = (double)q;
    r->check = check_mix(g->h, (uint64_t)g->rows);
    if (rc == LSS_OK && g->bad) {
        fprintf(stderr, "lss-bench growth: %d values read back differ from "
                        "what was written\n", g->bad);
        rc = LSS_EINTERNAL;
    }
    store_close(g);
    free(b);
    free(g);
    return rc;
}
