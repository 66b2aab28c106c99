/* cases_sse.c — W3 (BENCH.md): N SSE subscribers (GET /subscribe?all=true)
 * on one shim-server --test-mode while the W1 loader of cases_http.c runs.
 * A second thread reads every subscriber socket with one epoll loop and
 * stamps each poke's arrival; a poke's commit time is approximated by the
 * send time of the write that produced it (matched by stream + position
 * from the write's answer).  Reports pokes delivered against expected
 * (writes x N), p50/p99 commit -> poke and the server's VmRSS before and
 * after. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

long bench_sse_subscribers = 10000;

#define SUB_RES 512 /* an incomplete poke carried to the next read */
/* One read buffer per reading thread: a subscriber's carried bytes, then
 * one recv() of up to this much. */
#define READ_BUF (64 * 1024)

typedef struct sse_sub {
    int fd;
    int ready;
    size_t n;
    char buf[SUB_RES];
} sse_sub;

typedef struct sse_w3 {
    long nsub;
    sse_sub *sub;
    char *rbuf;         /* READ_BUF: the opener's, then the reader's */
    int ep;
    int64_t gmax;       /* arrival table rows: global positions 0..gmax-1 */
    uint32_t *arr;      /* [gpos * nsub + sub]: arrival - base in us, +1 */
    int16_t *gstream;   /* [gpos]: stream of that poke, -1 none yet */
    int64_t *gpos_pos;  /* [gpos]: position in its stream */
    uint64_t base;
    atomic_ullong delivered;
    atomic_ullong dup, bad;
    atomic_int stop;    /* 1: drain until expected or timeout */
    atomic_ullong expected;
    /* send times by stream and position */
    uint64_t *sent[W1_STREAMS];
    int64_t sent_n[W1_STREAMS];
    int64_t per;
    uint64_t writes;
} sse_w3;

