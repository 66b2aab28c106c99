/* main.c — the shim-server executable: subcommands, Go-style flags with
 * environment defaults, storage resolution, startup and logging
 * (PROTOCOL.md 2, 10.4). */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SHIM_COMMIT
#define SHIM_COMMIT "unknown"
#endif
#ifndef SHIM_BUILT
#define SHIM_BUILT "unknown"
#endif

#define DEFAULT_PORT 8080
#define DEFAULT_MAX_BODY 104857600LL
#define MIN_MAX_BODY 1048576LL
#define DEFAULT_DATA_DIR "./streamstore-data"

static const char BANNER[] =
    "libstreamstore shim-server — an EventoDB 0.7 compatible event store\n";

/* ------------------------------------------------------------------------
 * Logging (2.7): one write(2) per line on a non-blocking descriptor of its
 * own, so a full pipe drops lines instead of stalling the loop.  Setting
 * O_NONBLOCK on a dup() of stdout would change the open file description
 * the process shares with whoever else writes to it; reopening
 * /proc/self/fd/1 gives a description of our own.
 * ---------------------------------------------------------------------- */

static int g_log_fd = 1;
static int g_log_poll = 1; /* descriptor may block: poll before writing */
static int g_log_level = LOG_INFO;
static int g_log_json = 0;

static const char *const LVL_CONSOLE[] = {"DBG", "INF", "WRN", "ERR", "FTL"};
static const char *const LVL_JSON[] = {"debug", "info", "warn", "error", "fatal"};

static void log_init(const char *level, const char *format)
{
    if (!strcmp(level, "debug"))
        g_log_level = LOG_DEBUG;
    else if (!strcmp(level, "warn"))
        g_log_level = LOG_WARN;
    else if (!strcmp(level, "error"))
        g_log_level = LOG_ERROR;
    else
        g_log_level = LOG_INFO;
    g_log_json = strcmp(format, "console") != 0;
    int fd = open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        g_log_fd = fd;
        g_log_poll = 0;
    }
}

static void log_close(void)
{
    if (g_log_fd > 2)
        close(g_log_fd);
    g_log_fd = 1;
    g_log_poll = 1;
}

int shim_log_enabled(int level)
{
    return level >= g_log_level;
}

static int is_number(const char *v)
{
    size_t i = v[0] == '-';
    if (!v[i])
        return 0;
    for (; v[i]; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return v[0] != '0' || !v[1];
}

static size_t put(char *o, size_t at, size_t cap, const char *s, size_t n)
{
    if (at < cap) {
        size_t k = n < cap - at ? n : cap - at;
        memcpy(o + at, s, k);
    }
    return at + n;
}

void shim_log(int level, const char *msg, ...)
{
    int always = level & LOG_ALWAYS;
    level &= ~LOG_ALWAYS;
    if ((level < g_log_level && !always) || g_log_fd < 0)
        return;
    char line[4096];
    char esc[6 * 512 + 2];
    size_t cap = sizeof line - 1, n = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char t[32];
    shim_time_text((int64_t)ts.tv_sec, t);
    size_t ml = strlen(msg);
    if (ml > 512)
        ml = 512;
    if (g_log_json) {
        n = put(line, n, cap, "{\"level\":\"", 10);
        n = put(line, n, cap, LVL_JSON[level], strlen(LVL_JSON[level]));
        n = put(line, n, cap, "\",\"time\":\"", 10);
        n = put(line, n, cap, t, strlen(t));
        n = put(line, n, cap, "\",\"message\":", 12);
        n = put(line, n, cap, esc, json_str(esc, msg, ml));
    } else {
        n = put(line, n, cap, t, strlen(t));
        n = put(line, n, cap, " ", 1);
        n = put(line, n, cap, LVL_CONSOLE[level], 3);
        n = put(line, n, cap, " ", 1);
        n = put(line, n, cap, msg, ml);
    }
    va_list ap;
    va_start(ap, msg);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (!v)
            v = "";
        size_t vl = strlen(v);
        if (vl > 512)
            vl = 512;
        if (g_log_json) {
            n = put(line, n, cap, ",", 1);
            n = put(line, n, cap, esc, json_str(esc, k, strlen(k)));
            n = put(line, n, cap, ":", 1);
            if (is_number(v))
                n = put(line, n, cap, v, vl);
            else
                n = put(line, n, cap, esc, json_str(esc, v, vl));
        } else {
            n = put(line, n, cap, " ", 1);
            n = put(line, n, cap, k, strlen(k));
            n = put(line, n, cap, "=", 1);
            if (!vl || strpbrk(v, " \"\\=\t\n"))
                n = put(line, n, cap, esc, json_str(esc, v, vl));
            else
                n = put(line, n, cap, v, vl);
        }
    }
    va_end(ap);
    if (g_log_json)
        n = put(line, n, cap, "}", 1);
    if (n > cap)
        n = cap;
    line[n++] = '\n';
    if (g_log_poll) {
        struct pollfd p = {.fd = g_log_fd, .events = POLLOUT};
        if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
            return; /* dropped: the sink would block */
    }
    ssize_t w = write(g_log_fd, line, n);
    (void)w;
}

