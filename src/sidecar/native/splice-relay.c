/*
 * Native relay: moves bytes between two connected TCP sockets with splice(2) through a pipe per direction,
 * so payload never enters user space (what HAProxy's `option splice-auto` does). N relay threads ("workers"),
 * each with its own edge-triggered epoll, serve the pairs; with native accept they also own the listening
 * sockets (one per worker and port/family, SO_REUSEPORT: the kernel spreads new connections over them),
 * accept, read SO_ORIGINAL_DST, decide with the routing table (route-table.c) and connect or refuse there, so
 * a new connection never wakes the JS thread until its completion reaches it in a batch.
 *
 *   relayStart(callback, stackBytes, threads)  once: callback(records) on the JS thread (threadsafe
 *                                        function), a flat array of RECORD_FIELDS per finished pair, handed-
 *                                        over connection or dropped accept. Throws (code = errno name) when
 *                                        an epoll, eventfd or thread cannot be made
 *   relayStop()                          closes the listeners, resets every pair, joins the threads
 *   relayPair(fdClient, fdUpstream, idleMs) → id   dup()s both fds (JS then closes its copies)
 *   relayConnect(fdClient, address, port, idleMs, connectTimeoutMs) → id   the thread connects
 *   relayListen(direction, port, family, connectTimeoutMs, idleMs, refuseGraceMs)   native accept there
 *   relayUnlisten(direction)             stops accepting at once (new connections are refused)
 *   relayOpen() → [outbound, inbound]    connections accepted natively and still open in the threads
 *   relayHandoffDone()                   JS finished a connection the threads handed over
 *   relayAbortAll()                      resets every pair (drain deadline)
 *
 * Semantics match relay.ts: half-close both ways (EOF on one side → shutdown(SHUT_WR) on the other once
 * its pipe is drained), an error on either side resets both (SO_LINGER 0), idle timeout resets both.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>
#include "route-table.h"

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define PIPE_CAP (64 * 1024)
#define MAX_WORKERS 64
/* Accepts per listener event before the other sockets get a turn (the listener stays level-triggered). */
#define ACCEPT_BURST 64
#define LISTEN_BACKLOG 4096

struct half {
  int in, out, pipe_r, pipe_w;
  size_t in_pipe;
  int eof_in, shut_out;
  /* Edge-triggered readiness: set by an event on that fd, cleared by EAGAIN. A half whose `in` has not
   * signalled since its last EAGAIN is not tried again (no wasted splice calls). */
  int readable, writable;
  uint64_t bytes;
};

struct worker;

struct pair {
  uint32_t id; /* 0: accepted by a relay thread (native) */
  struct worker *w;
  int fd_client, fd_upstream;
  struct half up, down;
  int64_t idle_ms, last_ms;
  /* The thread opens the upstream itself (fd_upstream < 0 until then). */
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int connecting, refusing;
  int counted; /* in open_count (native accept, not refused) */
  int64_t connect_timeout_ms, deadline_ms, connect_start_us, connect_us;
  int finished;
  char error[32];
  /* Native accept: what the access log needs. */
  int direction, family, decision, reason, endpoint;
  int64_t accept_us;
  struct sockaddr_storage peer, original;
  struct route_table *table;
  struct pair *next, *prev;
  struct pair *queue_next;
};

enum { REC_RELAYED = 0, REC_NATIVE = 1, REC_HANDOFF = 2, REC_DROPPED = 3, REC_LOST = 4 };

struct result {
  int type;
  uint32_t id;
  int fd, direction, family, decision, reason, endpoint;
  int64_t connect_us, duration_us;
  uint64_t up, down;
  char error[32];
  struct sockaddr_storage peer, original, upstream;
  struct route_table *table;
};

struct batch {
  size_t n, cap;
  struct result *items;
};

struct listener {
  int fd, direction, family;
  /* refuse_grace_ms: data-plane.ts's REFUSE_GRACE_MS, the longest a refused connection waits for the
   * client's first byte before the reset (a reset before the client saw its connect complete reads as
   * curl exit 7, not 56). */
  int64_t connect_timeout_ms, idle_ms, refuse_grace_ms;
  atomic_int closed;
  struct listener *next_closing;
};

struct worker {
  int ep, wake;
  pthread_t thread;
  pthread_mutex_t lock;
  struct pair *queue; /* handed over by JS, not yet registered */
  struct listener *closing; /* unlistened by JS: closed and freed by the thread after its event batch */
  int abort_all, stopping;
  struct listener *listeners[4]; /* JS thread's bookkeeping: [direction * 2 + (family == 6)] */
  struct pair *active; /* thread only */
  struct pair *dead;   /* finished in this loop turn, freed at its end (later events may name them) */
  int64_t next_scan_ms, next_trim_ms;
  /* Empty pipes kept for the next pairs: saves pipe2() and two close() per direction. Bounded, and
   * shrinking: pipes unused for a whole POOL_TRIM_MS are closed, so the fd count goes back to its baseline
   * after a burst (each pipe is 2 fds and counts against uid 1500's pipe pages). */
  int pool[64][2];
  int pool_size, pool_low;
  struct batch *batch;
  int64_t flush_ms; /* when the batch's oldest record is due in JS */
  int flush_now;    /* a handed-over connection waits for JS: no delay */
  int reserve_fd; /* closed to accept-and-drop when out of fds (as libuv does) */
  int accept_paused;
};
#define POOL_MAX 64
#define POOL_TRIM_MS 1000
/* Timeouts (idle, connect, refusal) are checked by walking every pair: at most every SCAN_MS, or at the
 * earliest deadline, never on every wake-up (with thousands of pairs open that walk cost more than relaying). */
#define SCAN_MS 100
/* Completions wait at most FLUSH_MS (or until FLUSH_RECORDS are ready) before they reach JS in one batch. */
#define FLUSH_MS 20
#define FLUSH_RECORDS 512
/* Records handed to JS and not read yet, at most (~30 MB): a Node thread that stops reading (a debugger, a
 * stuck GC) costs memory up to this bound, never the data path. Past it, the records of connections the
 * threads finished are dropped and counted (REC_LOST: their access-log lines and counters); handed-over
 * connections and pairs JS waits for still go through. */
