/*
 * osm-nft-batch: nft work in other network namespaces from one long-lived process. Per request it enters the
 * namespace (setns) and does one of:
 *   t / T  runs the text as one nft transaction (or listing; T: terse, sets without elements), as `nft -f -`
 *          would, through libnftables (the library the nft command is built on, loaded with dlopen: no
 *          headers needed), with a fresh context (its netlink socket is opened in that namespace);
 *   n      sends the body, an nf_tables netlink batch the caller built once for every pod, as it is: no
 *          parsing per pod, only the kernel's work. Succeeds when the kernel reported no error and
 *          acknowledged every message that asked for it (NLM_F_ACK); a batch is one transaction, all or
 *          nothing;
 *   d      digests of sets of an inet table (body: "<table>\n<set>\n<set>…"), dumped over netlink: one line
 *          per set, "<set> <count> <sum>", over the elements that do not end an interval: how many, and the
 *          sum modulo 2^64 of the FNV-1a 64 hash of each one's key bytes, in hex. No text per element, so
 *          far cheaper than a listing;
 *   g      the namespace's nf_tables generation (one line): the kernel adds one per committed transaction,
 *          whoever made it, so an unchanged generation means unchanged rules.
 * A process per change (`nsenter` + `nft`) costs milliseconds; this costs what the kernel does.
 *
 * stdin, per request:  "<netns path>\t<mode>\t<byte length>\n<body>"
 * stdout, per request: "<exit code> <stdout length> <stderr length>\n<stdout><stderr>"
 * An unreadable request ends the process (exit 2); a namespace that cannot be entered is that request's
 * error. After each request it returns to its own namespace with every socket closed, so it never keeps a
 * pod's alive (a deleted pod's namespace, and the veth in it, go at once); failing to return ends it (exit
 * 4). Runs as root (CAP_SYS_ADMIN for setns, CAP_NET_ADMIN for nft and SO_SNDBUFFORCE).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* libnftables' NFT_CTX_OUTPUT_TERSE: list sets without their elements (`nft -t`). */
#define OUTPUT_TERSE (1u << 11)

struct nft_ctx;
static struct nft_ctx *(*ctx_new)(uint32_t);
static void (*ctx_free)(struct nft_ctx *);
static int (*buffer_output)(struct nft_ctx *);
static int (*buffer_error)(struct nft_ctx *);
static const char *(*get_output)(struct nft_ctx *);
static const char *(*get_error)(struct nft_ctx *);
static void (*set_flags)(struct nft_ctx *, unsigned int);
static int (*run_buffer)(struct nft_ctx *, const char *);

static void *need(void *lib, const char *name) {
  void *f = dlsym(lib, name);
  if (!f) {
    fprintf(stderr, "osm-nft-batch: libnftables has no %s\n", name);
    exit(3);
  }
  return f;
}

static void reply(int code, const char *out, const char *err) {
  size_t o = strlen(out), e = strlen(err);
  printf("%d %zu %zu\n", code, o, e);
  fwrite(out, 1, o, stdout);
  fwrite(err, 1, e, stdout);
  fflush(stdout);
}

/* Mode t / T: the text through libnftables. */
static int run_text(const char *text, int terse, char **out, char **err) {
  struct nft_ctx *ctx = ctx_new(0);
  if (!ctx) {
    *err = strdup("osm-nft-batch: nft_ctx_new failed\n");
    return 1;
  }
  buffer_output(ctx);
  buffer_error(ctx);
  set_flags(ctx, terse ? OUTPUT_TERSE : 0);
  int rc = run_buffer(ctx, text);
  const char *o = get_output(ctx), *e = get_error(ctx);
  *out = strdup(o ? o : "");
  *err = strdup(e ? e : "");
  ctx_free(ctx); /* closes its netlink socket, which holds the pod's namespace too */
  return rc == 0 ? 0 : 1;
}

