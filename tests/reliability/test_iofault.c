/* test_iofault.c — RELIABILITY.md "I/O faults" (promise 8): an I/O error or
 * a full disk fails the operation cleanly, loses nothing acknowledged,
 * leaves the handle usable and the files passing integrity_check.
 *
 * For each operation (append of one message, append of a batch, a stream
 * read, opening the store) and each fault (xRead, xWrite or xSync failing
 * with SQLITE_IOERR_*, xWrite failing with SQLITE_FULL; once, or from then
 * on), testvfs.c fails the N-th call for N = 1, 2, ... until the operation
 * completes without reaching the fault.  Every attempt starts from a
 * freshly opened store, so caches are cold and reads happen.  After each
 * faulted attempt, with the fault disarmed:
 *   - the call returned the documented code (LSS_EIO, or LSS_EFULL for a
 *     full disk), not a crash, a hang or another code;
 *   - the same handle works: a retry of the failed append succeeds (an
 *     idempotent retry if the failed one committed after all), a new
 *     append succeeds, a read returns what was acknowledged;
 *   - every acknowledged message is stored at its position, streams have
 *     no holes and no duplicates;
 *   - once the library closed the files, integrity_check says ok.
 *
 * Disk full for real: a child process lowers RLIMIT_FSIZE (ignoring
 * SIGXFSZ, so writes past the limit fail with EFBIG) and appends until an
 * append fails; it must fail cleanly (LSS_EIO: see full_error), earlier
 * data must read back, and after the limit is raised the same handle
 * appends again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "streamstore.h"
#include "testvfs.h"

#define NS "default"
#define STREAM "fault-1"
#define BATCH 5
#define MAX_N 500 /* an operation needing more calls than this is a bug */

typedef struct acked {
    char id[37];
    int64_t pos;
} acked;

/* One append request: its ids survive the failed attempt for the retry. */
typedef struct request {
    char ids[BATCH][37];
    char data[BATCH][64];
    lss_msg_in msgs[BATCH];
    lss_append a;
} request;

typedef struct fixture {
    char dir[64];
    char url[96];
    lss_db *db;
    lss_conn *c;
    acked *acks;
    size_t n, cap;
    long next_id;
    long ok_despite_fault; /* faulted attempts that still returned OK */
} fixture;

typedef struct fault {
    tv_op op;
    int sqlite_rc;
    int persistent;
    int want; /* the code the operation must return */
    const char *name;
} fault;

static const fault FAULTS[] = {
    {TV_READ, SQLITE_IOERR_READ, 0, LSS_EIO, "read fails once"},
    {TV_READ, SQLITE_IOERR_READ, 1, LSS_EIO, "reads fail from N on"},
    {TV_WRITE, SQLITE_IOERR_WRITE, 0, LSS_EIO, "write fails once"},
    {TV_WRITE, SQLITE_IOERR_WRITE, 1, LSS_EIO, "writes fail from N on"},
    {TV_WRITE, SQLITE_FULL, 0, LSS_EFULL, "disk full once"},
    {TV_WRITE, SQLITE_FULL, 1, LSS_EFULL, "disk full from N on"},
    {TV_SYNC, SQLITE_IOERR_FSYNC, 0, LSS_EIO, "sync fails once"},
    {TV_SYNC, SQLITE_IOERR_FSYNC, 1, LSS_EIO, "syncs fail from N on"},
};

/* ------------------------------------------------------------ fixture */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int open_store(const char *url, lss_db **db, lss_conn **c)
{
    lss_options o;
    lss_options_init(&o);
    o.sync = LSS_SYNC_FULL;
    *c = NULL;
    int rc = lss_open(url, &o, db);
    if (rc == LSS_OK)
        rc = lss_conn_open(*db, c);
    const lss_ns_row *row;
    if (rc == LSS_OK) /* the namespace was loaded */
        rc = lss_ns_info(*c, NS, strlen(NS), &row);
    return rc;
}