static long rss_kb(int pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    FILE *f = fopen(p, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

static int sub_dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int64_t num_after(const char *p, const char *e, const char *key,
                         size_t kn, const char **end)
{
    const char *k = memmem(p, (size_t)(e - p), key, kn);
    if (!k)
        return -1;
    k += kn;
    int64_t v = 0;
    if (k >= e || *k < '0' || *k > '9')
        return -1;
    for (; k < e && *k >= '0' && *k <= '9'; k++)
        v = v * 10 + (*k - '0');
    *end = k;
    return v;
}

/* Complete pokes in b[0..n): stamp them; carry the rest in s->buf. */
static void sub_parse(sse_w3 *w, long i, uint64_t now, const char *b,
                      size_t n)
{
    sse_sub *s = &w->sub[i];
    static const char ev[] = "data: {\"stream\":\"test-stream-";
    const char *p = b, *e = b + n, *keep = p;
    uint32_t us = (uint32_t)((now - w->base) / 1000) + 1;
    for (;;) {
        const char *d = memmem(p, (size_t)(e - p), ev, sizeof ev - 1);
        if (!d)
            break;
        const char *nl = memmem(d, (size_t)(e - d), "}\n\n", 3);
        if (!nl)
            break;
        const char *q = d + sizeof ev - 1, *x;
        int64_t st = num_after(q, nl, "", 0, &x);
        int64_t pos = num_after(q, nl, "\"position\":", 11, &x);
        int64_t g = num_after(q, nl, "\"globalPosition\":", 17, &x);
        p = keep = nl + 3;
        if (st < 0 || st >= W1_STREAMS || pos < 0 || g < 0 ||
            g >= w->gmax) {
            atomic_fetch_add(&w->bad, 1);
            continue;
        }
        uint32_t *slot = &w->arr[(size_t)g * (size_t)w->nsub + (size_t)i];
        if (*slot) {
            atomic_fetch_add(&w->dup, 1);
            continue;
        }
        *slot = us;
        if (w->gstream[g] < 0) { /* benign race: all write the same */
            w->gpos_pos[g] = pos;
            w->gstream[g] = (int16_t)st;
        }
        atomic_fetch_add_explicit(&w->delivered, 1, memory_order_relaxed);
    }
    if ((size_t)(e - keep) > SUB_RES) { /* no poke is this long: junk */
        atomic_fetch_add(&w->bad, 1);
        keep = e - 64;
    }
    s->n = (size_t)(e - keep);
    memmove(s->buf, keep, s->n);
}

/* One recv() per readiness while it does not fill the buffer (epoll is
 * level-triggered: anything left is reported again), so a subscriber
 * costs one syscall per batch of pokes the server sent it. */
static int sub_read(sse_w3 *w, long i, uint64_t now, char *b)
{
    sse_sub *s = &w->sub[i];
    for (;;) {
        size_t n = s->n;
        memcpy(b, s->buf, n);
        ssize_t k = recv(s->fd, b + n, READ_BUF - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0)
            return -1;
        n += (size_t)k;
        const char *p = b;
        if (!s->ready) {
            const char *r = memmem(b, n, ": ready\n\n", 9);
            if (!r) {
                if (n > SUB_RES)
                    return -1;
                memcpy(s->buf, b, n);
                s->n = n;
                continue;
            }
            if (n < 12 || memcmp(b + 9, "200", 3))
                return -1;
            s->ready = 1;
            p = r + 9;
        }
        sub_parse(w, i, now, p, (size_t)(b + n - p));
        if (n < READ_BUF)
            return 0;
    }
}

static void *reader(void *arg)
{
    sse_w3 *w = arg;
    struct epoll_event ev[512];
    uint64_t until = 0;
    for (;;) {
        int m = epoll_wait(w->ep, ev, 512, 50);
        uint64_t now = bench_ns();
        for (int j = 0; j < m; j++) {
            long i = (long)ev[j].data.u64;
            if (sub_read(w, i, now, w->rbuf) < 0) {
                epoll_ctl(w->ep, EPOLL_CTL_DEL, w->sub[i].fd, NULL);
                atomic_fetch_add(&w->bad, 1);
            }
        }
        if (atomic_load(&w->stop)) {
            if (!until)
                until = now + 5000000000u; /* 5 s for stragglers */
            if (atomic_load(&w->delivered) + atomic_load(&w->dup) >=
                    atomic_load(&w->expected) ||
                now > until)
                break;
        }
    }
    return NULL;
}

static void on_write(void *arg, int s, int64_t pos, uint64_t sent_ns)
{
    sse_w3 *w = arg;
    w->writes++;
    if (pos < 0 || pos >= w->per)
        return;
    w->sent[s][pos] = sent_ns;
    if (pos + 1 > w->sent_n[s])
        w->sent_n[s] = pos + 1;
}

static char sse_note[400];

int case_sse_w3(bench_run *r)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* shim-server does the same */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    sse_w3 w;
    memset(&w, 0, sizeof w);
    w.nsub = bench_sse_subscribers;
    /* One fd per subscriber here and in shim-server (which inherits our
     * hard limit and raises its soft limit to it): the socket; the
     * subscriptions share one eventfd there (lss_notifier). */
    long fit = (long)rl.rlim_cur - 64 - bench_http.workers;
    if (w.nsub > fit) {
        fprintf(stderr, "lss-bench w3: RLIMIT_NOFILE %llu: %ld subscribers, "
                        "not %ld\n",
                (unsigned long long)rl.rlim_cur, fit, w.nsub);
        w.nsub = fit;
    }
    if (w.nsub < 1)
        return LSS_EINVAL;
    long requests = bench_http.requests > 0 ? bench_http.requests
                                            : scaled(r, 2000);
    long warm = requests / 20 + 10L * bench_http.workers;
    w.gmax = requests + warm + 16;
    w.per = w.gmax;
    w.arr = calloc((size_t)w.gmax * (size_t)w.nsub, sizeof *w.arr);
    w.gstream = malloc((size_t)w.gmax * sizeof *w.gstream);
    w.gpos_pos = calloc((size_t)w.gmax, sizeof *w.gpos_pos);
    w.sub = calloc((size_t)w.nsub, sizeof *w.sub);
    w.rbuf = malloc(READ_BUF);
    int ok = w.arr && w.gstream && w.gpos_pos && w.sub && w.rbuf;
    for (int s = 0; ok && s < W1_STREAMS; s++)
        ok = (w.sent[s] = calloc((size_t)w.per, sizeof(uint64_t))) != NULL;
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = ok && w.ep >= 0 ? LSS_OK : LSS_ENOMEM;
    for (int64_t g = 0; ok && g < w.gmax; g++)
        w.gstream[g] = -1;
    for (long i = 0; w.sub && i < w.nsub; i++)
        w.sub[i].fd = -1;
    int port = 0, pid = 0, started = 0, thr = 0;
    pthread_t th;
    long rss0 = -1, rss1 = -1;
    if (rc == LSS_OK)
        rc = http_shim_memory_start(&port, &pid);
    started = rc == LSS_OK;
    char req[512];
    int req_n = snprintf(req, sizeof req,
                         "GET /subscribe?all=true&token=%s HTTP/1.1\r\n"
                         "Host: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
                         "\r\n",
                         http_token(), port);
    rss0 = started ? rss_kb(pid) : -1;
    /* open the subscribers; wait for every ": ready" */
    long nready = 0;
    uint64_t t_open = bench_ns();
    for (long i = 0; rc == LSS_OK && i < w.nsub; i++) {
        int fd = sub_dial(port);
        if (fd < 0 || send(fd, req, (size_t)req_n, MSG_NOSIGNAL) != req_n) {
            fprintf(stderr, "lss-bench w3: subscriber %ld: %s\n", i,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            rc = LSS_EIO;
            break;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        w.sub[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(w.ep, EPOLL_CTL_ADD, fd, &ev);
    }
    w.base = bench_ns();
    uint64_t until = bench_ns() + 60000000000u;
    while (rc == LSS_OK && nready < w.nsub && bench_ns() < until) {
        struct epoll_event ev[512];
        int m = epoll_wait(w.ep, ev, 512, 100);
        for (int j = 0; j < m; j++) {
            long i = (long)ev[j].data.u64;
            int was = w.sub[i].ready;
            if (sub_read(&w, i, bench_ns(), w.rbuf) < 0) {
                fprintf(stderr, "lss-bench w3: subscriber %ld refused "
                                "(%s): %.*s\n", i, strerror(errno),
                        (int)w.sub[i].n, w.sub[i].buf);
                rc = LSS_EIO;
                break;
            }
            nready += w.sub[i].ready && !was;
        }
    }
    double open_s = (double)(bench_ns() - t_open) / 1e9;
    if (rc == LSS_OK && nready < w.nsub) {
        fprintf(stderr, "lss-bench w3: %ld of %ld subscribers ready\n",
                nready, w.nsub);
        rc = LSS_EIO;
    }
    long rss_ready = started ? rss_kb(pid) : -1;
    if (rc == LSS_OK) {
        thr = pthread_create(&th, NULL, reader, &w) == 0;
        if (!thr)
            rc = LSS_ENOMEM;
    }
    if (rc == LSS_OK)
        rc = http_w1_load(r, port, pid, requests, on_write, &w);
    atomic_store(&w.expected, (unsigned long long)w.writes *
                                  (unsigned long long)w.nsub);
    atomic_store(&w.stop, 1);
    if (thr)
        pthread_join(th, NULL);
    rss1 = started ? rss_kb(pid) : -1;
    for (long i = 0; w.sub && i < w.nsub; i++)
        if (w.sub[i].fd >= 0)
            close(w.sub[i].fd);
    if (started)
        http_shim_memory_stop();
    /* latencies: arrival - send of the write at (stream, position) */
    uint64_t delivered = atomic_load(&w.delivered), unmatched = 0;
    bench_hist *lat = calloc(1, sizeof *lat);
    if (rc == LSS_OK && lat) {
        for (int64_t g = 0; g < w.gmax; g++) {
            int s = w.gstream[g];
            if (s < 0)
                continue;
            int64_t pos = w.gpos_pos[g];
            uint64_t sent = pos < w.sent_n[s] ? w.sent[s][pos] : 0;
            const uint32_t *row = &w.arr[(size_t)g * (size_t)w.nsub];
            for (long i = 0; i < w.nsub; i++) {
                if (!row[i])
                    continue;
                uint64_t at = w.base + (uint64_t)(row[i] - 1) * 1000u;
                if (!sent) {
                    unmatched++;
                    continue;
                }
                hist_add(lat, at > sent ? at - sent : 0);
            }
        }
        uint64_t expected = atomic_load(&w.expected);
        double p50 = hist_quantile(lat, 0.5) / 1e6,
               p99 = hist_quantile(lat, 0.99) / 1e6;
        snprintf(sse_note, sizeof sse_note,
                 "%ld subscribers (all=true, ready in %.2fs), %llu writes: "
                 "pokes %llu/%llu delivered%s; commit->poke p50 %.2fms "
                 "p99 %.2fms (target <= 50); server VmRSS %ld kB before, "
                 "%ld kB with subscribers, %ld kB after; dup %llu, bad %llu, "
                 "unmatched %llu",
                 w.nsub, open_s, (unsigned long long)w.writes,
                 (unsigned long long)delivered,
                 (unsigned long long)expected,
                 delivered == expected ? " (all)" : " (MISSING)", p50, p99,
                 rss0, rss_ready, rss1, (unsigned long long)atomic_load(&w.dup),
                 (unsigned long long)atomic_load(&w.bad),
                 (unsigned long long)unmatched);
        r->note = sse_note;
        if (delivered != expected || atomic_load(&w.bad))
            rc = LSS_EIO;
        if (rc != LSS_OK)
            fprintf(stderr, "lss-bench w3: %s\n", sse_note);
    }
    free(lat);
    if (w.ep >= 0)
        close(w.ep);
    for (int s = 0; s < W1_STREAMS; s++)
        free(w.sent[s]);
    free(w.arr);
    free(w.gstream);
    free(w.gpos_pos);
    free(w.sub);
    free(w.rbuf);
    return rc;
}

/* ------------------------------------------------------------------------
 * 650: the fan-out floor of this machine, no library and no HTTP.  A child
 * process connects N loopback TCP sockets to us and reads them all with one
 * epoll loop; we send one 120-byte "poke" to each socket per pass, in turn,
 * and the child reports (over a pipe) when the whole pass has arrived.  A
 * pass's time is the shortest possible "commit -> last subscriber's poke"
 * for one write fanned out to N subscribers here: W3's p99 cannot be below
 * it, whatever the server does.
 * ---------------------------------------------------------------------- */

#define FLOOR_MSG 120

static void floor_child(int lfd_port, long n, int rfd, int wfd)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)lfd_port);
    int ep = epoll_create1(0);
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
            _exit(2);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0)
            _exit(2);
    }
    char c = 'r';
    if (write(wfd, &c, 1) != 1)
        _exit(2);
    static char buf[65536];
    struct epoll_event ev[256];
    uint64_t got = 0, pass_bytes = (uint64_t)n * FLOOR_MSG, next = pass_bytes;
    for (;;) {
        struct pollfd pf = {.fd = rfd, .events = POLLIN};
        if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLIN | POLLHUP)))
            _exit(0); /* the parent is done (EOF on the pipe) */
        int k = epoll_wait(ep, ev, 256, 100);
        for (int i = 0; i < k; i++) {
            ssize_t r;
            while ((r = recv(ev[i].data.fd, buf, sizeof buf, 0)) > 0)
                got += (uint64_t)r;
        }
        while (got >= next) {
            c = 'p';
            if (write(wfd, &c, 1) != 1)
                _exit(2);
            next += pass_bytes;
        }
    }
}

