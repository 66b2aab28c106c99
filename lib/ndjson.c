/* ndjson.c — the NDJSON record of import and export (PROTOCOL.md 9.1, 9.2):
 * one strict parse per line into views, and one writer. */
#include "store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "json.h"

/* The keys a record knows, and the JSON type Go's decoder would insist on
 * (a known key of another type makes the line INVALID_JSON). */
enum { K_ID, K_STREAM, K_TYPE, K_POS, K_GPOS, K_DATA, K_META, K_TIME, K_N };
static const char *const KEYS[K_N] = {"id", "stream", "type", "pos",
                                      "gpos", "data", "meta", "time"};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int err_out(char *err, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && cap)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return code;
}

/* Unescape string token t into the session's line buffer at *used. */
static int take_str(lss_conn *c, const lss_json_doc *d, const lss_json_tok *t,
                    size_t *used, const char **p, size_t *n)
{
    lss_span s;
    int rc = lss__json_str(d, t, c->nd + *used, c->nd_cap - *used, &s);
    if (rc != LSS_OK)
        return rc;
    if (s.p == c->nd + *used)
        *used += s.n;
    *p = s.p;
    *n = s.n;
    return LSS_OK;
}

int lss_ndjson_parse(lss_conn *c, const char *line, size_t n,
                     lss_import_rec *rec, char *err, size_t err_cap)
{
    if (!c || !rec || (!line && n))
        return LSS_EINVAL;
    memset(rec, 0, sizeof *rec);
    int rc = lss__json_tape(c, lss__json_tape_need(n));
    if (rc != LSS_OK)
        return rc;
    if (c->nd_cap < n + 1) {
        char *b = lss__realloc(&c->db->a, c->nd, c->nd_cap, n + 1);
        if (!b)
            return LSS_ENOMEM;
        c->nd = b;
        c->nd_cap = n + 1;
    }
    lss_json_doc d;
    lss_json_err je;
    rc = lss__json_scan(&d, line ? line : "", n, 1, c->jt, c->jt_cap, &je);
    if (rc == LSS_EJSON)
        return err_out(err, err_cap, LSS_EJSON, "%s", je.msg);
    if (rc != LSS_OK)
        return rc;
    const lss_json_tok *root = lss__json_root(&d);
    if (lss__json_type(root) != LSS_JSON_OBJECT)
        return err_out(err, err_cap, LSS_EJSON, "%s",
                       "json: cannot unmarshal non-object into Go value of type record");
    const lss_json_tok *v[K_N] = {0};
    for (int k = 0; k < K_N; k++)
        v[k] = lss__json_getz(&d, root, KEYS[k]);
    static const int want[K_N] = {LSS_JSON_STRING, LSS_JSON_STRING, LSS_JSON_STRING,
                                  LSS_JSON_NUMBER, LSS_JSON_NUMBER, 0, 0,
                                  LSS_JSON_STRING};
    for (int k = 0; k < K_N; k++) {
        if (!v[k] || !want[k] || lss__json_type(v[k]) == LSS_JSON_NULL)
            continue; /* null leaves a Go field at its zero value */
        if (lss__json_type(v[k]) != want[k])
            return err_out(err, err_cap, LSS_EJSON,
                           "json: cannot unmarshal value into Go struct field record.%s",
                           KEYS[k]);
    }
    size_t used = 0;
    const char *id = "", *stream = "", *type = "", *time = "";
    size_t id_n = 0, stream_n = 0, type_n = 0, time_n = 0;
    if ((v[K_ID] && lss__json_type(v[K_ID]) == LSS_JSON_STRING &&
         (rc = take_str(c, &d, v[K_ID], &used, &id, &id_n))) ||
        (v[K_STREAM] && lss__json_type(v[K_STREAM]) == LSS_JSON_STRING &&
         (rc = take_str(c, &d, v[K_STREAM], &used, &stream, &stream_n))) ||
        (v[K_TYPE] && lss__json_type(v[K_TYPE]) == LSS_JSON_STRING &&
         (rc = take_str(c, &d, v[K_TYPE], &used, &type, &type_n))) ||
        (v[K_TIME] && lss__json_type(v[K_TIME]) == LSS_JSON_STRING &&
         (rc = take_str(c, &d, v[K_TIME], &used, &time, &time_n))))
        return rc;
    for (int k = K_POS; k <= K_GPOS; k++) {
        if (!v[k] || lss__json_type(v[k]) != LSS_JSON_NUMBER)
            continue;
        int64_t x;
        if (lss__json_int64(&d, v[k], &x) != LSS_OK)
            return err_out(err, err_cap, LSS_EJSON,
                           "json: cannot unmarshal number into Go struct field record.%s of type int64",
                           KEYS[k]);
        if (k == K_POS)
            rec->position = x;
        else
            rec->global_position = x;
    }
    /* The rules of 9.2, first failure wins. */
    char detail[LSS_TIME_ERR_MAX + 64];
    if (time_n == 0)
        return err_out(err, err_cap, LSS_EINVAL, "invalid time format: %s",
                       "missing time");
    if (lss__time_parse(time, time_n, &rec->time_us, detail, sizeof detail) != LSS_OK)
        return err_out(err, err_cap, LSS_EINVAL, "invalid time format: %s", detail);
    uint8_t u[16];
    if (lss__uuid_parse(id, id_n, u) != LSS_OK) {
        lss__uuid_error(id, id_n, detail, sizeof detail);
        return err_out(err, err_cap, LSS_EINVAL, "invalid id: %s", detail);
    }
    if (stream_n == 0)
        return err_out(err, err_cap, LSS_EINVAL, "%s", "stream must be a non-empty string");
    if (type_n == 0)
        return err_out(err, err_cap, LSS_EINVAL, "%s", "type must be a non-empty string");
    if (rec->position < 0)
        return err_out(err, err_cap, LSS_EINVAL, "%s", "pos must be non-negative");
    if (rec->global_position < 1)
        return err_out(err, err_cap, LSS_EINVAL, "%s", "gpos must be positive");
    int dt = lss__json_type(v[K_DATA]), mt = lss__json_type(v[K_META]);
    if (dt && dt != LSS_JSON_NULL && dt != LSS_JSON_OBJECT)
        return err_out(err, err_cap, LSS_EINVAL, "%s", "data must be an object or null");
    if (mt && mt != LSS_JSON_NULL && mt != LSS_JSON_OBJECT)
        return err_out(err, err_cap, LSS_EINVAL, "%s", "meta must be an object or null");
    rec->id = id;
    rec->id_n = id_n;
    rec->stream = stream;
    rec->stream_n = stream_n;
    rec->type = type;
    rec->type_n = type_n;
    if (dt == LSS_JSON_OBJECT) {
        lss_span s = lss__json_span(&d, v[K_DATA]);
        rec->data = s.p;
        rec->data_n = s.n;
    }
    if (mt == LSS_JSON_OBJECT) {
        lss_span s = lss__json_span(&d, v[K_META]);
        rec->metadata = s.p;
        rec->metadata_n = s.n;
    }
    return LSS_OK;
}