/* A netlink socket of the nf_tables subsystem in the current namespace, able to send `bytes` at once. */
static int nfnl_socket(size_t bytes) {
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (sock < 0) return -1;
  int one = 1, size = (int)bytes + 65536;
  setsockopt(sock, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one); /* errors without the request */
  setsockopt(sock, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);  /* and with the kernel's reason */
  if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
    close(sock);
    return -1;
  }
  return sock;
}

static const struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};

#define ATTR_DATA(a) ((const char *)(a) + NLA_HDRLEN)
#define ATTR_END(a) ((const char *)(a) + (a)->nla_len)

/* The first attribute of `type` among those in [p, end), or NULL. */
static const struct nlattr *find_attr(const char *p, const char *end, unsigned short type) {
  while (p + NLA_HDRLEN <= end) {
    const struct nlattr *a = (const struct nlattr *)p;
    if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end) return NULL;
    if ((a->nla_type & NLA_TYPE_MASK) == type) return a;
    p += NLA_ALIGN(a->nla_len);
  }
  return NULL;
}

/* Mode n: 0 when no message failed and every one asking for an ack got one; else 1 and `why`. */
static int send_batch(const char *batch, size_t length, char *why, size_t why_size) {
  size_t expected = 0;
  for (size_t off = 0; off + NLMSG_HDRLEN <= length;) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)(batch + off);
    if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > length) break;
    if (h->nlmsg_flags & NLM_F_ACK) expected++;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  int sock = nfnl_socket(length);
  if (sock < 0) {
    snprintf(why, why_size, "osm-nft-batch: netlink socket: %s\n", strerror(errno));
    return 1;
  }
  if (sendto(sock, batch, length, 0, (const struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)length) {
    snprintf(why, why_size, "osm-nft-batch: netlink send: %s\n", strerror(errno));
    close(sock);
    return 1;
  }
  /* The kernel runs the whole batch inside sendto: every answer is queued by now. */
  static char buf[65536];
  size_t acked = 0;
  int failed = 0;
  for (;;) {
    ssize_t n = recv(sock, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      snprintf(why, why_size, "osm-nft-batch: netlink receive: %s\n", strerror(errno));
      failed = 1;
      break;
    }
    size_t left = (size_t)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      const struct nlmsgerr *e = NLMSG_DATA(h);
      acked++;
      if (e->error == 0 || failed) continue;
      failed = 1;
      const struct nlattr *msg = find_attr((const char *)(e + 1), (const char *)h + h->nlmsg_len, NLMSGERR_ATTR_MSG);
      snprintf(why, why_size, "osm-nft-batch: the kernel rejected the batch (message %u): %s%s%s\n",
               e->msg.nlmsg_seq, strerror(-e->error), msg ? ": " : "", msg ? ATTR_DATA(msg) : "");
    }
  }
  close(sock);
  if (!failed && acked != expected) {
    snprintf(why, why_size, "osm-nft-batch: %zu of %zu netlink acks\n", acked, expected);
    failed = 1;
  }
  return failed;
}

static size_t put_attr(char *p, unsigned short type, const char *text) {
  size_t length = strlen(text) + 1;
  struct nlattr *a = (struct nlattr *)p;
  a->nla_type = type;
  a->nla_len = (unsigned short)(NLA_HDRLEN + length);
  memcpy(p + NLA_HDRLEN, text, length);
  return NLA_HDRLEN + NLA_ALIGN(length);
}

