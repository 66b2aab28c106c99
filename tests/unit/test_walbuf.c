/* test_walbuf.c — lib/walbuf.c: a durable commit reaches the WAL in one
 * write and still syncs it; buffered frames are never read stale (a
 * transaction larger than the page cache spills frames and reads them
 * back); stores that commit without a sync are not buffered at all.
 *
 * A counting VFS over "unix", registered as the default before anything is
 * opened, sees what reaches the file system: writes and syncs per file. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "streamstore.h"
#include "walbuf.h"

/* ---- counting VFS ------------------------------------------------------ */

typedef struct cnt_file {
    sqlite3_file file;
    sqlite3_file *real;
    int wal;
} cnt_file;

static sqlite3_vfs *g_unix;
static sqlite3_vfs g_cnt;
/* WAL writes since the last WAL sync, and the most of them seen before a
 * sync; syncs of WAL files. */
static int g_wal_writes, g_max_writes_per_sync, g_wal_syncs;

static int c_close(sqlite3_file *p)
{
    return ((cnt_file *)p)->real->pMethods->xClose(((cnt_file *)p)->real);
}
static int c_read(sqlite3_file *p, void *o, int n, sqlite3_int64 at)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xRead(f->real, o, n, at);
}
static int c_write(sqlite3_file *p, const void *i, int n, sqlite3_int64 at)
{
    cnt_file *f = (cnt_file *)p;
    if (f->wal)
        g_wal_writes++;
    return f->real->pMethods->xWrite(f->real, i, n, at);
}
static int c_truncate(sqlite3_file *p, sqlite3_int64 n)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xTruncate(f->real, n);
}
static int c_sync(sqlite3_file *p, int flags)
{
    cnt_file *f = (cnt_file *)p;
    if (f->wal) {
        g_wal_syncs++;
        if (g_wal_writes > g_max_writes_per_sync)
            g_max_writes_per_sync = g_wal_writes;
        g_wal_writes = 0;
    }
    return f->real->pMethods->xSync(f->real, flags);
}
static int c_size(sqlite3_file *p, sqlite3_int64 *n)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xFileSize(f->real, n);
}
static int c_lock(sqlite3_file *p, int l)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xLock(f->real, l);
}
static int c_unlock(sqlite3_file *p, int l)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xUnlock(f->real, l);
}
static int c_reserved(sqlite3_file *p, int *o)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, o);
}
static int c_fcntl(sqlite3_file *p, int op, void *a)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xFileControl(f->real, op, a);
}
static int c_sector(sqlite3_file *p)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xSectorSize(f->real);
}
static int c_device(sqlite3_file *p)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}
static int c_shm_map(sqlite3_file *p, int pg, int sz, int ext, void volatile **o)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xShmMap(f->real, pg, sz, ext, o);
}
static int c_shm_lock(sqlite3_file *p, int off, int n, int fl)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xShmLock(f->real, off, n, fl);
}
static void c_shm_barrier(sqlite3_file *p)
{
    cnt_file *f = (cnt_file *)p;
    f->real->pMethods->xShmBarrier(f->real);
}
static int c_shm_unmap(sqlite3_file *p, int del)
{
    cnt_file *f = (cnt_file *)p;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static const sqlite3_io_methods c_io = {
    2, c_close, c_read, c_write, c_truncate, c_sync, c_size, c_lock,
    c_unlock, c_reserved, c_fcntl, c_sector, c_device, c_shm_map,
    c_shm_lock, c_shm_barrier, c_shm_unmap, NULL, NULL,
};

static int c_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *p,
                  int flags, int *out)
{
    (void)v;
    cnt_file *f = (cnt_file *)p;
    f->real = (sqlite3_file *)(f + 1);
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = g_unix->xOpen(g_unix, name, f->real, flags, out);
    p->pMethods = rc == SQLITE_OK ? &c_io : NULL;
    return rc;
}
static int c_delete(sqlite3_vfs *v, const char *n, int d)
{
    (void)v;
    return g_unix->xDelete(g_unix, n, d);
}
static int c_access(sqlite3_vfs *v, const char *n, int fl, int *o)
{
    (void)v;
    return g_unix->xAccess(g_unix, n, fl, o);
}
static int c_full(sqlite3_vfs *v, const char *n, int k, char *o)
{
    (void)v;
    return g_unix->xFullPathname(g_unix, n, k, o);
}
static int c_random(sqlite3_vfs *v, int n, char *o)
{
    (void)v;
    return g_unix->xRandomness(g_unix, n, o);
}
static int c_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return g_unix->xSleep(g_unix, us);
}
static int c_time(sqlite3_vfs *v, double *o)
{
    (void)v;
    return g_unix->xCurrentTime(g_unix, o);
}

