/* store_sqlite.c — the SQLite backend: a registry database plus one
 * database per namespace (files in a data directory, or memdb in memory).
 *
 * Writes: one writer connection per namespace; store.c serialises writers
 * and hands us whole commit groups.  Reads: in file stores each session
 * opens its own WAL read connection per namespace, so readers never wait
 * for writers; memdb cannot do WAL, so in-memory reads share the writer
 * connection under the namespace's write lock.
 *
 * Layout (PROTOCOL.md 11.1, recommended): ids are kept as 16-byte BLOBs and
 * the category and cardinal-id hash are stored at write time, so reads
 * neither parse text ids nor recompute names per row.  global_position is a
 * plain INTEGER PRIMARY KEY, without AUTOINCREMENT: a new row gets the
 * largest rowid + 1, which is what AUTOINCREMENT's sqlite_sequence row
 * would give as long as the row holding the largest value is never
 * deleted -- and messages are only ever deleted all at once, by
 * lss_ns_clear, which resets the counter to 1 anyway (PROTOCOL.md 9.2).
 * Keeping sqlite_sequence cost every INSERT a scan and an update of that
 * table (7.9 % of a W1 batch's instructions).  Namespaces created with
 * AUTOINCREMENT keep it and work the same. */
#include "store.h"
#include "walbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "names.h"
#include "token.h"

#define SQ_SLOTS 8       /* read connections a session keeps */
#define SQ_SHAPES 64     /* cached message-read statement shapes */

enum { /* fixed statements of a read connection */
    RS_LAST = SQ_SHAPES, RS_LAST_TYPE, RS_VERSION, RS_STREAMS, RS_CATS,
    RS_STATS, RS_COUNT, RS_N
};

enum { /* writer statements */
    WS_BEGIN, WS_COMMIT, WS_ROLLBACK, WS_VERSION, WS_FIND, WS_INSERT,
    WS_HAS_GPOS, WS_HAS_POS, WS_IMPORT, WS_DATA_VERSION, WS_N
};

/* A connection with its statement cache (reads). */
typedef struct sq_rconn {
    sqlite3 *db;
    sqlite3_stmt *st[RS_N];
} sq_rconn;

/* Stream -> version cache of a namespace's writer, to skip the
 * `SELECT max(position)` probe of each append.  Set-associative, fixed
 * size, allocated with the namespace; names longer than VC_NAME bytes are
 * not cached.  Used and changed only under ns->wlock.  It holds what the
 * open (or last committed) transaction sees; anything that could make it
 * wrong empties it: a rollback, a failed commit, an import, a clear, or a
 * commit by another connection (PRAGMA data_version). */
#define VC_SETS 64
#define VC_WAYS 4
#define VC_NAME 47

typedef struct vc_entry {
    int64_t version;
    uint32_t hash;
    uint8_t len;      /* 0: empty */
    char name[VC_NAME];
} vc_entry;

typedef struct sq_ns {
    sqlite3_stmt *ws[WS_N];
    sq_rconn w;       /* the writer connection; reads too in memory mode */
    /* The open commit group (under ns->wlock). */
    int64_t now;
    int64_t data_version;
    unsigned char retry[LSS__GROUP_MAX];
    uint8_t vc_next[VC_SETS];
    vc_entry vc[VC_SETS][VC_WAYS];
} sq_ns;

typedef struct sq_slot {
    lss__ns *ns;      /* referenced */
    sq_rconn r;
    unsigned long used;
} sq_slot;

/* One column value, from a live statement or a materialized row. */
typedef struct sq_col {
    int type; /* SQLITE_INTEGER, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL */
    int64_t i;
    const char *p;
    size_t n;
} sq_col;

#define SQ_MAX_COLS 8

typedef struct sq_conn {
    sq_slot slot[SQ_SLOTS];
    unsigned long tick;
    EVP_MD_CTX *md5;
    EVP_MD *md5_md;
    /* In memory mode a cursor's rows are copied out under the namespace
     * lock, so no lock is held while the caller iterates (memdb has no
     * WAL; holding the writer connection would block every other session).
     * The buffer keeps its capacity: steady-state reads do not allocate. */
    char *mat;
    size_t mat_cap, mat_len, mat_pos;
    int mat_on;
} sq_conn;

typedef struct sq_db {
    sqlite3 *reg;
    char dir[PATH_MAX];
    unsigned long memseq;
} sq_db;

static const char *const NS_SCHEMA =
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

/* Namespace migrations, applied in order to versions above the recorded
 * one.  1 creates the layout; 2 and 3 exist so that version numbers match
 * PROTOCOL.md 11.1 (times are microseconds from the start here). */
static const struct {
    int version;
    const char *name;
    const char *sql;
} NS_MIGRATIONS[] = {
    {1, "001_message_db.sql", NULL},
    {2, "002_category_get_all.sql", ""},
    {3, "003_time_microseconds.sql", ""},
};

static const char *const REG_SCHEMA =
    "CREATE TABLE IF NOT EXISTS namespaces ("
    " id TEXT PRIMARY KEY,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " db_path TEXT NOT NULL UNIQUE,"
    " description TEXT,"
    " created_at INTEGER NOT NULL,"
    " metadata TEXT);"
    "CREATE INDEX IF NOT EXISTS idx_namespaces_token_hash ON namespaces(token_hash);"
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO schema_migrations VALUES"
    " ('001_namespace_registry.sql', strftime('%s','now'));";

static const char *const MSG_COLS =
    "SELECT id, stream_name, type, position, global_position, data, metadata,"
    " time FROM messages";

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/* Map a SQLite result to an lss code by its (extended) code, never by
 * text. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return LSS_OK;
    case SQLITE_NOMEM:
        return LSS_ENOMEM;
    case SQLITE_FULL:
        return LSS_EFULL;
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
        return LSS_EIO;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return LSS_EBUSY;
    case SQLITE_CONSTRAINT:
        return LSS_ECONFLICT;
    default:
        return LSS_EBACKEND;
    }
}

static int sq_err(lss_conn *c, sqlite3 *db, int rc, const char *what)
{
    int code = map_rc(rc);
    return lss__err(c, code, "%s: %s (sqlite %d)", what,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                    db ? sqlite3_extended_errcode(db) : rc);
}

static void set_err(char *err, size_t cap, sqlite3 *db, int rc)
{
    if (err && cap)
        snprintf(err, cap, "%s (sqlite %d)",
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                 db ? sqlite3_extended_errcode(db) : rc);
}

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Open a namespace or registry connection and set every pragma we rely
 * on explicitly (Debian's defaults are not ours). */
static int open_conn(lss_db *db, const char *path, int flags, int writer,
                     sqlite3 **out)
{
    *out = NULL;
    /* A writer that syncs every commit writes its WAL frames in one go. */
    const char *vfs = NULL;
    if (writer && !db->memory && db->o.sync == LSS_SYNC_FULL)
        vfs = lss__walbuf_vfs();
    int rc = sqlite3_open_v2(path, out,
                             flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                             vfs);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3 *s = *out;
    sqlite3_extended_result_codes(s, 1);
    sqlite3_busy_timeout(s, db->o.busy_timeout_ms);
    if (db->memory) {
        /* memdb caps a database at 1 GiB by default; an in-memory store is
         * bounded by the machine's memory like any other data it holds. */
        sqlite3_int64 limit = (sqlite3_int64)1 << 40;
        sqlite3_file_control(s, "main", SQLITE_FCNTL_SIZE_LIMIT, &limit);
        rc = exec(s, "PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY;");
    } else {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%d;"
                 " PRAGMA temp_store=MEMORY;%s",
                 db->o.sync, writer ? "" : " PRAGMA query_only=1;");
        rc = exec(s, sql);
    }
    return rc;
}

