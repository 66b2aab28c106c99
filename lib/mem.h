/* mem.h — memory plumbing driven by a handle's lss_allocator: a bump arena
 * for per-request scratch, a pool of fixed-size objects, and a growable byte
 * buffer that keeps its capacity when cleared.  Internal; never installed.
 *
 * Common rules:
 *   - `alloc` may be NULL (libc).  Otherwise it is borrowed: it must outlive
 *     the arena, pool or buffer (handles point these at their own copy).
 *   - Nothing here aborts.  An allocator failure is reported (NULL or
 *     LSS_ENOMEM) and leaves the object valid and usable; a size that cannot
 *     be represented is refused before the allocator is called.
 *   - After warm-up (the largest working set seen once), arena reset/rewind,
 *     pool get/put and buffer clear/append make no allocator call at all.
 *   - None of these objects is thread-safe; each belongs to one handle.
 */
#ifndef LSS_MEM_H
#define LSS_MEM_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* No object may be larger than PTRDIFF_MAX bytes: pointer differences inside
 * it must stay defined, and glibc refuses such sizes anyway. */
#define LSS__MEM_MAX ((size_t)PTRDIFF_MAX)

/* ------------------------------------------------------------------------
 * Arena: bump allocation over a chain of blocks, released all at once.
 *
 * Growth policy.  The first block holds first_block_size bytes (0 picks one
 * 4 KiB page, header included) and is allocated by init.  When a request
 * does not fit, the arena first reuses a free block it already holds;
 * otherwise it allocates a new block twice the size of the previous one, up
 * to LSS__ARENA_GROW_LIMIT, after which blocks stay at that size.  A request
 * larger than the next block would be gets a dedicated block of its own
 * size.
 *
 * Reuse.  reset and rewind give memory back to the arena, never to the
 * allocator: regular blocks are refilled in the order they were used, and
 * dedicated blocks are kept and handed to the next oversized request they
 * fit (best fit).  So a workload that repeats itself makes no allocator call
 * after its first round.  When a dedicated request fits no kept block, the
 * kept ones are released first, so what is kept for oversized requests never
 * exceeds what the largest round used.  trim gives back what an unusual
 * round made the arena grow by; destroy releases everything.
 * ---------------------------------------------------------------------- */
#define LSS__ARENA_GROW_LIMIT ((size_t)1 << 20)

typedef struct lss__arena_block lss__arena_block; /* defined in arena.c */

typedef struct lss__arena {
    const lss_allocator *alloc;
    lss__arena_block *head;     /* regular blocks, in order of use */
    lss__arena_block *cur;      /* bump block; blocks after it are free */
    size_t used;                /* bytes of cur handed out */
    size_t next_cap;            /* capacity of the next regular block */
    lss__arena_block *big;      /* dedicated blocks in use, newest first */
    lss__arena_block *big_free; /* dedicated blocks kept for reuse */
    size_t held;                /* bytes obtained from the allocator */
} lss__arena;

/* A position in an arena, from lss__arena_mark. */
typedef struct lss__arena_pos {
    lss__arena_block *block;
    size_t used;
    lss__arena_block *big;
} lss__arena_pos;

/* Sets up `a` and allocates its first block.  LSS_OK; LSS_ENOMEM if the
 * block could not be allocated (the arena is still valid: it is empty and
 * will try again on the first alloc); LSS_ETOOBIG if first_block_size is
 * absurd.  lss__arena_destroy must be called in every case. */
int lss__arena_init(lss__arena *a, const lss_allocator *alloc,
                    size_t first_block_size);

/* n bytes aligned to `align` (a power of two; 0 means alignof(max_align_t)),
 * valid until the reset, rewind or destroy that covers them.  Contents are
 * indeterminate.  n == 0 gives a valid non-NULL pointer.  NULL when the
 * allocator fails, when n cannot be represented, or when align is not a
 * power of two; earlier allocations are untouched and the arena stays
 * usable. */
void *lss__arena_alloc(lss__arena *a, size_t n, size_t align);

#define LSS__ARENA_NEW(a, T) \
    ((T *)lss__arena_alloc((a), sizeof(T), _Alignof(T)))

/* Frees every allocation at once and keeps all blocks for reuse. */
void lss__arena_reset(lss__arena *a);

/* The current position.  Rewinding to it frees what was allocated since,
 * keeping the blocks.  Positions are a stack: rewinding to one invalidates
 * every position taken after it, and a reset invalidates them all. */
lss__arena_pos lss__arena_mark(const lss__arena *a);
void lss__arena_rewind(lss__arena *a, lss__arena_pos pos);

/* Returns to the allocator every block not in use right now: the kept
 * dedicated blocks and the free regular blocks (all but the first, just
 * after a reset).  Growth starts again from the largest block kept.
 * Positions stay valid.  Makes no allocator call but free. */
void lss__arena_trim(lss__arena *a);

/* Bytes currently obtained from the allocator (blocks and their headers). */
size_t lss__arena_held(const lss__arena *a);

/* Returns every block to the allocator.  `a` may then be initialised again;
 * destroying twice is harmless. */
void lss__arena_destroy(lss__arena *a);

/* ------------------------------------------------------------------------
 * Pool: objects of one size, recycled through a free list.  Objects come
 * from blocks of objs_per_block objects; blocks are returned to the
 * allocator only by destroy, so get/put make no allocator call once the pool
 * has held its peak number of objects.  Objects are aligned for any type of
 * their size up to alignof(max_align_t).
 * ---------------------------------------------------------------------- */
