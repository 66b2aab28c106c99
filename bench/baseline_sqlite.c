/* baseline_sqlite.c — the bench's ceiling for the SQLite backend: a plain
 * SQLite program that does what the library does on the same schema, with
 * the same pragmas and the same prepared statements, and nothing else.
 *
 * Copied from lib/store_sqlite.c (keep them in step when it changes):
 *   - the namespace DDL (NS_SCHEMA);
 *   - open_conn(): SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, extended result
 *     codes, busy_timeout 5000; memdb: synchronous=OFF, temp_store=MEMORY;
 *     file: journal_mode=WAL, synchronous=N, temp_store=MEMORY;
 *   - the writer statements (WSQL[]) and their order per append request:
 *     BEGIN IMMEDIATE; SELECT ... WHERE id = ? once per message that has a
 *     client id (the library skips it for generated ids); SELECT
 *     max(position); INSERT per message; COMMIT;
 *   - the values of an insert: a 16-byte BLOB id (UUIDv7 from a pool of
 *     random bytes refilled 250 at a time, as lss__uuid_v7_gen does), the
 *     category (bytes before the first '-') and the cardinal-id hash (first
 *     8 bytes of MD5, big-endian, through one reused EVP_MD_CTX), computed
 *     once per request, and one CLOCK_REALTIME reading per transaction;
 *   - the read statements of build_sql() for the stream, category and
 *     consumer-group shapes.
 * What it does not do is the library's own work: JSON validation, the
 * group-commit queue, the hub, cursors, namespace lookup. */
#include "bench.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

enum { ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_VERSION, ST_FIND, ST_INSERT,
       ST_RSTREAM, ST_RCAT, ST_RGROUP, ST_N };

static const char *const SQL[ST_N] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT max(position) FROM messages WHERE stream_name = ?1",
    "SELECT stream_name, type, position, global_position, data, metadata"
    " FROM messages WHERE id = ?1",
    "INSERT INTO messages(id, stream_name, type, position, data, metadata,"
    " time, category, chash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    "SELECT id, stream_name, type, position, global_position, data, metadata,"
    " time FROM messages WHERE stream_name = ?1 AND position >= ?2"
    " ORDER BY position LIMIT ?3",
    "SELECT id, stream_name, type, position, global_position, data, metadata,"
    " time FROM messages WHERE category = ?1 AND global_position >= ?2"
    " ORDER BY global_position LIMIT ?3",
    "SELECT id, stream_name, type, position, global_position, data, metadata,"
    " time FROM messages WHERE category = ?1 AND global_position >= ?2"
    " AND chash IS NOT NULL AND (CASE WHEN chash < 0 THEN -(chash % ?6)"
    " ELSE chash % ?6 END) = ?5 ORDER BY global_position LIMIT ?3",
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS messages ("
    " global_position INTEGER PRIMARY KEY,"
    " id BLOB NOT NULL,"
    " stream_name TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " position INTEGER NOT NULL,"
    " data TEXT,"
    " metadata TEXT,"
    " time INTEGER NOT NULL,"
    " category TEXT NOT NULL,"
    " chash INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages(id);"
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_stream ON messages(stream_name, position);"
    "CREATE INDEX IF NOT EXISTS messages_category ON messages(category, global_position);"
    "CREATE TABLE IF NOT EXISTS _schema_version ("
    " version INTEGER PRIMARY KEY, applied_at INTEGER DEFAULT (strftime('%s','now')));"
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);";

#define POOL 250
#define RND 10

struct base_db {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    EVP_MD_CTX *md5;
    EVP_MD *md;
    size_t used;
    uint8_t pool[POOL];
    char err[256];
};

static unsigned long memdb_seq;

static int fail(base_db *b, int rc)
{
    snprintf(b->err, sizeof b->err, "%s (sqlite %d)",
             b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc), rc);
    return -1;
}

const char *base_errmsg(base_db *b)
{
    return b ? b->err : "no baseline";
}

