/*
 * The load generator and sink for the HBONE benchmark: the same tool drives every proxy pair so
 * the numbers compare. Single-threaded, epoll, no allocation in the loops. Talks to 127.0.0.1.
 *
 *   loadgen sink <port>                          sink: first byte picks the mode of a connection
 *                                                  'D' discard, report the byte count on EOF
 *                                                  'E' echo everything, close after EOF
 *   loadgen tput <port> <conns> <seconds>        send for <seconds> on <conns> connections
 *   loadgen rr   <port> <seconds> <size>         ping-pong <size> bytes on one connection
 *   loadgen cps  <port> <seconds> <concurrency>  open, exchange 1 byte, close; repeat
 *
 * Results are one JSON line on stdout. Every loop is bounded by its duration and a hard timeout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 * 1024)
#define MAXEV 256
#define HARD_TIMEOUT_S 60.0

static char buf[BUF];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static struct sockaddr_in addr_of(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int connect_blocking(int port) {
  struct sockaddr_in a = addr_of(port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  nodelay(fd);
  return fd;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

static void read_exact(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) {
      errno = ECONNRESET;
      die("read: unexpected EOF");
    }
    p += r;
    n -= (size_t)r;
  }
}

/* ---- sink ------------------------------------------------------------------------------- */

struct conn {
  int fd;
  char mode;      /* 0 until the first byte, then 'D' or 'E' */
  uint64_t count; /* bytes discarded ('D') */
  size_t pending; /* echo bytes not yet written ('E') */
  size_t off;
  char *echo;     /* echo buffer, allocated on first use */
};

static void sink_close(int ep, struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->echo);
  free(c);
}

static int sink(int port) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of(port);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(ls, 4096) < 0) die("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[MAXEV];
  for (;;) {
    int n = epoll_wait(ep, evs, MAXEV, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          nodelay(fd);
          struct conn *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (c->pending > 0) { /* flush echo backlog, then resume reading */
        ssize_t w = write(c->fd, c->echo + c->off, c->pending);
        if (w < 0 && errno != EAGAIN) {
          sink_close(ep, c);
          continue;
        }
        if (w > 0) {
          c->off += (size_t)w;
          c->pending -= (size_t)w;
        }
        if (c->pending > 0) continue;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
      }
      for (;;) {
        char *dst = c->mode == 'E' ? c->echo : buf;
        if (c->mode == 'E' && dst == NULL) dst = c->echo = malloc(BUF);
        ssize_t r = read(c->fd, dst, BUF);
        if (r < 0) {
          if (errno != EAGAIN) sink_close(ep, c);
          break;
        }
        if (r == 0) {
          if (c->mode == 'D') {
            uint64_t cnt = c->count;
            write(c->fd, &cnt, sizeof cnt);
          }
          sink_close(ep, c);
          break;
        }
        size_t off = 0;
        if (c->mode == 0) {
          c->mode = dst[0] == 'E' ? 'E' : 'D';
          off = 1;
          if (c->mode == 'E' && c->echo == NULL) {
            c->echo = malloc(BUF);
            memcpy(c->echo, dst, (size_t)r);
            dst = c->echo;
          }
        }
        if (c->mode == 'D') {
          c->count += (uint64_t)r - off;
          continue;
        }
        size_t len = (size_t)r - off;
        ssize_t w = len > 0 ? write(c->fd, dst + off, len) : 0;
        if (w < 0) {
          if (errno != EAGAIN) {
            sink_close(ep, c);
            break;
          }
          w = 0;
        }
        if ((size_t)w < len) {
          memmove(c->echo, dst + off + w, len - (size_t)w);
          c->off = 0;
          c->pending = len - (size_t)w;
          struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
          break;
        }
      }
    }
  }
}

/* ---- throughput --------------------------------------------------------------------------- */

static int tput(int port, int conns, double seconds) {
  int *fds = calloc((size_t)conns, sizeof(int));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  memset(buf, 'x', BUF);
  for (int i = 0; i < conns; i++) {
    fds[i] = connect_blocking(port);
    write_all(fds[i], "D", 1);
    nonblock(fds[i]);
    struct epoll_event e = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
  }
  double start = now(), end = start + seconds;
  struct epoll_event evs[MAXEV];
  uint64_t sent = 0;
  while (now() < end) {
    int n = epoll_wait(ep, evs, MAXEV, 100);
    for (int i = 0; i < n; i++) {
      int fd = fds[evs[i].data.u32];
      for (;;) {
        ssize_t w = write(fd, buf, BUF);
        if (w <= 0) break;
        sent += (uint64_t)w;
      }
    }
  }
  uint64_t total = 0;
  for (int i = 0; i < conns; i++) {
    int fl = fcntl(fds[i], F_GETFL);
    fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
    shutdown(fds[i], SHUT_WR);
    struct timeval tv = {(long)HARD_TIMEOUT_S, 0};
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t cnt;
    read_exact(fds[i], (char *)&cnt, sizeof cnt);
    total += cnt;
    close(fds[i]);
  }
  double took = now() - start;
  printf("{\"bytes\":%llu,\"sent\":%llu,\"seconds\":%.4f,\"gbps\":%.4f}\n", (unsigned long long)total,
         (unsigned long long)sent, took, (double)total * 8 / took / 1e9);
  return 0;
}

