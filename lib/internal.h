/* internal.h — definitions shared by the core's files; never installed. */
#ifndef LSS_INTERNAL_H
#define LSS_INTERNAL_H

#include "streamstore.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define LSS_LIKELY(x) __builtin_expect(!!(x), 1)
#define LSS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LSS_LIKELY(x) (x)
#define LSS_UNLIKELY(x) (x)
#endif

#define LSS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The libc allocator, used when a handle is opened with a NULL allocator. */
extern const lss_allocator lss__libc_allocator;

/* Resolve a caller-supplied allocator (NULL = libc). */
static inline const lss_allocator *lss__alloc_or_libc(const lss_allocator *a)
{
    return a ? a : &lss__libc_allocator;
}

static inline void *lss__malloc(const lss_allocator *a, size_t n)
{
    return a->malloc(a->ctx, n);
}

static inline void *lss__realloc(const lss_allocator *a, void *p, size_t old,
                                 size_t n)
{
    return a->realloc(a->ctx, p, old, n);
}

static inline void lss__free(const lss_allocator *a, void *p)
{
    if (p)
        a->free(a->ctx, p);
}

#endif /* LSS_INTERNAL_H */