static void rconn_close(sq_rconn *r)
{
    for (int i = 0; i < RS_N; i++)
        sqlite3_finalize(r->st[i]);
    memset(r->st, 0, sizeof r->st);
    sqlite3_close_v2(r->db);
    r->db = NULL;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (*st)
        return SQLITE_OK;
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

static int ns_path(lss_db *db, const lss__ns *ns, char *out, size_t cap)
{
    sq_db *s = db->be;
    int n;
    if (db->memory)
        n = snprintf(out, cap, "file:%s?vfs=memdb", ns->storage);
    else
        n = snprintf(out, cap, "%s/%s", s->dir, ns->storage);
    return n > 0 && (size_t)n < cap ? LSS_OK : LSS_ETOOBIG;
}

/* ------------------------------------------------------------------------
 * Namespace storage
 * ---------------------------------------------------------------------- */

static int migrate_ns(sqlite3 *s)
{
    int rc = exec(s, NS_SCHEMA);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s, "SELECT coalesce(max(version),0) FROM _schema_version",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    int have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    for (size_t i = 0; i < LSS_ARRAY_LEN(NS_MIGRATIONS); i++) {
        if (NS_MIGRATIONS[i].version <= have)
            continue;
        char sql[256];
        snprintf(sql, sizeof sql,
                 "BEGIN; INSERT OR IGNORE INTO _schema_version(version) VALUES(%d);"
                 " INSERT OR IGNORE INTO schema_migrations VALUES('%s', strftime('%%s','now'));"
                 " COMMIT;",
                 NS_MIGRATIONS[i].version, NS_MIGRATIONS[i].name);
        if ((rc = exec(s, sql)) != SQLITE_OK) {
            exec(s, "ROLLBACK");
            return rc;
        }
    }
    return SQLITE_OK;
}

/* Open the writer connection of ns (creating its schema when create). */
static int ns_open_writer(lss_db *db, lss__ns *ns, int create, char *err,
                          size_t errcap)
{
    char path[PATH_MAX + 64];
    if (ns_path(db, ns, path, sizeof path) != LSS_OK) {
        snprintf(err, errcap, "storage path too long");
        return LSS_ETOOBIG;
    }
    sq_ns *n = lss__malloc(&db->a, sizeof *n);
    if (!n)
        return LSS_ENOMEM;
    memset(n, 0, sizeof *n);
    int flags = SQLITE_OPEN_READWRITE | (create && db->memory ? SQLITE_OPEN_CREATE : 0);
    int rc = open_conn(db, path, flags, 1, &n->w.db);
    if (rc == SQLITE_OK)
        rc = migrate_ns(n->w.db);
    if (rc != SQLITE_OK) {
        set_err(err, errcap, n->w.db, rc);
        sqlite3_close_v2(n->w.db);
        lss__free(&db->a, n);
        return map_rc(rc);
    }
    ns->be = n;
    return LSS_OK;
}

static void sq_ns_free(lss_db *db, lss__ns *ns)
{
    sq_ns *n = ns->be;
    if (!n)
        return;
    for (int i = 0; i < WS_N; i++)
        sqlite3_finalize(n->ws[i]);
    rconn_close(&n->w);
    lss__free(&db->a, n);
    ns->be = NULL;
}

static int sidecar_exists(const char *dir, const char *name)
{
    static const char *const sfx[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < LSS_ARRAY_LEN(sfx); i++) {
        char path[PATH_MAX + 300];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s%s", dir, name, sfx[i]);
        if (lstat(path, &st) == 0 || errno != ENOENT)
            return 1;
    }
    return 0;
}

/* Claim a storage name for ns: the first candidate of PROTOCOL.md 10.2 that
 * is neither in the registry nor on disk, creating the file exclusively
 * (never following a link) so that nothing existing is ever adopted. */
static int claim_storage(lss_db *db, lss__ns *ns, char *err, size_t errcap)
{
    sq_db *s = db->be;
    for (int attempt = 0; attempt < 100; attempt++) {
        size_t len;
        int form = attempt == 0 ? LSS__STORAGE_ENCODED : LSS__STORAGE_HASHED;
        int rc = lss__storage_name(ns->id, ns->id_n, form, ns->storage,
                                   sizeof ns->storage, &len);
        if (rc == LSS_ETOOBIG)
            continue;
        if (rc != LSS_OK)
            return rc;
        if (attempt > 1) /* nh-<hash>-<k>.db */
            snprintf(ns->storage + len - 3, sizeof ns->storage - (len - 3),
                     "-%d.db", attempt);
        if (db->memory) {
            char tmp[300];
            snprintf(tmp, sizeof tmp, "%lu-%s", ++s->memseq, ns->storage);
            snprintf(ns->storage, sizeof ns->storage, "lss-%p-%s", (void *)db, tmp);
            return LSS_OK;
        }
        /* Taken in the registry? */
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(s->reg, "SELECT 1 FROM namespaces WHERE db_path=?1",
                           -1, &st, NULL);
        sqlite3_bind_text(st, 1, ns->storage, -1, SQLITE_STATIC);
        int taken = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (taken)
            continue;
        char path[PATH_MAX + 300];
        if (sidecar_exists(s->dir, ns->storage))
            continue; /* never adopt (or later delete) someone's -wal/-shm */
        snprintf(path, sizeof path, "%s/%s", s->dir, ns->storage);
        int fd = open(path, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC,
                      0644);
        if (fd >= 0) {
            close(fd);
            return LSS_OK;
        }
        if (errno != EEXIST) {
            snprintf(err, errcap, "cannot create storage: %s", strerror(errno));
            return LSS_EIO;
        }
    }
    snprintf(err, errcap, "no free storage name");
    return LSS_EIO;
}

static void remove_files(lss_db *db, const lss__ns *ns)
{
    if (db->memory)
        return;
    sq_db *s = db->be;
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < LSS_ARRAY_LEN(sfx); i++) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s%s", s->dir, ns->storage, sfx[i]);
        unlink(path);
    }
}

static int sq_ns_create(lss_db *db, lss__ns *ns, char *err, size_t errcap)
{
    sq_db *s = db->be;
    int rc = claim_storage(db, ns, err, errcap);
    if (rc != LSS_OK)
        return rc;
    rc = ns_open_writer(db, ns, 1, err, errcap);
    if (rc != LSS_OK) {
        remove_files(db, ns);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(
        s->reg,
        "INSERT INTO namespaces(id, token_hash, db_path, description, created_at, metadata)"
        " VALUES(?1, ?2, ?3, ?4, ?5, '{}')",
        -1, &st, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ns->id, (int)ns->id_n, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns->token_hash, 64, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ns->storage, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, ns->description, (int)ns->description_n,
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, ns->created_us / 1000000);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
    }
    if (src != SQLITE_OK)
        set_err(err, errcap, s->reg, src);
    sqlite3_finalize(st);
    if (src != SQLITE_OK) {
        sq_ns_free(db, ns);
        remove_files(db, ns);
        return map_rc(src);
    }
    /* Listings report what the registry keeps: whole seconds. */
    ns->created_us -= ns->created_us % 1000000;
    return LSS_OK;
}