static void fx_open(fixture *f)
{
    int rc = open_store(f->url, &f->db, &f->c);
    if (rc != LSS_OK)
        fail_msg("open without a fault: %s (%s)", lss_errname(rc),
                 f->db ? lss_db_errmsg(f->db) : "");
}

static void fx_close(fixture *f)
{
    lss_conn_close(f->c);
    lss_close(f->db);
    f->c = NULL;
    f->db = NULL;
}

static int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/lss-iofault-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof f->url, "%s/data", f->dir);
    lss_options o;
    lss_options_init(&o);
    o.create_default = 1;
    assert_int_equal(lss_open(f->url, &o, &f->db), LSS_OK);
    lss_close(f->db);
    f->db = NULL;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;
    tv_fault_disarm();
    fx_close(f);
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f->acks);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ appends */

static void new_request(fixture *f, request *r, size_t count)
{
    memset(r, 0, sizeof *r);
    for (size_t k = 0; k < count; k++) {
        long id = ++f->next_id;
        snprintf(r->ids[k], sizeof r->ids[k], "%08lx-0000-4000-8000-%012lx", id, id);
        snprintf(r->data[k], sizeof r->data[k], "{\"n\":%ld}", id);
        r->msgs[k] = (lss_msg_in){r->ids[k], 36, "Ev", 2, r->data[k], strlen(r->data[k]),
                                  NULL, 0};
    }
    r->a.ns = NS;
    r->a.ns_n = strlen(NS);
    r->a.stream = STREAM;
    r->a.stream_n = strlen(STREAM);
    r->a.msgs = r->msgs;
    r->a.count = count;
}

static void record_ack(fixture *f, const request *r)
{
    for (size_t k = 0; k < r->a.count; k++) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->acks = realloc(f->acks, f->cap * sizeof *f->acks);
            assert_non_null(f->acks);
        }
        acked *a = &f->acks[f->n++];
        memcpy(a->id, r->ids[k], sizeof a->id);
        a->pos = r->a.position - (int64_t)(r->a.count - 1 - k);
    }
}

static int append(fixture *f, request *r)
{
    int rc = lss_append_one(f->c, &r->a);
    if (rc == LSS_OK)
        record_ack(f, r);
    return rc;
}

static void append_should_work(fixture *f, request *r, const char *what)
{
    int rc = append(f, r);
    if (rc != LSS_OK)
        fail_msg("%s after a fault: %s (%s)", what, lss_errname(rc), lss_errmsg(f->c));
}

/* -------------------------------------------------------------- checks */

/* Reads the whole stream; *count rows.  Returns the first error or OK;
 * with check, a hole or a duplicate position is LSS_EINTERNAL. */
static int read_all(lss_conn *c, int check, size_t *count)
{
    lss_cursor *cur = NULL;
    *count = 0;
    int rc = lss_read_stream(c, NS, strlen(NS), STREAM, strlen(STREAM), NULL, &cur);
    if (rc != LSS_OK)
        return rc;
    const lss_message *m;
    while ((rc = lss_cursor_next(cur, &m)) == LSS_ROW) {
        if (check && m->position != (int64_t)*count) {
            rc = LSS_EINTERNAL;
            break;
        }
        ++*count;
    }
    lss_cursor_close(cur);
    return rc == LSS_DONE ? LSS_OK : rc;
}

/* Is the message at position pos the one acknowledged there? */
static int stored_at(lss_conn *c, const acked *a)
{
    lss_read_opts o;
    lss_read_opts_init(&o);
    o.position = a->pos;
    o.batch_size = 1;
    lss_cursor *cur = NULL;
    const lss_message *m = NULL;
    int ok = lss_read_stream(c, NS, strlen(NS), STREAM, strlen(STREAM), &o, &cur) == LSS_OK &&
             lss_cursor_next(cur, &m) == LSS_ROW && m->position == a->pos && m->id.n == 36 &&
             !memcmp(m->id.p, a->id, 36);
    lss_cursor_close(cur);
    return ok;
}

