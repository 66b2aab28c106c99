/* test_hub.c — the subscription hub: matching, consumer groups, replay,
 * positions, flow control, wake-ups, threads and allocation. */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hub.h"
#include "internal.h"

/* ---- helpers ---- */

static lss__hub *hub_new_ok(const lss_allocator *a)
{
    lss__hub *h = NULL;
    assert_int_equal(lss__hub_new(a, &h), LSS_OK);
    assert_non_null(h);
    return h;
}

/* Subscribe in replay phase. */
static lss_sub *sub_replaying(lss__hub *h, const lss_allocator *a, int kind,
                              const char *name, int64_t position,
                              int64_t member, int64_t size, size_t qbytes)
{
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = kind;
    o.name = name;
    o.name_n = name ? strlen(name) : 0;
    o.position = position;
    o.group_member = member;
    o.group_size = size;
    if (qbytes)
        o.queue_bytes = qbytes;
    lss_sub *s = NULL;
    assert_int_equal(lss__hub_subscribe(h, a, &o, NULL, NULL, &s), LSS_OK);
    assert_non_null(s);
    return s;
}

/* Subscribe with no replay: live from the start. */
static lss_sub *sub_live(lss__hub *h, int kind, const char *name,
                         int64_t position)
{
    lss_sub *s = sub_replaying(h, NULL, kind, name, position, 0, 0, 0);
    lss__sub_replay_done(s);
    return s;
}

static lss_sub *sub_group(lss__hub *h, const char *cat, int64_t member,
                          int64_t size)
{
    lss_sub *s =
        sub_replaying(h, NULL, LSS_SUB_CATEGORY, cat, 0, member, size, 0);
    lss__sub_replay_done(s);
    return s;
}

static void pub(lss__hub *h, const char *stream, int64_t pos, int64_t gpos)
{
    lss__hub_publish(h, stream, strlen(stream), pos, gpos);
}

static void replay(lss_sub *s, const char *stream, int64_t pos, int64_t gpos)
{
    assert_int_equal(lss__sub_add_replay(s, stream, strlen(stream), pos, gpos),
                     LSS_OK);
}

#define expect_poke(s, name, pos, gpos)                                 \
    do {                                                                \
        lss_poke p_;                                                    \
        assert_int_equal(lss_sub_next((s), &p_), LSS_ROW);              \
        assert_span_equal(p_.stream.p, p_.stream.n, (name));            \
        assert_int_equal(p_.position, (pos));                           \
        assert_int_equal(p_.global_position, (gpos));                   \
    } while (0)

#define expect_again(s)                                                 \
    do {                                                                \
        lss_poke p_;                                                    \
        assert_int_equal(lss_sub_next((s), &p_), LSS_AGAIN);            \
    } while (0)

static int readable(const lss_sub *s)
{
    struct pollfd p = {lss_sub_fd(s), POLLIN, 0};
    int n = poll(&p, 1, 0);
    assert_true(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

/* Drain s; returns how many pokes it held (checking nothing). */
static int drain(lss_sub *s)
{
    lss_poke p;
    int n = 0, rc;
    while ((rc = lss_sub_next(s, &p)) == LSS_ROW)
        n++;
    assert_int_equal(rc, LSS_AGAIN);
    return n;
}

/* Subscriptions a test may open at once: each holds an eventfd. */
static int fd_budget(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return want;
    long room = (long)rl.rlim_cur - 64;
    return room < want ? (int)room : want;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- options ---- */

static void sub_opts_init_should_set_the_documented_defaults(void **state)
{
    (void)state;
    lss_sub_opts o;
    memset(&o, 0xa5, sizeof o);
    lss_sub_opts_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.kind, 0);
    assert_null(o.name);
    assert_int_equal(o.name_n, 0);
    assert_int_equal(o.position, 0);
    assert_int_equal(o.group_member, 0);
    assert_int_equal(o.group_size, 0);
    assert_int_equal(o.replay_max, 1000);
    assert_int_equal(o.queue_bytes, 1 << 20);
}

static void subscribe_should_reject_invalid_options(void **state)
{
    (void)state;
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss__hub *h = hub_new_ok(&ca.a);
    lss_sub *s = (lss_sub *)&s; /* must be reset to NULL on failure */
    lss_sub_opts o;

    assert_int_equal(lss__hub_subscribe(h, &ca.a, NULL, NULL, NULL, &s),
                     LSS_EINVAL);
    assert_null(s);
    lss_sub_opts_init(&o);
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s),
                     LSS_EINVAL);
    o.kind = 4;
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s),
                     LSS_EINVAL);
    o.kind = LSS_SUB_STREAM;
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s),
                     LSS_EINVAL);
    o.name = "";
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s),
                     LSS_EINVAL);
    o.kind = LSS_SUB_CATEGORY;
    o.name = "cat";
    o.name_n = 3;
    static const int64_t bad[][2] = {{-1, 2}, {0, -1}, {1, 0}, {2, 2},
                                     {3, 2}, {1, 1}};
    for (size_t i = 0; i < LSS_ARRAY_LEN(bad); i++) {
        o.group_member = bad[i][0];
        o.group_size = bad[i][1];
        assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s),
                         LSS_EINVAL);
    }
    o.group_member = 0;
    o.group_size = 0;
    o.struct_size = 8;
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s),
                     LSS_EINVAL);
    o.struct_size = sizeof o;
    assert_int_equal(lss__hub_subscribe(NULL, &ca.a, &o, NULL, NULL, &s),
                     LSS_EINVAL);
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, NULL),
                     LSS_EINVAL);

    /* Group fields are ignored where they do not apply. */
    o.kind = LSS_SUB_ALL;
    o.name = NULL;
    o.name_n = 0;
    o.group_member = 7;
    o.group_size = 2;
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s), LSS_OK);
    lss_sub_close(s);
    o.kind = LSS_SUB_STREAM;
    o.name = "cat-1";
    o.name_n = 5;
    assert_int_equal(lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s), LSS_OK);
    lss_sub_close(s);

    assert_int_equal(lss__hub_subscribers(h), 0);
    lss__hub_unref(h);
    assert_int_equal(ca.live, 0);
}

static void null_arguments_should_be_rejected_or_ignored(void **state)
{
    (void)state;
    lss_poke p;
    assert_int_equal(lss__hub_new(NULL, NULL), LSS_EINVAL);
    assert_int_equal(lss_sub_next(NULL, &p), LSS_EINVAL);
    assert_int_equal(lss_sub_fd(NULL), -1);
    assert_int_equal(lss__sub_add_replay(NULL, "a", 1, 0, 1), LSS_EINVAL);
    lss_sub_close(NULL);
    lss__sub_replay_done(NULL);
    lss__hub_ref(NULL);
    lss__hub_unref(NULL);
    lss__hub_retire(NULL);
    lss__hub_publish(NULL, "a", 1, 0, 1);
    lss_sub_opts_init(NULL);

    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_live(h, LSS_SUB_ALL, NULL, 0);
    assert_int_equal(lss_sub_next(s, NULL), LSS_EINVAL);
    lss__hub_publish(h, NULL, 3, 0, 1); /* ignored */
    lss__hub_publish(h, NULL, 0, 0, 2); /* an empty name is still a poke */
    expect_poke(s, "", 0, 2);
    assert_int_equal(lss__sub_add_replay(s, "a", 1, 0, 3), LSS_EMISUSE);
    assert_int_equal(lss__sub_add_replay(s, NULL, 1, 0, 3), LSS_EINVAL);
    lss_sub_close(s);
    lss__hub_unref(h);
}

/* ---- matching ---- */

