/*
 * Native relay: moves bytes between two connected TCP sockets with splice(2) through a pipe per direction,
 * so payload never enters user space (what HAProxy's `option splice-auto` does). One relay thread with
 * epoll (edge-triggered) serves every pair; JS hands a pair over once the upstream has connected and
 * before either socket has read a byte, then forgets its own handles.
 *
 *   relayStart(callback, stackBytes)     once: callback(id, bytesUp, bytesDown, error) per finished pair,
 *                                        on the JS thread (threadsafe function); error "" when clean. Throws
 *                                        (code = errno name) when the epoll, eventfd or thread cannot be made
 *   relayStop()                          resets every pair, joins the thread, frees everything
 *   relayPair(fdClient, fdUpstream, idleMs) → id   dup()s both fds (JS then closes its copies)
 *   relayAbortAll()                      resets every pair (drain deadline)
 *
 * Semantics match relay.ts: half-close both ways (EOF on one side → shutdown(SHUT_WR) on the other once
 * its pipe is drained), an error on either side resets both (SO_LINGER 0), idle timeout resets both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#define PIPE_CAP (64 * 1024)

struct half {
  int in, out, pipe_r, pipe_w;
  size_t in_pipe;
  int eof_in, shut_out;
  /* Edge-triggered readiness: set by an event on that fd, cleared by EAGAIN. A half whose `in` has not
   * signalled since its last EAGAIN is not tried again (no wasted splice calls). */
  int readable, writable;
  uint64_t bytes;
};

struct pair {
  uint32_t id;
  int fd_client, fd_upstream;
  struct half up, down;
  int64_t idle_ms, last_ms;
  /* relayConnect: the thread opens the upstream itself (fd_upstream < 0 until then). */
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int connecting;
  int64_t connect_timeout_ms, connect_deadline_ms, connect_start_us, connect_us;
  int finished;
  char error[32];
  struct pair *next, *prev;
  struct pair *queue_next;
};

struct result {
  uint32_t id;
  int64_t connect_us;
  uint64_t up, down;
  char error[32];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pair *queue; /* handed over by JS, not yet registered */
static int abort_all;
static int ep = -1, wake = -1;
static uint32_t next_id = 1;
static napi_threadsafe_function tsfn;
static struct pair *active; /* relay thread only */
static struct pair *dead;   /* finished in this loop turn, freed at its end (later events may name them) */
/* Timeouts (idle, connect) are checked by walking every pair: at most every SCAN_MS, or at the earliest
 * connect deadline, never on every wake-up (with thousands of pairs open that walk cost more than relaying). */
#define SCAN_MS 100
static int64_t next_scan_ms;

/* Empty pipes kept for the next pairs (relay thread only): saves pipe2() and two close() per direction.
 * Bounded, and shrinking: pipes that stayed unused for a whole POOL_TRIM_MS are closed, so the fd count goes
 * back to its baseline after a burst (each pipe is 2 fds and counts against uid 1500's pipe pages). */
#define POOL_MAX 64
#define POOL_TRIM_MS 1000
static int pool[POOL_MAX][2];
static int pool_size, pool_low; /* pool_low: smallest pool_size since the last trim */
static int64_t next_trim_ms;
static int stopping;
static pthread_t thread;

static int take_pipe(struct half *h) {
  if (pool_size > 0) {
    pool_size--;
    if (pool_size < pool_low) pool_low = pool_size;
    h->pipe_r = pool[pool_size][0];
    h->pipe_w = pool[pool_size][1];
    return 0;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
  h->pipe_r = fds[0];
  h->pipe_w = fds[1];
  return 0;
}

static void give_pipe(struct half *h) {
  if (h->pipe_r < 0) return;
  if (h->in_pipe == 0 && pool_size < POOL_MAX) {
    pool[pool_size][0] = h->pipe_r;
    pool[pool_size][1] = h->pipe_w;
    pool_size++;
  } else {
    close(h->pipe_r);
    close(h->pipe_w);
  }
  h->pipe_r = h->pipe_w = -1;
}

/* Closes the pipes nobody took since the last trim (all of them when `all`). */
static void trim_pool(int all) {
  int excess = all ? pool_size : pool_low;
  while (excess-- > 0 && pool_size > 0) {
    pool_size--;
    close(pool[pool_size][0]);
    close(pool[pool_size][1]);
  }
  pool_low = pool_size;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void) { return now_us() / 1000; }

static const char *errno_name(int err) {
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
    default: return "EIO";
  }
}

static void reset_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static void finish(struct pair *p, int reset) {
  if (p->finished) return;
  p->finished = 1;
  epoll_ctl(ep, EPOLL_CTL_DEL, p->fd_client, NULL);
  epoll_ctl(ep, EPOLL_CTL_DEL, p->fd_upstream, NULL);
  if (reset) {
    reset_close(p->fd_client);
    reset_close(p->fd_upstream);
  } else {
    close(p->fd_client);
    close(p->fd_upstream);
  }
  give_pipe(&p->up);
  give_pipe(&p->down);
  if (p->prev) p->prev->next = p->next; else active = p->next;
  if (p->next) p->next->prev = p->prev;
  struct result *r = malloc(sizeof *r);
  if (r) {
    r->id = p->id;
    r->connect_us = p->connect_us;
    r->up = p->up.bytes;
    r->down = p->down.bytes;
    memcpy(r->error, p->error, sizeof r->error);
    if (napi_call_threadsafe_function(tsfn, r, napi_tsfn_blocking) != napi_ok) free(r);
  }
  p->next = dead;
  dead = p;
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

/* Watches both sockets (edge-triggered; the low bit of data says which). Returns 0 or an errno. */
static int watch(struct pair *p) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = p};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd_client, &ev) != 0) return errno;
  ev.data.ptr = (void *)((uintptr_t)p | 1);
  if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd_upstream, &ev) != 0) return errno;
  return 0;
}

