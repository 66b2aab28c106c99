/* harness.c — the SIGKILL writer harness of test_crash and test_powerloss.
 *
 * Each cycle forks a writer child that opens the file store (h->sync,
 * namespace "default"), first retries the requests the previous child
 * left in flight (same ids, same content), then appends to 50 streams in 5
 * categories (single and batch appends, with and without expected version).
 * Over a pipe it reports, with one atomic write() each:
 *   I <seq> <stream> <has_ev> <ev> <count> <id>...   before the append (intent)
 *   A <seq> <pos> <gpos>                             after it succeeded (ack)
 *   F <seq> <rc>                                     after it failed
 *   R                                                once the store is open
 * The parent kills the child a few ms after the fork or after R, lets the
 * test's after_kill hook act (a power-loss "reboot"), then opens the store
 * itself and checks every acknowledged append.  An intent without ack is
 * "in flight": the next child retries it, which must succeed (an
 * idempotent retry if it had committed, a fresh write if it had not).
 *
 * Lying mode (a negative control) sends the ack BEFORE calling
 * lss_append_one ("acknowledge before commit"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "streamstore.h"

#include "harness.h"
#include "xorshift.h"

/* ---------------------------------------------------------------- misc */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static req *find_req(harness *h, int64_t seq)
{
    for (size_t i = h->n; i-- > 0;)
        if (h->reqs[i].seq == seq)
            return &h->reqs[i];
    return NULL;
}

static void msg_content(const req *r, int k, char *data, size_t dcap, char *meta, size_t mcap)
{
    snprintf(data, dcap, "{\"id\":\"%s\",\"k\":%d,\"stream\":\"%s\"}", r->ids[k], k, r->stream);
    snprintf(meta, mcap, "{\"seq\":%" PRId64 "}", r->seq);
}

/* -------------------------------------------------------------- child */

static void child_write(int fd, const char *buf, size_t n)
{
    /* n <= PIPE_BUF, so the line arrives whole or not at all */
    while (write(fd, buf, n) < 0 && errno == EINTR) {
    }
}

static void send_ack(int fd, const req *r, int rc, int64_t pos, int64_t gpos)
{
    char line[96];
    int n = rc == LSS_OK
                ? snprintf(line, sizeof line, "A %" PRId64 " %" PRId64 " %" PRId64 "\n", r->seq,
                           pos, gpos)
                : snprintf(line, sizeof line, "F %" PRId64 " %d\n", r->seq, rc);
    child_write(fd, line, (size_t)n);
}