static void stream_subscription_should_receive_only_its_exact_stream(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_live(h, LSS_SUB_STREAM, "account-1", 0);
    lss_sub *acc = sub_live(h, LSS_SUB_STREAM, "acc", 0);
    int64_t g = 1;
    pub(h, "account-10", 0, g++);
    pub(h, "account-", 0, g++);
    pub(h, "account", 0, g++);
    pub(h, "Account-1", 0, g++);
    pub(h, "account-1+x", 0, g++);
    pub(h, "acc-1", 0, g++);
    pub(h, "accounts-1", 0, g++);
    lss__hub_publish(h, "account-1\0", 10, 0, g++); /* bytes, not C strings */
    pub(h, "account-1", 0, g++);
    pub(h, "account-1", 1, g++);
    expect_poke(s, "account-1", 0, 9);
    expect_poke(s, "account-1", 1, 10);
    expect_again(s);
    expect_again(acc);
    lss_sub_close(s);
    lss_sub_close(acc);
    lss__hub_unref(h);
}

static void category_subscription_should_match_the_category_exactly(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *acct = sub_live(h, LSS_SUB_CATEGORY, "account", 0);
    lss_sub *acc = sub_live(h, LSS_SUB_CATEGORY, "acc", 0);
    lss_sub *cmd = sub_live(h, LSS_SUB_CATEGORY, "account:command", 0);
    lss_sub *dash = sub_live(h, LSS_SUB_CATEGORY, "account-1", 0);
    pub(h, "account-1", 0, 1);
    pub(h, "account:command-1", 0, 2);
    pub(h, "accountLog-1", 0, 3);
    pub(h, "Account-1", 0, 4);
    pub(h, "account", 0, 5);
    pub(h, "account-2+deposit", 0, 6);
    pub(h, "acc", 0, 7);
    pub(h, "account:command", 1, 8);
    pub(h, "account-1-2", 1, 9);
    pub(h, "-x", 0, 10);

    expect_poke(acct, "account-1", 0, 1);
    expect_poke(acct, "account", 0, 5);
    expect_poke(acct, "account-2+deposit", 0, 6);
    expect_poke(acct, "account-1-2", 1, 9);
    expect_again(acct);
    expect_poke(acc, "acc", 0, 7);
    expect_again(acc);
    expect_poke(cmd, "account:command-1", 0, 2);
    expect_poke(cmd, "account:command", 1, 8);
    expect_again(cmd);
    expect_again(dash); /* a category with '-' never matches */
    lss_sub_close(acct);
    lss_sub_close(acc);
    lss_sub_close(cmd);
    lss_sub_close(dash);
    lss__hub_unref(h);
}

static void all_subscription_should_receive_every_write_from_its_position(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *all = sub_live(h, LSS_SUB_ALL, NULL, 0);
    lss_sub *from3 = sub_live(h, LSS_SUB_ALL, NULL, 3);
    pub(h, "a-1", 0, 1);
    pub(h, "b", 0, 2);
    pub(h, "c:d-x+y", 5, 3);
    pub(h, "a-1", 1, 4);
    expect_poke(all, "a-1", 0, 1);
    expect_poke(all, "b", 0, 2);
    expect_poke(all, "c:d-x+y", 5, 3);
    expect_poke(all, "a-1", 1, 4);
    expect_again(all);
    expect_poke(from3, "c:d-x+y", 5, 3);
    expect_poke(from3, "a-1", 1, 4);
    expect_again(from3);
    lss_sub_close(all);
    lss_sub_close(from3);
    lss__hub_unref(h);
}

/* ---- consumer groups (PROTOCOL.md 7.7) ---- */

/* Publish names[i] at gpos i+1 and return, per name, which of the members
 * subscribed with size got it (-1 = none); fails on duplicates. */
static void members_of(const char *cat, const char *const *names, size_t n,
                       int64_t size, int64_t *member)
{
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *subs[16];
    assert_true(size <= 16);
    for (int64_t m = 0; m < size; m++)
        subs[m] = sub_group(h, cat, m, size);
    for (size_t i = 0; i < n; i++) {
        pub(h, names[i], 0, (int64_t)i + 1);
        member[i] = -1;
    }
    for (int64_t m = 0; m < size; m++) {
        lss_poke p;
        while (lss_sub_next(subs[m], &p) == LSS_ROW) {
            size_t i = (size_t)(p.global_position - 1);
            assert_true(i < n);
            assert_span_equal(p.stream.p, p.stream.n, names[i]);
            assert_int_equal(member[i], -1); /* disjoint */
            member[i] = m;
        }
        lss_sub_close(subs[m]);
    }
    lss__hub_unref(h);
}

static void consumer_groups_should_reproduce_the_protocol_examples(
    void **state)
{
    (void)state;
    int64_t got[12];

    const char *four[] = {"cat-1", "cat-2", "cat-3", "cat-4"};
    members_of("cat", four, 4, 2, got);
    static const int64_t want4[] = {0, 1, 0, 1};
    for (int i = 0; i < 4; i++)
        assert_int_equal(got[i], want4[i]);

    const char *six[] = {"w-0", "w-1", "w-2", "w-3", "w-4", "w-5"};
    members_of("w", six, 6, 2, got);
    static const int64_t want6[] = {1, 0, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++)
        assert_int_equal(got[i], want6[i]);

    char buf[12][32];
    const char *pay[12];
    for (int i = 0; i < 12; i++) {
        snprintf(buf[i], sizeof buf[i], "payment-stream%d", i);
        pay[i] = buf[i];
    }
    members_of("payment", pay, 12, 3, got);
    static const int64_t want12[] = {1, 2, 2, 1, 2, 0, 1, 1, 0, 1, 0, 1};
    for (int i = 0; i < 12; i++)
        assert_int_equal(got[i], want12[i]);

    const char *table[] = {"account-123", "account-123+deposit",
                           "account-456", "account-42"};
    static const int64_t want2[] = {1, 1, 1, 1}, want3[] = {1, 1, 1, 0},
                         want4b[] = {3, 3, 3, 1};
    members_of("account", table, 4, 2, got);
    for (int i = 0; i < 4; i++)
        assert_int_equal(got[i], want2[i]);
    members_of("account", table, 4, 3, got);
    for (int i = 0; i < 4; i++)
        assert_int_equal(got[i], want3[i]);
    members_of("account", table, 4, 4, got);
    for (int i = 0; i < 4; i++)
        assert_int_equal(got[i], want4b[i]);
}

static void consumer_groups_should_skip_streams_without_a_cardinal_id(
    void **state)
{
    (void)state;
    int64_t got[4];
    const char *none[] = {"account", "account-", "account-+x", "account-1"};
    members_of("account", none, 4, 1, got);
    assert_int_equal(got[0], -1);
    assert_int_equal(got[1], -1);
    assert_int_equal(got[2], -1);
    assert_int_equal(got[3], 0); /* a group of one takes every other */

    /* Without grouping the same category subscription gets them all. */
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_live(h, LSS_SUB_CATEGORY, "account", 0);
    for (int i = 0; i < 4; i++)
        pub(h, none[i], 0, i + 1);
    assert_int_equal(drain(s), 4);
    lss_sub_close(s);
    lss__hub_unref(h);
}

static void consumer_group_members_should_be_disjoint_and_cover_all(
    void **state)
{
    (void)state;
    enum { N = 600, SIZE = 7 };
    static char buf[N][32];
    static const char *names[N];
    int64_t got[N];
    for (int i = 0; i < N; i++) {
        /* Every third stream is a compound id of the one before. */
        if (i % 3 == 2)
            snprintf(buf[i], sizeof buf[i], "g-%d+cmd", i - 1);
        else
            snprintf(buf[i], sizeof buf[i], "g-%d", i);
        names[i] = buf[i];
    }
    members_of("g", names, N, SIZE, got);
    int64_t per[SIZE] = {0};
    for (int i = 0; i < N; i++) {
        int64_t want;
        assert_int_equal(lss_group_member(names[i], strlen(names[i]), SIZE,
                                          &want),
                         1);
        assert_int_equal(got[i], want); /* exactly one member: the right one */
        per[got[i]]++;
        if (i % 3 == 2)
            assert_int_equal(got[i], got[i - 1]);
    }
    for (int m = 0; m < SIZE; m++)
        assert_true(per[m] > 0);
}