/* Adds one dump message's elements to the count and sum (interval ends left out). */
static void digest_elements(const struct nlmsghdr *m, size_t *count, uint64_t *sum) {
  const char *attrs = (const char *)NLMSG_DATA(m) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
  const struct nlattr *list = find_attr(attrs, (const char *)m + m->nlmsg_len, NFTA_SET_ELEM_LIST_ELEMENTS);
  if (!list) return;
  for (const char *p = ATTR_DATA(list); p + NLA_HDRLEN <= ATTR_END(list);) {
    const struct nlattr *elem = (const struct nlattr *)p;
    if (elem->nla_len < NLA_HDRLEN) return;
    p += NLA_ALIGN(elem->nla_len);
    const struct nlattr *flags = find_attr(ATTR_DATA(elem), ATTR_END(elem), NFTA_SET_ELEM_FLAGS);
    uint32_t f = 0;
    if (flags) memcpy(&f, ATTR_DATA(flags), sizeof f);
    if (ntohl(f) & NFT_SET_ELEM_INTERVAL_END) continue;
    const struct nlattr *key = find_attr(ATTR_DATA(elem), ATTR_END(elem), NFTA_SET_ELEM_KEY);
    const struct nlattr *value = key ? find_attr(ATTR_DATA(key), ATTR_END(key), NFTA_DATA_VALUE) : NULL;
    if (!value) continue;
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char *b = ATTR_DATA(value); b < ATTR_END(value); b++)
      hash = (hash ^ (unsigned char)*b) * 0x100000001b3ULL;
    *sum += hash;
    (*count)++;
  }
}

/* Mode d, one set: 0 with its count and sum, or 1 and `why`. */
static int digest_set(const char *table, const char *set, size_t *count, uint64_t *sum, char *why,
                      size_t why_size) {
  if (strlen(table) > 200 || strlen(set) > 200) {
    snprintf(why, why_size, "osm-nft-batch: a table or set name longer than 200 bytes\n");
    return 1;
  }
  int sock = nfnl_socket(0);
  if (sock < 0) {
    snprintf(why, why_size, "osm-nft-batch: netlink socket: %s\n", strerror(errno));
    return 1;
  }
  char req[512] = {0};
  struct nlmsghdr *h = (struct nlmsghdr *)req;
  h->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h->nlmsg_seq = 1;
  struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(h);
  g->nfgen_family = NFPROTO_INET;
  g->version = NFNETLINK_V0;
  size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *g);
  len += put_attr(req + len, NFTA_SET_ELEM_LIST_TABLE, table);
  len += put_attr(req + len, NFTA_SET_ELEM_LIST_SET, set);
  h->nlmsg_len = (unsigned int)len;
  if (sendto(sock, req, len, 0, (const struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)len) {
    snprintf(why, why_size, "osm-nft-batch: netlink send: %s\n", strerror(errno));
    close(sock);
    return 1;
  }
  static char buf[131072];
  *count = 0;
  *sum = 0;
  for (;;) {
    ssize_t n = recv(sock, buf, sizeof buf, 0);
    if (n < 0) {
      snprintf(why, why_size, "osm-nft-batch: netlink receive: %s\n", strerror(errno));
      close(sock);
      return 1;
    }
    size_t left = (size_t)n;
    for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
      if (m->nlmsg_type == NLMSG_DONE) {
        close(sock);
        return 0;
      }
      if (m->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(m);
        snprintf(why, why_size, "osm-nft-batch: set inet %s %s: %s\n", table, set, strerror(-e->error));
        close(sock);
        return 1;
      }
      digest_elements(m, count, sum);
    }
  }
}

/* Mode g: the generation, as text in `out`; 0, or 1 and `why`. */
static int generation(char **out, char *why, size_t why_size) {
  int sock = nfnl_socket(0);
  if (sock < 0) {
    snprintf(why, why_size, "osm-nft-batch: netlink socket: %s\n", strerror(errno));
    return 1;
  }
  char req[NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg))] = {0};
  struct nlmsghdr *h = (struct nlmsghdr *)req;
  h->nlmsg_len = sizeof req;
  h->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  h->nlmsg_flags = NLM_F_REQUEST;
  h->nlmsg_seq = 1;
  static char buf[8192];
  ssize_t n = -1;
  if (sendto(sock, req, sizeof req, 0, (const struct sockaddr *)&kernel, sizeof kernel) == (ssize_t)sizeof req)
    n = recv(sock, buf, sizeof buf, 0);
  close(sock);
  if (n < 0) {
    snprintf(why, why_size, "osm-nft-batch: netlink: %s\n", strerror(errno));
    return 1;
  }
  const struct nlmsghdr *m = (const struct nlmsghdr *)buf;
  if (NLMSG_OK(m, (size_t)n) && m->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) {
    const char *attrs = (const char *)NLMSG_DATA(m) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    const struct nlattr *id = find_attr(attrs, (const char *)m + m->nlmsg_len, NFTA_GEN_ID);
    if (id) {
      uint32_t v;
      memcpy(&v, ATTR_DATA(id), sizeof v);
      *out = malloc(16);
      if (*out) snprintf(*out, 16, "%u\n", ntohl(v));
      return *out ? 0 : 1;
    }
  }
  snprintf(why, why_size, "osm-nft-batch: no generation in the kernel's answer\n");
  return 1;
}

