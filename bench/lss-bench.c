/* lss-bench — libstreamstore's benchmark, shaped like SQLite's speedtest1:
 * numbered, named cases, each run --runs times and reported as the median,
 * with a verification value so that a fast wrong answer shows.
 *
 *   lss-bench [CASE...] [--json FILE] [--runs N] [--size N]
 *
 * CASE is a name or number from `lss-bench --list`; none (or "all") runs
 * every case.  --size scales the work of every case (100 = default).
 *
 * Adding a case: write one `static int case_xxx(bench_run *r)` that does
 * r->size-scaled work, fills r->ops, r->bytes (0 if MB/s means nothing) and
 * r->check, then add one line to the cases[] table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

typedef struct bench_run {
    long size;      /* work scale, 100 = default */
    double ops;     /* operations done */
    double bytes;   /* bytes processed, 0 when not meaningful */
    uint64_t check; /* must not depend on timing; same in every run */
} bench_run;

typedef int (*bench_fn)(bench_run *r);

typedef struct bench_case {
    int num;
    const char *name;
    const char *what;
    bench_fn run;
} bench_case;

typedef struct bench_result {
    double ops_per_sec, mb_per_sec;
    uint64_t check;
    int consistent; /* every run produced the same check */
} bench_result;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *u = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ u[i]) * 0x100000001b3u;
    return h;
}

#define FNV_SEED 0xcbf29ce484222325u

static long scaled(const bench_run *r, long base)
{
    long n = base * r->size / 100;
    return n > 0 ? n : 1;
}

/* ------------------------------------------------------------------------
 * Shared inputs
 * ---------------------------------------------------------------------- */

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

/* ------------------------------------------------------------------------
 * Cases
 * ---------------------------------------------------------------------- */

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

static int scan_loop(bench_run *r, const char *p, size_t n, unsigned expand,
                     long iters)
{
    size_t cap = lss__json_tape_need(n);
    lss_json_tok *tok = malloc(cap * sizeof *tok);
    lss_json_doc d;
    if (!tok)
        return LSS_ENOMEM;
    for (long i = 0; i < iters; i++) {
        if (lss__json_scan(&d, p, n, expand, tok, cap, NULL) != LSS_OK) {
            free(tok);
            return LSS_EJSON;
        }
    }
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
    int rc = scan_loop(r, p, n, LSS_JSON_EXPAND_ALL, scaled(r, 2000));
    free(p);
    return rc;
}

static int case_json_scan_w1(bench_run *r)
{
    /* expand 3: what the RPC layer asks for; payloads stay raw */
    return scan_loop(r, w1_request, sizeof w1_request - 1, 3,
                     scaled(r, 300000));
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
    }
    r->ops = (double)iters;
    r->bytes = (double)iters * (double)need;
    return LSS_OK;
}

static const bench_case cases[] = {
    {100, "json-scan-64k", "scan a 64 KB realistic payload, full tape",
     case_json_scan_64k},
    {101, "json-scan-w1", "scan the W1 request, expand depth 3",
     case_json_scan_w1},
    {110, "json-write-w1", "write a 7-element stream.get row",
     case_json_write_w1},
};

/* ------------------------------------------------------------------------
 * Harness
 * ---------------------------------------------------------------------- */

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

#define MAX_RUNS 101

static int run_case(const bench_case *c, long size, int runs,
                    bench_result *res)
{
    double ops[MAX_RUNS], mbs[MAX_RUNS];
    res->consistent = 1;
    for (int i = 0; i < runs; i++) {
        bench_run r = {size, 0, 0, 0};
        double t0 = now_seconds();
        int rc = c->run(&r);
        double dt = now_seconds() - t0;
        if (rc != LSS_OK) {
            fprintf(stderr, "%s: %s\n", c->name, lss_strerror(rc));
            return rc;
        }
        if (dt <= 0)
            dt = 1e-9;
        ops[i] = r.ops / dt;
        mbs[i] = r.bytes / dt / 1e6;
        if (i > 0 && r.check != res->check)
            res->consistent = 0;
        res->check = r.check;
    }
    res->ops_per_sec = median(ops, runs);
    res->mb_per_sec = median(mbs, runs);
    return LSS_OK;
}

