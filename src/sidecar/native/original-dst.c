/*
 * osm-ts sidecar native addon (Node-API, ABI-stable across Node versions).
 *
 * originalDst(fd, family): the destination a connection had before iptables REDIRECT rewrote it, read from
 *   conntrack with getsockopt(SOL_IP, SO_ORIGINAL_DST) for IPv4 sockets or
 *   getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) for IPv6 sockets (linux/netfilter_ipv4.h, netfilter_ipv6/ip6_tables.h).
 *   Returns { address, port } or throws an Error whose `code` is the errno name (ENOENT: no conntrack entry,
 *   i.e. the connection was not redirected).
 *
 * mallocTrim(): glibc malloc_trim(0) (see below).
 *
 * socketError(fd): the socket's pending error (getsockopt SO_ERROR, which clears it) as an errno number, 0 if
 *   none: how the JS relay sees a reset on a socket Node no longer reads (see relay.ts).
 *
 * Why hand-written: no maintained npm package exposes these socket options (see README.md).
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h; same value as SO_ORIGINAL_DST */
#endif

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  const char *name = "EUNKNOWN";
  switch (err) {
    case ENOENT: name = "ENOENT"; break;
    case EBADF: name = "EBADF"; break;
    case ENOTSOCK: name = "ENOTSOCK"; break;
    case ENOPROTOOPT: name = "ENOPROTOOPT"; break;
    case EINVAL: name = "EINVAL"; break;
    case ENOTCONN: name = "ENOTCONN"; break;
    default: break;
  }
  char message[160];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value code, msg, error;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "EINVAL", "originalDst(fd, family) takes two numbers");
    return NULL;
  }
  int32_t fd = -1, family = 0;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &family) != napi_ok ||
      (family != 4 && family != 6)) {
    napi_throw_type_error(env, "EINVAL", "originalDst(fd, family): fd must be a number and family 4 or 6");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN];
  unsigned port;
  if (family == 4) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0) return throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)");
    inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text);
    port = ntohs(sa.sin_port);
  } else {
    struct sockaddr_in6 sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0)
      return throw_errno(env, errno, "getsockopt(IP6T_SO_ORIGINAL_DST)");
    inet_ntop(AF_INET6, &sa.sin6_addr, text, sizeof text);
    port = ntohs(sa.sin6_port);
  }
  napi_value result, address, port_value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_uint32(env, port, &port_value);
  napi_set_named_property(env, result, "address", address);
  napi_set_named_property(env, result, "port", port_value);
  return result;
}

/* mallocTrim(): glibc malloc_trim(0), returning freed heap pages to the kernel. Called once after startup,
   when module loading and compilation have freed a lot of memory that glibc would otherwise keep. */
static napi_value malloc_trim_js(napi_env env, napi_callback_info info) {
  napi_value result;
  napi_get_boolean(env, malloc_trim(0) == 1, &result);
  return result;
}

static napi_value socket_error(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "socketError(fd) needs a file descriptor");
    return NULL;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  napi_create_int32(env, err, &result);
  return result;
}

/* splice-relay.c */
napi_value relay_start(napi_env env, napi_callback_info info);
napi_value relay_pair(napi_env env, napi_callback_info info);
napi_value relay_connect(napi_env env, napi_callback_info info);
napi_value relay_abort_all(napi_env env, napi_callback_info info);
napi_value relay_stop(napi_env env, napi_callback_info info);
napi_value relay_listen(napi_env env, napi_callback_info info);
napi_value relay_unlisten(napi_env env, napi_callback_info info);
napi_value relay_open(napi_env env, napi_callback_info info);
napi_value relay_handoff_done(napi_env env, napi_callback_info info);
/* route-table.c */
napi_value route_table_install_js(napi_env env, napi_callback_info info);
napi_value route_table_decide_js(napi_env env, napi_callback_info info);

#define EXPORT(name, fn)                                                \
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &value); \
  napi_set_named_property(env, exports, name, value)

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value value;
  EXPORT("relayStart", relay_start);
  EXPORT("relayPair", relay_pair);
  EXPORT("relayConnect", relay_connect);
  EXPORT("relayAbortAll", relay_abort_all);
  EXPORT("relayStop", relay_stop);
  EXPORT("relayListen", relay_listen);
  EXPORT("relayUnlisten", relay_unlisten);
  EXPORT("relayOpen", relay_open);
  EXPORT("relayHandoffDone", relay_handoff_done);
  EXPORT("routeTableInstall", route_table_install_js);
  EXPORT("routeTableDecide", route_table_decide_js);
  EXPORT("originalDst", original_dst);
  EXPORT("mallocTrim", malloc_trim_js);
  EXPORT("socketError", socket_error);
  return exports;
}
