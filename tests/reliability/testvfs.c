/* testvfs.c — a test-only SQLite VFS wrapper over "unix": power loss and
 * I/O faults (RELIABILITY.md "Power loss (SQLite)" and "I/O faults").
 *
 * The durability model.  A write() that returned sits in the page cache; a
 * SIGKILL of the process loses nothing of it, a power cut may lose any of
 * it until fsync() returns.  So, for every file opened under the data
 * directory:
 *   - xWrite goes to the real file (the process reads its own writes) and
 *     is first appended to the file's pending log <shadow>/<name>.pending;
 *   - xTruncate is logged the same way (it is not durable before a sync);
 *   - xSync makes the pending log durable: it is renamed to .applying,
 *     applied to the durable shadow <shadow>/<name>.durable, and removed.
 *     The real fsync is not called: the shadow, not the disk, is what the
 *     test treats as durable.  A sync takes sync_latency_us first, as a
 *     device flush does: a kill at a random moment then often finds writes
 *     in flight, which is what the test is about (without it the window
 *     between a commit's writes and its sync is a few microseconds);
 *   - xDelete is immediate and durable, and so is creating a file (SQLite
 *     fsyncs the directory after creating a WAL or journal, and the unix
 *     VFS does that inside xSync, below this wrapper);
 *   - the -shm file is not opened through xOpen (the unix VFS maps it
 *     itself) and is not durable state: SQLite rebuilds it from the WAL.
 * The shadow of a file starts as a copy of the file when it is first
 * opened: what a process finds on disk at start is durable by definition.
 *
 * After the writer is SIGKILLed, tv_reboot() rebuilds each file as its
 * durable shadow plus what the chosen mode lets through of the pending log,
 * in issue order: nothing (TV_DROP), a prefix (TV_PREFIX: a disk or
 * elevator that writes in order), or any subset (TV_SUBSET: a write cache
 * that reorders freely between flushes).  A write that reaches the disk may
 * be torn at 512-byte sector boundaries: some of its sectors land, others
 * do not.  What is never done, because no disk SQLite supports does it: a
 * sector is never torn inside, and bytes outside a write are never changed
 * (the unix VFS reports SQLITE_IOCAP_POWERSAFE_OVERWRITE, and SQLite relies
 * on it).  Tearing at 512 bytes is finer than the 4096-byte sector the
 * unix VFS reports; SQLite's WAL does not depend on sector atomicity (every
 * frame is checksummed), and the database file is written only by
 * checkpoints, which sync it before the WAL may be reset.  Each file is
 * rebuilt independently: a disk may order writes to two files either way.
 *
 * A kill may land inside xSync.  The rename to .applying is the moment the
 * sync "happens": a .applying log is always applied whole on reboot (the
 * disk wrote everything before the cut), never partially, because the kill
 * may have landed after part of it was already copied into the shadow.
 * This means a kill inside a sync never drops that sync's writes; the
 * writes still pending before the rename are dropped or torn as above.
 * The log itself is written with one writev() per record; a record cut
 * short by the kill is ignored (the write it logs had not returned).
 *
 * Fault injection counts xRead, xWrite and xSync calls on every file and
 * fails the n-th (and, when persistent, every later) call of one kind.
 *
 * Global state: a VFS is process-wide by nature (SQLite's own registry is
 * global), so the wrapper's state is one static structure under a mutex. */
#include "testvfs.h"
#include "xorshift.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sqlite3.h>

#define TV_MAX_TRACKS 64
#define TV_SECTOR 512
#define TV_PATH (PATH_MAX + NAME_MAX + 16)

enum { REC_WRITE = 1, REC_TRUNCATE = 2 };

/* One pending-log record; REC_WRITE is followed by len bytes. */
typedef struct tv_rec {
    int64_t kind;
    int64_t off; /* REC_TRUNCATE: the new size */
    int64_t len;
} tv_rec;

/* One shadowed file, shared by every handle open on it. */
typedef struct tv_track {
    char name[NAME_MAX + 1]; /* in the data directory */
    int log_fd;              /* open pending log; -1 when none */
    int dead;                /* the file was deleted */
} tv_track;

typedef struct tv_file {
    sqlite3_file base;
    tv_track *track; /* NULL: not shadowed */
    sqlite3_file *real;
} tv_file;