/* Fatal startup errors: the log line, and the reason on stderr too (the
 * log may go to a file nobody watches). */
static void fatal(const char *msg, const char *reason)
{
    shim_log(LOG_FATAL, msg, "error", reason, (char *)NULL);
    fprintf(stderr, "%s: %s\n", msg, reason);
}

/* ------------------------------------------------------------------------
 * Flags (2.2) and environment (2.3)
 * ---------------------------------------------------------------------- */

static shim_cfg cfg;

static flagdef FLAGS[] = {
    {"data-dir", F_STR, "EVENTODB_DATA_DIR", "string",
     "directory for SQLite files", &cfg.data_dir},
    {"db-type", F_STR, "EVENTODB_DB_TYPE", "string",
     "accepted for compatibility ('timescale' is refused)", &cfg.db_type},
    {"db-url", F_STR, "EVENTODB_DB_URL", "string",
     "storage URL: postgres://... or sqlite://<file> (default: SQLite in "
     "--data-dir or ./streamstore-data)", &cfg.db_url},
    {"log-format", F_STR, "EVENTODB_LOG_FORMAT", "string",
     "console, or anything else for JSON lines (default \"console\")",
     &cfg.log_format},
    {"log-level", F_STR, "EVENTODB_LOG_LEVEL", "string",
     "debug, info, warn or error (default \"info\")", &cfg.log_level},
    {"max-body-size", F_INT, "EVENTODB_MAX_BODY_SIZE", "int",
     "request body limit in bytes, at least 1048576 (default 104857600)",
     &cfg.max_body},
    {"null-store", F_BOOL, NULL, "",
     "benchmarking only: /rpc answers a fixed body without touching the store",
     &cfg.null_store},
    {"port", F_INT, "EVENTODB_PORT", "int", "TCP port, 0 = ephemeral (default 8080)",
     &cfg.port},
    {"test-mode", F_BOOL, "EVENTODB_TEST_MODE", "",
     "in-memory store; requests without a token use namespace 'default'",
     &cfg.test_mode},
    {"token", F_STR, "EVENTODB_TOKEN", "string",
     "token for namespace 'default' (generated when empty)", &cfg.token},
};
#define NFLAGS (sizeof FLAGS / sizeof FLAGS[0])

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (int i = 0; i < 6; i++) {
        if (!strcmp(v, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcmp(v, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Go's strconv.ParseInt(v, 0, 64). */
static int parse_int(const char *v, long long *out)
{
    if (!*v || *v == ' ' || *v == '\t' || *v == '\n')
        return -1;
    char clean[64];
    size_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p == '_')
            continue;
        if (n + 1 >= sizeof clean)
            return -1;
        clean[n++] = *p;
    }
    clean[n] = '\0';
    const char *s = clean;
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
        base = 8;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        s += 2;
    } else if (s[0] == '0' && s[1]) {
        base = 8;
        s += 1;
    }
    if (!*s || *s == '+' || *s == '-')
        return -1;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, base);
    if (errno || *end)
        return -1;
    *out = neg ? -x : x;
    return 0;
}

static int check_int(const flagdef *f, long long v)
{
    if (f->ptr == &cfg.port)
        return v >= 0 && v <= 65535 ? 0 : -1;
    if (f->ptr == &cfg.max_body)
        return v >= MIN_MAX_BODY ? 0 : -1;
    return 0;
}

static void usage(FILE *o, const flagdef *tab, size_t n, const char *prog)
{
    fprintf(o, "Usage of %s:\n", prog);
    for (size_t i = 0; i < n; i++) {
        const flagdef *f = &tab[i];
        fprintf(o, "  -%s%s%s\n    \t%s", f->name, *f->arg ? " " : "", f->arg,
                f->usage);
        if (f->env)
            fprintf(o, " [env %s]", f->env);
        fputc('\n', o);
    }
}

