/* testutil.h — shared by the unit suites: a counting allocator that can also
 * be told to fail, small assertion helpers, and scratch-directory removal. */
#ifndef LSS_TESTUTIL_H
#define LSS_TESTUTIL_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "streamstore.h"

typedef struct counting_alloc {
    lss_allocator a;       /* pass &ca.a to the library */
    long mallocs, reallocs, frees;
    long live;             /* blocks currently allocated */
    long fail_at;          /* fail the fail_at-th allocation (1-based); 0 = never */
    int fail_after;        /* when set, every allocation from fail_at on fails */
    long calls;            /* malloc + realloc calls so far */
} counting_alloc;

static void *ca_malloc(void *ctx, size_t n)
{
    counting_alloc *ca = (counting_alloc *)ctx;
    ca->calls++;
    if (ca->fail_at && (ca->calls == ca->fail_at ||
                        (ca->fail_after && ca->calls > ca->fail_at)))
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p) {
        ca->mallocs++;
        ca->live++;
    }
    return p;
}

static void *ca_realloc(void *ctx, void *p, size_t old, size_t n)
{
    counting_alloc *ca = (counting_alloc *)ctx;
    (void)old;
    ca->calls++;
    if (ca->fail_at && (ca->calls == ca->fail_at ||
                        (ca->fail_after && ca->calls > ca->fail_at)))
        return NULL;
    void *q = realloc(p, n ? n : 1);
    if (q) {
        ca->reallocs++;
        if (!p)
            ca->live++;
    }
    return q;
}

static void ca_free(void *ctx, void *p)
{
    counting_alloc *ca = (counting_alloc *)ctx;
    if (!p)
        return;
    ca->frees++;
    ca->live--;
    free(p);
}

static inline void counting_alloc_init(counting_alloc *ca)
{
    memset(ca, 0, sizeof *ca);
    ca->a.malloc = ca_malloc;
    ca->a.realloc = ca_realloc;
    ca->a.free = ca_free;
    ca->a.ctx = ca;
}

/* Allocation calls (malloc + realloc) made so far. */
static inline long counting_alloc_calls(const counting_alloc *ca)
{
    return ca->mallocs + ca->reallocs;
}

static int rm_tree_entry(const char *p, const struct stat *st, int type,
                         struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

/* Remove a scratch directory and everything in it. */
static inline void rm_tree(const char *dir)
{
    assert_int_equal(nftw(dir, rm_tree_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

#define assert_span_equal(ptr, len, cstr)                              \
    do {                                                               \
        const char *as_p_ = (const char *)(ptr);                       \
        size_t as_n_ = (len);                                          \
        const char *as_s_ = (cstr);                                    \
        if (as_n_ != strlen(as_s_) || memcmp(as_p_, as_s_, as_n_)) {   \
            print_error("span '%.*s' != '%s'\n", (int)as_n_, as_p_ ? as_p_ : "", as_s_); \
            fail();                                                    \
        }                                                              \
    } while (0)

#endif
