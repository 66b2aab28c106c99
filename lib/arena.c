/* arena.c — bump allocation over a chain of blocks that reset and rewind
 * recycle instead of freeing.  The growth and reuse policy is in mem.h.
 *
 * Invariant of the regular chain: blocks before `cur` hold live data, `cur`
 * holds `used` bytes, blocks after `cur` are free.  A block found free later
 * in the chain is moved up to just after `cur`, so the chain ends up in the
 * order of use and a repeated workload walks it without a miss. */
#include "mem.h"

struct lss__arena_block {
    lss__arena_block *next;
    size_t cap;
    _Alignas(max_align_t) unsigned char data[];
};

#define MAX_ALIGN _Alignof(max_align_t)
#define PAGE_BLOCK ((size_t)4096 - sizeof(lss__arena_block))

static lss__arena_block *block_new(lss__arena *a, size_t cap)
{
    if (cap > LSS__MEM_MAX - sizeof(lss__arena_block))
        return NULL;
    lss__arena_block *b = lss__malloc(a->alloc, sizeof *b + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->cap = cap;
    a->held += sizeof *b + cap;
    LSS__POISON(b->data, cap);
    return b;
}

static void free_list(lss__arena *a, lss__arena_block **list)
{
    while (*list) {
        lss__arena_block *b = *list;
        *list = b->next;
        LSS__UNPOISON(b->data, b->cap);
        a->held -= sizeof *b + b->cap;
        lss__free(a->alloc, b);
    }
}

/* Poisons b from byte `from` on and every block after it. */
static void poison_from(lss__arena_block *b, size_t from)
{
#ifdef LSS__ASAN
    for (; b; b = b->next, from = 0)
        LSS__POISON(b->data + from, b->cap - from);
#else
    (void)b;
    (void)from;
#endif
}

/* Carves n bytes aligned to `align` from b past *used; NULL if they do not
 * fit. */
static void *bump(lss__arena_block *b, size_t *used, size_t n, size_t align)
{
    size_t room = b->cap - *used;
    size_t pad = (size_t)(-(uintptr_t)(b->data + *used)) & (align - 1);
    if (pad > room || n > room - pad)
        return NULL;
    unsigned char *p = b->data + *used + pad;
    *used += pad + n;
    LSS__UNPOISON(p, n);
    return p;
}

static size_t grown(size_t cap)
{
    if (cap >= LSS__ARENA_GROW_LIMIT)
        return cap;
    return cap * 2 < LSS__ARENA_GROW_LIMIT ? cap * 2 : LSS__ARENA_GROW_LIMIT;
}

int lss__arena_init(lss__arena *a, const lss_allocator *alloc,
                    size_t first_block_size)
{
    *a = (lss__arena){.alloc = lss__alloc_or_libc(alloc)};
    a->next_cap = first_block_size ? first_block_size : PAGE_BLOCK;
    if (a->next_cap > LSS__MEM_MAX - sizeof(lss__arena_block)) {
        a->next_cap = PAGE_BLOCK;
        return LSS_ETOOBIG;
    }
    lss__arena_block *b = block_new(a, a->next_cap);
    if (!b)
        return LSS_ENOMEM;
    a->head = a->cur = b;
    a->next_cap = grown(b->cap);
    return LSS_OK;
}

/* A dedicated block: the smallest kept one that fits, else a new one after
 * releasing the kept ones (none of them fits). */
static void *alloc_big(lss__arena *a, size_t n, size_t align, size_t need)
{
    lss__arena_block **best = NULL;
    for (lss__arena_block **pp = &a->big_free; *pp; pp = &(*pp)->next)
        if ((*pp)->cap >= need && (!best || (*pp)->cap < (*best)->cap))
            best = pp;
    lss__arena_block *b;
    if (best) {
        b = *best;
        *best = b->next;
    } else {
        free_list(a, &a->big_free);
        if (!(b = block_new(a, need)))
            return NULL;
    }
    b->next = a->big;
    a->big = b;
    size_t used = 0;
    return bump(b, &used, n, align);
}

static void *alloc_slow(lss__arena *a, size_t n, size_t align)
{
    /* An empty block's data is aligned to max_align_t; more costs slack. */
    size_t slack = align > MAX_ALIGN ? align - MAX_ALIGN : 0;
    if (n > LSS__MEM_MAX - slack)
        return NULL;
    size_t need = n + slack;
    if (need > a->next_cap)
        return alloc_big(a, n, align, need);

    lss__arena_block **link = a->cur ? &a->cur->next : &a->head;
    lss__arena_block **pp = link;
    while (*pp && (*pp)->cap < need)
        pp = &(*pp)->next;
    lss__arena_block *b = *pp;
    if (b) {
        *pp = b->next;
    } else {
        if (!(b = block_new(a, a->next_cap)))
            return NULL;
        a->next_cap = grown(a->next_cap);
    }
    b->next = *link;
    *link = b;
    a->cur = b;
    a->used = 0;
    return bump(b, &a->used, n, align);
}

void *lss__arena_alloc(lss__arena *a, size_t n, size_t align)
{
    if (align == 0)
        align = MAX_ALIGN;
    if (align & (align - 1))
        return NULL;
    if (a->cur) {
        void *p = bump(a->cur, &a->used, n, align);
        if (p)
            return p;
    }
    return alloc_slow(a, n, align);
}

/* Moves dedicated blocks taken since `upto` back to the kept list. */
static void give_back_big(lss__arena *a, const lss__arena_block *upto)
{
    while (a->big && a->big != upto) {
        lss__arena_block *b = a->big;
        a->big = b->next;
        LSS__POISON(b->data, b->cap);
        b->next = a->big_free;
        a->big_free = b;
    }
}

void lss__arena_reset(lss__arena *a)
{
    a->cur = a->head;
    a->used = 0;
    poison_from(a->head, 0);
    give_back_big(a, NULL);
}

lss__arena_pos lss__arena_mark(const lss__arena *a)
{
    lss__arena_pos pos = {a->cur, a->used, a->big};
    return pos;
}

void lss__arena_rewind(lss__arena *a, lss__arena_pos pos)
{
    /* A position taken before the first block existed means "empty". */
    a->cur = pos.block ? pos.block : a->head;
    a->used = pos.block ? pos.used : 0;
    if (a->cur)
        poison_from(a->cur, a->used);
    give_back_big(a, pos.big);
}

void lss__arena_trim(lss__arena *a)
{
    free_list(a, &a->big_free);
    if (!a->cur)
        return;
    free_list(a, &a->cur->next);
    size_t largest = 0;
    for (const lss__arena_block *b = a->head; b; b = b->next)
        if (b->cap > largest)
            largest = b->cap;
    a->next_cap = grown(largest);
}

size_t lss__arena_held(const lss__arena *a)
{
    return a->held;
}

void lss__arena_destroy(lss__arena *a)
{
    free_list(a, &a->head);
    free_list(a, &a->big);
    free_list(a, &a->big_free);
    *a = (lss__arena){.alloc = a->alloc, .next_cap = PAGE_BLOCK};
}