static int sq_ns_delete(lss_db *db, lss__ns *ns, int64_t *count, char *err,
                        size_t errcap)
{
    sq_db *s = db->be;
    sq_ns *n = ns->be;
    *count = 0;
    if (n) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(n->w.db, "SELECT count(*) FROM messages", -1, &st,
                               NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            *count = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->reg, "DELETE FROM namespaces WHERE id=?1", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ns->id, (int)ns->id_n, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        set_err(err, errcap, s->reg, rc);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return map_rc(rc);
    /* Closing the writer drops a memdb database; files are unlinked (open
     * readers keep the inode until they notice the deletion). */
    sq_ns_free(db, ns);
    remove_files(db, ns);
    return LSS_OK;
}

/* ------------------------------------------------------------------------
 * Open, load, close
 * ---------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char save = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            tmp[i] = save;
        }
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* A metadata file name is joined to the data directory as path
 * components; none may climb out of it or be empty. */
static int meta_name_ok(const char *m)
{
    if (!*m)
        return 0;
    for (const char *p = m; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && !memcmp(p, "..", 2)))
            return 0;
        p += n + (e ? 1 : 0);
        if (e && !*p)
            return 0; /* trailing slash: a directory, not a file */
    }
    return 1;
}

static int sq_open(lss_db *db, const char *url)
{
    sq_db *s = lss__malloc(&db->a, sizeof *s);
    if (!s)
        return LSS_ENOMEM;
    memset(s, 0, sizeof *s);
    db->be = s;
    char path[PATH_MAX + 300];
    if (db->memory) {
        snprintf(path, sizeof path, "file:lss-%p-registry?vfs=memdb", (void *)db);
    } else {
        if (strlen(url) >= sizeof s->dir) {
            snprintf(db->errmsg, sizeof db->errmsg, "data directory path too long");
            return LSS_EINVAL;
        }
        snprintf(s->dir, sizeof s->dir, "%s", url);
        if (mkdir_p(s->dir) != 0) {
            snprintf(db->errmsg, sizeof db->errmsg,
                     "cannot create data directory: %s", strerror(errno));
            return LSS_EIO;
        }
        const char *meta = db->o.metadata_file ? db->o.metadata_file : "metadata.db";
        while (*meta == '/') /* sqlite:///abs/x.db is <data-dir>/abs/x.db */
            meta++;
        if (!meta_name_ok(meta)) {
            snprintf(db->errmsg, sizeof db->errmsg, "invalid metadata file name");
            return LSS_EINVAL;
        }
        snprintf(path, sizeof path, "%s/%s", s->dir, meta);
        char *slash = strrchr(path, '/');
        if (slash > path + strlen(s->dir)) { /* its own subdirectories */
            *slash = '\0';
            int made = mkdir_p(path);
            *slash = '/';
            if (made != 0) {
                snprintf(db->errmsg, sizeof db->errmsg,
                         "cannot create metadata directory: %s", strerror(errno));
                return LSS_EIO;
            }
        }
    }
    int rc = open_conn(db, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1,
                       &s->reg);
    if (rc == SQLITE_OK)
        rc = exec(s->reg, REG_SCHEMA);
    if (rc != SQLITE_OK) {
        snprintf(db->errmsg, sizeof db->errmsg, "cannot open registry: %s",
                 s->reg ? sqlite3_errmsg(s->reg) : sqlite3_errstr(rc));
        return map_rc(rc);
    }
    return LSS_OK;
}

static int sq_load(lss_db *db)
{
    sq_db *s = db->be;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->reg,
        "SELECT id, token_hash, db_path, coalesce(description,''), created_at"
        " FROM namespaces",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(db->errmsg, sizeof db->errmsg, "cannot read registry: %s",
                 sqlite3_errmsg(s->reg));
        return map_rc(rc);
    }
    int lrc = LSS_OK;
    while (lrc == LSS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        size_t id_n = (size_t)sqlite3_column_bytes(st, 0);
        const char *hash = (const char *)sqlite3_column_text(st, 1);
        const char *path = (const char *)sqlite3_column_text(st, 2);
        const char *desc = (const char *)sqlite3_column_text(st, 3);
        size_t desc_n = (size_t)sqlite3_column_bytes(st, 3);
        if (!id || id_n == 0 || id_n > LSS_NS_ID_MAX || !hash ||
            sqlite3_column_bytes(st, 1) != 64 || !path ||
            strlen(path) >= sizeof ((lss__ns *)0)->storage ||
            strchr(path, '/'))
            continue; /* not a row this store can serve safely */
        lss__ns *ns = lss__ns_new(db, id, id_n);
        if (!ns) {
            lrc = LSS_ENOMEM;
            break;
        }
        memcpy(ns->token_hash, hash, 64);
        snprintf(ns->storage, sizeof ns->storage, "%s", path);
        if (lss__ns_set_description(db, ns, desc, desc_n) != LSS_OK) {
            lss__ns_unref(db, ns);
            lrc = LSS_ENOMEM;
            break;
        }
        ns->created_us = sqlite3_column_int64(st, 4) * 1000000;
        char err[256] = "";
        lrc = ns_open_writer(db, ns, 0, err, sizeof err);
        if (lrc == LSS_OK)
            lrc = lss__ns_add(db, ns);
        if (lrc != LSS_OK) {
            snprintf(db->errmsg, sizeof db->errmsg,
                     "cannot open namespace '%.*s': %s", (int)id_n, id, err);
            lss__ns_unref(db, ns);
        }
    }
    /* A registry that cannot be read to the end (an I/O error) must fail
     * the open: serving only the rows read so far would make the other
     * namespaces look deleted. */
    if (lrc == LSS_OK && rc != SQLITE_DONE) {
        snprintf(db->errmsg, sizeof db->errmsg, "cannot read registry: %s (sqlite %d)",
                 sqlite3_errmsg(s->reg), sqlite3_extended_errcode(s->reg));
        lrc = map_rc(rc);
    }
    sqlite3_finalize(st);
    return lrc;
}

static void sq_close(lss_db *db)
{
    sq_db *s = db->be;
    sqlite3_close_v2(s->reg);
    lss__free(&db->a, s);
    db->be = NULL;
}

/* ------------------------------------------------------------------------
 * Sessions and their read connections
 * ---------------------------------------------------------------------- */

static int sq_conn_open(lss_conn *c)
{
    sq_conn *q = lss__malloc(&c->db->a, sizeof *q);
    if (!q)
        return LSS_ENOMEM;
    memset(q, 0, sizeof *q);
    q->md5 = EVP_MD_CTX_new();
    q->md5_md = EVP_MD_fetch(NULL, "MD5", NULL);
    if (!q->md5 || !q->md5_md) {
        EVP_MD_CTX_free(q->md5);
        EVP_MD_free(q->md5_md);
        lss__free(&c->db->a, q);
        return LSS_EINTERNAL;
    }
    c->be = q;
    return LSS_OK;
}

static void slot_drop(lss_conn *c, sq_slot *sl)
{
    rconn_close(&sl->r);
    if (sl->ns)
        lss__ns_unref(c->db, sl->ns);
    memset(sl, 0, sizeof *sl);
}

static void sq_conn_close(lss_conn *c)
{
    sq_conn *q = c->be;
    if (!q)
        return;
    for (int i = 0; i < SQ_SLOTS; i++)
        slot_drop(c, &q->slot[i]);
    EVP_MD_CTX_free(q->md5);
    EVP_MD_free(q->md5_md);
    lss__free(&c->db->a, q->mat);
    lss__free(&c->db->a, q);
    c->be = NULL;
}

/* The read connection for ns.  In memory mode that is the writer's, and
 * the caller must hold ns->wlock while using it. */
