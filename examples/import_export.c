/* import_export.c — back up a namespace as NDJSON and restore it into
 * another, keeping ids, positions, global positions and times.
 *
 *   import_export [STORE]   STORE: a data directory or ":memory:" (default)
 *
 * Export reads every message of namespace "source" in global-position order
 * (a category read of "" is "all categories") and writes one NDJSON line per
 * message with lss_ndjson_write().  Import parses each line with
 * lss_ndjson_parse() and inserts the records with lss_import().  The check:
 * exporting "restore" gives byte for byte the same file, and new appends in
 * "restore" continue after the highest imported global position.
 *
 * Exits 0 on success, 1 otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamstore.h"

#define IMPORT_BATCH 100 /* records per lss_import() transaction */

static int fail(lss_conn *c, const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", what, lss_errname(rc), lss_errmsg(c));
    return 1;
}

static int append(lss_conn *c, const char *ns, const char *stream,
                  const char *type, const char *data, const char *meta,
                  int64_t *gpos)
{
    lss_msg_in m = {0};
    m.type = type;
    m.type_n = strlen(type);
    m.data = data;
    m.data_n = strlen(data);
    m.metadata = meta;
    m.metadata_n = meta ? strlen(meta) : 0;
    lss_append a = {0};
    a.ns = ns;
    a.ns_n = strlen(ns);
    a.stream = stream;
    a.stream_n = strlen(stream);
    a.msgs = &m;
    a.count = 1;
    int rc = lss_append_one(c, &a);
    if (gpos)
        *gpos = a.global_position;
    return rc;
}

/* Write every message of ns to out as NDJSON.  One line buffer is reused
 * and grown when lss_ndjson_write() says LSS_ENOSPACE (it reports the size
 * it needs, like snprintf).  Returns LSS_OK or an error code. */
static int export_ns(lss_conn *c, const char *ns, FILE *out)
{
    size_t cap = 256, len;
    char *line = malloc(cap);
    if (!line)
        return LSS_ENOMEM;
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = 1; /* global position */
    o.batch_size = 100;
    int rc, rows;
    do {
        lss_cursor *cur;
        if ((rc = lss_read_category(c, ns, strlen(ns), "", 0, &o, &cur)) != LSS_OK)
            break;
        const lss_message *m;
        rows = 0;
        while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
            rc = lss_ndjson_write(m, line, cap, &len);
            if (rc == LSS_ENOSPACE) {
                char *bigger = realloc(line, len);
                if (!bigger) {
                    rc = LSS_ENOMEM;
                    break;
                }
                line = bigger;
                cap = len;
                rc = lss_ndjson_write(m, line, cap, &len);
            }
            if (rc != LSS_OK || fwrite(line, 1, len, out) != len) {
                rc = rc != LSS_OK ? rc : LSS_EIO;
                break;
            }
            o.position = m->global_position + 1; /* the next page starts here */
            rows++;
        }
        lss_cursor_close(cur);
    } while (rc == LSS_DONE && rows > 0);
    free(line);
    return rc == LSS_DONE ? LSS_OK : rc;
}

/* The whole of f, NUL-terminated, in *buf (malloc'd). */
static int slurp(FILE *f, char **buf, size_t *n)
{
    if (fseek(f, 0, SEEK_END) != 0)
        return LSS_EIO;
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        return LSS_EIO;
    *buf = malloc((size_t)size + 1);
    if (!*buf)
        return LSS_ENOMEM;
    *n = fread(*buf, 1, (size_t)size, f);
    (*buf)[*n] = '\0';
    return *n == (size_t)size ? LSS_OK : LSS_EIO;
}

/* A record's string views may point into the session's scratch memory
 * (strings with escapes are unescaped there), which the next parse reuses,
 * so a batch keeps its own copies in `keep`; data and metadata always view
 * the input, which stays in memory until the import is done.  Unescaping
 * never grows a string, so keep is as large as the input at most. */
static const char *keep_str(char *keep, size_t *used, const char *p, size_t n)
{
    char *dst = keep + *used;
    memcpy(dst, p, n);
    *used += n;
    return dst;
}

