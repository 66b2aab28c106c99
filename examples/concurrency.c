/* concurrency.c — optimistic concurrency with an expected version.
 *
 *   concurrency [STORE]     STORE: a data directory or ":memory:" (default)
 *
 * Two tellers deposit into the same account at the same moment.  Each one
 * reads the account (its balance and its version: the position of the last
 * message), then appends a Deposited event carrying the new balance, on the
 * condition that the stream is still at the version it read.  Both read
 * before either writes, so exactly one wins; the other gets LSS_EVERSION,
 * re-reads the account (now including the winner's deposit) and retries.
 * Without the check both would have written the same stale balance.
 *
 * Exits 0 when exactly one conflict happened and the final balance is
 * right, 1 otherwise.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamstore.h"

#define NS "example"
#define STREAM "account-1"
#define TELLERS 2
#define DEPOSIT 10

static lss_db *db;
static pthread_barrier_t both_have_read;

typedef struct teller {
    int id;
    int conflicts; /* LSS_EVERSION results seen */
    int failed;    /* anything unexpected */
} teller;

/* Fold the stream into a balance.  *version is the position of the last
 * message read (-1 for an empty stream): what lss_stream_version() would
 * say at the moment of the read. */
static int read_account(lss_conn *c, int64_t *balance, int64_t *version)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = 0; /* <= 0: unlimited; a long stream would be paged */
    lss_cursor *cur;
    int rc = lss_read_stream(c, NS, strlen(NS), STREAM, strlen(STREAM), &o, &cur);
    if (rc != LSS_OK)
        return rc;
    const lss_message *m;
    *balance = 0;
    *version = -1;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        /* The data is {"balance":N} as this program wrote it; a real
         * program would use a JSON parser here. */
        const char *p = memchr(m->data.p, ':', m->data.n);
        *balance = p ? strtoll(p + 1, NULL, 10) : 0;
        *version = m->position;
    }
    lss_cursor_close(cur); /* before the session may append */
    return rc == LSS_DONE ? LSS_OK : rc;
}

static void *teller_main(void *arg)
{
    teller *t = arg;
    lss_conn *c; /* one session per thread */
    if (lss_conn_open(db, &c) != LSS_OK) {
        t->failed = 1;
        pthread_barrier_wait(&both_have_read);
        return NULL;
    }
    int first = 1;
    for (;;) {
        int64_t balance, version;
        int rc = read_account(c, &balance, &version);
        if (first) { /* make the race certain: nobody writes before all read */
            pthread_barrier_wait(&both_have_read);
            first = 0;
        }
        if (rc != LSS_OK)
            break;

        char data[64];
        snprintf(data, sizeof data, "{\"balance\":%" PRId64 "}", balance + DEPOSIT);
        lss_msg_in m = {0};
        m.type = "Deposited";
        m.type_n = strlen(m.type);
        m.data = data;
        m.data_n = strlen(data);
        lss_append a = {0};
        a.ns = NS;
        a.ns_n = strlen(NS);
        a.stream = STREAM;
        a.stream_n = strlen(STREAM);
        a.msgs = &m;
        a.count = 1;
        a.flags = LSS_APPEND_EXPECT;
        a.expected_version = version; /* -1: "the stream must still be empty" */
        rc = lss_append_one(c, &a);
        if (rc == LSS_OK) {
            printf("teller %d: balance %" PRId64 " -> %s at version %" PRId64 "\n",
                   t->id, balance, data, a.position);
            break;
        }
        if (rc != LSS_EVERSION) {
            fprintf(stderr, "teller %d: append: %s: %s\n", t->id,
                    lss_errname(rc), lss_errmsg(c));
            break;
        }
        /* Somebody wrote since our read: actual_version says how far the
         * stream has moved.  Re-read and decide again. */
        printf("teller %d: expected version %" PRId64 ", stream is at %" PRId64
               "; re-reading\n", t->id, version, a.actual_version);
        if (++t->conflicts > 10)
            break;
    }
    lss_conn_close(c);
    return NULL;
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
    if (rc != LSS_OK && rc != LSS_ENOTFOUND)
        goto out;
    rc = lss_ns_create(c, NS, strlen(NS), NULL, 0, NULL, 0, token, sizeof token,
                       &token_n, NULL);
    if (rc != LSS_OK) {
        fprintf(stderr, "ns_create: %s: %s\n", lss_errname(rc), lss_errmsg(c));
        goto out;
    }

    pthread_barrier_init(&both_have_read, NULL, TELLERS);
    pthread_t th[TELLERS];
    teller t[TELLERS];
    for (int i = 0; i < TELLERS; i++) {
        t[i] = (teller){.id = i + 1};
        pthread_create(&th[i], NULL, teller_main, &t[i]);
    }
    int conflicts = 0, failed = 0;
    for (int i = 0; i < TELLERS; i++) {
        pthread_join(th[i], NULL);
        conflicts += t[i].conflicts;
        failed |= t[i].failed;
    }
    pthread_barrier_destroy(&both_have_read);

    /* One deposit won outright; the other was refused once and then
     * succeeded on fresh state, so no deposit was lost. */
    int64_t balance, version;
    rc = read_account(c, &balance, &version);
    printf("final balance %" PRId64 ", version %" PRId64 ", %d conflict(s)\n",
           balance, version, conflicts);
    if (rc == LSS_OK && !failed && conflicts == TELLERS - 1 &&
        balance == TELLERS * DEPOSIT && version == TELLERS - 1)
        status = 0;
out:
    lss_conn_close(c);
    lss_close(db);
    printf("concurrency: %s\n", status ? "FAILED" : "ok");
    return status;
}
