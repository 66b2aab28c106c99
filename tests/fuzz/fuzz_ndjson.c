/* fuzz_ndjson.c — one NDJSON import record (lss_ndjson_parse, PROTOCOL.md
 * 9.1-9.2 rule 5) and its writer (lss_ndjson_write).
 *
 * Properties, on any line of up to MAX_IN bytes:
 *   - the parse gives LSS_OK, LSS_EJSON or LSS_EINVAL, the same twice, and
 *     the same without an error buffer; an error has a NUL-terminated,
 *     non-empty UTF-8 reason, safely truncated into a small buffer;
 *   - an accepted record keeps the rules of 9.2: a UUID id, non-empty stream
 *     and type, pos >= 0, gpos >= 1, data and meta objects or absent, a time
 *     in the range lss__time_parse promises;
 *   - re-encoding is consistent: the record written with its canonical id
 *     is one line ending in "\n", LSS_ENOSPACE (nothing past the buffer) one
 *     byte short, parses back to the same fields with data and meta
 *     compacted but JSON-equal, and writing that record again gives the
 *     same bytes (the export form is a fixed point);
 *   - the session's memory grows with the longest line only. */
#include "fuzz.h"

#include "clock.h"
#include "json.h"
#include "uuid.h"

#define MAX_IN (64 * 1024)

static fuzz_alloc fa;
static lss_db *db;
static lss_conn *conn;
static size_t base_live, longest;

static void open_once(void)
{
    if (conn)
        return;
    fuzz_alloc_init(&fa);
    lss_options o;
    lss_options_init(&o);
    o.allocator = &fa.a;
    CHECK(lss_open(":memory:", &o, &db) == LSS_OK, "lss_open");
    CHECK(lss_conn_open(db, &conn) == LSS_OK, "lss_conn_open");
    base_live = fa.live;
}

static char *own(const char *p, size_t n)
{
    return fuzz_dup(p, n);
}

