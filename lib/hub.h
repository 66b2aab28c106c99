/* hub.h — the per-namespace-instance subscription hub (PROTOCOL.md 8.3,
 * 8.6–8.10).  The store publishes each committed message once, in ascending
 * global position; the hub queues a poke for every matching subscription
 * and wakes it through its eventfd, or through its notifier's ready list
 * (lss_notifier, also in hub.c).  The public half (lss_sub_next, _fd,
 * _close, lss_sub_opts_init) lives in hub.c too; lss_subscribe (store.c)
 * is built on lss__hub_subscribe + lss__sub_add_replay + _replay_done.
 *
 * Locking: one mutex per hub (the subscriber index), one per
 * subscription (its queue) and one per notifier (its ready list), always
 * taken in that order.  No lock is held across anything that can block:
 * the only syscalls under a lock are non-blocking eventfd reads and
 * writes, one per empty/non-empty change,
 * and the allocator is called under them only while a queue grows or is
 * dropped. */
#ifndef LSS_HUB_H
#define LSS_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "streamstore.h"

/* One hub per namespace instance; refcounted (the store holds one
 * reference, every open subscription another). */
typedef struct lss__hub lss__hub;

/* Bytes a queued poke costs against lss_sub_opts.queue_bytes, besides its
 * stream name. */
#define LSS__POKE_OVERHEAD 24

/* Create a hub with one reference.  a may be NULL (libc); it is copied, and
 * used for the index only (each subscription's queue uses the allocator
 * given to lss__hub_subscribe).  Errors: LSS_EINVAL (out NULL),
 * LSS_ENOMEM, LSS_EINTERNAL (libcrypto could not provide MD5). */
int lss__hub_new(const lss_allocator *a, lss__hub **out);

/* Take / drop a reference.  The last unref frees the hub; both accept NULL
 * and are thread-safe. */
void lss__hub_ref(lss__hub *h);
void lss__hub_unref(lss__hub *h);

/* The namespace instance was deleted: every later publish is ignored.
 * Open subscriptions stay open and receive nothing more (pokes already
 * queued are still delivered); later subscribes succeed and receive
 * nothing.  Thread-safe, idempotent. */
void lss__hub_retire(lss__hub *h);

/* Publish one committed message.  Call in strictly ascending
 * global_position per hub (the store serialises the publishers of one
 * namespace); any thread.  Queues a poke for every subscription whose
 * filter matches, unless its key is below the subscription's position or
 * was already replayed; never waits for a subscriber.  A subscription that
 * would exceed its queue_bytes, or whose queue cannot grow (allocation
 * failure), is marked overflowed: its queue is dropped and lss_sub_next
 * returns LSS_EOVERFLOW from then on.  If libcrypto fails to hash a
 * cardinal id, the grouped subscriptions that might have matched return
 * LSS_EINTERNAL the same way.  Nothing is ever dropped silently.  Cost is
 * independent of the number of subscriptions that cannot match: stream and
 * category subscriptions are found by hash lookup; consumer-group MD5 is
 * computed at most once per call.  stream may be NULL only when stream_n
 * is 0. */
void lss__hub_publish(lss__hub *h, const char *stream, size_t stream_n,
                      int64_t position, int64_t global_position);

/* Register a subscription with h (from this instant every matching publish
 * is queued for it) in replay phase.  With nt (may be NULL) it is woken
 * through nt's ready list, handing back user, and has no eventfd of its
 * own; it holds a reference on nt.  Keys are never negative, so a
 * negative o->position acts as 0.  a may be NULL (libc); it is copied
 * and serves the subscription's memory.  o is checked: struct_size covers
 * at least through position; kind is LSS_SUB_*; STREAM and CATEGORY need a
 * non-empty name (not NULL); CATEGORY with group_size != 0 or
 * group_member != 0 needs 0 <= group_member < group_size.  queue_bytes 0
 * means the default (1 MiB).  The subscription holds a reference on h.
 * Errors: LSS_EINVAL, LSS_ENOMEM, LSS_EIO (no eventfd: descriptor limit).
 * Thread-safe. */
int lss__hub_subscribe(lss__hub *h, const lss_allocator *a,
                       const lss_sub_opts *o, lss_notifier *nt, void *user,
                       lss_sub **out);

/* Replay phase: add one existing message, in ascending key order (stream
 * position for STREAM, global position otherwise).  Replayed pokes are
 * delivered before any live one; a live poke whose key was replayed is
 * delivered once.  Replayed pokes count against queue_bytes together with
 * queued live ones.  When the next one would not fit, or o->replay_max
 * (>= 0) messages were already added, the replay window is full: returns
 * LSS_DONE, adds nothing, and refuses every later add the same way (so the
 * window never has a hole) — stop replaying and call lss__sub_replay_done;
 * later messages are covered as for messages beyond replay_max.  A message
 * below o->position or not above the previous one is skipped (LSS_OK).
 * Returns LSS_OK, LSS_DONE, LSS_EINVAL (s NULL, stream NULL with
 * stream_n > 0), LSS_EMISUSE (after replay_done), LSS_ENOMEM (the
 * subscription is still usable; the caller may retry or close it). */
int lss__sub_add_replay(lss_sub *s, const char *stream, size_t stream_n,
                        int64_t position, int64_t global_position);

/* End the replay phase: live pokes become deliverable after the replayed
 * ones.  Idempotent; accepts NULL. */
void lss__sub_replay_done(lss_sub *s);

/* lss_sub_next (streamstore.h) in full: LSS_ROW; LSS_AGAIN (nothing
 * deliverable: the eventfd is then not readable); LSS_EOVERFLOW or
 * LSS_EINTERNAL for a dead subscription (see lss__hub_publish; repeated on
 * every call, fd stays readable: close it); LSS_ENOMEM when the copy of a
 * longer stream name than any before could not be allocated (transient:
 * nothing was consumed, call again); LSS_EINVAL for NULL arguments.
 * Given ascending publishes, the eventfd is readable (or, with a
 * notifier, the subscription is on its ready list) exactly while
 * lss_sub_next would not return LSS_AGAIN. */

/* Open subscriptions registered with h (for /metrics).  Thread-safe. */
size_t lss__hub_subscribers(lss__hub *h);

/* Consumer-group MD5 hashes computed by publishes so far (tests check the
 * once-per-publish rule with it).  Thread-safe. */
uint64_t lss__hub_hashes(lss__hub *h);

#endif /* LSS_HUB_H */
