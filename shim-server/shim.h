/* shim.h — what the shim-server's files share: configuration, logging,
 * connections and the event loop's helpers, metrics.  The shim uses only
 * the public header of the library. */
#ifndef SHIM_H
#define SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http.h"
#include "streamstore.h"

/* ------------------------------------------------------------------------
 * Configuration (main.c)
 * ---------------------------------------------------------------------- */

typedef struct shim_cfg {
    long long port;
    int test_mode;           /* requested */
    int effective_test;      /* section 2.5 */
    const char *token;
    const char *db_url;
    const char *data_dir;
    const char *db_type;
    const char *log_level;
    const char *log_format;
    long long max_body;
    int null_store;
    int is_memory;           /* the store is in memory */
    const char *store_dir;   /* SQLite data directory, NULL in memory */
} shim_cfg;

/* Go-style flags (2.2): a table, parsed by shim_flags_parse. */
enum { F_BOOL, F_INT, F_STR };

typedef struct flagdef {
    const char *name;
    int kind;          /* F_BOOL: int, F_INT: long long, F_STR: const char * */
    const char *env;   /* environment variable giving the default, or NULL */
    const char *arg;   /* usage placeholder ("string", "int", "") */
    const char *usage;
    void *ptr;
} flagdef;

/* Parse argv[0..argc) against tab as Go's flag package does (ExitOnError):
 * returns 0, or 2 after printing the error and usage on stderr; -h/-help
 * print the usage and exit 0. */
int shim_flags_parse(const flagdef *tab, size_t n, int argc, char **argv,
                     const char *prog);

/* The export and import subcommands (cli_transfer.c): exit statuses. */
int cli_export(int argc, char **argv);
int cli_import(int argc, char **argv);

/* ------------------------------------------------------------------------
 * Logging (main.c): one line per call, never blocking (section 2.7).
 * Fields are key/value string pairs ending with NULL.
 * ---------------------------------------------------------------------- */

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };
/* Or'ed into a level: written whatever --log-level says (the startup line
 * with the port, the token banner). */
#define LOG_ALWAYS 0x100

int shim_log_enabled(int level);
void shim_log(int level, const char *msg, ...);

/* ------------------------------------------------------------------------
 * Buffers
 * ---------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len;  /* bytes held */
    size_t off;  /* output buffers: bytes already sent */
    size_t cap;
} sbuf;

/* Make room for n more bytes; returns the write position or NULL. */
char *sbuf_reserve(sbuf *b, size_t n);
int sbuf_add(sbuf *b, const void *p, size_t n);
void sbuf_free(sbuf *b);

/* ------------------------------------------------------------------------
 * Connections (server.c)
 * ---------------------------------------------------------------------- */

typedef struct server server;
typedef struct conn conn;
typedef struct import_state import_state;
typedef struct export_state export_state;

/* What an epoll event points at. */
enum { SRC_LISTEN, SRC_STOP, SRC_SOCK, SRC_SUB, SRC_NOTIFY, SRC_DONE };
typedef struct evsrc {
    int type;
    conn *c;
} evsrc;

/* Request states. */
enum { RS_HEAD, RS_ERROR, RS_ROUTE, RS_BODY, RS_DISPATCH };
/* Connection modes. */
enum { M_HTTP, M_SSE, M_EXPORT, M_IMPORT, M_LINGER };
/* Timer lists. */
enum { T_NONE, T_IDLE, T_HEAD, T_BODY, T_WRITE, T_PING, T_LINGER, T_N };
/* Endpoints, for metrics. */
enum { EP_RPC, EP_SUBSCRIBE, EP_IMPORT, EP_EXPORT, EP_HEALTH, EP_VERSION,
       EP_METRICS, EP_OTHER, EP_N };
/* SSE kinds and disconnect reasons, for metrics. */
enum { SK_STREAM, SK_CATEGORY, SK_ALL, SK_N };
enum { SD_CLIENT, SD_OVERFLOW, SD_ERROR, SD_SHUTDOWN, SD_N };

struct conn {
    int fd;
    int dead;
    uint32_t ev_mask;
    evsrc src_sock, src_sub;
    sbuf in;              /* [in_pos, in.len): unprocessed input */
    size_t in_pos;
    sbuf out;             /* [out.off, out.len): unsent output */
    /* The request being read. */
    int rs;
    http_req req;
    http_body body;
    size_t scanned;
    int err_status;       /* RS_ERROR */
    int route;            /* EP_* */
    int is_head;          /* HEAD request: no body in the answer */
    int continued;        /* 100 Continue sent */
    int64_t t_start_us;   /* request head complete (debug log) */
    char ns[256];         /* request namespace (authentication) */
    size_t ns_n;
    /* Answering. */
    int n_pending;        /* RPCs of this connection not answered yet */
    int parked;           /* off epoll until they are (its input is in use) */
    unsigned batch_mark;  /* batch_submit's: last request of c in a batch */
    int keep_alive;       /* of the current request */
    int closing;          /* close once the output is sent */
    int mode;             /* M_* */
    int chunked;          /* streamed response uses chunked encoding */
    /* SSE. */
    lss_sub *sub;
    int sub_kind;
    import_state *imp;
    export_state *exp;
    /* Timers. */
    int tlist;
    int64_t deadline_ms;
    conn *tprev, *tnext;
    /* Lists of the loop. */
    conn *next_work;
    int in_work;
    int rd_eof;           /* the client shut down its side */
    int sse_reason;       /* SD_* when the connection ends */
    conn *lprev, *lnext;  /* every open connection */
    conn *next_free;      /* pool, and the turn's closed connections */
};

