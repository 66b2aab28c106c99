/* test_crash.c — RELIABILITY.md "Crash (SQLite)": no acknowledged write is
 * lost, no duplicates, no holes, and the files pass integrity_check after a
 * writer process is SIGKILLed at a random moment.
 *
 * Each cycle forks a writer child that opens the file store (synchronous =
 * FULL, namespace "default"), first retries the requests the previous child
 * left in flight (same ids, same content), then appends to 50 streams in 5
 * categories (single and batch appends, with and without expected version).
 * Over a pipe it reports, with one atomic write() each:
 *   I <seq> <stream> <has_ev> <ev> <count> <id>...   before the append (intent)
 *   A <seq> <pos> <gpos>                             after it succeeded (ack)
 *   F <seq> <rc>                                     after it failed
 *   R                                                once the store is open
 * The parent kills the child 5-60 ms after the fork or after R, then opens
 * the store itself and checks every acknowledged append.  An intent without
 * ack is "in flight": the next child retries it, which must succeed (an
 * idempotent retry if it had committed, a fresh write if it had not).
 *
 * Negative control: in lying mode the child sends the ack BEFORE calling
 * lss_append_one ("acknowledge before commit").  A kill that lands inside
 * the append then leaves an acknowledged write that is not stored, and the
 * checker must find it.  Note what cannot serve as a control from outside
 * the library: SIGKILL of the writer does not lose page-cache data, so
 * synchronous=OFF or NORMAL survive a process crash; only power loss (a VFS
 * that drops unsynced writes) would tell them from FULL.
 *
 * The harness (fork, pipe protocol, kill, checks) is in harness.c, shared
 * with test_powerloss.  LSS_CRASH_CYCLES overrides the number of cycles
 * (default 50). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static int crash_cycles(void)
{
    return harness_cycles("LSS_CRASH_CYCLES", 50);
}

static void crash_should_lose_no_acknowledged_write(void **state)
{
    (void)state;
    harness h;
    harness_init(&h);
    harness_run(&h, crash_cycles());
    assert_int_equal(h.violations, 0);
    /* the harness tested something */
    assert_true(h.acks > 0);
    assert_true(h.retries_ok > 0);
    assert_true(h.cycles_with_progress * 2 >= crash_cycles() / 2);
}

static void crash_harness_should_catch_acknowledge_before_commit(void **state)
{
    (void)state;
    harness h;
    harness_init(&h);
    h.lying = 1;
    harness_run(&h, 50);
    if (h.lost == 0) {
        print_error("the harness did not catch a writer acknowledging before commit\n");
        fail();
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crash_should_lose_no_acknowledged_write),
        cmocka_unit_test(crash_harness_should_catch_acknowledge_before_commit),
    };
    return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