#define MAX_QUEUED_RECORDS 65536

static struct worker workers[MAX_WORKERS];
static int n_workers;
static atomic_uint next_worker;
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_id = 1;
static napi_threadsafe_function tsfn;
/* Connections accepted by the threads and still theirs, per direction; connections handed to JS, until JS
 * says they are done. Their sum is what maxDataPlaneConnections limits. */
static atomic_uint open_count[2];
static atomic_uint handed_over;
static atomic_uint queued_records, lost_records;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void) { return now_us() / 1000; }

const char *errno_name(int err) {
  switch (err) {
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case ENOMEM: return "ENOMEM";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNABORTED: return "ECONNABORTED";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENETDOWN: return "ENETDOWN";
    case EHOSTDOWN: return "EHOSTDOWN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case ENOSPC: return "ENOSPC";
    case ENOENT: return "ENOENT";
    case ENOTCONN: return "ENOTCONN";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "EIO";
  }
}

/* Throws Error(code = errno name, message "what: call: strerror"). */
static napi_value throw_call(napi_env env, const char *what, const char *call, int err) {
  char message[128];
  snprintf(message, sizeof message, "%s: %s: %s", what, call, strerror(err));
  napi_throw_error(env, errno_name(err), message);
  return NULL;
}

static int take_pipe(struct worker *w, struct half *h) {
  if (w->pool_size > 0) {
    w->pool_size--;
    if (w->pool_size < w->pool_low) w->pool_low = w->pool_size;
    h->pipe_r = w->pool[w->pool_size][0];
    h->pipe_w = w->pool[w->pool_size][1];
    return 0;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
  h->pipe_r = fds[0];
  h->pipe_w = fds[1];
  return 0;
}

static void give_pipe(struct worker *w, struct half *h) {
  if (h->pipe_r < 0) return;
  if (h->in_pipe == 0 && w->pool_size < POOL_MAX) {
    w->pool[w->pool_size][0] = h->pipe_r;
    w->pool[w->pool_size][1] = h->pipe_w;
    w->pool_size++;
  } else {
    close(h->pipe_r);
    close(h->pipe_w);
  }
  h->pipe_r = h->pipe_w = -1;
}

/* Closes the pipes nobody took since the last trim (all of them when `all`). */
static void trim_pool(struct worker *w, int all) {
  int excess = all ? w->pool_size : w->pool_low;
  while (excess-- > 0 && w->pool_size > 0) {
    w->pool_size--;
    close(w->pool[w->pool_size][0]);
    close(w->pool[w->pool_size][1]);
  }
  w->pool_low = w->pool_size;
}

static void reset_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

/* A zeroed record at the end of the worker's batch (NULL when out of memory: that record is lost). */
static struct result *batch_push(struct worker *w) {
  struct batch *b = w->batch;
  if (!b) {
    b = w->batch = calloc(1, sizeof *b);
    if (!b) return NULL;
  }
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    struct result *items = realloc(b->items, cap * sizeof *items);
    if (!items) return NULL;
    b->items = items;
    b->cap = cap;
  }
  if (b->n == 0) w->flush_ms = now_ms() + FLUSH_MS;
  struct result *r = &b->items[b->n++];
  memset(r, 0, sizeof *r);
  r->fd = -1;
  r->endpoint = -1;
  r->connect_us = -1;
  return r;
}

static void free_batch(struct batch *b) {
  for (size_t i = 0; i < b->n; i++) route_table_unref(b->items[i].table);
  free(b->items);
  free(b);
}

/* Hands what the thread finished to JS in one call: JS wakes at most every FLUSH_MS per thread for
 * completions (each wake-up cost the JS thread and the scheduler more than the record itself), at once for
 * a handed-over connection, whose client waits for JS's decision. */
static void flush(struct worker *w, int64_t now) {
  struct batch *b = w->batch;
  if (!b || b->n == 0) return;
  if (!w->flush_now && now < w->flush_ms && b->n < FLUSH_RECORDS && !w->stopping) return;
  w->flush_now = 0;
  w->batch = NULL;
  if (atomic_load(&queued_records) + b->n > MAX_QUEUED_RECORDS) {
    size_t kept = 0;
    unsigned lost = 0;
    for (size_t i = 0; i < b->n; i++) {
      int type = b->items[i].type;
      if (type == REC_HANDOFF || type == REC_RELAYED) {
        b->items[kept++] = b->items[i];
      } else {
        route_table_unref(b->items[i].table);
        lost++;
      }
    }
    b->n = kept;
    atomic_fetch_add(&lost_records, lost);
    if (kept == 0) {
      free_batch(b);
      return;
    }
  }
  atomic_fetch_add(&queued_records, (unsigned)b->n);
  if (napi_call_threadsafe_function(tsfn, b, napi_tsfn_blocking) == napi_ok) return;
  atomic_fetch_sub(&queued_records, (unsigned)b->n);
  for (size_t i = 0; i < b->n; i++) /* JS is gone: nobody will take these */
    if (b->items[i].type == REC_HANDOFF) reset_close(b->items[i].fd);
  free_batch(b);
}

static void unlink_active(struct pair *p) {
  struct worker *w = p->w;
  if (p->prev) p->prev->next = p->next;
  else if (w->active == p) w->active = p->next;
  if (p->next) p->next->prev = p->prev;
  p->next = p->prev = NULL;
}