/* One append with its report: intent, then ack (lying: ack, then append). */
static void child_do(int fd, lss_conn *c, const req *r, int lying, int send_intent)
{
    if (send_intent) {
        char line[PIPE_BUF];
        int n = snprintf(line, sizeof line, "I %" PRId64 " %s %d %" PRId64 " %d", r->seq,
                         r->stream, r->has_ev, r->ev, r->count);
        for (int k = 0; k < r->count; k++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %s", r->ids[k]);
        line[n++] = '\n';
        child_write(fd, line, (size_t)n);
    }
    if (lying)
        send_ack(fd, r, LSS_OK, -1, -1);
    /* the real call: positions come back through a second request struct */
    lss_msg_in m[MAXBATCH];
    char data[MAXBATCH][160], meta[MAXBATCH][48];
    for (int k = 0; k < r->count; k++) {
        msg_content(r, k, data[k], sizeof data[k], meta[k], sizeof meta[k]);
        m[k] = (lss_msg_in){r->ids[k], 36, "Ev", 2, data[k], strlen(data[k]),
                            k % 2 ? NULL : meta[k], k % 2 ? 0 : strlen(meta[k])};
    }
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = NS;
    a.ns_n = strlen(NS);
    a.stream = r->stream;
    a.stream_n = strlen(r->stream);
    a.msgs = m;
    a.count = (size_t)r->count;
    if (r->has_ev) {
        a.flags = LSS_APPEND_EXPECT;
        a.expected_version = r->ev;
    }
    int rc = lss_append_one(c, &a);
    if (!lying || rc != LSS_OK)
        send_ack(fd, r, rc, a.position, a.global_position);
}

/* A version-4 UUID from the kernel's generator.  Not from the writer's
 * 32-bit xorshift: two writers whose seeds fall near each other on its one
 * orbit replay each other's draws, and so each other's ids.  A 100-cycle
 * power-loss run once stored an id of one request in another request's
 * stream (then EDUPLICATE), which only such a collision explains. */
static void random_uuid(char out[37])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        _exit(5);
    b[6] = (unsigned char)(0x40 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    for (int i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hx[b[i] >> 4];
        out[o++] = hx[b[i] & 15];
    }
    out[36] = 0;
}

static void child_main(harness *h, int fd)
{
    unsigned rng = (unsigned)getpid() * 2654435761u ^ (unsigned)mono_ms();
    lss_options o;
    lss_options_init(&o);
    o.sync = h->sync;
    o.create_default = 1;
    lss_db *db = NULL;
    lss_conn *c = NULL;
    int rc = lss_open(h->url, &o, &db);
    if (rc == LSS_OK)
        rc = lss_conn_open(db, &c);
    if (rc == LSS_OK) { /* not relying on create_default alone */
        char tok[LSS_TOKEN_MAX];
        size_t tok_n;
        rc = lss_ns_create(c, NS, strlen(NS), NULL, 0, NULL, 0, tok, sizeof tok, &tok_n, NULL);
        if (rc == LSS_EEXISTS)
            rc = LSS_OK;
    }
    if (rc != LSS_OK) {
        char line[64];
        int n = snprintf(line, sizeof line, "E open %d\n", rc);
        child_write(fd, line, (size_t)n);
        _exit(3);
    }
    child_write(fd, "R\n", 2);
    /* retries of what the previous writer left in flight */
    for (size_t i = 0; i < h->n; i++)
        if (!h->reqs[i].acked)
            child_do(fd, c, &h->reqs[i], h->lying, 0);
    int64_t seq = h->next_seq;
    int64_t end = mono_ms() + CHILD_MAX_MS;
    while (mono_ms() < end) {
        req r;
        memset(&r, 0, sizeof r);
        r.seq = seq++;
        int s = (int)(xorshift(&rng) % NSTREAMS);
        snprintf(r.stream, sizeof r.stream, "cat%d-%d", s / 10, s % 10);
        int kind = (int)(xorshift(&rng) % 4);
        r.count = kind >= 2 ? 2 + (int)(xorshift(&rng) % (MAXBATCH - 1)) : 1;
        if (kind % 2) {
            int64_t v = -2;
            if (lss_stream_version(c, NS, strlen(NS), r.stream, strlen(r.stream), &v) != LSS_OK)
                continue;
            r.has_ev = 1;
            r.ev = v;
        }
        for (int k = 0; k < r.count; k++)
            random_uuid(r.ids[k]);
        child_do(fd, c, &r, h->lying, 1);
        if (h->child_tick)
            h->child_tick(h);
    }
    lss_conn_close(c);
    lss_close(db);
    _exit(0);
}

/* ------------------------------------------------------------- parent */

static void add_req(harness *h, const req *r)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->reqs = realloc(h->reqs, h->cap * sizeof *h->reqs);
        assert_non_null(h->reqs);
    }
    h->reqs[h->n++] = *r;
}

static void parse_line(harness *h, char *line, int *ready, int *progress)
{
    req r;
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save);
    if (!tok)
        return;
    if (!strcmp(tok, "R")) {
        *ready = 1;
    } else if (!strcmp(tok, "I")) {
        memset(&r, 0, sizeof r);
        r.seq = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
        snprintf(r.stream, sizeof r.stream, "%s", strtok_r(NULL, " ", &save));
        r.has_ev = atoi(strtok_r(NULL, " ", &save));
        r.ev = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
        r.count = atoi(strtok_r(NULL, " ", &save));
        for (int k = 0; k < r.count; k++)
            snprintf(r.ids[k], sizeof r.ids[k], "%s", strtok_r(NULL, " ", &save));
        r.pos = r.gpos = -1;
        if (!find_req(h, r.seq)) {
            add_req(h, &r);
            if (r.seq >= h->next_seq)
                h->next_seq = r.seq + 1;
        }
    } else if (!strcmp(tok, "A")) {
        int64_t seq = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
        req *q = find_req(h, seq);
        if (!q) {
            VIOLATION(h, "ack for unknown request %" PRId64, seq);
            return;
        }
        if (!q->acked && q->inflight_at_fork)
            h->retries_ok++;
        q->acked = 1;
        q->pos = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
        q->gpos = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
        h->acks++;
        *progress = 1;
    } else if (!strcmp(tok, "F")) {
        int64_t seq = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
        int rc = atoi(strtok_r(NULL, " ", &save));
        VIOLATION(h, "append (or retry) of request %" PRId64 " failed: %s", seq, lss_errname(rc));
        req *q = find_req(h, seq);
        if (q)
            q->acked = 1; /* do not retry forever */
    } else if (!strcmp(tok, "E")) {
        VIOLATION(h, "the writer could not open the store");
    }
}