/* Mode d: one line per set named in the body (after the table's line). */
static int digest_sets(char *body, char **out, char *why, size_t why_size) {
  char *table = strtok(body, "\n");
  if (!table) {
    snprintf(why, why_size, "osm-nft-batch: a digest request names no table\n");
    return 1;
  }
  size_t cap = 4096, used = 0;
  *out = calloc(1, cap);
  if (!*out) return 1;
  for (char *set = strtok(NULL, "\n"); set; set = strtok(NULL, "\n")) {
    size_t count;
    uint64_t sum;
    if (digest_set(table, set, &count, &sum, why, why_size) != 0) return 1;
    if (used + strlen(set) + 64 > cap) {
      cap = 2 * (cap + strlen(set) + 64);
      char *grown = realloc(*out, cap);
      if (!grown) return 1;
      *out = grown;
    }
    used += (size_t)sprintf(*out + used, "%s %zu %016llx\n", set, count, (unsigned long long)sum);
  }
  return 0;
}

int main(void) {
  void *lib = dlopen("libnftables.so.1", RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "osm-nft-batch: %s\n", dlerror());
    return 3;
  }
  ctx_new = need(lib, "nft_ctx_new");
  ctx_free = need(lib, "nft_ctx_free");
  buffer_output = need(lib, "nft_ctx_buffer_output");
  buffer_error = need(lib, "nft_ctx_buffer_error");
  get_output = need(lib, "nft_ctx_get_output_buffer");
  get_error = need(lib, "nft_ctx_get_error_buffer");
  set_flags = need(lib, "nft_ctx_output_set_flags");
  run_buffer = need(lib, "nft_run_cmd_from_buffer");

  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    perror("osm-nft-batch: /proc/self/ns/net");
    return 3;
  }
  char header[4200];
  while (fgets(header, sizeof header, stdin)) {
    char *tab1 = strchr(header, '\t');
    char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2) return 2;
    *tab1 = '\0';
    char mode = tab1[1];
    size_t length = strtoul(tab2 + 1, NULL, 10);
    char *body = malloc(length + 1);
    if (!body || fread(body, 1, length, stdin) != length) return 2;
    body[length] = '\0';

    int fd = open(header, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      char message[4400];
      snprintf(message, sizeof message, "osm-nft-batch: cannot enter %s: %s\n", header, strerror(errno));
      if (fd >= 0) close(fd);
      free(body);
      reply(1, "", message);
      continue;
    }
    close(fd);
    int code = 1;
    char *out = NULL, *err = NULL;
    char why[1024] = "";
    if (mode == 't' || mode == 'T')
      code = run_text(body, mode == 'T', &out, &err);
    else if (mode == 'n')
      code = send_batch(body, length, why, sizeof why);
    else if (mode == 'd')
      code = digest_sets(body, &out, why, sizeof why);
    else if (mode == 'g')
      code = generation(&out, why, sizeof why);
    else
      snprintf(why, sizeof why, "osm-nft-batch: unknown mode '%c'\n", mode);
    free(body);
    if (setns(home, CLONE_NEWNET) != 0) {
      perror("osm-nft-batch: returning to its own network namespace");
      return 4;
    }
    reply(code, out ? out : "", err ? err : why);
    free(out);
    free(err);
  }
  return 0;
}