static void consumer_group_hash_should_be_computed_once_per_publish(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *subs[40];
    for (int i = 0; i < 40; i++)
        subs[i] = sub_group(h, "cat", i % (1 + i / 4), 1 + i / 4);
    lss_sub *plain = sub_live(h, LSS_SUB_CATEGORY, "cat", 0);
    assert_int_equal(lss__hub_hashes(h), 0);
    pub(h, "cat-1", 0, 1);
    assert_int_equal(lss__hub_hashes(h), 1);
    pub(h, "cat-2+x", 0, 2);
    assert_int_equal(lss__hub_hashes(h), 2);
    pub(h, "cat", 0, 3);      /* no cardinal id: nothing to hash */
    pub(h, "other-1", 0, 4);  /* no grouped subscriber */
    assert_int_equal(lss__hub_hashes(h), 2);
    assert_int_equal(drain(plain), 3);
    for (int i = 0; i < 40; i++) {
        int64_t size = 1 + i / 4, m1, m2;
        assert_int_equal(lss_group_member("cat-1", 5, size, &m1), 1);
        assert_int_equal(lss_group_member("cat-2+x", 7, size, &m2), 1);
        assert_int_equal(drain(subs[i]),
                         (m1 == i % size) + (m2 == i % size));
        lss_sub_close(subs[i]);
    }
    lss_sub_close(plain);
    lss__hub_unref(h);
}

/* ---- replay and positions ---- */

static void replayed_and_queued_pokes_should_be_delivered_once_in_order(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_replaying(h, NULL, LSS_SUB_STREAM, "s-1", 0, 0, 0, 0);
    lss_sub *c = sub_replaying(h, NULL, LSS_SUB_CATEGORY, "s", 0, 0, 0, 0);
    /* Writes committed between registration and the replay query are both
     * queued and replayed. */
    pub(h, "s-1", 3, 13);
    pub(h, "s-2", 0, 14);
    pub(h, "s-1", 4, 15);
    for (int64_t i = 0; i <= 4; i++)
        replay(s, "s-1", i, 10 + i + (i >= 4));
    replay(c, "s-1", 3, 13);
    replay(c, "s-2", 0, 14);
    expect_poke(s, "s-1", 0, 10); /* replay is deliverable before done */
    lss__sub_replay_done(s);
    lss__sub_replay_done(c);
    pub(h, "s-1", 5, 16);
    for (int64_t i = 1; i <= 5; i++)
        expect_poke(s, "s-1", i, 10 + i + (i >= 4));
    expect_again(s);
    expect_poke(c, "s-1", 3, 13);
    expect_poke(c, "s-2", 0, 14);
    expect_poke(c, "s-1", 4, 15);
    expect_poke(c, "s-1", 5, 16);
    expect_again(c);
    lss_sub_close(s);
    lss_sub_close(c);
    lss__hub_unref(h);
}

static void live_pokes_should_wait_until_replay_is_done(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_replaying(h, NULL, LSS_SUB_CATEGORY, "c", 0, 0, 0, 0);
    pub(h, "c-1", 0, 7);
    expect_again(s);
    replay(s, "c-9", 0, 3);
    expect_poke(s, "c-9", 0, 3);
    expect_again(s);
    lss__sub_replay_done(s);
    lss__sub_replay_done(s); /* idempotent */
    expect_poke(s, "c-1", 0, 7);
    expect_again(s);
    lss_sub_close(s);
    lss__hub_unref(h);
}

static void nothing_below_position_should_ever_be_delivered(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    /* Stream 0..2 exists; position=2 replays only 2 (PROTOCOL.md 8.6). */
    lss_sub *s2 = sub_replaying(h, NULL, LSS_SUB_STREAM, "s-1", 2, 0, 0, 0);
    for (int i = 0; i < 3; i++)
        replay(s2, "s-1", i, i + 1);
    lss__sub_replay_done(s2);
    expect_poke(s2, "s-1", 2, 3);
    expect_again(s2);
    /* position=3 replays nothing and gets the next write. */
    lss_sub *s3 = sub_live(h, LSS_SUB_STREAM, "s-1", 3);
    /* Category and all positions are global positions. */
    lss_sub *c = sub_live(h, LSS_SUB_CATEGORY, "s", 5);
    lss_sub *a = sub_live(h, LSS_SUB_ALL, NULL, 5);
    pub(h, "s-1", 3, 4);
    pub(h, "s-2", 0, 5);
    pub(h, "s-1", 4, 6);
    expect_poke(s2, "s-1", 3, 4);
    expect_poke(s2, "s-1", 4, 6);
    expect_again(s2);
    expect_poke(s3, "s-1", 3, 4);
    expect_poke(s3, "s-1", 4, 6);
    expect_again(s3);
    expect_poke(c, "s-2", 0, 5);
    expect_poke(c, "s-1", 4, 6);
    expect_again(c);
    expect_poke(a, "s-2", 0, 5);
    expect_poke(a, "s-1", 4, 6);
    expect_again(a);
    /* A stream subscription whose position lies far ahead of the stream. */
    lss_sub *far = sub_live(h, LSS_SUB_STREAM, "s-1", 100);
    pub(h, "s-1", 5, 7);
    expect_again(far);
    lss_sub_close(s2);
    lss_sub_close(s3);
    lss_sub_close(c);
    lss_sub_close(a);
    lss_sub_close(far);
    lss__hub_unref(h);
}

static void extreme_positions_should_neither_overflow_nor_repeat(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *neg = sub_live(h, LSS_SUB_ALL, NULL, INT64_MIN);
    lss_sub *top = sub_replaying(h, NULL, LSS_SUB_CATEGORY, "m", INT64_MAX,
                                 0, 0, 0);
    pub(h, "m-1", 0, 1);
    pub(h, "m-1", 1, INT64_MAX - 1);
    pub(h, "m-1", 2, INT64_MAX);
    replay(top, "m-1", 2, INT64_MAX);
    assert_int_equal(lss__sub_add_replay(top, "m-1", 3, 2, INT64_MAX),
                     LSS_OK); /* a repeat is ignored */
    lss__sub_replay_done(top);
    pub(h, "m-1", 3, INT64_MAX); /* misuse: not ascending */
    expect_poke(neg, "m-1", 0, 1);
    expect_poke(neg, "m-1", 1, INT64_MAX - 1);
    expect_poke(neg, "m-1", 2, INT64_MAX);
    expect_again(neg);
    expect_poke(top, "m-1", 2, INT64_MAX);
    expect_again(top);
    lss_sub_close(neg);
    lss_sub_close(top);
    lss__hub_unref(h);
}

static void replay_window_full_should_refuse_every_later_replay(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    /* replay_max */
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_CATEGORY;
    o.name = "r";
    o.name_n = 1;
    o.replay_max = 2;
    lss_sub *s;
    assert_int_equal(lss__hub_subscribe(h, NULL, &o, NULL, NULL, &s), LSS_OK);
    replay(s, "r-1", 0, 1);
    replay(s, "r-1", 1, 2);
    assert_int_equal(lss__sub_add_replay(s, "r-1", 3, 2, 3), LSS_DONE);
    lss__sub_replay_done(s);
    pub(h, "r-1", 3, 9);
    expect_poke(s, "r-1", 0, 1);
    expect_poke(s, "r-1", 1, 2);
    expect_poke(s, "r-1", 3, 9);
    expect_again(s);
    lss_sub_close(s);

    o.replay_max = 0;
    assert_int_equal(lss__hub_subscribe(h, NULL, &o, NULL, NULL, &s), LSS_OK);
    assert_int_equal(lss__sub_add_replay(s, "r-1", 3, 0, 1), LSS_DONE);
    lss_sub_close(s);

    /* queue_bytes: the first poke that does not fit closes the window, and
     * a shorter later one may not sneak in behind it. */
    o.replay_max = -1;
    o.queue_bytes = 3 * (LSS__POKE_OVERHEAD + 3);
    assert_int_equal(lss__hub_subscribe(h, NULL, &o, NULL, NULL, &s), LSS_OK);
    replay(s, "r-1", 0, 1);
    replay(s, "r-2", 0, 2);
    assert_int_equal(lss__sub_add_replay(s, "r-333", 5, 0, 3), LSS_DONE);
    assert_int_equal(lss__sub_add_replay(s, "r", 1, 0, 4), LSS_DONE);
    lss__sub_replay_done(s);
    pub(h, "r-5", 0, 5);
    expect_poke(s, "r-1", 0, 1);
    expect_poke(s, "r-2", 0, 2);
    expect_poke(s, "r-5", 0, 5);
    expect_again(s);
    lss_sub_close(s);
    lss__hub_unref(h);
}

