/* test_mem.c — arena, pool and buffer: behaviour, alignment, reuse without
 * allocator calls, allocation-failure injection and overflow guards. */
#include "testutil.h"

#include "mem.h"

/* ------------------------------------------------------------------------
 * A checking allocator layered on counting_alloc: it records each block's
 * size so that realloc can verify the old_size it is given, and it refuses
 * (without touching libc) any request above `limit`, so tests can ask for
 * absurd sizes safely under ASan and valgrind.
 * ---------------------------------------------------------------------- */
typedef struct checked_alloc {
    lss_allocator a; /* pass &ck.a to the code under test */
    counting_alloc ca;
    size_t limit;
    long bad_old_sizes;
} checked_alloc;

#define CK_HDR ((size_t)_Alignof(max_align_t))

static void *ck_malloc(void *ctx, size_t n)
{
    checked_alloc *ck = ctx;
    if (n > ck->limit)
        return NULL;
    unsigned char *p = ck->ca.a.malloc(ck->ca.a.ctx, CK_HDR + n);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    return p + CK_HDR;
}

static void *ck_realloc(void *ctx, void *ptr, size_t old, size_t n)
{
    checked_alloc *ck = ctx;
    if (!ptr) {
        if (old != 0)
            ck->bad_old_sizes++;
        return ck_malloc(ctx, n);
    }
    unsigned char *base = (unsigned char *)ptr - CK_HDR;
    size_t was;
    memcpy(&was, base, sizeof was);
    if (was != old)
        ck->bad_old_sizes++;
    if (n > ck->limit)
        return NULL;
    unsigned char *q = ck->ca.a.realloc(ck->ca.a.ctx, base, CK_HDR + old,
                                        CK_HDR + n);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    return q + CK_HDR;
}

static void ck_free(void *ctx, void *ptr)
{
    checked_alloc *ck = ctx;
    if (ptr)
        ck->ca.a.free(ck->ca.a.ctx, (unsigned char *)ptr - CK_HDR);
}

static void checked_alloc_init(checked_alloc *ck)
{
    memset(ck, 0, sizeof *ck);
    counting_alloc_init(&ck->ca);
    ck->limit = (size_t)1 << 30;
    ck->a.malloc = ck_malloc;
    ck->a.realloc = ck_realloc;
    ck->a.free = ck_free;
    ck->a.ctx = ck;
}

/* Everything allocated was freed, and every realloc got the right size. */
static void assert_clean(const checked_alloc *ck)
{
    assert_int_equal(ck->ca.live, 0);
    assert_int_equal(ck->bad_old_sizes, 0);
}

static void fill(void *p, size_t n, unsigned char seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(seed + i * 7);
}

