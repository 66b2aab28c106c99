/* bench.h — what lss-bench's files share: the per-run record a case fills,
 * the latency histogram, check hashing, the W1 message, the allocation
 * counters and the plain-SQLite baseline (baseline_sqlite.c). */
#ifndef LSS_BENCH_H
#define LSS_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "streamstore.h"

/* ------------------------------------------------------------------------
 * Latency histogram, HDR style: exact below 64 ns, then 64 linear
 * sub-buckets per power of two (under 1.6 % error) up to 2^42 ns.  Fixed
 * size, so recording never allocates.
 * ---------------------------------------------------------------------- */

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 42
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct bench_hist {
    uint64_t n;
    double sum; /* ns */
    uint64_t b[HIST_BUCKETS];
} bench_hist;

static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    if (k >= HIST_MAX_BITS)
        return HIST_BUCKETS - 1;
    return (k - HIST_SUB_BITS + 1) * HIST_SUB +
           (unsigned)((v >> (k - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* n operations that took ns each (n > 1: a batch timed as a whole). */
static inline void hist_add_n(bench_hist *h, uint64_t ns, uint64_t n)
{
    h->b[hist_index(ns)] += n;
    h->n += n;
    h->sum += (double)ns * (double)n;
}

static inline void hist_add(bench_hist *h, uint64_t ns)
{
    hist_add_n(h, ns, 1);
}

void hist_reset(bench_hist *h);
void hist_merge(bench_hist *into, const bench_hist *from);
/* The value below which a fraction q of the samples lie (bucket middle). */
double hist_quantile(const bench_hist *h, double q);

/* ------------------------------------------------------------------------
 * One run of one case.  A whole-run case does its setup, calls
 * bench_start(), runs the timed loop recording each operation's latency
 * into r->hist, calls bench_stop(), then reads back what it produced into
 * r->check.  Allocation counters are read at start and stop, so warm-up
 * done before bench_start() is not counted.  (Steppers, below, leave the
 * timing to the harness.)
 * ---------------------------------------------------------------------- */

#define BENCH_MEMORY 0
#define BENCH_FILE 1

typedef struct bench_run {
    /* in */
    long size;           /* work scale, 100 = default */
    int backend;         /* BENCH_MEMORY / BENCH_FILE (read, subscribe) */
    const char *dir;     /* scratch directory for file stores */
    bench_hist *hist;
    /* out */
    double ops;          /* operations in the timed window */
    double bytes;        /* bytes processed, 0 when MB/s means nothing */
    double msgs;         /* messages moved, 0 when msgs/s means nothing */
    double msgs_per_op;  /* steppers: messages per operation, 0 = none */
    uint64_t check;      /* must not depend on timing; same in every run */
    const char *note;    /* static text printed under the row, or NULL */
    /* allocation calls counted elsewhere (the server's /metrics): used
     * instead of this process's counters when ext_alloc is set; ext_mal
     * UINT64_MAX when the server had no malloc counter */
    int ext_alloc;
    uint64_t ext_lib, ext_mal;
    const char *detail;  /* static JSON object for --json's "detail", or NULL */
    /* latencies measured elsewhere (wrk): used instead of hist when set */
    int lat_given;
    double lat_mean, lat_p50, lat_p99, lat_p999; /* ns, < 0 = unknown */
    /* kept by bench_start / bench_stop */
    uint64_t t0, t1;
    uint64_t lib0, lib1, mal0, mal1;
    int started, stopped;
} bench_run;

/* Remove a scratch directory of plain files (cases_store.c). */
void bench_remove_dir(const char *dir);

/* Open a session on db and create namespace ns in it; a failure is
 * reported on stderr and returned (cases_store.c). */
int bench_session_with_ns(lss_db *db, const char *ns, size_t ns_n,
                          lss_conn **c);

static inline uint64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_start(bench_run *r);
void bench_stop(bench_run *r);

/* work scaled by --size, at least 1 */
static inline long scaled(const bench_run *r, long base)
{
    long n = base * r->size / 100;
    return n > 0 ? n : 1;
}

/* ------------------------------------------------------------------------
 * Allocation counting.  bench_allocator counts the library's calls (pass it
 * in lss_options); bench_process_mallocs() reads the LD_PRELOAD counter of
 * malloc_count.so, or returns UINT64_MAX when it is not loaded.
 * ---------------------------------------------------------------------- */

extern const lss_allocator bench_allocator;
uint64_t bench_lib_allocs(void);
uint64_t bench_process_mallocs(void);

/* ------------------------------------------------------------------------
 * Check values.  Only what is deterministic for a given --size goes in:
 * positions, global positions (single writer), stream names, types,
 * payload bytes and counts; never generated ids or times.
 * ---------------------------------------------------------------------- */

#define CHECK_SEED 0xcbf29ce484222325u

static inline uint64_t check_mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15u;
    return h ^ (h >> 32);
}

/* Word at a time: cheap enough to sit inside timed read loops. */
static inline uint64_t check_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *u = p;
    h = check_mix(h, n);
    for (; n >= 8; u += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, u, 8);
        h = check_mix(h, v);
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, u, n);
        h = check_mix(h, v);
    }
    return h;
}