/* ---- round trip --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int rr(int port, double seconds, int size) {
  int fd = connect_blocking(port);
  write_all(fd, "E", 1);
  memset(buf, 'r', (size_t)size);
  size_t cap = 1 << 20, n = 0;
  double *lat = malloc(cap * sizeof(double));
  /* Warm-up exchanges (the tunnel's first bytes) are not counted. */
  for (int i = 0; i < 100; i++) {
    write_all(fd, buf, (size_t)size);
    read_exact(fd, buf, (size_t)size);
  }
  double end = now() + seconds;
  while (n < cap) {
    double t0 = now();
    if (t0 >= end) break;
    write_all(fd, buf, (size_t)size);
    read_exact(fd, buf, (size_t)size);
    lat[n++] = (now() - t0) * 1e6;
  }
  close(fd);
  qsort(lat, n, sizeof(double), cmp_double);
  printf("{\"count\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n", n, lat[n / 2],
         lat[(size_t)((double)n * 0.99)], lat[n - 1]);
  return 0;
}

/* ---- connection rate ---------------------------------------------------------------------- */

struct slot {
  int fd;
  int state; /* 1 connecting, 2 waiting for the echo */
};

static int start_slot(int ep, struct slot *s, uint32_t idx, int port) {
  struct sockaddr_in a = addr_of(port);
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->fd < 0) return -1;
  nodelay(s->fd);
  int r = connect(s->fd, (struct sockaddr *)&a, sizeof a);
  if (r < 0 && errno != EINPROGRESS) {
    close(s->fd);
    return -1;
  }
  s->state = 1;
  struct epoll_event e = {.events = EPOLLOUT, .data.u32 = idx};
  epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
  return 0;
}

static int cps(int port, double seconds, int conc) {
  struct slot *slots = calloc((size_t)conc, sizeof *slots);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  uint64_t done = 0, errors = 0;
  double start = now(), end = start + seconds, hard = start + HARD_TIMEOUT_S;
  int active = 0;
  for (int i = 0; i < conc; i++) {
    if (start_slot(ep, &slots[i], (uint32_t)i, port) == 0) active++;
    else errors++;
  }
  struct epoll_event evs[MAXEV];
  while (active > 0 && now() < hard) {
    int n = epoll_wait(ep, evs, MAXEV, 100);
    double t = now();
    for (int i = 0; i < n; i++) {
      uint32_t idx = evs[i].data.u32;
      struct slot *s = &slots[idx];
      int failed = 0, finished = 0;
      if (s->state == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || write(s->fd, "Ex", 2) != 2) {
          failed = 1;
        } else {
          s->state = 2;
          struct epoll_event e = {.events = EPOLLIN, .data.u32 = idx};
          epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
        }
      } else {
        char c;
        ssize_t r = read(s->fd, &c, 1);
        if (r == 1 && c == 'x') finished = 1;
        else if (r < 0 && errno == EAGAIN) continue;
        else failed = 1;
      }
      if (failed || finished) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        active--;
        if (finished && t <= end) done++;
        if (failed) errors++;
        if (t < end) {
          if (start_slot(ep, s, idx, port) == 0) active++;
          else errors++;
        }
      }
    }
  }
  double took = now() - start;
  if (took > seconds) took = seconds;
  printf("{\"conns\":%llu,\"errors\":%llu,\"seconds\":%.4f,\"cps\":%.1f}\n", (unsigned long long)done,
         (unsigned long long)errors, took, (double)done / took);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 3 && strcmp(argv[1], "sink") == 0) return sink(atoi(argv[2]));
  if (argc >= 5 && strcmp(argv[1], "tput") == 0)
    return tput(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "rr") == 0) return rr(atoi(argv[2]), atof(argv[3]), atoi(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "cps") == 0)
    return cps(atoi(argv[2]), atof(argv[3]), atoi(argv[4]));
  fprintf(stderr, "usage: loadgen sink <port> | tput <port> <conns> <s> | rr <port> <s> <size> | "
                  "cps <port> <s> <concurrency>\n");
  return 2;
}