static int rconn_for(lss_conn *c, lss__ns *ns, sq_rconn **out)
{
    if (c->db->memory) {
        *out = &((sq_ns *)ns->be)->w;
        return LSS_OK;
    }
    sq_conn *q = c->be;
    sq_slot *victim = &q->slot[0];
    for (int i = 0; i < SQ_SLOTS; i++) {
        sq_slot *sl = &q->slot[i];
        if (sl->ns && atomic_load(&sl->ns->deleted))
            slot_drop(c, sl);
        if (sl->ns == ns) {
            sl->used = ++q->tick;
            *out = &sl->r;
            return LSS_OK;
        }
        if (!sl->ns || sl->used < victim->used)
            victim = sl;
    }
    slot_drop(c, victim);
    char path[PATH_MAX + 64];
    if (ns_path(c->db, ns, path, sizeof path) != LSS_OK)
        return lss__err(c, LSS_ETOOBIG, "storage path too long");
    int rc = open_conn(c->db, path, SQLITE_OPEN_READWRITE, 0, &victim->r.db);
    if (rc != SQLITE_OK) {
        int e = sq_err(c, victim->r.db, rc, "cannot open namespace");
        rconn_close(&victim->r);
        return e;
    }
    atomic_fetch_add(&ns->refs, 1);
    victim->ns = ns;
    victim->used = ++q->tick;
    *out = &victim->r;
    return LSS_OK;
}

static void lock_mem(lss_conn *c, lss__ns *ns)
{
    if (c->db->memory)
        pthread_mutex_lock(&ns->wlock);
}

static void unlock_mem(lss_conn *c, lss__ns *ns)
{
    if (c->db->memory)
        pthread_mutex_unlock(&ns->wlock);
}

/* ------------------------------------------------------------------------
 * Reads
 * ---------------------------------------------------------------------- */

/* Shape bits of a message read; each shape has one cached statement. */
#define SH_CATEGORY 0x01
#define SH_GLOBAL 0x02 /* stream: by global position; category: all */
#define SH_CORR 0x04
#define SH_GROUP 0x08
#define SH_SINCE 0x10
#define SH_UNTIL 0x20

static int build_sql(int shape, size_t types_n, char *sql, size_t cap)
{
    size_t n = (size_t)snprintf(sql, cap, "%s WHERE ", MSG_COLS);
#define ADD(...) n += (size_t)snprintf(sql + n, n < cap ? cap - n : 0, __VA_ARGS__)
    if (shape & SH_CATEGORY) {
        if (shape & SH_GLOBAL)
            ADD("global_position >= ?2");
        else
            ADD("category = ?1 AND global_position >= ?2");
    } else if (shape & SH_GLOBAL) {
        ADD("stream_name = ?1 AND global_position >= ?2");
    } else {
        ADD("stream_name = ?1 AND position >= ?2");
    }
    if (shape & SH_CORR)
        ADD(" AND json_type(metadata, '$.correlationStreamName') = 'text'"
            " AND (CASE WHEN instr(json_extract(metadata, '$.correlationStreamName'), '-') > 0"
            " THEN substr(json_extract(metadata, '$.correlationStreamName'), 1,"
            " instr(json_extract(metadata, '$.correlationStreamName'), '-') - 1)"
            " ELSE json_extract(metadata, '$.correlationStreamName') END) = ?4");
    if (shape & SH_GROUP)
        ADD(" AND chash IS NOT NULL AND (CASE WHEN chash < 0 THEN -(chash %% ?6)"
            " ELSE chash %% ?6 END) = ?5");
    if (shape & SH_SINCE)
        ADD(" AND time >= ?7");
    if (shape & SH_UNTIL)
        ADD(" AND time < ?8");
    if (types_n) {
        ADD(" AND type IN (");
        for (size_t i = 0; i < types_n; i++)
            ADD(i ? ",?%zu" : "?%zu", 10 + i);
        ADD(")");
    }
    if ((shape & SH_CATEGORY) || (shape & SH_GLOBAL))
        ADD(" ORDER BY global_position LIMIT ?3");
    else
        ADD(" ORDER BY position LIMIT ?3");
#undef ADD
    return n < cap ? LSS_OK : LSS_ETOOBIG;
}

static int read_messages(lss_conn *c, sq_rconn *r, lss_cursor *cur, int what,
                         const char *name, size_t name_n,
                         const lss_read_opts *o)
{
    int shape = 0;
    int64_t from = o->position;
    if (what == LSS__READ_CATEGORY) {
        shape |= SH_CATEGORY;
        if (name_n == 0)
            shape |= SH_GLOBAL;
        if (o->correlation && o->correlation_n)
            shape |= SH_CORR;
        if (o->flags & LSS_READ_GROUP)
            shape |= SH_GROUP;
    } else if (o->flags & LSS_READ_GLOBAL) {
        shape |= SH_GLOBAL;
        from = o->global_position;
    }
    if (o->flags & LSS_READ_SINCE)
        shape |= SH_SINCE;
    if (o->flags & LSS_READ_UNTIL)
        shape |= SH_UNTIL;
    sqlite3_stmt *st = NULL;
    int rc;
    if (o->types_n == 0) {
        char sql[1200];
        if (!r->st[shape]) {
            build_sql(shape, 0, sql, sizeof sql);
            rc = prep(r->db, sql, &r->st[shape]);
            if (rc != SQLITE_OK)
                return sq_err(c, r->db, rc, "Failed to prepare read");
        }
        st = r->st[shape];
        cur->own_stmt = 0;
    } else {
        char sql[2400];
        build_sql(shape, o->types_n, sql, sizeof sql);
        st = NULL;
        rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
            return sq_err(c, r->db, rc, "Failed to prepare read");
        cur->own_stmt = 1;
        for (size_t i = 0; i < o->types_n; i++)
            sqlite3_bind_text(st, (int)(10 + i), o->types[i].p,
                              (int)o->types[i].n, SQLITE_STATIC);
    }
    if (!(shape & SH_CATEGORY) || !(shape & SH_GLOBAL))
        sqlite3_bind_text(st, 1, name, (int)name_n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, o->batch_size <= 0 ? -1 : o->batch_size);
    if (shape & SH_CORR)
        sqlite3_bind_text(st, 4, o->correlation, (int)o->correlation_n,
                          SQLITE_STATIC);
    if (shape & SH_GROUP) {
        sqlite3_bind_int64(st, 5, o->group_member);
        sqlite3_bind_int64(st, 6, o->group_size);
    }
    if (shape & SH_SINCE)
        sqlite3_bind_int64(st, 7, o->since_us);
    if (shape & SH_UNTIL)
        sqlite3_bind_int64(st, 8, o->until_us);
    cur->stmt = st;
    return LSS_OK;
}

static const char *fixed_sql(int which)
{
    switch (which) {
    case RS_LAST:
        return "SELECT id, stream_name, type, position, global_position, data,"
               " metadata, time FROM messages WHERE stream_name = ?1"
               " ORDER BY position DESC LIMIT 1";
    case RS_LAST_TYPE:
        return "SELECT id, stream_name, type, position, global_position, data,"
               " metadata, time FROM messages WHERE stream_name = ?1 AND type = ?2"
               " ORDER BY position DESC LIMIT 1";
    case RS_VERSION:
        return "SELECT max(position) FROM messages WHERE stream_name = ?1";
    case RS_STREAMS:
        /* Byte-wise prefix on the BLOB form: no LIKE, no wildcards. */
        return "SELECT stream_name, max(position), max(time) FROM messages"
               " WHERE stream_name > ?2 AND stream_name >= ?1"
               " AND substr(CAST(stream_name AS BLOB), 1, ?4) = CAST(?1 AS BLOB)"
               " GROUP BY stream_name ORDER BY stream_name LIMIT ?3";
    case RS_CATS:
        return "SELECT category, count(DISTINCT stream_name), count(*)"
               " FROM messages GROUP BY category ORDER BY category";
    case RS_STATS:
        return "SELECT count(*), count(DISTINCT stream_name), max(time)"
               " FROM messages";
    case RS_COUNT:
        return "SELECT count(*) FROM messages";
    default:
        return NULL;
    }
}

