/*
 * The relay threads' routing table (route-table.h): parsed from the bytes native-table.ts encodes from
 * decide.ts's RoutingTable, looked up per accepted connection. Encoding (little endian):
 *
 *   header   "OSMT" u8 format(1) u8 outboundOther u8 inboundMode u8 0 u32 maxConnections u32 nEndpoints
 *   endpoint u8 family(4|6) u8 0 u16 port  16 bytes address  u16 nBackends u16 serviceLength
 *            u16 trafficTargetLength (0: none) u16 0  service  trafficTarget  nBackends × backend
 *   backend  u8 family u8 0 u16 port  16 bytes address
 *
 * The table is immutable once parsed except for the round-robin cursors (atomic); it is reference counted
 * because a relayed pair keeps the names of its endpoint until its completion has reached JS.
 */
#define _GNU_SOURCE
#include "route-table.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

#define HEADER_BYTES 16
#define ENDPOINT_BYTES 28
#define BACKEND_BYTES 20

struct reader {
  const uint8_t *at, *end;
  int failed;
};

static const uint8_t *take(struct reader *r, size_t n) {
  if (r->failed || (size_t)(r->end - r->at) < n) {
    r->failed = 1;
    return NULL;
  }
  const uint8_t *p = r->at;
  r->at += n;
  return p;
}

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static uint32_t hash_key(uint8_t family, const uint8_t *addr, uint16_t port) {
  uint32_t h = 2166136261u; /* FNV-1a */
  size_t n = family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < n; i++) h = (h ^ addr[i]) * 16777619u;
  h = (h ^ (port & 0xff)) * 16777619u;
  h = (h ^ (port >> 8)) * 16777619u;
  return h ^ family;
}

static int same_key(const struct endpoint *e, uint8_t family, const uint8_t *addr, uint16_t port) {
  return e->family == family && e->port == port && memcmp(e->addr, addr, family == AF_INET ? 4 : 16) == 0;
}

static int find(const struct route_table *t, uint8_t family, const uint8_t *addr, uint16_t port) {
  if (t->n_slots == 0) return -1;
  for (uint32_t i = hash_key(family, addr, port) & (t->n_slots - 1);; i = (i + 1) & (t->n_slots - 1)) {
    int32_t at = t->slots[i];
    if (at < 0) return -1;
    if (same_key(&t->endpoints[at], family, addr, port)) return at;
  }
}

static int family_of(uint8_t encoded) { return encoded == 4 ? AF_INET : encoded == 6 ? AF_INET6 : -1; }

static void set_addr(struct sockaddr_storage *ss, socklen_t *len, int family, const uint8_t *addr, uint16_t port) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    memcpy(&v4->sin_addr, addr, 4);
    *len = sizeof *v4;
  } else {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    memcpy(&v6->sin6_addr, addr, 16);
    *len = sizeof *v6;
  }
}

static void table_free(struct route_table *t) {
  for (uint32_t i = 0; i < t->n_endpoints; i++) {
    free(t->endpoints[i].backends);
    free((char *)t->endpoints[i].service);
    free((char *)t->endpoints[i].traffic_target);
  }
  free(t->endpoints);
  free(t->slots);
  free(t);
}

static char *copy_string(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = 0;
  }
  return s;
}

