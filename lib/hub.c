/* hub.c — subscriptions: stream / category (with consumer group) / all,
 * woken after commit (PROTOCOL.md 8.3, 8.6–8.10).
 *
 * The hub indexes subscriptions by stream name and by category in two hash
 * tables (one node per distinct name, holding a list of its subscriptions)
 * plus a list for "all", so a publish costs two lookups plus the work for
 * the subscriptions that match.  Each subscription owns two byte rings of
 * encoded pokes: the replay (filled by the store before the subscription is
 * handed out) and the live queue (filled by publishers).  Both count
 * against one byte budget; exceeding it kills the subscription with
 * LSS_EOVERFLOW instead of losing a poke.
 *
 * A subscription is woken either through its own eventfd or, when made
 * with a notifier, by sitting on that notifier's ready list: one eventfd
 * for thousands of subscriptions, signalled once when the list becomes
 * non-empty, so a publish to N idle subscribers costs one syscall instead
 * of N, and the loop that serves them reads one fd instead of N. */
#include "internal.h"
#include "hub.h"
#include "names.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>

#define HUB_BUCKETS_MIN 16
#define RING_MIN 512
/* A drained live ring larger than this is given back, so that a burst
 * does not pin up to queue_bytes per subscriber for ever. */
#define RING_KEEP (64 * 1024)
#define QUEUE_DEFAULT ((size_t)1 << 20)
#define NAME_MIN 64

typedef struct hub_key {
    struct hub_key *chain;
    uint64_t hash;
    lss_sub *subs; /* linked through lss_sub.lprev/lnext */
    size_t name_n;
    char name[];
} hub_key;

typedef struct hub_table {
    hub_key **b;
    size_t mask; /* buckets - 1; buckets is a power of two */
    size_t n;    /* keys */
} hub_table;

struct lss__hub {
    lss_allocator a;
    atomic_size_t refs;
    uint64_t seed; /* of the index hash; random per hub */
    pthread_mutex_t mu;
    /* Everything below is guarded by mu. */
    int retired;
    hub_table streams, cats;
    lss_sub *all;
    size_t nsubs;
    EVP_MD_CTX *md_ctx;
    EVP_MD *md5;
    uint64_t hashes;
};

/* A byte ring of encoded pokes: poke_hdr then the name bytes. */
typedef struct ring {
    char *buf;
    size_t cap, head, used;
} ring;

typedef struct poke_hdr {
    int64_t position;
    int64_t global_position;
    uint64_t name_n;
} poke_hdr;

_Static_assert(sizeof(poke_hdr) == LSS__POKE_OVERHEAD, "poke header size");

/* The shared wake-up (streamstore.h).  Lock order: hub->mu, sub->mu,
 * notifier->mu. */
struct lss_notifier {
    lss_allocator a;
    atomic_size_t refs; /* the creator's, plus one per subscription */
    int efd;
    pthread_mutex_t mu;
    /* Guarded by mu. */
    int signalled;        /* efd counter is non-zero */
    lss_sub *head, *tail; /* the ready list, through lss_sub.rprev/rnext */
};

struct lss_sub {
    lss__hub *hub;
    lss_allocator a;
    int kind;
    int efd;             /* own wake-up, or -1 with a notifier */
    lss_notifier *nt;    /* shared wake-up, or NULL */
    void *user;          /* handed back by lss_notifier_next */
    int64_t group_member, group_size;
    int64_t replay_left; /* -1 = unlimited */
    size_t budget;
    /* Guarded by hub->mu. */
    hub_key *key;
    lss_sub *lprev, *lnext;
    /* Guarded by mu. */
    pthread_mutex_t mu;
    ring replay, live;
    int replaying;
    int replay_full;
    int err;       /* 0, or what lss_sub_next reports for ever */
    int signalled; /* efd counter is non-zero; with nt: on its ready list */
    /* Keys are never negative, so position - 1 cannot overflow and no
     * key + 1 is ever computed. */
    int64_t covered; /* live pokes with key <= covered are never delivered:
                        below position, or replayed */
    int64_t seen;    /* highest key delivered (position - 1 at first) */
    /* Guarded by nt->mu. */
    lss_sub *rprev, *rnext;
    /* Subscriber thread only. */
    char *cur;
    size_t cur_cap;
};