static struct {
    pthread_mutex_t lock;
    sqlite3_vfs vfs;
    sqlite3_vfs *real;
    int installed;
    char data_dir[PATH_MAX];
    char shadow_dir[PATH_MAX];
    int powerloss;
    long sync_latency_us;
    tv_track tracks[TV_MAX_TRACKS];
    size_t ntracks;
    int fault_on, fault_persistent, fault_rc;
    tv_op fault_op;
    long fault_n, fault_calls, fault_hits;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------ helpers */

static void shadow_path(char *out, size_t cap, const char *name, const char *sfx)
{
    snprintf(out, cap, "%s/%s%s", G.shadow_dir, name, sfx);
}

static int write_all(int fd, const void *p, size_t n, off_t off)
{
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* The whole file in a malloc'ed buffer (NULL, *n = 0 when absent). */
static char *slurp(const char *path, size_t *n)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
        ssize_t r = 0;
        size_t have = 0;
        while (have < (size_t)st.st_size &&
               ((r = pread(fd, buf + have, (size_t)st.st_size - have, (off_t)have)) > 0 ||
                (r < 0 && errno == EINTR)))
            have += r > 0 ? (size_t)r : 0;
        *n = have;
    }
    close(fd);
    return buf;
}

static int copy_file(const char *from, const char *to)
{
    size_t n;
    char *buf = slurp(from, &n);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -1 : write_all(fd, buf ? buf : "", n, 0);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* Walks the records of a log image; returns the next record or NULL at the
 * end or at a record the kill cut short. */
static const tv_rec *next_rec(const char *log, size_t n, size_t *pos, const char **data)
{
    if (n - *pos < sizeof(tv_rec))
        return NULL;
    const tv_rec *r = (const tv_rec *)(const void *)(log + *pos);
    size_t body = r->kind == REC_WRITE ? (size_t)r->len : 0;
    if (n - *pos - sizeof(tv_rec) < body)
        return NULL;
    *data = log + *pos + sizeof(tv_rec);
    *pos += sizeof(tv_rec) + body;
    return r;
}

/* Bytes [from, to) of write r (relative to r->off) into fd. */
static int apply_part(int fd, const tv_rec *r, const char *data, int64_t from, int64_t to)
{
    if (r->kind == REC_TRUNCATE)
        return ftruncate(fd, r->off);
    return write_all(fd, data + from, (size_t)(to - from), (off_t)(r->off + from));
}

static int apply_whole(int fd, const tv_rec *r, const char *data)
{
    return apply_part(fd, r, data, 0, r->len);
}

/* Applies every record of the log at path to the durable file fd. */
static int apply_log(const char *path, int fd, long *count)
{
    size_t n, pos = 0;
    char *log = slurp(path, &n);
    const char *data;
    const tv_rec *r;
    int rc = 0;
    while (rc == 0 && (r = next_rec(log, n, &pos, &data))) {
        rc = apply_whole(fd, r, data);
        ++*count;
    }
    free(log);
    return rc;
}

/* ------------------------------------------------------------- shadow */

static int is_tracked_path(const char *path, const char **name)
{
    size_t dn = strlen(G.data_dir);
    if (!G.powerloss || !path || strncmp(path, G.data_dir, dn) || path[dn] != '/')
        return 0;
    *name = path + dn + 1;
    size_t n = strlen(*name);
    return n > 0 && n <= NAME_MAX && !strchr(*name, '/') &&
           !(n > 4 && !strcmp(*name + n - 4, "-shm"));
}

static tv_track *find_track(const char *name)
{
    for (size_t i = 0; i < G.ntracks; i++)
        if (!G.tracks[i].dead && !strcmp(G.tracks[i].name, name))
            return &G.tracks[i];
    return NULL;
}

/* The track of a file being opened; its shadow starts as a copy of what
 * is on disk now (copied under a temporary name so that a kill mid-copy
 * leaves no shadow, and the real file, still untouched, counts). */
static tv_track *open_track(const char *path, const char *name)
{
    tv_track *t = find_track(name);
    if (t || G.ntracks == TV_MAX_TRACKS)
        return t;
    char tmp[TV_PATH], durable[TV_PATH];
    shadow_path(tmp, sizeof tmp, name, ".durable.tmp");
    shadow_path(durable, sizeof durable, name, ".durable");
    if (copy_file(path, tmp) != 0 || rename(tmp, durable) != 0)
        return NULL;
    t = &G.tracks[G.ntracks++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->log_fd = -1;
    t->dead = 0;
    return t;
}

static int log_append(tv_track *t, const tv_rec *r, const void *data)
{
    if (t->log_fd < 0) {
        char path[TV_PATH];
        shadow_path(path, sizeof path, t->name, ".pending");
        t->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (t->log_fd < 0)
            return -1;
    }
    struct iovec iov[2] = {{(void *)r, sizeof *r}, {(void *)data, (size_t)r->len}};
    size_t want = sizeof *r + (r->kind == REC_WRITE ? (size_t)r->len : 0);
    ssize_t w;
    while ((w = writev(t->log_fd, iov, r->kind == REC_WRITE ? 2 : 1)) < 0 && errno == EINTR) {
    }
    return w == (ssize_t)want ? 0 : -1;
}

/* fsync: the pending log becomes durable (see the header on .applying). */
static int sync_track(tv_track *t)
{
    if (t->log_fd < 0)
        return 0;
    close(t->log_fd);
    t->log_fd = -1;
    char pending[TV_PATH], applying[TV_PATH], durable[TV_PATH];
    shadow_path(pending, sizeof pending, t->name, ".pending");
    shadow_path(applying, sizeof applying, t->name, ".applying");
    shadow_path(durable, sizeof durable, t->name, ".durable");
    if (rename(pending, applying) != 0)
        return -1;
    int fd = open(durable, O_WRONLY | O_CLOEXEC);
    long count = 0;
    int rc = fd < 0 ? -1 : apply_log(applying, fd, &count);
    if (fd >= 0)
        close(fd);
    return rc == 0 ? unlink(applying) : -1;
}

static void drop_track(const char *name)
{
    tv_track *t = find_track(name);
    static const char *const sfx[] = {".durable", ".pending", ".applying"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char path[TV_PATH];
        shadow_path(path, sizeof path, name, sfx[i]);
        unlink(path);
    }
    if (!t)
        return;
    /* The slot stays, dead, and is never reused: a handle still open on
     * the deleted file points at it, and must not log into another file. */
    if (t->log_fd >= 0)
        close(t->log_fd);
    t->log_fd = -1;
    t->dead = 1;
}

/* -------------------------------------------------------------- faults */

/* The SQLite code to fail this call of op with, or SQLITE_OK. */
static int fault_check(tv_op op)
{
    pthread_mutex_lock(&G.lock);
    int rc = SQLITE_OK;
    if (G.fault_on && G.fault_op == op) {
        long k = ++G.fault_calls;
        if (k == G.fault_n || (G.fault_persistent && k > G.fault_n)) {
            G.fault_hits++;
            rc = G.fault_rc;
        }
    }
    pthread_mutex_unlock(&G.lock);
    return rc;
}

void tv_fault_arm(tv_op op, long n, int persistent, int rc)
{
    pthread_mutex_lock(&G.lock);
    G.fault_on = 1;
    G.fault_op = op;
    G.fault_n = n;
    G.fault_persistent = persistent;
    G.fault_rc = rc;
    G.fault_calls = G.fault_hits = 0;
    pthread_mutex_unlock(&G.lock);
}

long tv_fault_disarm(void)
{
    pthread_mutex_lock(&G.lock);
    G.fault_on = 0;
    long hits = G.fault_hits;
    pthread_mutex_unlock(&G.lock);
    return hits;
}

/* ---------------------------------------------------------- io methods */

#define REAL(f) (((tv_file *)(f))->real)

static int tv_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods->xClose(REAL(f));
    return rc;
}

static int tv_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    int rc = fault_check(TV_READ);
    if (rc != SQLITE_OK)
        return rc;
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int tv_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    int rc = fault_check(TV_WRITE);
    if (rc != SQLITE_OK)
        return rc;
    tv_file *t = (tv_file *)f;
    if (t->track) {
        tv_rec r = {REC_WRITE, off, n};
        pthread_mutex_lock(&G.lock);
        int lrc = t->track->dead ? 0 : log_append(t->track, &r, buf);
        pthread_mutex_unlock(&G.lock);
        if (lrc != 0)
            return SQLITE_IOERR_WRITE;
    }
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int tv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    tv_file *t = (tv_file *)f;
    if (t->track) {
        tv_rec r = {REC_TRUNCATE, size, 0};
        pthread_mutex_lock(&G.lock);
        int lrc = t->track->dead ? 0 : log_append(t->track, &r, NULL);
        pthread_mutex_unlock(&G.lock);
        if (lrc != 0)
            return SQLITE_IOERR_TRUNCATE;
    }
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int tv_sync(sqlite3_file *f, int flags)
{
    int rc = fault_check(TV_SYNC);
    if (rc != SQLITE_OK)
        return rc;
    tv_file *t = (tv_file *)f;
    if (!t->track)
        return REAL(f)->pMethods->xSync(REAL(f), flags);
    if (G.sync_latency_us)
        usleep((useconds_t)G.sync_latency_us); /* the device at work */
    pthread_mutex_lock(&G.lock);
    int src = t->track->dead ? 0 : sync_track(t->track);
    pthread_mutex_unlock(&G.lock);
    return src == 0 ? SQLITE_OK : SQLITE_IOERR_FSYNC;
}

static int tv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int tv_lock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int tv_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int tv_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int tv_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int tv_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int tv_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int tv_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int tv_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void tv_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int tv_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

/* No memory-mapped I/O through the wrapper: every read is an xRead that
 * faults can hit (SQLite falls back to xRead when xFetch gives NULL). */
static int tv_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    (void)f;
    (void)off;
    (void)n;
    *pp = NULL;
    return SQLITE_OK;
}

