/* test_import.c — lss_import, lss_ns_clear and the NDJSON record
 * (PROTOCOL.md 9.1, 9.2) through the public API. */
#include "testutil.h"

#include <stdio.h>

#include <cjson/cJSON.h>

typedef struct fx {
    lss_db *db;
    lss_conn *c;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(lss_open(":memory:", NULL, &f->db), LSS_OK);
    assert_int_equal(lss_conn_open(f->db, &f->c), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    assert_int_equal(lss_ns_create(f->c, "a", 1, "", 0, NULL, 0, tok, sizeof tok,
                                   &tn, NULL), LSS_OK);
    assert_int_equal(lss_ns_create(f->c, "b", 1, "", 0, NULL, 0, tok, sizeof tok,
                                   &tn, NULL), LSS_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    lss_conn_close(f->c);
    lss_close(f->db);
    free(f);
    return 0;
}

static lss_import_rec rec(const char *id, const char *stream, int64_t pos,
                          int64_t gpos, const char *data)
{
    lss_import_rec r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.id_n = strlen(id);
    r.stream = stream;
    r.stream_n = strlen(stream);
    r.type = "T";
    r.type_n = 1;
    r.position = pos;
    r.global_position = gpos;
    r.data = data;
    r.data_n = data ? strlen(data) : 0;
    r.time_us = 1735689600000000LL + gpos;
    return r;
}

static int64_t append(fx *f, const char *ns, const char *stream, int64_t *pos)
{
    lss_msg_in m = {0};
    m.type = "T";
    m.type_n = 1;
    m.data = "{}";
    m.data_n = 2;
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = ns;
    a.ns_n = strlen(ns);
    a.stream = stream;
    a.stream_n = strlen(stream);
    a.msgs = &m;
    a.count = 1;
    assert_int_equal(lss_append_one(f->c, &a), LSS_OK);
    if (pos)
        *pos = a.position;
    return a.global_position;
}

static void import_should_keep_ids_positions_and_times(void **state)
{
    fx *f = *state;
    lss_import_rec r[3] = {
        rec("0195A7C2-0000-7000-8000-000000000001", "acc-1", 0, 10, "{\"x\": 1}"),
        rec("0195a7c2-0000-7000-8000-000000000002", "acc-1", 5, 12, NULL),
        rec("{0195a7c2-0000-7000-8000-000000000003}", "acc-2", 0, 11, "{}"),
    };
    assert_int_equal(lss_import(f->c, "a", 1, r, 3, NULL), LSS_OK);
    lss_cursor *cur;
    const lss_message *m;
    assert_int_equal(lss_read_category(f->c, "a", 1, "", 0, NULL, &cur), LSS_OK);
    assert_int_equal(lss_cursor_next(cur, &m), LSS_ROW);
    assert_span_equal(m->id.p, m->id.n, "0195a7c2-0000-7000-8000-000000000001");
    assert_int_equal(m->global_position, 10);
    assert_int_equal(m->position, 0);
    assert_span_equal(m->data.p, m->data.n, "{\"x\": 1}");
    assert_int_equal(m->time_us, 1735689600000010LL);
    assert_int_equal(lss_cursor_next(cur, &m), LSS_ROW);
    assert_int_equal(m->global_position, 11);
    assert_span_equal(m->stream.p, m->stream.n, "acc-2");
    assert_int_equal(lss_cursor_next(cur, &m), LSS_ROW);
    assert_int_equal(m->global_position, 12);
    assert_int_equal(m->position, 5);
    assert_null(m->data.p);
    assert_null(m->metadata.p);
    assert_int_equal(lss_cursor_next(cur, &m), LSS_DONE);
    lss_cursor_close(cur);
    /* Appends continue after the highest global position and after the
     * stream's highest position (the gap an import left stays). */
    int64_t pos;
    assert_int_equal(append(f, "a", "acc-1", &pos), 13);
    assert_int_equal(pos, 6);
    /* Nothing was published for the imported records: other namespaces
     * are untouched too. */
    assert_int_equal(append(f, "b", "acc-1", &pos), 1);
}

static void import_should_refuse_existing_positions_and_ids_atomically(void **state)
{
    fx *f = *state;
    lss_import_rec first = rec("0195a7c2-0000-7000-8000-000000000001", "a-1", 0, 10, "{}");
    assert_int_equal(lss_import(f->c, "a", 1, &first, 1, NULL), LSS_OK);
    struct {
        lss_import_rec r;
        const char *msg;
    } cases[] = {
        {rec("0195a7c2-0000-7000-8000-0000000000aa", "a-1", 1, 10, "{}"),
         "global position already exists: 10"},
        {rec("0195a7c2-0000-7000-8000-0000000000aa", "a-1", 0, 20, "{}"),
         "stream position already exists: a-1 0"},
        {rec("0195a7c2-0000-7000-8000-000000000001", "a-2", 0, 20, "{}"),
         "message id already exists: 0195a7c2-0000-7000-8000-000000000001"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lss_import_rec batch[2] = {
            rec("0195a7c2-0000-7000-8000-0000000000bb", "ok-1", 0, 30 + (int64_t)i, "{}"),
            cases[i].r,
        };
        size_t bad = 99;
        assert_int_equal(lss_import(f->c, "a", 1, batch, 2, &bad), LSS_ECONFLICT);
        assert_int_equal(bad, 1);
        assert_string_equal(lss_errmsg(f->c), cases[i].msg);
    }
    /* Duplicates inside one batch are conflicts too. */
    lss_import_rec dup[2] = {
        rec("0195a7c2-0000-7000-8000-0000000000cc", "d-1", 0, 40, "{}"),
        rec("0195a7c2-0000-7000-8000-0000000000dd", "d-2", 0, 40, "{}"),
    };
    assert_int_equal(lss_import(f->c, "a", 1, dup, 2, NULL), LSS_ECONFLICT);
    /* All or nothing: only the first record is stored. */
    const lss_ns_row *row;
    assert_int_equal(lss_ns_info(f->c, "a", 1, &row), LSS_OK);
    assert_int_equal(row->message_count, 1);
}

static void import_should_validate_records_before_storing(void **state)
{
    fx *f = *state;
    lss_import_rec bad[] = {
        rec("nope", "s-1", 0, 1, "{}"),
        rec("0195a7c2-0000-7000-8000-000000000001", "", 0, 1, "{}"),
        rec("0195a7c2-0000-7000-8000-000000000001", "s-1", -1, 1, "{}"),
        rec("0195a7c2-0000-7000-8000-000000000001", "s-1", 0, 0, "{}"),
        rec("0195a7c2-0000-7000-8000-000000000001", "s-1", 0, 1, "[1]"),
        rec("0195a7c2-0000-7000-8000-000000000001", "s-1", 0, 1, "{\"a\":1,\"a\":2}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t idx = 7;
        assert_int_equal(lss_import(f->c, "a", 1, &bad[i], 1, &idx), LSS_EINVAL);
        assert_int_equal(idx, 0);
    }
    lss_import_rec ok = rec("0195a7c2-0000-7000-8000-000000000001", "s-1", 0, 1, "{}");
    assert_int_equal(lss_import(f->c, "zz", 2, &ok, 1, NULL), LSS_ENOTFOUND);
    const lss_ns_row *row;
    assert_int_equal(lss_ns_info(f->c, "a", 1, &row), LSS_OK);
    assert_int_equal(row->message_count, 0);
}

static void clear_should_empty_the_namespace_and_restart_positions(void **state)
{
    fx *f = *state;
    append(f, "a", "s-1", NULL);
    append(f, "a", "s-1", NULL);
    append(f, "b", "s-1", NULL);
    assert_int_equal(lss_ns_clear(f->c, "a", 1), LSS_OK);
    const lss_ns_row *row;
    assert_int_equal(lss_ns_info(f->c, "a", 1, &row), LSS_OK);
    assert_int_equal(row->message_count, 0);
    int64_t pos;
    assert_int_equal(append(f, "a", "s-1", &pos), 1);
    assert_int_equal(pos, 0);
    assert_int_equal(lss_ns_info(f->c, "b", 1, &row), LSS_OK);
    assert_int_equal(row->message_count, 1);
    assert_int_equal(lss_ns_clear(f->c, "zz", 2), LSS_ENOTFOUND);
}

static void ndjson_parse_should_follow_the_import_rules(void **state)
{
    fx *f = *state;
    struct {
        const char *line;
        int rc;
        const char *err; /* prefix of the reason */
    } cases[] = {
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a-1\",\"type\":\"T\","
         "\"pos\":0,\"gpos\":10,\"data\":{},\"meta\":null,\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_OK, ""},
        {"{\"id\":\"x\"", LSS_EJSON, ""},
        {"[1]", LSS_EJSON, ""},
        {"{\"pos\":\"x\"}", LSS_EJSON, ""},
        {"{\"pos\":1.5}", LSS_EJSON, ""},
        {"{\"stream\":7}", LSS_EJSON, ""},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a\",\"type\":\"T\"}",
         LSS_EINVAL, "invalid time format: "},
        {"{\"id\":\"bad\",\"time\":\"2025-01-01T00:00:00Z\"}", LSS_EINVAL, "invalid id: "},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_EINVAL, "stream must be a non-empty string"},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a\","
         "\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_EINVAL, "type must be a non-empty string"},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a\",\"type\":\"T\","
         "\"pos\":-1,\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_EINVAL, "pos must be non-negative"},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a\",\"type\":\"T\","
         "\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_EINVAL, "gpos must be positive"},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a\",\"type\":\"T\","
         "\"gpos\":1,\"data\":[],\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_EINVAL, "data must be an object or null"},
        {"{\"id\":\"0195a7c2-0000-7000-8000-000000000001\",\"stream\":\"a\",\"type\":\"T\","
         "\"gpos\":1,\"meta\":\"m\",\"time\":\"2025-01-01T00:00:00Z\"}",
         LSS_EINVAL, "meta must be an object or null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lss_import_rec r;
        char err[200] = "";
        int rc = lss_ndjson_parse(f->c, cases[i].line, strlen(cases[i].line), &r,
                                  err, sizeof err);
        if (rc != cases[i].rc || strncmp(err, cases[i].err, strlen(cases[i].err))) {
            print_error("case %zu: rc %s err '%s'\n", i, lss_errname(rc), err);
            fail();
        }
    }
}

static void ndjson_should_round_trip_through_export_and_import(void **state)
{
    fx *f = *state;
    lss_msg_in m = {0};
    m.type = "Ty\"pe";
    m.type_n = strlen(m.type);
    m.data = "{ \"big\": 123456789012345678901234567890,\n \"s\": \"\\u00e9\\n\" }";
    m.data_n = strlen(m.data);
    m.metadata = "{\"correlationStreamName\":\"x-1\"}";
    m.metadata_n = strlen(m.metadata);
    lss_append a;
    memset(&a, 0, sizeof a);
    a.ns = "a";
    a.ns_n = 1;
    a.stream = "str\xc3\xa9" "am-1";
    a.stream_n = strlen(a.stream);
    a.msgs = &m;
    a.count = 1;
    assert_int_equal(lss_append_one(f->c, &a), LSS_OK);
    assert_int_equal(lss_append_one(f->c, &a), LSS_OK);

    /* Export a, import into b, export b: byte-identical. */
    char out_a[2][1024], out_b[2][1024];
    size_t len_a[2], len_b[2];
    lss_cursor *cur;
    const lss_message *msg;
    assert_int_equal(lss_read_category(f->c, "a", 1, "", 0, NULL, &cur), LSS_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lss_cursor_next(cur, &msg), LSS_ROW);
        assert_int_equal(lss_ndjson_write(msg, out_a[i], sizeof out_a[i], &len_a[i]), LSS_OK);
        size_t need;
        assert_int_equal(lss_ndjson_write(msg, out_a[i], 10, &need), LSS_ENOSPACE);
        assert_int_equal(need, len_a[i]);
        /* cJSON reads every record; data is compact and keeps its digits */
        cJSON *j = cJSON_ParseWithLength(out_a[i], len_a[i]);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "Ty\"pe");
        cJSON_Delete(j);
        assert_non_null(strstr(out_a[i], "\"data\":{\"big\":123456789012345678901234567890,\"s\":\"\\u00e9\\n\"}"));
        assert_int_equal(out_a[i][len_a[i] - 1], '\n');
    }
    lss_cursor_close(cur);
    for (int i = 0; i < 2; i++) {
        lss_import_rec r;
        char err[200];
        assert_int_equal(lss_ndjson_parse(f->c, out_a[i], len_a[i] - 1, &r, err,
                                          sizeof err), LSS_OK);
        assert_int_equal(lss_import(f->c, "b", 1, &r, 1, NULL), LSS_OK);
    }
    assert_int_equal(lss_read_category(f->c, "b", 1, "", 0, NULL, &cur), LSS_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lss_cursor_next(cur, &msg), LSS_ROW);
        assert_int_equal(lss_ndjson_write(msg, out_b[i], sizeof out_b[i], &len_b[i]), LSS_OK);
        assert_int_equal(len_a[i], len_b[i]);
        assert_memory_equal(out_a[i], out_b[i], len_a[i]);
    }
    lss_cursor_close(cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(import_should_keep_ids_positions_and_times, setup, teardown),
        cmocka_unit_test_setup_teardown(import_should_refuse_existing_positions_and_ids_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(import_should_validate_records_before_storing, setup, teardown),
        cmocka_unit_test_setup_teardown(clear_should_empty_the_namespace_and_restart_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(ndjson_parse_should_follow_the_import_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(ndjson_should_round_trip_through_export_and_import, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