static void finish(struct pair *p, int reset) {
  if (p->finished) return;
  struct worker *w = p->w;
  p->finished = 1;
  int fds[2] = {p->fd_client, p->fd_upstream};
  for (int i = 0; i < 2; i++) {
    if (fds[i] < 0) continue;
    /* A pair JS handed over has a client fd dup()ed from JS's, which JS may not have closed yet: its epoll
     * registration outlives our close, so remove it first. The threads' own fds leave the epoll on close. */
    if (p->id != 0) epoll_ctl(w->ep, EPOLL_CTL_DEL, fds[i], NULL);
    if (reset) reset_close(fds[i]);
    else close(fds[i]);
  }
  give_pipe(w, &p->up);
  give_pipe(w, &p->down);
  unlink_active(p);
  struct result *r = batch_push(w);
  if (r) {
    r->type = p->id == 0 ? REC_NATIVE : REC_RELAYED;
    r->id = p->id;
    r->connect_us = p->connect_us;
    r->up = p->up.bytes;
    r->down = p->down.bytes;
    memcpy(r->error, p->error, sizeof r->error);
    if (p->id == 0) {
      r->direction = p->direction;
      r->family = p->family;
      r->decision = p->decision;
      r->reason = p->reason;
      r->endpoint = p->endpoint;
      r->duration_us = now_us() - p->accept_us;
      r->peer = p->peer;
      r->original = p->original;
      r->upstream = p->addr;
      r->table = p->table; /* the reference moves to the record: the endpoint's names stay valid */
      p->table = NULL;
    }
  }
  if (p->counted) atomic_fetch_sub(&open_count[p->direction], 1);
  route_table_unref(p->table);
  p->table = NULL;
  p->next = w->dead;
  w->dead = p;
}

/* Moves what it can in one direction. Returns 1 on progress, 0 on none, -errno on error. */
static int pump_half(struct half *h) {
  int progress = 0;
  for (;;) {
    int moved = 0;
    while (h->in_pipe > 0 && h->writable) {
      ssize_t n = splice(h->pipe_r, NULL, h->out, NULL, h->in_pipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        h->in_pipe -= (size_t)n;
        h->bytes += (uint64_t)n;
        moved = 1;
        continue;
      }
      if (n < 0 && errno == EAGAIN) h->writable = 0;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      return -(n < 0 ? errno : EPIPE);
    }
    if (!h->eof_in && h->readable && h->in_pipe < PIPE_CAP) {
      ssize_t n = splice(h->in, NULL, h->pipe_w, NULL, PIPE_CAP - h->in_pipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        h->in_pipe += (size_t)n;
        moved = 1;
      } else if (n == 0) {
        h->eof_in = 1;
        moved = 1;
      } else if (errno == EAGAIN) {
        /* EAGAIN means "socket empty" or "pipe full": a pipe counts slots, not bytes, so small segments fill
         * a small pipe (2 slots once the user is over fs.pipe-user-pages-soft) long before PIPE_CAP bytes.
         * Only an empty pipe proves the socket is empty; otherwise the read is retried once the pipe drained
         * (edge-triggered epoll would never report the data already waiting). */
        if (h->in_pipe == 0) h->readable = 0;
      } else if (errno != EINTR) {
        return -errno;
      }
    }
    if (h->eof_in && h->in_pipe == 0 && !h->shut_out) {
      shutdown(h->out, SHUT_WR); /* half-close: this direction is over, the other goes on */
      h->shut_out = 1;
      moved = 1;
    }
    if (!moved) return progress;
    progress = 1;
  }
}

/*
 * Records what an epoll event says about one of the pair's sockets (the other half's `out` is the same fd).
 * Returns the socket's pending error (0 if none): a reset on a socket whose EOF was already read, with nothing
 * to write to it, would otherwise go unseen and hold the pair until the idle timeout.
 */
static int note_event(struct pair *p, int fd, uint32_t events) {
  struct half *reading = fd == p->up.in ? &p->up : &p->down;
  struct half *writing = fd == p->up.out ? &p->up : &p->down;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) reading->readable = 1;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writing->writable = 1;
  if (!(events & EPOLLERR)) return 0;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return err;
}

static void pump(struct pair *p) {
  for (;;) {
    int a = pump_half(&p->up);
    int b = a < 0 ? 0 : pump_half(&p->down);
    if (a < 0 || b < 0) {
      snprintf(p->error, sizeof p->error, "%s", errno_name(-(a < 0 ? a : b)));
      finish(p, 1);
      return;
    }
    if (a || b) p->last_ms = now_ms();
    if (p->up.shut_out && p->down.shut_out) {
      finish(p, 0);
      return;
    }
    if (!a && !b) return;
  }
}

static void connect_failed(struct pair *p, int err) {
  snprintf(p->error, sizeof p->error, "connect:%s", errno_name(err));
  finish(p, 1); /* the client is reset, as when JS saw the connect fail */
}

static void connected(struct pair *p) {
  p->connecting = 0;
  p->connect_us = now_us() - p->connect_start_us;
  p->last_ms = now_ms();
  p->up.readable = p->up.writable = p->down.readable = p->down.writable = 1;
  pump(p);
}

/* Watches one of the pair's sockets (edge-triggered; the low bit of data says which). 0 or an errno. */
static int watch_fd(struct pair *p, int fd, int tag, uint32_t events) {
  struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = (void *)((uintptr_t)p | (uintptr_t)tag)};
  return epoll_ctl(p->w->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

/* A pair that cannot be watched would otherwise wait for a timeout (forever with --idle-timeout 0). */
static int watch_or_fail(struct pair *p, int fd, int tag, uint32_t events) {
  int err = watch_fd(p, fd, tag, events);
  if (err == 0) return 0;
  snprintf(p->error, sizeof p->error, "epoll:%s", errno_name(err));
  finish(p, 1);
  return err;
}

#define PAIR_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP)

static void set_deadline(struct pair *p, int64_t deadline_ms) {
  p->deadline_ms = deadline_ms;
  if (deadline_ms < p->w->next_scan_ms) p->w->next_scan_ms = deadline_ms;
}

/* Non-blocking connect from this thread (on veth the handshake runs inside connect()). */
static void start_connect(struct pair *p) {
  int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    connect_failed(p, errno);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  p->fd_upstream = p->up.out = p->down.in = fd;
  p->connecting = 1;
  p->connect_start_us = now_us();
  set_deadline(p, p->connect_start_us / 1000 + p->connect_timeout_ms);
  /* Both sockets are watched from now on: the client for a reset while the upstream connects. */
  if (watch_or_fail(p, p->fd_client, 0, PAIR_EVENTS) != 0) return;
  if (watch_or_fail(p, fd, 1, PAIR_EVENTS) != 0) return;
  if (connect(fd, (struct sockaddr *)&p->addr, p->addr_len) == 0) {
    connected(p);
  } else if (errno != EINPROGRESS) {
    connect_failed(p, errno);
  }
}

/* An event on a pair whose upstream is still connecting. */
static void connect_event(struct pair *p, int on_upstream, uint32_t events) {
  if (!on_upstream) {
    if (events & (EPOLLHUP | EPOLLERR)) { /* the client went away (RST) before the upstream answered */
      snprintf(p->error, sizeof p->error, "client-closed");
      finish(p, 1);
    }
    return; /* its bytes wait in its receive buffer: pumped once connected */
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(p->fd_upstream, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    connect_failed(p, err);
  } else if (events & EPOLLOUT) {
    connected(p);
  }
}

static void link_active(struct pair *p) {
  struct worker *w = p->w;
  p->next = w->active;
  p->prev = NULL;
  if (w->active) w->active->prev = p;
  w->active = p;
}

/* Pipes, then connect: a pair the thread opens the upstream of. */
static void start_pair(struct pair *p) {
  int err = take_pipe(p->w, &p->up);
  if (err == 0) err = take_pipe(p->w, &p->down);
  if (err != 0) {
    snprintf(p->error, sizeof p->error, "pipe:%s", errno_name(err));
    finish(p, 1);
    return;
  }
  start_connect(p);
}

static int original_destination(int fd, int family, struct sockaddr_storage *out) {
  socklen_t len = sizeof *out;
  memset(out, 0, sizeof *out);
  int rc = family == 4 ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len)
                       : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len);
  return rc == 0 ? 0 : errno;
}