static int check(const void *p, size_t n, unsigned char seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

static int aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

/* ------------------------------------------------------------------------
 * Arena
 * ---------------------------------------------------------------------- */

static void arena_should_align_every_allocation_and_never_overlap(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 256), LSS_OK);

    static const size_t aligns[] = {1, 2, 4, 8, 16, 32, 64, 256, 4096};
    struct {
        void *p;
        size_t n;
    } got[200];
    for (size_t i = 0; i < LSS_ARRAY_LEN(got); i++) {
        size_t align = aligns[i % LSS_ARRAY_LEN(aligns)];
        size_t n = 1 + (i * 37) % 300;
        got[i].p = lss__arena_alloc(&a, n, align);
        got[i].n = n;
        assert_non_null(got[i].p);
        assert_true(aligned(got[i].p, align));
        fill(got[i].p, n, (unsigned char)i);
    }
    for (size_t i = 0; i < LSS_ARRAY_LEN(got); i++)
        assert_true(check(got[i].p, got[i].n, (unsigned char)i));

    void *d = lss__arena_alloc(&a, 24, 0);
    assert_true(aligned(d, _Alignof(max_align_t)));
    int64_t *typed = LSS__ARENA_NEW(&a, int64_t);
    assert_true(aligned(typed, _Alignof(int64_t)));
    *typed = INT64_MIN;

    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_refuse_an_alignment_that_is_not_a_power_of_two(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 128), LSS_OK);
    long calls = ck.ca.calls;
    assert_null(lss__arena_alloc(&a, 8, 3));
    assert_null(lss__arena_alloc(&a, 8, 24));
    assert_null(lss__arena_alloc(&a, 8, SIZE_MAX));
    assert_int_equal(ck.ca.calls, calls);
    assert_non_null(lss__arena_alloc(&a, 8, 8));
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_give_zero_byte_requests_a_pointer(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 64), LSS_OK);
    assert_non_null(lss__arena_alloc(&a, 0, 1));
    assert_non_null(lss__arena_alloc(&a, 64, 1)); /* fills the block */
    assert_non_null(lss__arena_alloc(&a, 0, 1));
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_init_should_allocate_one_block_that_serves_small_requests(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 1024), LSS_OK);
    assert_int_equal(ck.ca.calls, 1);
    for (int i = 0; i < 64; i++)
        assert_non_null(lss__arena_alloc(&a, 16, 16));
    assert_int_equal(ck.ca.calls, 1);
    assert_non_null(lss__arena_alloc(&a, 1, 1));
    assert_int_equal(ck.ca.calls, 2);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_double_its_blocks_up_to_the_growth_limit(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    const size_t first = LSS__ARENA_GROW_LIMIT / 4;
    assert_int_equal(lss__arena_init(&a, &ck.a, first), LSS_OK);
    size_t hdr = lss__arena_held(&a) - first;
    assert_true(hdr > 0 && hdr <= 64);

    /* Each request fills a block exactly, so the next one starts a block. */
    size_t expect = first + hdr, cap = first;
    for (int i = 0; i < 4; i++) {
        assert_non_null(lss__arena_alloc(&a, cap, 1));
        assert_int_equal(lss__arena_held(&a), expect);
        cap = cap * 2 < LSS__ARENA_GROW_LIMIT ? cap * 2
                                               : LSS__ARENA_GROW_LIMIT;
        expect += cap + hdr;
    }
    /* first, 2*first, limit, limit, limit: growth stopped at the limit. */
    assert_non_null(lss__arena_alloc(&a, 1, 1));
    assert_int_equal(lss__arena_held(&a),
                     first + first * 2 + 3 * LSS__ARENA_GROW_LIMIT + 5 * hdr);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_give_an_oversized_request_its_own_block(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 256), LSS_OK);
    size_t hdr = lss__arena_held(&a) - 256;
    void *small = lss__arena_alloc(&a, 100, 1);
    assert_non_null(small);

    void *big = lss__arena_alloc(&a, 10000, 1);
    assert_non_null(big);
    assert_int_equal(lss__arena_held(&a), 256 + hdr + 10000 + hdr);
    fill(big, 10000, 1);

    /* The bump block is undisturbed: the next small request costs nothing
     * and lands right after the first one. */
    long calls = ck.ca.calls;
    char *next = lss__arena_alloc(&a, 50, 1);
    assert_ptr_equal(next, (char *)small + 100);
    assert_int_equal(ck.ca.calls, calls);

    /* An over-aligned oversized request is aligned too. */
    void *huge_aligned = lss__arena_alloc(&a, 20000, 4096);
    assert_non_null(huge_aligned);
    assert_true(aligned(huge_aligned, 4096));
    fill(huge_aligned, 20000, 2);
    assert_true(check(big, 10000, 1));
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

/* One round of a request's scratch use: small, mid and oversized pieces. */
static void arena_round(lss__arena *a, size_t scale)
{
    for (size_t i = 0; i < 40; i++) {
        size_t n = (i * 53 * scale) % 700 + 1;
        void *p = lss__arena_alloc(a, n, (size_t)1 << (i % 7));
        assert_non_null(p);
        fill(p, n, (unsigned char)i);
    }
    assert_non_null(lss__arena_alloc(a, 5000 * scale, 8));
    assert_non_null(lss__arena_alloc(a, 9000 * scale, 64));
}

