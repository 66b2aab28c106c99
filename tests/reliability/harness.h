/* harness.h — the SIGKILL writer harness shared by the crash and power-loss
 * tests (RELIABILITY.md "Crash (SQLite)", "Power loss (SQLite)").  See
 * harness.c for the protocol between the writer child and the parent. */
#ifndef LSS_HARNESS_H
#define LSS_HARNESS_H

#include <stdint.h>

#define NS "default"
#define NSTREAMS 50
#define MAXBATCH 10
#define CHILD_MAX_MS 20000

typedef struct req {
    int64_t seq;
    char stream[16];
    int has_ev;
    int64_t ev;
    int count;
    char ids[MAXBATCH][37];
    int acked;
    int inflight_at_fork; /* left unacknowledged by an earlier writer */
    int64_t pos, gpos; /* of the last message; -1 when unknown (lying ack) */
    int reported;
} req;

typedef struct harness harness;
struct harness {
    /* set by harness_init, then by the test */
    const char *label;        /* for the summary line */
    const char *dir_template; /* mkdtemp template of the work directory */
    int lying;                /* acknowledge before commit (negative control) */
    int sync;                 /* LSS_SYNC_* of the writer */
    int stop_on_loss;         /* stop at the first lost acknowledged message */
    int create_first;         /* the parent creates store and namespace first */
    int integrity_flags;      /* sqlite3_open_v2 flags of the integrity check */
    int kill_min_ms, kill_span_ms; /* the kill lands min + [0, span) ms in */
    void (*child_setup)(harness *h);          /* in the writer, before its open */
    void (*child_tick)(harness *h);           /* in the writer, after each append */
    void (*after_kill)(harness *h, int cycle); /* in the parent, before the check */
    void *user;
    /* state and results */
    char dir[64];
    char url[96];
    req *reqs;
    size_t n, cap;
    int64_t next_seq;
    long violations;
    long lost; /* acknowledged messages not found */
    long integrity_failures;
    long acks, retries_ok, cycles_with_progress, cycles;
    unsigned rng;
};

/* Defaults: the crash test's settings (FULL, read-write integrity check,
 * kill 5-60 ms in, no hooks). */
void harness_init(harness *h);

/* Runs the cycles (fork a writer, kill it, check the store); with
 * lying or stop_on_loss set, stops at the first lost acknowledged message.
 * Prints a summary line; removes the work directory. */
void harness_run(harness *h, int cycles);

/* The positive integer in environment variable name, else dflt. */
int harness_cycles(const char *name, int dflt);

/* Counts a violation and prints the first 20 of them. */
#define VIOLATION(h, ...)                                                    \
    do {                                                                     \
        if (++(h)->violations <= 20) {                                       \
            fprintf(stderr, "VIOLATION: " __VA_ARGS__);                      \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

#endif