/* ---- flow control ---- */

static void overflow_should_report_eoverflow_and_spare_other_subscribers(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    size_t poke = LSS__POKE_OVERHEAD + 3;
    lss_sub *small =
        sub_replaying(h, NULL, LSS_SUB_CATEGORY, "o", 0, 0, 0, 4 * poke);
    lss__sub_replay_done(small);
    lss_sub *big = sub_live(h, LSS_SUB_CATEGORY, "o", 0);
    lss_sub *other = sub_live(h, LSS_SUB_ALL, NULL, 0);
    for (int i = 1; i <= 4; i++)
        pub(h, "o-1", i - 1, i);
    expect_poke(small, "o-1", 0, 1); /* exactly full is fine */
    pub(h, "o-1", 4, 5);
    pub(h, "o-1", 5, 6); /* 5 queued > 4 */
    assert_true(readable(small));
    lss_poke p;
    assert_int_equal(lss_sub_next(small, &p), LSS_EOVERFLOW);
    assert_int_equal(lss_sub_next(small, &p), LSS_EOVERFLOW);
    assert_true(readable(small));
    pub(h, "o-1", 6, 7);
    assert_int_equal(lss_sub_next(small, &p), LSS_EOVERFLOW);
    for (int i = 1; i <= 7; i++) {
        expect_poke(big, "o-1", i - 1, i);
        expect_poke(other, "o-1", i - 1, i);
    }
    expect_again(big);
    expect_again(other);
    /* A poke larger than the whole queue overflows at once. */
    lss_sub *tiny = sub_replaying(h, NULL, LSS_SUB_ALL, NULL, 0, 0, 0, 10);
    lss__sub_replay_done(tiny);
    pub(h, "x", 0, 8);
    assert_int_equal(lss_sub_next(tiny, &p), LSS_EOVERFLOW);
    lss_sub_close(tiny);
    lss_sub_close(small);
    lss_sub_close(big);
    lss_sub_close(other);
    lss__hub_unref(h);
}

static void overflow_during_replay_should_kill_the_subscription(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    size_t poke = LSS__POKE_OVERHEAD + 3;
    lss_sub *s = sub_replaying(h, NULL, LSS_SUB_ALL, NULL, 0, 0, 0, 2 * poke);
    pub(h, "a-1", 0, 1);
    pub(h, "a-1", 1, 2);
    pub(h, "a-1", 2, 3);
    assert_int_equal(lss__sub_add_replay(s, "a-1", 3, 0, 1), LSS_DONE);
    lss__sub_replay_done(s);
    lss_poke p;
    assert_int_equal(lss_sub_next(s, &p), LSS_EOVERFLOW);
    lss_sub_close(s);
    lss__hub_unref(h);
}

static void publish_should_overflow_a_subscription_whose_queue_cannot_grow(
    void **state)
{
    (void)state;
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_replaying(h, &ca.a, LSS_SUB_ALL, NULL, 0, 0, 0, 0);
    lss__sub_replay_done(s);
    lss_sub *ok = sub_live(h, LSS_SUB_ALL, NULL, 0);
    ca.fail_at = ca.calls + 1;
    ca.fail_after = 1;
    pub(h, "a-1", 0, 1);
    pub(h, "a-1", 1, 2);
    lss_poke p;
    assert_int_equal(lss_sub_next(s, &p), LSS_EOVERFLOW);
    assert_true(readable(s));
    assert_int_equal(drain(ok), 2);
    lss_sub_close(s);
    lss_sub_close(ok);
    lss__hub_unref(h);
    assert_int_equal(ca.live, 0);
}

/* ---- lifetime ---- */

static void retired_hub_should_deliver_nothing_more(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_live(h, LSS_SUB_ALL, NULL, 0);
    lss_sub *c = sub_live(h, LSS_SUB_CATEGORY, "a", 0);
    pub(h, "a-1", 0, 1);
    lss__hub_retire(h);
    lss__hub_retire(h);
    pub(h, "a-1", 1, 2);
    expect_poke(s, "a-1", 0, 1); /* published before the deletion */
    expect_again(s);
    expect_poke(c, "a-1", 0, 1);
    expect_again(c);
    lss_sub *late = sub_live(h, LSS_SUB_ALL, NULL, 0);
    pub(h, "a-1", 2, 3);
    expect_again(late);
    assert_false(readable(late));
    lss_sub_close(late);
    lss_sub_close(s);
    lss_sub_close(c);
    lss__hub_unref(h);
}

static void subscription_should_keep_the_hub_alive_after_the_store_lets_go(
    void **state)
{
    (void)state;
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss__hub *h = hub_new_ok(&ca.a);
    lss_sub *s = sub_replaying(h, &ca.a, LSS_SUB_STREAM, "x-1", 0, 0, 0, 0);
    lss__hub_ref(h);
    pub(h, "x-1", 0, 1);
    lss__hub_retire(h);
    lss__hub_unref(h);
    lss__hub_unref(h); /* the store is gone */
    lss__sub_replay_done(s);
    expect_poke(s, "x-1", 0, 1);
    expect_again(s);
    assert_true(ca.live > 0);
    lss_sub_close(s); /* frees the hub */
    assert_int_equal(ca.live, 0);
}

/* ---- wake-ups ---- */

static void fd_should_be_readable_exactly_while_pokes_are_pending(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_replaying(h, NULL, LSS_SUB_STREAM, "f-1", 0, 0, 0, 0);
    assert_true(lss_sub_fd(s) >= 0);
    assert_false(readable(s));
    pub(h, "f-1", 1, 2); /* live, but replay is not done */
    assert_false(readable(s));
    replay(s, "f-1", 0, 1);
    assert_true(readable(s));
    expect_poke(s, "f-1", 0, 1);
    assert_false(readable(s));
    replay(s, "f-1", 1, 2); /* also queued: delivered once */
    assert_true(readable(s));
    expect_poke(s, "f-1", 1, 2);
    assert_false(readable(s));
    lss__sub_replay_done(s);
    assert_false(readable(s)); /* the queued duplicate is gone */
    expect_again(s);
    pub(h, "f-1", 2, 3);
    assert_true(readable(s));
    pub(h, "f-1", 3, 4);
    pub(h, "g-1", 0, 5);
    assert_true(readable(s));
    expect_poke(s, "f-1", 2, 3);
    assert_true(readable(s));
    expect_poke(s, "f-1", 3, 4);
    assert_false(readable(s));
    expect_again(s);
    assert_false(readable(s));
    pub(h, "f-1", 4, 6);
    assert_true(readable(s));
    expect_poke(s, "f-1", 4, 6);
    assert_false(readable(s));
    lss_sub_close(s);
    lss__hub_unref(h);
}

/* ---- the shared wake-up (lss_notifier) ---- */