static int tv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    (void)f;
    (void)off;
    (void)p;
    return SQLITE_OK;
}

static const sqlite3_io_methods TV_IO = {
    3,           tv_close,      tv_read,           tv_write,        tv_truncate,
    tv_sync,     tv_file_size,  tv_lock,           tv_unlock,       tv_check_reserved,
    tv_file_control, tv_sector_size, tv_device_characteristics, tv_shm_map, tv_shm_lock,
    tv_shm_barrier, tv_shm_unmap, tv_fetch,        tv_unfetch,
};

/* ---------------------------------------------------------- vfs methods */

static int tv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    (void)vfs;
    tv_file *t = (tv_file *)f;
    t->base.pMethods = NULL;
    t->track = NULL;
    t->real = (sqlite3_file *)(t + 1);
    int rc = G.real->xOpen(G.real, name, t->real, flags, out_flags);
    if (rc != SQLITE_OK || !t->real->pMethods)
        return rc;
    const char *base;
    pthread_mutex_lock(&G.lock);
    if (is_tracked_path(name, &base)) {
        t->track = open_track(name, base);
        if (!t->track)
            rc = SQLITE_CANTOPEN;
    }
    pthread_mutex_unlock(&G.lock);
    if (rc != SQLITE_OK) {
        t->real->pMethods->xClose(t->real);
        return rc;
    }
    t->base.pMethods = &TV_IO;
    return SQLITE_OK;
}