static void help(void)
{
    fputs(BANNER, stdout);
    fputs("\nUsage:\n"
          "  shim-server [serve] [flags]     serve (no arguments: durable SQLite in\n"
          "                                  ./streamstore-data on port 8080)\n"
          "  shim-server export --url URL --token T [--categories a,b] [--since D]\n"
          "                     [--until D] [--gzip] [--output F]\n"
          "  shim-server import --url URL --token T [--gzip] [--input F] [--force]\n"
          "  shim-server version [--full]    print the protocol version\n"
          "  shim-server help                this text\n\n"
          "Server flags (an environment variable gives the default):\n",
          stdout);
    for (size_t i = 0; i < NFLAGS; i++) {
        const flagdef *f = &FLAGS[i];
        printf("  -%s%s%s\n        %s%s%s%s\n", f->name, *f->arg ? " " : "",
               f->arg, f->usage, f->env ? " [" : "", f->env ? f->env : "",
               f->env ? "]" : "");
    }
    fputs("\nEndpoints:\n"
          "  POST /rpc         JSON-RPC: [\"method\", args...]\n"
          "  GET  /subscribe   Server-Sent Events (stream=, category=, all=true)\n"
          "  POST /import      NDJSON in, progress events out\n"
          "  GET  /export      NDJSON out (categories=, since=, until=)\n"
          "  GET  /health      {\"status\":\"ok\"}\n"
          "  GET  /version     {\"version\":\"0.7.0\"}\n"
          "  GET  /metrics     Prometheus text format\n",
          stdout);
}

static int set_flag(const flagdef *f, const char *v)
{
    switch (f->kind) {
    case F_BOOL:
        return parse_bool(v, (int *)f->ptr);
    case F_INT: {
        long long x;
        if (parse_int(v, &x) != 0 || check_int(f, x) != 0)
            return -1;
        *(long long *)f->ptr = x;
        return 0;
    }
    default:
        *(const char **)f->ptr = v;
        return 0;
    }
}

static void apply_env(void)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        const flagdef *f = &FLAGS[i];
        if (!f->env)
            continue;
        const char *v = getenv(f->env);
        if (!v || !*v)
            continue;
        if (f->kind == F_STR) {
            *(const char **)f->ptr = v;
            continue;
        }
        /* Set but unparseable: ignored, the default stays. */
        if (f->kind == F_BOOL) {
            int b;
            if (parse_bool(v, &b) == 0)
                *(int *)f->ptr = b;
        } else {
            long long x;
            if (parse_int(v, &x) == 0 && check_int(f, x) == 0)
                *(long long *)f->ptr = x;
        }
    }
}

static const flagdef *find_flag(const flagdef *tab, size_t nt, const char *name,
                                size_t n)
{
    for (size_t i = 0; i < nt; i++)
        if (strlen(tab[i].name) == n && !memcmp(tab[i].name, name, n))
            return &tab[i];
    return NULL;
}