/* One connection a listener accepted: decide, then connect, refuse or hand it to JS. */
static void accepted(struct worker *w, struct listener *l, int fd, const struct sockaddr_storage *peer) {
  uint32_t active = atomic_load(&open_count[0]) + atomic_load(&open_count[1]) + atomic_load(&handed_over);
  struct pair *p = calloc(1, sizeof *p);
  if (!p) {
    reset_close(fd);
    struct result *r = batch_push(w);
    if (r) {
      r->type = REC_DROPPED;
      r->direction = l->direction;
      r->family = l->family;
      snprintf(r->error, sizeof r->error, "accept:ENOMEM");
    }
    return;
  }
  atomic_fetch_add(&open_count[l->direction], 1);
  p->counted = 1;
  p->w = w;
  p->direction = l->direction;
  p->family = l->family;
  p->peer = *peer;
  p->accept_us = now_us();
  p->connect_us = -1;
  p->endpoint = -1;
  p->fd_client = p->up.in = p->down.out = fd;
  p->fd_upstream = p->up.out = p->down.in = -1;
  p->up.pipe_r = p->up.pipe_w = p->down.pipe_r = p->down.pipe_w = -1;
  p->idle_ms = l->idle_ms;
  p->connect_timeout_ms = l->connect_timeout_ms;
  p->last_ms = p->accept_us / 1000;
  link_active(p);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  p->table = route_table_current();
  int err = original_destination(fd, l->family, &p->original);
  if (err != 0) { /* not redirected (no conntrack entry): reset at once, as the JS path does */
    p->decision = D_REFUSE;
    p->reason = R_NOT_REDIRECTED;
    snprintf(p->error, sizeof p->error, "original-dst:%s", errno_name(err));
    finish(p, 1);
    return;
  }
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  memset(&local, 0, sizeof local);
  getsockname(fd, (struct sockaddr *)&local, &local_len);
  struct decision d;
  route_table_decide(p->table, l->direction, &p->original, &local, active, &d);
  p->decision = d.kind;
  p->reason = d.reason;
  p->endpoint = d.endpoint;
  if (d.kind == D_JS) { /* JS decides: it gets the fd (still unread) and owns the connection from now on */
    struct result *r = batch_push(w);
    if (!r) {
      snprintf(p->error, sizeof p->error, "handoff:ENOMEM");
      p->decision = D_REFUSE;
      finish(p, 1);
      return;
    }
    r->type = REC_HANDOFF;
    w->flush_now = 1;
    r->fd = fd;
    r->direction = l->direction;
    r->family = l->family;
    atomic_fetch_add(&handed_over, 1);
    atomic_fetch_sub(&open_count[l->direction], 1);
    p->counted = 0;
    unlink_active(p);
    route_table_unref(p->table);
    free(p);
    return;
  }
  if (d.kind == D_REFUSE) { /* reset once the client has spoken (or FIN), at most refuse_grace_ms */
    /* Refused is done, as for the JS path: it no longer counts against the limit while it waits. */
    atomic_fetch_sub(&open_count[l->direction], 1);
    p->counted = 0;
    p->refusing = 1;
    set_deadline(p, p->last_ms + l->refuse_grace_ms);
    watch_or_fail(p, fd, 0, EPOLLIN | EPOLLRDHUP);
    return;
  }
  p->addr = d.upstream;
  p->addr_len = d.upstream_len;
  start_pair(p);
}

/* Out of fds: accept and reset what waits with the reserved fd (libuv's trick), so the kernel's queue does
 * not hold clients that will never be served, and report it once. Without a reserve the listeners pause
 * until the next timeout scan instead of spinning. */
static void drop_waiting(struct worker *w, struct listener *l, int err) {
  struct result *r = batch_push(w);
  if (r) {
    r->type = REC_DROPPED;
    r->direction = l->direction;
    r->family = l->family;
    snprintf(r->error, sizeof r->error, "accept:%s", errno_name(err));
  }
  if (w->reserve_fd >= 0) {
    close(w->reserve_fd);
    w->reserve_fd = -1;
    for (int i = 0; i < ACCEPT_BURST; i++) {
      int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0) break;
      reset_close(fd);
    }
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd >= 0) return;
  }
  w->accept_paused = 1;
  for (int i = 0; i < 4; i++) {
    struct listener *each = w->listeners[i];
    if (!each || atomic_load(&each->closed)) continue;
    struct epoll_event ev = {.events = 0, .data.ptr = (void *)((uintptr_t)each | 2)};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, each->fd, &ev);
  }
}

