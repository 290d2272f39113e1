/*
 * netbench: the load generator and server for bench/sidecar (C, so the client and server are never the
 * bottleneck being measured). Plain TCP, 64-byte request/response; bulk = the server streams N bytes.
 *
 *   netbench serve <ip> <rr-port> <bulk-port>         epoll request/response server + threaded bulk server
 *   netbench conn <ip> <port> <threads> <secs> <max>  new connection per request (connect, 64 B, 64 B, close)
 *   netbench ka   <ip> <port> <threads> <secs> <max>  keep-alive: requests on one connection per thread
 *   netbench bulk <ip> <port> <bytes>                 download <bytes> from the bulk server
 *   netbench hold <ip> <port> <n> <secs>              open <n> connections (one request/response each),
 *                                                     print {"open":k}, keep them <secs>, close them
 *
 * Clients print one JSON line: {"requests","seconds","rate","p50_us","p99_us","p999_us","errors"} or
 * {"bytes","seconds","gbps"}. Each thread stops at <secs> or after <max>/<threads> requests (bounded load).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int make_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return AF_INET6;
  }
  fprintf(stderr, "bad address %s\n", ip);
  exit(2);
}

static int listen_on(const char *ip, int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(ip, port, &ss, &len);
  int fd = socket(family, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
    perror("bind/listen");
    exit(1);
  }
  return fd;
}

static int read_full(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const char *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = write(fd, buf + put, n - put);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return -1;
    }
    put += (size_t)w;
  }
  return 0;
}

/* ---- server ---- */

static void *bulk_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint64_t want;
  if (read_full(fd, (char *)&want, sizeof want) == 0) {
    static char block[256 * 1024];
    while (want > 0) {
      size_t n = want < sizeof block ? want : sizeof block;
      if (write_full(fd, block, n) != 0) break;
      want -= n;
    }
  }
  close(fd);
  return NULL;
}

static void *bulk_server(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    pthread_t t;
    pthread_create(&t, NULL, bulk_conn, (void *)(intptr_t)fd);
    pthread_detach(t);
  }
  return NULL;
}

static _Noreturn void serve(const char *ip, int rr_port, int bulk_port) {
  int lfd = listen_on(ip, rr_port);
  int bfd = listen_on(ip, bulk_port);
  pthread_t t;
  pthread_create(&t, NULL, bulk_server, (void *)(intptr_t)bfd);
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK); /* the accept loop drains until EAGAIN */
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("ready\n");
  fflush(stdout);
  struct epoll_event events[256];
  char buf[MSG * 64];
  static unsigned char pending[1 << 20]; /* bytes of a partial request, per fd */
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          if (c >= (1 << 20)) {
            close(c);
            continue;
          }
          pending[c] = 0;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close(fd); /* closing removes it from the epoll set */
        continue;
      }
      /* One 64-byte response per 64 bytes received, however a proxy splits or joins them. */
      size_t have = pending[fd] + (size_t)r;
      size_t replies = have / MSG;
      pending[fd] = (unsigned char)(have % MSG);
      if (replies > 0 && write_full(fd, buf, replies * MSG) != 0) close(fd);
    }
  }
}

/* ---- clients ---- */

struct job {
  const char *ip;
  int port;
  int keepalive;
  double deadline;
  long max;
  long done;
  long errors;
  uint32_t *lat_us; /* latencies, capacity max */
};

