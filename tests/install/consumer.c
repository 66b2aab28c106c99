/* consumer.c — a program built outside the tree against an installed
 * libstreamstore, with nothing but `pkg-config --cflags --libs streamstore`.
 * Exits 0 when a message written to an in-memory store reads back. */
#include <stdio.h>
#include <string.h>

#include <streamstore.h>

int main(void)
{
    /* The header compiled against and the library loaded agree. */
    if (lss_version_number() != LSS_VERSION_NUMBER) {
        fprintf(stderr, "header %s, library %s\n", LSS_VERSION_STRING,
                lss_version_string());
        return 1;
    }
    lss_db *db;
    lss_conn *c = NULL;
    lss_cursor *cur;
    const lss_message *m;
    char token[LSS_TOKEN_MAX];
    size_t token_n;
    int ok = 0;
    if (lss_open(":memory:", NULL, &db) != LSS_OK || lss_conn_open(db, &c) != LSS_OK)
        goto out;
    if (lss_ns_create(c, "app", 3, NULL, 0, NULL, 0, token, sizeof token, &token_n,
                      NULL) != LSS_OK)
        goto out;
    lss_msg_in msg = {0};
    msg.type = "Installed";
    msg.type_n = strlen(msg.type);
    msg.data = "{\"ok\":true}";
    msg.data_n = strlen(msg.data);
    lss_append a = {0};
    a.ns = "app";
    a.ns_n = 3;
    a.stream = "check-1";
    a.stream_n = 7;
    a.msgs = &msg;
    a.count = 1;
    if (lss_append_one(c, &a) != LSS_OK)
        goto out;
    if (lss_read_stream(c, "app", 3, "check-1", 7, NULL, &cur) != LSS_OK)
        goto out;
    ok = lss_cursor_next(cur, &m) == LSS_ROW && m->data.n == msg.data_n &&
         memcmp(m->data.p, msg.data, msg.data_n) == 0 &&
         lss_cursor_next(cur, &m) == LSS_DONE;
    lss_cursor_close(cur);
out:
    if (!ok)
        fprintf(stderr, "consumer: %s\n", c ? lss_errmsg(c) : lss_db_errmsg(db));
    lss_conn_close(c);
    lss_close(db);
    printf("consumer (libstreamstore %s): %s\n", lss_version_string(),
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