static lss_sub *sub_notified(lss__hub *h, const lss_allocator *a,
                             lss_notifier *nt, void *user, int kind,
                             const char *name, size_t qbytes)
{
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = kind;
    o.name = name;
    o.name_n = name ? strlen(name) : 0;
    if (qbytes)
        o.queue_bytes = qbytes;
    lss_sub *s = NULL;
    assert_int_equal(lss__hub_subscribe(h, a, &o, nt, user, &s), LSS_OK);
    assert_non_null(s);
    return s;
}

static int nt_readable(const lss_notifier *nt)
{
    struct pollfd p = {lss_notifier_fd(nt), POLLIN, 0};
    int n = poll(&p, 1, 0);
    assert_true(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

/* The next ready subscription, checking its user pointer. */
static lss_sub *nt_next(lss_notifier *nt, void **user)
{
    lss_sub *s = NULL;
    int rc = lss_notifier_next(nt, &s, user);
    assert_true(rc == LSS_ROW || rc == LSS_AGAIN);
    assert_true((rc == LSS_ROW) == (s != NULL));
    return s;
}

static void notifier_should_be_readable_exactly_while_one_is_ready(
    void **state)
{
    (void)state;
    lss_notifier *nt = NULL;
    assert_int_equal(lss_notifier_new(NULL, &nt), LSS_OK);
    assert_true(lss_notifier_fd(nt) >= 0);
    lss__hub *h = hub_new_ok(NULL);
    int tag[3];
    lss_sub *a = sub_notified(h, NULL, nt, &tag[0], LSS_SUB_STREAM, "n-1", 0);
    lss_sub *b = sub_notified(h, NULL, nt, &tag[1], LSS_SUB_STREAM, "n-2", 0);
    lss_sub *c = sub_notified(h, NULL, nt, &tag[2], LSS_SUB_ALL, NULL, 0);
    assert_int_equal(lss_sub_fd(a), -1); /* no descriptor of its own */
    replay(a, "n-1", 0, 1); /* ready during its replay already */
    assert_true(nt_readable(nt));
    void *u = NULL;
    assert_ptr_equal(nt_next(nt, &u), a);
    assert_ptr_equal(u, &tag[0]);
    expect_poke(a, "n-1", 0, 1);
    expect_again(a);
    assert_false(nt_readable(nt));
    assert_null(nt_next(nt, &u));
    assert_null(u);
    lss__sub_replay_done(a);
    lss__sub_replay_done(b);
    lss__sub_replay_done(c);
    assert_false(nt_readable(nt));
    /* One publish, two ready subscriptions, one descriptor. */
    pub(h, "n-2", 0, 2);
    assert_true(nt_readable(nt));
    lss_sub *first = nt_next(nt, NULL);
    lss_sub *second = nt_next(nt, NULL);
    assert_true((first == b && second == c) || (first == c && second == b));
    expect_poke(b, "n-2", 0, 2);
    expect_again(b);
    assert_true(nt_readable(nt)); /* c still has its poke */
    assert_ptr_equal(nt_next(nt, &u), c);
    assert_ptr_equal(u, &tag[2]);
    expect_poke(c, "n-2", 0, 2);
    expect_again(c);
    assert_false(nt_readable(nt));
    /* Closing a ready subscription takes it off the list. */
    pub(h, "n-1", 1, 3);
    assert_true(nt_readable(nt));
    lss_sub_close(c);
    assert_true(nt_readable(nt)); /* a is still ready */
    lss_sub_close(a);
    assert_false(nt_readable(nt));
    assert_null(nt_next(nt, NULL));
    lss_sub_close(b);
    lss_notifier_free(nt);
    lss__hub_unref(h);
}

static void notifier_should_serve_ready_subscriptions_in_turn(void **state)
{
    (void)state;
    lss_notifier *nt = NULL;
    assert_int_equal(lss_notifier_new(NULL, &nt), LSS_OK);
    lss__hub *h = hub_new_ok(NULL);
    enum { N = 5 };
    lss_sub *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = sub_notified(h, NULL, nt, NULL, LSS_SUB_ALL, NULL, 0);
        lss__sub_replay_done(s[i]);
    }
    for (int g = 1; g <= 3; g++)
        pub(h, "r-1", g - 1, g);
    /* A caller that takes one poke per visit still reaches everyone, once
     * per round, until all are drained. */
    int seen[N] = {0}, visits = 0;
    lss_sub *x;
    while ((x = nt_next(nt, NULL)) != NULL) {
        int i = 0;
        while (s[i] != x)
            i++;
        assert_true(i < N);
        assert_int_equal(seen[i], visits / N);
        lss_poke p;
        int rc = lss_sub_next(x, &p);
        if (rc == LSS_ROW) {
            assert_int_equal(p.global_position, seen[i] + 1);
            seen[i]++;
        } else {
            assert_int_equal(rc, LSS_AGAIN);
        }
        visits++;
        assert_true(visits <= 4 * N);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 3);
    assert_false(nt_readable(nt));
    /* The caller's reference may go first: the subscriptions keep the
     * notifier (and its descriptor) alive. */
    lss_notifier_free(nt);
    pub(h, "r-1", 3, 4);
    assert_true(nt_readable(nt));
    assert_non_null(nt_next(nt, NULL));
    for (int i = 0; i < N; i++) {
        expect_poke(s[i], "r-1", 3, 4);
        lss_sub_close(s[i]);
    }
    lss__hub_unref(h);
}

static void notifier_should_report_overflow_and_errors(void **state)
{
    (void)state;
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss_notifier *nt = NULL;
    assert_int_equal(lss_notifier_new(NULL, NULL), LSS_EINVAL);
    assert_int_equal(lss_notifier_fd(NULL), -1);
    assert_int_equal(lss_notifier_next(NULL, NULL, NULL), LSS_EINVAL);
    lss_notifier_free(NULL);
    ca.fail_at = 1;
    assert_int_equal(lss_notifier_new(&ca.a, &nt), LSS_ENOMEM);
    assert_null(nt);
    ca.fail_at = 0;
    assert_int_equal(lss_notifier_new(&ca.a, &nt), LSS_OK);
    lss_sub *x = NULL;
    assert_int_equal(lss_notifier_next(nt, NULL, NULL), LSS_EINVAL);
    assert_int_equal(lss_notifier_next(nt, &x, NULL), LSS_AGAIN);
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_notified(h, NULL, nt, NULL, LSS_SUB_ALL, NULL, 256);
    lss__sub_replay_done(s);
    for (int g = 1; g <= 20; g++)
        pub(h, "o-1", g - 1, g);
    /* Dead: stays ready (lss_sub_next keeps saying why) until closed. */
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(nt_next(nt, NULL), s);
        lss_poke p;
        assert_int_equal(lss_sub_next(s, &p), LSS_EOVERFLOW);
        assert_true(nt_readable(nt));
    }
    lss_sub_close(s);
    assert_false(nt_readable(nt));
    lss_notifier_free(nt);
    assert_int_equal(ca.live, 0);
    lss__hub_unref(h);
}

static void notifier_steady_state_should_not_allocate(void **state)
{
    (void)state;
    counting_alloc hub_ca, sub_ca, nt_ca;
    counting_alloc_init(&hub_ca);
    counting_alloc_init(&sub_ca);
    counting_alloc_init(&nt_ca);
    lss_notifier *nt = NULL;
    assert_int_equal(lss_notifier_new(&nt_ca.a, &nt), LSS_OK);
    lss__hub *h = hub_new_ok(&hub_ca.a);
    enum { N = 50 };
    lss_sub *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = sub_notified(h, &sub_ca.a, nt, NULL,
                            i % 2 ? LSS_SUB_ALL : LSS_SUB_CATEGORY,
                            i % 2 ? NULL : "w", 0);
        lss__sub_replay_done(s[i]);
    }
    int64_t g = 1;
    long before = 0, got = 0;
    for (int round = 0; round < 100; round++) {
        if (round == 50)
            before = counting_alloc_calls(&hub_ca) +
                     counting_alloc_calls(&sub_ca) +
                     counting_alloc_calls(&nt_ca);
        for (int i = 0; i < 10; i++, g++)
            pub(h, "w-1", g, g);
        lss_sub *x;
        while ((x = nt_next(nt, NULL)) != NULL)
            got += drain(x);
    }
    assert_int_equal(got, (long)N * 1000);
    assert_int_equal(counting_alloc_calls(&hub_ca) +
                         counting_alloc_calls(&sub_ca) +
                         counting_alloc_calls(&nt_ca),
                     before);
    for (int i = 0; i < N; i++)
        lss_sub_close(s[i]);
    lss_notifier_free(nt);
    lss__hub_unref(h);
    assert_int_equal(nt_ca.live, 0);
    assert_int_equal(sub_ca.live, 0);
}