static int fixed_stmt(lss_conn *c, sq_rconn *r, int which, sqlite3_stmt **out)
{
    int rc = prep(r->db, fixed_sql(which), &r->st[which]);
    if (rc != SQLITE_OK)
        return sq_err(c, r->db, rc, "Failed to prepare read");
    *out = r->st[which];
    return LSS_OK;
}

static void release_stmt(lss_cursor *cur)
{
    sqlite3_stmt *st = cur->stmt;
    if (st) {
        if (cur->own_stmt) {
            sqlite3_finalize(st);
        } else {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        }
    }
    cur->stmt = NULL;
    cur->own_stmt = 0;
}

static int mat_reserve(lss_conn *c, sq_conn *q, size_t more)
{
    if (q->mat_cap - q->mat_len >= more)
        return LSS_OK;
    size_t cap = q->mat_cap ? q->mat_cap : 4096;
    while (cap - q->mat_len < more) {
        if (cap > SIZE_MAX / 2)
            return LSS_ENOMEM;
        cap *= 2;
    }
    char *p = lss__realloc(&c->db->a, q->mat, q->mat_cap, cap);
    if (!p)
        return LSS_ENOMEM;
    q->mat = p;
    q->mat_cap = cap;
    return LSS_OK;
}

/* Copy every row of cur->stmt into the session's buffer as records of
 * (ncols, then per column: type byte, int64 or length + bytes). */
static int materialize(lss_conn *c, lss_cursor *cur)
{
    sq_conn *q = c->be;
    sqlite3_stmt *st = cur->stmt;
    q->mat_len = q->mat_pos = 0;
    int rc = LSS_OK, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int nc = sqlite3_column_count(st);
        for (int i = 0; i < nc && rc == LSS_OK; i++) {
            int t = sqlite3_column_type(st, i);
            size_t n = t == SQLITE_TEXT || t == SQLITE_BLOB
                           ? (size_t)sqlite3_column_bytes(st, i)
                           : 0;
            const void *p = t == SQLITE_TEXT   ? (const void *)sqlite3_column_text(st, i)
                            : t == SQLITE_BLOB ? sqlite3_column_blob(st, i)
                                               : NULL;
            rc = mat_reserve(c, q, 1 + sizeof(int64_t) + n);
            if (rc != LSS_OK)
                break;
            char *w = q->mat + q->mat_len;
            *w++ = (char)t;
            int64_t v = n;
            if (t == SQLITE_INTEGER || t == SQLITE_FLOAT)
                v = sqlite3_column_int64(st, i);
            memcpy(w, &v, sizeof v);
            w += sizeof v;
            if (n)
                memcpy(w, p, n);
            q->mat_len += 1 + sizeof v + n;
        }
        if (rc != LSS_OK)
            break;
    }
    if (rc == LSS_OK && s != SQLITE_DONE)
        rc = sq_err(c, sqlite3_db_handle(st), s, "Failed to read");
    release_stmt(cur);
    q->mat_on = 1;
    return rc;
}

/* The next row's columns, from the statement or the buffer: LSS_ROW,
 * LSS_DONE or an error. */
static int next_row(lss_cursor *cur, sq_col *col, int nc)
{
    sq_conn *q = cur->conn->be;
    if (q->mat_on) {
        if (q->mat_pos >= q->mat_len)
            return LSS_DONE;
        const char *r = q->mat + q->mat_pos;
        for (int i = 0; i < nc; i++) {
            col[i].type = (unsigned char)*r++;
            memcpy(&col[i].i, r, sizeof col[i].i);
            r += sizeof col[i].i;
            col[i].p = NULL;
            col[i].n = 0;
            if (col[i].type == SQLITE_TEXT || col[i].type == SQLITE_BLOB) {
                col[i].n = (size_t)col[i].i;
                col[i].p = col[i].n ? r : "";
                r += col[i].n;
            }
        }
        q->mat_pos = (size_t)(r - q->mat);
        return LSS_ROW;
    }
    sqlite3_stmt *st = cur->stmt;
    if (!st)
        return LSS_DONE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return LSS_DONE;
    if (rc != SQLITE_ROW)
        return sq_err(cur->conn, sqlite3_db_handle(st), rc, "Failed to read");
    for (int i = 0; i < nc; i++) {
        int t = sqlite3_column_type(st, i);
        col[i].type = t;
        col[i].i = 0;
        col[i].p = NULL;
        col[i].n = 0;
        if (t == SQLITE_TEXT) {
            col[i].p = (const char *)sqlite3_column_text(st, i);
            col[i].n = (size_t)sqlite3_column_bytes(st, i);
        } else if (t == SQLITE_BLOB) {
            col[i].p = sqlite3_column_blob(st, i);
            col[i].n = (size_t)sqlite3_column_bytes(st, i);
        } else if (t != SQLITE_NULL) {
            col[i].i = sqlite3_column_int64(st, i);
        }
    }
    return LSS_ROW;
}

static lss_span cspan(const sq_col *c)
{
    lss_span s;
    s.p = c->type == SQLITE_NULL ? NULL : (c->p ? c->p : "");
    s.n = c->n;
    return s;
}

static int sq_read(lss_conn *c, lss__ns *ns, lss_cursor *cur, int what,
                   const char *name, size_t name_n, const lss_read_opts *o,
                   const char *aux, size_t aux_n)
{
    sq_conn *q = c->be;
    sq_rconn *r;
    lock_mem(c, ns);
    int rc = rconn_for(c, ns, &r);
    sqlite3_stmt *st = NULL;
    cur->own_stmt = 0;
    if (rc == LSS_OK) {
        switch (what) {
        case LSS__READ_STREAM:
        case LSS__READ_CATEGORY:
            rc = read_messages(c, r, cur, what, name, name_n, o);
            st = cur->stmt;
            break;
        case LSS__READ_LAST:
            rc = fixed_stmt(c, r, aux_n ? RS_LAST_TYPE : RS_LAST, &st);
            if (rc == LSS_OK) {
                sqlite3_bind_text(st, 1, name, (int)name_n, SQLITE_STATIC);
                if (aux_n)
                    sqlite3_bind_text(st, 2, aux, (int)aux_n, SQLITE_STATIC);
            }
            break;
        case LSS__READ_STREAMS:
            rc = fixed_stmt(c, r, RS_STREAMS, &st);
            if (rc == LSS_OK) {
                sqlite3_bind_text(st, 1, name, (int)name_n, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, aux, (int)aux_n, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, o->batch_size);
                sqlite3_bind_int64(st, 4, (sqlite3_int64)name_n);
            }
            break;
        case LSS__READ_CATS:
            rc = fixed_stmt(c, r, RS_CATS, &st);
            break;
        default:
            rc = lss__err(c, LSS_EINTERNAL, "unknown read");
        }
    }
    if (rc != LSS_OK) {
        unlock_mem(c, ns);
        return rc;
    }
    cur->stmt = st;
    q->mat_on = 0;
    if (c->db->memory) {
        rc = materialize(c, cur);
        unlock_mem(c, ns);
    }
    return rc;
}

