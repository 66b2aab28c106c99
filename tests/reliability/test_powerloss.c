/* test_powerloss.c — RELIABILITY.md "Power loss (SQLite)": with
 * synchronous=FULL no acknowledged write is lost, nothing is duplicated,
 * no stream has a hole, and the files pass integrity_check when the power
 * goes at a random moment.
 *
 * The writer child of harness.c (single and batch appends, some with
 * expected versions, intent/ack over a pipe) runs on testvfs.c's
 * power-loss shadow: every write that was not fsynced when the parent
 * SIGKILLs the child is, on "reboot", dropped (all of them), kept as a
 * prefix, or kept as a random subset, each possibly torn at 512-byte
 * sectors; the -shm file is deleted.  Then the parent opens the store with
 * the library and checks every acknowledged append, and integrity_check
 * runs on each database file (read-only, after the library closed it).
 * The writer also checkpoints now and then (child_tick), so the power goes
 * during checkpoints and after WAL restarts too.  A first test checks the
 * model itself with SQLite alone.
 *
 * Negative control: with synchronous=NORMAL a WAL commit is acknowledged
 * before it is synced, so the same harness must find a lost
 * acknowledgement within the cycle budget, while integrity_check still
 * passes (NORMAL loses the latest commits, it does not corrupt).  There
 * the parent creates the namespace first: NORMAL would otherwise lose the
 * namespace itself, which the checker also counts, but then the control
 * would not show that it finds lost messages.
 *
 * LSS_POWERLOSS_CYCLES overrides the number of cycles, of the FULL test
 * and of the control's budget (default 100). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness.h"
#include "streamstore.h"
#include "testvfs.h"

/* A fast SSD's flush; keeps writes in flight at a good share of kills. */
#define SYNC_LATENCY_US 500

typedef struct powerloss {
    tv_reboot_stats st;
    long reboots[3]; /* by tv_reboot_mode */
} powerloss;

static void shadow_dir(const harness *h, char *out, size_t cap)
{
    snprintf(out, cap, "%s/shadow", h->dir);
}

/* In the writer: put the library's files on the power-loss shadow.  The
 * data directory is named as SQLite will name it (symlinks resolved), or
 * no file would match. */
static void child_setup(harness *h)
{
    char real[PATH_MAX], data[PATH_MAX + 8], shadow[PATH_MAX];
    shadow_dir(h, shadow, sizeof shadow);
    if ((mkdir(shadow, 0755) != 0 && errno != EEXIST) || !realpath(h->dir, real) ||
        tv_install() != SQLITE_OK)
        _exit(4);
    snprintf(data, sizeof data, "%s/data", real);
    tv_powerloss_start(data, shadow, SYNC_LATENCY_US);
}

/* In the writer, after each append: now and then a checkpoint from a
 * connection of its own (any process may checkpoint), cycling through the
 * modes.  The library's WAL would reach its autocheckpoint only after a
 * few hundred commits, later than the kill; this way the power also goes
 * while pages are copied into the database file, and after the WAL was
 * restarted or truncated. */
