/* A TCP relay on loopback that adds a fixed one-way delay each way (bench/delay_path.py
 * builds and starts it; see there). One thread, epoll, level-triggered, no per-byte work.
 *
 *   delay_relay UPSTREAM_PORT DELAY_US     prints its own port, then relays until killed
 *
 * Each direction of a connection is a FIFO of chunks (what one read() returned), each
 * written to the other side DELAY_US after it was read, in order. The first chunk a
 * client sends on a connection is held 3 x DELAY_US instead: the relay accepts at once,
 * so the TCP handshake's round trip, which a real link (or netem) would charge before
 * the client's first byte, is added there. Reading a side pauses while more than
 * QUEUE_CAP bytes wait to be written to the other, so a fast sender is held back by TCP
 * flow control, as by a real window. EOF is passed on (shutdown SHUT_WR) after the
 * chunks before it; an error on either side closes both. With DELAY_US 0 a chunk is
 * written straight from the read buffer when nothing waits before it. The relay exits when
 * the process that started it does (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (256 * 1024)
#define QUEUE_CAP (8 * 1024 * 1024)

typedef struct chunk {
    struct chunk *next;
    int64_t due; /* CLOCK_MONOTONIC ns */
    size_t len, off; /* len 0: end of stream */
    char data[];
} chunk;

typedef struct conn conn;

typedef struct {
    conn *c;
    int idx; /* 0: client -> upstream, 1: upstream -> client */
    chunk *head, *tail;
    size_t queued;
    int eof_in, shut, blocked, first;
} dir;

struct conn {
    int fd[2]; /* 0: client, 1: upstream; dir d[i] reads fd[i], writes fd[1 - i] */
    uint32_t mask[2]; /* epoll events registered per fd */
    dir d[2];
    uint32_t gen;
    int connecting, open;
    conn *free_next;
};

typedef struct {
    conn *c;
    uint32_t gen;
    int idx;
    int64_t due;
} wake;

typedef struct { /* a ring of wake-ups; due times only grow, so it stays sorted */
    wake *buf;
    size_t cap, head, n;
} ring;

static int ep;
static int64_t delay_ns;
static conn **by_fd;
static size_t by_fd_len;
static conn *free_conns;
static ring rings[2]; /* 0: one delay, 1: three delays (handshake) */
static char rbuf[READ_SIZE];

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void ring_push(ring *r, wake w) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        wake *buf = malloc(cap * sizeof *buf);
        if (!buf) die("malloc");
        for (size_t i = 0; i < r->n; i++) buf[i] = r->buf[(r->head + i) % r->cap];
        free(r->buf);
        r->buf = buf, r->cap = cap, r->head = 0;
    }
    r->buf[(r->head + r->n++) % r->cap] = w;
}

static void set_mask(conn *c, int i) {
    uint32_t want = 0;
    if (!c->d[i].eof_in && c->d[i].queued < QUEUE_CAP && !(i == 1 && c->connecting)) want |= EPOLLIN;
    if (c->d[1 - i].blocked || (i == 1 && c->connecting)) want |= EPOLLOUT;
    if (want == c->mask[i]) return;
    struct epoll_event ev = {.events = want, .data.fd = c->fd[i]};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd[i], &ev) < 0) die("epoll_ctl");
    c->mask[i] = want;
}

static void close_conn(conn *c) {
    if (!c->open) return;
    for (int i = 0; i < 2; i++) {
        by_fd[c->fd[i]] = NULL;
        close(c->fd[i]);
        for (chunk *k = c->d[i].head, *next; k; k = next) next = k->next, free(k);
    }
    c->open = 0;
    c->gen++;
    c->free_next = free_conns;
    free_conns = c;
}

/* Write what is due in d; 0, or -1 if the connection was closed. */
static int flush(dir *d, int64_t now) {
    conn *c = d->c;
    int to = c->fd[1 - d->idx];
    if (d->idx == 0 && c->connecting) return 0;
    d->blocked = 0;
    while (d->head && d->head->due <= now) {
        chunk *k = d->head;
        if (k->len == 0) {
            shutdown(to, SHUT_WR);
            d->shut = 1;
        } else {
            ssize_t n = send(to, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    d->blocked = 1;
                    break;
                }
                close_conn(c);
                return -1;
            }
            k->off += (size_t)n;
            d->queued -= (size_t)n;
            if (k->off < k->len) continue;
        }
        d->head = k->next;
        if (!d->head) d->tail = NULL;
        free(k);
    }
    if (c->d[0].shut && c->d[1].shut) {
        close_conn(c);
        return -1;
    }
    set_mask(c, d->idx);
    set_mask(c, 1 - d->idx);
    return 0;
}