static int import_ns(lss_conn *c, const char *ns, FILE *in)
{
    char *text = NULL, *keep = NULL;
    size_t n = 0, used = 0, nrec = 0, lineno = 0;
    lss_import_rec recs[IMPORT_BATCH];
    int rc = slurp(in, &text, &n);
    if (rc == LSS_OK && !(keep = malloc(n + 1)))
        rc = LSS_ENOMEM;
    for (char *line = text; rc == LSS_OK && line < text + n;) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(text + n - line);
        lineno++;
        if (len > 0) {
            char err[256];
            lss_import_rec *r = &recs[nrec];
            rc = lss_ndjson_parse(c, line, len, r, err, sizeof err);
            if (rc != LSS_OK) {
                fprintf(stderr, "line %zu: %s: %s\n", lineno, lss_errname(rc), err);
                break;
            }
            r->id = keep_str(keep, &used, r->id, r->id_n);
            r->stream = keep_str(keep, &used, r->stream, r->stream_n);
            r->type = keep_str(keep, &used, r->type, r->type_n);
            nrec++;
        }
        line += len + 1;
        /* All or nothing per call: a failed batch leaves the namespace as
         * the previous batch left it (lss_ns_clear() starts over). */
        if (nrec == IMPORT_BATCH || (line >= text + n && nrec > 0)) {
            size_t bad;
            rc = lss_import(c, ns, strlen(ns), recs, nrec, &bad);
            if (rc != LSS_OK)
                fprintf(stderr, "import: record %zu of the batch ending at line "
                        "%zu: %s: %s\n", bad, lineno, lss_errname(rc), lss_errmsg(c));
            nrec = 0;
            used = 0;
        }
    }
    free(keep);
    free(text);
    return rc;
}

static int fresh_ns(lss_conn *c, const char *ns)
{
    char token[LSS_TOKEN_MAX];
    size_t token_n;
    int rc = lss_ns_delete(c, ns, strlen(ns), NULL, NULL); /* a reused data dir */
    if (rc != LSS_OK && rc != LSS_ENOTFOUND)
        return rc;
    return lss_ns_create(c, ns, strlen(ns), NULL, 0, NULL, 0, token, sizeof token,
                         &token_n, NULL);
}

static int run(lss_conn *c)
{
    int rc;
    if ((rc = fresh_ns(c, "source")) || (rc = fresh_ns(c, "restore")))
        return fail(c, "namespaces", rc);

    /* Something worth a round trip: unicode, an integer beyond 2^64,
     * metadata, insignificant whitespace (exported compactly), a type with
     * characters JSON must escape, and an empty object. */
    static const char *const msgs[][4] = {
        {"user-1", "Registered", "{\"name\":\"Zoë 山田 🎉\"}", NULL},
        {"user-1", "Scored", "{ \"points\" : 12345678901234567890123 }",
         "{\"correlationStreamName\":\"game-9\"}"},
        {"game-9", "Note \"quoted\" \\ slash", "{\"text\":\"line\\nbreak\"}", NULL},
        {"user-2", "Registered", "{}", NULL},
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
        if ((rc = append(c, "source", msgs[i][0], msgs[i][1], msgs[i][2],
                         msgs[i][3], NULL)))
            return fail(c, "append", rc);

    FILE *backup = tmpfile(), *again = tmpfile();
    char *a = NULL, *b = NULL;
    size_t an = 0, bn = 0;
    int status = 1;
    if (!backup || !again) {
        fprintf(stderr, "tmpfile failed\n");
        goto out;
    }
    if ((rc = export_ns(c, "source", backup))) {
        fail(c, "export", rc);
        goto out;
    }
    rewind(backup);
    if ((rc = import_ns(c, "restore", backup))) {
        fail(c, "import", rc);
        goto out;
    }
    if ((rc = export_ns(c, "restore", again))) {
        fail(c, "export", rc);
        goto out;
    }
    if (slurp(backup, &a, &an) || slurp(again, &b, &bn))
        goto out;
    fputs(a, stdout);
    if (an == 0 || an != bn || memcmp(a, b, an) != 0) {
        fprintf(stderr, "the restored namespace differs:\n%s", b);
        goto out;
    }
    printf("restored %zu bytes of NDJSON identically\n", an);

    /* Global positions continue after the imported ones. */
    int64_t gpos;
    if ((rc = append(c, "restore", "user-3", "Registered", "{}", NULL, &gpos))) {
        fail(c, "append after import", rc);
        goto out;
    }
    if (gpos != 5) {
        fprintf(stderr, "append after import got global position %" PRId64 "\n", gpos);
        goto out;
    }
    status = 0;
out:
    free(a);
    free(b);
    if (backup)
        fclose(backup);
    if (again)
        fclose(again);
    return status;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : ":memory:";
    lss_db *db;
    int rc = lss_open(url, NULL, &db);
    if (rc != LSS_OK) {
        fprintf(stderr, "open %s: %s: %s\n", url, lss_errname(rc),
                db ? lss_db_errmsg(db) : "out of memory");
        lss_close(db);
        return 1;
    }
    lss_conn *c;
    if ((rc = lss_conn_open(db, &c)) != LSS_OK) {
        lss_close(db);
        return 1;
    }
    int status = run(c);
    lss_conn_close(c);
    lss_close(db);
    printf("import_export: %s\n", status ? "FAILED" : "ok");
    return status;
}
