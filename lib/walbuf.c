/* walbuf.c — a SQLite VFS shim that turns a commit's WAL writes into one
 * write() (see walbuf.h).
 *
 * SQLite appends a commit to the WAL frame by frame, with two write calls per
 * frame (its 24-byte header, then the page): a group commit of 8 appends
 * here is ~20 pwrite()s before the fdatasync().  This shim keeps the latest
 * contiguous run of WAL writes in a buffer and hands it to the real file in
 * one write when anything needs the file as it is:
 *
 *   - xSync (the commit's sync, and the WAL header's sync at a restart):
 *     flush, then sync -- the sync covers exactly what it covered before;
 *   - xRead, xTruncate, xFileSize, xFileControl, xClose: flush first, so the
 *     connection itself never sees the file behind its own writes;
 *   - a write that does not continue the run, or would overflow the buffer:
 *     flush first, so writes reach the file in SQLite's order.
 *
 * Only WAL files are buffered, and only on connections that commit with
 * synchronous=FULL (store_sqlite.c uses the shim for nothing else): there
 * every commit calls xSync on the WAL before it publishes the new frames
 * in the wal-index, so no other connection can look for frames that are
 * still in the buffer.  With NORMAL or OFF a commit publishes frames
 * without a sync, and this shim would be wrong.
 *
 * A crash before the flush loses only writes SQLite never synced, which a
 * power loss may lose anyway; the commit they belong to was not
 * acknowledged.  A write error at flush time is returned by the call that
 * flushed (for a commit: xSync), which fails the commit as the failed
 * write would have. */
#include "walbuf.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* A group commit of 8 W1 appends writes 7-11 frames (29-45 KB); a longer
 * run goes out in WB_CAP pieces.  One buffer per namespace writer, allocated
 * with SQLite's allocator at its first write (a thirtieth of SQLite's
 * default page cache of one connection). */
#define WB_CAP (64 * 1024)
#define WB_BASES 4          /* distinct default VFSes wrapped, per process */

typedef struct wb_vfs {
    sqlite3_vfs vfs;        /* ours: registered under name */
    sqlite3_vfs *base;      /* the VFS it wraps */
    char name[48];
} wb_vfs;

typedef struct wb_file {
    sqlite3_file file;      /* pMethods = &wb_io */
    sqlite3_file *real;     /* the base VFS's file, right after this struct */
    int wal;                /* buffer writes (a WAL file) */
    char *buf;              /* WB_CAP bytes once the first write came */
    size_t n;               /* bytes buffered */
    sqlite3_int64 at;       /* file offset of buf[0] */
} wb_file;

static int flush(wb_file *f)
{
    if (!f->n)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->n, f->at);
    f->n = 0;
    return rc;
}