static void arena_reset_should_reuse_its_blocks_without_allocator_calls(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 512), LSS_OK);
    arena_round(&a, 1);
    lss__arena_reset(&a);

    long calls = ck.ca.calls, frees = ck.ca.frees;
    size_t held = lss__arena_held(&a);
    for (int i = 0; i < 200; i++) {
        arena_round(&a, 1);
        lss__arena_reset(&a);
    }
    assert_int_equal(ck.ca.calls, calls);
    assert_int_equal(ck.ca.frees, frees);
    assert_int_equal(lss__arena_held(&a), held);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_settle_when_rounds_of_different_shapes_alternate(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 512), LSS_OK);
    for (int warm = 0; warm < 2; warm++) {
        arena_round(&a, 1);
        lss__arena_reset(&a);
        arena_round(&a, 3);
        lss__arena_reset(&a);
    }
    long calls = ck.ca.calls;
    size_t held = lss__arena_held(&a);
    for (int i = 0; i < 100; i++) {
        arena_round(&a, 1 + (size_t)(i % 2) * 2);
        lss__arena_reset(&a);
    }
    assert_int_equal(ck.ca.calls, calls);
    assert_int_equal(lss__arena_held(&a), held);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_release_kept_oversized_blocks_that_no_longer_fit(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 256), LSS_OK);
    size_t base = lss__arena_held(&a);
    /* Ever larger single requests: each round releases the smaller block it
     * kept instead of piling blocks up. */
    for (size_t n = 10000; n <= 100000; n += 10000) {
        assert_non_null(lss__arena_alloc(&a, n, 1));
        lss__arena_reset(&a);
        assert_true(lss__arena_held(&a) <= base + n + 64);
    }
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_trim_should_give_back_what_an_unusual_round_grew(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 1000), LSS_OK);
    size_t base = lss__arena_held(&a);
    lss__arena_trim(&a);
    assert_int_equal(lss__arena_held(&a), base);

    for (int i = 0; i < 100; i++) /* regular blocks: 1000, 2000, 4000... */
        assert_non_null(lss__arena_alloc(&a, 900, 8));
    assert_non_null(lss__arena_alloc(&a, 1 << 20, 8)); /* dedicated */
    lss__arena_reset(&a);
    assert_true(lss__arena_held(&a) > base + (1 << 20));

    long calls = ck.ca.calls;
    lss__arena_trim(&a);
    assert_int_equal(lss__arena_held(&a), base);
    assert_int_equal(ck.ca.calls, calls);

    /* Growth starts over: the next block is twice the first. */
    char *p = lss__arena_alloc(&a, 1000, 1);
    assert_non_null(p);
    assert_non_null(lss__arena_alloc(&a, 1, 1));
    assert_int_equal(lss__arena_held(&a), base + (base - 1000) + 2000);

    /* Mid-round, what is in use stays: only the free tail goes. */
    lss__arena_pos pos = lss__arena_mark(&a);
    assert_non_null(lss__arena_alloc(&a, 2000, 1)); /* a third block */
    assert_true(lss__arena_held(&a) > base + (base - 1000) + 2000);
    lss__arena_rewind(&a, pos);
    lss__arena_trim(&a);
    fill(p, 1000, 3);
    assert_true(check(p, 1000, 3));
    assert_int_equal(lss__arena_held(&a), base + (base - 1000) + 2000);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_rewind_should_free_what_was_allocated_after_the_mark(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 256), LSS_OK);
    void *keep = lss__arena_alloc(&a, 200, 1);
    fill(keep, 200, 9);

    lss__arena_pos pos = lss__arena_mark(&a);
    void *first = lss__arena_alloc(&a, 40, 8);
    assert_non_null(first);
    for (int i = 0; i < 3; i++) {
        lss__arena_rewind(&a, pos);
        assert_ptr_equal(lss__arena_alloc(&a, 40, 8), first);
        assert_non_null(lss__arena_alloc(&a, 400, 8)); /* a new block */
        assert_non_null(lss__arena_alloc(&a, 50000, 8)); /* oversized */
        if (i == 0)
            lss__arena_rewind(&a, pos);
    }
    /* Loops of mark/alloc/rewind settle: no more calls, nothing piles up. */
    long calls = ck.ca.calls;
    size_t held = lss__arena_held(&a);
    for (int i = 0; i < 100; i++) {
        lss__arena_rewind(&a, pos);
        assert_non_null(lss__arena_alloc(&a, 40, 8));
        assert_non_null(lss__arena_alloc(&a, 400, 8));
        assert_non_null(lss__arena_alloc(&a, 50000, 8));
    }
    assert_int_equal(ck.ca.calls, calls);
    assert_int_equal(lss__arena_held(&a), held);
    assert_true(check(keep, 200, 9));
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_rewind_should_support_nested_marks(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 128), LSS_OK);
    lss__arena_pos empty = lss__arena_mark(&a);
    char *x = lss__arena_alloc(&a, 100, 1);
    fill(x, 100, 1);
    lss__arena_pos outer = lss__arena_mark(&a);
    char *y = lss__arena_alloc(&a, 500, 1);
    fill(y, 500, 2);
    lss__arena_pos inner = lss__arena_mark(&a);
    char *z = lss__arena_alloc(&a, 9000, 1);
    assert_non_null(z);

    lss__arena_rewind(&a, inner);
    assert_true(check(x, 100, 1) && check(y, 500, 2));
    lss__arena_rewind(&a, outer);
    assert_true(check(x, 100, 1));
    assert_ptr_equal(lss__arena_alloc(&a, 500, 1), y);
    lss__arena_rewind(&a, empty);
    assert_ptr_equal(lss__arena_alloc(&a, 100, 1), x);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_should_refuse_sizes_that_would_overflow(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, SIZE_MAX), LSS_ETOOBIG);
    assert_int_equal(lss__arena_init(&a, &ck.a, LSS__MEM_MAX), LSS_ETOOBIG);
    assert_int_equal(ck.ca.calls, 0);
    lss__arena_destroy(&a);

    assert_int_equal(lss__arena_init(&a, &ck.a, 64), LSS_OK);
    long calls = ck.ca.calls;
    assert_null(lss__arena_alloc(&a, SIZE_MAX, 1));
    assert_null(lss__arena_alloc(&a, SIZE_MAX - 100, 4096));
    assert_null(lss__arena_alloc(&a, LSS__MEM_MAX, 1));
    assert_null(lss__arena_alloc(&a, LSS__MEM_MAX - 8, 64));
    assert_int_equal(ck.ca.calls, calls);
    /* Representable but refused by the allocator: a clean NULL too. */
    assert_null(lss__arena_alloc(&a, ck.limit + 1, 1));
    assert_non_null(lss__arena_alloc(&a, 8, 8));
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