/* Shadow first, then the file: a kill in between leaves the real file,
 * which SQLite was deleting anyway (a WAL after its last checkpoint). */
static int tv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    const char *base;
    pthread_mutex_lock(&G.lock);
    if (is_tracked_path(name, &base))
        drop_track(base);
    pthread_mutex_unlock(&G.lock);
    return G.real->xDelete(G.real, name, sync_dir);
}

static int tv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return G.real->xAccess(G.real, name, flags, out);
}

static int tv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return G.real->xFullPathname(G.real, name, n, out);
}

static void *tv_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return G.real->xDlOpen(G.real, name);
}

static void tv_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    G.real->xDlError(G.real, n, out);
}

static void (*tv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return G.real->xDlSym(G.real, h, sym);
}

static void tv_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    G.real->xDlClose(G.real, h);
}

static int tv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return G.real->xRandomness(G.real, n, out);
}

static int tv_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return G.real->xSleep(G.real, us);
}

static int tv_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return G.real->xCurrentTime(G.real, out);
}

static int tv_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return G.real->xGetLastError(G.real, n, out);
}

static int tv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return G.real->xCurrentTimeInt64(G.real, out);
}

int tv_install(void)
{
    if (G.installed)
        return SQLITE_OK;
    G.real = sqlite3_vfs_find("unix");
    if (!G.real)
        return SQLITE_ERROR;
    sqlite3_vfs *v = &G.vfs;
    memset(v, 0, sizeof *v);
    v->iVersion = 2;
    v->szOsFile = (int)sizeof(tv_file) + G.real->szOsFile;
    v->mxPathname = G.real->mxPathname;
    v->zName = "lss-testvfs";
    v->xOpen = tv_open;
    v->xDelete = tv_delete;
    v->xAccess = tv_access;
    v->xFullPathname = tv_full_pathname;
    v->xDlOpen = tv_dlopen;
    v->xDlError = tv_dlerror;
    v->xDlSym = tv_dlsym;
    v->xDlClose = tv_dlclose;
    v->xRandomness = tv_randomness;
    v->xSleep = tv_sleep;
    v->xCurrentTime = tv_current_time;
    v->xGetLastError = tv_get_last_error;
    v->xCurrentTimeInt64 = tv_current_time_int64;
    int rc = sqlite3_vfs_register(v, 1);
    G.installed = rc == SQLITE_OK;
    return rc;
}

void tv_powerloss_start(const char *data_dir, const char *shadow_dir, long sync_latency_us)
{
    pthread_mutex_lock(&G.lock);
    snprintf(G.data_dir, sizeof G.data_dir, "%s", data_dir);
    snprintf(G.shadow_dir, sizeof G.shadow_dir, "%s", shadow_dir);
    G.ntracks = 0;
    G.powerloss = 1;
    G.sync_latency_us = sync_latency_us;
    pthread_mutex_unlock(&G.lock);
}