typedef struct stored {
    char id[37];
    char stream[16];
    int64_t pos, gpos;
} stored;

static int cmp_stored_id(const void *a, const void *b)
{
    return strcmp(((const stored *)a)->id, ((const stored *)b)->id);
}

static int integrity_ok(harness *h)
{
    DIR *d = opendir(h->url);
    if (!d)
        return 1; /* nothing created yet */
    struct dirent *e;
    int ok = 1, files = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".db"))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", h->url, e->d_name);
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(path, &db, h->integrity_flags, NULL) != SQLITE_OK) {
            VIOLATION(h, "cannot open %s", path);
            h->integrity_failures++;
            ok = 0;
        } else {
            sqlite3_stmt *st = NULL;
            int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
            const char *res = NULL;
            if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                res = (const char *)sqlite3_column_text(st, 0);
            if (!res || strcmp(res, "ok")) {
                VIOLATION(h, "integrity_check of %s failed", path);
                h->integrity_failures++;
                if (res)
                    fprintf(stderr, "  %s\n", res);
                ok = 0;
            }
            sqlite3_finalize(st);
            files++;
        }
        sqlite3_close(db);
    }
    closedir(d);
    return ok;
}

/* Opens the store after a crash and checks every promise. */
static void check_store(harness *h)
{
    lss_options o;
    lss_options_init(&o);
    lss_db *db = NULL;
    lss_conn *c = NULL;
    int rc = lss_open(h->url, &o, &db);
    if (rc == LSS_OK)
        rc = lss_conn_open(db, &c);
    if (rc != LSS_OK) {
        VIOLATION(h, "the store does not open after a crash: %s", db ? lss_db_errmsg(db) : lss_errname(rc));
        lss_close(db);
        return;
    }
    const lss_ns_row *row;
    rc = lss_ns_info(c, NS, strlen(NS), &row);
    int64_t acked_count = 0;
    for (size_t i = 0; i < h->n; i++)
        acked_count += h->reqs[i].acked;
    if (rc == LSS_ENOTFOUND && acked_count == 0)
        goto out;
    if (rc != LSS_OK) {
        VIOLATION(h, "namespace info after a crash: %s", lss_errname(rc));
        if (rc == LSS_ENOTFOUND) /* and every acknowledged message with it */
            h->lost += acked_count;
        goto out;
    }

    /* everything, in global-position order */
    lss_read_opts ro;
    lss_read_opts_init(&ro);
    ro.batch_size = -1;
    lss_cursor *cur = NULL;
    rc = lss_read_category(c, NS, strlen(NS), "", 0, &ro, &cur);
    if (rc != LSS_OK) {
        VIOLATION(h, "read all: %s", lss_errname(rc));
        goto out;
    }
    stored *all = NULL;
    size_t n = 0, cap = 0;
    const lss_message *m;
    int64_t last_g = 0;
    int64_t next_pos[NSTREAMS];
    for (int i = 0; i < NSTREAMS; i++)
        next_pos[i] = 0;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            all = realloc(all, cap * sizeof *all);
            assert_non_null(all);
        }
        stored *s = &all[n++];
        snprintf(s->id, sizeof s->id, "%.*s", (int)m->id.n, m->id.p);
        snprintf(s->stream, sizeof s->stream, "%.*s", (int)m->stream.n, m->stream.p);
        s->pos = m->position;
        s->gpos = m->global_position;
        if (s->gpos <= last_g)
            VIOLATION(h, "global position %" PRId64 " after %" PRId64, s->gpos, last_g);
        last_g = s->gpos;
        int cat, idn;
        if (sscanf(s->stream, "cat%d-%d", &cat, &idn) != 2 || cat < 0 || cat > 4 || idn < 0 ||
            idn > 9) {
            VIOLATION(h, "unexpected stream %s", s->stream);
            continue;
        }
        /* global order within a stream is position order: 0..n-1, no holes */
        if (s->pos != next_pos[cat * 10 + idn])
            VIOLATION(h, "stream %s: position %" PRId64 " where %" PRId64 " was due", s->stream,
                      s->pos, next_pos[cat * 10 + idn]);
        next_pos[cat * 10 + idn] = s->pos + 1;
    }
    lss_cursor_close(cur);
    if (rc != LSS_DONE)
        VIOLATION(h, "read all ended with %s", lss_errname(rc));
    if ((int64_t)n != row->message_count)
        VIOLATION(h, "read %" PRId64 " messages, namespace counts %" PRId64, (int64_t)n,
                  row->message_count);
    /* each stream read on its own agrees */
    for (int i = 0; i < NSTREAMS; i++) {
        char name[16];
        snprintf(name, sizeof name, "cat%d-%d", i / 10, i % 10);
        int64_t v = -9;
        if (lss_stream_version(c, NS, strlen(NS), name, strlen(name), &v) != LSS_OK ||
            v != next_pos[i] - 1)
            VIOLATION(h, "stream %s: version %" PRId64 ", %" PRId64 " messages", name, v,
                      next_pos[i]);
    }
    if (n) /* all is NULL when nothing is stored */
        qsort(all, n, sizeof *all, cmp_stored_id);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(all[i].id, all[i - 1].id))
            VIOLATION(h, "duplicate id %s", all[i].id);
    /* every acknowledged append is there, with its positions */
    for (size_t i = 0; i < h->n; i++) {
        req *q = &h->reqs[i];
        if (!q->acked || q->reported)
            continue;
        for (int k = 0; k < q->count; k++) {
            stored key;
            snprintf(key.id, sizeof key.id, "%s", q->ids[k]);
            stored *s = n ? bsearch(&key, all, n, sizeof *all, cmp_stored_id) : NULL;
            if (!s) {
                VIOLATION(h, "acknowledged message %s (request %" PRId64 ", #%d) is lost", q->ids[k],
                          q->seq, k);
                h->lost++;
                q->reported = 1;
                continue;
            }
            if (strcmp(s->stream, q->stream))
                VIOLATION(h, "message %s is in another stream", q->ids[k]);
            if (q->pos >= 0 && s->pos != q->pos - (q->count - 1 - k))
                VIOLATION(h, "message %s: position %" PRId64 ", acknowledged %" PRId64,
                          q->ids[k], s->pos, q->pos - (q->count - 1 - k));
            if (q->gpos >= 0 && k == q->count - 1 && s->gpos != q->gpos)
                VIOLATION(h, "message %s: global position %" PRId64 ", acknowledged %" PRId64,
                          q->ids[k], s->gpos, q->gpos);
            if (q->gpos >= 0 && k < q->count - 1 && s->gpos >= q->gpos)
                VIOLATION(h, "message %s: global position %" PRId64 " not below %" PRId64,
                          q->ids[k], s->gpos, q->gpos);
        }
    }
    /* and nothing is stored that no writer ever meant to write */
    size_t nreq = 0;
    for (size_t j = 0; j < h->n; j++)
        nreq += (size_t)h->reqs[j].count;
    stored *meant = calloc(nreq ? nreq : 1, sizeof *meant);
    assert_non_null(meant);
    nreq = 0;
    for (size_t j = 0; j < h->n; j++)
        for (int k = 0; k < h->reqs[j].count; k++)
            memcpy(meant[nreq++].id, h->reqs[j].ids[k], 37);
    qsort(meant, nreq, sizeof *meant, cmp_stored_id);
    for (size_t i = 0; i < n; i++)
        if (!bsearch(&all[i], meant, nreq, sizeof *meant, cmp_stored_id))
            VIOLATION(h, "stored message %s was never requested", all[i].id);
    free(meant);
    free(all);