static int wb_close(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
    wb_file *f = (wb_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int wb_write(sqlite3_file *p, const void *in, int amt, sqlite3_int64 off)
{
    wb_file *f = (wb_file *)p;
    if (!f->wal || amt <= 0)
        return f->real->pMethods->xWrite(f->real, in, amt, off);
    size_t a = (size_t)amt;
    if (f->n && (off != f->at + (sqlite3_int64)f->n || f->n + a > WB_CAP)) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    /* Too long to buffer, or no buffer to be had: write it through. */
    if (a > WB_CAP || (!f->buf && !(f->buf = sqlite3_malloc(WB_CAP))))
        return f->real->pMethods->xWrite(f->real, in, amt, off);
    if (!f->n)
        f->at = off;
    memcpy(f->buf + f->n, in, a);
    f->n += a;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    wb_file *f = (wb_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *p, int flags)
{
    wb_file *f = (wb_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    wb_file *f = (wb_file *)p;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_lock(sqlite3_file *p, int lock)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xLock(f->real, lock);
}

static int wb_unlock(sqlite3_file *p, int lock)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xUnlock(f->real, lock);
}

static int wb_check_reserved(sqlite3_file *p, int *out)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wb_file_control(sqlite3_file *p, int op, void *arg)
{
    wb_file *f = (wb_file *)p;
    if (f->wal) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_sector_size(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wb_device(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int wb_shm_map(sqlite3_file *p, int pg, int pgsz, int extend,
                      void volatile **out)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

static int wb_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wb_shm_barrier(sqlite3_file *p)
{
    wb_file *f = (wb_file *)p;
    f->real->pMethods->xShmBarrier(f->real);
}

static int wb_shm_unmap(sqlite3_file *p, int del)
{
    wb_file *f = (wb_file *)p;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static int wb_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **out)
{
    wb_file *f = (wb_file *)p;
    if (f->real->pMethods->iVersion < 3) {
        *out = NULL;
        return SQLITE_OK;
    }
    return f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int wb_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
    wb_file *f = (wb_file *)p;
    if (f->real->pMethods->iVersion < 3)
        return SQLITE_OK;
    return f->real->pMethods->xUnfetch(f->real, off, ptr);
}

static const sqlite3_io_methods wb_io = {
    3,
    wb_close, wb_read, wb_write, wb_truncate, wb_sync, wb_file_size,
    wb_lock, wb_unlock, wb_check_reserved, wb_file_control, wb_sector_size,
    wb_device, wb_shm_map, wb_shm_lock, wb_shm_barrier, wb_shm_unmap,
    wb_fetch, wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p,
                   int flags, int *out_flags)
{
    wb_vfs *v = (wb_vfs *)vfs;
    wb_file *f = (wb_file *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = v->base->xOpen(v->base, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        /* SQLite calls xClose only when pMethods is set. */
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        p->pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    p->pMethods = &wb_io;
    return SQLITE_OK;
}

/* The rest of the VFS is the base's. */
static int wb_delete(sqlite3_vfs *vfs, const char *name, int dirsync)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xDelete(b, name, dirsync);
}

static int wb_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xAccess(b, name, flags, out);
}

static int wb_full_path(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xFullPathname(b, name, n, out);
}

static void *wb_dlopen(sqlite3_vfs *vfs, const char *name)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xDlOpen(b, name);
}

static void wb_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    b->xDlError(b, n, out);
}

static void (*wb_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xDlSym(b, h, sym);
}

static void wb_dlclose(sqlite3_vfs *vfs, void *h)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    b->xDlClose(b, h);
}

static int wb_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xRandomness(b, n, out);
}

static int wb_sleep(sqlite3_vfs *vfs, int us)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xSleep(b, us);
}

static int wb_current_time(sqlite3_vfs *vfs, double *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xCurrentTime(b, out);
}

static int wb_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    return b->xGetLastError ? b->xGetLastError(b, n, out) : 0;
}

static int wb_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *b = ((wb_vfs *)vfs)->base;
    if (b->iVersion >= 2 && b->xCurrentTimeInt64)
        return b->xCurrentTimeInt64(b, out);
    double d = 0;
    int rc = b->xCurrentTime(b, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

static wb_vfs g_vfs[WB_BASES];
static int g_n;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

const char *lss__walbuf_vfs(void)
{
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base)
        return NULL;
    const char *name = NULL;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_n && !name; i++)
        if (g_vfs[i].base == base || &g_vfs[i].vfs == base)
            name = g_vfs[i].name;
    if (!name && g_n < WB_BASES) {
        wb_vfs *v = &g_vfs[g_n];
        snprintf(v->name, sizeof v->name, "lss-walbuf-%d", g_n);
        v->base = base;
        sqlite3_vfs *s = &v->vfs;
        memset(s, 0, sizeof *s);
        s->iVersion = 2;
        s->szOsFile = (int)sizeof(wb_file) + base->szOsFile;
        s->mxPathname = base->mxPathname;
        s->zName = v->name;
        s->xOpen = wb_open;
        s->xDelete = wb_delete;
        s->xAccess = wb_access;
        s->xFullPathname = wb_full_path;
        s->xDlOpen = wb_dlopen;
        s->xDlError = wb_dlerror;
        s->xDlSym = wb_dlsym;
        s->xDlClose = wb_dlclose;
        s->xRandomness = wb_randomness;
        s->xSleep = wb_sleep;
        s->xCurrentTime = wb_current_time;
        s->xGetLastError = wb_last_error;
        s->xCurrentTimeInt64 = wb_current_time64;
        if (sqlite3_vfs_register(s, 0) == SQLITE_OK) {
            g_n++;
            name = v->name;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return name;
}
