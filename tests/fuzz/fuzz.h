/* fuzz.h — shared by the fuzz targets (tests/fuzz/fuzz_<target>.c): the
 * libFuzzer entry point, a property check that stops the process with a
 * message, and a byte-counting allocator for the memory bounds.
 *
 * A failed check calls abort(): libFuzzer then saves the input as a
 * reproducer, and the replay driver (replay.c) fails the meson test.  Only
 * the shared library is forbidden to abort (tests/symbols); test programs
 * may. */
#ifndef LSS_FUZZ_H
#define LSS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
static void fuzz_fail(const char *file, int line, const char *fmt, ...);

#include <stdarg.h>

static void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: property violated: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* CHECK(cond, printf-style explanation) */
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond))                                                         \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                      \
    } while (0)

/* A heap copy of exactly n bytes (at least one), so that ASan and valgrind
 * see any read past the end of what a parser was given. */
static inline char *fuzz_dup(const void *p, size_t n)
{
    char *q = malloc(n ? n : 1);
    CHECK(q != NULL, "out of memory");
    if (n)
        memcpy(q, p, n);
    return q;
}

/* Counts the bytes the library holds through its allocator: live, and the
 * peak since the last reset.  A size header in front of each block makes
 * frees exact. */
typedef struct fuzz_alloc {
    lss_allocator a;
    size_t live, peak;
    long blocks;
} fuzz_alloc;

#define FUZZ_HDR 16

static void *fa_malloc(void *ctx, size_t n)
{
    fuzz_alloc *fa = ctx;
    unsigned char *p = malloc(FUZZ_HDR + n);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    fa->live += n;
    fa->blocks++;
    if (fa->live > fa->peak)
        fa->peak = fa->live;
    return p + FUZZ_HDR;
}

static void fa_free(void *ctx, void *q)
{
    fuzz_alloc *fa = ctx;
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - FUZZ_HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    fa->live -= n;
    fa->blocks--;
    free(p);
}

static void *fa_realloc(void *ctx, void *q, size_t old, size_t n)
{
    fuzz_alloc *fa = ctx;
    (void)old;
    if (!q)
        return fa_malloc(ctx, n);
    unsigned char *p = (unsigned char *)q - FUZZ_HDR;
    size_t was;
    memcpy(&was, p, sizeof was);
    unsigned char *r = realloc(p, FUZZ_HDR + n);
    if (!r)
        return NULL;
    memcpy(r, &n, sizeof n);
    fa->live = fa->live - was + n;
    if (fa->live > fa->peak)
        fa->peak = fa->live;
    return r + FUZZ_HDR;
}

static inline void fuzz_alloc_init(fuzz_alloc *fa)
{
    memset(fa, 0, sizeof *fa);
    fa->a.malloc = fa_malloc;
    fa->a.realloc = fa_realloc;
    fa->a.free = fa_free;
    fa->a.ctx = fa;
}

#endif /* LSS_FUZZ_H */