/* --------------------------------------------------------------- reboot */

/* Some of the 512-byte sectors of write r (at least one, not all when it
 * spans several): a torn write.  Returns 1 if it tore, 0 if the write was
 * too small to tear and was applied whole. */
static int apply_torn(int fd, const tv_rec *r, const char *data, unsigned *rng)
{
    int64_t first = r->off / TV_SECTOR, last = (r->off + r->len - 1) / TV_SECTOR;
    if (r->kind != REC_WRITE || r->len == 0 || first == last) {
        apply_whole(fd, r, data);
        return 0;
    }
    int64_t keep = first + (int64_t)(xorshift(rng) % (unsigned)(last - first + 1));
    for (int64_t s = first; s <= last; s++) {
        if (s != keep && xorshift(rng) % 2)
            continue; /* this sector did not make it */
        int64_t from = s * TV_SECTOR - r->off, to = from + TV_SECTOR;
        apply_part(fd, r, data, from < 0 ? 0 : from, to > r->len ? r->len : to);
    }
    return 1;
}

/* What mode lets through of one file's pending log. */
static int apply_pending(int fd, const char *path, tv_reboot_mode mode, unsigned *rng,
                         tv_reboot_stats *st)
{
    size_t n, pos = 0;
    char *log = slurp(path, &n);
    const char *data;
    const tv_rec *r;
    long total = 0;
    while (next_rec(log, n, &pos, &data))
        total++;
    long prefix = mode == TV_PREFIX ? (long)(xorshift(rng) % (unsigned)(total + 1)) : 0;
    pos = 0;
    int rc = 0;
    for (long i = 0; rc == 0 && (r = next_rec(log, n, &pos, &data)); i++) {
        st->pending++;
        unsigned pick = mode == TV_SUBSET ? xorshift(rng) % 3 : mode == TV_DROP ? 0 : i < prefix ? 1 : i == prefix ? 2 : 0;
        if (pick == 0) {
            st->dropped++;
        } else if (pick == 1) {
            rc = apply_whole(fd, r, data);
            st->applied++;
        } else if (apply_torn(fd, r, data, rng)) {
            st->torn++;
        } else {
            st->applied++;
        }
    }
    free(log);
    return rc;
}

/* Rebuild data_dir/name from its shadow. */
static int rebuild(const char *data_dir, const char *shadow_dir, const char *name,
                   tv_reboot_mode mode, unsigned *rng, tv_reboot_stats *st)
{
    char durable[TV_PATH], applying[TV_PATH], pending[TV_PATH];
    char real[TV_PATH];
    snprintf(durable, sizeof durable, "%s/%s.durable", shadow_dir, name);
    snprintf(applying, sizeof applying, "%s/%s.applying", shadow_dir, name);
    snprintf(pending, sizeof pending, "%s/%s.pending", shadow_dir, name);
    snprintf(real, sizeof real, "%s/%s", data_dir, name);
    int fd = open(durable, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long completed = 0;
    int rc = access(applying, F_OK) == 0 ? apply_log(applying, fd, &completed) : 0;
    st->sync_completed += completed > 0;
    if (rc == 0)
        rc = apply_pending(fd, pending, mode, rng, st);
    close(fd);
    st->files++;
    return rc == 0 ? rename(durable, real) : -1;
}

static int has_suffix(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n > m && !strcmp(s + n - m, sfx);
}

static void remove_matching(const char *dir, const char *sfx)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (sfx ? has_suffix(e->d_name, sfx) : e->d_name[0] != '.') {
            char path[PATH_MAX + NAME_MAX + 2];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

int tv_reboot(const char *data_dir, const char *shadow_dir, tv_reboot_mode mode,
              unsigned *rng, tv_reboot_stats *st)
{
    /* names first: rebuilding renames shadows out of the directory */
    char names[TV_MAX_TRACKS][NAME_MAX + 1];
    size_t n = 0;
    DIR *d = opendir(shadow_dir);
    if (!d && errno != ENOENT)
        return -1;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < TV_MAX_TRACKS)
        if (has_suffix(e->d_name, ".durable"))
            snprintf(names[n++], sizeof names[0], "%.*s",
                     (int)(strlen(e->d_name) - strlen(".durable")), e->d_name);
    if (d)
        closedir(d);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = rebuild(data_dir, shadow_dir, names[i], mode, rng, st);
    remove_matching(data_dir, "-shm");
    remove_matching(shadow_dir, NULL);
    return rc;
}