/* Every acknowledged message is stored at its position, and the stream
 * has no hole or duplicate.  NULL, or what is wrong (in buf). */
static const char *check_acks(fixture *f, char *buf, size_t cap)
{
    size_t stored;
    int rc = read_all(f->c, 1, &stored);
    if (rc != LSS_OK) {
        snprintf(buf, cap, "read without a fault: %s (%s)", lss_errname(rc),
                 rc == LSS_EINTERNAL ? "hole or duplicate position" : lss_errmsg(f->c));
        return buf;
    }
    for (size_t i = 0; i < f->n; i++) {
        const acked *a = &f->acks[i];
        if (a->pos < 0 || (size_t)a->pos >= stored || !stored_at(f->c, a)) {
            snprintf(buf, cap, "acknowledged message %s (position %" PRId64 ") is lost", a->id,
                     a->pos);
            return buf;
        }
    }
    return NULL;
}

static void verify(fixture *f)
{
    char buf[256];
    const char *err = check_acks(f, buf, sizeof buf);
    if (err)
        fail_msg("%s", err);
}

/* integrity_check of every database file; the library must have closed
 * them (read-only: the check must not repair anything). */
static void integrity(const char *url)
{
    DIR *d = opendir(url);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".db"))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", url, e->d_name);
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (!res || strcmp(res, "ok"))
            fail_msg("integrity_check of %s: %s", path, res ? res : "(null)");
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    closedir(d);
}

static void expect_code(const fault *ft, long n, int rc, const char *what, const char *msg)
{
    if (rc != ft->want)
        fail_msg("%s, %s at call %ld: %s, want %s (%s)", what, ft->name, n, lss_errname(rc),
                 lss_errname(ft->want), msg);
}

/* After a fault: the handle works, nothing acknowledged is lost, and the
 * files are sound once closed. */
static void after_fault(fixture *f)
{
    request fresh;
    new_request(f, &fresh, 1);
    append_should_work(f, &fresh, "a new append");
    verify(f);
    fx_close(f);
    integrity(f->url);
}

/* ------------------------------------------------------------ attempts */

/* One attempt of an append of count messages with the N-th call failing;
 * returns 1 when the append completed without reaching the fault. */
static int attempt_append(fixture *f, const fault *ft, long n, size_t count)
{
    fx_open(f);
    request r;
    new_request(f, &r, count);
    tv_fault_arm(ft->op, n, ft->persistent, ft->sqlite_rc);
    int rc = append(f, &r);
    long hits = tv_fault_disarm();
    if (!hits) {
        assert_int_equal(rc, LSS_OK);
        verify(f);
        fx_close(f);
        return 1;
    }
    f->ok_despite_fault += rc == LSS_OK;
    if (rc != LSS_OK) {
        expect_code(ft, n, rc, "append", lss_errmsg(f->c));
        /* the retry any client would send: same ids, same content */
        append_should_work(f, &r, "the retry of the failed append");
    }
    after_fault(f);
    return 0;
}

/* A read on a new session: its read connection starts with a cold cache
 * (the fixture's own session warmed its cache in lss_ns_info). */
static int attempt_read(fixture *f, const fault *ft, long n)
{
    fx_open(f);
    lss_conn *c = NULL;
    assert_int_equal(lss_conn_open(f->db, &c), LSS_OK);
    size_t count;
    tv_fault_arm(ft->op, n, ft->persistent, ft->sqlite_rc);
    int rc = read_all(c, 0, &count);
    long hits = tv_fault_disarm();
    if (hits && rc != LSS_OK)
        expect_code(ft, n, rc, "read", lss_errmsg(c));
    f->ok_despite_fault += hits && rc == LSS_OK;
    if (hits) /* the same session reads again */
        rc = read_all(c, 1, &count);
    lss_conn_close(c);
    assert_int_equal(rc, LSS_OK);
    assert_int_equal(count, f->n);
    if (!hits) {
        fx_close(f);
        return 1;
    }
    after_fault(f);
    return 0;
}