/* ---- name hashing (index only; not the consumer-group MD5) ---- */

static uint64_t fnv_step(uint64_t h, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_fin(uint64_t h, size_t n)
{
    h ^= (uint64_t)n;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_name(uint64_t seed, const char *s, size_t n)
{
    return hash_fin(fnv_step(seed, s, n), n);
}

/* ---- the index ---- */

static hub_key *table_find(const hub_table *t, uint64_t hash, const char *s,
                           size_t n)
{
    for (hub_key *k = t->b[hash & t->mask]; k; k = k->chain)
        if (k->hash == hash && k->name_n == n && memcmp(k->name, s, n) == 0)
            return k;
    return NULL;
}

static void table_insert(hub_table *t, hub_key *k)
{
    hub_key **slot = &t->b[k->hash & t->mask];
    k->chain = *slot;
    *slot = k;
    t->n++;
}

static void table_remove(hub_table *t, hub_key *k)
{
    hub_key **p = &t->b[k->hash & t->mask];
    while (*p != k)
        p = &(*p)->chain;
    *p = k->chain;
    t->n--;
}

/* Move every key into nb (nmask + 1 buckets); returns the old array. */
static hub_key **table_rehash(hub_table *t, hub_key **nb, size_t nmask)
{
    hub_key **old = t->b;
    for (size_t i = 0; i <= t->mask; i++) {
        hub_key *k = old[i];
        while (k) {
            hub_key *next = k->chain;
            k->chain = nb[k->hash & nmask];
            nb[k->hash & nmask] = k;
            k = next;
        }
    }
    t->b = nb;
    t->mask = nmask;
    return old;
}

static int table_init(const lss_allocator *a, hub_table *t)
{
    t->b = lss__malloc(a, HUB_BUCKETS_MIN * sizeof *t->b);
    if (!t->b)
        return LSS_ENOMEM;
    memset(t->b, 0, HUB_BUCKETS_MIN * sizeof *t->b);
    t->mask = HUB_BUCKETS_MIN - 1;
    t->n = 0;
    return LSS_OK;
}

static void list_link(lss_sub **head, lss_sub *s)
{
    s->lprev = NULL;
    s->lnext = *head;
    if (*head)
        (*head)->lprev = s;
    *head = s;
}

static void list_unlink(lss_sub **head, lss_sub *s)
{
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        *head = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    s->lprev = s->lnext = NULL;
}

/* ---- rings ---- */

static void ring_write(ring *r, size_t off, const void *src, size_t n)
{
    size_t pos = r->head + off;
    if (pos >= r->cap)
        pos -= r->cap;
    size_t first = r->cap - pos < n ? r->cap - pos : n;
    memcpy(r->buf + pos, src, first);
    if (n > first)
        memcpy(r->buf, (const char *)src + first, n - first);
}

static void ring_read(const ring *r, size_t off, void *dst, size_t n)
{
    size_t pos = r->head + off;
    if (pos >= r->cap)
        pos -= r->cap;
    size_t first = r->cap - pos < n ? r->cap - pos : n;
    memcpy(dst, r->buf + pos, first);
    if (n > first)
        memcpy((char *)dst + first, r->buf, n - first);
}

static void ring_drop(ring *r, size_t n)
{
    r->used -= n;
    r->head += n;
    if (r->head >= r->cap)
        r->head -= r->cap;
    if (r->used == 0)
        r->head = 0;
}

static void ring_free(const lss_allocator *a, ring *r)
{
    lss__free(a, r->buf);
    memset(r, 0, sizeof *r);
}

/* Make room for `need` bytes in total, growing by doubling up to limit
 * (need <= limit).  The contents are linearised into the new buffer. */
static int ring_reserve(ring *r, const lss_allocator *a, size_t need,
                        size_t limit)
{
    if (need <= r->cap)
        return LSS_OK;
    size_t cap = r->cap < RING_MIN ? RING_MIN : r->cap;
    while (cap < need && cap <= limit / 2)
        cap *= 2;
    if (cap < need || cap > limit)
        cap = limit;
    char *buf = lss__malloc(a, cap);
    if (!buf)
        return LSS_ENOMEM;
    if (r->used)
        ring_read(r, 0, buf, r->used);
    lss__free(a, r->buf);
    r->buf = buf;
    r->cap = cap;
    r->head = 0;
    return LSS_OK;
}

static void ring_push(ring *r, const poke_hdr *hd, const char *name)
{
    ring_write(r, r->used, hd, sizeof *hd);
    if (hd->name_n)
        ring_write(r, r->used + sizeof *hd, name, (size_t)hd->name_n);
    r->used += sizeof *hd + (size_t)hd->name_n;
}

/* ---- subscriptions: queue state, called with s->mu held ---- */

static int64_t sub_key(const lss_sub *s, int64_t position, int64_t gpos)
{
    return s->kind == LSS_SUB_STREAM ? position : gpos;
}

static int sub_pending(const lss_sub *s)
{
    return s->err || s->replay.used || (!s->replaying && s->live.used);
}

/* ---- the notifier's ready list, called with nt->mu held ---- */

/* Keep the shared eventfd readable exactly while the list is non-empty. */
static void nt_sync(lss_notifier *nt)
{
    int want = nt->head != NULL;
    if (want && !nt->signalled) {
        uint64_t one = 1;
        nt->signalled = write(nt->efd, &one, sizeof one) == (ssize_t)sizeof one;
    } else if (!want && nt->signalled) {
        uint64_t v;
        if (read(nt->efd, &v, sizeof v) == (ssize_t)sizeof v || errno == EAGAIN)
            nt->signalled = 0;
    }
}

static void ready_append(lss_notifier *nt, lss_sub *s)
{
    s->rnext = NULL;
    s->rprev = nt->tail;
    if (nt->tail)
        nt->tail->rnext = s;
    else
        nt->head = s;
    nt->tail = s;
}

static void ready_unlink(lss_notifier *nt, lss_sub *s)
{
    if (s->rprev)
        s->rprev->rnext = s->rnext;
    else
        nt->head = s->rnext;
    if (s->rnext)
        s->rnext->rprev = s->rprev;
    else
        nt->tail = s->rprev;
    s->rprev = s->rnext = NULL;
}

/* With a notifier: be on its ready list exactly while sub_pending(). */
static void sub_sync_ready(lss_sub *s, int want)
{
    lss_notifier *nt = s->nt;
    pthread_mutex_lock(&nt->mu);
    if (want)
        ready_append(nt, s);
    else
        ready_unlink(nt, s);
    nt_sync(nt);
    pthread_mutex_unlock(&nt->mu);
    s->signalled = want;
}

/* Keep the eventfd readable (or the subscription on its notifier's ready
 * list) exactly while sub_pending(): one write on the way up, one read on
 * the way down, nothing otherwise. */
static void sub_sync_signal(lss_sub *s)
{
    int want = sub_pending(s);
    if (s->nt) {
        if (want != s->signalled)
            sub_sync_ready(s, want);
        return;
    }
    if (want && !s->signalled) {
        uint64_t one = 1;
        s->signalled = write(s->efd, &one, sizeof one) == (ssize_t)sizeof one;
    } else if (!want && s->signalled) {
        uint64_t v;
        if (read(s->efd, &v, sizeof v) == (ssize_t)sizeof v || errno == EAGAIN)
            s->signalled = 0;
    }
}

/* The subscription is dead: drop its queue and report code from now on. */
static void sub_fail(lss_sub *s, int code)
{
    if (!s->err)
        s->err = code;
    ring_free(&s->a, &s->replay);
    ring_free(&s->a, &s->live);
    sub_sync_signal(s);
}

static size_t sub_queued(const lss_sub *s)
{
    return s->replay.used + s->live.used;
}

static int sub_fits(const lss_sub *s, size_t name_n)
{
    return s->budget >= LSS__POKE_OVERHEAD &&
           name_n <= s->budget - LSS__POKE_OVERHEAD &&
           LSS__POKE_OVERHEAD + name_n <= s->budget - sub_queued(s);
}

static void sub_offer(lss_sub *s, const char *stream, size_t stream_n,
                      int64_t position, int64_t gpos)
{
    pthread_mutex_lock(&s->mu);
    if (s->err || sub_key(s, position, gpos) <= s->covered)
        goto out;
    if (!sub_fits(s, stream_n)) {
        sub_fail(s, LSS_EOVERFLOW);
        goto out;
    }
    size_t esz = LSS__POKE_OVERHEAD + stream_n;
    if (ring_reserve(&s->live, &s->a, s->live.used + esz,
                     s->budget - s->replay.used) != LSS_OK) {
        sub_fail(s, LSS_EOVERFLOW); /* could not queue it: same outcome */
        goto out;
    }
    poke_hdr hd = {position, gpos, (uint64_t)stream_n};
    ring_push(&s->live, &hd, stream);
    if (!s->signalled)
        sub_sync_signal(s);
out:
    pthread_mutex_unlock(&s->mu);
}

/* ---- the hub ---- */

static uint64_t hub_seed(const lss__hub *h)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = hash_fin((uint64_t)(uintptr_t)h, 0);
    return seed ^ 0xcbf29ce484222325ULL;
}

int lss__hub_new(const lss_allocator *a, lss__hub **out)
{
    if (!out)
        return LSS_EINVAL;
    *out = NULL;
    a = lss__alloc_or_libc(a);
    lss__hub *h = lss__malloc(a, sizeof *h);
    if (!h)
        return LSS_ENOMEM;
    memset(h, 0, sizeof *h);
    h->a = *a;
    atomic_init(&h->refs, 1);
    int rc = LSS_ENOMEM;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        lss__free(a, h);
        return LSS_ENOMEM;
    }
    if (table_init(a, &h->streams) != LSS_OK ||
        table_init(a, &h->cats) != LSS_OK)
        goto fail;
    rc = LSS_EINTERNAL;
    h->md_ctx = EVP_MD_CTX_new();
    h->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    if (!h->md_ctx || !h->md5)
        goto fail;
    h->seed = hub_seed(h);
    *out = h;
    return LSS_OK;
fail:
    EVP_MD_free(h->md5);
    EVP_MD_CTX_free(h->md_ctx);
    lss__free(a, h->streams.b);
    lss__free(a, h->cats.b);
    pthread_mutex_destroy(&h->mu);
    lss__free(a, h);
    return rc;
}

