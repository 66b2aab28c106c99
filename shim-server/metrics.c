/* metrics.c — counters, histograms and gauges of GET /metrics
 * (PROTOCOL.md 12.4), Prometheus text format 0.0.4.  Only the loop thread
 * updates them, so they are plain integers.  No label carries client text. */
#include "shim.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ST_MIN 100
#define ST_N 500 /* statuses 100..599 */
#define NB 15    /* histogram buckets, +Inf included */

static const double BUCKETS[NB - 1] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                       0.025,  0.05,  0.1,    0.25,  0.5,
                                       1,      2.5,   5,      10};
static const char *const BUCKET_TEXT[NB] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",   "+Inf"};
static const char *const EP_NAME[EP_N] = {"/rpc",    "/subscribe", "/import",
                                          "/export", "/health",    "/version",
                                          "/metrics", "other"};
static const char *const SK_NAME[SK_N] = {"stream", "category", "all"};
static const char *const SD_NAME[SD_N] = {"client", "overflow", "error",
                                          "shutdown"};

typedef struct hist {
    uint64_t b[NB]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} hist;

static struct {
    uint64_t http[EP_N][ST_N];
    uint64_t rpc[LSS_RPC_METHOD_COUNT][ST_N];
    hist write, read;
    int64_t subs[SK_N];
    uint64_t pokes;
    uint64_t batches, batch_calls;
    uint64_t disc[SD_N];
    int64_t size_bytes;
    time_t size_at;
} M;

static int st_index(int status)
{
    return status >= ST_MIN && status < ST_MIN + ST_N ? status - ST_MIN : 500 - ST_MIN;
}

void metrics_http(int ep, int status)
{
    if (ep >= 0 && ep < EP_N)
        M.http[ep][st_index(status)]++;
}

void metrics_rpc(int method, int status)
{
    if (method < 0 || method >= LSS_RPC_METHOD_COUNT)
        method = LSS_RPC_UNKNOWN;
    M.rpc[method][st_index(status)]++;
}

static void observe(hist *h, double s)
{
    int i = 0;
    while (i < NB - 1 && s > BUCKETS[i])
        i++;
    h->b[i]++;
    h->count++;
    h->sum += s;
}

void metrics_write_seconds(double s)
{
    observe(&M.write, s);
}

void metrics_read_seconds(double s)
{
    observe(&M.read, s);
}

void metrics_batch(size_t calls)
{
    M.batches++;
    M.batch_calls += calls;
}

void metrics_sse_gauge(int kind, int delta)
{
    if (kind >= 0 && kind < SK_N)
        M.subs[kind] += delta;
}

void metrics_sse_poke(void)
{
    M.pokes++;
}