/* LSS_BENCH_BREAK=1 (or --self-check) makes the library side of the bench
 * flip the first position it hashes in each run: a simulated wrong answer
 * that the check value, and the comparison with the baseline, must catch. */
extern atomic_int bench_break_pending;
extern int bench_break; /* the flip is on for this run */

static inline int64_t check_lib_pos(int64_t pos)
{
    if (atomic_load_explicit(&bench_break_pending, memory_order_relaxed) &&
        atomic_exchange(&bench_break_pending, 0))
        return pos ^ 1;
    return pos;
}

/* One message read back.  meta NULL (no metadata) hashes unlike "". */
static inline uint64_t check_msg(uint64_t h, const char *stream,
                                 size_t stream_n, int64_t pos, int64_t gpos,
                                 const char *type, size_t type_n,
                                 const char *data, size_t data_n,
                                 const char *meta, size_t meta_n)
{
    h = check_mix(h, (uint64_t)pos);
    h = check_mix(h, (uint64_t)gpos);
    h = check_bytes(h, stream, stream_n);
    h = check_bytes(h, type, type_n);
    h = check_bytes(h, data, data_n);
    if (meta)
        h = check_bytes(h, meta, meta_n);
    else
        h = check_mix(h, 0x6e756c6cu);
    return h;
}

/* ------------------------------------------------------------------------
 * The W1 message (BENCH.md): type TestEvent, its data and metadata.  The
 * data's "counter" is a 19-digit number like W1's nanosecond timestamp, but
 * set from the message's sequence number so check values are reproducible.
 * ---------------------------------------------------------------------- */

#define W1_TYPE "TestEvent"
#define W1_DATA                                                              \
    "{\"counter\":1732233600000000000,\"payload\":\"test data for profiling " \
    "with some content to make it realistic\",\"nested\":{\"field1\":"      \
    "\"value1\",\"field2\":42,\"field3\":true}}"
#define W1_COUNTER_OFF 11 /* the 19 digits start after {"counter": */
#define W1_META                                                              \
    "{\"correlationStreamName\":\"test-correlation\",\"source\":\"load-test\"}"
#define W1_DATA_LEN (sizeof W1_DATA - 1)
#define W1_META_LEN (sizeof W1_META - 1)

/* Write 1732233600000000000 + k as the counter of data (a W1_DATA copy). */
static inline void w1_set_counter(char *data, uint64_t k)
{
    uint64_t v = 1732233600000000000u + k;
    for (int i = 18; i >= 0; i--, v /= 10)
        data[W1_COUNTER_OFF + i] = (char)('0' + v % 10);
}

/* A deterministic, time-ordered UUID text for sequence k (client ids). */
static inline void w1_set_id(char id[36], uint64_t k)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(id, "0190f0e2-7c3a-7d4e-8f00-000000000000", 36);
    for (int i = 35; i >= 24; i--, k >>= 4)
        id[i] = hex[k & 15];
}

/* test-stream-0 .. test-stream-99, W1's stream names. */
#define W1_STREAMS 100
typedef struct bench_name {
    char s[32];
    size_t n;
} bench_name;
extern bench_name w1_stream[W1_STREAMS];
void bench_names_init(void);

/* ------------------------------------------------------------------------
 * The baseline: a plain SQLite program on the library's schema, pragmas and
 * statements, with no library code in between (baseline_sqlite.c).
 * ---------------------------------------------------------------------- */

typedef struct base_db base_db;

/* One message of an append; id NULL = generate a UUIDv7. */
typedef struct base_msg {
    const char *id;
    size_t id_n;
    const char *type;
    size_t type_n;
    const char *data;
    size_t data_n;
    const char *meta;
    size_t meta_n;
} base_msg;

/* path NULL = a memdb database (as ":memory:" stores); else a file with
 * journal_mode=WAL and the given synchronous level.  0 or -1. */
int base_open(const char *path, int sync, base_db **out);
void base_close(base_db *b);
const char *base_errmsg(base_db *b);
/* One append transaction, as the library runs it. */
int base_append(base_db *b, const char *stream, size_t stream_n,
                const base_msg *m, size_t n);