static void enqueue(dir *d, const char *data, size_t len, int64_t now) {
    int handshake = d->idx == 0 && d->first;
    d->first = 0;
    int64_t due = now + (handshake ? 3 : 1) * delay_ns;
    if (delay_ns == 0 && !d->head && !d->c->connecting && len) {
        ssize_t n = send(d->c->fd[1 - d->idx], data, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            close_conn(d->c);
            return;
        }
        if (n > 0) data += n, len -= (size_t)n;
        if (!len) return;
    }
    chunk *k = malloc(sizeof *k + len);
    if (!k) die("malloc");
    k->next = NULL, k->due = due, k->len = len, k->off = 0;
    memcpy(k->data, data, len);
    if (d->tail) d->tail->next = k;
    else d->head = k;
    d->tail = k;
    d->queued += len;
    if (due <= now) flush(d, now);
    else ring_push(&rings[handshake], (wake){d->c, d->c->gen, d->idx, due});
}

static void on_readable(conn *c, int i, int64_t now) {
    dir *d = &c->d[i];
    ssize_t n = recv(c->fd[i], rbuf, sizeof rbuf, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close_conn(c);
        return;
    }
    if (n == 0) {
        d->eof_in = 1;
        enqueue(d, rbuf, 0, now);
    } else {
        enqueue(d, rbuf, (size_t)n, now);
    }
    if (c->open) set_mask(c, i);
}

static void add_fd(conn *c, int i) {
    struct epoll_event ev = {.events = c->mask[i], .data.fd = c->fd[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[i], &ev) < 0) die("epoll_ctl add");
    by_fd[c->fd[i]] = c;
}

static void on_accept(int lfd, int upstream_port) {
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) return;
        int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ufd < 0 || (size_t)cfd >= by_fd_len || (size_t)ufd >= by_fd_len) {
            close(cfd);
            if (ufd >= 0) close(ufd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port)};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int r = connect(ufd, (struct sockaddr *)&to, sizeof to);
        if (r < 0 && errno != EINPROGRESS) {
            close(cfd);
            close(ufd);
            continue;
        }
        conn *c = free_conns;
        if (c) free_conns = c->free_next;
        else if (!(c = calloc(1, sizeof *c))) die("calloc");
        uint32_t gen = c->gen;
        memset(c, 0, sizeof *c);
        c->gen = gen;
        c->fd[0] = cfd, c->fd[1] = ufd;
        c->open = 1;
        c->connecting = r < 0;
        for (int i = 0; i < 2; i++) c->d[i] = (dir){.c = c, .idx = i, .first = 1};
        c->mask[0] = EPOLLIN;
        c->mask[1] = c->connecting ? EPOLLOUT : EPOLLIN;
        add_fd(c, 0);
        add_fd(c, 1);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s UPSTREAM_PORT DELAY_US\n", argv[0]);
        return 2;
    }
    int upstream_port = atoi(argv[1]);
    delay_ns = atoll(argv[2]) * 1000;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the benchmark that started it */
    if (getppid() == 1) return 1;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    by_fd_len = rl.rlim_cur > 1 << 20 ? 1 << 20 : rl.rlim_cur;
    if (!(by_fd = calloc(by_fd_len, sizeof *by_fd))) die("calloc");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(lfd, 4096) < 0) die("listen");
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl listen");

    struct epoll_event evs[512];
    for (;;) {
        int64_t now = now_ns(), next = -1;
        for (int r = 0; r < 2; r++) {
            ring *q = &rings[r];
            while (q->n) {
                wake w = q->buf[q->head];
                if (w.due > now) {
                    if (next < 0 || w.due < next) next = w.due;
                    break;
                }
                q->head = (q->head + 1) % q->cap, q->n--;
                if (w.c->open && w.c->gen == w.gen) flush(&w.c->d[w.idx], now);
            }
        }
        struct timespec ts, *tp = NULL;
        if (next >= 0) {
            int64_t wait = next - now;
            ts.tv_sec = wait / 1000000000, ts.tv_nsec = wait % 1000000000;
            tp = &ts;
        }
        int n = epoll_pwait2(ep, evs, 512, tp, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_pwait2");
        }
        now = now_ns();
        for (int e = 0; e < n; e++) {
            int fd = evs[e].data.fd;
            if (fd == lfd) {
                on_accept(lfd, upstream_port);
                continue;
            }
            conn *c = by_fd[fd];
            if (!c) continue; /* closed by an earlier event in this batch */
            int i = fd == c->fd[1];
            uint32_t got = evs[e].events;
            if (i == 1 && c->connecting && (got & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    close_conn(c);
                    continue;
                }
                c->connecting = 0;
                if (flush(&c->d[0], now) < 0) continue;
                set_mask(c, 1);
                continue;
            }
            if (got & EPOLLOUT) {
                if (flush(&c->d[1 - i], now) < 0) continue;
            }
            if ((got & (EPOLLHUP | EPOLLERR)) && c->d[i].eof_in) {
                close_conn(c); /* reset, or closed both ways: nothing more to read or to write */
                continue;
            }
            if (got & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c, i, now);
        }
    }
}