int case_fanout_floor(bench_run *r)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    long n = bench_sse_subscribers;
    if (n > (long)rl.rlim_cur - 64)
        n = (long)rl.rlim_cur - 64;
    if (n < 1)
        return LSS_EINVAL;
    long passes = scaled(r, 30);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    int down[2] = {-1, -1}, up[2] = {-1, -1};
    int *fds = calloc((size_t)n, sizeof *fds);
    if (lfd < 0 || !fds || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0 ||
        listen(lfd, 4096) != 0 || pipe(down) != 0 || pipe(up) != 0) {
        free(fds);
        if (lfd >= 0)
            close(lfd);
        return LSS_EIO;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(lfd);
        close(down[1]);
        close(up[0]);
        floor_child(ntohs(a.sin_port), n, down[0], up[1]);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    int rc = pid > 0 ? LSS_OK : LSS_EIO;
    long have = 0;
    for (; rc == LSS_OK && have < n; have++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            rc = LSS_EIO;
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fds[have] = fd;
    }
    char c, msg[FLOOR_MSG];
    memset(msg, 'x', sizeof msg);
    msg[sizeof msg - 2] = '\n';
    msg[sizeof msg - 1] = '\n';
    if (rc == LSS_OK && (read(up[0], &c, 1) != 1 || c != 'r'))
        rc = LSS_EIO;
    if (rc == LSS_OK)
        bench_start(r);
    uint64_t busy = 0;
    for (long p = 0; rc == LSS_OK && p < passes; p++) {
        uint64_t t0 = bench_ns();
        for (long i = 0; i < n; i++)
            if (send(fds[i], msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg)
                rc = LSS_EIO;
        if (rc == LSS_OK && (read(up[0], &c, 1) != 1 || c != 'p'))
            rc = LSS_EIO;
        uint64_t t1 = bench_ns();
        hist_add(r->hist, t1 - t0);
        busy += t1 - t0;
        usleep(20000); /* a pause between writes, as between W1's passes */
    }
    if (rc == LSS_OK)
        bench_stop(r);
    for (long i = 0; i < have; i++)
        close(fds[i]);
    free(fds);
    close(lfd);
    close(down[1]); /* EOF: the child exits */
    int st = 0;
    if (pid > 0)
        waitpid(pid, &st, 0);
    close(up[0]);
    if (rc != LSS_OK || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return LSS_EIO;
    r->ops = (double)passes;
    r->check = (uint64_t)n * 1000003u + (uint64_t)passes; /* what was moved */
    static char note[256];
    snprintf(note, sizeof note,
             "%ld loopback sockets, one %d-byte send each per pass, read by "
             "another process: a pass is the floor of W3's commit->poke p99 "
             "(mean pass %.1f ms)",
             n, FLOOR_MSG, (double)busy / (double)passes / 1e6);
    r->note = note;
    return LSS_OK;
}
