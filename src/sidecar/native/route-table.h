/*
 * The routing table the relay threads decide with: a compiled form of decide.ts's RoutingTable, pushed by JS
 * on every config change (native-table.ts encodes it, route-table.c parses it). Shared by route-table.c
 * (parse, lookup) and splice-relay.c (accept, connect).
 */
#ifndef OSM_ROUTE_TABLE_H
#define OSM_ROUTE_TABLE_H
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

enum { DIR_OUTBOUND = 0, DIR_INBOUND = 1 };
/* What becomes of a connection; D_JS: decided in JS (the fd is handed over). */
enum { D_MESH = 0, D_PASSTHROUGH = 1, D_REFUSE = 2, D_JS = 3 };
/* decide.ts's RefuseReason values the table can produce (R_NONE when not refused). */
enum { R_NONE = 0, R_EGRESS_DISABLED, R_CONNECTION_LIMIT, R_NO_CONFIG, R_NOT_REDIRECTED };
/* A non-mesh outbound destination: refused (egress off, no Egress policy), passed through (egress on), or JS
 * (Egress policies decide). Inbound: to the app over loopback (permissive) or JS (access control). */
enum { OUT_REFUSE = 0, OUT_PASSTHROUGH = 1, OUT_JS = 2 };
enum { IN_LOOPBACK = 0, IN_JS = 1 };

struct backend {
  struct sockaddr_storage addr;
  socklen_t len;
};

struct endpoint {
  uint8_t family; /* AF_INET or AF_INET6 */
  uint8_t addr[16];
  uint16_t port;
  uint16_t n_backends;
  struct backend *backends;
  const char *service;
  const char *traffic_target; /* NULL in permissive mode */
  atomic_uint cursor;         /* round robin over backends, shared by the relay threads */
};

struct route_table {
  atomic_int refs;
  uint32_t max_connections; /* 0 = unlimited */
  uint8_t outbound_other, inbound_mode;
  uint32_t n_endpoints, n_slots;
  struct endpoint *endpoints;
  int32_t *slots; /* open addressing: index into endpoints, -1 empty */
};

struct decision {
  int kind, reason;
  int endpoint; /* D_MESH: index into endpoints */
  struct sockaddr_storage upstream;
  socklen_t upstream_len;
};

/* Parses an encoded table; NULL with *error set when the bytes are not a valid table. */
struct route_table *route_table_parse(const uint8_t *bytes, size_t length, const char **error);
void route_table_ref(struct route_table *table);
void route_table_unref(struct route_table *table);
/* decideOutbound / decideInbound (the parts the table covers) for one accepted connection. `table` NULL:
 * no config yet. `active`: connections open before this one. */
void route_table_decide(struct route_table *table, int direction, const struct sockaddr_storage *original,
                        const struct sockaddr_storage *local, uint32_t active, struct decision *out);

/* The table in force for the relay threads (a counted reference; NULL before the first config). */
struct route_table *route_table_current(void);
/* Installs `table` (taking the caller's reference) and drops the previous one. */
void route_table_install(struct route_table *table);

const char *errno_name(int err);
#endif
