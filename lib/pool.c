/* pool.c — fixed-size objects recycled through a free list threaded through
 * the free objects themselves.  Blocks are carved lazily, so a large block
 * costs nothing until its objects are used. */
#include "mem.h"

#include <string.h>

struct lss__pool_block {
    lss__pool_block *next;
    _Alignas(max_align_t) unsigned char data[];
};

static int add_block(lss__pool *p)
{
    if (p->per_block == 0) /* init refused its arguments */
        return 0;
    size_t bytes = p->per_block * p->stride;
    lss__pool_block *b = lss__malloc(p->alloc, sizeof *b + bytes);
    if (!b)
        return 0;
    b->next = p->blocks;
    p->blocks = b;
    p->fresh = b->data;
    p->fresh_left = p->per_block;
    LSS__POISON(b->data, bytes);
    return 1;
}

int lss__pool_init(lss__pool *p, const lss_allocator *alloc, size_t obj_size,
                   size_t objs_per_block)
{
    *p = (lss__pool){.alloc = lss__alloc_or_libc(alloc)};
    if (obj_size == 0 || objs_per_block == 0)
        return LSS_EINVAL;
    /* The stride holds the free-list link and keeps every object aligned as
     * well as its size allows: a type's alignment divides its size. */
    const size_t w = sizeof(void *);
    if (obj_size > LSS__MEM_MAX - w)
        return LSS_ETOOBIG;
    size_t stride = (obj_size + w - 1) / w * w;
    if (objs_per_block > (LSS__MEM_MAX - sizeof(lss__pool_block)) / stride)
        return LSS_ETOOBIG;
    p->stride = stride;
    p->per_block = objs_per_block;
    return add_block(p) ? LSS_OK : LSS_ENOMEM;
}

void lss__pool_set_max(lss__pool *p, size_t max_objs)
{
    p->max_objs = max_objs;
}

int lss__pool_full(const lss__pool *p)
{
    return p->max_objs != 0 && p->live >= p->max_objs;
}

void *lss__pool_get(lss__pool *p)
{
    if (lss__pool_full(p))
        return NULL;
    void *obj = p->free_list;
    if (obj) {
        LSS__UNPOISON(obj, p->stride);
        memcpy(&p->free_list, obj, sizeof(void *));
    } else {
        if (p->fresh_left == 0 && !add_block(p))
            return NULL;
        obj = p->fresh;
        p->fresh += p->stride;
        p->fresh_left--;
        LSS__UNPOISON(obj, p->stride);
    }
    p->live++;
    return obj;
}

void lss__pool_put(lss__pool *p, void *obj)
{
    if (!obj)
        return;
    memcpy(obj, &p->free_list, sizeof(void *));
    p->free_list = obj;
    p->live--;
    LSS__POISON(obj, p->stride);
}

void lss__pool_destroy(lss__pool *p)
{
    while (p->blocks) {
        lss__pool_block *b = p->blocks;
        p->blocks = b->next;
        LSS__UNPOISON(b->data, p->per_block * p->stride);
        lss__free(p->alloc, b);
    }
    *p = (lss__pool){.alloc = p->alloc};
}