static void print_row(const bench_case *c, const bench_result *res, int runs)
{
    char mb[32] = "-";
    if (res->mb_per_sec > 0)
        snprintf(mb, sizeof mb, "%.1f", res->mb_per_sec);
    printf("%4d  %-16s %14.0f %10s %5d  %016llx%s\n", c->num, c->name,
           res->ops_per_sec, mb, runs, (unsigned long long)res->check,
           res->consistent ? "" : "  CHECK DIFFERS BETWEEN RUNS");
}

/* The results as JSON, through the library's own writer. */
static int write_json(const char *path, const bench_case **sel,
                      const bench_result *res, size_t n, int runs, long size)
{
    char buf[8192], num[64];
    size_t need;
    lss_json_writer w;
    lss__jw_init(&w, buf, sizeof buf);
    LSS_JW_LIT(&w, "{\"runs\":");
    lss__jw_int(&w, runs);
    LSS_JW_LIT(&w, ",\"size\":");
    lss__jw_int(&w, size);
    LSS_JW_LIT(&w, ",\"cases\":[");
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(num, sizeof num, "%s{\"num\":%d,\"name\":", i ? "," : "",
                         sel[i]->num);
        lss__jw_raw(&w, num, (size_t)k);
        lss__jw_strz(&w, sel[i]->name);
        k = snprintf(num, sizeof num, ",\"ops_per_sec\":%.1f,\"mb_per_sec\":%.1f",
                     res[i].ops_per_sec, res[i].mb_per_sec);
        lss__jw_raw(&w, num, (size_t)k);
        k = snprintf(num, sizeof num, ",\"check\":\"%016llx\"}",
                     (unsigned long long)res[i].check);
        lss__jw_raw(&w, num, (size_t)k);
    }
    LSS_JW_LIT(&w, "]}\n");
    if (lss__jw_finish(&w, &need) != LSS_OK)
        return LSS_ENOSPACE;
    FILE *f = fopen(path, "w");
    if (!f)
        return LSS_EIO;
    int bad = fwrite(buf, 1, need, f) != need;
    bad |= fclose(f) != 0;
    return bad ? LSS_EIO : LSS_OK;
}

static const bench_case *find_case(const char *arg)
{
    char *end;
    long num = strtol(arg, &end, 10);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(cases[i].name, arg) || (!*end && cases[i].num == num))
            return &cases[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: lss-bench [CASE...] [--json FILE] [--runs N] "
               "[--size N] [--list]\n");
}

typedef struct bench_args {
    const bench_case *sel[sizeof cases / sizeof cases[0]];
    size_t nsel;
    const char *json;
    int runs;
    long size;
} bench_args;

static int add_case(bench_args *a, const char *arg)
{
    if (!strcmp(arg, "all")) {
        a->nsel = 0;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            a->sel[a->nsel++] = &cases[i];
        return 0;
    }
    const bench_case *c = find_case(arg);
    if (!c) {
        fprintf(stderr, "lss-bench: unknown case '%s' (try --list)\n", arg);
        return 2;
    }
    if (a->nsel < sizeof a->sel / sizeof a->sel[0])
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
            for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
                printf("%4d  %-16s %s\n", cases[k].num, cases[k].name,
                       cases[k].what);
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
    if (!a->nsel)
        add_case(a, "all");
    return 0;
}

int main(int argc, char **argv)
{
    bench_args a = {.runs = 3, .size = 100};
    bench_result res[sizeof cases / sizeof cases[0]];
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : 2;
    printf("%4s  %-16s %14s %10s %5s  %-16s\n", "#", "case", "ops/s", "MB/s",
           "runs", "check");
    for (size_t i = 0; i < a.nsel; i++) {
        if (run_case(a.sel[i], a.size, a.runs, &res[i]) != LSS_OK)
            return 1;
        print_row(a.sel[i], &res[i], a.runs);
        fflush(stdout);
    }
    if (a.json && write_json(a.json, a.sel, res, a.nsel, a.runs, a.size)) {
        fprintf(stderr, "lss-bench: cannot write %s\n", a.json);
        return 1;
    }
    return 0;
}
