/* consumer_group.c — share a category between workers with a consumer
 * group, each worker keeping its own position.
 *
 *   consumer_group [STORE]  STORE: a data directory or ":memory:" (default)
 *
 * Orders are written to streams order-1 ... order-6.  WORKERS threads each
 * handle the orders of the member they are: a category read with
 * LSS_READ_GROUP returns only the messages whose stream's cardinal id
 * hashes to that member, so every stream goes to exactly one worker and
 * its messages stay in order.  A worker reads in small batches by global
 * position and, after each batch, records how far it got in a position
 * stream of its own ("orderWorker:position-<member>", in a category of its
 * own so the workers never read it).  A restarted worker resumes there.
 * The program runs the workers twice, with new orders in between, and
 * checks that every message was handled exactly once, by the right member.
 *
 * Exits 0 on success, 1 otherwise.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamstore.h"

#define NS "example"
#define CATEGORY "order"
#define WORKERS 3
#define BATCH 4
#define MAX_GPOS 256

static lss_db *db;
/* handled_by[g] = member that handled global position g, + 1 (0 = none);
 * each worker writes only the entries of its own messages. */
static int handled_by[MAX_GPOS];
static int handled_twice;

typedef struct worker {
    int64_t member;
    int handled; /* messages this run */
    int failed;
} worker;

static void position_stream(int64_t member, char *buf, size_t cap)
{
    snprintf(buf, cap, "orderWorker:position-%" PRId64, member);
}

/* The next global position to read: one past the last one recorded, or 1
 * (the start of the namespace) when the worker never ran. */
static int load_position(lss_conn *c, int64_t member, int64_t *next)
{
    char ps[64];
    position_stream(member, ps, sizeof ps);
    lss_cursor *cur;
    int rc = lss_read_last(c, NS, strlen(NS), ps, strlen(ps), NULL, 0, &cur);
    if (rc != LSS_OK)
        return rc;
    const lss_message *m;
    *next = 1;
    if ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        const char *p = memchr(m->data.p, ':', m->data.n); /* {"position":N} */
        *next = p ? strtoll(p + 1, NULL, 10) + 1 : 1;
    }
    lss_cursor_close(cur);
    return rc < 0 ? rc : LSS_OK;
}

static int save_position(lss_conn *c, int64_t member, int64_t gpos)
{
    char ps[64], data[64];
    position_stream(member, ps, sizeof ps);
    snprintf(data, sizeof data, "{\"position\":%" PRId64 "}", gpos);
    lss_msg_in m = {0};
    m.type = "Recorded";
    m.type_n = strlen(m.type);
    m.data = data;
    m.data_n = strlen(data);
    lss_append a = {0};
    a.ns = NS;
    a.ns_n = strlen(NS);
    a.stream = ps;
    a.stream_n = strlen(ps);
    a.msgs = &m;
    a.count = 1;
    return lss_append_one(c, &a);
}

/* The "business logic": note who handled the message. */
static void handle(worker *w, const lss_message *m)
{
    if (m->global_position < MAX_GPOS) {
        if (handled_by[m->global_position])
            handled_twice = 1;
        handled_by[m->global_position] = (int)w->member + 1;
    }
    w->handled++;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    lss_conn *c;
    if (lss_conn_open(db, &c) != LSS_OK) {
        w->failed = 1;
        return NULL;
    }
    int64_t next;
    int rc = load_position(c, w->member, &next);
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.flags = LSS_READ_GROUP;
    o.group_member = w->member;
    o.group_size = WORKERS;
    o.batch_size = BATCH;
    while (rc == LSS_OK) {
        o.position = next; /* category reads select by global position */
        lss_cursor *cur;
        rc = lss_read_category(c, NS, strlen(NS), CATEGORY, strlen(CATEGORY), &o,
                               &cur);
        if (rc != LSS_OK)
            break;
        const lss_message *m;
        int64_t last = 0;
        while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
            handle(w, m);
            last = m->global_position;
        }
        /* The batch is done; close the cursor before writing through the
         * same session (one cursor per session, and none open on a write). */
        lss_cursor_close(cur);
        if (rc != LSS_DONE)
            break;
        rc = LSS_OK;
        if (last == 0)
            break; /* caught up: a long-running worker would now wait (see
                      subscribe.c) and read again */
        /* Record progress.  A crash between handling and this write means
         * the batch is handled again after a restart: handlers should be
         * idempotent (at-least-once delivery). */
        if ((rc = save_position(c, w->member, last)) != LSS_OK)
            break;
        next = last + 1;
    }
    if (rc != LSS_OK) {
        fprintf(stderr, "worker %" PRId64 ": %s: %s\n", w->member,
                lss_errname(rc), lss_errmsg(c));
        w->failed = 1;
    }
    lss_conn_close(c);
    return NULL;
}

