/* testvfs.h — a test-only SQLite VFS over "unix" that models power loss and
 * injects I/O faults.  See testvfs.c for the durability model.
 *
 * tv_install() registers the wrapper as the process's default VFS, so a
 * library that opens its files with the default VFS needs no change.  Call
 * it once per process before the first sqlite3_open*; after fork() call it
 * in the child (it is a no-op when already installed). */
#ifndef LSS_TESTVFS_H
#define LSS_TESTVFS_H

#include <stddef.h>

/* Returns SQLITE_OK or a SQLite error code. */
int tv_install(void);

/* ---------------------------------------------------------- power loss */

/* From now on every file opened under data_dir (not -shm) keeps its
 * durable shadow and its pending-write log in shadow_dir, which must exist
 * and be empty.  Both paths are copied.  Each sync of such a file takes
 * sync_latency_us (a device flush is not instant). */
void tv_powerloss_start(const char *data_dir, const char *shadow_dir, long sync_latency_us);

/* What tv_reboot() makes of the writes that were not synced. */
typedef enum tv_reboot_mode {
    TV_DROP,   /* none reached the disk */
    TV_PREFIX, /* the first k in issue order did; write k+1 may be torn */
    TV_SUBSET, /* each did, or did not, or was torn, independently */
} tv_reboot_mode;

typedef struct tv_reboot_stats {
    long files;          /* files rebuilt from their shadow */
    long pending;        /* unsynced writes and truncates found */
    long applied;        /* of those, applied whole */
    long torn;           /* applied in part (some 512-byte sectors) */
    long dropped;        /* not applied at all */
    long sync_completed; /* syncs the kill interrupted, completed */
} tv_reboot_stats;

/* In the parent, after the writer was SIGKILLed: rebuild every shadowed
 * file of data_dir as durable shadow + what mode lets through of its
 * pending writes, delete every -shm file, and empty shadow_dir (a missing
 * shadow_dir: nothing was opened).  *rng is a xorshift state.  Adds to *st.  Returns 0, or -1 with errno set. */
int tv_reboot(const char *data_dir, const char *shadow_dir, tv_reboot_mode mode,
              unsigned *rng, tv_reboot_stats *st);

/* ------------------------------------------------------ fault injection */

typedef enum tv_op { TV_READ, TV_WRITE, TV_SYNC } tv_op;

/* Fail the n-th (1-based) call of op on any file, counted from now, with
 * SQLite result code rc (an SQLITE_IOERR_* or SQLITE_FULL); when
 * persistent, fail every later call of op too.  Replaces an earlier arming. */
void tv_fault_arm(tv_op op, long n, int persistent, int rc);

/* Stop injecting; returns how many calls failed since the arming. */
long tv_fault_disarm(void);

#endif