void lss__hub_ref(lss__hub *h)
{
    if (h)
        atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

void lss__hub_unref(lss__hub *h)
{
    if (!h || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Every subscription holds a reference, so no key is left. */
    lss_allocator a = h->a;
    EVP_MD_free(h->md5);
    EVP_MD_CTX_free(h->md_ctx);
    lss__free(&a, h->streams.b);
    lss__free(&a, h->cats.b);
    pthread_mutex_destroy(&h->mu);
    lss__free(&a, h);
}

void lss__hub_retire(lss__hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->retired = 1;
    pthread_mutex_unlock(&h->mu);
}

size_t lss__hub_subscribers(lss__hub *h)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->mu);
    size_t n = h->nsubs;
    pthread_mutex_unlock(&h->mu);
    return n;
}

uint64_t lss__hub_hashes(lss__hub *h)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->mu);
    uint64_t n = h->hashes;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Consumer-group state of one publish, computed on first need. */
enum { GROUP_UNKNOWN, GROUP_HASHED, GROUP_NONE, GROUP_ERROR };

static int group_hash(lss__hub *h, const char *stream, size_t stream_n,
                      int64_t *h64)
{
    const char *card;
    size_t card_n;
    if (!lss_cardinal_id(stream, stream_n, &card, &card_n) || card_n == 0)
        return GROUP_NONE;
    h->hashes++;
    if (lss__hash64_ctx(h->md_ctx, h->md5, card, card_n, h64) != LSS_OK)
        return GROUP_ERROR;
    return GROUP_HASHED;
}