static void arena_init_failure_should_leave_a_usable_arena(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    ck.ca.fail_at = 1;
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, &ck.a, 256), LSS_ENOMEM);
    assert_int_equal(lss__arena_held(&a), 0);
    lss__arena_pos empty = lss__arena_mark(&a);
    char *p = lss__arena_alloc(&a, 100, 1);
    assert_non_null(p);
    lss__arena_rewind(&a, empty);
    assert_ptr_equal(lss__arena_alloc(&a, 100, 1), p);
    lss__arena_reset(&a);
    lss__arena_destroy(&a);
    lss__arena_destroy(&a);
    assert_clean(&ck);
}

/* The whole arena life with the fail_at-th allocator call failing (and,
 * with fail_after, every call after it): every operation must either work
 * or fail cleanly, earlier data must survive, and destroy must free all. */
static void arena_scenario(checked_alloc *ck)
{
    lss__arena a;
    int rc = lss__arena_init(&a, &ck->a, 128);
    assert_true(rc == LSS_OK || rc == LSS_ENOMEM);
    void *kept[30] = {0};
    for (int round = 0; round < 3; round++) {
        lss__arena_pos pos = lss__arena_mark(&a);
        for (size_t i = 0; i < LSS_ARRAY_LEN(kept); i++) {
            size_t n = i % 5 == 4 ? 3000 : 10 + i * 9;
            kept[i] = lss__arena_alloc(&a, n, 8);
            if (kept[i])
                fill(kept[i], n, (unsigned char)i);
        }
        for (size_t i = 0; i < LSS_ARRAY_LEN(kept); i++) {
            size_t n = i % 5 == 4 ? 3000 : 10 + i * 9;
            if (kept[i])
                assert_true(check(kept[i], n, (unsigned char)i));
        }
        if (round == 1)
            lss__arena_rewind(&a, pos);
        else
            lss__arena_reset(&a);
    }
    lss__arena_destroy(&a);
}

static void arena_should_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    arena_scenario(&ck);
    long total = ck.ca.calls;
    assert_true(total > 5);
    assert_clean(&ck);
    for (int after = 0; after <= 1; after++) {
        for (long k = 1; k <= total + 1; k++) {
            checked_alloc_init(&ck);
            ck.ca.fail_at = k;
            ck.ca.fail_after = after;
            arena_scenario(&ck);
            assert_clean(&ck);
        }
    }
}

static void arena_should_work_with_the_libc_allocator(void **state)
{
    (void)state;
    lss__arena a;
    assert_int_equal(lss__arena_init(&a, NULL, 0), LSS_OK);
    assert_true(lss__arena_held(&a) == 4096);
    for (int i = 0; i < 100; i++)
        fill(lss__arena_alloc(&a, 100, 1), 100, 0);
    lss__arena_destroy(&a);
}

/* ------------------------------------------------------------------------
 * Pool
 * ---------------------------------------------------------------------- */

static void pool_should_hand_out_distinct_objects(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__pool p;
    assert_int_equal(lss__pool_init(&p, &ck.a, 24, 3), LSS_OK);
    void *objs[10];
    for (int i = 0; i < 10; i++) {
        objs[i] = lss__pool_get(&p);
        assert_non_null(objs[i]);
        fill(objs[i], 24, (unsigned char)i);
    }
    for (int i = 0; i < 10; i++)
        assert_true(check(objs[i], 24, (unsigned char)i));
    assert_int_equal(p.live, 10);
    assert_int_equal(ck.ca.calls, 4); /* ceil(10 / 3) blocks */
    for (int i = 0; i < 10; i++)
        lss__pool_put(&p, objs[i]);
    lss__pool_put(&p, NULL);
    assert_int_equal(p.live, 0);
    lss__pool_destroy(&p);
    assert_clean(&ck);
}