/* Request routing results. */
enum { R_OK, R_DEFER };

int64_t shim_now_ms(const server *s);
int64_t shim_now_us(void);
const shim_cfg *srv_cfg(const server *s);
lss_conn *srv_lss(const server *s);

/* Answer the current request with a complete response (status, content
 * type, extra header lines each ending in "\r\n" or NULL, body) and finish
 * the request.  Honours HEAD and the connection's keep-alive state. */
void conn_respond(server *s, conn *c, int status, const char *ctype,
                  const char *headers, const char *body, size_t n);
/* Mark the connection to close after this answer (sends Connection: close). */
void conn_set_close(conn *c);
/* Consume the current request (head and body) and get ready for the next. */
void conn_request_done(server *s, conn *c);
/* Begin a streamed response: status line and headers; chunked on HTTP/1.1,
 * raw bytes and close-at-end on HTTP/1.0. */
void conn_stream_begin(server *s, conn *c, int status, const char *headers);
/* One chunk of a streamed response (n > 0). */
int conn_chunk(conn *c, const char *p, size_t n);
/* End a streamed response normally (terminating chunk) and return to
 * request/response mode (or close). */
void conn_stream_end(server *s, conn *c);
/* Send what can be sent now.  Returns 0, or -1 when the connection died. */
int conn_flush(server *s, conn *c);
/* Close now; abort = RST (no terminating chunk reaches the client). */
void conn_close(server *s, conn *c, int abort);
/* Bytes waiting to be sent. */
size_t conn_pending(const conn *c);
void conn_timer(server *s, conn *c, int list);
/* Register / unregister c's subscription fd with the loop. */
int conn_watch_sub(server *s, conn *c, int fd);
void conn_unwatch_sub(server *s, conn *c, int fd);
/* Queue an /rpc call for the turn's batch (body in c's input buffer). */
int batch_add(server *s, conn *c, const char *body, size_t n);

/* ------------------------------------------------------------------------
 * Routes (routes.c)
 * ---------------------------------------------------------------------- */

/* The head is parsed: route, authenticate, decide how to read the body. */
int routes_on_head(server *s, conn *c);
/* The body is complete: answer or start a stream. */
int routes_dispatch(server *s, conn *c);
/* Import: more body bytes arrived (or the connection is being read). */
void import_feed(server *s, conn *c);
/* Export: produce more output while the socket takes it. */
void export_pump(server *s, conn *c);
void stream_state_free(conn *c);

/* Error bodies (PROTOCOL.md 5.2), "\n"-terminated.  Returns the length. */
size_t json_error(char *out, size_t cap, const char *code, const char *msg,
                  const char *dkey, const char *dval, size_t dval_n);
/* JSON string escaping (1.5) of s[0..n) into out, quotes included; needs
 * 6n + 2 bytes at most.  Returns the length. */
size_t json_str(char *out, const char *s, size_t n);

/* ------------------------------------------------------------------------
 * SSE (sse.c)
 * ---------------------------------------------------------------------- */

/* The loop's shared wake-up for its subscriptions (one per process): its
 * descriptor is added to ep with evsrc type SRC_NOTIFY.  Without it (an
 * error is logged) each subscription falls back to its own descriptor. */
void sse_loop_init(int ep);
void sse_loop_free(void);
/* Open SSE subscriptions of the loop. */
size_t sse_count(void);
/* SRC_NOTIFY is readable: serve a bounded slice of ready subscribers (the
 * descriptor stays readable while more are ready). */
void sse_on_ready(server *s);
int sse_start(server *s, conn *c);
void sse_on_sub(server *s, conn *c);
void sse_ping(server *s, conn *c);
/* Release the subscription; reason SD_*. */
void sse_end(server *s, conn *c, int reason);

/* ------------------------------------------------------------------------
 * Metrics (metrics.c)
 * ---------------------------------------------------------------------- */

void metrics_http(int ep, int status);
void metrics_rpc(int method, int status);
void metrics_write_seconds(double s);
void metrics_read_seconds(double s);
void metrics_batch(size_t calls);
/* Calls into the library's allocator so far (main.c). */
unsigned long long shim_lib_allocs(void);
void metrics_sse_gauge(int kind, int delta);
void metrics_sse_poke(void);
void metrics_sse_disconnect(int reason);
/* The exposition text into b. */
int metrics_render(sbuf *b, const shim_cfg *cfg);

/* ------------------------------------------------------------------------
 * The loop (server.c) and time helpers
 * ---------------------------------------------------------------------- */

/* Serve on the bound listening socket until SIGTERM/SIGINT.  Returns 0.
 * From the signal on, the process ends within 100 ms: call
 * server_signals_end() once the store is closed. */
int server_run(const shim_cfg *cfg, lss_db *db, lss_conn *lc, int lfd);
void server_signals_end(void);

/* RFC 3339 / YYYY-MM-DD to microseconds since the epoch; -1 if invalid. */
int shim_parse_time(const char *s, size_t n, int64_t *us);
/* "2026-03-01T12:00:00Z" (whole seconds) of t; 21 bytes + NUL. */
void shim_time_text(int64_t unix_s, char out[32]);

#endif