struct route_table *route_table_parse(const uint8_t *bytes, size_t length, const char **error) {
  struct reader r = {bytes, bytes + length, 0};
  const uint8_t *h = take(&r, HEADER_BYTES);
  if (!h || memcmp(h, "OSMT", 4) != 0 || h[4] != 1 || h[5] > OUT_JS || h[6] > IN_JS) {
    *error = "not an encoded routing table (format 1)";
    return NULL;
  }
  uint32_t n = u32(h + 12);
  if (n > length / ENDPOINT_BYTES) {
    *error = "endpoint count larger than the table";
    return NULL;
  }
  struct route_table *t = calloc(1, sizeof *t);
  if (!t) goto oom;
  atomic_init(&t->refs, 1);
  t->outbound_other = h[5];
  t->inbound_mode = h[6];
  t->max_connections = u32(h + 8);
  t->endpoints = calloc(n ? n : 1, sizeof *t->endpoints);
  uint32_t slots = 1;
  while (slots < n * 2) slots <<= 1;
  t->n_slots = n ? slots : 0;
  t->slots = malloc(sizeof *t->slots * slots);
  if (!t->endpoints || !t->slots) goto oom;
  memset(t->slots, 0xff, sizeof *t->slots * slots);
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = take(&r, ENDPOINT_BYTES);
    if (!e) break;
    int family = family_of(e[0]);
    uint16_t n_backends = u16(e + 20), service_len = u16(e + 22), target_len = u16(e + 24);
    const uint8_t *service = take(&r, service_len), *target = take(&r, target_len);
    if (r.failed || family < 0) {
      *error = "endpoint truncated or of an unknown family";
      table_free(t);
      return NULL;
    }
    struct endpoint *ep = &t->endpoints[t->n_endpoints];
    ep->family = (uint8_t)family;
    ep->port = u16(e + 2);
    memcpy(ep->addr, e + 4, 16);
    atomic_init(&ep->cursor, 0);
    ep->service = copy_string(service, service_len);
    ep->traffic_target = target_len ? copy_string(target, target_len) : NULL;
    ep->backends = n_backends ? calloc(n_backends, sizeof *ep->backends) : NULL;
    t->n_endpoints++; /* counted now: table_free frees what was allocated so far */
    if (!ep->service || (target_len && !ep->traffic_target) || (n_backends && !ep->backends)) goto oom;
    ep->n_backends = n_backends;
    for (uint16_t b = 0; b < n_backends; b++) {
      const uint8_t *be = take(&r, BACKEND_BYTES);
      int bf = be ? family_of(be[0]) : -1;
      if (bf < 0) {
        *error = "backend truncated or of an unknown family";
        table_free(t);
        return NULL;
      }
      set_addr(&ep->backends[b].addr, &ep->backends[b].len, bf, be + 4, u16(be + 2));
    }
    /* First one wins for a duplicate ip:port, as buildRoutingTable keeps the first. */
    if (find(t, ep->family, ep->addr, ep->port) >= 0) continue;
    uint32_t s = hash_key(ep->family, ep->addr, ep->port) & (t->n_slots - 1);
    while (t->slots[s] >= 0) s = (s + 1) & (t->n_slots - 1);
    t->slots[s] = (int32_t)(t->n_endpoints - 1);
  }
  if (r.failed || r.at != r.end) {
    *error = r.failed ? "table truncated" : "bytes after the last endpoint";
    table_free(t);
    return NULL;
  }
  return t;
oom:
  if (t) table_free(t);
  *error = "out of memory";
  return NULL;
}

void route_table_ref(struct route_table *t) {
  if (t) atomic_fetch_add(&t->refs, 1);
}

void route_table_unref(struct route_table *t) {
  if (t && atomic_fetch_sub(&t->refs, 1) == 1) table_free(t);
}

/* An address and port of a sockaddr: 0 when it is not IPv4/IPv6. */
static int split(const struct sockaddr_storage *ss, uint8_t *family, const uint8_t **addr, uint16_t *port) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
    *family = AF_INET;
    *addr = (const uint8_t *)&v4->sin_addr;
    *port = ntohs(v4->sin_port);
    return 1;
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
    *family = AF_INET6;
    *addr = (const uint8_t *)&v6->sin6_addr;
    *port = ntohs(v6->sin6_port);
    return 1;
  }
  return 0;
}

static void refuse(struct decision *out, int reason) {
  out->kind = D_REFUSE;
  out->reason = reason;
}

/* Same order of checks as decide.ts: decideOutbound; inbound, data-plane.ts's limit check then decideInbound. */
void route_table_decide(struct route_table *t, int direction, const struct sockaddr_storage *original,
                        const struct sockaddr_storage *local, uint32_t active, struct decision *out) {
  memset(out, 0, sizeof *out);
  out->endpoint = -1;
  uint8_t family = 0, local_family = 0;
  const uint8_t *addr = NULL, *local_addr = NULL;
  uint16_t port = 0, local_port = 0;
  int have_original = split(original, &family, &addr, &port);
  int have_local = split(local, &local_family, &local_addr, &local_port);
  int not_redirected = have_original && have_local && family == local_family && port == local_port &&
                       memcmp(addr, local_addr, family == AF_INET ? 4 : 16) == 0;
  int at_limit = t != NULL && t->max_connections > 0 && active >= t->max_connections;
  if (!have_original) return refuse(out, R_NOT_REDIRECTED);
  if (direction == DIR_INBOUND) {
    if (at_limit) return refuse(out, R_CONNECTION_LIMIT);
    if (not_redirected) return refuse(out, R_NOT_REDIRECTED);
    if (t == NULL) return refuse(out, R_NO_CONFIG);
    if (t->inbound_mode == IN_JS) {
      out->kind = D_JS;
      return;
    }
    static const uint8_t loopback4[4] = {127, 0, 0, 1};
    static const uint8_t loopback6[16] = {[15] = 1};
    out->kind = D_PASSTHROUGH;
    set_addr(&out->upstream, &out->upstream_len, family, family == AF_INET ? loopback4 : loopback6, port);
    return;
  }
  if (t == NULL) return refuse(out, R_NO_CONFIG);
  if (not_redirected) return refuse(out, R_NOT_REDIRECTED);
  if (at_limit) return refuse(out, R_CONNECTION_LIMIT);
  int at = find(t, family, addr, port);
  if (at >= 0) {
    struct endpoint *ep = &t->endpoints[at];
    out->kind = D_MESH;
    out->endpoint = at;
    if (ep->n_backends == 0) {
      set_addr(&out->upstream, &out->upstream_len, family, addr, port);
    } else {
      unsigned cursor = atomic_fetch_add(&ep->cursor, 1) % ep->n_backends;
      out->upstream = ep->backends[cursor].addr;
      out->upstream_len = ep->backends[cursor].len;
    }
    return;
  }
  if (t->outbound_other == OUT_PASSTHROUGH) {
    out->kind = D_PASSTHROUGH;
    set_addr(&out->upstream, &out->upstream_len, family, addr, port);
  } else if (t->outbound_other == OUT_JS) {
    out->kind = D_JS;
  } else {
    refuse(out, R_EGRESS_DISABLED);
  }
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct route_table *current;

struct route_table *route_table_current(void) {
  pthread_mutex_lock(&current_lock);
  struct route_table *t = current;
  route_table_ref(t);
  pthread_mutex_unlock(&current_lock);
  return t;
}

void route_table_install(struct route_table *table) {
  pthread_mutex_lock(&current_lock);
  struct route_table *previous = current;
  current = table;
  pthread_mutex_unlock(&current_lock);
  route_table_unref(previous);
}

/* routeTableInstall(bytes | null): the table the relay threads decide with from their next accept on. */
napi_value route_table_install_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok) type = napi_undefined;
  if (type == napi_null) {
    route_table_install(NULL);
    return NULL;
  }
  void *data = NULL;
  size_t length = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "routeTableInstall(bytes) needs a Buffer or null");
    return NULL;
  }
  const char *error = "invalid";
  struct route_table *t = route_table_parse(data, length, &error);
  if (!t) {
    napi_throw_error(env, "EINVAL", error);
    return NULL;
  }
  route_table_install(t);
  return NULL;
}