static int run_workers(int round)
{
    pthread_t th[WORKERS];
    worker w[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (worker){.member = i};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    int failed = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        printf("round %d: worker %d handled %d message(s)\n", round, i,
               w[i].handled);
        failed |= w[i].failed;
    }
    return failed;
}

/* Append `per_stream` messages to each of order-1 ... order-<streams>. */
static int write_orders(lss_conn *c, int streams, int per_stream)
{
    for (int s = 1; s <= streams; s++) {
        char stream[32];
        snprintf(stream, sizeof stream, CATEGORY "-%d", s);
        lss_msg_in m[8] = {{0}};
        for (int i = 0; i < per_stream && i < 8; i++) {
            m[i].type = "ItemAdded";
            m[i].type_n = strlen(m[i].type);
            m[i].data = "{\"sku\":\"x\"}";
            m[i].data_n = strlen(m[i].data);
        }
        lss_append a = {0}; /* a batch: all of one stream's messages at once */
        a.ns = NS;
        a.ns_n = strlen(NS);
        a.stream = stream;
        a.stream_n = strlen(stream);
        a.msgs = m;
        a.count = (size_t)per_stream;
        int rc = lss_append_one(c, &a);
        if (rc != LSS_OK) {
            fprintf(stderr, "append: %s: %s\n", lss_errname(rc), lss_errmsg(c));
            return rc;
        }
    }
    return LSS_OK;
}

/* Every message of the category handled exactly once, by its member. */
static int verify(lss_conn *c)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = 0;
    lss_cursor *cur;
    int rc = lss_read_category(c, NS, strlen(NS), CATEGORY, strlen(CATEGORY), &o,
                               &cur);
    if (rc != LSS_OK)
        return 1;
    const lss_message *m;
    int bad = handled_twice, n = 0;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        int64_t member;
        n++;
        if (lss_group_member(m->stream.p, m->stream.n, WORKERS, &member) != 1 ||
            m->global_position >= MAX_GPOS ||
            handled_by[m->global_position] != member + 1) {
            fprintf(stderr, "%.*s at %" PRId64 " not handled by its member\n",
                    (int)m->stream.n, m->stream.p, m->global_position);
            bad = 1;
        }
    }
    lss_cursor_close(cur);
    printf("%d message(s) in the category, %s\n", n,
           bad ? "NOT each handled exactly once" : "each handled exactly once");
    return bad || rc != LSS_DONE || n == 0;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : ":memory:";
    int rc = lss_open(url, NULL, &db);
    if (rc != LSS_OK) {
        fprintf(stderr, "open %s: %s: %s\n", url, lss_errname(rc),
                db ? lss_db_errmsg(db) : "out of memory");
        lss_close(db);
        return 1;
    }
    int status = 1;
    lss_conn *c = NULL;
    char token[LSS_TOKEN_MAX];
    size_t token_n;
    if (lss_conn_open(db, &c) != LSS_OK)
        goto out;
    rc = lss_ns_delete(c, NS, strlen(NS), NULL, NULL); /* a reused data dir */
    if ((rc != LSS_OK && rc != LSS_ENOTFOUND) ||
        lss_ns_create(c, NS, strlen(NS), NULL, 0, NULL, 0, token, sizeof token,
                      &token_n, NULL) != LSS_OK)
        goto out;

    if (write_orders(c, 6, 5) || run_workers(1))
        goto out;
    /* More orders arrive; the workers start again from their positions. */
    if (write_orders(c, 6, 2) || run_workers(2))
        goto out;
    status = verify(c);
out:
    if (status && c)
        fprintf(stderr, "last error: %s\n", lss_errmsg(c));
    lss_conn_close(c);
    lss_close(db);
    printf("consumer_group: %s\n", status ? "FAILED" : "ok");
    return status;
}