static int dial(struct job *j) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(j->ip, j->port, &ss, &len);
  int fd = socket(family, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void *client(void *arg) {
  struct job *j = arg;
  char msg[MSG], reply[MSG];
  memset(msg, 'q', sizeof msg);
  int fd = -1;
  while (j->done < j->max) {
    double t0 = now_s();
    if (t0 > j->deadline) break;
    if (fd < 0) fd = dial(j);
    if (fd < 0 || write_full(fd, msg, MSG) != 0 || read_full(fd, reply, MSG) != 0) {
      j->errors++;
      if (fd >= 0) close(fd);
      fd = -1;
      if (j->errors > 1000) break;
      continue;
    }
    if (!j->keepalive) {
      close(fd);
      fd = -1;
    }
    j->lat_us[j->done++] = (uint32_t)((now_s() - t0) * 1e6);
  }
  if (fd >= 0) close(fd);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int run_clients(const char *ip, int port, int threads, double secs, long max, int keepalive) {
  struct job *jobs = calloc(threads, sizeof *jobs);
  pthread_t *tids = calloc(threads, sizeof *tids);
  double start = now_s();
  for (int i = 0; i < threads; i++) {
    jobs[i] = (struct job){ip, port, keepalive, start + secs, max / threads, 0, 0, NULL};
    jobs[i].lat_us = malloc(sizeof(uint32_t) * (size_t)(max / threads + 1));
    pthread_create(&tids[i], NULL, client, &jobs[i]);
  }
  long total = 0, errors = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(tids[i], NULL);
    total += jobs[i].done;
    errors += jobs[i].errors;
  }
  double elapsed = now_s() - start;
  uint32_t *all = malloc(sizeof(uint32_t) * (size_t)(total + 1));
  long k = 0;
  for (int i = 0; i < threads; i++) {
    memcpy(all + k, jobs[i].lat_us, sizeof(uint32_t) * (size_t)jobs[i].done);
    k += jobs[i].done;
  }
  qsort(all, (size_t)total, sizeof *all, cmp_u32);
#define PCT(p) (total ? all[(long)((total - 1) * (p))] : 0)
  printf("{\"requests\":%ld,\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"errors\":%ld}\n",
         total, elapsed, total / elapsed, PCT(0.5), PCT(0.99), PCT(0.999), errors);
  return errors > total / 100 ? 1 : 0;
}

static int run_bulk(const char *ip, int port, uint64_t bytes) {
  struct job j = {ip, port, 1, 0, 0, 0, 0, NULL};
  double t0 = now_s();
  int fd = dial(&j);
  if (fd < 0 || write_full(fd, (const char *)&bytes, sizeof bytes) != 0) {
    perror("bulk connect");
    return 1;
  }
  static char buf[256 * 1024];
  uint64_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) break;
    got += (uint64_t)r;
  }
  close(fd);
  double elapsed = now_s() - t0;
  printf("{\"bytes\":%llu,\"seconds\":%.3f,\"gbps\":%.3f}\n", (unsigned long long)got, elapsed,
         got * 8 / elapsed / 1e9);
  return got == bytes ? 0 : 1;
}

static int run_hold(const char *ip, int port, int n, double secs) {
  struct job j = {ip, port, 1, 0, 0, 0, 0, NULL};
  char msg[MSG], reply[MSG];
  memset(msg, 'h', sizeof msg);
  int *fds = calloc((size_t)n, sizeof *fds), open_ = 0;
  for (int i = 0; i < n; i++) {
    int fd = dial(&j);
    if (fd < 0 || write_full(fd, msg, MSG) != 0 || read_full(fd, reply, MSG) != 0) {
      if (fd >= 0) close(fd);
      continue;
    }
    fds[open_++] = fd;
  }
  printf("{\"open\":%d}\n", open_);
  fflush(stdout);
  struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
  nanosleep(&ts, NULL);
  for (int i = 0; i < open_; i++) close(fds[i]);
  return open_ == n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "serve") == 0) serve(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (argc >= 7 && (strcmp(argv[1], "conn") == 0 || strcmp(argv[1], "ka") == 0))
    return run_clients(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), atol(argv[6]),
                       strcmp(argv[1], "ka") == 0);
  if (argc >= 5 && strcmp(argv[1], "bulk") == 0) return run_bulk(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
  if (argc >= 6 && strcmp(argv[1], "hold") == 0) return run_hold(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
  fprintf(stderr, "usage: see the comment at the top of netbench.c\n");
  return 2;
}