void metrics_sse_disconnect(int reason)
{
    if (reason >= 0 && reason < SD_N)
        M.disc[reason]++;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int out(sbuf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return sbuf_add(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static int render_hist(sbuf *b, const char *name, const char *help, const hist *h)
{
    int rc = out(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < NB; i++) {
        cum += h->b[i];
        rc |= out(b, "%s_bucket{le=\"%s\"} %llu\n", name, BUCKET_TEXT[i],
                  (unsigned long long)cum);
    }
    rc |= out(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name,
              (unsigned long long)h->count);
    return rc;
}

/* Bytes of the files in the data directory (databases, WAL, shared
 * memory), cached for 10 s.  An in-memory store is not visible through the
 * public API: 0. */
static int64_t store_size(const shim_cfg *cfg)
{
    time_t now = time(NULL);
    if (M.size_at && now - M.size_at < 10)
        return M.size_bytes;
    int64_t total = 0;
    if (cfg->store_dir) {
        DIR *d = opendir(cfg->store_dir);
        if (d) {
            struct dirent *e;
            char path[4096];
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof path, "%s/%s", cfg->store_dir, e->d_name);
                struct stat st;
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                    total += (int64_t)st.st_size;
            }
            closedir(d);
        }
    }
    M.size_bytes = total;
    M.size_at = now;
    return total;
}

int metrics_render(sbuf *b, const shim_cfg *cfg)
{
    int rc = out(b, "# HELP streamstore_http_requests_total HTTP requests answered.\n"
                    "# TYPE streamstore_http_requests_total counter\n");
    for (int e = 0; e < EP_N; e++)
        for (int s = 0; s < ST_N; s++)
            if (M.http[e][s])
                rc |= out(b, "streamstore_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                          EP_NAME[e], s + ST_MIN, (unsigned long long)M.http[e][s]);
    rc |= out(b, "# HELP streamstore_rpc_requests_total RPC calls by method and HTTP status.\n"
                 "# TYPE streamstore_rpc_requests_total counter\n");
    for (int m = 0; m < LSS_RPC_METHOD_COUNT; m++)
        for (int s = 0; s < ST_N; s++)
            if (M.rpc[m][s])
                rc |= out(b, "streamstore_rpc_requests_total{method=\"%s\",status=\"%d\"} %llu\n",
                          lss_rpc_method_name(m), s + ST_MIN,
                          (unsigned long long)M.rpc[m][s]);
    rc |= out(b, "# HELP streamstore_rpc_batches_total Store calls made for RPC calls"
                 " (each one group commit).\n"
                 "# TYPE streamstore_rpc_batches_total counter\n"
                 "streamstore_rpc_batches_total %llu\n"
                 "# HELP streamstore_rpc_batched_calls_total RPC calls in those.\n"
                 "# TYPE streamstore_rpc_batched_calls_total counter\n"
                 "streamstore_rpc_batched_calls_total %llu\n",
              (unsigned long long)M.batches, (unsigned long long)M.batch_calls);
    rc |= render_hist(b, "streamstore_write_duration_seconds",
                      "Server-side time of stream.write and stream.writeBatch.",
                      &M.write);
    rc |= render_hist(b, "streamstore_read_duration_seconds",
                      "Server-side time of the read methods.", &M.read);
    rc |= out(b, "# HELP streamstore_sse_subscribers Open subscriptions.\n"
                 "# TYPE streamstore_sse_subscribers gauge\n");
    for (int k = 0; k < SK_N; k++)
        rc |= out(b, "streamstore_sse_subscribers{kind=\"%s\"} %lld\n", SK_NAME[k],
                  (long long)M.subs[k]);
    rc |= out(b, "# HELP streamstore_sse_pokes_total Pokes written to sockets.\n"
                 "# TYPE streamstore_sse_pokes_total counter\n"
                 "streamstore_sse_pokes_total %llu\n",
              (unsigned long long)M.pokes);
    rc |= out(b, "# HELP streamstore_sse_disconnects_total Ended subscriptions.\n"
                 "# TYPE streamstore_sse_disconnects_total counter\n");
    for (int r = 0; r < SD_N; r++)
        rc |= out(b, "streamstore_sse_disconnects_total{reason=\"%s\"} %llu\n",
                  SD_NAME[r], (unsigned long long)M.disc[r]);
    rc |= out(b, "# HELP streamstore_store_size_bytes Storage in use.\n"
                 "# TYPE streamstore_store_size_bytes gauge\n"
                 "streamstore_store_size_bytes %lld\n",
              (long long)store_size(cfg));
    rc |= out(b, "# HELP streamstore_library_allocations_total Calls into the"
                 " library's allocator (malloc and realloc).\n"
                 "# TYPE streamstore_library_allocations_total counter\n"
                 "streamstore_library_allocations_total %llu\n",
              shim_lib_allocs());
    /* lss-bench's malloc-counting preload (bench/malloc_count.c), when the
     * bench started this server with it. */
    unsigned long long (*mc)(void) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "lss_bench_malloc_calls");
    memcpy(&mc, &sym, sizeof mc);
    if (mc)
        rc |= out(b, "# HELP streamstore_process_mallocs_total malloc, calloc and"
                     " realloc calls of the process (a counting preload is"
                     " loaded).\n"
                     "# TYPE streamstore_process_mallocs_total counter\n"
                     "streamstore_process_mallocs_total %llu\n",
                  mc());
    rc |= out(b, "# HELP streamstore_build_info Build identification.\n"
                 "# TYPE streamstore_build_info gauge\n"
                 "streamstore_build_info{version=\"%s\",protocol=\"%s\"} 1\n",
              lss_version_string(), LSS_PROTOCOL_VERSION);
    return rc ? -1 : 0;
}