static int sq_step(lss_cursor *cur)
{
    sq_col col[SQ_MAX_COLS];
    int rc = next_row(cur, col, cur->kind == LSS__CUR_MSG ? 8 : 3);
    if (rc != LSS_ROW)
        return rc;
    switch (cur->kind) {
    case LSS__CUR_MSG: {
        lss_message *m = &cur->msg;
        if (col[0].type == SQLITE_BLOB && col[0].n == 16)
            lss__uuid_format((const uint8_t *)col[0].p, cur->idtext);
        else
            memset(cur->idtext, '0', sizeof cur->idtext);
        m->id.p = cur->idtext;
        m->id.n = 36;
        m->stream = cspan(&col[1]);
        m->type = cspan(&col[2]);
        m->position = col[3].i;
        m->global_position = col[4].i;
        m->data = cspan(&col[5]);
        m->metadata = cspan(&col[6]);
        m->time_us = col[7].i;
        break;
    }
    case LSS__CUR_STREAMS:
        cur->srow.stream = cspan(&col[0]);
        cur->srow.version = col[1].i;
        cur->srow.last_activity_us = col[2].i;
        break;
    case LSS__CUR_CATS:
        cur->crow.category = cspan(&col[0]);
        cur->crow.stream_count = col[1].i;
        cur->crow.message_count = col[2].i;
        break;
    default:
        return LSS_EMISUSE;
    }
    return LSS_ROW;
}

static void sq_reset(lss_cursor *cur)
{
    sq_conn *q = cur->conn->be;
    release_stmt(cur);
    q->mat_on = 0;
    q->mat_len = q->mat_pos = 0;
}

static int sq_version(lss_conn *c, lss__ns *ns, const char *stream,
                      size_t stream_n, int64_t *version)
{
    sq_rconn *r;
    lock_mem(c, ns);
    int rc = rconn_for(c, ns, &r);
    sqlite3_stmt *st = NULL;
    if (rc == LSS_OK)
        rc = fixed_stmt(c, r, RS_VERSION, &st);
    if (rc == LSS_OK) {
        sqlite3_bind_text(st, 1, stream, (int)stream_n, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            *version = sqlite3_column_type(st, 0) == SQLITE_NULL
                           ? -1
                           : sqlite3_column_int64(st, 0);
        else
            rc = sq_err(c, r->db, s, "Failed to get stream version");
        sqlite3_reset(st);
    }
    unlock_mem(c, ns);
    return rc;
}

static int sq_ns_stats(lss_conn *c, lss__ns *ns, lss_ns_row *row)
{
    sq_rconn *r;
    lock_mem(c, ns);
    int rc = rconn_for(c, ns, &r);
    sqlite3_stmt *st = NULL;
    if (rc == LSS_OK)
        rc = fixed_stmt(c, r, RS_STATS, &st);
    if (rc == LSS_OK) {
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            row->message_count = sqlite3_column_int64(st, 0);
            row->stream_count = sqlite3_column_int64(st, 1);
            row->has_last_activity = sqlite3_column_type(st, 2) != SQLITE_NULL;
            row->last_activity_us = sqlite3_column_int64(st, 2);
        } else {
            rc = sq_err(c, r->db, s, "Failed to get namespace");
        }
        sqlite3_reset(st);
    }
    unlock_mem(c, ns);
    return rc;
}

/* ------------------------------------------------------------------------
 * Writes.  The caller holds ns->wlock and gives us a commit group.
 * ---------------------------------------------------------------------- */

static const char *const WSQL[WS_N] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT max(position) FROM messages WHERE stream_name = ?1",
    "SELECT stream_name, type, position, global_position, data, metadata"
    " FROM messages WHERE id = ?1",
    "INSERT INTO messages(id, stream_name, type, position, data, metadata,"
    " time, category, chash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    "SELECT 1 FROM messages WHERE global_position = ?1",
    "SELECT 1 FROM messages WHERE stream_name = ?1 AND position = ?2",
    "INSERT INTO messages(id, stream_name, type, position, data, metadata,"
    " time, category, chash, global_position)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    "PRAGMA data_version",
};

static int wstmt(lss_conn *c, sq_ns *n, int which, sqlite3_stmt **out)
{
    int rc = prep(n->w.db, WSQL[which], &n->ws[which]);
    if (rc != SQLITE_OK)
        return sq_err(c, n->w.db, rc, "Failed to write message");
    *out = n->ws[which];
    return LSS_OK;
}

static int run(lss_conn *c, sq_ns *n, int which)
{
    sqlite3_stmt *st = NULL;
    int rc = wstmt(c, n, which, &st);
    if (rc != LSS_OK)
        return rc;
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_DONE)
        return sq_err(c, n->w.db, s, "Failed to write message");
    return LSS_OK;
}

/* Roll back the writer's transaction if one is still open (after an I/O
 * error in COMMIT SQLite has often rolled back already), keeping the error
 * message of the failure that brought us here: that is what the caller
 * reports, not "cannot rollback - no transaction is active". */
static void rollback(lss_conn *c, sq_ns *n)
{
    if (sqlite3_get_autocommit(n->w.db))
        return;
    char keep[LSS_ERRMSG_MAX];
    memcpy(keep, c->errmsg, sizeof keep);
    run(c, n, WS_ROLLBACK);
    memcpy(c->errmsg, keep, sizeof keep);
}

static int span_eq(const void *p, size_t n, sqlite3_stmt *st, int col)
{
    size_t m = (size_t)sqlite3_column_bytes(st, col);
    const void *q = sqlite3_column_blob(st, col);
    return n == m && (n == 0 || !memcmp(p, q, n));
}

/* Does stored row st (of WS_FIND) hold the same message as m in stream? */
static int same_message(lss_conn *c, sqlite3_stmt *st, const lss_append *a,
                        const lss_msg_in *m)
{
    if (!span_eq(a->stream, a->stream_n, st, 0) ||
        !span_eq(m->type, m->type_n, st, 1))
        return 0;
    const char *d = (const char *)sqlite3_column_text(st, 4);
    if (!d)
        return 0;
    int eq = lss__json_same(c, m->data, m->data_n, d,
                            (size_t)sqlite3_column_bytes(st, 4));
    if (eq != 1)
        return eq < 0 ? eq : 0;
    const char *md = (const char *)sqlite3_column_text(st, 5);
    if (!md || !m->metadata)
        return !md && !m->metadata;
    eq = lss__json_same(c, m->metadata, m->metadata_n, md,
                        (size_t)sqlite3_column_bytes(st, 5));
    return eq;
}

/* Idempotency (PROTOCOL.md 7.4 and 12.1).  Returns LSS_OK when no id of
 * the request exists yet, LSS_DONE when the request is an identical retry
 * (positions set), LSS_EDUPLICATE, or an error. */
