/* error.c — code to text, generated from LSS_ERRNO_MAP; and the libc
 * allocator every handle falls back to. */
#include "internal.h"

#include <stdlib.h>

const char *lss_strerror(int code)
{
    switch (code) {
#define LSS__TEXT(name, value, text) \
    case (value):                    \
        return text;
        LSS_ERRNO_MAP(LSS__TEXT)
#undef LSS__TEXT
    default:
        return "unknown error";
    }
}

const char *lss_errname(int code)
{
    switch (code) {
#define LSS__NAME(name, value, text) \
    case (value):                    \
        return #name;
        LSS_ERRNO_MAP(LSS__NAME)
#undef LSS__NAME
    default:
        return "UNKNOWN";
    }
}

static void *libc_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static void *libc_realloc(void *ctx, void *p, size_t old, size_t n)
{
    (void)ctx;
    (void)old;
    return realloc(p, n ? n : 1);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

const lss_allocator lss__libc_allocator = {libc_malloc, libc_realloc,
                                           libc_free, NULL};