static void publish_category(lss__hub *h, hub_key *k, const char *stream,
                             size_t stream_n, int64_t position, int64_t gpos)
{
    int group = GROUP_UNKNOWN;
    int64_t h64 = 0;
    for (lss_sub *s = k->subs; s; s = s->lnext) {
        if (s->group_size > 0) {
            if (group == GROUP_UNKNOWN)
                group = group_hash(h, stream, stream_n, &h64);
            if (group == GROUP_NONE)
                continue;
            if (group == GROUP_ERROR) {
                /* Cannot tell whether it matches: fail loudly rather than
                 * skip a poke that may have been its. */
                pthread_mutex_lock(&s->mu);
                sub_fail(s, LSS_EINTERNAL);
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            if (lss__hash_member(h64, s->group_size) != s->group_member)
                continue;
        }
        sub_offer(s, stream, stream_n, position, gpos);
    }
}

void lss__hub_publish(lss__hub *h, const char *stream, size_t stream_n,
                      int64_t position, int64_t global_position)
{
    if (!h || (!stream && stream_n))
        return;
    pthread_mutex_lock(&h->mu);
    if (h->retired || h->nsubs == 0)
        goto out;
    if (h->streams.n || h->cats.n) {
        size_t cat_n = lss_category_len(stream, stream_n);
        uint64_t st = fnv_step(h->seed, stream, cat_n);
        uint64_t hc = hash_fin(st, cat_n);
        st = fnv_step(st, stream + cat_n, stream_n - cat_n);
        uint64_t hs = hash_fin(st, stream_n);
        hub_key *k = h->streams.n
                         ? table_find(&h->streams, hs, stream, stream_n)
                         : NULL;
        for (lss_sub *s = k ? k->subs : NULL; s; s = s->lnext)
            sub_offer(s, stream, stream_n, position, global_position);
        k = h->cats.n ? table_find(&h->cats, hc, stream, cat_n) : NULL;
        if (k)
            publish_category(h, k, stream, stream_n, position,
                             global_position);
    }
    for (lss_sub *s = h->all; s; s = s->lnext)
        sub_offer(s, stream, stream_n, position, global_position);
out:
    pthread_mutex_unlock(&h->mu);
}

/* ---- subscribe / close ---- */

static int check_opts(const lss_sub_opts *in, lss_sub_opts *o)
{
    lss_sub_opts_init(o);
    if (!in || in->struct_size < offsetof(lss_sub_opts, group_member))
        return LSS_EINVAL;
    memcpy(o, in, in->struct_size < sizeof *o ? in->struct_size : sizeof *o);
    o->struct_size = sizeof *o;
    switch (o->kind) {
    case LSS_SUB_ALL:
        o->group_member = o->group_size = 0;
        break;
    case LSS_SUB_STREAM:
        o->group_member = o->group_size = 0;
        /* fall through */
    case LSS_SUB_CATEGORY:
        if (!o->name || o->name_n == 0)
            return LSS_EINVAL;
        if (o->group_member < 0 || o->group_size < 0 ||
            ((o->group_member > 0 || o->group_size > 0) &&
             o->group_member >= o->group_size))
            return LSS_EINVAL;
        break;
    default:
        return LSS_EINVAL;
    }
    if (o->queue_bytes == 0)
        o->queue_bytes = QUEUE_DEFAULT;
    return LSS_OK;
}

static lss_sub *sub_new(const lss_allocator *a, const lss_sub_opts *o)
{
    lss_sub *s = lss__malloc(a, sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->a = *a;
    s->kind = o->kind;
    s->group_member = o->group_member;
    s->group_size = o->group_size;
    s->replay_left = o->replay_max < 0 ? -1 : o->replay_max;
    s->budget = o->queue_bytes;
    s->replaying = 1;
    s->covered = s->seen = (o->position > 0 ? o->position : 0) - 1;
    s->efd = -1;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        lss__free(a, s);
        return NULL;
    }
    return s;
}

static void sub_free(lss_sub *s)
{
    lss_allocator a = s->a;
    if (s->efd >= 0)
        close(s->efd);
    pthread_mutex_destroy(&s->mu);
    ring_free(&a, &s->replay);
    ring_free(&a, &s->live);
    lss__free(&a, s->cur);
    lss__free(&a, s);
}

/* After an insert: double the table outside the lock when it is fuller
 * than one key per bucket.  Called and returns with h->mu held. */
static void table_maybe_grow(lss__hub *h, hub_table *t)
{
    while (t->n > t->mask + 1 && t->mask < SIZE_MAX / 4 / sizeof *t->b) {
        size_t mask = t->mask;
        size_t nmask = mask * 2 + 1;
        pthread_mutex_unlock(&h->mu);
        hub_key **nb = lss__malloc(&h->a, (nmask + 1) * sizeof *nb);
        if (nb)
            memset(nb, 0, (nmask + 1) * sizeof *nb);
        pthread_mutex_lock(&h->mu);
        if (!nb)
            return; /* longer chains, still correct */
        if (t->mask != mask) {
            pthread_mutex_unlock(&h->mu);
            lss__free(&h->a, nb);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        hub_key **old = table_rehash(t, nb, nmask);
        pthread_mutex_unlock(&h->mu);
        lss__free(&h->a, old);
        pthread_mutex_lock(&h->mu);
    }
}

static hub_key *key_new(lss__hub *h, const char *name, size_t n)
{
    if (n > SIZE_MAX - sizeof(hub_key))
        return NULL;
    hub_key *k = lss__malloc(&h->a, sizeof *k + n);
    if (!k)
        return NULL;
    memcpy(k->name, name, n);
    k->name_n = n;
    k->hash = hash_name(h->seed, name, n);
    k->subs = NULL;
    k->chain = NULL;
    return k;
}

int lss__hub_subscribe(lss__hub *h, const lss_allocator *a,
                       const lss_sub_opts *in, lss_notifier *nt, void *user,
                       lss_sub **out)
{
    lss_sub_opts o;
    hub_key *spare = NULL;
    if (!out)
        return LSS_EINVAL;
    *out = NULL;
    if (!h)
        return LSS_EINVAL;
    int rc = check_opts(in, &o);
    if (rc != LSS_OK)
        return rc;
    a = lss__alloc_or_libc(a);
    lss_sub *s = sub_new(a, &o);
    if (!s)
        return LSS_ENOMEM;
    if (!nt) {
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0) {
            rc = errno == ENOMEM ? LSS_ENOMEM : LSS_EIO;
            goto fail;
        }
    }
    /* The index node is made before taking the lock and dropped after it
     * when the name is already indexed. */
    if (o.kind != LSS_SUB_ALL && !(spare = key_new(h, o.name, o.name_n))) {
        rc = LSS_ENOMEM;
        goto fail;
    }
    s->hub = h;
    lss__hub_ref(h);
    if (nt) {
        s->nt = nt;
        s->user = user;
        atomic_fetch_add_explicit(&nt->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_lock(&h->mu);
    h->nsubs++;
    if (o.kind == LSS_SUB_ALL) {
        list_link(&h->all, s);
    } else {
        hub_table *t = o.kind == LSS_SUB_STREAM ? &h->streams : &h->cats;
        hub_key *k = table_find(t, spare->hash, o.name, o.name_n);
        if (!k) {
            k = spare;
            spare = NULL;
            table_insert(t, k);
        }
        list_link(&k->subs, s);
        s->key = k;
        table_maybe_grow(h, t);
    }
    pthread_mutex_unlock(&h->mu);
    lss__free(&h->a, spare);
    *out = s;
    return LSS_OK;
fail:
    sub_free(s);
    return rc;
}

void lss_sub_close(lss_sub *s)
{
    if (!s)
        return;
    lss__hub *h = s->hub;
    hub_key *dead = NULL;
    pthread_mutex_lock(&h->mu);
    if (s->kind == LSS_SUB_ALL) {
        list_unlink(&h->all, s);
    } else {
        hub_key *k = s->key;
        list_unlink(&k->subs, s);
        if (!k->subs) {
            table_remove(s->kind == LSS_SUB_STREAM ? &h->streams : &h->cats,
                         k);
            dead = k;
        }
    }
    h->nsubs--;
    pthread_mutex_unlock(&h->mu);
    lss__free(&h->a, dead);
    /* No publisher can reach s any more; leave the ready list. */
    lss_notifier *nt = s->nt;
    if (nt) {
        pthread_mutex_lock(&s->mu);
        if (s->signalled)
            sub_sync_ready(s, 0);
        pthread_mutex_unlock(&s->mu);
    }
    sub_free(s);
    lss_notifier_free(nt);
    lss__hub_unref(h);
}

/* ---- replay ---- */

int lss__sub_add_replay(lss_sub *s, const char *stream, size_t stream_n,
                        int64_t position, int64_t global_position)
{
    if (!s || (!stream && stream_n))
        return LSS_EINVAL;
    int64_t key = sub_key(s, position, global_position);
    int rc = LSS_OK;
    pthread_mutex_lock(&s->mu);
    if (!s->replaying) {
        rc = LSS_EMISUSE;
    } else if (s->err || s->replay_full) {
        rc = LSS_DONE;
    } else if (key <= s->covered) {
        rc = LSS_OK; /* below position, or not ascending: never delivered */
    } else if (s->replay_left == 0 || !sub_fits(s, stream_n)) {
        s->replay_full = 1;
        rc = LSS_DONE;
    } else if (ring_reserve(&s->replay, &s->a,
                            s->replay.used + LSS__POKE_OVERHEAD + stream_n,
                            s->budget - s->live.used) != LSS_OK) {
        rc = LSS_ENOMEM;
    } else {
        poke_hdr hd = {position, global_position, (uint64_t)stream_n};
        ring_push(&s->replay, &hd, stream);
        s->covered = key;
        if (s->replay_left > 0)
            s->replay_left--;
        sub_sync_signal(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Live pokes are queued in ascending key order, so the ones the replay
 * already covered are a prefix of the live ring. */
static void drop_replayed_prefix(lss_sub *s)
{
    poke_hdr hd;
    while (s->live.used) {
        ring_read(&s->live, 0, &hd, sizeof hd);
        if (sub_key(s, hd.position, hd.global_position) > s->covered)
            break;
        ring_drop(&s->live, sizeof hd + (size_t)hd.name_n);
    }
}

void lss__sub_replay_done(lss_sub *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->replaying) {
        s->replaying = 0;
        drop_replayed_prefix(s);
        sub_sync_signal(s);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- public: the subscriber's side ---- */

void lss_sub_opts_init(lss_sub_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->replay_max = 1000;
    o->queue_bytes = QUEUE_DEFAULT;
}

int lss_sub_fd(const lss_sub *s)
{
    return s ? s->efd : -1;
}

/* ---- public: the notifier ---- */

int lss_notifier_new(const lss_allocator *a, lss_notifier **out)
{
    if (!out)
        return LSS_EINVAL;
    *out = NULL;
    a = lss__alloc_or_libc(a);
    lss_notifier *nt = lss__malloc(a, sizeof *nt);
    if (!nt)
        return LSS_ENOMEM;
    memset(nt, 0, sizeof *nt);
    nt->a = *a;
    atomic_init(&nt->refs, 1);
    if (pthread_mutex_init(&nt->mu, NULL) != 0) {
        lss__free(a, nt);
        return LSS_ENOMEM;
    }
    nt->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (nt->efd < 0) {
        int rc = errno == ENOMEM ? LSS_ENOMEM : LSS_EIO;
        pthread_mutex_destroy(&nt->mu);
        lss__free(a, nt);
        return rc;
    }
    *out = nt;
    return LSS_OK;
}

int lss_notifier_fd(const lss_notifier *nt)
{
    return nt ? nt->efd : -1;
}

/* Round robin: the head goes to the tail, so a subscription that stays
 * ready (the caller stopped early, or a publisher refilled it meanwhile)
 * does not starve the others. */
int lss_notifier_next(lss_notifier *nt, lss_sub **sub, void **user)
{
    if (!nt || !sub)
        return LSS_EINVAL;
    pthread_mutex_lock(&nt->mu);
    lss_sub *s = nt->head;
    if (s && s != nt->tail) {
        ready_unlink(nt, s);
        ready_append(nt, s);
    }
    pthread_mutex_unlock(&nt->mu);
    *sub = s;
    if (user)
        *user = s ? s->user : NULL; /* set once, before s was published */
    return s ? LSS_ROW : LSS_AGAIN;
}

void lss_notifier_free(lss_notifier *nt)
{
    if (!nt ||
        atomic_fetch_sub_explicit(&nt->refs, 1, memory_order_acq_rel) != 1)
        return;
    lss_allocator a = nt->a;
    close(nt->efd);
    pthread_mutex_destroy(&nt->mu);
    lss__free(&a, nt);
}

static int grow_cur(lss_sub *s, size_t n)
{
    size_t cap = s->cur_cap ? s->cur_cap : NAME_MIN;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    char *p = lss__realloc(&s->a, s->cur, s->cur_cap, cap);
    if (!p)
        return LSS_ENOMEM;
    s->cur = p;
    s->cur_cap = cap;
    return LSS_OK;
}

int lss_sub_next(lss_sub *s, lss_poke *out)
{
    if (!s || !out)
        return LSS_EINVAL;
    int rc;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->err) {
            rc = s->err;
            break;
        }
        ring *r = s->replay.used ? &s->replay
                  : !s->replaying && s->live.used ? &s->live
                                                   : NULL;
        if (!r) {
            rc = LSS_AGAIN;
            break;
        }
        poke_hdr hd;
        ring_read(r, 0, &hd, sizeof hd);
        size_t n = (size_t)hd.name_n;
        if (n > s->cur_cap) {
            /* Rare: allocate without holding up publishers. */
            pthread_mutex_unlock(&s->mu);
            if (grow_cur(s, n) != LSS_OK)
                return LSS_ENOMEM;
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (n)
            ring_read(r, sizeof hd, s->cur, n);
        ring_drop(r, sizeof hd + n);
        if (r == &s->replay && !r->used)
            ring_free(&s->a, r); /* replay is one-shot */
        int64_t key = sub_key(s, hd.position, hd.global_position);
        if (key <= s->seen)
            continue;
        s->seen = key;
        out->stream.p = n ? s->cur : "";
        out->stream.n = n;
        out->position = hd.position;
        out->global_position = hd.global_position;
        rc = LSS_ROW;
        break;
    }
    if (!s->live.used && s->live.cap > RING_KEEP)
        ring_free(&s->a, &s->live);
    sub_sync_signal(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