/* A pair that cannot be watched would otherwise wait for a timeout (forever with --idle-timeout 0). */
static int watch_or_fail(struct pair *p) {
  int err = watch(p);
  if (err == 0) return 0;
  snprintf(p->error, sizeof p->error, "epoll:%s", errno_name(err));
  finish(p, 1);
  return err;
}

/* relayConnect pairs: non-blocking connect from this thread (on veth the handshake runs inside connect()). */
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
  p->connect_deadline_ms = p->connect_start_us / 1000 + p->connect_timeout_ms;
  if (p->connect_deadline_ms < next_scan_ms) next_scan_ms = p->connect_deadline_ms;
  /* Both sockets are watched from now on: the client for a reset while the upstream connects. */
  if (watch_or_fail(p) != 0) return;
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

static void *relay_thread(void *arg) {
  struct epoll_event events[128];
  int wait_ms = 250;
  for (;;) {
    int n = epoll_wait(ep, events, 128, wait_ms);
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        uint64_t v;
        if (read(wake, &v, sizeof v) < 0) { /* spurious */ }
        continue;
      }
      /* The low bit says which socket (pairs are malloc-aligned). A pair finished by an earlier event of
       * this batch is on `dead`, not freed yet. */
      uintptr_t tagged = (uintptr_t)events[i].data.ptr;
      struct pair *p = (struct pair *)(tagged & ~(uintptr_t)1);
      if (p->finished) continue;
      if (p->connecting) {
        connect_event(p, (int)(tagged & 1), events[i].events);
        continue;
      }
      int err = note_event(p, (tagged & 1) ? p->fd_upstream : p->fd_client, events[i].events);
      if (err != 0) {
        snprintf(p->error, sizeof p->error, "%s", errno_name(err));
        finish(p, 1);
        continue;
      }
      pump(p);
    }
    pthread_mutex_lock(&lock);
    struct pair *incoming = queue;
    queue = NULL;
    int do_abort = abort_all || stopping;
    int stop = stopping;
    abort_all = 0;
    pthread_mutex_unlock(&lock);
    while (incoming) {
      struct pair *p = incoming;
      incoming = p->queue_next;
      p->next = active;
      p->prev = NULL;
      if (active) active->prev = p;
      active = p;
      int err = take_pipe(&p->up);
      if (err == 0) err = take_pipe(&p->down);
      if (err != 0) {
        snprintf(p->error, sizeof p->error, "pipe:%s", errno_name(err));
        finish(p, 1);
        continue;
      }
      if (p->fd_upstream < 0) {
        start_connect(p);
        continue;
      }
      if (watch_or_fail(p) != 0) continue;
      p->up.readable = p->up.writable = p->down.readable = p->down.writable = 1;
      pump(p);
    }
    int64_t now = now_ms();
    int scan = do_abort || now >= next_scan_ms;
    if (scan) next_scan_ms = now + SCAN_MS;
    for (struct pair *p = scan ? active : NULL, *next; p; p = next) {
      next = p->next;
      if (do_abort) {
        snprintf(p->error, sizeof p->error, "%s", stop ? "shutdown" : "drain-timeout");
        finish(p, 1);
      } else if (p->connecting) {
        if (now >= p->connect_deadline_ms) {
          snprintf(p->error, sizeof p->error, "connect-timeout");
          finish(p, 1);
        } else if (p->connect_deadline_ms < next_scan_ms) {
          next_scan_ms = p->connect_deadline_ms;
        }
      } else if (p->idle_ms > 0 && now - p->last_ms > p->idle_ms) {
        snprintf(p->error, sizeof p->error, "idle-timeout");
        finish(p, 1);
      }
    }
    if (now >= next_trim_ms) {
      trim_pool(0);
      next_trim_ms = now + POOL_TRIM_MS;
    }
    wait_ms = next_scan_ms <= now ? 0 : (int)(next_scan_ms - now);
    while (dead) {
      struct pair *p = dead;
      dead = p->next;
      free(p);
    }
    if (stop) break;
  }
  trim_pool(1);
  return arg;
}

static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  struct result *r = data;
  if (env != NULL && callback != NULL) {
    napi_value argv[5], undefined;
    napi_create_uint32(env, r->id, &argv[0]);
    napi_create_double(env, (double)r->up, &argv[1]);
    napi_create_double(env, (double)r->down, &argv[2]);
    napi_create_string_utf8(env, r->error, NAPI_AUTO_LENGTH, &argv[3]);
    napi_create_double(env, (double)r->connect_us, &argv[4]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 5, argv, NULL);
  }
  free(r);
}

