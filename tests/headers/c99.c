/* c99.c — the public header alone, compiled as strict C99: it must build
 * without a warning, link against the shared library and agree with it at
 * run time.  Nothing else may be included here. */
#include "streamstore.h"

static void *no_malloc(void *ctx, size_t size)
{
    (void)ctx;
    (void)size;
    return NULL;
}

static void *no_realloc(void *ctx, void *ptr, size_t old_size, size_t new_size)
{
    (void)ctx;
    (void)ptr;
    (void)old_size;
    (void)new_size;
    return NULL;
}

static void no_free(void *ctx, void *ptr)
{
    (void)ctx;
    (void)ptr;
}

#define COUNT(name, value, text) +1
enum { n_codes = 0 LSS_ERRNO_MAP(COUNT) };
#undef COUNT

int main(void)
{
    lss_allocator a = {no_malloc, no_realloc, no_free, NULL};
    lss_span s = {"abc", 3};
    lss_status st = LSS_EVERSION;
    lss_db *db = NULL;
    lss_conn *conn = NULL;
    lss_cursor *cur = NULL;
    lss_sub *sub = NULL;
    int64_t position = INT64_MAX;

    if (a.malloc(a.ctx, 1) != NULL || s.n != 3 || st != -13)
        return 1;
    if (db || conn || cur || sub || position != INT64_MAX || n_codes < 20)
        return 2;
    if (lss_version_number() != LSS_VERSION_NUMBER)
        return 3;
    if (lss_version_string()[0] != LSS_VERSION_STRING[0])
        return 4;
    if (lss_strerror(LSS_ENOMEM)[0] == '\0' || lss_errname(LSS_ROW)[0] != 'R')
        return 5;
    return 0;
}