typedef struct lss__pool_block lss__pool_block; /* defined in pool.c */

typedef struct lss__pool {
    const lss_allocator *alloc;
    lss__pool_block *blocks;
    void *free_list;        /* put objects, linked through themselves */
    unsigned char *fresh;   /* never-used objects in the newest block */
    size_t fresh_left;
    size_t stride;          /* obj_size rounded for the free-list link */
    size_t per_block;
    size_t max_objs;        /* 0 = no cap */
    size_t live;            /* objects handed out and not put back */
} lss__pool;

/* Sets up `p` for objects of obj_size bytes and allocates the first block.
 * LSS_OK; LSS_EINVAL if obj_size or objs_per_block is 0; LSS_ETOOBIG if a
 * block's size cannot be represented; LSS_ENOMEM if the first block could
 * not be allocated (the pool is valid and will try again in get).
 * lss__pool_destroy must be called in every case but LSS_EINVAL/ETOOBIG,
 * where it is harmless. */
int lss__pool_init(lss__pool *p, const lss_allocator *alloc, size_t obj_size,
                   size_t objs_per_block);

/* Caps the objects out at once (0 = no cap, the default).  A cap below the
 * current count takes effect as objects are put back. */
void lss__pool_set_max(lss__pool *p, size_t max_objs);

/* An object with indeterminate contents, or NULL when the cap is reached
 * (lss__pool_full tells) or the allocator fails. */
void *lss__pool_get(lss__pool *p);

/* Gives back an object obtained from this pool's get; NULL is ignored. */
void lss__pool_put(lss__pool *p, void *obj);

/* 1 when the cap is set and reached, else 0. */
int lss__pool_full(const lss__pool *p);

/* Returns every block to the allocator, including objects still out. */
void lss__pool_destroy(lss__pool *p);

/* ------------------------------------------------------------------------
 * Buffer: bytes p[0..len) in storage of cap bytes, like Redis' sds.  While
 * storage exists p[len] is a NUL (not counted in len), so p can be passed
 * where a C string is wanted.  p is NULL until the first growth.  Growth
 * doubles the capacity (at least LSS__BUF_MIN_CAP) and the buffer keeps its
 * capacity when cleared; shrink_to gives memory back after an unusually
 * large request.  Any pointer into p is invalidated by a call that grows or
 * shrinks the buffer.  The fields may be read directly.
 * ---------------------------------------------------------------------- */
#define LSS__BUF_MIN_CAP ((size_t)64)

typedef struct lss__buf {
    char *p;
    size_t len;
    size_t cap; /* bytes usable; storage is cap + 1 for the NUL */
    const lss_allocator *alloc;
} lss__buf;

/* An empty buffer; allocates nothing. */
void lss__buf_init(lss__buf *b, const lss_allocator *alloc);

/* Makes room for n more bytes: afterwards cap - len >= n.  LSS_OK;
 * LSS_ETOOBIG if len + n would exceed LSS__MEM_MAX - 1 (no allocator call);
 * LSS_ENOMEM if the allocator fails.  On error the buffer is unchanged. */
int lss__buf_reserve(lss__buf *b, size_t n);

/* Appends src[0..n); src may point into the buffer itself and may be NULL
 * when n is 0.  Errors as lss__buf_reserve, buffer unchanged. */
int lss__buf_append(lss__buf *b, const void *src, size_t n);
int lss__buf_append_char(lss__buf *b, char c);

/* Counts n bytes the caller wrote at p + len (after a reserve) as content.
 * n must not exceed cap - len. */
void lss__buf_commit(lss__buf *b, size_t n);

/* Drops the content past len bytes; does nothing if len >= b->len. */
void lss__buf_truncate(lss__buf *b, size_t len);

/* Empties the buffer and keeps its capacity. */
void lss__buf_clear(lss__buf *b);

/* Lowers the capacity to max(cap, len), releasing the storage entirely when
 * that is 0.  Does nothing when the capacity is already that low.  LSS_OK,
 * or LSS_ENOMEM if the allocator fails (buffer unchanged and still valid). */
int lss__buf_shrink_to(lss__buf *b, size_t cap);

/* Hands the storage to the caller and leaves the buffer empty and reusable.
 * Returns p (NULL when nothing was ever allocated).  *len gets the content
 * length and *size the size allocated, which is the old_size to pass when
 * reallocating it; either may be NULL.  Free it with lss__free() on the
 * buffer's allocator. */
char *lss__buf_release(lss__buf *b, size_t *len, size_t *size);

/* Frees the storage; the buffer is empty and reusable. */
void lss__buf_free(lss__buf *b);

/* ------------------------------------------------------------------------
 * AddressSanitizer hooks.  Arena and pool recycle memory without the
 * allocator seeing it, so they poison what they take back; a use after
 * reset, rewind or put is then reported like a use after free.
 * ---------------------------------------------------------------------- */
#if defined(__SANITIZE_ADDRESS__)
#define LSS__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LSS__ASAN 1
#endif
#endif

#ifdef LSS__ASAN
#include <sanitizer/asan_interface.h>
#define LSS__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define LSS__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define LSS__POISON(p, n) ((void)(p), (void)(n))
#define LSS__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif /* LSS_MEM_H */