static int parse_address(const char *text, uint16_t port, struct sockaddr_storage *ss) {
  uint8_t bytes[16];
  socklen_t len;
  if (inet_pton(AF_INET, text, bytes) == 1) set_addr(ss, &len, AF_INET, bytes, port);
  else if (inet_pton(AF_INET6, text, bytes) == 1) set_addr(ss, &len, AF_INET6, bytes, port);
  else return 0;
  return 1;
}

static napi_value string_or_undefined(napi_env env, const char *s) {
  napi_value v;
  if (s) napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  else napi_get_undefined(env, &v);
  return v;
}

/*
 * routeTableDecide(direction, originalAddress, originalPort, localAddress, localPort, active) →
 * [kind, reason, service, trafficTarget, upstreamAddress, upstreamPort]: the relay threads' decision with the
 * installed table, for the tests that run decide.ts's cases through both paths.
 */
napi_value route_table_decide_js(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t direction = 0, original_port = 0, local_port = 0;
  uint32_t active = 0;
  char original_text[64], local_text[64];
  size_t n;
  struct sockaddr_storage original, local;
  if (argc < 6 || napi_get_value_int32(env, argv[0], &direction) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], original_text, sizeof original_text, &n) != napi_ok ||
      napi_get_value_int32(env, argv[2], &original_port) != napi_ok ||
      napi_get_value_string_utf8(env, argv[3], local_text, sizeof local_text, &n) != napi_ok ||
      napi_get_value_int32(env, argv[4], &local_port) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &active) != napi_ok ||
      !parse_address(original_text, (uint16_t)original_port, &original) ||
      !parse_address(local_text, (uint16_t)local_port, &local)) {
    napi_throw_type_error(env, "EINVAL",
                          "routeTableDecide(direction, originalAddress, originalPort, localAddress, localPort, active)");
    return NULL;
  }
  struct route_table *t = route_table_current();
  struct decision d;
  route_table_decide(t, direction, &original, &local, active, &d);
  napi_value result, v;
  napi_create_array_with_length(env, 6, &result);
  napi_create_int32(env, d.kind, &v);
  napi_set_element(env, result, 0, v);
  napi_create_int32(env, d.reason, &v);
  napi_set_element(env, result, 1, v);
  const struct endpoint *ep = d.kind == D_MESH ? &t->endpoints[d.endpoint] : NULL;
  napi_set_element(env, result, 2, string_or_undefined(env, ep ? ep->service : NULL));
  napi_set_element(env, result, 3, string_or_undefined(env, ep ? ep->traffic_target : NULL));
  if (d.kind == D_MESH || d.kind == D_PASSTHROUGH) {
    char text[INET6_ADDRSTRLEN];
    uint8_t family = 0;
    const uint8_t *addr = NULL;
    uint16_t port = 0;
    split(&d.upstream, &family, &addr, &port);
    inet_ntop(family, addr, text, sizeof text);
    napi_set_element(env, result, 4, string_or_undefined(env, text));
    napi_create_int32(env, port, &v);
    napi_set_element(env, result, 5, v);
  }
  route_table_unref(t);
  return result;
}