static void pool_should_align_objects_as_their_size_allows(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 4, 8, 12, 16, 24, 40, 48, 100, 128};
    for (size_t s = 0; s < LSS_ARRAY_LEN(sizes); s++) {
        size_t size = sizes[s];
        /* A type's alignment is a power of two that divides its size. */
        size_t need = size & -size;
        if (need > _Alignof(max_align_t))
            need = _Alignof(max_align_t);
        checked_alloc ck;
        checked_alloc_init(&ck);
        lss__pool p;
        assert_int_equal(lss__pool_init(&p, &ck.a, size, 5), LSS_OK);
        for (int i = 0; i < 12; i++) {
            void *o = lss__pool_get(&p);
            assert_non_null(o);
            assert_true(aligned(o, need));
            assert_true(aligned(o, sizeof(void *))); /* the free-list link */
        }
        lss__pool_destroy(&p);
        assert_clean(&ck);
    }
}

static void pool_get_and_put_should_make_no_allocator_calls_after_warm_up(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__pool p;
    assert_int_equal(lss__pool_init(&p, &ck.a, 64, 8), LSS_OK);
    void *objs[50];
    for (int i = 0; i < 50; i++)
        objs[i] = lss__pool_get(&p);
    for (int i = 0; i < 50; i++)
        lss__pool_put(&p, objs[i]);
    long calls = ck.ca.calls;
    for (int round = 0; round < 100; round++) {
        int n = 1 + round % 50;
        for (int i = 0; i < n; i++) {
            objs[i] = lss__pool_get(&p);
            assert_non_null(objs[i]);
            fill(objs[i], 64, (unsigned char)i);
        }
        for (int i = n - 1; i >= 0; i -= 2)
            lss__pool_put(&p, objs[i]);
        for (int i = n - 2; i >= 0; i -= 2)
            lss__pool_put(&p, objs[i]);
    }
    assert_int_equal(ck.ca.calls, calls);
    assert_int_equal(ck.ca.frees, 0);
    lss__pool_destroy(&p);
    assert_clean(&ck);
}

static void pool_should_return_null_at_its_cap_until_an_object_is_put_back(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__pool p;
    assert_int_equal(lss__pool_init(&p, &ck.a, 32, 4), LSS_OK);
    lss__pool_set_max(&p, 3);
    void *a = lss__pool_get(&p), *b = lss__pool_get(&p), *c = lss__pool_get(&p);
    assert_true(a && b && c);
    assert_true(lss__pool_full(&p));
    long calls = ck.ca.calls;
    assert_null(lss__pool_get(&p));
    assert_int_equal(ck.ca.calls, calls);
    lss__pool_put(&p, b);
    assert_false(lss__pool_full(&p));
    assert_ptr_equal(lss__pool_get(&p), b);
    assert_null(lss__pool_get(&p));
    lss__pool_set_max(&p, 0);
    assert_non_null(lss__pool_get(&p));
    assert_false(lss__pool_full(&p));
    lss__pool_destroy(&p); /* objects still out are freed too */
    assert_clean(&ck);
}

static void pool_init_should_reject_sizes_it_cannot_serve(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__pool p;
    assert_int_equal(lss__pool_init(&p, &ck.a, 0, 8), LSS_EINVAL);
    assert_null(lss__pool_get(&p));
    lss__pool_destroy(&p);
    assert_int_equal(lss__pool_init(&p, &ck.a, 8, 0), LSS_EINVAL);
    assert_int_equal(lss__pool_init(&p, &ck.a, SIZE_MAX, 1), LSS_ETOOBIG);
    assert_int_equal(lss__pool_init(&p, &ck.a, LSS__MEM_MAX, 1), LSS_ETOOBIG);
    assert_int_equal(lss__pool_init(&p, &ck.a, 16, SIZE_MAX / 8), LSS_ETOOBIG);
    assert_int_equal(lss__pool_init(&p, &ck.a, 1 << 20, 1 << 20),
                     (sizeof(size_t) > 4 ? LSS_ENOMEM : LSS_ETOOBIG));
    assert_null(lss__pool_get(&p)); /* still refused by the allocator */
    lss__pool_destroy(&p);
    assert_int_equal(ck.ca.calls, 0);
    assert_clean(&ck);
}

static void pool_init_failure_should_leave_a_usable_pool(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    ck.ca.fail_at = 1;
    lss__pool p;
    assert_int_equal(lss__pool_init(&p, &ck.a, 16, 4), LSS_ENOMEM);
    void *o = lss__pool_get(&p);
    assert_non_null(o);
    lss__pool_put(&p, o);
    lss__pool_destroy(&p);
    lss__pool_destroy(&p);
    assert_clean(&ck);
}