typedef struct nt_race {
    lss__hub *h;
    int64_t n;
} nt_race;

static void *nt_publisher(void *arg)
{
    nt_race *r = arg;
    for (int64_t g = 1; g <= r->n; g++)
        pub(r->h, "t-1", g - 1, g);
    return NULL;
}

/* A publisher on another thread and a consumer that sleeps on the shared
 * descriptor: no wake-up is lost, every poke arrives once, in order. */
static void notifier_should_not_lose_a_wake_up_across_threads(void **state)
{
    (void)state;
    lss_notifier *nt = NULL;
    assert_int_equal(lss_notifier_new(NULL, &nt), LSS_OK);
    lss__hub *h = hub_new_ok(NULL);
    enum { N = 8 };
    lss_sub *s[N];
    int64_t next[N];
    for (int i = 0; i < N; i++) {
        s[i] = sub_notified(h, NULL, nt, &next[i], LSS_SUB_ALL, NULL,
                            64 << 20);
        lss__sub_replay_done(s[i]);
        next[i] = 1;
    }
    nt_race r = {h, 20000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, nt_publisher, &r), 0);
    int64_t done = 0;
    while (done < N) {
        struct pollfd p = {lss_notifier_fd(nt), POLLIN, 0};
        assert_int_equal(poll(&p, 1, 10000), 1); /* never stuck */
        lss_sub *x;
        void *u;
        while (lss_notifier_next(nt, &x, &u) == LSS_ROW) {
            int64_t *want = u;
            lss_poke k;
            int rc;
            while ((rc = lss_sub_next(x, &k)) == LSS_ROW)
                assert_int_equal(k.global_position, (*want)++);
            assert_int_equal(rc, LSS_AGAIN);
        }
        done = 0;
        for (int i = 0; i < N; i++)
            done += next[i] == r.n + 1;
    }
    pthread_join(th, NULL);
    for (int i = 0; i < N; i++)
        lss_sub_close(s[i]);
    lss_notifier_free(nt);
    lss__hub_unref(h);
}

/* ---- the queue itself ---- */

static void queue_should_survive_wrap_around_and_long_names(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_replaying(h, NULL, LSS_SUB_ALL, NULL, 0, 0, 0, 64 * 1024);
    lss__sub_replay_done(s);
    static char name[3000];
    int64_t g = 1, want = 1;
    unsigned rnd = 12345;
    for (int round = 0; round < 400; round++) {
        int burst = 1 + (int)((rnd = rnd * 1103515245u + 12345u) >> 16) % 9;
        for (int i = 0; i < burst; i++, g++) {
            size_t n = 1 + (size_t)((g * 37) % (g % 50 == 0 ? 2900 : 200));
            for (size_t j = 0; j < n; j++)
                name[j] = (char)('a' + (g + (int64_t)j) % 26);
            lss__hub_publish(h, name, n, g, g);
        }
        int take = 1 + (int)((rnd = rnd * 1103515245u + 12345u) >> 16) % 9;
        lss_poke p;
        for (int i = 0; i < take && lss_sub_next(s, &p) == LSS_ROW;
             i++, want++) {
            size_t n = 1 + (size_t)((want * 37) %
                                    (want % 50 == 0 ? 2900 : 200));
            assert_int_equal(p.global_position, want);
            assert_int_equal(p.stream.n, n);
            for (size_t j = 0; j < n; j++)
                assert_int_equal(p.stream.p[j],
                                 (char)('a' + (want + (int64_t)j) % 26));
        }
    }
    lss_poke p;
    while (lss_sub_next(s, &p) == LSS_ROW)
        assert_int_equal(p.global_position, want++);
    assert_int_equal(want, g);
    lss_sub_close(s);
    lss__hub_unref(h);
}

static void many_subscribers_should_get_only_their_own_pokes(void **state)
{
    (void)state;
    const int N = fd_budget(10000);
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss__hub *h = hub_new_ok(&ca.a);
    lss_sub **subs = calloc(N, sizeof *subs);
    assert_non_null(subs);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, i % 2 ? "c%d" : "c%d-x", i);
        subs[i] = sub_replaying(h, &ca.a,
                                i % 2 ? LSS_SUB_CATEGORY : LSS_SUB_STREAM,
                                name, 0, 0, 0, 0);
        lss__sub_replay_done(subs[i]);
    }
    assert_int_equal(lss__hub_subscribers(h), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "c%d-x", i);
        pub(h, name, 0, i + 1);
    }
    for (int i = 0; i < N; i++) {
        lss_poke p;
        assert_int_equal(lss_sub_next(subs[i], &p), LSS_ROW);
        assert_int_equal(p.global_position, i + 1);
        expect_again(subs[i]);
    }
    /* Close in an interleaved order, publishing as the index shrinks. */
    for (int i = 0; i < N; i += 2)
        lss_sub_close(subs[i]);
    pub(h, "c1-x", 1, N + 1);
    expect_poke(subs[1], "c1-x", 1, N + 1);
    for (int i = 1; i < N; i += 2)
        lss_sub_close(subs[i]);
    assert_int_equal(lss__hub_subscribers(h), 0);
    free(subs);
    lss__hub_unref(h);
    assert_int_equal(ca.live, 0);
}

/* ---- allocation ---- */

static void steady_state_publish_and_next_should_not_allocate(void **state)
{
    (void)state;
    counting_alloc hub_ca, sub_ca;
    counting_alloc_init(&hub_ca);
    counting_alloc_init(&sub_ca);
    lss__hub *h = hub_new_ok(&hub_ca.a);
    lss_sub *subs[4];
    subs[0] = sub_replaying(h, &sub_ca.a, LSS_SUB_STREAM, "z-1", 0, 0, 0, 0);
    subs[1] = sub_replaying(h, &sub_ca.a, LSS_SUB_CATEGORY, "z", 0, 0, 0, 0);
    subs[2] = sub_replaying(h, &sub_ca.a, LSS_SUB_CATEGORY, "z", 0, 1, 2, 0);
    subs[3] = sub_replaying(h, &sub_ca.a, LSS_SUB_ALL, NULL, 0, 0, 0, 0);
    for (int i = 0; i < 4; i++) {
        replay(subs[i], "z-1", 0, 1);
        lss__sub_replay_done(subs[i]);
    }
    int64_t g = 2;
    long before = 0;
    for (int round = 0; round < 200; round++) {
        if (round == 100)
            before = counting_alloc_calls(&hub_ca) +
                     counting_alloc_calls(&sub_ca);
        for (int i = 0; i < 300; i++, g++)
            pub(h, i % 3 ? "z-1" : "z-2+long-name-of-a-stream", g, g);
        for (int i = 0; i < 4; i++)
            drain(subs[i]);
    }
    assert_int_equal(counting_alloc_calls(&hub_ca) +
                         counting_alloc_calls(&sub_ca),
                     before);
    for (int i = 0; i < 4; i++)
        lss_sub_close(subs[i]);
    lss__hub_unref(h);
    assert_int_equal(hub_ca.live, 0);
    assert_int_equal(sub_ca.live, 0);
}