static int check_ids(lss_conn *c, sq_ns *n, lss_append *a)
{
    sqlite3_stmt *st = NULL;
    int rc = wstmt(c, n, WS_FIND, &st);
    if (rc != LSS_OK)
        return rc;
    size_t found = 0, with_id = 0;
    long first_dup = -1;
    int run_ok = 1;
    int64_t prev_pos = 0, prev_gpos = 0;
    for (size_t i = 0; i < a->count; i++) {
        const lss_msg_in *m = &a->msgs[i];
        if (!m->id || !m->id_n) {
            run_ok = 0;
            continue;
        }
        with_id++;
        uint8_t id[16];
        lss__uuid_parse(m->id, m->id_n, id);
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            found++;
            if (first_dup < 0)
                first_dup = (long)i;
            int same = same_message(c, st, a, m);
            if (same < 0) {
                sqlite3_reset(st);
                return lss__err(c, same, "cannot compare payloads");
            }
            int64_t pos = sqlite3_column_int64(st, 2);
            int64_t gpos = sqlite3_column_int64(st, 3);
            if (!same || (found > 1 && pos != prev_pos + 1))
                run_ok = 0;
            prev_pos = pos;
            prev_gpos = gpos;
        } else if (s == SQLITE_DONE) {
            run_ok = 0;
        } else {
            sqlite3_reset(st);
            return sq_err(c, n->w.db, s, "Failed to write message");
        }
        sqlite3_reset(st);
        if (first_dup >= 0 && !run_ok)
            break;
    }
    if (found == 0)
        return LSS_OK;
    if (run_ok && found == a->count && with_id == a->count) {
        a->position = prev_pos;
        a->global_position = prev_gpos;
        uint8_t id[16];
        const lss_msg_in *last = &a->msgs[a->count - 1];
        lss__uuid_parse(last->id, last->id_n, id);
        lss__uuid_format(id, a->id);
        return LSS_DONE;
    }
    uint8_t id[16];
    const lss_msg_in *m = &a->msgs[first_dup];
    lss__uuid_parse(m->id, m->id_n, id);
    lss__uuid_format(id, a->id);
    a->bad_index = (size_t)first_dup;
    return lss__err(c, LSS_EDUPLICATE, "Message ID '%.36s' already exists", a->id);
}

static void vc_clear(sq_ns *n)
{
    memset(n->vc, 0, sizeof n->vc);
}

static uint32_t vc_hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static vc_entry *vc_find(sq_ns *n, const char *p, size_t len, uint32_t h)
{
    vc_entry *set = n->vc[h % VC_SETS];
    for (int i = 0; i < VC_WAYS; i++)
        if (set[i].len == len && set[i].hash == h && !memcmp(set[i].name, p, len))
            return &set[i];
    return NULL;
}

static int vc_get(sq_ns *n, const char *p, size_t len, int64_t *v)
{
    if (len > VC_NAME)
        return 0;
    vc_entry *e = vc_find(n, p, len, vc_hash(p, len));
    if (e)
        *v = e->version;
    return e != NULL;
}

static void vc_put(sq_ns *n, const char *p, size_t len, int64_t v)
{
    if (len > VC_NAME)
        return;
    uint32_t h = vc_hash(p, len);
    vc_entry *e = vc_find(n, p, len, h);
    if (!e) {
        vc_entry *set = n->vc[h % VC_SETS];
        for (int i = 0; i < VC_WAYS && !e; i++)
            if (!set[i].len)
                e = &set[i];
        if (!e)
            e = &set[n->vc_next[h % VC_SETS]++ % VC_WAYS];
        e->hash = h;
        e->len = (uint8_t)len;
        memcpy(e->name, p, len);
    }
    e->version = v;
}

static int stream_version(lss_conn *c, sq_ns *n, const lss_append *a,
                          int64_t *v)
{
    if (vc_get(n, a->stream, a->stream_n, v))
        return LSS_OK;
    sqlite3_stmt *st = NULL;
    int rc = wstmt(c, n, WS_VERSION, &st);
    if (rc != LSS_OK)
        return rc;
    sqlite3_bind_text(st, 1, a->stream, (int)a->stream_n, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1
                                                       : sqlite3_column_int64(st, 0);
        vc_put(n, a->stream, a->stream_n, *v);
    } else
        rc = sq_err(c, n->w.db, s, "Failed to write message");
    sqlite3_reset(st);
    return rc;
}

/* Insert the messages of a (checks passed). */
static int insert_all(lss_conn *c, sq_ns *n, lss_append *a, int64_t version,
                      int64_t now)
{
    sq_conn *q = c->be;
    sqlite3_stmt *st = NULL;
    int rc = wstmt(c, n, WS_INSERT, &st);
    if (rc != LSS_OK)
        return rc;
    size_t cat_n = lss_category_len(a->stream, a->stream_n);
    const char *card;
    size_t card_n;
    int has_hash = lss_cardinal_id(a->stream, a->stream_n, &card, &card_n) &&
                   card_n > 0;
    int64_t h = 0;
    if (has_hash && lss__hash64_ctx(q->md5, q->md5_md, card, card_n, &h) != 0)
        return lss__err(c, LSS_EINTERNAL, "Failed to write message: md5 failed");
    int64_t ms = now / 1000;
    uint8_t id[16];
    for (size_t k = 0; k < a->count; k++) {
        const lss_msg_in *m = &a->msgs[k];
        if (m->id && m->id_n)
            lss__uuid_parse(m->id, m->id_n, id);
        else
            lss__uuid_v7_gen(&c->uuid, id, ms);
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->stream, (int)a->stream_n, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, m->type, (int)m->type_n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, version + 1 + (int64_t)k);
        sqlite3_bind_text(st, 5, m->data, (int)m->data_n, SQLITE_STATIC);
        if (m->metadata)
            sqlite3_bind_text(st, 6, m->metadata, (int)m->metadata_n,
                              SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_text(st, 8, a->stream, (int)cat_n, SQLITE_STATIC);
        if (has_hash)
            sqlite3_bind_int64(st, 9, h);
        else
            sqlite3_bind_null(st, 9);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return sq_err(c, n->w.db, s, "Failed to write message");
    }
    a->position = version + (int64_t)a->count;
    a->global_position = sqlite3_last_insert_rowid(n->w.db);
    vc_put(n, a->stream, a->stream_n, a->position);
    lss__uuid_format(id, a->id);
    return LSS_OK;
}

/* One request inside the open transaction: LSS_OK (inserted), LSS_DONE
 * (idempotent retry), a request-level refusal, or a backend error. */
static int append_one(lss_conn *c, sq_ns *n, lss_append *a, int64_t now)
{
    int rc = check_ids(c, n, a);
    if (rc != LSS_OK)
        return rc;
    int64_t v = -1;
    rc = stream_version(c, n, a, &v);
    if (rc != LSS_OK)
        return rc;
    if ((a->flags & LSS_APPEND_EXPECT) && a->expected_version != v) {
        a->actual_version = v;
        return lss__err(c, LSS_EVERSION,
                        "Expected version %lld, stream is at version %lld",
                        (long long)a->expected_version, (long long)v);
    }
    return insert_all(c, n, a, v, now);
}

static int is_refusal(int rc)
{
    return rc == LSS_EVERSION || rc == LSS_EDUPLICATE;
}

/* Empty the version cache if another connection (another process on the
 * same files) committed since our last transaction: it may have appended. */
