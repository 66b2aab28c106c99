/* write_read.c — write messages to a stream and read them back.
 *
 *   write_read [STORE]      STORE: a data directory or ":memory:" (default)
 *
 * Exits 0 when everything read back is what was written, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "streamstore.h"

#define NS "example"
#define STREAM "account-7"

/* Print what failed with the session's detail text, and fail the program. */
#define CHECK(c, call)                                                       \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ < 0) {                                                       \
            fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call, \
                    lss_errname(rc_), lss_errmsg(c));                        \
            return 1;                                                        \
        }                                                                    \
    } while (0)

#define EXPECT(cond)                                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                        \
        }                                                                    \
    } while (0)

/* A C string as the (pointer, length) pair every lss_ call takes. */
#define S(s) (s), strlen(s)

static int span_is(lss_span s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static int run(lss_conn *c)
{
    /* Start from an empty namespace, also when a data directory is reused. */
    char token[LSS_TOKEN_MAX];
    size_t token_n;
    int rc = lss_ns_delete(c, S(NS), NULL, NULL);
    EXPECT(rc == LSS_OK || rc == LSS_ENOTFOUND);
    CHECK(c, lss_ns_create(c, S(NS), S("write_read example"), NULL, 0, token,
                           sizeof token, &token_n, NULL));

    /* Three messages, appended one at a time.  data and metadata are JSON
     * object texts; they are validated, then stored byte for byte. */
    static const struct { const char *type, *data, *meta; } msgs[] = {
        {"Opened", "{\"owner\":\"Ada\"}", NULL},
        {"Deposited", "{\"amount\":100}", "{\"correlationStreamName\":\"transfer-1\"}"},
        {"Withdrawn", "{\"amount\":30}", NULL},
    };
    int64_t gpos[3];
    for (int i = 0; i < 3; i++) {
        lss_msg_in m = {0}; /* id NULL: the store generates a UUIDv7 */
        m.type = msgs[i].type;
        m.type_n = strlen(m.type);
        m.data = msgs[i].data;
        m.data_n = strlen(m.data);
        m.metadata = msgs[i].meta; /* NULL = no metadata */
        m.metadata_n = m.metadata ? strlen(m.metadata) : 0;
        lss_append a = {0}; /* flags 0: no expected-version check */
        a.ns = NS;
        a.ns_n = strlen(NS);
        a.stream = STREAM;
        a.stream_n = strlen(STREAM);
        a.msgs = &m;
        a.count = 1;
        CHECK(c, lss_append_one(c, &a));
        EXPECT(a.position == i); /* stream positions: 0, 1, 2 */
        gpos[i] = a.global_position;
        printf("appended %s at position %lld, global position %lld, id %.36s\n",
               msgs[i].type, (long long)a.position, (long long)a.global_position,
               a.id);
    }
    EXPECT(gpos[0] < gpos[1] && gpos[1] < gpos[2]);

    int64_t version;
    CHECK(c, lss_stream_version(c, S(NS), S(STREAM), &version));
    EXPECT(version == 2);

    /* Read the whole stream.  Row views are valid until the next step, so
     * anything kept must be copied; a session has one cursor at a time, and
     * it must be closed before the session writes or reads again. */
    lss_cursor *cur;
    const lss_message *row;
    CHECK(c, lss_read_stream(c, S(NS), S(STREAM), NULL, &cur));
    int n = 0;
    while ((rc = lss_cursor_next(cur, &row)) == LSS_ROW) {
        printf("  %lld %.*s %.*s\n", (long long)row->position, (int)row->type.n,
               row->type.p, (int)row->data.n, row->data.p);
        EXPECT(n < 3 && row->position == n && row->global_position == gpos[n]);
        EXPECT(span_is(row->stream, STREAM) && span_is(row->type, msgs[n].type));
        EXPECT(span_is(row->data, msgs[n].data)); /* the exact bytes */
        EXPECT(msgs[n].meta ? span_is(row->metadata, msgs[n].meta)
                            : row->metadata.p == NULL);
        EXPECT(row->id.n == 36 && row->time_us > 0);
        n++;
    }
    lss_cursor_close(cur);
    CHECK(c, rc);
    EXPECT(rc == LSS_DONE && n == 3);

    /* Page through the stream: from position 1, one message per read. */
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = 1;
    for (o.position = 1; o.position <= 3; o.position++) {
        CHECK(c, lss_read_stream(c, S(NS), S(STREAM), &o, &cur));
        rc = lss_cursor_next(cur, &row);
        int64_t got = rc == LSS_ROW ? row->position : -1;
        lss_cursor_close(cur);
        CHECK(c, rc);
        EXPECT(o.position < 3 ? got == o.position : rc == LSS_DONE);
    }

    /* The last message, and the last one of a type. */
    CHECK(c, lss_read_last(c, S(NS), S(STREAM), NULL, 0, &cur));
    rc = lss_cursor_next(cur, &row);
    EXPECT(rc == LSS_ROW && row->position == 2 && span_is(row->type, "Withdrawn"));
    lss_cursor_close(cur);
    CHECK(c, lss_read_last(c, S(NS), S(STREAM), S("Deposited"), &cur));
    rc = lss_cursor_next(cur, &row);
    EXPECT(rc == LSS_ROW && row->position == 1);
    lss_cursor_close(cur);

    /* A stream that was never written has version -1 and no messages. */
    CHECK(c, lss_stream_version(c, S(NS), S("account-8"), &version));
    EXPECT(version == -1);
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : ":memory:";
    lss_db *db;
    int rc = lss_open(url, NULL, &db); /* NULL options: durable defaults */
    if (rc != LSS_OK) {
        /* Except on LSS_ENOMEM, a failed open still returns a handle that
         * explains itself and must be closed. */
        fprintf(stderr, "open %s: %s: %s\n", url, lss_errname(rc),
                db ? lss_db_errmsg(db) : "out of memory");
        lss_close(db);
        return 1;
    }
    lss_conn *c;
    if ((rc = lss_conn_open(db, &c)) != LSS_OK) {
        fprintf(stderr, "session: %s\n", lss_errname(rc));
        lss_close(db);
        return 1;
    }
    int status = run(c);
    lss_conn_close(c);
    lss_close(db);
    if (status == 0)
        printf("write_read: ok\n");
    return status;
}