static void pool_scenario(checked_alloc *ck)
{
    lss__pool p;
    int rc = lss__pool_init(&p, &ck->a, 40, 4);
    assert_true(rc == LSS_OK || rc == LSS_ENOMEM);
    void *objs[20] = {0};
    for (int round = 0; round < 3; round++) {
        size_t live = 0;
        for (size_t i = 0; i < LSS_ARRAY_LEN(objs); i++) {
            objs[i] = lss__pool_get(&p);
            if (objs[i]) {
                fill(objs[i], 40, (unsigned char)i);
                live++;
            }
        }
        assert_int_equal(p.live, live);
        for (size_t i = 0; i < LSS_ARRAY_LEN(objs); i++) {
            if (objs[i])
                assert_true(check(objs[i], 40, (unsigned char)i));
            lss__pool_put(&p, objs[i]);
        }
        assert_int_equal(p.live, 0);
    }
    lss__pool_destroy(&p);
}

static void pool_should_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    pool_scenario(&ck);
    long total = ck.ca.calls;
    assert_int_equal(total, 5);
    assert_clean(&ck);
    for (int after = 0; after <= 1; after++) {
        for (long k = 1; k <= total + 1; k++) {
            checked_alloc_init(&ck);
            ck.ca.fail_at = k;
            ck.ca.fail_after = after;
            pool_scenario(&ck);
            assert_clean(&ck);
        }
    }
}

/* ------------------------------------------------------------------------
 * Buffer
 * ---------------------------------------------------------------------- */