static int same(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* JSON equality of two texts, either of which may be absent (NULL). */
static int json_same(const char *a, size_t an, const char *b, size_t bn)
{
    if (!a || !b)
        return !a && !b;
    size_t cap = lss__json_equal_need(an, bn);
    lss_json_tok *t = malloc(cap * sizeof *t);
    CHECK(t != NULL, "out of memory");
    int eq = lss__json_equal(a, an, b, bn, t, cap);
    free(t);
    return eq == 1;
}

static void check_error(int rc, const char *err, size_t cap)
{
    CHECK(rc == LSS_EJSON || rc == LSS_EINVAL, "parse returned %d", rc);
    CHECK(memchr(err, 0, cap) != NULL, "reason not NUL-terminated");
    CHECK(err[0] != '\0', "empty reason");
    CHECK(lss__utf8_valid(err, strlen(err)), "reason not UTF-8: %s", err);
}

static char *write_exact(const lss_message *m, size_t *len)
{
    size_t need = 0;
    CHECK(lss_ndjson_write(m, NULL, 0, &need) == LSS_ENOSPACE && need > 0,
          "write size query");
    char *out = malloc(need);
    CHECK(out != NULL, "out of memory");
    memset(out, 0, need);
    size_t got = 0;
    CHECK(lss_ndjson_write(m, out, need - 1, &got) == LSS_ENOSPACE &&
              got == need,
          "write one byte short");
    CHECK(lss_ndjson_write(m, out, need, &got) == LSS_OK && got == need,
          "write with room");
    *len = need;
    return out;
}

static void check_record(const lss_import_rec *r, const char *line, size_t n)
{
    uint8_t u[16];
    CHECK(lss__uuid_parse(r->id, r->id_n, u) == LSS_OK, "id not a UUID");
    CHECK(r->stream_n > 0 && r->type_n > 0, "empty stream or type");
    CHECK(r->position >= 0 && r->global_position >= 1, "pos/gpos rules");
    CHECK(r->time_us >= LSS_TIME_MIN_US && r->time_us <= LSS_TIME_MAX_US,
          "time out of range");
    if (r->data)
        CHECK(r->data >= line && r->data + r->data_n <= line + n &&
                  r->data[0] == '{',
              "data is not an object of the line");
    if (r->metadata)
        CHECK(r->metadata >= line && r->metadata + r->metadata_n <= line + n &&
                  r->metadata[0] == '{',
              "meta is not an object of the line");

    /* Copy what the next parse may overwrite, then write the record. */
    char id[LSS_UUID_TEXT_LEN];
    lss__uuid_format(u, id);
    char *stream = own(r->stream, r->stream_n);
    char *type = own(r->type, r->type_n);
    lss_message m = {
        .id = {id, sizeof id},
        .stream = {stream, r->stream_n},
        .type = {type, r->type_n},
        .position = r->position,
        .global_position = r->global_position,
        .data = {r->data, r->data_n},
        .metadata = {r->metadata, r->metadata_n},
        .time_us = r->time_us,
    };
    size_t ln = 0;
    char *out = write_exact(&m, &ln);
    CHECK(out[ln - 1] == '\n' && memchr(out, '\n', ln - 1) == NULL,
          "record is not one line");

    lss_import_rec r2;
    char err[256];
    int rc = lss_ndjson_parse(conn, out, ln - 1, &r2, err, sizeof err);
    CHECK(rc == LSS_OK, "written record does not parse (%d: %s): %.*s", rc,
          err, (int)ln, out);
    CHECK(same(r2.id, r2.id_n, id, sizeof id), "id changed");
    CHECK(same(r2.stream, r2.stream_n, stream, m.stream.n), "stream changed");
    CHECK(same(r2.type, r2.type_n, type, m.type.n), "type changed");
    CHECK(r2.position == m.position && r2.global_position == m.global_position,
          "positions changed");
    CHECK(r2.time_us == m.time_us, "time changed: %lld -> %lld",
          (long long)m.time_us, (long long)r2.time_us);
    CHECK(json_same(m.data.p, m.data.n, r2.data, r2.data_n), "data changed");
    CHECK(json_same(m.metadata.p, m.metadata.n, r2.metadata, r2.metadata_n),
          "meta changed");

    lss_message m2 = m;
    m2.data.p = r2.data;
    m2.data.n = r2.data_n;
    m2.metadata.p = r2.metadata;
    m2.metadata.n = r2.metadata_n;
    size_t ln2 = 0;
    char *out2 = write_exact(&m2, &ln2);
    CHECK(same(out, ln, out2, ln2), "export form is not a fixed point");
    free(out2);
    free(out);
    free(type);
    free(stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    open_once();
    char *line = fuzz_dup(data, size);
    lss_import_rec rec, rec2;
    char err[512], err2[512], small[6];
    int rc = lss_ndjson_parse(conn, line, size, &rec, err, sizeof err);
    CHECK(lss_ndjson_parse(conn, line, size, &rec2, NULL, 0) == rc,
          "parse without an error buffer differs");
    memset(small, 'x', sizeof small);
    CHECK(lss_ndjson_parse(conn, line, size, &rec2, small, sizeof small) == rc,
          "parse with a small error buffer differs");
    int rc2 = lss_ndjson_parse(conn, line, size, &rec2, err2, sizeof err2);
    CHECK(rc2 == rc, "second parse: %d then %d", rc, rc2);
    if (rc != LSS_OK) {
        check_error(rc, err, sizeof err);
        CHECK(strcmp(err, err2) == 0, "second parse: another reason");
        CHECK(small[sizeof small - 1] == '\0', "reason not truncated safely");
    } else {
        check_record(&rec2, line, size);
    }
    free(line);

    if (size > longest)
        longest = size;
    CHECK(fa.live <= base_live + 32 * longest + 4096,
          "session memory %zu for lines of at most %zu bytes", fa.live,
          longest);
    return 0;
}