int base_open(const char *path, int sync, base_db **out)
{
    base_db *b = calloc(1, sizeof *b);
    *out = b;
    if (!b)
        return -1;
    b->used = POOL;
    b->md5 = EVP_MD_CTX_new();
    b->md = EVP_MD_fetch(NULL, "MD5", NULL);
    if (!b->md5 || !b->md) {
        snprintf(b->err, sizeof b->err, "libcrypto has no MD5");
        return -1;
    }
    char uri[4200];
    if (path)
        snprintf(uri, sizeof uri, "%s", path);
    else
        snprintf(uri, sizeof uri, "file:/lss-bench-baseline-%lu?vfs=memdb",
                 ++memdb_seq);
    int rc = sqlite3_open_v2(uri, &b->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                             NULL);
    if (rc != SQLITE_OK)
        return fail(b, rc);
    sqlite3_extended_result_codes(b->db, 1);
    sqlite3_busy_timeout(b->db, 5000);
    char pragmas[160];
    if (path)
        snprintf(pragmas, sizeof pragmas,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%d;"
                 " PRAGMA temp_store=MEMORY;",
                 sync);
    else
        snprintf(pragmas, sizeof pragmas,
                 "PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY;");
    rc = sqlite3_exec(b->db, pragmas, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(b->db, SCHEMA, NULL, NULL, NULL);
    for (int i = 0; rc == SQLITE_OK && i < ST_N; i++)
        rc = sqlite3_prepare_v3(b->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &b->st[i], NULL);
    return rc == SQLITE_OK ? 0 : fail(b, rc);
}

void base_close(base_db *b)
{
    if (!b)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(b->st[i]);
    sqlite3_close_v2(b->db);
    EVP_MD_CTX_free(b->md5);
    EVP_MD_free(b->md);
    free(b);
}

static int step_done(base_db *b, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(b, rc);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Canonical 8-4-4-4-12 text to 16 bytes. */
static int parse_id(const char *s, size_t n, uint8_t out[16])
{
    if (n != 36)
        return -1;
    for (size_t i = 0, k = 0; k < 16; k++) {
        if (s[i] == '-')
            i++;
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[k] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

static int v7(base_db *b, uint8_t out[16], int64_t ms)
{
    if (b->used > POOL - RND) {
        if (RAND_bytes(b->pool, POOL) != 1)
            return -1;
        b->used = 0;
    }
    const uint8_t *r = b->pool + b->used;
    b->used += RND;
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (r[0] & 0x0f));
    out[7] = r[1];
    out[8] = (uint8_t)(0x80 | (r[2] & 0x3f));
    memcpy(out + 9, r + 3, 7);
    return 0;
}

/* Cardinal-id hash of a stream name: MD5 of the bytes between the first
 * '-' and the next '+'; 0 = no cardinal id (NULL column). */
static int chash(base_db *b, const char *s, size_t n, int64_t *h)
{
    const char *dash = memchr(s, '-', n);
    if (!dash)
        return 0;
    const char *id = dash + 1;
    size_t id_n = n - (size_t)(id - s);
    const char *plus = memchr(id, '+', id_n);
    if (plus)
        id_n = (size_t)(plus - id);
    if (!id_n)
        return 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_n = 0;
    if (!EVP_DigestInit_ex2(b->md5, b->md, NULL) ||
        !EVP_DigestUpdate(b->md5, id, id_n) ||
        !EVP_DigestFinal_ex(b->md5, md, &md_n) || md_n < 8)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    *h = (int64_t)v;
    return 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int append_tx(base_db *b, const char *stream, size_t stream_n,
                     const base_msg *m, size_t n)
{
    sqlite3_stmt *st = b->st[ST_FIND];
    for (size_t i = 0; i < n; i++) {
        if (!m[i].id)
            continue;
        uint8_t id[16];
        if (parse_id(m[i].id, m[i].id_n, id) != 0) {
            snprintf(b->err, sizeof b->err, "bad id");
            return -1;
        }
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_ROW) {
            snprintf(b->err, sizeof b->err, "id already exists");
            return -1;
        }
        if (rc != SQLITE_DONE)
            return fail(b, rc);
    }
    st = b->st[ST_VERSION];
    sqlite3_bind_text(st, 1, stream, (int)stream_n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(b, rc);
    }
    int64_t version = sqlite3_column_type(st, 0) == SQLITE_NULL
                          ? -1
                          : sqlite3_column_int64(st, 0);
    sqlite3_reset(st);

    const char *dash = memchr(stream, '-', stream_n);
    size_t cat_n = dash ? (size_t)(dash - stream) : stream_n;
    int64_t h = 0;
    int has_hash = chash(b, stream, stream_n, &h);
    if (has_hash < 0) {
        snprintf(b->err, sizeof b->err, "md5 failed");
        return -1;
    }
    int64_t now = now_us();
    st = b->st[ST_INSERT];
    for (size_t k = 0; k < n; k++) {
        uint8_t id[16];
        if (m[k].id)
            parse_id(m[k].id, m[k].id_n, id);
        else if (v7(b, id, now / 1000) != 0) {
            snprintf(b->err, sizeof b->err, "RAND_bytes failed");
            return -1;
        }
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, stream, (int)stream_n, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, m[k].type, (int)m[k].type_n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, version + 1 + (int64_t)k);
        sqlite3_bind_text(st, 5, m[k].data, (int)m[k].data_n, SQLITE_STATIC);
        if (m[k].meta)
            sqlite3_bind_text(st, 6, m[k].meta, (int)m[k].meta_n,
                              SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_text(st, 8, stream, (int)cat_n, SQLITE_STATIC);
        if (has_hash)
            sqlite3_bind_int64(st, 9, h);
        else
            sqlite3_bind_null(st, 9);
        if (step_done(b, st) != 0)
            return -1;
    }
    return 0;
}

int base_append(base_db *b, const char *stream, size_t stream_n,
                const base_msg *m, size_t n)
{
    if (step_done(b, b->st[ST_BEGIN]) != 0)
        return -1;
    if (append_tx(b, stream, stream_n, m, n) != 0) {
        step_done(b, b->st[ST_ROLLBACK]);
        return -1;
    }
    return step_done(b, b->st[ST_COMMIT]);
}

/* Step a bound read statement to the end, hashing every row. */
static int read_rows(base_db *b, sqlite3_stmt *st, uint64_t *h, long *rows)
{
    int rc;
    uint64_t x = *h;
    long k = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        (void)sqlite3_column_blob(st, 0); /* the id, as a reader gets it */
        const char *stream = (const char *)sqlite3_column_text(st, 1);
        size_t stream_n = (size_t)sqlite3_column_bytes(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 2);
        size_t type_n = (size_t)sqlite3_column_bytes(st, 2);
        int64_t pos = sqlite3_column_int64(st, 3);
        int64_t gpos = sqlite3_column_int64(st, 4);
        const char *data = (const char *)sqlite3_column_text(st, 5);
        size_t data_n = (size_t)sqlite3_column_bytes(st, 5);
        const char *meta = (const char *)sqlite3_column_text(st, 6);
        size_t meta_n = (size_t)sqlite3_column_bytes(st, 6);
        (void)sqlite3_column_int64(st, 7);
        x = check_msg(x, stream, stream_n, pos, gpos, type, type_n, data,
                      data_n, meta, meta_n);
        k++;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return fail(b, rc);
    *h = x;
    *rows += k;
    return 0;
}

int base_read_stream(base_db *b, const char *stream, size_t stream_n,
                     int64_t from, int64_t limit, uint64_t *h, long *rows)
{
    sqlite3_stmt *st = b->st[ST_RSTREAM];
    sqlite3_bind_text(st, 1, stream, (int)stream_n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, limit <= 0 ? -1 : limit);
    return read_rows(b, st, h, rows);
}

int base_read_category(base_db *b, const char *cat, size_t cat_n,
                       int64_t from, int64_t limit, int64_t member,
                       int64_t size, uint64_t *h, long *rows)
{
    sqlite3_stmt *st = b->st[size > 0 ? ST_RGROUP : ST_RCAT];
    sqlite3_bind_text(st, 1, cat, (int)cat_n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, limit <= 0 ? -1 : limit);
    if (size > 0) {
        sqlite3_bind_int64(st, 5, member);
        sqlite3_bind_int64(st, 6, size);
    }
    return read_rows(b, st, h, rows);
}