/* A connection to every database file of the store, opened once. */
static size_t open_checkpointers(harness *h, sqlite3 **dbs, size_t cap)
{
    DIR *d = opendir(h->url);
    struct dirent *e;
    size_t n = 0;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%d", h->sync);
    while (d && n < cap && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".db"))
            continue;
        char path[sizeof h->url + NAME_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", h->url, e->d_name);
        if (sqlite3_open_v2(path, &dbs[n], SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
            sqlite3_exec(dbs[n], sql, NULL, NULL, NULL) != SQLITE_OK)
            _exit(6);
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

static void child_tick(harness *h)
{
    static const int modes[] = {SQLITE_CHECKPOINT_PASSIVE, SQLITE_CHECKPOINT_FULL,
                                SQLITE_CHECKPOINT_RESTART, SQLITE_CHECKPOINT_TRUNCATE};
    static sqlite3 *dbs[4];
    static size_t n;
    static unsigned ticks;
    if (++ticks % 4)
        return;
    if (!n)
        n = open_checkpointers(h, dbs, 4);
    /* busy (a reader or the writer in the way) is fine: next time */
    for (size_t i = 0; i < n; i++)
        sqlite3_wal_checkpoint_v2(dbs[i], NULL, modes[(ticks / 4) % 4], NULL, NULL);
}

/* In the parent: the power came back. */
static void after_kill(harness *h, int cycle)
{
    (void)cycle;
    powerloss *p = h->user;
    char shadow[PATH_MAX];
    shadow_dir(h, shadow, sizeof shadow);
    tv_reboot_mode mode = (tv_reboot_mode)(h->rng % 3);
    h->rng = h->rng * 1103515245u + 12345u;
    p->reboots[mode]++;
    if (tv_reboot(h->url, shadow, mode, &h->rng, &p->st) != 0) {
        VIOLATION(h, "reboot failed: %s", strerror(errno));
    }
}

static void setup(harness *h, powerloss *p, int sync)
{
    harness_init(h);
    memset(p, 0, sizeof *p);
    h->label = sync == LSS_SYNC_FULL ? "power loss, FULL" : "power loss, NORMAL";
    h->dir_template = "/tmp/lss-powerloss-XXXXXX";
    h->sync = sync;
    h->integrity_flags = SQLITE_OPEN_READONLY;
    h->child_setup = child_setup;
    h->child_tick = child_tick;
    h->after_kill = after_kill;
    h->user = p;
}

static void report(const harness *h, const powerloss *p)
{
    printf("# %s: %ld cycles; reboots drop/prefix/subset %ld/%ld/%ld; %ld files rebuilt,"
           " %ld unsynced writes: %ld applied, %ld torn, %ld dropped; %ld interrupted syncs"
           " completed; %ld integrity failures\n",
           h->label, h->cycles, p->reboots[TV_DROP], p->reboots[TV_PREFIX], p->reboots[TV_SUBSET],
           p->st.files, p->st.pending, p->st.applied, p->st.torn, p->st.dropped,
           p->st.sync_completed, h->integrity_failures);
}

static void powerloss_should_lose_no_acknowledged_write_with_sync_full(void **state)
{
    (void)state;
    harness h;
    powerloss p;
    setup(&h, &p, LSS_SYNC_FULL);
    int cycles = harness_cycles("LSS_POWERLOSS_CYCLES", 100);
    harness_run(&h, cycles);
    report(&h, &p);
    assert_int_equal(h.violations, 0);
    /* the harness tested something: writes were acknowledged, and
     * reboots threw unsynced writes away */
    assert_true(h.acks > 0);
    assert_true(h.cycles_with_progress * 2 >= cycles / 2);
    assert_true(p.st.dropped > 0);
    assert_true(p.st.torn > 0);
}

static void powerloss_harness_should_catch_lost_acknowledgement_with_sync_normal(void **state)
{
    (void)state;
    harness h;
    powerloss p;
    setup(&h, &p, LSS_SYNC_NORMAL);
    h.stop_on_loss = 1;
    /* NORMAL would lose the namespace itself first; the control is about
     * the checker finding lost messages, so the namespace is durable */
    h.create_first = 1;
    harness_run(&h, harness_cycles("LSS_POWERLOSS_CYCLES", 100));
    report(&h, &p);
    if (h.lost == 0) {
        print_error("synchronous=NORMAL lost no acknowledged write in %ld cycles\n", h.cycles);
        fail();
    }
    printf("# synchronous=NORMAL caught after %ld cycle(s)\n", h.cycles);
    assert_int_equal(h.integrity_failures, 0);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* The model on its own, with SQLite alone: a commit synced under FULL
 * survives a reboot that drops every unsynced write, a later commit made
 * under synchronous=OFF does not, and the file is sound. */
static void vfs_child(const char *data, const char *shadow)
{
    char db_path[PATH_MAX + 16];
    snprintf(db_path, sizeof db_path, "%s/t.db", data);
    sqlite3 *db = NULL;
    if (tv_install() != SQLITE_OK)
        _exit(2);
    tv_powerloss_start(data, shadow, 0);
    if (sqlite3_open(db_path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     " CREATE TABLE t(x); INSERT INTO t VALUES(1);"
                     " PRAGMA synchronous=OFF; INSERT INTO t VALUES(2);",
                     NULL, NULL, NULL) != SQLITE_OK)
        _exit(3);
    _exit(0); /* the power goes: no close, no checkpoint */
}

static void reboot_should_keep_synced_and_drop_unsynced_commits(void **state)
{
    (void)state;
    char dir[] = "/tmp/lss-powerloss-vfs-XXXXXX", real[PATH_MAX];
    char data[PATH_MAX + 8], shadow[PATH_MAX + 8], db_path[PATH_MAX + 16];
    assert_non_null(mkdtemp(dir));
    assert_non_null(realpath(dir, real));
    snprintf(data, sizeof data, "%s/data", real);
    snprintf(shadow, sizeof shadow, "%s/shadow", real);
    assert_int_equal(mkdir(data, 0755), 0);
    assert_int_equal(mkdir(shadow, 0755), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        vfs_child(data, shadow);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tv_reboot_stats st;
    memset(&st, 0, sizeof st);
    unsigned rng = 1;
    assert_int_equal(tv_reboot(data, shadow, TV_DROP, &rng, &st), 0);
    assert_true(st.dropped > 0);
    snprintf(db_path, sizeof db_path, "%s/t.db", data);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(x), (SELECT integrity_check"
                                        " FROM pragma_integrity_check) FROM t",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "1");
    assert_string_equal((const char *)sqlite3_column_text(q, 1), "ok");
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_int_equal(nftw(real, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reboot_should_keep_synced_and_drop_unsynced_commits),
        cmocka_unit_test(powerloss_should_lose_no_acknowledged_write_with_sync_full),
        cmocka_unit_test(powerloss_harness_should_catch_lost_acknowledgement_with_sync_normal),
    };
    return cmocka_run_group_tests_name("powerloss", tests, NULL, NULL);
}
