/* lss-bench — libstreamstore's benchmark, shaped like SQLite's speedtest1:
 * numbered, named cases, each run --runs times and reported as the median,
 * with a verification value so that a fast wrong answer shows (BENCH.md).
 *
 *   lss-bench [CASE...|all] [--runs N] [--size N] [--json FILE]
 *             [--backend memory|file] [--dir DIR] [--count-malloc]
 *             [--no-baseline] [--shim PATH] [--workers N]
 *             [--seconds S | --requests N]
 *   lss-bench http --url http://HOST:PORT [--workers N]
 *             [--seconds S | --requests N] [--token T] [--null-store]
 *   lss-bench compare OLD.json NEW.json [--band PCT]
 *   lss-bench --self-check [--size N]
 *   lss-bench --list
 *
 * CASE is a name or number from --list; none (or "all") runs every case
 * except baselines, which run paired with the case they serve.  A case and
 * its baseline that are both steppers (bench_ops) run interleaved within
 * each run, in alternating chunks of 1/40 of the operations (1/10 for the
 * threaded case, whose group commit ramps up at each chunk); other pairs
 * alternate whole runs (ABBA order).  The ratio printed is the median over
 * --runs of the per-run ratios of ops/s; for interleaved pairs a run's
 * ratio is itself the median over its chunk pairs, so a burst of load from
 * elsewhere that hits a few chunks does not move it.
 * --no-baseline skips the paired runs (for profiling one side).
 * --size scales the work of every case (100 = default).  --backend picks
 * the store of the read and subscribe cases (append cases name theirs).
 * --count-malloc re-executes lss-bench with malloc_count.so preloaded to
 * count every malloc/calloc/realloc of the process; without it that column
 * prints "-".  LSS_BENCH_BREAK=1 simulates a wrong answer (the library side
 * hashes one position flipped) so the check values must change.
 *
 * Case numbers: 1xx JSON, 2xx append, 3xx read, 4xx subscribe, 5xx HTTP
 * (W1, cases_http.c); a case's baseline is its number + 50 where it has its
 * own.  The HTTP cases (500 memory, 501 durable file, both against 502, the
 * null-store ceiling) start shim-server themselves (--shim PATH, default
 * ../shim-server/shim-server next to lss-bench; skipped without it) and run
 * interleaved: null, memory, file in each run.  Each measurement is a fixed
 * number of requests (scaled by --size) so that its check is deterministic;
 * --requests N sets that number, --seconds S makes them time-bounded, and
 * --workers N sets the connections (10).  `lss-bench http` is the load
 * generator alone, against any server.
 *
 * 6xx are W3 (cases_sse.c, cases_growth.c).  Cases that take minutes at
 * --size 100 (600 and 650, 10,000 subscribers; 610, store growth) are left
 * out of "all": name them.
 *
 * Adding a case: write a stepper (bench_ops: open, op(i), close) or one
 * `int case_xxx(bench_run *r)` (bench.h explains both contracts: setup,
 * bench_start, timed loop recording r->hist, bench_stop, read back into
 * r->check), then add one line to cases[]. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "json.h"

#ifdef LSS_BENCH_CALLGRIND
/* Under `valgrind --tool=callgrind --instr-atstart=no` only the timed
 * windows are measured; outside valgrind these are a few no-op insns. */
#include <valgrind/callgrind.h>
#define TIMED_WINDOW_BEGIN() CALLGRIND_START_INSTRUMENTATION
#define TIMED_WINDOW_END() CALLGRIND_STOP_INSTRUMENTATION
#else
#define TIMED_WINDOW_BEGIN() ((void)0)
#define TIMED_WINDOW_END() ((void)0)
#endif

/* ------------------------------------------------------------------------
 * Counters, histogram, timed window
 * ---------------------------------------------------------------------- */

atomic_int bench_break_pending;
int bench_break; /* LSS_BENCH_BREAK or --self-check's broken pass */

static atomic_ullong lib_allocs;

static void *count_malloc(void *ctx, size_t n)
{
    (void)ctx;
    atomic_fetch_add_explicit(&lib_allocs, 1, memory_order_relaxed);
    return malloc(n);
}

static void *count_realloc(void *ctx, void *p, size_t old, size_t n)
{
    (void)ctx;
    (void)old;
    atomic_fetch_add_explicit(&lib_allocs, 1, memory_order_relaxed);
    return realloc(p, n);
}

static void count_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

const lss_allocator bench_allocator = {count_malloc, count_realloc,
                                       count_free, NULL};

uint64_t bench_lib_allocs(void)
{
    return atomic_load_explicit(&lib_allocs, memory_order_relaxed);
}

typedef unsigned long long (*malloc_calls_fn)(void);
static malloc_calls_fn malloc_calls;

/* Resolved once, before any thread starts. */
static void malloc_counter_init(void)
{
    void *p = dlsym(RTLD_DEFAULT, "lss_bench_malloc_calls");
    if (p)
        memcpy(&malloc_calls, &p, sizeof p);
}

uint64_t bench_process_mallocs(void)
{
    return malloc_calls ? malloc_calls() : UINT64_MAX;
}

void hist_reset(bench_hist *h)
{
    memset(h, 0, sizeof *h);
}

void hist_merge(bench_hist *into, const bench_hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->n += from->n;
    into->sum += from->sum;
}

static double bucket_mid(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned g = i / HIST_SUB, s = i % HIST_SUB;
    unsigned shift = g - 1; /* k - HIST_SUB_BITS */
    double lo = (double)((uint64_t)(HIST_SUB + s) << shift);
    double width = (double)((uint64_t)1 << shift);
    return lo + (width - 1) / 2;
}

double hist_quantile(const bench_hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank)
            return bucket_mid(i);
    }
    return bucket_mid(HIST_BUCKETS - 1);
}

void bench_start(bench_run *r)
{
    r->started = 1;
    r->lib0 = bench_lib_allocs();
    r->mal0 = bench_process_mallocs();
    atomic_store(&bench_break_pending, bench_break);
    TIMED_WINDOW_BEGIN();
    r->t0 = bench_ns();
}

void bench_stop(bench_run *r)
{
    r->t1 = bench_ns();
    TIMED_WINDOW_END();
    r->lib1 = bench_lib_allocs();
    r->mal1 = bench_process_mallocs();
    r->stopped = 1;
}

/* ------------------------------------------------------------------------
 * JSON cases (W2 json)
 * ---------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *u = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ u[i]) * 0x100000001b3u;
    return h;
}

#define FNV_SEED 0xcbf29ce484222325u

static const char w1_request[] =
    "[\"stream.write\",\"test-stream-42\",{\"type\":\"TestEvent\",\"data\":{"
    "\"counter\":1732233600123456789,\"payload\":\"test data for profiling "
    "with some content to make it realistic\",\"nested\":{\"field1\":"
    "\"value1\",\"field2\":42,\"field3\":true}},\"metadata\":{"
    "\"correlationStreamName\":\"test-correlation\",\"source\":"
    "\"load-test\"}}]";

/* One event-like record: ids, nested objects, arrays, numbers of every
 * form, escapes and some non-ASCII text, as clients really send. */
static void put_record(lss_json_writer *w, unsigned k)
{
    char s[96];
    int n = snprintf(s, sizeof s,
                     "{\"id\":\"0190f0e2-7c3a-7d4e-8f00-%012u\",\"type\":",
                     k * 7919u);
    lss__jw_raw(w, s, (size_t)n);
    lss__jw_strz(w, k % 3 ? "OrderPlaced" : "PaymentCaptured");
    LSS_JW_LIT(w, ",\"position\":");
    lss__jw_int(w, (int64_t)k);
    LSS_JW_LIT(w, ",\"data\":{\"orderId\":");
    n = snprintf(s, sizeof s, "ord-%06u", k);
    lss__jw_str(w, s, (size_t)n);
    LSS_JW_LIT(w, ",\"customer\":{\"name\":");
    n = snprintf(s, sizeof s, "Customer %u Ren\xc3\xa9 \xe6\x97\xa5", k);
    lss__jw_str(w, s, (size_t)n);
    LSS_JW_LIT(w, ",\"tags\":[\"vip\",\"eu\"],\"verified\":");
    lss__jw_bool(w, k & 1);
    LSS_JW_LIT(w, "},\"items\":[");
    for (unsigned i = 0; i < 1 + k % 3; i++) {
        n = snprintf(s, sizeof s,
                     "%s{\"sku\":\"SKU-%u\",\"qty\":%u,\"price\":%u.%02u}",
                     i ? "," : "", k + i, 1 + i, 10 + k % 90, k % 100);
        lss__jw_raw(w, s, (size_t)n);
    }
    LSS_JW_LIT(w, "],\"note\":");
    lss__jw_strz(w, "Leave at the \"back door\"\n\tthanks \\o/");
    n = snprintf(s, sizeof s, ",\"total\":%u.5e1}", k % 1000);
    lss__jw_raw(w, s, (size_t)n);
    LSS_JW_LIT(w, ",\"metadata\":{\"correlationStreamName\":");
    n = snprintf(s, sizeof s, "order-%u", k % 50);
    lss__jw_str(w, s, (size_t)n);
    LSS_JW_LIT(w, ",\"causation\":null}}");
}