/* Throws Error(code = errno name) for a failed setup call and undoes what was set up. */
static napi_value start_failed(napi_env env, const char *call, int err) {
  if (wake >= 0) close(wake);
  if (ep >= 0) close(ep);
  wake = ep = -1;
  napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  char message[128];
  snprintf(message, sizeof message, "relayStart: %s: %s", call, strerror(err));
  napi_throw_error(env, errno_name(err), message);
  return NULL;
}

napi_value relay_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  double stack_bytes = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (ep >= 0) {
    napi_throw_error(env, "EALREADY", "relayStart: already started");
    return NULL;
  }
  if (argc < 2 || napi_get_value_double(env, argv[1], &stack_bytes) != napi_ok || stack_bytes < 0) {
    napi_throw_type_error(env, "EINVAL", "relayStart(callback, stackBytes) needs a stack size");
    return NULL;
  }
  napi_create_string_utf8(env, "osm-sidecar-relay", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &tsfn) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "relayStart(callback, stackBytes) needs a function");
    return NULL;
  }
  napi_unref_threadsafe_function(env, tsfn); /* the listeners keep the process alive, not the relay */
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return start_failed(env, "epoll_create1", errno);
  wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) return start_failed(env, "eventfd", errno);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev) != 0) return start_failed(env, "epoll_ctl", errno);
  stopping = 0;
  next_trim_ms = now_ms() + POOL_TRIM_MS;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int err = pthread_attr_setstacksize(&attr, (size_t)stack_bytes);
  if (err == 0) err = pthread_create(&thread, &attr, relay_thread, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) return start_failed(env, "pthread_create", err);
  return NULL;
}

static void raise_flag(int *flag);

/* relayStop(): resets every pair (their results still reach the callback), joins the thread, closes the
 * pool, the epoll and the eventfd, releases the callback. relayStart may be called again afterwards. */
napi_value relay_stop(napi_env env, napi_callback_info info) {
  if (ep < 0) return NULL;
  raise_flag(&stopping);
  pthread_join(thread, NULL);
  /* Pairs handed over after the thread's last look at the queue: close their fds, report them. */
  pthread_mutex_lock(&lock);
  struct pair *left = queue;
  queue = NULL;
  pthread_mutex_unlock(&lock);
  while (left) {
    struct pair *p = left;
    left = p->queue_next;
    p->finished = 1;
    reset_close(p->fd_client);
    if (p->fd_upstream >= 0) reset_close(p->fd_upstream);
    struct result *r = malloc(sizeof *r);
    if (r) {
      memset(r, 0, sizeof *r);
      r->id = p->id;
      r->connect_us = -1;
      snprintf(r->error, sizeof r->error, "shutdown");
      if (napi_call_threadsafe_function(tsfn, r, napi_tsfn_blocking) != napi_ok) free(r);
    }
    free(p);
  }
  close(wake);
  close(ep);
  wake = ep = -1;
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void wake_thread(void) {
  uint64_t one = 1;
  if (write(wake, &one, sizeof one) < 0) { /* counter full: the thread is awake anyway */ }
}

static napi_value hand_over(napi_env env, struct pair *p);

napi_value relay_pair(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd_a = -1, fd_b = -1;
  double idle = 0;
  if (ep < 0 || argc < 3 || napi_get_value_int32(env, argv[0], &fd_a) != napi_ok ||
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
    char message[96];
    snprintf(message, sizeof message, "relayPair: dup: %s", strerror(err));
    napi_throw_error(env, errno_name(err), message);
    return NULL;
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
 * relayConnect(fdClient, address, port, idleMs, connectTimeoutMs) → id: dup()s the client; the relay thread
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
  if (ep < 0 || argc < 5 || napi_get_value_int32(env, argv[0], &fd_a) != napi_ok ||
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
    char message[96];
    snprintf(message, sizeof message, "relayConnect: dup: %s", strerror(err));
    free(p);
    napi_throw_error(env, errno_name(err), message);
    return NULL;
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

/* Queues a new pair for the relay thread and returns its id. */
static napi_value hand_over(napi_env env, struct pair *p) {
  pthread_mutex_lock(&lock);
  uint32_t pair_id = next_id++;
  if (next_id == 0) next_id = 1;
  p->id = pair_id;
  p->queue_next = queue;
  queue = p;
  pthread_mutex_unlock(&lock);
  wake_thread(); /* from here on the relay thread owns p (it may already be freed) */
  napi_value id;
  napi_create_uint32(env, pair_id, &id);
  return id;
}

/* Sets one of the thread's flags (abort_all, stopping) and wakes it to act on it. */
static void raise_flag(int *flag) {
  pthread_mutex_lock(&lock);
  *flag = 1;
  pthread_mutex_unlock(&lock);
  wake_thread();
}

napi_value relay_abort_all(napi_env env, napi_callback_info info) {
  if (ep < 0) return NULL;
  raise_flag(&abort_all);
  return NULL;
}
