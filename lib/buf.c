/* buf.c — a growable byte buffer that keeps its capacity when cleared and
 * keeps a NUL after its content (Redis' sds). */
#include "mem.h"

#include <string.h>

/* Content can reach LSS__MEM_MAX - 1 bytes: storage has one more for the
 * NUL. */
#define BUF_MAX (LSS__MEM_MAX - 1)

void lss__buf_init(lss__buf *b, const lss_allocator *alloc)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->alloc = lss__alloc_or_libc(alloc);
}

static int set_cap(lss__buf *b, size_t cap)
{
    char *q = b->p ? lss__realloc(b->alloc, b->p, b->cap + 1, cap + 1)
                   : lss__malloc(b->alloc, cap + 1);
    if (!q)
        return LSS_ENOMEM;
    if (!b->p)
        q[0] = '\0';
    b->p = q;
    b->cap = cap;
    return LSS_OK;
}

int lss__buf_reserve(lss__buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return LSS_OK;
    if (n > BUF_MAX - b->len)
        return LSS_ETOOBIG;
    size_t need = b->len + n;
    size_t cap = b->cap > BUF_MAX / 2 ? BUF_MAX : b->cap * 2;
    if (cap < LSS__BUF_MIN_CAP)
        cap = LSS__BUF_MIN_CAP;
    return set_cap(b, cap > need ? cap : need);
}

int lss__buf_append(lss__buf *b, const void *src, size_t n)
{
    if (n == 0)
        return LSS_OK;
    if (n > b->cap - b->len) {
        /* src may lie in our own storage, which growing moves. */
        uintptr_t s = (uintptr_t)src, base = (uintptr_t)b->p;
        int inside = b->p && s >= base && s - base <= b->cap;
        int rc = lss__buf_reserve(b, n);
        if (rc != LSS_OK)
            return rc;
        if (inside)
            src = b->p + (s - base);
    }
    memmove(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
    return LSS_OK;
}

int lss__buf_append_char(lss__buf *b, char c)
{
    return lss__buf_append(b, &c, 1);
}

void lss__buf_commit(lss__buf *b, size_t n)
{
    if (n == 0)
        return;
    b->len += n;
    b->p[b->len] = '\0';
}

void lss__buf_truncate(lss__buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

void lss__buf_clear(lss__buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

int lss__buf_shrink_to(lss__buf *b, size_t cap)
{
    if (cap < b->len)
        cap = b->len;
    if (cap >= b->cap)
        return LSS_OK;
    if (cap == 0) {
        lss__buf_free(b);
        return LSS_OK;
    }
    return set_cap(b, cap);
}

char *lss__buf_release(lss__buf *b, size_t *len, size_t *size)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    if (size)
        *size = p ? b->cap + 1 : 0;
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void lss__buf_free(lss__buf *b)
{
    lss__free(b->alloc, b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}