static void hub_and_subscribe_should_fail_cleanly_when_allocation_fails(
    void **state)
{
    (void)state;
    counting_alloc ca;
    counting_alloc_init(&ca);
    lss__hub *h = NULL;
    int rc;
    for (long k = 1;; k++) {
        ca.calls = 0;
        ca.fail_at = k;
        rc = lss__hub_new(&ca.a, &h);
        if (rc == LSS_OK)
            break;
        assert_int_equal(rc, LSS_ENOMEM);
        assert_null(h);
        assert_int_equal(ca.live, 0);
        assert_true(k < 100);
    }
    ca.fail_at = 0;
    /* 32 keys: the next stream subscription grows the table, and failing
     * that growth must not fail the subscription. */
    lss_sub *keep[32];
    char name[16];
    for (int i = 0; i < 32; i++) {
        snprintf(name, sizeof name, "k%d", i);
        keep[i] = sub_replaying(h, &ca.a, LSS_SUB_STREAM, name, 0, 0, 0, 0);
    }
    static const int kinds[] = {LSS_SUB_STREAM, LSS_SUB_CATEGORY, LSS_SUB_ALL};
    for (int t = 0; t < 3; t++) {
        for (long k = 1;; k++) {
            long live = ca.live;
            lss_sub_opts o;
            lss_sub_opts_init(&o);
            o.kind = kinds[t];
            o.name = kinds[t] == LSS_SUB_ALL        ? NULL
                     : kinds[t] == LSS_SUB_CATEGORY ? "new"
                                                    : "new-1";
            o.name_n = o.name ? strlen(o.name) : 0;
            lss_sub *s = NULL;
            ca.calls = 0;
            ca.fail_at = k;
            rc = lss__hub_subscribe(h, &ca.a, &o, NULL, NULL, &s);
            ca.fail_at = 0;
            if (rc == LSS_OK) {
                lss__sub_replay_done(s);
                pub(h, "new-1", 0, 1);
                expect_poke(s, "new-1", 0, 1);
                lss_sub_close(s);
                break;
            }
            assert_int_equal(rc, LSS_ENOMEM);
            assert_null(s);
            assert_int_equal(ca.live, live);
            assert_true(k < 100);
        }
    }
    /* Replay and delivery report ENOMEM and stay usable. */
    lss_sub *s = sub_replaying(h, &ca.a, LSS_SUB_CATEGORY, "new", 0, 0, 0, 0);
    ca.calls = 0;
    ca.fail_at = 1;
    assert_int_equal(lss__sub_add_replay(s, "new-1", 5, 0, 1), LSS_ENOMEM);
    assert_int_equal(lss__sub_add_replay(s, "new-1", 5, 0, 1), LSS_OK);
    lss__sub_replay_done(s);
    static char longname[500];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "new-", 4);
    lss__hub_publish(h, longname, sizeof longname, 0, 2);
    expect_poke(s, "new-1", 0, 1);
    ca.calls = 0;
    ca.fail_at = 1;
    lss_poke p;
    assert_int_equal(lss_sub_next(s, &p), LSS_ENOMEM);
    assert_int_equal(lss_sub_next(s, &p), LSS_ROW);
    assert_int_equal(p.stream.n, sizeof longname);
    assert_memory_equal(p.stream.p, longname, sizeof longname);
    lss_sub_close(s);
    for (int i = 0; i < 32; i++)
        lss_sub_close(keep[i]);
    lss__hub_unref(h);
    assert_int_equal(ca.live, 0);
}

static void subscribe_should_fail_cleanly_without_file_descriptors(
    void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); /* the lowest free descriptor */
    assert_true(lowest >= 0);
    close(lowest);
    low = old;
    low.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    lss_sub_opts o;
    lss_sub_opts_init(&o);
    o.kind = LSS_SUB_ALL;
    lss_sub *s = NULL;
    int rc = lss__hub_subscribe(h, NULL, &o, NULL, NULL, &s);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, LSS_EIO);
    assert_null(s);
    assert_int_equal(lss__hub_subscribers(h), 0);
    assert_int_equal(lss__hub_subscribe(h, NULL, &o, NULL, NULL, &s), LSS_OK);
    lss_sub_close(s);
    lss__hub_unref(h);
}

/* ---- threads ---- */

typedef struct pub_arg {
    lss__hub *h;
    int64_t n;
    atomic_int stop;
    atomic_llong published;
} pub_arg;

static void *publisher(void *arg)
{
    pub_arg *pa = arg;
    char name[32];
    for (int64_t i = 0; i < pa->n && !atomic_load(&pa->stop); i++) {
        int len = snprintf(name, sizeof name, "t-%d", (int)(i % 7));
        lss__hub_publish(pa->h, name, (size_t)len, i, i + 1);
        atomic_store(&pa->published, i + 1);
    }
    return NULL;
}

/* Drain s with poll + next until n pokes, an error, or no progress for
 * 10 s; checks order and names.  Returns the last rc seen. */
static int consume(lss_sub *s, int64_t n, int64_t *got, int slow)
{
    int64_t want = 1;
    int idle = 0, rc = LSS_AGAIN;
    char name[32];
    while (want <= n) {
        struct pollfd pfd = {lss_sub_fd(s), POLLIN, 0};
        int pr = poll(&pfd, 1, 100);
        assert_true(pr >= 0);
        if (pr == 0) {
            if (++idle > 100)
                break;
            continue;
        }
        idle = 0;
        lss_poke p;
        int taken = 0;
        while ((rc = lss_sub_next(s, &p)) == LSS_ROW) {
            assert_int_equal(p.global_position, want);
            int len = snprintf(name, sizeof name, "t-%d",
                               (int)((want - 1) % 7));
            assert_int_equal(p.stream.n, (size_t)len);
            assert_memory_equal(p.stream.p, name, (size_t)len);
            want++;
            if (slow && ++taken == 10)
                break;
        }
        if (rc < 0)
            break;
        if (slow)
            usleep(1000);
    }
    *got = want - 1;
    return rc;
}

static void two_threads_should_deliver_every_poke_in_order(void **state)
{
    (void)state;
    enum { N = 200000 };
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s = sub_replaying(h, NULL, LSS_SUB_CATEGORY, "t", 0, 0, 0,
                               (size_t)N * (LSS__POKE_OVERHEAD + 8));
    lss__sub_replay_done(s);
    pub_arg pa = {.h = h, .n = N};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, publisher, &pa), 0);
    int64_t got = 0;
    int rc = consume(s, N, &got, 0);
    pthread_join(th, NULL);
    assert_int_equal(got, N);
    assert_true(rc == LSS_ROW || rc == LSS_AGAIN);
    expect_again(s);
    assert_false(readable(s));
    lss_sub_close(s);
    lss__hub_unref(h);
}

static void a_tiny_queue_should_overflow_rather_than_lose_pokes(void **state)
{
    (void)state;
    enum { N = 200000 };
    lss__hub *h = hub_new_ok(NULL);
    lss_sub *s =
        sub_replaying(h, NULL, LSS_SUB_ALL, NULL, 0, 0, 0, 4096);
    lss__sub_replay_done(s);
    lss_sub *fast = sub_replaying(h, NULL, LSS_SUB_STREAM, "t-3", 0, 0, 0,
                                  (size_t)N * (LSS__POKE_OVERHEAD + 8));
    lss__sub_replay_done(fast);
    pub_arg pa = {.h = h, .n = N};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, publisher, &pa), 0);
    int64_t got = 0;
    int rc = consume(s, N, &got, 1);
    pthread_join(th, NULL);
    /* A contiguous prefix, then the error: nothing skipped silently. */
    assert_int_equal(rc, LSS_EOVERFLOW);
    assert_true(got < N);
    lss_poke p;
    assert_int_equal(lss_sub_next(s, &p), LSS_EOVERFLOW);
    /* The publisher never waited and the other subscriber lost nothing. */
    assert_int_equal(atomic_load(&pa.published), N);
    int64_t n = 0;
    while (lss_sub_next(fast, &p) == LSS_ROW) {
        assert_int_equal(p.position, 3 + 7 * n);
        n++;
    }
    assert_int_equal(n, (N - 3 + 6) / 7);
    lss_sub_close(s);
    lss_sub_close(fast);
    lss__hub_unref(h);
}