/* A deterministic JSON array of records, just over `target` bytes. */
static char *make_payload(size_t target, size_t *len)
{
    size_t cap = target + 4096;
    char *buf = malloc(cap);
    lss_json_writer w;
    if (!buf)
        return NULL;
    lss__jw_init(&w, buf, cap);
    lss__jw_char(&w, '[');
    for (unsigned k = 0; w.len < target; k++) {
        if (k)
            lss__jw_char(&w, ',');
        put_record(&w, k);
    }
    lss__jw_char(&w, ']');
    if (lss__jw_finish(&w, len) != LSS_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Field by field: the token struct has padding. */
static uint64_t hash_tape(const lss_json_doc *d)
{
    uint64_t h = FNV_SEED;
    for (size_t i = 0; i < d->ntok; i++) {
        const lss_json_tok *t = &d->tok[i];
        uint32_t f[6] = {t->off, t->len, t->next, t->count, t->type, t->flags};
        h = fnv1a(h, f, sizeof f);
    }
    return h;
}

/* Operations shorter than the clock's own cost are timed in groups of
 * `group`; each op of a group is recorded at the group's mean. */
static int scan_loop(bench_run *r, const char *p, size_t n, unsigned expand,
                     long iters, long group)
{
    size_t cap = lss__json_tape_need(n);
    lss_json_tok *tok = malloc(cap * sizeof *tok);
    lss_json_doc d;
    if (!tok)
        return LSS_ENOMEM;
    for (int i = 0; i < 3; i++) /* warm-up */
        lss__json_scan(&d, p, n, expand, tok, cap, NULL);
    bench_start(r);
    uint64_t t = bench_ns();
    for (long i = 0; i < iters;) {
        long k = iters - i < group ? iters - i : group;
        for (long j = 0; j < k; j++)
            if (lss__json_scan(&d, p, n, expand, tok, cap, NULL) != LSS_OK) {
                free(tok);
                return LSS_EJSON;
            }
        i += k;
        uint64_t t1 = bench_ns();
        hist_add_n(r->hist, (t1 - t) / (uint64_t)k, (uint64_t)k);
        t = t1;
    }
    bench_stop(r);
    r->check = hash_tape(&d);
    r->ops = (double)iters;
    r->bytes = (double)iters * (double)n;
    free(tok);
    return LSS_OK;
}

static int case_json_scan_64k(bench_run *r)
{
    size_t n;
    char *p = make_payload(64 * 1024, &n);
    if (!p)
        return LSS_ENOMEM;
    int rc = scan_loop(r, p, n, LSS_JSON_EXPAND_ALL, scaled(r, 2000), 1);
    free(p);
    return rc;
}

static int case_json_scan_w1(bench_run *r)
{
    /* expand 3: what the RPC layer asks for; payloads stay raw */
    r->note = "latency: per-op mean of groups of 64";
    return scan_loop(r, w1_request, sizeof w1_request - 1, 3,
                     scaled(r, 300000), 64);
}

/* One stream.get row with W1's payload, as the read path writes it. */
static int case_json_write_w1(bench_run *r)
{
    static const char data[] =
        "{\"counter\":1732233600123456789,\"payload\":\"test data for "
        "profiling with some content to make it realistic\",\"nested\":{"
        "\"field1\":\"value1\",\"field2\":42,\"field3\":true}}";
    static const char meta[] = "{\"correlationStreamName\":\"test-correlation\","
                               "\"source\":\"load-test\"}";
    char buf[1024];
    size_t need = 0;
    long iters = scaled(r, 1000000);
    lss_json_writer w;
    r->note = "latency: per-op mean of groups of 64";
    bench_start(r);
    uint64_t t = bench_ns();
    for (long i = 0; i < iters; i++) {
        lss__jw_init(&w, buf, sizeof buf);
        LSS_JW_LIT(&w, "[\"0190f0e2-7c3a-7d4e-8f00-123456789abc\",");
        lss__jw_str(&w, "TestEvent", 9);
        lss__jw_char(&w, ',');
        lss__jw_int(&w, i);
        lss__jw_char(&w, ',');
        lss__jw_int(&w, 1732233600123456789 + i);
        lss__jw_char(&w, ',');
        lss__jw_raw(&w, data, sizeof data - 1);
        lss__jw_char(&w, ',');
        lss__jw_raw(&w, meta, sizeof meta - 1);
        LSS_JW_LIT(&w, ",\"2026-03-01T12:00:00.123456Z\"]");
        if (lss__jw_finish(&w, &need) != LSS_OK)
            return LSS_ENOSPACE;
        if (i == 0) /* the first row, so the check ignores --size */
            r->check = fnv1a(FNV_SEED, buf, need);
        if ((i & 63) == 63 || i == iters - 1) {
            uint64_t t1 = bench_ns(), k = (uint64_t)(i & 63) + 1;
            hist_add_n(r->hist, (t1 - t) / k, k);
            t = t1;
        }
    }
    bench_stop(r);
    r->ops = (double)iters;
    r->bytes = (double)iters * (double)need;
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * The case table
 * ---------------------------------------------------------------------- */

typedef int (*bench_fn)(bench_run *r);

#define CASE_BASELINE 0x1   /* runs paired with its user unless named */
#define CASE_NOLIB 0x2      /* no library allocator involved: lib/op "-" */
#define CASE_SAME_CHECK 0x4 /* must read back exactly what its baseline does */
#define CASE_SLOT 0x8       /* reserved, not implemented yet */
#define CASE_LAT_RATIO 0x10 /* ratio is p50 latency to the baseline's */
#define CASE_HTTP 0x20      /* W1 over HTTP: needs shim-server; the HTTP
                               cases of a selection run interleaved */
#define CASE_NAMED 0x40     /* minutes long: runs only when named, not in all */

#define TARGET_NONE 0
#define TARGET_RATIO 1 /* ratio to the baseline >= target */
#define TARGET_MSGS 2  /* messages/s >= target */

typedef struct bench_case {
    int num;
    const char *name;
    const char *what;
    bench_fn run;         /* a whole run ... */
    const bench_ops *ops; /* ... or a stepper (run NULL) */
    int baseline;         /* number of the baseline case, 0 = none */
    unsigned flags;
    int target_kind;
    double target;
    double p99_max_ns; /* with TARGET_RATIO: and p99 at most this, 0 = none */
} bench_case;

static const bench_case cases[] = {
    {100, "json-scan-64k", "scan a 64 KB realistic payload, full tape",
     case_json_scan_64k, NULL, 0, CASE_NOLIB, 0, 0, 0},
    {101, "json-scan-w1", "scan the W1 request, expand depth 3",
     case_json_scan_w1, NULL, 0, CASE_NOLIB, 0, 0, 0},
    {110, "json-write-w1", "write a 7-element stream.get row",
     case_json_write_w1, NULL, 0, CASE_NOLIB, 0, 0, 0},

    {201, "append-1-mem", "append 1 W1 message per call, 1 thread, memory",
     NULL, &ops_append_1_mem, 251, CASE_SAME_CHECK, TARGET_RATIO, 0.9, 0},
    {202, "append-1-file", "append 1 W1 message per call, 1 thread, file FULL",
     NULL, &ops_append_1_file, 252, CASE_SAME_CHECK, TARGET_RATIO, 0.9, 0},
    {203, "append-1-id-mem", "as 201 with client ids (idempotency lookup)",
     NULL, &ops_append_1_id_mem, 253, CASE_SAME_CHECK, 0, 0, 0},
    {210, "append-100-mem", "append batches of 100 W1 messages, memory",
     NULL, &ops_append_100_mem, 260, CASE_SAME_CHECK, TARGET_MSGS, 100000, 0},
    {220, "append-8t-file", "8 threads x 100 streams, file FULL (group commit)",
     NULL, &ops_append_8t_file, 252, 0, TARGET_RATIO, 4.0, 0},
    {251, "sqlite-append-1-mem", "plain SQLite: 201's transactions, memdb",
     NULL, &ops_base_append_1_mem, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {252, "sqlite-append-1-file", "plain SQLite: one FULL commit per append",
     NULL, &ops_base_append_1_file, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {253, "sqlite-append-1-id-mem", "plain SQLite: 203's transactions, memdb",
     NULL, &ops_base_append_1_id_mem, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {260, "sqlite-append-100-mem", "plain SQLite: 210's transactions, memdb",
     NULL, &ops_base_append_100_mem, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},

    {300, "read-stream-10", "read 10 messages of a stream",
     NULL, &ops_read_stream_10, 350, CASE_SAME_CHECK, 0, 0, 0},
    {301, "read-stream-100", "read 100 messages of a stream",
     NULL, &ops_read_stream_100, 351, CASE_SAME_CHECK, 0, 0, 0},
    {302, "read-stream-1000", "read 1,000 messages of a stream",
     NULL, &ops_read_stream_1000, 352, CASE_SAME_CHECK, 0, 0, 0},
    {310, "read-category-100", "read 100 messages of a category",
     NULL, &ops_read_category_100, 360, CASE_SAME_CHECK, 0, 0, 0},
    {311, "read-category-100-group", "as 310, consumer group member of 4",
     NULL, &ops_read_category_100_group, 361, CASE_SAME_CHECK, 0, 0, 0},
    {350, "sqlite-read-stream-10", "plain SQLite: 300's statement",
     NULL, &ops_base_read_stream_10, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {351, "sqlite-read-stream-100", "plain SQLite: 301's statement",
     NULL, &ops_base_read_stream_100, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {352, "sqlite-read-stream-1000", "plain SQLite: 302's statement",
     NULL, &ops_base_read_stream_1000, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {360, "sqlite-read-category-100", "plain SQLite: 310's statement",
     NULL, &ops_base_read_category_100, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},
    {361, "sqlite-read-category-100-group", "plain SQLite: 311's statement",
     NULL, &ops_base_read_category_100_group, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},

    {400, "subscribe-wake", "commit -> lss_sub_fd wake-up of a polling thread",
     case_subscribe_wake, NULL, 450, CASE_LAT_RATIO, 0, 0, 0},
    {450, "eventfd-wake", "bare eventfd between two threads (the floor)",
     case_eventfd_wake, NULL, 0, CASE_BASELINE | CASE_NOLIB, 0, 0, 0},

    {500, "http-w1", "W1 over HTTP, 10 connections, shim-server --test-mode",
     case_http_w1, NULL, 502, CASE_NOLIB | CASE_HTTP, TARGET_RATIO, 0.5, 2e6},
    {501, "http-w1-file", "W1 over HTTP against a durable file store (FULL)",
     case_http_w1_file, NULL, 502, CASE_NOLIB | CASE_HTTP, TARGET_RATIO, 0.25,
     0},
    {502, "http-null", "W1 over HTTP, shim-server --null-store (the ceiling)",
     case_http_null, NULL, 0, CASE_BASELINE | CASE_NOLIB | CASE_HTTP, 0, 0, 0},
    {503, "http-null-wrk", "wrk against --null-store (when wrk is installed)",
     case_http_null_wrk, NULL, 0, CASE_BASELINE | CASE_NOLIB | CASE_HTTP, 0, 0,
     0},

    {600, "w3-sse-10k", "W3: W1 over HTTP with 10,000 SSE subscribers",
     case_sse_w3, NULL, 0, CASE_NOLIB | CASE_NAMED, 0, 0, 0},
    {610, "growth-file", "W3: 10 M W1 messages into a file store (FULL), "
     "rate per million, reads", case_growth_file, NULL, 0, CASE_NAMED, 0, 0, 0},
    {650, "fanout-floor", "W3's floor: one 120-byte send to each of 10,000 "
     "loopback sockets per pass, no server", case_fanout_floor, NULL, 0,
     CASE_NOLIB | CASE_NAMED, 0, 0, 0},
};

#define NCASES (sizeof cases / sizeof cases[0])

static const bench_case *case_by_num(int num)
{
    for (size_t i = 0; i < NCASES; i++)
        if (cases[i].num == num)
            return &cases[i];
    return NULL;
}

static const bench_case *find_case(const char *arg)
{
    char *end;
    long num = strtol(arg, &end, 10);
    for (size_t i = 0; i < NCASES; i++)
        if (!strcmp(cases[i].name, arg) || (!*end && cases[i].num == num))
            return &cases[i];
    return NULL;
}

/* ------------------------------------------------------------------------
 * Running: one run, then medians over runs
 * ---------------------------------------------------------------------- */

typedef struct bench_cfg {
    long size;
    int runs;
    int backend;
    const char *dir; /* scratch directory (ours, removed at exit) */
} bench_cfg;

typedef struct stats {
    double ops_per_sec, mean_ns, p50_ns, p99_ns, p999_ns;
    double lib_per_op; /* -1: not applicable */
    double mal_per_op; /* -1: not counted */
    double mb_per_sec, msgs_per_sec;
    uint64_t check;
    int consistent; /* every run produced the same check */
    const char *note;
    const char *detail; /* JSON object or NULL */
} stats;

typedef struct bench_result {
    const bench_case *c, *base;
    stats s, b;
    double ratio;     /* median of per-pair ratios; 0 without baseline */
    int checks_equal; /* CASE_SAME_CHECK: c and base read back the same */
    int target_met;   /* -1 no target */
    int skipped;
    const char *skip_why; /* NULL: the case's own text */
    int base_shown;   /* the baseline's row was printed with another case */
    int group;        /* ratio from interleaved runs of the HTTP group */
    const bench_case *wrk; /* the wrk ceiling, shown with this result */
    stats w;
} bench_result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bench_hist run_hist, run_hist2;

static void init_run(bench_run *r, const bench_cfg *cfg, bench_hist *h)
{
    memset(r, 0, sizeof *r);
    r->size = cfg->size;
    r->backend = cfg->backend;
    r->dir = cfg->dir;
    r->hist = h;
    hist_reset(h);
}

/* Figures of one run from its timed window: dt seconds, lib / mal the
 * allocation calls counted in it (mal UINT64_MAX: not counted). */
static void fill_stats(const bench_case *c, const bench_run *r, double dt,
                       uint64_t lib, uint64_t mal, stats *out)
{
    const bench_hist *h = r->hist;
    if (dt <= 0)
        dt = 1e-9;
    memset(out, 0, sizeof *out);
    out->ops_per_sec = r->ops / dt;
    out->mean_ns = h->n ? h->sum / (double)h->n
                        : dt * 1e9 / (r->ops > 0 ? r->ops : 1);
    out->p50_ns = hist_quantile(h, 0.50);
    out->p99_ns = hist_quantile(h, 0.99);
    out->p999_ns = hist_quantile(h, 0.999);
    if (r->lat_given) {
        out->mean_ns = r->lat_mean;
        out->p50_ns = r->lat_p50;
        out->p99_ns = r->lat_p99;
        out->p999_ns = r->lat_p999;
    }
    if (r->ext_alloc) {
        lib = r->ext_lib;
        mal = r->ext_mal;
    }
    out->lib_per_op = ((c->flags & CASE_NOLIB) && !r->ext_alloc) || r->ops <= 0
                          ? -1
                          : (double)lib / r->ops;
    out->mal_per_op = mal == UINT64_MAX || r->ops <= 0 ? -1
                                                       : (double)mal / r->ops;
    out->mb_per_sec = r->bytes / dt / 1e6;
    out->msgs_per_sec = r->msgs / dt;
    out->check = r->check;
    out->consistent = 1;
    out->note = r->note;
    out->detail = r->detail;
}

/* A stepper on its own: open, warm up, timed operations, close. */
static int run_stepper(const bench_ops *o, bench_run *r)
{
    void *st;
    int rc = o->open(r, &st);
    if (rc != LSS_OK)
        return rc;
    long n = scaled(r, o->base_n), warm = n / 20 + 5, i = 0;
    if (!o->op)
        rc = o->chunk(st, 0, warm, 0);
    for (; o->op && i < warm && rc == LSS_OK; i++)
        rc = o->op(st, i);
    if (rc == LSS_OK) {
        bench_start(r);
        if (!o->op)
            rc = o->chunk(st, warm, warm + n, 1);
        uint64_t t = bench_ns();
        for (i = warm; o->op && i < warm + n && rc == LSS_OK; i++) {
            rc = o->op(st, i);
            uint64_t t1 = bench_ns();
            hist_add(r->hist, t1 - t);
            t = t1;
        }
        bench_stop(r);
    }
    r->ops = (double)n;
    r->msgs = (double)n * r->msgs_per_op;
    int crc = o->close(st, r, rc == LSS_OK);
    return rc != LSS_OK ? rc : crc;
}

static int run_once(const bench_case *c, const bench_cfg *cfg, stats *out)
{
    bench_run r;
    init_run(&r, cfg, &run_hist);
    atomic_store(&bench_break_pending, 0);
    uint64_t w0 = bench_ns();
    int rc = c->ops ? run_stepper(c->ops, &r) : c->run(&r);
    uint64_t w1 = bench_ns();
    if (rc != LSS_OK)
        return rc;
    if (!r.started || !r.stopped) {
        r.t0 = w0;
        r.t1 = w1;
        r.lib0 = r.lib1 = 0;
        r.mal0 = r.mal1 = UINT64_MAX;
    }
    uint64_t mal = r.mal1 == UINT64_MAX ? UINT64_MAX : r.mal1 - r.mal0;
    fill_stats(c, &r, (double)(r.t1 - r.t0) / 1e9, r.lib1 - r.lib0, mal, out);
    return LSS_OK;
}

/* One side of an interleaved run. */
typedef struct side {
    const bench_case *c;
    bench_run r;
    void *st;
    long n, warm;
    uint64_t ns, lib, mal;
    int open;
} side;

static int side_chunk(side *s, long from, long to, double *rate)
{
    uint64_t lib0 = bench_lib_allocs(), mal0 = bench_process_mallocs();
    TIMED_WINDOW_BEGIN();
    const bench_ops *o = s->c->ops;
    uint64_t t0 = bench_ns(), t = t0;
    int rc = LSS_OK;
    if (!o->op) {
        rc = o->chunk(s->st, from, to, 1);
        t = bench_ns();
    }
    for (long i = from; o->op && i < to && rc == LSS_OK; i++) {
        rc = o->op(s->st, i);
        uint64_t t1 = bench_ns();
        hist_add(s->r.hist, t1 - t);
        t = t1;
    }
    TIMED_WINDOW_END();
    *rate = (double)(to - from) / ((double)(t - t0) + 1);
    s->ns += t - t0;
    s->lib += bench_lib_allocs() - lib0;
    uint64_t mal1 = bench_process_mallocs();
    s->mal = mal1 == UINT64_MAX ? UINT64_MAX : s->mal + (mal1 - mal0);
    return rc;
}

#define MAX_CHUNKS 64

/* A stepper and its baseline in one run, in alternating chunks of n/40
 * operations (n/10 for threaded steppers; the first side alternates too),
 * each side timing only its own chunks: drift hits both alike.  *ratio is
 * the median over chunk pairs of the ops/s ratio, robust to a burst from
 * elsewhere (a neighbour's fsyncs, say) that lands on a few chunks. */
static int run_lockstep(const bench_case *ca, const bench_case *cb,
                        const bench_cfg *cfg, stats *sa, stats *sb,
                        double *ratio)
{
    double chunk_ratio[MAX_CHUNKS];
    int nchunks = 0;
    side sd[2];
    memset(sd, 0, sizeof sd);
    sd[0].c = ca;
    sd[1].c = cb;
    init_run(&sd[0].r, cfg, &run_hist);
    init_run(&sd[1].r, cfg, &run_hist2);
    atomic_store(&bench_break_pending, 0);
    int rc = LSS_OK;
    for (int k = 0; k < 2 && rc == LSS_OK; k++) {
        side *s = &sd[k];
        rc = s->c->ops->open(&s->r, &s->st);
        s->open = rc == LSS_OK;
        s->n = scaled(&s->r, s->c->ops->base_n);
        s->warm = s->n / 20 + 5;
        if (rc == LSS_OK && !s->c->ops->op)
            rc = s->c->ops->chunk(s->st, 0, s->warm, 0);
        for (long i = 0; s->c->ops->op && i < s->warm && rc == LSS_OK; i++)
            rc = s->c->ops->op(s->st, i);
    }
    /* the library side's first hashed position flips under the break */
    atomic_store(&bench_break_pending, bench_break);
    /* threaded steppers ramp up and drain at each chunk's edges: fewer */
    long na = sd[0].n, chunks = ca->ops->op ? 40 : 10;
    long step = na / chunks > 0 ? na / chunks : 1;
    for (long done = 0, k = 0; done < na && rc == LSS_OK; done += step, k++) {
        long m = na - done < step ? na - done : step;
        double rate[2] = {0, 0};
        for (int j = 0; j < 2 && rc == LSS_OK; j++) {
            int x = (int)((j + k) & 1);
            side *s = &sd[x];
            /* the sides may differ in n; each covers its own share */
            long from = s->warm + done * s->n / na;
            long to = s->warm + (done + m) * s->n / na;
            rc = side_chunk(s, from, to, &rate[x]);
        }
        if (nchunks < MAX_CHUNKS && rate[1] > 0)
            chunk_ratio[nchunks++] = rate[0] / rate[1];
    }
    for (int k = 0; k < 2; k++) {
        side *s = &sd[k];
        if (!s->open)
            continue;
        s->r.ops = (double)s->n;
        s->r.msgs = (double)s->n * s->r.msgs_per_op;
        int crc = s->c->ops->close(s->st, &s->r, rc == LSS_OK);
        if (rc == LSS_OK)
            rc = crc;
    }
    if (rc != LSS_OK)
        return rc;
    fill_stats(ca, &sd[0].r, (double)sd[0].ns / 1e9, sd[0].lib, sd[0].mal, sa);
    fill_stats(cb, &sd[1].r, (double)sd[1].ns / 1e9, sd[1].lib, sd[1].mal, sb);
    *ratio = nchunks ? median(chunk_ratio, nchunks) : 0;
    return LSS_OK;
}

#define MAX_RUNS 101
#define NFIELDS 9

static double *field(stats *s, int i)
{
    double *f[NFIELDS] = {&s->ops_per_sec, &s->mean_ns,     &s->p50_ns,
                          &s->p99_ns,      &s->p999_ns,     &s->lib_per_op,
                          &s->mal_per_op,  &s->mb_per_sec,  &s->msgs_per_sec};
    return f[i];
}

/* Field by field median of runs[0..n); check from the last run. */
static void median_stats(stats *runs, int n, stats *out)
{
    double v[MAX_RUNS];
    *out = runs[n - 1];
    for (int f = 0; f < NFIELDS; f++) {
        for (int i = 0; i < n; i++)
            v[i] = *field(&runs[i], f);
        *field(out, f) = median(v, n);
    }
    out->consistent = 1;
    for (int i = 1; i < n; i++)
        if (runs[i].check != runs[0].check)
            out->consistent = 0;
}

static stats runs_a[MAX_RUNS], runs_b[MAX_RUNS];

static void set_target(bench_result *res)
{
    const bench_case *c = res->c;
    if (c->target_kind == TARGET_RATIO && res->base)
        res->target_met = res->ratio >= c->target &&
                          (c->p99_max_ns <= 0 || res->s.p99_ns <= c->p99_max_ns);
    else if (c->target_kind == TARGET_MSGS)
        res->target_met = res->s.msgs_per_sec >= c->target;
}

static int run_case(const bench_case *c, const bench_case *base,
                    const bench_cfg *cfg, bench_result *res)
{
    memset(res, 0, sizeof *res);
    res->c = c;
    res->base = base;
    res->target_met = -1;
    if (c->flags & CASE_SLOT) {
        res->skipped = 1;
        return LSS_OK;
    }
    double ratio[MAX_RUNS];
    for (int i = 0; i < cfg->runs; i++) {
        int rc = LSS_OK;
        int lockstep = base && c->ops && base->ops;
        if (lockstep) {
            rc = run_lockstep(c, base, cfg, &runs_a[i], &runs_b[i], &ratio[i]);
        } else {
            /* ABBA: the baseline goes first in odd pairs */
            int base_first = base && (i & 1);
            if (base_first)
                rc = run_once(base, cfg, &runs_b[i]);
            if (rc == LSS_OK)
                rc = run_once(c, cfg, &runs_a[i]);
            if (rc == LSS_OK && base && !base_first)
                rc = run_once(base, cfg, &runs_b[i]);
        }
        if (rc != LSS_OK) {
            fprintf(stderr, "lss-bench: %s: %s\n", c->name, lss_strerror(rc));
            return rc;
        }
        /* (interleaved runs gave the median of their chunk pairs) */
        if (base && !lockstep && (c->flags & CASE_LAT_RATIO))
            ratio[i] = runs_b[i].p50_ns > 0
                           ? runs_a[i].p50_ns / runs_b[i].p50_ns
                           : 0;
        else if (base && !lockstep)
            ratio[i] = runs_b[i].ops_per_sec > 0
                           ? runs_a[i].ops_per_sec / runs_b[i].ops_per_sec
                           : 0;
    }
    median_stats(runs_a, cfg->runs, &res->s);
    if (base) {
        median_stats(runs_b, cfg->runs, &res->b);
        res->ratio = median(ratio, cfg->runs);
        res->checks_equal = res->s.check == res->b.check;
    }
    set_target(res);
    return LSS_OK;
}

/* W1 over HTTP.  The HTTP cases of a selection run together: in each of
 * --runs runs, one measurement of each, the null-store ceilings first
 * (null, wrk when installed, memory, file), every one against a fresh
 * shim-server.  A case's ratio is the median over runs of its ops/s over
 * the same run's null-store ops/s (our loader's), so both sides of a ratio
 * are measured seconds apart.  Without shim-server the cases are skipped. */
#define HTTP_NK 4
static stats http_runs[HTTP_NK][MAX_RUNS];

static int run_http_group(bench_result **res, const bench_case **sel,
                          size_t n, const bench_cfg *cfg, int no_baseline)
{
    static const int order[HTTP_NK] = {502, 503, 500, 501};
    const bench_case *m[HTTP_NK] = {NULL, NULL, NULL, NULL};
    int want_null = 0, shown = 0;
    for (size_t i = 0; i < n; i++) {
        memset(res[i], 0, sizeof *res[i]);
        res[i]->c = sel[i];
        res[i]->target_met = -1;
        if (sel[i]->num == 502)
            shown = 1; /* its row is printed as its own */
        else if (sel[i]->num != 503 && !no_baseline)
            want_null = 1;
    }
    if (!http_shim_path()) {
        static char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "no shim-server at %s (build it, or give "
                 "--shim PATH)", http_shim_tried());
        for (size_t i = 0; i < n; i++) {
            res[i]->skipped = 1;
            res[i]->skip_why = why;
        }
        return LSS_OK;
    }
    for (int k = 0; k < HTTP_NK; k++) {
        const bench_case *c = case_by_num(order[k]);
        int on = k < 2 && want_null && (k == 0 || http_wrk_path());
        for (size_t i = 0; i < n; i++)
            on |= sel[i] == c;
        m[k] = on ? c : NULL;
    }
    if (m[1] && !http_wrk_path()) {
        m[1] = NULL;
        for (size_t i = 0; i < n; i++)
            if (sel[i]->num == 503) {
                res[i]->skipped = 1;
                res[i]->skip_why = "wrk not found on PATH";
            }
    }
    for (int i = 0; i < cfg->runs; i++)
        for (int k = 0; k < HTTP_NK; k++) {
            if (!m[k])
                continue;
            int rc = run_once(m[k], cfg, &http_runs[k][i]);
            if (rc != LSS_OK) {
                fprintf(stderr, "lss-bench: %s: %s\n", m[k]->name,
                        lss_strerror(rc));
                return rc;
            }
        }
    int wrk_shown = 0;
    for (size_t i = 0; i < n; i++)
        wrk_shown |= sel[i]->num == 503;
    for (size_t i = 0; i < n; i++) {
        bench_result *r = res[i];
        int k = 0;
        while (k < HTTP_NK && order[k] != r->c->num)
            k++;
        if (r->skipped)
            continue;
        median_stats(http_runs[k], cfg->runs, &r->s);
        if (k < 2 || !m[0])
            continue;
        double ratio[MAX_RUNS];
        for (int j = 0; j < cfg->runs; j++)
            ratio[j] = http_runs[0][j].ops_per_sec > 0
                           ? http_runs[k][j].ops_per_sec /
                                 http_runs[0][j].ops_per_sec
                           : 0;
        r->base = m[0];
        median_stats(http_runs[0], cfg->runs, &r->b);
        r->ratio = median(ratio, cfg->runs);
        r->base_shown = shown;
        r->group = 1;
        if (m[1] && !wrk_shown) { /* the wrk ceiling, once, under null */
            r->wrk = case_by_num(503);
            median_stats(http_runs[1], cfg->runs, &r->w);
            wrk_shown = 1;
        }
        shown = 1;
        set_target(r);
    }
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * The table
 * ---------------------------------------------------------------------- */

static void fmt_ns(char *out, size_t cap, double ns)
{
    if (ns < 0)
        snprintf(out, cap, "-");
    else if (ns < 1e3)
        snprintf(out, cap, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(out, cap, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(out, cap, "%.2fms", ns / 1e6);
    else
        snprintf(out, cap, "%.2fs", ns / 1e9);
}

static void print_header(void)
{
    printf("%4s  %-32s %11s %8s %8s %8s %8s %6s %7s %13s  %-16s\n", "#",
           "case", "ops/s", "mean", "p50", "p99", "p99.9", "lib/op",
           "mall/op", "rate", "check");
}

static void print_stats(int num, const char *name, int indent, const stats *s)
{
    char mean[16], p50[16], p99[16], p999[16], lib[16] = "-", mal[16] = "-",
         rate[24] = "";
    fmt_ns(mean, sizeof mean, s->mean_ns);
    fmt_ns(p50, sizeof p50, s->p50_ns);
    fmt_ns(p99, sizeof p99, s->p99_ns);
    fmt_ns(p999, sizeof p999, s->p999_ns);
    if (s->lib_per_op >= 0)
        snprintf(lib, sizeof lib, "%.2f", s->lib_per_op);
    if (s->mal_per_op >= 0)
        snprintf(mal, sizeof mal, "%.1f", s->mal_per_op);
    if (s->mb_per_sec > 0)
        snprintf(rate, sizeof rate, "%.1f MB/s", s->mb_per_sec);
    else if (s->msgs_per_sec > 0)
        snprintf(rate, sizeof rate, "%.0f msg/s", s->msgs_per_sec);
    char label[64];
    snprintf(label, sizeof label, "%s%s", indent ? "  " : "", name);
    printf("%4d  %-32s %11.0f %8s %8s %8s %8s %6s %7s %13s  %016llx%s\n", num,
           label, s->ops_per_sec, mean, p50, p99, p999, lib, mal, rate,
           (unsigned long long)s->check,
           s->consistent ? "" : "  CHECK DIFFERS BETWEEN RUNS");
}

static void print_result(const bench_result *r, int runs)
{
    if (r->skipped) {
        printf("%4d  %-32s skipped: %s\n", r->c->num, r->c->name,
               r->skip_why ? r->skip_why : r->c->what);
        return;
    }
    print_stats(r->c->num, r->c->name, 0, &r->s);
    if (r->s.note)
        printf("      (%s)\n", r->s.note);
    if (!r->base)
        return;
    if (!r->base_shown) {
        print_stats(r->base->num, r->base->name, 1, &r->b);
        if (r->group && r->b.note)
            printf("      (%s)\n", r->b.note);
    }
    if (r->wrk) {
        print_stats(r->wrk->num, r->wrk->name, 1, &r->w);
        if (r->w.note)
            printf("      (%s)\n", r->w.note);
        printf("      our loader reaches %.3fx of wrk's rate on the null "
               "store\n",
               r->w.ops_per_sec > 0 ? r->b.ops_per_sec / r->w.ops_per_sec : 0);
    }
    printf("      %s %.3fx vs %d (median of %d %s)",
           r->c->flags & CASE_LAT_RATIO ? "p50 latency ratio" : "ratio",
           r->ratio, r->base->num, runs,
           r->group                      ? "runs, each: null, memory, file"
           : r->c->ops && r->base->ops ? "interleaved runs"
                                       : "ABBA pairs");
    if (r->c->target_kind == TARGET_RATIO && r->c->p99_max_ns > 0) {
        char p99[16];
        fmt_ns(p99, sizeof p99, r->c->p99_max_ns);
        printf("; target >= %.2fx and p99 <= %s: %s", r->c->target, p99,
               r->target_met ? "met" : "MISSED");
    } else if (r->c->target_kind == TARGET_RATIO) {
        printf("; target >= %.2fx: %s", r->c->target,
               r->target_met ? "met" : "MISSED");
    }
    if (r->c->target_kind == TARGET_MSGS)
        printf("; target >= %.0f msg/s: %s", r->c->target,
               r->target_met ? "met" : "MISSED");
    if (r->c->flags & CASE_SAME_CHECK)
        printf("; %s", r->checks_equal ? "check equals baseline's"
                                       : "CHECK DIFFERS FROM BASELINE");
    printf("\n");
}

/* ------------------------------------------------------------------------
 * --json FILE, through the library's own writer
 * ---------------------------------------------------------------------- */

static void jw_num(lss_json_writer *w, const char *key, double v, int prec)
{
    char s[96];
    int n = snprintf(s, sizeof s, ",\"%s\":", key);
    lss__jw_raw(w, s, (size_t)n);
    if (v < 0 || !isfinite(v)) {
        lss__jw_null(w);
        return;
    }
    n = snprintf(s, sizeof s, "%.*f", prec, v);
    lss__jw_raw(w, s, (size_t)n);
}

static void jw_stats(lss_json_writer *w, const bench_case *c, const stats *s)
{
    char hex[24];
    LSS_JW_LIT(w, "{\"num\":");
    lss__jw_int(w, c->num);
    LSS_JW_LIT(w, ",\"name\":");
    lss__jw_strz(w, c->name);
    LSS_JW_LIT(w, ",\"what\":");
    lss__jw_strz(w, c->what);
    jw_num(w, "ops_per_sec", s->ops_per_sec, 1);
    jw_num(w, "mean_ns", s->mean_ns, 0);
    jw_num(w, "p50_ns", s->p50_ns, 0);
    jw_num(w, "p99_ns", s->p99_ns, 0);
    jw_num(w, "p999_ns", s->p999_ns, 0);
    jw_num(w, "lib_allocs_per_op", s->lib_per_op, 3);
    jw_num(w, "mallocs_per_op", s->mal_per_op, 3);
    jw_num(w, "mb_per_sec", s->mb_per_sec > 0 ? s->mb_per_sec : -1, 1);
    jw_num(w, "msgs_per_sec", s->msgs_per_sec > 0 ? s->msgs_per_sec : -1, 1);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)s->check);
    LSS_JW_LIT(w, ",\"check\":");
    lss__jw_strz(w, hex);
    LSS_JW_LIT(w, ",\"consistent\":");
    lss__jw_bool(w, s->consistent);
    if (s->detail) {
        LSS_JW_LIT(w, ",\"detail\":");
        lss__jw_raw(w, s->detail, strlen(s->detail));
    }
}

static void read_cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10))
            continue;
        char *p = strchr(line, ':');
        if (!p)
            continue;
        for (p++; *p == ' ' || *p == '\t'; p++)
            ;
        p[strcspn(p, "\n")] = '\0';
        snprintf(out, cap, "%s", p);
        break;
    }
    fclose(f);
}

static void write_doc(lss_json_writer *w, const bench_result *res, size_t n,
                      const bench_cfg *cfg)
{
    char s[256];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    LSS_JW_LIT(w, "{\"tool\":\"lss-bench\",\"version\":");
    lss__jw_strz(w, lss_version_string());
    LSS_JW_LIT(w, ",\"sqlite\":");
    lss__jw_strz(w, sqlite3_libversion());
    LSS_JW_LIT(w, ",\"date\":");
    lss__jw_strz(w, s);
    LSS_JW_LIT(w, ",\"machine\":{\"nproc\":");
    lss__jw_int(w, sysconf(_SC_NPROCESSORS_ONLN));
    read_cpu_model(s, sizeof s);
    LSS_JW_LIT(w, ",\"cpu\":");
    lss__jw_strz(w, s);
    LSS_JW_LIT(w, "},\"runs\":");
    lss__jw_int(w, cfg->runs);
    LSS_JW_LIT(w, ",\"size\":");
    lss__jw_int(w, cfg->size);
    LSS_JW_LIT(w, ",\"backend\":");
    lss__jw_strz(w, cfg->backend == BENCH_FILE ? "file" : "memory");
    LSS_JW_LIT(w, ",\"malloc_counting\":");
    lss__jw_bool(w, malloc_calls != NULL);
    LSS_JW_LIT(w, ",\"break\":");
    lss__jw_bool(w, bench_break);
    LSS_JW_LIT(w, ",\"http\":{\"workers\":");
    lss__jw_int(w, bench_http.workers);
    jw_num(w, "seconds", bench_http.seconds > 0 ? bench_http.seconds : -1, 1);
    jw_num(w, "requests",
           bench_http.requests > 0 ? (double)bench_http.requests : -1, 0);
    lss__jw_char(w, '}');
    LSS_JW_LIT(w, ",\"cases\":[");
    for (size_t i = 0; i < n; i++) {
        const bench_result *r = &res[i];
        if (i)
            lss__jw_char(w, ',');
        if (r->skipped) {
            LSS_JW_LIT(w, "{\"num\":");
            lss__jw_int(w, r->c->num);
            LSS_JW_LIT(w, ",\"name\":");
            lss__jw_strz(w, r->c->name);
            LSS_JW_LIT(w, ",\"skipped\":true");
            if (r->skip_why) {
                LSS_JW_LIT(w, ",\"reason\":");
                lss__jw_strz(w, r->skip_why);
            }
            lss__jw_char(w, '}');
            continue;
        }
        jw_stats(w, r->c, &r->s);
        if (r->base) {
            LSS_JW_LIT(w, ",\"baseline\":");
            jw_stats(w, r->base, &r->b);
            lss__jw_char(w, '}');
            jw_num(w, "ratio", r->ratio, 4);
            LSS_JW_LIT(w, ",\"ratio_of\":");
            lss__jw_strz(w, r->c->flags & CASE_LAT_RATIO ? "p50_ns" : "ops_per_sec");
            LSS_JW_LIT(w, ",\"pairing\":");
            lss__jw_strz(w, r->group                      ? "interleaved-runs"
                            : r->c->ops && r->base->ops ? "interleaved"
                                                        : "abba");
            if (r->c->flags & CASE_SAME_CHECK) {
                LSS_JW_LIT(w, ",\"check_equals_baseline\":");
                lss__jw_bool(w, r->checks_equal);
            }
            if (r->wrk) {
                LSS_JW_LIT(w, ",\"wrk_baseline\":");
                jw_stats(w, r->wrk, &r->w);
                lss__jw_char(w, '}');
            }
        }
        if (r->target_met >= 0) {
            LSS_JW_LIT(w, ",\"target\":{\"kind\":");
            lss__jw_strz(w, r->c->target_kind == TARGET_RATIO ? "ratio_min"
                                                               : "msgs_per_sec_min");
            jw_num(w, "value", r->c->target, 2);
            if (r->c->p99_max_ns > 0)
                jw_num(w, "p99_max_ns", r->c->p99_max_ns, 0);
            LSS_JW_LIT(w, ",\"met\":");
            lss__jw_bool(w, r->target_met);
            lss__jw_char(w, '}');
        }
        lss__jw_char(w, '}');
    }
    LSS_JW_LIT(w, "]}\n");
}

static int write_json(const char *path, const bench_result *res, size_t n,
                      const bench_cfg *cfg)
{
    lss_json_writer w;
    size_t need;
    lss__jw_init(&w, NULL, 0);
    write_doc(&w, res, n, cfg);
    lss__jw_finish(&w, &need);
    char *buf = malloc(need);
    if (!buf)
        return LSS_ENOMEM;
    lss__jw_init(&w, buf, need);
    write_doc(&w, res, n, cfg);
    if (lss__jw_finish(&w, &need) != LSS_OK) {
        free(buf);
        return LSS_ENOSPACE;
    }
    FILE *f = fopen(path, "w");
    int bad = !f;
    if (f) {
        bad |= fwrite(buf, 1, need, f) != need;
        bad |= fclose(f) != 0;
    }
    free(buf);
    return bad ? LSS_EIO : LSS_OK;
}

/* ------------------------------------------------------------------------
 * compare OLD.json NEW.json
 * ---------------------------------------------------------------------- */

typedef struct json_file {
    char *text;
    size_t n;
    lss_json_tok *tok;
    lss_json_doc doc;
} json_file;

static int load_json(const char *path, json_file *j)
{
    memset(j, 0, sizeof *j);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "lss-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    for (;;) {
        if (j->n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(j->text, cap);
            if (!p)
                break;
            j->text = p;
        }
        size_t got = fread(j->text + j->n, 1, cap - j->n, f);
        j->n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    size_t ntok = lss__json_tape_need(j->n);
    j->tok = malloc(ntok * sizeof *j->tok);
    lss_json_err err;
    if (!j->text || !j->tok ||
        lss__json_scan(&j->doc, j->text, j->n, LSS_JSON_EXPAND_ALL, j->tok, ntok,
                       &err) != LSS_OK ||
        lss__json_type(lss__json_root(&j->doc)) != LSS_JSON_OBJECT) {
        fprintf(stderr, "lss-bench: %s: not a results file\n", path);
        return -1;
    }
    return 0;
}

static void free_json(json_file *j)
{
    free(j->text);
    free(j->tok);
}

static double jnum(const json_file *j, const lss_json_tok *obj, const char *key)
{
    const lss_json_tok *t = lss__json_getz(&j->doc, obj, key);
    if (lss__json_type(t) != LSS_JSON_NUMBER)
        return -1;
    char buf[64];
    size_t n = t->len < sizeof buf - 1 ? t->len : sizeof buf - 1;
    memcpy(buf, j->text + t->off, n);
    buf[n] = '\0';
    return strtod(buf, NULL);
}

static void jstr(const json_file *j, const lss_json_tok *obj, const char *key,
                 char *out, size_t cap)
{
    out[0] = '\0';
    const lss_json_tok *t = lss__json_getz(&j->doc, obj, key);
    if (lss__json_type(t) == LSS_JSON_STRING)
        lss__json_str_copy(&j->doc, t, out, cap, NULL);
}

static const lss_json_tok *find_num(const json_file *j, int num)
{
    const lss_json_tok *arr =
        lss__json_getz(&j->doc, lss__json_root(&j->doc), "cases");
    lss_json_iter it;
    lss__json_iter_init(&it, &j->doc, arr);
    const lss_json_tok *c;
    while ((c = lss__json_iter_next(&it, NULL)))
        if (lss__json_type(c) == LSS_JSON_OBJECT && jnum(j, c, "num") == num)
            return c;
    return NULL;
}

static int compare_main(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    double band = 10;
    int np = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--band") && i + 1 < argc)
            band = atof(argv[++i]);
        else if (np < 2)
            paths[np++] = argv[i];
    }
    if (np != 2 || band < 0) {
        fprintf(stderr, "usage: lss-bench compare OLD.json NEW.json "
                        "[--band PCT]\n");
        return 2;
    }
    json_file a, b;
    if (load_json(paths[0], &a) != 0 || load_json(paths[1], &b) != 0)
        return 2;
    const lss_json_tok *ra = lss__json_root(&a.doc), *rb = lss__json_root(&b.doc);
    if (jnum(&a, ra, "size") != jnum(&b, rb, "size"))
        printf("note: --size differs (%.0f vs %.0f): checks are not "
               "comparable\n",
               jnum(&a, ra, "size"), jnum(&b, rb, "size"));
    printf("%4s  %-27s %12s %12s %8s  %-9s %s\n", "#", "case", "old ops/s",
           "new ops/s", "new/old", "verdict", "vs-baseline ratio old -> new");
    const lss_json_tok *arr = lss__json_getz(&b.doc, rb, "cases");
    lss_json_iter it;
    lss__json_iter_init(&it, &b.doc, arr);
    const lss_json_tok *cb;
    int faster = 0, slower = 0, same = 0;
    while ((cb = lss__json_iter_next(&it, NULL))) {
        if (lss__json_type(cb) != LSS_JSON_OBJECT)
            continue;
        int num = (int)jnum(&b, cb, "num");
        char name[64], chk_a[32], chk_b[32];
        jstr(&b, cb, "name", name, sizeof name);
        const lss_json_tok *ca = find_num(&a, num);
        double ob = jnum(&b, cb, "ops_per_sec");
        double oa = ca ? jnum(&a, ca, "ops_per_sec") : -1;
        if (oa <= 0 || ob <= 0) {
            printf("%4d  %-27s %12s %12s %8s  %s\n", num, name,
                   oa > 0 ? "" : "-", ob > 0 ? "" : "-", "-",
                   ca ? "skipped" : "new case");
            continue;
        }
        double q = ob / oa;
        const char *verdict = "same";
        if (q > 1 + band / 100) {
            verdict = "faster";
            faster++;
        } else if (q < 1 - band / 100) {
            verdict = "slower";
            slower++;
        } else {
            same++;
        }
        printf("%4d  %-27s %12.0f %12.0f %7.3fx  %-9s", num, name, oa, ob, q,
               verdict);
        double xa = jnum(&a, ca, "ratio"), xb = jnum(&b, cb, "ratio");
        if (xa > 0 && xb > 0)
            printf(" %.3fx -> %.3fx", xa, xb);
        jstr(&a, ca, "check", chk_a, sizeof chk_a);
        jstr(&b, cb, "check", chk_b, sizeof chk_b);
        if (strcmp(chk_a, chk_b))
            printf("  check changed");
        printf("\n");
    }
    printf("%d faster, %d slower, %d within +-%.0f%%\n", faster, slower, same,
           band);
    free_json(&a);
    free_json(&b);
    return 0;
}

/* ------------------------------------------------------------------------
 * --self-check: the verification itself must fail on a wrong answer
 * ---------------------------------------------------------------------- */

/* The HTTP cases, without their baseline: checks stable across runs, and
 * a simulated wrong answer from the server (one write position flipped)
 * must fail the verification. */
static int self_check_http(const bench_cfg *cfg)
{
    static const int nums[] = {500, 501};
    if (!http_shim_path()) {
        printf("skip 500-501: shim-server not found\n");
        return 0;
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const bench_case *c = case_by_num(nums[i]);
        bench_result r1, r2, rb;
        bench_break = 0;
        int rc = run_case(c, NULL, cfg, &r1);
        if (rc == LSS_OK)
            rc = run_case(c, NULL, cfg, &r2);
        if (rc != LSS_OK) {
            printf("FAIL %d %s: %s\n", c->num, c->name, lss_strerror(rc));
            failed++;
            continue;
        }
        bench_break = 1;
        int rcb = run_case(c, NULL, cfg, &rb);
        bench_break = 0;
        int stable = r1.s.check == r2.s.check;
        int caught = rcb == LSS_EINTERNAL ||
                     (rcb == LSS_OK && rb.s.check != r1.s.check);
        failed += !(stable && caught);
        printf("%s %d %s: check %016llx %s, broken answer %s\n",
               stable && caught ? "ok  " : "FAIL", c->num, c->name,
               (unsigned long long)r1.s.check,
               stable ? "stable" : "NOT STABLE",
               rcb == LSS_EINTERNAL ? "failed the verification (caught)"
               : caught             ? "changed the check (caught)"
                                    : "NOT CAUGHT");
    }
    return failed;
}

static int self_check(const bench_cfg *cfg0)
{
    static const int nums[] = {201, 203, 210, 220, 301, 302, 310,
                               311, 400, 610};
    bench_cfg cfg = *cfg0;
    cfg.runs = 1;
    int failed = 0;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const bench_case *c = case_by_num(nums[i]);
        const bench_case *base = c->baseline ? case_by_num(c->baseline) : NULL;
        bench_result r1, r2, rb;
        /* the minutes-long cases at their smallest (610: 100,000 msgs) */
        cfg.size = c->flags & CASE_NAMED ? 1 : cfg0->size;
        bench_break = 0;
        int rc = run_case(c, base, &cfg, &r1);
        if (rc == LSS_OK)
            rc = run_case(c, base, &cfg, &r2);
        bench_break = 1;
        if (rc == LSS_OK)
            rc = run_case(c, base, &cfg, &rb);
        bench_break = 0;
        if (rc != LSS_OK) {
            printf("FAIL %d %s: %s\n", c->num, c->name, lss_strerror(rc));
            failed++;
            continue;
        }
        int stable = r1.s.check == r2.s.check;
        int same = !(c->flags & CASE_SAME_CHECK) ||
                   (r1.checks_equal && r2.checks_equal);
        int caught = rb.s.check != r1.s.check &&
                     (!(c->flags & CASE_SAME_CHECK) || !rb.checks_equal);
        int ok = stable && same && caught;
        failed += !ok;
        printf("%s %d %s: check %016llx %s, %s, broken read-back %016llx %s\n",
               ok ? "ok  " : "FAIL", c->num, c->name,
               (unsigned long long)r1.s.check,
               stable ? "stable" : "NOT STABLE",
               !(c->flags & CASE_SAME_CHECK) ? "no baseline check"
               : same                        ? "equals baseline"
                                             : "DIFFERS FROM BASELINE",
               (unsigned long long)rb.s.check, caught ? "caught" : "NOT CAUGHT");
    }
    cfg.size = cfg0->size;
    failed += self_check_http(&cfg);
    printf("self-check: %s\n", failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * --count-malloc: run again with malloc_count.so preloaded
 * ---------------------------------------------------------------------- */

static void reexec_with_counter(char **argv)
{
    if (malloc_calls)
        return;
    if (getenv("LSS_BENCH_PRELOAD_TRIED")) {
        fprintf(stderr, "lss-bench: malloc_count.so did not load; "
                        "mall/op prints -\n");
        return;
    }
    char exe[PATH_MAX], so[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "lss-bench: cannot find myself: %s\n", strerror(errno));
        return;
    }
    exe[n] = '\0';
    const char *env = getenv("LSS_BENCH_MALLOC_COUNT");
    if (env) {
        snprintf(so, sizeof so, "%s", env);
    } else {
        char dir[PATH_MAX];
        memcpy(dir, exe, (size_t)n + 1);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        snprintf(so, sizeof so, "%s/malloc_count.so", dir);
    }
    if (access(so, R_OK) != 0) {
        fprintf(stderr, "lss-bench: %s: %s; mall/op prints -\n", so,
                strerror(errno));
        return;
    }
    const char *old = getenv("LD_PRELOAD");
    char pre[2 * PATH_MAX + 64];
    snprintf(pre, sizeof pre, "%s%s%s", so, old && *old ? ":" : "",
             old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    setenv("LSS_BENCH_PRELOAD_TRIED", "1", 1);
    execv(exe, argv);
    fprintf(stderr, "lss-bench: exec %s: %s\n", exe, strerror(errno));
}

/* ------------------------------------------------------------------------
 * Arguments and main
 * ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lss-bench [CASE...|all] [--runs N] [--size N] [--json FILE]\n"
            "                 [--backend memory|file] [--dir DIR] [--count-malloc]\n"
            "                 [--no-baseline] [--shim PATH] [--workers N]\n"
            "                 [--seconds S | --requests N]\n"
            "       lss-bench http --url http://HOST:PORT [--workers N]\n"
            "                 [--seconds S | --requests N] [--token T] [--null-store]\n"
            "       lss-bench compare OLD.json NEW.json [--band PCT]\n"
            "       lss-bench --self-check [--size N]\n"
            "       lss-bench --list\n");
}

static void list_cases(void)
{
    for (size_t k = 0; k < NCASES; k++) {
        const bench_case *c = &cases[k];
        printf("%4d  %-31s %s", c->num, c->name, c->what);
        if (c->baseline)
            printf(" [baseline %d]", c->baseline);
        if (c->target_kind == TARGET_RATIO && c->p99_max_ns > 0)
            printf(" [target ratio >= %.2f, p99 <= %.1f ms]", c->target,
                   c->p99_max_ns / 1e6);
        else if (c->target_kind == TARGET_RATIO)
            printf(" [target ratio >= %.2f]", c->target);
        if (c->target_kind == TARGET_MSGS)
            printf(" [target >= %.0f msg/s]", c->target);
        if (c->flags & CASE_NAMED)
            printf(" [not in all]");
        printf("\n");
    }
}

typedef struct bench_args {
    const bench_case *sel[NCASES];
    size_t nsel;
    const char *json;
    const char *dir;
    int runs;
    long size;
    int backend;
    int count_malloc;
    int self_check;
    int no_baseline;
} bench_args;

static void add_all(bench_args *a)
{
    a->nsel = 0;
    for (size_t i = 0; i < NCASES; i++)
        if (!(cases[i].flags & (CASE_BASELINE | CASE_NAMED)))
            a->sel[a->nsel++] = &cases[i];
}

static int add_case(bench_args *a, const char *arg)
{
    if (!strcmp(arg, "all")) {
        add_all(a);
        return 0;
    }
    const bench_case *c = find_case(arg);
    if (!c) {
        fprintf(stderr, "lss-bench: unknown case '%s' (try --list)\n", arg);
        return 2;
    }
    if (a->nsel < NCASES)
        a->sel[a->nsel++] = c;
    return 0;
}

/* 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_args(int argc, char **argv, bench_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(arg, "--list")) {
            list_cases();
            return 1;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(arg, "--json") && has_val) {
            a->json = argv[++i];
        } else if (!strcmp(arg, "--runs") && has_val) {
            a->runs = atoi(argv[++i]);
        } else if (!strcmp(arg, "--size") && has_val) {
            a->size = atol(argv[++i]);
        } else if (!strcmp(arg, "--dir") && has_val) {
            a->dir = argv[++i];
        } else if (!strcmp(arg, "--backend") && has_val) {
            const char *b = argv[++i];
            if (!strcmp(b, "memory")) {
                a->backend = BENCH_MEMORY;
            } else if (!strcmp(b, "file")) {
                a->backend = BENCH_FILE;
            } else {
                fprintf(stderr, "lss-bench: backend '%s' not supported "
                                "(memory, file)\n", b);
                return 2;
            }
        } else if (!strcmp(arg, "--count-malloc")) {
            a->count_malloc = 1;
        } else if (!strcmp(arg, "--self-check")) {
            a->self_check = 1;
        } else if (!strcmp(arg, "--no-baseline")) {
            a->no_baseline = 1;
        } else if (!strcmp(arg, "--shim") && has_val) {
            bench_http.shim = argv[++i];
        } else if (!strcmp(arg, "--workers") && has_val) {
            bench_http.workers = atoi(argv[++i]);
        } else if (!strcmp(arg, "--seconds") && has_val) {
            bench_http.seconds = atof(argv[++i]);
            bench_http.requests = 0;
        } else if (!strcmp(arg, "--requests") && has_val) {
            bench_http.requests = atol(argv[++i]);
            bench_http.seconds = 0;
        } else if (!strcmp(arg, "--subscribers") && has_val) {
            bench_sse_subscribers = atol(argv[++i]);
        } else if (arg[0] == '-') {
            usage(stderr);
            return 2;
        } else if (add_case(a, arg)) {
            return 2;
        }
    }
    if (a->runs < 1 || a->runs > MAX_RUNS || a->size < 1) {
        fprintf(stderr, "lss-bench: need 1 <= runs <= %d and size >= 1\n",
                MAX_RUNS);
        return 2;
    }
    if (bench_http.workers < 1 || bench_http.workers > 4096) {
        fprintf(stderr, "lss-bench: need 1 <= workers <= 4096\n");
        return 2;
    }
    if (!a->nsel)
        add_all(a);
    return 0;
}

static char scratch[PATH_MAX];

static int make_scratch(const char *parent)
{
    if (!parent)
        parent = getenv("TMPDIR");
    if (!parent || !*parent)
        parent = "/tmp";
    snprintf(scratch, sizeof scratch, "%s/lss-bench-XXXXXX", parent);
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "lss-bench: cannot create a directory in %s: %s\n",
                parent, strerror(errno));
        return -1;
    }
    return 0;
}

static void cleanup(void)
{
    bench_store_cleanup();
    if (scratch[0])
        rmdir(scratch); /* cases remove their own files */
    scratch[0] = '\0';
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "compare"))
        return compare_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "http"))
        return http_main(argc, argv);
    malloc_counter_init();
    bench_args a = {.runs = 3, .size = 100};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (a.count_malloc)
        reexec_with_counter(argv);
    const char *brk = getenv("LSS_BENCH_BREAK");
    bench_break = brk && *brk && strcmp(brk, "0");
    bench_names_init();
    if (make_scratch(a.dir) != 0)
        return 1;
    bench_cfg cfg = {a.size, a.runs, a.backend, scratch};
    if (a.self_check) {
        rc = self_check(&cfg);
        cleanup();
        return rc;
    }
    static bench_result res[NCASES];
    int http_done = 0;
    print_header();
    for (size_t i = 0; i < a.nsel; i++) {
        const bench_case *c = a.sel[i];
        const bench_case *base = c->baseline && !a.no_baseline
                                     ? case_by_num(c->baseline)
                                     : NULL;
        if ((c->flags & CASE_HTTP) && !http_done) {
            /* all of the selection's HTTP cases at once, interleaved */
            const bench_case *hs[NCASES];
            bench_result *hr[NCASES];
            size_t hn = 0;
            for (size_t j = i; j < a.nsel; j++)
                if (a.sel[j]->flags & CASE_HTTP) {
                    hs[hn] = a.sel[j];
                    hr[hn++] = &res[j];
                }
            http_done = 1;
            if (run_http_group(hr, hs, hn, &cfg, a.no_baseline) != LSS_OK) {
                cleanup();
                return 1;
            }
        } else if (!(c->flags & CASE_HTTP) &&
                   run_case(c, base, &cfg, &res[i]) != LSS_OK) {
            cleanup();
            return 1;
        }
        print_result(&res[i], cfg.runs);
        fflush(stdout);
    }
    cleanup();
    if (a.json && write_json(a.json, res, a.nsel, &cfg)) {
        fprintf(stderr, "lss-bench: cannot write %s\n", a.json);
        return 1;
    }
    return 0;
}