static void resume_accept(struct worker *w) {
  if (w->reserve_fd < 0) w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  w->accept_paused = 0;
  for (int i = 0; i < 4; i++) {
    struct listener *each = w->listeners[i];
    if (!each || atomic_load(&each->closed)) continue;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)((uintptr_t)each | 2)};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, each->fd, &ev);
  }
}

static void on_listener(struct worker *w, struct listener *l) {
  if (atomic_load(&l->closed) || w->accept_paused) return;
  for (int i = 0; i < ACCEPT_BURST; i++) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted(w, l, fd, &peer);
      continue;
    }
    int err = errno;
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) drop_waiting(w, l, err);
    return; /* EAGAIN: nothing waits; EINVAL: shut down by relayUnlisten */
  }
}

static void on_pair_event(struct pair *p, int on_upstream, uint32_t events) {
  if (p->refusing) { /* the client spoke, closed or reset: the refusal's reset */
    finish(p, 1);
    return;
  }
  if (p->connecting) {
    connect_event(p, on_upstream, events);
    return;
  }
  int err = note_event(p, on_upstream ? p->fd_upstream : p->fd_client, events);
  if (err != 0) {
    snprintf(p->error, sizeof p->error, "%s", errno_name(err));
    finish(p, 1);
    return;
  }
  pump(p);
}

static void scan_timeouts(struct worker *w, int64_t now, int do_abort, int stop) {
  for (struct pair *p = w->active, *next; p; p = next) {
    next = p->next;
    if (do_abort) {
      snprintf(p->error, sizeof p->error, "%s", p->refusing ? "" : stop ? "shutdown" : "drain-timeout");
      finish(p, 1);
    } else if (p->connecting || p->refusing) {
      if (now >= p->deadline_ms) {
        if (p->connecting) snprintf(p->error, sizeof p->error, "connect-timeout");
        finish(p, 1);
      } else if (p->deadline_ms < w->next_scan_ms) {
        w->next_scan_ms = p->deadline_ms;
      }
    } else if (p->idle_ms > 0 && now - p->last_ms > p->idle_ms) {
      snprintf(p->error, sizeof p->error, "idle-timeout");
      finish(p, 1);
    }
  }
}

static void *relay_thread(void *arg) {
  struct worker *w = arg;
  char name[16]; /* what `top -H` and /proc/<pid>/task/<tid>/comm show: which thread is which */
  snprintf(name, sizeof name, "osm-relay-%d", (int)(w - workers));
  pthread_setname_np(pthread_self(), name);
  struct epoll_event events[128];
  int wait_ms = 250;
  for (;;) {
    int n = epoll_wait(w->ep, events, 128, wait_ms);
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        uint64_t v;
        if (read(w->wake, &v, sizeof v) < 0) { /* spurious */ }
        continue;
      }
      /* The low bits say what: 0 client, 1 upstream, 2 listener (pairs and listeners are malloc-aligned). A
       * pair finished by an earlier event of this batch is on `dead`, not freed yet. */
      uintptr_t tagged = (uintptr_t)events[i].data.ptr;
      if ((tagged & 3) == 2) {
        on_listener(w, (struct listener *)(tagged & ~(uintptr_t)3));
        continue;
      }
      struct pair *p = (struct pair *)(tagged & ~(uintptr_t)3);
      if (!p->finished) on_pair_event(p, (int)(tagged & 1), events[i].events);
    }
    pthread_mutex_lock(&w->lock);
    struct pair *incoming = w->queue;
    struct listener *closing = w->closing;
    w->queue = NULL;
    w->closing = NULL;
    int do_abort = w->abort_all || w->stopping;
    int stop = w->stopping;
    w->abort_all = 0;
    pthread_mutex_unlock(&w->lock);
    while (closing) { /* no later event can name them: removed from the epoll before they were queued */
      struct listener *l = closing;
      closing = l->next_closing;
      close(l->fd);
      free(l);
    }
    while (incoming) {
      struct pair *p = incoming;
      incoming = p->queue_next;
      link_active(p);
      if (p->fd_upstream < 0) {
        start_pair(p);
        continue;
      }
      int err = take_pipe(w, &p->up);
      if (err == 0) err = take_pipe(w, &p->down);
      if (err != 0) {
        snprintf(p->error, sizeof p->error, "pipe:%s", errno_name(err));
        finish(p, 1);
        continue;
      }
      if (watch_or_fail(p, p->fd_client, 0, PAIR_EVENTS) != 0) continue;
      if (watch_or_fail(p, p->fd_upstream, 1, PAIR_EVENTS) != 0) continue;
      p->up.readable = p->up.writable = p->down.readable = p->down.writable = 1;
      pump(p);
    }
    int64_t now = now_ms();
    int scan = do_abort || now >= w->next_scan_ms;
    if (scan) {
      w->next_scan_ms = now + SCAN_MS;
      if (w->accept_paused) resume_accept(w);
      scan_timeouts(w, now, do_abort, stop);
    }
    if (now >= w->next_trim_ms) {
      trim_pool(w, 0);
      w->next_trim_ms = now + POOL_TRIM_MS;
    }
    flush(w, now);
    int64_t wake_at = w->next_scan_ms;
    if (w->batch && w->batch->n > 0 && w->flush_ms < wake_at) wake_at = w->flush_ms;
    wait_ms = wake_at <= now ? 0 : (int)(wake_at - now);
    while (w->dead) {
      struct pair *p = w->dead;
      w->dead = p->next;
      free(p);
    }
    if (stop) break;
  }
  trim_pool(w, 1);
  return NULL;
}

/* "addr:port", "[addr]:port" for IPv6 (formatHost's spelling), "" when not an address. */
static void host_port(const struct sockaddr_storage *ss, char *out, size_t size) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    snprintf(out, size, "%s:%u", text, ntohs(v4->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    snprintf(out, size, "[%s]:%u", text, ntohs(v6->sin6_port));
  } else {
    out[0] = 0;
  }
}

/* Fields per record of the callback's flat array (native-relay.ts reads them by these positions). */
enum {
  F_TYPE, F_ID, F_DIRECTION, F_FAMILY, F_DECISION, F_REASON, F_SRC, F_DST, F_UPSTREAM, F_SERVICE,
  F_TRAFFIC_TARGET, F_BYTES_UP, F_BYTES_DOWN, F_ERROR, F_CONNECT_US, F_DURATION_US, RECORD_FIELDS
};