static int check_data_version(lss_conn *c, sq_ns *n)
{
    sqlite3_stmt *st = NULL;
    int rc = wstmt(c, n, WS_DATA_VERSION, &st);
    if (rc != LSS_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        int64_t dv = sqlite3_column_int64(st, 0);
        if (dv != n->data_version)
            vc_clear(n);
        n->data_version = dv;
    } else {
        rc = sq_err(c, n->w.db, s, "Failed to write message");
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_group_begin(lss_conn *c, lss__ns *ns)
{
    sq_ns *n = ns->be;
    int rc = run(c, n, WS_BEGIN);
    if (rc == LSS_OK && !c->db->memory && (rc = check_data_version(c, n)) != LSS_OK)
        rollback(c, n);
    n->now = lss__now_us();
    return rc;
}

static int sq_group_add(lss_conn *c, lss__ns *ns, lss_append **reqs,
                        size_t from, size_t to)
{
    sq_ns *n = ns->be;
    for (size_t i = from; i < to; i++) {
        lss_append *a = reqs[i];
        n->retry[i] = 0;
        int rc = append_one(c, n, a, n->now);
        if (rc == LSS_DONE) {
            n->retry[i] = 1;
            rc = LSS_OK;
        }
        a->rc = rc;
        if (rc != LSS_OK && !is_refusal(rc)) {
            /* A backend failure mid-group: nothing of the group stays. */
            rollback(c, n);
            vc_clear(n);
            for (size_t k = 0; k < to; k++)
                if (k != i && reqs[k]->rc == LSS_OK)
                    reqs[k]->rc = rc == LSS_ECONFLICT ? LSS_EBACKEND : rc;
            if (rc == LSS_ECONFLICT) /* a constraint our checks missed */
                a->rc = LSS_EBACKEND;
            return a->rc;
        }
    }
    return LSS_OK;
}

static int sq_group_end(lss_conn *c, lss__ns *ns, lss_append **reqs,
                        size_t count)
{
    sq_ns *n = ns->be;
    int rc = run(c, n, WS_COMMIT);
    if (rc != LSS_OK) {
        rollback(c, n);
        vc_clear(n);
        for (size_t k = 0; k < count; k++)
            if (reqs[k]->rc == LSS_OK)
                reqs[k]->rc = rc;
        return LSS_OK;
    }
    /* Committed: publish in global-position order (we still hold wlock). */
    for (size_t i = 0; i < count; i++) {
        lss_append *a = reqs[i];
        if (a->rc != LSS_OK || n->retry[i])
            continue;
        int64_t back = (int64_t)a->count - 1;
        for (size_t k = 0; k < a->count; k++)
            lss__hub_publish(ns->hub, a->stream, a->stream_n,
                             a->position - back + (int64_t)k,
                             a->global_position - back + (int64_t)k);
    }
    return LSS_OK;
}

/* Does the one-row query `which`, bound by the caller, find a row? */
static int exists(lss_conn *c, sq_ns *n, sqlite3_stmt *st, int *found)
{
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return sq_err(c, n->w.db, s, "import failed");
    *found = s == SQLITE_ROW;
    return LSS_OK;
}

/* One record: refuse what already exists (in the order of PROTOCOL.md 9.2's
 * POSITION_EXISTS texts), then insert with the given global position;
 * later appends get the largest rowid + 1, so the counter never moves
 * back. */
static int import_one(lss_conn *c, sq_ns *n, const lss_import_rec *r)
{
    sq_conn *q = c->be;
    sqlite3_stmt *st = NULL;
    int found = 0, rc = wstmt(c, n, WS_HAS_GPOS, &st);
    if (rc == LSS_OK) {
        sqlite3_bind_int64(st, 1, r->global_position);
        rc = exists(c, n, st, &found);
    }
    if (rc == LSS_OK && found)
        return lss__err(c, LSS_ECONFLICT, "global position already exists: %lld",
                        (long long)r->global_position);
    if (rc == LSS_OK && (rc = wstmt(c, n, WS_HAS_POS, &st)) == LSS_OK) {
        sqlite3_bind_text(st, 1, r->stream, (int)r->stream_n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->position);
        rc = exists(c, n, st, &found);
    }
    if (rc == LSS_OK && found)
        return lss__err(c, LSS_ECONFLICT, "stream position already exists: %.*s %lld",
                        (int)r->stream_n, r->stream, (long long)r->position);
    uint8_t id[16];
    lss__uuid_parse(r->id, r->id_n, id);
    if (rc == LSS_OK && (rc = wstmt(c, n, WS_FIND, &st)) == LSS_OK) {
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        rc = exists(c, n, st, &found);
    }
    if (rc == LSS_OK && found) {
        char text[36];
        lss__uuid_format(id, text);
        return lss__err(c, LSS_ECONFLICT, "message id already exists: %.36s", text);
    }
    if (rc != LSS_OK || (rc = wstmt(c, n, WS_IMPORT, &st)) != LSS_OK)
        return rc;
    const char *card;
    size_t card_n;
    int64_t h = 0;
    int has_hash = lss_cardinal_id(r->stream, r->stream_n, &card, &card_n) &&
                   card_n > 0;
    if (has_hash && lss__hash64_ctx(q->md5, q->md5_md, card, card_n, &h) != 0)
        return lss__err(c, LSS_EINTERNAL, "md5 failed");
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->stream, (int)r->stream_n, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->type, (int)r->type_n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->position);
    if (r->data)
        sqlite3_bind_text(st, 5, r->data, (int)r->data_n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    if (r->metadata)
        sqlite3_bind_text(st, 6, r->metadata, (int)r->metadata_n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, r->time_us);
    sqlite3_bind_text(st, 8, r->stream,
                      (int)lss_category_len(r->stream, r->stream_n), SQLITE_STATIC);
    if (has_hash)
        sqlite3_bind_int64(st, 9, h);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int64(st, 10, r->global_position);
    int s2 = sqlite3_step(st);
    sqlite3_reset(st);
    if (s2 != SQLITE_DONE)
        return sq_err(c, n->w.db, s2, "import failed");
    return LSS_OK;
}

static int sq_import(lss_conn *c, lss__ns *ns, const lss_import_rec *recs,
                     size_t count, size_t *bad_index)
{
    sq_ns *n = ns->be;
    int rc = run(c, n, WS_BEGIN);
    if (rc != LSS_OK)
        return rc;
    vc_clear(n); /* imports set positions of their own */
    for (size_t i = 0; i < count; i++) {
        rc = import_one(c, n, &recs[i]);
        if (rc != LSS_OK) {
            rollback(c, n);
            *bad_index = i;
            return rc;
        }
    }
    rc = run(c, n, WS_COMMIT);
    if (rc != LSS_OK)
        rollback(c, n);
    return rc;
}

static int sq_clear(lss_conn *c, lss__ns *ns)
{
    sq_ns *n = ns->be;
    vc_clear(n);
    /* sqlite_sequence exists only in namespaces created with AUTOINCREMENT
     * (by earlier builds of this library); one transaction either way. */
    sqlite3_stmt *st = NULL;
    int seq = sqlite3_prepare_v2(n->w.db, "SELECT 1 FROM sqlite_master"
                                 " WHERE name = 'sqlite_sequence'", -1, &st,
                                 NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    int rc = exec(n->w.db, seq ? "BEGIN IMMEDIATE; DELETE FROM messages;"
                                 " DELETE FROM sqlite_sequence WHERE name = 'messages';"
                                 " COMMIT;"
                               : "BEGIN IMMEDIATE; DELETE FROM messages; COMMIT;");
    if (rc != SQLITE_OK) {
        int e = sq_err(c, n->w.db, rc, "clear failed");
        exec(n->w.db, "ROLLBACK");
        return e;
    }
    return LSS_OK;
}

const lss_backend_ops lss__sqlite_ops = {
    "sqlite",     sq_open,      sq_close,      sq_load,
    sq_ns_create, sq_ns_delete, sq_ns_free,    sq_ns_stats,
    sq_group_begin, sq_group_add, sq_group_end, sq_conn_open,
    sq_conn_close, sq_read,     sq_step,       sq_reset,
    sq_version,   sq_import,    sq_clear,
};