static void buf_should_append_bytes_and_keep_a_nul_after_them(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    assert_null(b.p);
    assert_int_equal(ck.ca.calls, 0);
    assert_int_equal(lss__buf_append(&b, NULL, 0), LSS_OK);
    assert_null(b.p);
    assert_int_equal(lss__buf_append(&b, "hello", 5), LSS_OK);
    assert_int_equal(lss__buf_append_char(&b, ','), LSS_OK);
    assert_int_equal(lss__buf_append(&b, " world", 6), LSS_OK);
    assert_int_equal(b.len, 12);
    assert_string_equal(b.p, "hello, world");
    lss__buf_truncate(&b, 5);
    assert_string_equal(b.p, "hello");
    lss__buf_truncate(&b, 50);
    assert_int_equal(b.len, 5);
    lss__buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(lss__buf_append(&b, "again", 5), LSS_OK);
    assert_string_equal(b.p, "again");
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_should_double_its_capacity_as_it_grows(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    assert_int_equal(lss__buf_append_char(&b, 'x'), LSS_OK);
    assert_int_equal(b.cap, LSS__BUF_MIN_CAP);
    size_t caps = 0;
    for (int i = 0; i < 10000; i++) {
        size_t before = b.cap;
        char c = (char)('a' + i % 26);
        assert_int_equal(lss__buf_append_char(&b, c), LSS_OK);
        if (b.cap != before) {
            assert_int_equal(b.cap, before * 2);
            caps++;
        }
    }
    assert_int_equal(ck.ca.calls, 1 + (long)caps);
    assert_int_equal(caps, 8); /* 64 -> 16384 */
    /* A request larger than double is served exactly. */
    assert_int_equal(lss__buf_reserve(&b, 100000), LSS_OK);
    assert_int_equal(b.cap, b.len + 100000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.p[i + 1], (char)('a' + i % 26));
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_reserve_should_make_room_that_commit_can_fill(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    assert_int_equal(lss__buf_reserve(&b, 0), LSS_OK);
    assert_int_equal(ck.ca.calls, 0);
    assert_int_equal(lss__buf_append(&b, "ab", 2), LSS_OK);
    assert_int_equal(lss__buf_reserve(&b, 1000), LSS_OK);
    assert_true(b.cap - b.len >= 1000);
    long calls = ck.ca.calls;
    memset(b.p + b.len, 'z', 1000);
    lss__buf_commit(&b, 1000);
    lss__buf_commit(&b, 0);
    assert_int_equal(b.len, 1002);
    assert_int_equal(b.p[1002], '\0');
    assert_int_equal(b.p[1001], 'z');
    assert_int_equal(ck.ca.calls, calls);
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_clear_should_keep_capacity_so_reuse_costs_no_allocation(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    char chunk[300];
    memset(chunk, 'q', sizeof chunk);
    for (int i = 0; i < 20; i++)
        assert_int_equal(lss__buf_append(&b, chunk, sizeof chunk), LSS_OK);
    size_t cap = b.cap;
    lss__buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.p, "");
    long calls = ck.ca.calls;
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 1 + round % 20; i++)
            assert_int_equal(lss__buf_append(&b, chunk, sizeof chunk), LSS_OK);
        lss__buf_clear(&b);
    }
    assert_int_equal(ck.ca.calls, calls);
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_append_should_accept_a_source_inside_the_buffer(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    assert_int_equal(lss__buf_append(&b, "0123456789", 10), LSS_OK);
    /* Doubling itself forces a move every time once the capacity is hit. */
    for (int i = 0; i < 12; i++)
        assert_int_equal(lss__buf_append(&b, b.p, b.len), LSS_OK);
    assert_int_equal(b.len, (size_t)10 << 12);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.p[i], '0' + (char)(i % 10));
    assert_int_equal(lss__buf_append(&b, b.p + 3, 4), LSS_OK);
    assert_memory_equal(b.p + b.len - 4, "3456", 4);
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_should_refuse_sizes_that_would_overflow(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    assert_int_equal(lss__buf_append(&b, "abc", 3), LSS_OK);
    long calls = ck.ca.calls;
    char *p = b.p;
    size_t cap = b.cap;
    assert_int_equal(lss__buf_reserve(&b, SIZE_MAX), LSS_ETOOBIG);
    assert_int_equal(lss__buf_reserve(&b, SIZE_MAX - 2), LSS_ETOOBIG);
    assert_int_equal(lss__buf_reserve(&b, LSS__MEM_MAX), LSS_ETOOBIG);
    assert_int_equal(lss__buf_reserve(&b, LSS__MEM_MAX - 3), LSS_ETOOBIG);
    assert_int_equal(lss__buf_append(&b, "x", SIZE_MAX), LSS_ETOOBIG);
    assert_int_equal(ck.ca.calls, calls);
    /* Representable but refused by the allocator. */
    assert_int_equal(lss__buf_reserve(&b, LSS__MEM_MAX - 4), LSS_ENOMEM);
    assert_int_equal(lss__buf_reserve(&b, ck.limit), LSS_ENOMEM);
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.p, "abc");
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_should_report_enomem_and_stay_unchanged(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    ck.ca.fail_at = 1;
    assert_int_equal(lss__buf_append(&b, "a", 1), LSS_ENOMEM);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(lss__buf_append(&b, "abc", 3), LSS_OK);

    char big[100];
    memset(big, 'b', sizeof big);
    ck.ca.fail_at = ck.ca.calls + 1;
    size_t cap = b.cap;
    assert_int_equal(lss__buf_append(&b, big, sizeof big), LSS_ENOMEM);
    assert_int_equal(lss__buf_append_char(&b, 'c'), LSS_OK); /* fits */
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.p, "abcc");
    assert_int_equal(lss__buf_append(&b, big, sizeof big), LSS_OK);
    assert_int_equal(b.len, 104);

    lss__buf_clear(&b);
    ck.ca.fail_at = ck.ca.calls + 1;
    ck.ca.fail_after = 1;
    cap = b.cap;
    assert_int_equal(lss__buf_append(&b, "xy", 2), LSS_OK);
    assert_int_equal(lss__buf_shrink_to(&b, 2), LSS_ENOMEM);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.p, "xy");
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_shrink_to_should_give_memory_back_after_a_large_request(
    void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    assert_int_equal(lss__buf_reserve(&b, 1 << 20), LSS_OK);
    assert_int_equal(lss__buf_append(&b, "keep", 4), LSS_OK);
    assert_int_equal(lss__buf_shrink_to(&b, 4096), LSS_OK);
    assert_int_equal(b.cap, 4096);
    assert_string_equal(b.p, "keep");
    /* Never below the content; never upward. */
    assert_int_equal(lss__buf_shrink_to(&b, 1), LSS_OK);
    assert_int_equal(b.cap, 4);
    assert_string_equal(b.p, "keep");
    long calls = ck.ca.calls;
    assert_int_equal(lss__buf_shrink_to(&b, 100), LSS_OK);
    assert_int_equal(b.cap, 4);
    assert_int_equal(ck.ca.calls, calls);
    /* Empty and shrunk to nothing: the storage goes. */
    lss__buf_clear(&b);
    assert_int_equal(lss__buf_shrink_to(&b, 0), LSS_OK);
    assert_null(b.p);
    assert_int_equal(ck.ca.live, 0);
    assert_int_equal(lss__buf_append(&b, "ok", 2), LSS_OK);
    lss__buf_free(&b);
    assert_clean(&ck);
}