static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  struct batch *b = data;
  atomic_fetch_sub(&queued_records, (unsigned)b->n);
  if (env != NULL && callback != NULL) {
    napi_value array, undefined;
    napi_get_undefined(env, &undefined);
    unsigned lost = atomic_exchange(&lost_records, 0);
    napi_create_array_with_length(env, (b->n + (lost > 0)) * RECORD_FIELDS, &array);
    if (lost > 0) { /* one record saying how many were dropped since the last batch */
      napi_value v;
      uint32_t at = (uint32_t)(b->n * RECORD_FIELDS);
      napi_create_int32(env, REC_LOST, &v);
      napi_set_element(env, array, at + F_TYPE, v);
      napi_create_uint32(env, lost, &v);
      napi_set_element(env, array, at + F_ID, v);
    }
    for (size_t i = 0; i < b->n; i++) {
      struct result *r = &b->items[i];
      uint32_t at = (uint32_t)(i * RECORD_FIELDS);
      napi_value fields[RECORD_FIELDS];
      for (int f = 0; f < RECORD_FIELDS; f++) fields[f] = undefined;
      napi_create_int32(env, r->type, &fields[F_TYPE]);
      napi_create_int64(env, r->type == REC_HANDOFF ? r->fd : (int64_t)r->id, &fields[F_ID]);
      napi_create_int32(env, r->direction, &fields[F_DIRECTION]);
      napi_create_int32(env, r->family, &fields[F_FAMILY]);
      napi_create_string_utf8(env, r->error, NAPI_AUTO_LENGTH, &fields[F_ERROR]);
      if (r->type == REC_RELAYED || r->type == REC_NATIVE) {
        napi_create_double(env, (double)r->up, &fields[F_BYTES_UP]);
        napi_create_double(env, (double)r->down, &fields[F_BYTES_DOWN]);
        napi_create_double(env, (double)r->connect_us, &fields[F_CONNECT_US]);
      }
      if (r->type == REC_NATIVE) {
        char text[INET6_ADDRSTRLEN + 8];
        napi_create_int32(env, r->decision, &fields[F_DECISION]);
        napi_create_int32(env, r->reason, &fields[F_REASON]);
        host_port(&r->peer, text, sizeof text);
        napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &fields[F_SRC]);
        host_port(&r->original, text, sizeof text);
        if (text[0]) napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &fields[F_DST]);
        if (r->decision == D_MESH || r->decision == D_PASSTHROUGH) {
          host_port(&r->upstream, text, sizeof text);
          napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &fields[F_UPSTREAM]);
        }
        if (r->decision == D_MESH && r->table && r->endpoint >= 0) {
          const struct endpoint *ep = &r->table->endpoints[r->endpoint];
          napi_create_string_utf8(env, ep->service, NAPI_AUTO_LENGTH, &fields[F_SERVICE]);
          if (ep->traffic_target)
            napi_create_string_utf8(env, ep->traffic_target, NAPI_AUTO_LENGTH, &fields[F_TRAFFIC_TARGET]);
        }
        napi_create_double(env, (double)r->duration_us, &fields[F_DURATION_US]);
      }
      for (int f = 0; f < RECORD_FIELDS; f++) napi_set_element(env, array, at + (uint32_t)f, fields[f]);
    }
    napi_call_function(env, undefined, callback, 1, &array, NULL);
  } else {
    /* The environment is going away: close what would have been handed over. */
    for (size_t i = 0; i < b->n; i++)
      if (b->items[i].type == REC_HANDOFF) reset_close(b->items[i].fd);
  }
  free_batch(b);
}

static void close_workers(int count) {
  for (int i = 0; i < count; i++) {
    struct worker *w = &workers[i];
    if (w->wake >= 0) close(w->wake);
    if (w->ep >= 0) close(w->ep);
    if (w->reserve_fd >= 0) close(w->reserve_fd);
    w->wake = w->ep = w->reserve_fd = -1;
  }
}

/* Throws Error(code = errno name) for a failed setup call and undoes what was set up. */
static napi_value start_failed(napi_env env, int made, const char *call, int err) {
  for (int i = 0; i < made; i++) { /* threads already running: stop and join them */
    pthread_mutex_lock(&workers[i].lock);
    workers[i].stopping = 1;
    pthread_mutex_unlock(&workers[i].lock);
    uint64_t one = 1;
    if (write(workers[i].wake, &one, sizeof one) < 0) { /* it wakes anyway */ }
    pthread_join(workers[i].thread, NULL);
  }
  close_workers(made + 1); /* the ones set up so far, the failing one included */
  n_workers = 0;
  napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  return throw_call(env, "relayStart", call, err);
}

napi_value relay_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name;
  double stack_bytes = 0;
  int32_t threads = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (n_workers > 0) {
    napi_throw_error(env, "EALREADY", "relayStart: already started");
    return NULL;
  }
  if (argc < 3 || napi_get_value_double(env, argv[1], &stack_bytes) != napi_ok || stack_bytes < 0 ||
      napi_get_value_int32(env, argv[2], &threads) != napi_ok || threads < 1 || threads > MAX_WORKERS) {
    napi_throw_type_error(env, "EINVAL", "relayStart(callback, stackBytes, threads 1..64)");
    return NULL;
  }
  napi_create_string_utf8(env, "osm-sidecar-relay", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &tsfn) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "relayStart(callback, stackBytes, threads) needs a function");
    return NULL;
  }
  napi_unref_threadsafe_function(env, tsfn); /* the listeners keep the process alive, not the relay */
  n_workers = threads;
  for (int i = 0; i < threads; i++) {
    struct worker *w = &workers[i];
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    w->wake = w->reserve_fd = -1;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) return start_failed(env, i, "epoll_create1", errno);
    w->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake < 0) return start_failed(env, i, "eventfd", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) != 0) return start_failed(env, i, "epoll_ctl", errno);
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->next_trim_ms = now_ms() + POOL_TRIM_MS;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int err = pthread_attr_setstacksize(&attr, (size_t)stack_bytes);
    if (err == 0) err = pthread_create(&w->thread, &attr, relay_thread, w);
    pthread_attr_destroy(&attr);
    if (err != 0) return start_failed(env, i, "pthread_create", err);
  }
  return NULL;
}