typedef struct churn_arg {
    lss__hub *h;
    int seed;
    int rounds;
} churn_arg;

static void *churner(void *arg)
{
    churn_arg *ca = arg;
    unsigned r = (unsigned)ca->seed;
    for (int i = 0; i < ca->rounds; i++) {
        r = r * 1103515245u + 12345u;
        lss_sub_opts o;
        lss_sub_opts_init(&o);
        o.queue_bytes = (r >> 8) % 2 ? 512 : 0;
        switch ((r >> 16) % 4) {
        case 0:
            o.kind = LSS_SUB_STREAM;
            o.name = "t-3";
            break;
        case 1:
            o.kind = LSS_SUB_CATEGORY;
            o.name = "t";
            break;
        case 2:
            o.kind = LSS_SUB_CATEGORY;
            o.name = "t";
            o.group_size = 3;
            o.group_member = (r >> 20) % 3;
            break;
        default:
            o.kind = LSS_SUB_ALL;
        }
        o.name_n = o.name ? strlen(o.name) : 0;
        lss_sub *s;
        if (lss__hub_subscribe(ca->h, NULL, &o, NULL, NULL, &s) != LSS_OK)
            return (void *)1;
        lss__sub_add_replay(s, "t-3", 3, 0, 1);
        lss__sub_replay_done(s);
        lss_poke p;
        int64_t last = -1;
        for (int k = 0; k < (int)((r >> 4) % 20); k++) {
            int rc = lss_sub_next(s, &p);
            if (rc != LSS_ROW)
                break;
            int64_t key = o.kind == LSS_SUB_STREAM ? p.position
                                                   : p.global_position;
            if (key <= last)
                return (void *)2;
            last = key;
        }
        lss_sub_close(s);
    }
    return NULL;
}

static void close_during_concurrent_publish_should_be_safe(void **state)
{
    (void)state;
    lss__hub *h = hub_new_ok(NULL);
    pub_arg pa = {.h = h, .n = INT64_MAX};
    pthread_t pt, ct[3];
    churn_arg ca[3];
    assert_int_equal(pthread_create(&pt, NULL, publisher, &pa), 0);
    for (int i = 0; i < 3; i++) {
        ca[i] = (churn_arg){h, i + 1, 3000};
        assert_int_equal(pthread_create(&ct[i], NULL, churner, &ca[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        void *ret;
        pthread_join(ct[i], &ret);
        assert_null(ret);
    }
    /* The store lets go while the publisher still runs. */
    lss_sub *last = sub_live(h, LSS_SUB_ALL, NULL, 0);
    lss__hub_retire(h);
    lss__hub_unref(h);
    atomic_store(&pa.stop, 1);
    pthread_join(pt, NULL);
    lss_sub_close(last);
}

/* ---- cost ---- */

/* ns per publish with n subscribers of which one matches; the others are
 * stream and category subscriptions on other names. */
static double publish_cost(int n)
{
    lss__hub *h = hub_new_ok(NULL);
    lss_sub **subs = calloc((size_t)n, sizeof *subs);
    assert_non_null(subs);
    char name[32];
    subs[0] = sub_live(h, LSS_SUB_STREAM, "bench-0", 0);
    for (int i = 1; i < n; i++) {
        snprintf(name, sizeof name, i % 2 ? "other%d" : "other-%d", i);
        subs[i] = sub_live(h, i % 2 ? LSS_SUB_CATEGORY : LSS_SUB_STREAM,
                           name, 0);
    }
    double best = 1e18;
    int64_t g = 1;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now_ns();
        for (int i = 0; i < 2000; i++, g++)
            lss__hub_publish(h, "bench-0", 7, g, g);
        double dt = (now_ns() - t0) / 2000;
        if (dt < best)
            best = dt;
        assert_int_equal(drain(subs[0]), 2000);
    }
    for (int i = 0; i < n; i++)
        lss_sub_close(subs[i]);
    free(subs);
    lss__hub_unref(h);
    return best;
}

static void publish_cost_should_not_grow_with_non_matching_subscribers(
    void **state)
{
    (void)state;
    int n = fd_budget(10000);
    double c1 = publish_cost(1), c100 = publish_cost(100),
           c10k = publish_cost(n);
    print_message("publish cost, one matching subscriber among 1 / 100 / "
                  "%d: %.0f / %.0f / %.0f ns\n",
                  n, c1, c100, c10k);
    assert_true(c10k < 8 * c1 + 2000);
}

int main(void)
{
    /* Many subscriptions, one eventfd each: use the whole fd allowance. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sub_opts_init_should_set_the_documented_defaults),
        cmocka_unit_test(subscribe_should_reject_invalid_options),
        cmocka_unit_test(null_arguments_should_be_rejected_or_ignored),
        cmocka_unit_test(
            stream_subscription_should_receive_only_its_exact_stream),
        cmocka_unit_test(
            category_subscription_should_match_the_category_exactly),
        cmocka_unit_test(
            all_subscription_should_receive_every_write_from_its_position),
        cmocka_unit_test(
            consumer_groups_should_reproduce_the_protocol_examples),
        cmocka_unit_test(
            consumer_groups_should_skip_streams_without_a_cardinal_id),
        cmocka_unit_test(
            consumer_group_members_should_be_disjoint_and_cover_all),
        cmocka_unit_test(
            consumer_group_hash_should_be_computed_once_per_publish),
        cmocka_unit_test(
            replayed_and_queued_pokes_should_be_delivered_once_in_order),
        cmocka_unit_test(live_pokes_should_wait_until_replay_is_done),
        cmocka_unit_test(nothing_below_position_should_ever_be_delivered),
        cmocka_unit_test(
            extreme_positions_should_neither_overflow_nor_repeat),
        cmocka_unit_test(replay_window_full_should_refuse_every_later_replay),
        cmocka_unit_test(
            overflow_should_report_eoverflow_and_spare_other_subscribers),
        cmocka_unit_test(overflow_during_replay_should_kill_the_subscription),
        cmocka_unit_test(
            publish_should_overflow_a_subscription_whose_queue_cannot_grow),
        cmocka_unit_test(retired_hub_should_deliver_nothing_more),
        cmocka_unit_test(
            subscription_should_keep_the_hub_alive_after_the_store_lets_go),
        cmocka_unit_test(
            fd_should_be_readable_exactly_while_pokes_are_pending),
        cmocka_unit_test(
            notifier_should_be_readable_exactly_while_one_is_ready),
        cmocka_unit_test(notifier_should_serve_ready_subscriptions_in_turn),
        cmocka_unit_test(notifier_should_report_overflow_and_errors),
        cmocka_unit_test(notifier_steady_state_should_not_allocate),
        cmocka_unit_test(notifier_should_not_lose_a_wake_up_across_threads),
        cmocka_unit_test(queue_should_survive_wrap_around_and_long_names),
        cmocka_unit_test(many_subscribers_should_get_only_their_own_pokes),
        cmocka_unit_test(steady_state_publish_and_next_should_not_allocate),
        cmocka_unit_test(
            hub_and_subscribe_should_fail_cleanly_when_allocation_fails),
        cmocka_unit_test(
            subscribe_should_fail_cleanly_without_file_descriptors),
        cmocka_unit_test(two_threads_should_deliver_every_poke_in_order),
        cmocka_unit_test(a_tiny_queue_should_overflow_rather_than_lose_pokes),
        cmocka_unit_test(close_during_concurrent_publish_should_be_safe),
        cmocka_unit_test(
            publish_cost_should_not_grow_with_non_matching_subscribers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