static void buf_release_should_hand_over_the_storage(void **state)
{
    (void)state;
    checked_alloc ck;
    checked_alloc_init(&ck);
    lss__buf b;
    lss__buf_init(&b, &ck.a);
    size_t len = 99, size = 99;
    assert_null(lss__buf_release(&b, &len, &size));
    assert_int_equal(len, 0);
    assert_int_equal(size, 0);

    assert_int_equal(lss__buf_append(&b, "owned", 5), LSS_OK);
    char *p = lss__buf_release(&b, &len, &size);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_int_equal(size, LSS__BUF_MIN_CAP + 1);
    assert_string_equal(p, "owned");
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(ck.ca.live, 1);

    /* The size reported is the old_size a realloc needs. */
    p = lss__realloc(&ck.a, p, size, 1000);
    assert_non_null(p);
    assert_string_equal(p, "owned");
    lss__free(&ck.a, p);

    assert_int_equal(lss__buf_append(&b, "next", 4), LSS_OK);
    char *q = lss__buf_release(&b, NULL, NULL);
    assert_string_equal(q, "next");
    assert_null(lss__buf_release(&b, NULL, NULL));
    lss__free(&ck.a, q);
    assert_clean(&ck);
}

static void buf_should_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    char chunk[100];
    memset(chunk, 'm', sizeof chunk);
    for (long k = 1; k <= 8; k++) {
        for (int after = 0; after <= 1; after++) {
            checked_alloc ck;
            checked_alloc_init(&ck);
            ck.ca.fail_at = k;
            ck.ca.fail_after = after;
            lss__buf b;
            lss__buf_init(&b, &ck.a);
            size_t expect = 0;
            for (int i = 0; i < 30; i++) {
                int rc = lss__buf_append(&b, chunk, sizeof chunk);
                assert_true(rc == LSS_OK || rc == LSS_ENOMEM);
                if (rc == LSS_OK)
                    expect += sizeof chunk;
                assert_int_equal(b.len, expect);
                if (b.p)
                    assert_int_equal(b.p[b.len], '\0');
            }
            int rc = lss__buf_shrink_to(&b, 0);
            assert_true(rc == LSS_OK || rc == LSS_ENOMEM);
            assert_int_equal(b.len, expect);
            lss__buf_free(&b);
            assert_clean(&ck);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_should_align_every_allocation_and_never_overlap),
        cmocka_unit_test(arena_should_refuse_an_alignment_that_is_not_a_power_of_two),
        cmocka_unit_test(arena_should_give_zero_byte_requests_a_pointer),
        cmocka_unit_test(arena_init_should_allocate_one_block_that_serves_small_requests),
        cmocka_unit_test(arena_should_double_its_blocks_up_to_the_growth_limit),
        cmocka_unit_test(arena_should_give_an_oversized_request_its_own_block),
        cmocka_unit_test(arena_reset_should_reuse_its_blocks_without_allocator_calls),
        cmocka_unit_test(arena_should_settle_when_rounds_of_different_shapes_alternate),
        cmocka_unit_test(arena_should_release_kept_oversized_blocks_that_no_longer_fit),
        cmocka_unit_test(arena_trim_should_give_back_what_an_unusual_round_grew),
        cmocka_unit_test(arena_rewind_should_free_what_was_allocated_after_the_mark),
        cmocka_unit_test(arena_rewind_should_support_nested_marks),
        cmocka_unit_test(arena_should_refuse_sizes_that_would_overflow),
        cmocka_unit_test(arena_init_failure_should_leave_a_usable_arena),
        cmocka_unit_test(arena_should_fail_cleanly_at_every_allocation),
        cmocka_unit_test(arena_should_work_with_the_libc_allocator),
        cmocka_unit_test(pool_should_hand_out_distinct_objects),
        cmocka_unit_test(pool_should_align_objects_as_their_size_allows),
        cmocka_unit_test(pool_get_and_put_should_make_no_allocator_calls_after_warm_up),
        cmocka_unit_test(pool_should_return_null_at_its_cap_until_an_object_is_put_back),
        cmocka_unit_test(pool_init_should_reject_sizes_it_cannot_serve),
        cmocka_unit_test(pool_init_failure_should_leave_a_usable_pool),
        cmocka_unit_test(pool_should_fail_cleanly_at_every_allocation),
        cmocka_unit_test(buf_should_append_bytes_and_keep_a_nul_after_them),
        cmocka_unit_test(buf_should_double_its_capacity_as_it_grows),
        cmocka_unit_test(buf_reserve_should_make_room_that_commit_can_fill),
        cmocka_unit_test(buf_clear_should_keep_capacity_so_reuse_costs_no_allocation),
        cmocka_unit_test(buf_append_should_accept_a_source_inside_the_buffer),
        cmocka_unit_test(buf_should_refuse_sizes_that_would_overflow),
        cmocka_unit_test(buf_should_report_enomem_and_stay_unchanged),
        cmocka_unit_test(buf_shrink_to_should_give_memory_back_after_a_large_request),
        cmocka_unit_test(buf_release_should_hand_over_the_storage),
        cmocka_unit_test(buf_should_fail_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