static void wake_thread(struct worker *w) {
  uint64_t one = 1;
  if (write(w->wake, &one, sizeof one) < 0) { /* counter full: the thread is awake anyway */ }
}

/* Sets one of a thread's flags (abort_all, stopping) and wakes it to act on it. */
static void raise_flag(struct worker *w, int *flag) {
  pthread_mutex_lock(&w->lock);
  *flag = 1;
  pthread_mutex_unlock(&w->lock);
  wake_thread(w);
}

static void unlisten(int direction) {
  for (int i = 0; i < n_workers; i++) {
    struct worker *w = &workers[i];
    for (int family = 0; family < 2; family++) {
      struct listener *l = w->listeners[direction * 2 + family];
      if (!l) continue;
      w->listeners[direction * 2 + family] = NULL;
      atomic_store(&l->closed, 1);
      epoll_ctl(w->ep, EPOLL_CTL_DEL, l->fd, NULL);
      /* A listening socket shut down leaves the listen hash at once: the next SYN is refused (curl exit 7),
       * and what waited in its queue is reset. The thread closes the fd (it may be in accept4 on it now). */
      shutdown(l->fd, SHUT_RDWR);
      pthread_mutex_lock(&w->lock);
      l->next_closing = w->closing;
      w->closing = l;
      pthread_mutex_unlock(&w->lock);
      wake_thread(w);
    }
  }
}

/* relayStop(): resets every pair (their results still reach the callback), joins the threads, closes the
 * pools, the epolls and the eventfds, releases the callback. relayStart may be called again afterwards. */
napi_value relay_stop(napi_env env, napi_callback_info info) {
  if (n_workers == 0) return NULL;
  unlisten(DIR_OUTBOUND);
  unlisten(DIR_INBOUND);
  for (int i = 0; i < n_workers; i++) raise_flag(&workers[i], &workers[i].stopping);
  for (int i = 0; i < n_workers; i++) {
    struct worker *w = &workers[i];
    pthread_join(w->thread, NULL);
    /* Pairs and listeners handed over after the thread's last look at its queues. */
    while (w->closing) {
      struct listener *l = w->closing;
      w->closing = l->next_closing;
      close(l->fd);
      free(l);
    }
    while (w->queue) {
      struct pair *p = w->queue;
      w->queue = p->queue_next;
      reset_close(p->fd_client);
      if (p->fd_upstream >= 0) reset_close(p->fd_upstream);
      struct result *r = batch_push(w);
      if (r) {
        r->type = REC_RELAYED;
        r->id = p->id;
        snprintf(r->error, sizeof r->error, "shutdown");
      }
      free(p);
    }
    w->flush_now = 1;
    flush(w, now_ms());
    pthread_mutex_destroy(&w->lock);
  }
  close_workers(n_workers);
  n_workers = 0;
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static napi_value hand_over(napi_env env, struct pair *p);

napi_value relay_pair(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd_a = -1, fd_b = -1;
  double idle = 0;
  if (n_workers == 0 || argc < 3 || napi_get_value_int32(env, argv[0], &fd_a) != napi_ok ||
      napi_get_value_int32(env, argv[1], &fd_b) != napi_ok || napi_get_value_double(env, argv[2], &idle) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "relayPair(fdClient, fdUpstream, idleMs) after relayStart()");
    return NULL;
  }
  struct pair *p = calloc(1, sizeof *p);
  if (!p) {
    napi_throw_error(env, "ENOMEM", "relayPair: out of memory");
    return NULL;
  }
  p->fd_client = fcntl(fd_a, F_DUPFD_CLOEXEC, 0);
  p->fd_upstream = fcntl(fd_b, F_DUPFD_CLOEXEC, 0);
  p->up.pipe_r = p->up.pipe_w = p->down.pipe_r = p->down.pipe_w = -1; /* the relay thread takes pipes */
  if (p->fd_client < 0 || p->fd_upstream < 0) {
    int err = errno;
    if (p->fd_client >= 0) close(p->fd_client);
    if (p->fd_upstream >= 0) close(p->fd_upstream);
    free(p);
    return throw_call(env, "relayPair", "dup", err);
  }
  p->up.in = p->fd_client;
  p->up.out = p->fd_upstream;
  p->down.in = p->fd_upstream;
  p->down.out = p->fd_client;
  p->idle_ms = (int64_t)idle;
  p->last_ms = now_ms();
  p->connect_us = -1;
  return hand_over(env, p);
}

/*
 * relayConnect(fdClient, address, port, idleMs, connectTimeoutMs) → id: dup()s the client; a relay thread
 * connects to address:port (IPv4 or IPv6 text) and relays once connected. Failures come back through the
 * callback: "connect:<errno>" or "connect-timeout" (client reset), "client-closed" (client reset first).
 */
napi_value relay_connect(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd_a = -1, port = 0;
  double idle = 0, timeout = 0;
  char address[64];
  size_t address_len = 0;
  if (n_workers == 0 || argc < 5 || napi_get_value_int32(env, argv[0], &fd_a) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof address, &address_len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || napi_get_value_double(env, argv[3], &idle) != napi_ok ||
      napi_get_value_double(env, argv[4], &timeout) != napi_ok || port < 1 || port > 65535) {
    napi_throw_type_error(env, "EINVAL",
                          "relayConnect(fdClient, address, port, idleMs, connectTimeoutMs) after relayStart()");
    return NULL;
  }
  struct pair *p = calloc(1, sizeof *p);
  if (!p) {
    napi_throw_error(env, "ENOMEM", "relayConnect: out of memory");
    return NULL;
  }
  struct sockaddr_in *v4 = (struct sockaddr_in *)&p->addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&p->addr;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    p->addr_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    p->addr_len = sizeof *v6;
  } else {
    free(p);
    napi_throw_type_error(env, "EINVAL", "relayConnect: address is not an IP address");
    return NULL;
  }
  p->fd_client = fcntl(fd_a, F_DUPFD_CLOEXEC, 0);
  if (p->fd_client < 0) {
    int err = errno;
    free(p);
    return throw_call(env, "relayConnect", "dup", err);
  }
  p->fd_upstream = -1; /* opened by the relay thread */
  p->up.pipe_r = p->up.pipe_w = p->down.pipe_r = p->down.pipe_w = -1;
  p->up.in = p->down.out = p->fd_client;
  p->up.out = p->down.in = -1;
  p->idle_ms = (int64_t)idle;
  p->last_ms = now_ms();
  p->connect_timeout_ms = (int64_t)timeout;
  p->connect_us = -1;
  return hand_over(env, p);
}

