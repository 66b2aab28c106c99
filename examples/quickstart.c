/* quickstart.c — open a durable store, write three messages to a stream,
 * read them back, and show optimistic concurrency refusing a stale write.
 *
 *   quickstart [DATA_DIR]      (default ./streamstore-data)
 */
#include <stdio.h>
#include <string.h>

#include "streamstore.h"

static int fail(lss_conn *c, const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", what, lss_errname(rc), lss_errmsg(c));
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./streamstore-data";
    lss_db *db;
    int rc = lss_open(dir, NULL, &db);
    if (rc != LSS_OK) {
        fprintf(stderr, "open %s: %s\n", dir, lss_db_errmsg(db));
        lss_close(db);
        return 1;
    }
    lss_conn *c;
    if ((rc = lss_conn_open(db, &c)) != LSS_OK) {
        lss_close(db);
        return 1;
    }

    /* A namespace is a tenant; "default" is created on first run. */
    char token[LSS_TOKEN_MAX];
    size_t token_n;
    rc = lss_ns_create(c, "default", 7, "Default namespace", 17, NULL, 0,
                       token, sizeof token, &token_n, NULL);
    if (rc == LSS_OK)
        printf("created namespace default, token %.*s\n", (int)token_n, token);
    else if (rc != LSS_EEXISTS)
        return fail(c, "ns_create", rc);

    int64_t version;
    if ((rc = lss_stream_version(c, "default", 7, "account-42", 10, &version)))
        return fail(c, "version", rc);

    /* Append with the version we just read: exactly one writer wins. */
    lss_msg_in m = {0};
    m.type = "Deposited";
    m.type_n = strlen(m.type);
    m.data = "{\"amount\":10}";
    m.data_n = strlen(m.data);
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = "default";
    a.ns_n = 7;
    a.stream = "account-42";
    a.stream_n = 10;
    a.msgs = &m;
    a.count = 1;
    a.flags = LSS_APPEND_EXPECT;
    a.expected_version = version;
    if ((rc = lss_append_one(c, &a)))
        return fail(c, "append", rc);
    printf("appended at position %lld (global %lld)\n", (long long)a.position,
           (long long)a.global_position);

    rc = lss_append_one(c, &a); /* same expected version again: refused */
    printf("stale append: %s (%s)\n", lss_errname(rc), lss_errmsg(c));

    lss_cursor *cur;
    if ((rc = lss_read_stream(c, "default", 7, "account-42", 10, NULL, &cur)))
        return fail(c, "read", rc);
    const lss_message *msg;
    while ((rc = lss_cursor_next(cur, &msg)) == LSS_ROW)
        printf("  %lld %.*s %.*s\n", (long long)msg->position, (int)msg->type.n,
               msg->type.p, (int)msg->data.n, msg->data.p);
    lss_cursor_close(cur);
    lss_conn_close(c);
    lss_close(db);
    return rc == LSS_DONE ? 0 : 1;
}