static int setup_vfs(void **state)
{
    (void)state;
    g_unix = sqlite3_vfs_find("unix");
    assert_non_null(g_unix);
    memset(&g_cnt, 0, sizeof g_cnt);
    g_cnt.iVersion = 1;
    g_cnt.szOsFile = (int)sizeof(cnt_file) + g_unix->szOsFile;
    g_cnt.mxPathname = g_unix->mxPathname;
    g_cnt.zName = "counting";
    g_cnt.xOpen = c_open;
    g_cnt.xDelete = c_delete;
    g_cnt.xAccess = c_access;
    g_cnt.xFullPathname = c_full;
    g_cnt.xRandomness = c_random;
    g_cnt.xSleep = c_sleep;
    g_cnt.xCurrentTime = c_time;
    return sqlite3_vfs_register(&g_cnt, 1) == SQLITE_OK ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------ */

static void make_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/lss-walbuf-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

/* Append n single messages to n streams in one lss_append_many call: one
 * commit group, one transaction. */
static void append_group(lss_conn *c, int n, int base)
{
    static char streams[64][32];
    lss_append a[64];
    lss_msg_in m[64];
    assert_true(n <= 64);
    memset(a, 0, sizeof a);
    memset(m, 0, sizeof m);
    for (int i = 0; i < n; i++) {
        snprintf(streams[i], sizeof streams[i], "acct-%d", (base + i) % 100);
        m[i].type = "T";
        m[i].type_n = 1;
        m[i].data = "{\"k\":\"some payload to fill a page or two of WAL\"}";
        m[i].data_n = strlen(m[i].data);
        a[i].ns = "default";
        a[i].ns_n = 7;
        a[i].stream = streams[i];
        a[i].stream_n = strlen(streams[i]);
        a[i].msgs = &m[i];
        a[i].count = 1;
    }
    assert_int_equal(lss_append_many(c, a, (size_t)n), LSS_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(a[i].rc, LSS_OK);
}

static int64_t count_all(lss_conn *c)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.batch_size = 0;
    lss_cursor *cur;
    assert_int_equal(lss_read_category(c, "default", 7, "", 0, &o, &cur), LSS_OK);
    const lss_message *m;
    int64_t n = 0;
    int rc;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW)
        n++;
    assert_int_equal(rc, LSS_DONE);
    lss_cursor_close(cur);
    return n;
}

/* Open a file store with the given sync level, create "default", append
 * `groups` groups of 16, and return how many messages a second session
 * reads back. */
static int64_t run_store(int sync, int groups)
{
    char dir[64];
    make_dir(dir, sizeof dir);
    lss_options o;
    lss_options_init(&o);
    o.sync = sync;
    lss_db *db;
    assert_int_equal(lss_open(dir, &o, &db), LSS_OK);
    lss_conn *c, *r;
    assert_int_equal(lss_conn_open(db, &c), LSS_OK);
    assert_int_equal(lss_conn_open(db, &r), LSS_OK);
    char tok[LSS_TOKEN_MAX];
    size_t tn;
    assert_int_equal(lss_ns_create(c, "default", 7, "", 0, NULL, 0, tok,
                                   sizeof tok, &tn, NULL), LSS_OK);
    g_wal_writes = g_max_writes_per_sync = g_wal_syncs = 0;
    for (int g = 0; g < groups; g++) {
        append_group(c, 16, g * 16);
        /* Another session sees each commit at once: nothing it needs is
         * still in the writer's buffer. */
        assert_int_equal(count_all(r), (int64_t)(g + 1) * 16);
    }
    int64_t n = count_all(r);
    lss_conn_close(r);
    lss_conn_close(c);
    lss_close(db);
    rm_tree(dir);
    return n;
}

/* ---- tests -------------------------------------------------------------- */

static void full_sync_should_write_each_commit_to_the_wal_at_once(void **state)
{
    (void)state;
    assert_int_equal(run_store(LSS_SYNC_FULL, 50), 800);
    /* 50 commits (plus the namespace's own), each synced ... */
    assert_true(g_wal_syncs >= 50);
    /* ... and each reaching the WAL in one write (16 messages are ~5 frames,
     * 10 writes without the shim). */
    assert_int_equal(g_max_writes_per_sync, 1);
}

static void normal_sync_should_not_be_buffered(void **state)
{
    (void)state;
    /* NORMAL publishes frames without a sync: the shim must stay out, or
     * other sessions would read frames still in its buffer.  The writes go
     * to the file one by one, and are counted only at a (checkpoint) sync,
     * so look at the writes since the last sync. */
    assert_int_equal(run_store(LSS_SYNC_NORMAL, 50), 800);
    assert_true(g_wal_writes + g_max_writes_per_sync > 50);
}

/* A transaction larger than a 10-page cache spills frames to the WAL before
 * its commit and reads them back: the shim must hand its buffer to the file
 * before any read.  Directly on SQLite, through the shim. */
static void spilled_frames_should_read_back_through_the_buffer(void **state)
{
    (void)state;
    char dir[64], path[96];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.db", dir);
    const char *vfs = lss__walbuf_vfs();
    assert_non_null(vfs);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db,
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                  " PRAGMA cache_size=10;"
                                  " CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
                                  " CREATE INDEX t_v ON t(v);"
                                  " BEGIN;"
                                  " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                                  "  FROM n WHERE i < 3000)"
                                  " INSERT INTO t SELECT i, printf('%0400d', i * 7919 % 3001)"
                                  "  FROM n;"
                                  " UPDATE t SET v = v || 'x' WHERE k % 3 = 0;"
                                  " COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    /* A plain connection (the default VFS, no shim) sees all of it. */
    sqlite3 *other;
    assert_int_equal(sqlite3_open_v2(path, &other, SQLITE_OPEN_READONLY, "unix"),
                     SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(other,
                                        "SELECT count(*), sum(length(v)),"
                                        " (SELECT integrity_check FROM pragma_integrity_check)"
                                        " FROM t",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 3000);
    assert_int_equal(sqlite3_column_int64(st, 1), 3000 * 400 + 1000);
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "ok");
    sqlite3_finalize(st);
    sqlite3_close(other);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_sync_should_write_each_commit_to_the_wal_at_once),
        cmocka_unit_test(normal_sync_should_not_be_buffered),
        cmocka_unit_test(spilled_frames_should_read_back_through_the_buffer),
    };
    return cmocka_run_group_tests(tests, setup_vfs, NULL);
}