/* Queues a new pair for a relay thread (round robin) and returns its id. */
static napi_value hand_over(napi_env env, struct pair *p) {
  pthread_mutex_lock(&id_lock);
  uint32_t pair_id = next_id++;
  if (next_id == 0) next_id = 1;
  pthread_mutex_unlock(&id_lock);
  struct worker *w = &workers[atomic_fetch_add(&next_worker, 1) % (unsigned)n_workers];
  p->id = pair_id;
  p->w = w;
  pthread_mutex_lock(&w->lock);
  p->queue_next = w->queue;
  w->queue = p;
  pthread_mutex_unlock(&w->lock);
  wake_thread(w); /* from here on the relay thread owns p (it may already be freed) */
  napi_value id;
  napi_create_uint32(env, pair_id, &id);
  return id;
}

napi_value relay_abort_all(napi_env env, napi_callback_info info) {
  for (int i = 0; i < n_workers; i++) raise_flag(&workers[i], &workers[i].abort_all);
  return NULL;
}

static napi_value listen_failed(napi_env env, int fd, const char *call, int err) {
  if (fd >= 0) close(fd);
  return throw_call(env, "relayListen", call, err);
}

/*
 * relayListen(direction 0|1, port, family 4|6, connectTimeoutMs, idleMs, refuseGraceMs): one listening socket per relay
 * thread (SO_REUSEPORT; IPv6 sockets IPv6-only, as data-plane.ts's listeners), accepting in that thread from
 * now on. Throws Error(code = errno name), listening nowhere, when a socket cannot be made or bound.
 */
napi_value relay_listen(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t direction = -1, port = 0, family = 0;
  double connect_timeout = 0, idle = 0, refuse_grace = 0;
  if (n_workers == 0 || argc < 6 || napi_get_value_int32(env, argv[0], &direction) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || napi_get_value_int32(env, argv[2], &family) != napi_ok ||
      napi_get_value_double(env, argv[3], &connect_timeout) != napi_ok ||
      napi_get_value_double(env, argv[4], &idle) != napi_ok ||
      napi_get_value_double(env, argv[5], &refuse_grace) != napi_ok || (direction != 0 && direction != 1) ||
      (family != 4 && family != 6) || port < 1 || port > 65535) {
    napi_throw_type_error(env, "EINVAL",
                          "relayListen(direction, port, family, connectTimeoutMs, idleMs, refuseGraceMs) after relayStart()");
    return NULL;
  }
  int slot = direction * 2 + (family == 6);
  if (workers[0].listeners[slot]) {
    napi_throw_error(env, "EALREADY", "relayListen: already listening");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    len = sizeof *v4;
  } else {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    v6->sin6_addr = in6addr_any;
    len = sizeof *v6;
  }
  int one = 1;
  /* SO_REUSEPORT would let these sockets join another process's listening group on the port (another
   * sidecar of the same uid) and split its connections silently. A plain socket bound first fails as Node's
   * listeners did (EADDRINUSE) while anything listens there. */
  int probe = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return listen_failed(env, -1, "socket", errno);
  setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == 6) setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(probe, (struct sockaddr *)&ss, len) != 0) return listen_failed(env, probe, "bind", errno);
  close(probe);
  int fds[MAX_WORKERS];
  for (int i = 0; i < n_workers; i++) {
    int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      while (i-- > 0) close(fds[i]);
      return listen_failed(env, -1, "socket", errno);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    const char *call = NULL;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) call = "bind";
    else if (listen(fd, LISTEN_BACKLOG) != 0) call = "listen";
    if (call) {
      int err = errno;
      while (i-- > 0) close(fds[i]);
      return listen_failed(env, fd, call, err);
    }
    fds[i] = fd;
  }
  for (int i = 0; i < n_workers; i++) {
    struct listener *l = calloc(1, sizeof *l);
    if (!l) { /* the sockets made so far are closed, the ones registered unlistened */
      for (int j = i; j < n_workers; j++) close(fds[j]);
      unlisten(direction);
      napi_throw_error(env, "ENOMEM", "relayListen: out of memory");
      return NULL;
    }
    l->fd = fds[i];
    l->direction = direction;
    l->family = family;
    l->connect_timeout_ms = (int64_t)connect_timeout;
    l->idle_ms = (int64_t)idle;
    l->refuse_grace_ms = (int64_t)refuse_grace;
    workers[i].listeners[slot] = l;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)((uintptr_t)l | 2)};
    epoll_ctl(workers[i].ep, EPOLL_CTL_ADD, l->fd, &ev);
  }
  return NULL;
}

/* relayUnlisten(direction): both families; connections already accepted go on. */
napi_value relay_unlisten(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t direction = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &direction) != napi_ok || (direction != 0 && direction != 1)) {
    napi_throw_type_error(env, "EINVAL", "relayUnlisten(direction 0|1)");
    return NULL;
  }
  unlisten(direction);
  return NULL;
}

napi_value relay_open(napi_env env, napi_callback_info info) {
  napi_value result, v;
  napi_create_array_with_length(env, 2, &result);
  napi_create_uint32(env, atomic_load(&open_count[0]), &v);
  napi_set_element(env, result, 0, v);
  napi_create_uint32(env, atomic_load(&open_count[1]), &v);
  napi_set_element(env, result, 1, v);
  return result;
}

napi_value relay_handoff_done(napi_env env, napi_callback_info info) {
  if (atomic_load(&handed_over) > 0) atomic_fetch_sub(&handed_over, 1);
  return NULL;
}