out:
    lss_conn_close(c);
    lss_close(db);
    integrity_ok(h);
}

/* The store and its namespace, made in the parent (no kill, no VFS). */
static void create_store(harness *h)
{
    lss_options o;
    lss_options_init(&o);
    o.create_default = 1;
    lss_db *db = NULL;
    assert_int_equal(lss_open(h->url, &o, &db), LSS_OK);
    lss_close(db);
}

void harness_init(harness *h)
{
    memset(h, 0, sizeof *h);
    h->dir_template = "/tmp/lss-crash-XXXXXX";
    h->sync = LSS_SYNC_FULL;
    h->integrity_flags = SQLITE_OPEN_READWRITE;
    h->kill_min_ms = 5;
    h->kill_span_ms = 56;
}

int harness_cycles(const char *name, int dflt)
{
    const char *e = getenv(name);
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : dflt;
}

void harness_run(harness *h, int cycles)
{
    snprintf(h->dir, sizeof h->dir, "%s", h->dir_template);
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->url, sizeof h->url, "%s/data", h->dir);
    h->rng = (unsigned)getpid() ^ (unsigned)mono_ms() * 2246822519u;
    h->next_seq = 1;
    if (h->create_first)
        create_store(h);
    for (int cycle = 0; cycle < cycles; cycle++) {
        for (size_t i = 0; i < h->n; i++)
            h->reqs[i].inflight_at_fork = !h->reqs[i].acked;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            if (h->child_setup)
                h->child_setup(h);
            child_main(h, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        int from_ready = xorshift(&h->rng) % 4 != 0; /* 1 in 4 may hit the open */
        int64_t delay = h->kill_min_ms + (int64_t)(xorshift(&h->rng) % (unsigned)h->kill_span_ms);
        int64_t start = mono_ms(), kill_at = from_ready ? -1 : start + delay;
        char buf[1 << 16];
        size_t have = 0;
        int ready = 0, progress = 0, killed = 0;
        for (;;) {
            int64_t now = mono_ms();
            if (!killed && ready && kill_at < 0)
                kill_at = now + delay;
            if (!killed && ((kill_at >= 0 && now >= kill_at) || now - start > 10000)) {
                kill(pid, SIGKILL);
                killed = 1;
            }
            int timeout = killed ? 1000 : kill_at >= 0 ? (int)(kill_at - now) : 5;
            struct pollfd pfd = {fds[0], POLLIN, 0};
            int pr = poll(&pfd, 1, timeout < 0 ? 0 : timeout);
            if (pr <= 0)
                continue;
            ssize_t r = read(fds[0], buf + have, sizeof buf - have - 1);
            if (r <= 0)
                break; /* EOF: the child is gone */
            have += (size_t)r;
            char *nl;
            char *p = buf;
            while ((nl = memchr(p, '\n', have - (size_t)(p - buf)))) {
                *nl = 0;
                parse_line(h, p, &ready, &progress);
                p = nl + 1;
            }
            have -= (size_t)(p - buf);
            memmove(buf, p, have);
        }
        close(fds[0]);
        int status;
        waitpid(pid, &status, 0);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            VIOLATION(h, "the writer ended by itself (status %d)", status);
        h->cycles_with_progress += progress;
        h->cycles++;
        if (h->after_kill)
            h->after_kill(h, cycle);
        check_store(h);
        if ((h->lying || h->stop_on_loss) && h->lost)
            break;
    }
    long inflight = 0;
    for (size_t i = 0; i < h->n; i++)
        inflight += !h->reqs[i].acked;
    printf("# %s: %zu requests, %ld acks, %ld cycles with progress, %ld in flight, "
           "%ld retried after a crash, %ld violations (%ld lost acknowledged messages)\n",
           h->label ? h->label : h->lying ? "lying writer" : "honest writer", h->n, h->acks, h->cycles_with_progress,
           inflight, h->retries_ok, h->violations, h->lost);
    nftw(h->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(h->reqs);
}

