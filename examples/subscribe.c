/* subscribe.c — follow a category: replay what is there, then live pokes.
 *
 *   subscribe [STORE]       STORE: a data directory or ":memory:" (default)
 *
 * Three chat messages exist before the subscription; a writer thread adds
 * five more (and one to another category) while the main thread waits in
 * poll() on lss_sub_fd().  A poke says only where a message landed
 * (stream, position, global position); the reader fetches the message
 * itself when it wants the content.  Delivery is in global-position order,
 * without repeats or gaps, across the switch from replay to live.
 *
 * Exits 0 when all eight chat messages arrived in order, 1 otherwise.
 */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "streamstore.h"

#define NS "example"
#define BEFORE 3
#define LIVE 5

static lss_db *db;

static int say(lss_conn *c, const char *stream, const char *text)
{
    char data[128];
    snprintf(data, sizeof data, "{\"text\":\"%s\"}", text);
    lss_msg_in m = {0};
    m.type = "Said";
    m.type_n = strlen(m.type);
    m.data = data;
    m.data_n = strlen(data);
    lss_append a = {0};
    a.ns = NS;
    a.ns_n = strlen(NS);
    a.stream = stream;
    a.stream_n = strlen(stream);
    a.msgs = &m;
    a.count = 1;
    int rc = lss_append_one(c, &a);
    if (rc != LSS_OK)
        fprintf(stderr, "append: %s: %s\n", lss_errname(rc), lss_errmsg(c));
    return rc;
}

/* The writer has its own session: sessions are per thread. */
static void *writer_main(void *arg)
{
    (void)arg;
    lss_conn *c;
    if (lss_conn_open(db, &c) != LSS_OK)
        return NULL;
    say(c, "audit-1", "not chat: no poke for this one");
    for (int i = 0; i < LIVE; i++) {
        char text[32];
        snprintf(text, sizeof text, "live %d", i);
        if (say(c, i % 2 ? "chat-room2" : "chat-room1", text) != LSS_OK)
            break;
    }
    lss_conn_close(c);
    return NULL;
}

/* Fetch the message a poke points at: one row of its stream. */
static int show(lss_conn *c, const lss_poke *p)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = p->position;
    o.batch_size = 1;
    lss_cursor *cur;
    int rc = lss_read_stream(c, NS, strlen(NS), p->stream.p, p->stream.n, &o, &cur);
    if (rc != LSS_OK)
        return rc;
    const lss_message *m;
    if ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        printf("  %" PRId64 " %.*s: %.*s\n", m->global_position, (int)m->stream.n,
               m->stream.p, (int)m->data.n, m->data.p);
        rc = m->global_position == p->global_position ? LSS_OK : LSS_EINTERNAL;
    }
    lss_cursor_close(cur);
    return rc == LSS_DONE ? LSS_ENOTFOUND : rc;
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
    int status = 1, got = 0, writer_started = 0;
    int64_t last_gpos = 0;
    lss_conn *c = NULL;
    lss_sub *sub = NULL;
    pthread_t writer;
    char token[LSS_TOKEN_MAX];
    size_t token_n;
    if (lss_conn_open(db, &c) != LSS_OK)
        goto out;
    rc = lss_ns_delete(c, NS, strlen(NS), NULL, NULL); /* a reused data dir */
    if ((rc != LSS_OK && rc != LSS_ENOTFOUND) ||
        lss_ns_create(c, NS, strlen(NS), NULL, 0, NULL, 0, token, sizeof token,
                      &token_n, NULL) != LSS_OK)
        goto out;
    for (int i = 0; i < BEFORE; i++)
        if (say(c, "chat-room1", "earlier") != LSS_OK)
            goto out;

    /* Category "chat" from global position 0: the three existing messages
     * are replayed first, then every later commit is poked. */
    lss_sub_opts so;
    lss_sub_opts_init(&so); /* sets struct_size; required */
    so.kind = LSS_SUB_CATEGORY;
    so.name = "chat";
    so.name_n = 4;
    so.position = 0;
    if ((rc = lss_subscribe(c, NS, strlen(NS), &so, &sub)) != LSS_OK) {
        fprintf(stderr, "subscribe: %s: %s\n", lss_errname(rc), lss_errmsg(c));
        goto out;
    }
    if (pthread_create(&writer, NULL, writer_main, NULL) != 0)
        goto out;
    writer_started = 1;

    struct pollfd pfd = {.fd = lss_sub_fd(sub), .events = POLLIN};
    while (got < BEFORE + LIVE) {
        /* The fd is readable while pokes are queued; lss_sub_next() drains
         * it.  An event loop would put it in its epoll set instead. */
        int n = poll(&pfd, 1, 10000);
        if (n <= 0) {
            fprintf(stderr, "no poke within 10 s (got %d)\n", got);
            goto out;
        }
        lss_poke p;
        while ((rc = lss_sub_next(sub, &p)) == LSS_ROW) {
            if (p.global_position <= last_gpos) {
                fprintf(stderr, "out of order: %" PRId64 " after %" PRId64 "\n",
                        p.global_position, last_gpos);
                goto out;
            }
            last_gpos = p.global_position;
            got++;
            /* p.stream is valid until the next lss_sub_next(): use it now. */
            if ((rc = show(c, &p)) != LSS_OK) {
                fprintf(stderr, "read: %s: %s\n", lss_errname(rc), lss_errmsg(c));
                goto out;
            }
        }
        if (rc != LSS_AGAIN) { /* LSS_EOVERFLOW: we fell too far behind */
            fprintf(stderr, "subscription: %s\n", lss_errname(rc));
            goto out;
        }
    }
    status = 0;
out:
    if (writer_started)
        pthread_join(writer, NULL);
    /* The writer is done, so nothing more may be queued: the audit message
     * in particular must not have been delivered. */
    if (status == 0 && sub) {
        lss_poke p;
        if ((rc = lss_sub_next(sub, &p)) != LSS_AGAIN) {
            fprintf(stderr, "unexpected extra poke: %s\n", lss_errname(rc));
            status = 1;
        }
    }
    printf("received %d poke(s)\n", got);
    lss_sub_close(sub); /* subscriptions are closed before the store */
    lss_conn_close(c);
    lss_close(db);
    printf("subscribe: %s\n", status ? "FAILED" : "ok");
    return status;
}