int lss_ndjson_write(const lss_message *m, char *out, size_t cap, size_t *len)
{
    if (!m || !len || (!out && cap))
        return LSS_EINVAL;
    lss_json_writer w;
    lss__jw_init(&w, out, cap);
    LSS_JW_LIT(&w, "{\"id\":");
    lss__jw_str(&w, m->id.p, m->id.n);
    LSS_JW_LIT(&w, ",\"stream\":");
    lss__jw_str(&w, m->stream.p, m->stream.n);
    LSS_JW_LIT(&w, ",\"type\":");
    lss__jw_str(&w, m->type.p, m->type.n);
    LSS_JW_LIT(&w, ",\"pos\":");
    lss__jw_int(&w, m->position);
    LSS_JW_LIT(&w, ",\"gpos\":");
    lss__jw_int(&w, m->global_position);
    LSS_JW_LIT(&w, ",\"data\":");
    if (m->data.p)
        lss__json_compact(&w, m->data.p, m->data.n);
    else
        lss__jw_null(&w);
    LSS_JW_LIT(&w, ",\"meta\":");
    if (m->metadata.p)
        lss__json_compact(&w, m->metadata.p, m->metadata.n);
    else
        lss__jw_null(&w);
    LSS_JW_LIT(&w, ",\"time\":\"");
    char t[LSS_TIME_MAX];
    size_t tn = lss__time_format(m->time_us, t);
    lss__jw_raw(&w, t, tn);
    LSS_JW_LIT(&w, "\"}\n");
    return lss__jw_finish(&w, len);
}