/* The library's read statements; each row is hashed into *h with
 * check_msg() and counted into *rows.  limit <= 0 = all. */
int base_read_stream(base_db *b, const char *stream, size_t stream_n,
                     int64_t from, int64_t limit, uint64_t *h, long *rows);
int base_read_category(base_db *b, const char *cat, size_t cat_n,
                       int64_t from, int64_t limit, int64_t member,
                       int64_t size, uint64_t *h, long *rows);

/* ------------------------------------------------------------------------
 * Cases written as steppers: the harness opens the store, runs op(i) for
 * i = 0, 1, ... (untimed warm-up first, then the timed operations), and
 * closes, which reads back into r->check.  A stepper and its baseline can
 * then run in alternating chunks of operations within one run, so that the
 * host's drift hits both sides alike.  open() may set r->msgs_per_op.
 * ---------------------------------------------------------------------- */

typedef struct bench_ops {
    long base_n; /* timed operations at --size 100 */
    int (*open)(bench_run *r, void **state);
    /* operation i, timed by the harness into r->hist; or NULL, see chunk */
    int (*op)(void *state, long i);
    /* merge any histograms of its own into r->hist, read back into
     * r->check when ok, free state */
    int (*close)(void *state, bench_run *r, int ok);
    /* when op is NULL: operations [from, to) at once (threads), recording
     * their own latencies when timed */
    int (*chunk)(void *state, long from, long to, int timed);
} bench_ops;

/* Store cases (cases_store.c) */
extern const bench_ops ops_append_1_mem, ops_base_append_1_mem;
extern const bench_ops ops_append_1_file, ops_base_append_1_file;
extern const bench_ops ops_append_1_id_mem, ops_base_append_1_id_mem;
extern const bench_ops ops_append_100_mem, ops_base_append_100_mem;
extern const bench_ops ops_append_8t_file;
extern const bench_ops ops_read_stream_10, ops_base_read_stream_10;
extern const bench_ops ops_read_stream_100, ops_base_read_stream_100;
extern const bench_ops ops_read_stream_1000, ops_base_read_stream_1000;
extern const bench_ops ops_read_category_100, ops_base_read_category_100;
extern const bench_ops ops_read_category_100_group,
    ops_base_read_category_100_group;
int case_subscribe_wake(bench_run *r);
int case_eventfd_wake(bench_run *r);
/* Close the seeded read stores (at exit). */
void bench_store_cleanup(void);

/* W1 over HTTP (cases_http.c): the load generator against shim-server. */
typedef struct http_opts {
    const char *shim; /* --shim: shim-server; NULL = next to lss-bench */
    double seconds;   /* --seconds: time-bounded measurements when > 0 */
    long requests;    /* --requests: requests per measurement when > 0 */
    int workers;      /* --workers: connections (10) */
} http_opts;
extern http_opts bench_http;
/* The shim-server executable, or NULL when there is none; where it was
 * looked for. */
const char *http_shim_path(void);
const char *http_shim_tried(void);
int case_http_w1(bench_run *r);      /* shim-server --test-mode (memory) */
int case_http_w1_file(bench_run *r); /* --data-dir: durable SQLite, FULL */
int case_http_null(bench_run *r);    /* --null-store: the HTTP ceiling */
int case_http_null_wrk(bench_run *r); /* wrk against --null-store */
/* wrk on PATH, or NULL. */
const char *http_wrk_path(void);
/* lss-bench http --url ...: argv[1] is "http". */
int http_main(int argc, char **argv);

/* W3 (cases_sse.c) on top of cases_http.c: one shim-server --test-mode at a
 * time; the W1 loader against it (bench_http.workers connections, requests
 * timed after a warm-up), calling on_write for every acknowledged write,
 * warm-up included (sent_ns: bench_ns() when it was sent), after the run. */
typedef void (*http_write_hook)(void *arg, int stream, int64_t pos,
                                uint64_t sent_ns);
const char *http_token(void);
int http_shim_memory_start(int *port, int *pid);
void http_shim_memory_stop(void);
int http_w1_load(bench_run *r, int port, int pid, long requests,
                 http_write_hook on_write, void *arg);
/* W3 with SSE subscribers (cases_sse.c) */
extern long bench_sse_subscribers; /* --subscribers (10,000) */
int case_sse_w3(bench_run *r);
int case_fanout_floor(bench_run *r);
/* W3 store growth (cases_growth.c): 10 M messages into a durable file store */
int case_growth_file(bench_run *r);

#endif /* LSS_BENCH_H */