static int attempt_open(fixture *f, const fault *ft, long n)
{
    tv_fault_arm(ft->op, n, ft->persistent, ft->sqlite_rc);
    int rc = open_store(f->url, &f->db, &f->c);
    long hits = tv_fault_disarm();
    char msg[256];
    snprintf(msg, sizeof msg, "%s", f->db ? lss_db_errmsg(f->db) : "");
    fx_close(f);
    if (!hits) {
        assert_int_equal(rc, LSS_OK);
        return 1;
    }
    if (rc != LSS_OK)
        expect_code(ft, n, rc, "open", msg);
    f->ok_despite_fault += rc == LSS_OK;
    fx_open(f);
    after_fault(f);
    return 0;
}

enum { OP_APPEND_ONE, OP_APPEND_BATCH, OP_READ, OP_OPEN };

static int attempt(fixture *f, int op, const fault *ft, long n)
{
    switch (op) {
    case OP_APPEND_ONE:
        return attempt_append(f, ft, n, 1);
    case OP_APPEND_BATCH:
        return attempt_append(f, ft, n, BATCH);
    case OP_READ:
        return attempt_read(f, ft, n);
    default:
        return attempt_open(f, ft, n);
    }
}

/* Every fault at every call of op, until op needs no more calls. */
static void fault_every_call(fixture *f, int op, const char *op_name)
{
    for (size_t i = 0; i < sizeof FAULTS / sizeof FAULTS[0]; i++) {
        long n = 1;
        f->ok_despite_fault = 0;
        while (!attempt(f, op, &FAULTS[i], n))
            if (++n > MAX_N)
                fail_msg("%s, %s: still faulting after %d calls", op_name, FAULTS[i].name,
                         MAX_N);
        /* OK despite a fault: SQLite worked around it (the checks above
         * still hold); counted to show what was tested */
        printf("# %s, %s: %ld faulted attempts, %ld of them OK\n", op_name, FAULTS[i].name,
               n - 1, f->ok_despite_fault);
    }
    /* something was stored, or the appends were never tested */
    assert_true(f->n > 0);
}

static void seed(fixture *f)
{
    fx_open(f);
    for (int i = 0; i < 3; i++) {
        request r;
        new_request(f, &r, 2);
        append_should_work(f, &r, "a seed append");
    }
    fx_close(f);
}

static void append_should_fail_cleanly_on_io_faults(void **state)
{
    fault_every_call(*state, OP_APPEND_ONE, "append");
}

static void batch_append_should_fail_cleanly_on_io_faults(void **state)
{
    fault_every_call(*state, OP_APPEND_BATCH, "batch append");
}

static void read_should_fail_cleanly_on_io_faults(void **state)
{
    seed(*state);
    fault_every_call(*state, OP_READ, "read");
}

static void open_should_fail_cleanly_on_io_faults(void **state)
{
    seed(*state);
    fault_every_call(*state, OP_OPEN, "open");
}

/* ----------------------------------------------------------- disk full */

#define FULL_FAIL(...)                                                      \
    do {                                                                    \
        fprintf(stderr, "disk full: " __VA_ARGS__);                         \
        fputc('\n', stderr);                                                \
        _exit(1);                                                           \
    } while (0)

static void set_fsize_limit(rlim_t cur)
{
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = cur;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        FULL_FAIL("setrlimit");
}

/* The error of a write past RLIMIT_FSIZE.  The unix VFS reports ENOSPC as
 * SQLITE_FULL (LSS_EFULL) but EFBIG, like EDQUOT, as SQLITE_IOERR_WRITE
 * (LSS_EIO), and keeps no errno for a failed COMMIT that the library could
 * map by: both codes are documented for lss_append_one.  The message must
 * name the failed write (its SQLite code), not a later failure such as the
 * rollback of a transaction SQLite had already rolled back. */