int shim_flags_parse(const flagdef *tab, size_t nt, int argc, char **argv,
                     const char *prog)
{
    int i = 0;
    while (i < argc) {
        const char *s = argv[i];
        if (strlen(s) < 2 || s[0] != '-')
            break;
        const char *name = s + 1;
        if (s[1] == '-') {
            if (!s[2]) {
                i++;
                break;
            }
            name = s + 2;
        }
        if (!*name || *name == '-' || *name == '=') {
            fprintf(stderr, "bad flag syntax: %s\n", s);
            usage(stderr, tab, nt, prog);
            return 2;
        }
        i++;
        const char *eq = strchr(name, '=');
        size_t nn = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : NULL;
        const flagdef *f = find_flag(tab, nt, name, nn);
        if (!f) {
            if ((nn == 4 && !memcmp(name, "help", 4)) ||
                (nn == 1 && name[0] == 'h')) {
                usage(stderr, tab, nt, prog);
                exit(0);
            }
            fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)nn, name);
            usage(stderr, tab, nt, prog);
            return 2;
        }
        if (f->kind == F_BOOL && !val) {
            *(int *)f->ptr = 1;
            continue;
        }
        if (!val) {
            if (i >= argc) {
                fprintf(stderr, "flag needs an argument: -%s\n", f->name);
                usage(stderr, tab, nt, prog);
                return 2;
            }
            val = argv[i++];
        }
        if (set_flag(f, val) != 0) {
            fprintf(stderr, "invalid value \"%s\" for flag -%s: parse error\n", val,
                    f->name);
            usage(stderr, tab, nt, prog);
            return 2;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Storage (2.4, 2.5)
 * ---------------------------------------------------------------------- */

typedef struct storage {
    char url[4096];
    const char *meta; /* registry file name, NULL = default */
    int postgres;
    char meta_buf[1024];
} storage;

/* Go's url.Parse, as far as the scheme goes.  Returns 0 and the scheme
 * (lower case) or -1 with the reason. */
static int url_scheme(const char *u, char *scheme, size_t cap, char *why, size_t wcap)
{
    for (const char *p = u; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(why, wcap, "parse \"%s\": net/url: invalid control character in URL", u);
            return -1;
        }
        if (*p == '%' && !(p[1] && p[2] && strchr("0123456789abcdefABCDEF", p[1]) &&
                           strchr("0123456789abcdefABCDEF", p[2]))) {
            snprintf(why, wcap, "parse \"%s\": invalid URL escape \"%.3s\"", u, p);
            return -1;
        }
    }
    size_t i = 0;
    for (; u[i]; i++) {
        char ch = u[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
            continue;
        if (i > 0 && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'))
            continue;
        if (ch == ':') {
            if (i == 0) {
                snprintf(why, wcap, "parse \"%s\": missing protocol scheme", u);
                return -1;
            }
            break;
        }
        i = 0; /* not a scheme: the whole text is a path */
        break;
    }
    if (!u[i])
        i = 0;
    if (i >= cap)
        i = cap - 1;
    for (size_t k = 0; k < i; k++)
        scheme[k] = (char)(u[k] >= 'A' && u[k] <= 'Z' ? u[k] + 32 : u[k]);
    scheme[i] = '\0';
    return 0;
}

static int resolve_storage(storage *st)
{
    char why[4600];
    memset(st, 0, sizeof *st);
    if (cfg.db_type && !strcasecmp(cfg.db_type, "timescale")) {
        fatal("Invalid database configuration", "unsupported --db-type: timescale");
        return -1;
    }
    const char *url = cfg.db_url ? cfg.db_url : "";
    if (cfg.test_mode && !*url) {
        cfg.effective_test = 1;
        cfg.is_memory = 1;
        snprintf(st->url, sizeof st->url, ":memory:");
        return 0;
    }
    if (!*url) {
        const char *dir = cfg.data_dir && *cfg.data_dir ? cfg.data_dir : DEFAULT_DATA_DIR;
        snprintf(st->url, sizeof st->url, "%s", dir);
        cfg.store_dir = dir;
        return 0;
    }
    char scheme[64];
    if (url_scheme(url, scheme, sizeof scheme, why, sizeof why) != 0) {
        char msg[4700];
        snprintf(msg, sizeof msg, "invalid database URL: %s", why);
        fatal("Invalid database configuration", msg);
        return -1;
    }
    if (!strcmp(scheme, "postgres") || !strcmp(scheme, "postgresql")) {
        st->postgres = 1;
        snprintf(st->url, sizeof st->url, "%s", url);
        return 0;
    }
    if (!strcmp(scheme, "sqlite")) {
        const char *f = url + 7; /* "sqlite:" */
        if (!strncmp(f, "//", 2))
            f += 2;
        snprintf(st->meta_buf, sizeof st->meta_buf, "%s", *f ? f : "metadata.db");
        st->meta = st->meta_buf;
        if (!cfg.data_dir || !*cfg.data_dir) {
            fatal("Invalid database configuration", "--data-dir is required for SQLite");
            return -1;
        }
        snprintf(st->url, sizeof st->url, "%s", cfg.data_dir);
        cfg.store_dir = cfg.data_dir;
        return 0;
    }
    char msg[200];
    snprintf(msg, sizeof msg,
             "unsupported database scheme: %s (use postgres:// or sqlite://)", scheme);
    fatal("Invalid database configuration", msg);
    return -1;
}

/* ------------------------------------------------------------------------
 * The default namespace (10.4)
 * ---------------------------------------------------------------------- */

static void banner_line(void)
{
    char bar[3 * 64 + 1];
    for (int i = 0; i < 64; i++)
        memcpy(bar + 3 * i, "\xe2\x95\x90", 3); /* U+2550 */
    bar[3 * 64] = '\0';
    shim_log(LOG_INFO | LOG_ALWAYS, bar, (char *)NULL);
}

static void token_banner(const char *tok, size_t n)
{
    char t[LSS_TOKEN_MAX + 1];
    memcpy(t, tok, n);
    t[n] = '\0';
    banner_line();
    shim_log(LOG_INFO | LOG_ALWAYS, "DEFAULT NAMESPACE TOKEN:", (char *)NULL);
    shim_log(LOG_INFO | LOG_ALWAYS, t, (char *)NULL);
    banner_line();
}

static int ensure_default(lss_conn *lc)
{
    const char *tok = cfg.token && *cfg.token ? cfg.token : NULL;
    size_t tn = tok ? strlen(tok) : 0;
    int matches = 0;
    if (tok) {
        const char *ns = NULL;
        size_t nn = 0;
        int rc = lss_authorize(lc, tok, tn, 0, &ns, &nn);
        if (rc == LSS_ETOKEN) {
            fatal("Invalid token", lss_errmsg(lc));
            return -1;
        }
        if ((rc == LSS_OK || rc == LSS_EAUTH) &&
            !(nn == 7 && !memcmp(ns, "default", 7))) {
            char msg[600];
            snprintf(msg, sizeof msg,
                     "provided token is for namespace '%.*s', expected 'default'",
                     (int)(nn > 255 ? 255 : nn), ns ? ns : "");
            fatal("Invalid token", msg);
            return -1;
        }
        matches = rc == LSS_OK;
    }
    const lss_ns_row *row;
    int rc = lss_ns_info(lc, "default", 7, &row);
    if (rc == LSS_ENOTFOUND) {
        char out[LSS_TOKEN_MAX];
        size_t on = 0;
        rc = lss_ns_create(lc, "default", 7, "Default namespace", 17, tok, tn, out,
                           sizeof out, &on, NULL);
        if (rc == LSS_EEXISTS) {
            shim_log(LOG_INFO, "Default namespace already exists", (char *)NULL);
            return 0;
        }
        if (rc != LSS_OK) {
            fatal(rc == LSS_ETOKEN ? "Invalid token" : "Failed to create default namespace",
                  lss_errmsg(lc));
            return -1;
        }
        shim_log(LOG_INFO, "Created default namespace", (char *)NULL);
        token_banner(out, on);
        return 0;
    }
    if (rc != LSS_OK) {
        fatal("Failed to create default namespace", lss_errmsg(lc));
        return -1;
    }
    shim_log(LOG_INFO, "Default namespace already exists", (char *)NULL);
    if (tok && matches)
        token_banner(tok, tn);
    else if (tok)
        shim_log(LOG_WARN, "--token does not match the stored token of namespace 'default'",
                 (char *)NULL);
    return 0;
}

/* ------------------------------------------------------------------------
 * Listening socket (3.1)
 * ---------------------------------------------------------------------- */

static int bind_listener(int port, int *bound, char *addr, size_t acap)
{
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons((uint16_t)port);
        a.sin6_addr = in6addr_any;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            snprintf(addr, acap, "[::]");
            goto listen;
        }
        int e = errno;
        close(fd);
        fd = -1;
        if (e != EADDRNOTAVAIL && e != EAFNOSUPPORT) {
            errno = e;
            return -1;
        }
    } else if (errno != EAFNOSUPPORT && errno != EPROTONOSUPPORT && errno != EINVAL) {
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_port = htons((uint16_t)port);
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0)
        goto fail;
    snprintf(addr, acap, "0.0.0.0");
listen:
    if (listen(fd, 4096) != 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
fail: {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

/* ------------------------------------------------------------------------
 * Subcommands
 * ---------------------------------------------------------------------- */

static int cmd_version(int argc, char **argv)
{
    if (argc > 2 && (!strcmp(argv[2], "--full") || !strcmp(argv[2], "-f"))) {
        fputs(BANNER, stdout);
        printf("Version:  %s\n", LSS_PROTOCOL_VERSION);
        printf("Library:  libstreamstore %s\n", lss_version_string());
        printf("Commit:   %s\n", SHIM_COMMIT);
        printf("Built:    %s\n", SHIM_BUILT);
        return 0;
    }
    printf("%s\n", LSS_PROTOCOL_VERSION);
    return 0;
}

/* The library's allocator: the system's, counted for /metrics
 * (streamstore_library_allocations_total), so that a steady-state request
 * making no allocation can be seen from outside (lss-bench W1). */
static atomic_ullong lib_allocs;

static void *count_malloc(void *ctx, size_t size)
{
    (void)ctx;
    atomic_fetch_add_explicit(&lib_allocs, 1, memory_order_relaxed);
    return malloc(size);
}

static void *count_realloc(void *ctx, void *p, size_t old_size, size_t size)
{
    (void)ctx;
    (void)old_size;
    atomic_fetch_add_explicit(&lib_allocs, 1, memory_order_relaxed);
    return realloc(p, size);
}

static void count_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const lss_allocator counting_allocator = {count_malloc, count_realloc,
                                                 count_free, NULL};

unsigned long long shim_lib_allocs(void)
{
    return atomic_load_explicit(&lib_allocs, memory_order_relaxed);
}

static void raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static int serve(int argc, char **argv)
{
    cfg.port = DEFAULT_PORT;
    cfg.token = "";
    cfg.db_url = "";
    cfg.data_dir = "";
    cfg.db_type = "";
    cfg.log_level = "info";
    cfg.log_format = "console";
    cfg.max_body = DEFAULT_MAX_BODY;
    apply_env();
    int rc = shim_flags_parse(FLAGS, NFLAGS, argc, argv, "shim-server");
    if (rc)
        return rc;
    log_init(cfg.log_level, cfg.log_format);

    /* Signals are taken by the loop's signal thread; block them in every
     * thread from here on. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    storage st;
    if (resolve_storage(&st) != 0) {
        log_close();
        return 1;
    }
    lss_options o;
    lss_options_init(&o);
    o.metadata_file = st.meta;
    o.allocator = &counting_allocator;
    lss_db *db = NULL;
    rc = lss_open(st.url, &o, &db);
    if (rc != LSS_OK) {
        const char *why = db ? lss_db_errmsg(db) : lss_strerror(rc);
        if (st.postgres) {
            char msg[700];
            snprintf(msg, sizeof msg, "failed to connect to PostgreSQL: %s", why);
            fatal("Failed to create store", msg);
        } else {
            fatal("Failed to create store", why);
        }
        lss_close(db);
        log_close();
        return 1;
    }
    if (cfg.is_memory)
        shim_log(LOG_INFO, "Test mode: in-memory store", (char *)NULL);
    else if (st.postgres)
        shim_log(LOG_INFO, "Storage ready", "backend", "postgres", (char *)NULL);
    else
        shim_log(LOG_INFO, "Storage ready", "backend", "sqlite", "directory",
                 cfg.store_dir, (char *)NULL);
    lss_conn *lc = NULL;
    rc = lss_conn_open(db, &lc);
    if (rc != LSS_OK) {
        fatal("Failed to create store", lss_strerror(rc));
        lss_close(db);
        log_close();
        return 1;
    }
    if (ensure_default(lc) != 0) {
        lss_conn_close(lc);
        lss_close(db);
        log_close();
        return 1;
    }
    int bound = 0;
    char addr[64];
    int lfd = bind_listener((int)cfg.port, &bound, addr, sizeof addr);
    if (lfd < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "failed to listen on port %lld: %s", cfg.port,
                 strerror(errno));
        fatal("Failed to start server", msg);
        lss_conn_close(lc);
        lss_close(db);
        log_close();
        return 1;
    }
    if (cfg.null_store)
        shim_log(LOG_WARN, "Null store mode: /rpc answers a fixed body without "
                           "touching the store (benchmarking only)",
                 (char *)NULL);
    char where[96], ps[16];
    snprintf(where, sizeof where, "%s:%d", addr, bound);
    snprintf(ps, sizeof ps, "%d", bound);
    shim_log(LOG_INFO | LOG_ALWAYS, "Server listening", "address", where, "port", ps, "version",
             LSS_PROTOCOL_VERSION, "library", lss_version_string(), "mode",
             cfg.effective_test ? "test" : "strict", (char *)NULL);
    rc = server_run(&cfg, db, lc, lfd);
    shim_log(LOG_INFO, "Server stopped", (char *)NULL);
    lss_conn_close(lc);
    lss_close(db);
    server_signals_end();
    log_close();
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        const char *a = argv[1];
        if (!strcmp(a, "serve"))
            return serve(argc - 2, argv + 2);
        if (!strcmp(a, "export"))
            return cli_export(argc - 2, argv + 2);
        if (!strcmp(a, "import"))
            return cli_import(argc - 2, argv + 2);
        if (!strcmp(a, "version") || !strcmp(a, "--version") || !strcmp(a, "-v"))
            return cmd_version(argc, argv);
        if (!strcmp(a, "help") || !strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
    }
    return serve(argc - 1, argv + 1);
}