static int full_error(lss_conn *c, int rc)
{
    char full[32], write[32];
    snprintf(full, sizeof full, "(sqlite %d)", SQLITE_FULL);
    snprintf(write, sizeof write, "(sqlite %d)", SQLITE_IOERR_WRITE);
    const char *msg = lss_errmsg(c);
    return (rc == LSS_EFULL && strstr(msg, full)) || (rc == LSS_EIO && strstr(msg, write));
}

/* The WAL of the namespace's database (not the registry's). */
static void ns_wal(const fixture *f, char *out, size_t cap)
{
    DIR *d = opendir(f->url);
    struct dirent *e;
    *out = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 3 && !strcmp(e->d_name + n - 3, ".db") && strcmp(e->d_name, "metadata.db"))
            snprintf(out, cap, "%s/%s-wal", f->url, e->d_name);
    }
    if (d)
        closedir(d);
}

/* The child (no cmocka here: a failed assertion would unwind into the
 * child's copy of the test runner): fill up to the file-size limit, check,
 * lift the limit, append again.  Exit status 0: every check passed. */
static void disk_full_child(fixture *f)
{
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG */
    char buf[256], wal[PATH_MAX];
    const char *err;
    int rc = open_store(f->url, &f->db, &f->c);
    if (rc != LSS_OK)
        FULL_FAIL("open: %s", lss_errname(rc));
    request r;
    new_request(f, &r, 1);
    if (append(f, &r) != LSS_OK)
        FULL_FAIL("first append failed");
    struct stat st;
    ns_wal(f, wal, sizeof wal);
    if (stat(wal, &st) != 0)
        FULL_FAIL("no WAL at '%s'", wal);
    set_fsize_limit((rlim_t)st.st_size + 64 * 1024);
    for (int i = 0; i < 1000 && rc == LSS_OK; i++) {
        new_request(f, &r, BATCH);
        rc = append(f, &r);
    }
    if (!full_error(f->c, rc))
        FULL_FAIL("append at the limit: %s (%s)", lss_errname(rc), lss_errmsg(f->c));
    new_request(f, &r, 1);
    if (!full_error(f->c, (rc = append(f, &r))))
        FULL_FAIL("second append at the limit: %s (%s)", lss_errname(rc), lss_errmsg(f->c));
    if ((err = check_acks(f, buf, sizeof buf))) /* earlier data reads back */
        FULL_FAIL("while full: %s", err);
    set_fsize_limit(RLIM_INFINITY);
    if ((rc = append(f, &r)) != LSS_OK)
        FULL_FAIL("append after the limit was lifted: %s (%s)", lss_errname(rc),
                  lss_errmsg(f->c));
    if ((err = check_acks(f, buf, sizeof buf)))
        FULL_FAIL("after the limit was lifted: %s", err);
    fx_close(f);
    printf("# disk full after %zu acknowledged messages; appends work again\n", f->n);
    fflush(stdout);
    _exit(f->n > 1 ? 0 : 2);
}

static void append_should_fail_cleanly_when_the_disk_is_full(void **state)
{
    fixture *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        disk_full_child(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    integrity(f->url);
    fx_open(f);
    size_t count;
    assert_int_equal(read_all(f->c, 1, &count), LSS_OK);
    assert_true(count > 1);
    fx_close(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (tv_install() != SQLITE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(append_should_fail_cleanly_on_io_faults, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(batch_append_should_fail_cleanly_on_io_faults, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(read_should_fail_cleanly_on_io_faults, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(open_should_fail_cleanly_on_io_faults, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(append_should_fail_cleanly_when_the_disk_is_full,
                                        fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests_name("iofault", tests, NULL, NULL);
}
