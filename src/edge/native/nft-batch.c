/*
 * osm-nft-batch: runs nft commands in other network namespaces from one long-lived process, through
 * libnftables (the library the nft command is built on, loaded with dlopen: no headers needed). Per request it
 * enters the namespace (setns) and runs the text as one nft transaction, as `nft -f -` would, with a fresh
 * context (its netlink socket is opened in that namespace). A process per change (`nsenter` + `nft`) costs
 * milliseconds; this costs what the kernel does.
 *
 * stdin, per request:  "<netns path>\t<output flags>\t<byte length>\n<command text>"
 * stdout, per request: "<exit code> <stdout length> <stderr length>\n<stdout><stderr>"
 * An unreadable request ends the process (exit 2); a namespace that cannot be entered is that request's
 * error. After each request it returns to its own namespace, so it never keeps a pod's alive (a deleted
 * pod's namespace, and the veth in it, go at once); failing to return ends it (exit 4). Runs as root
 * (CAP_SYS_ADMIN for setns, CAP_NET_ADMIN for nft).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    unsigned int flags = (unsigned int)strtoul(tab1 + 1, NULL, 10);
    size_t length = strtoul(tab2 + 1, NULL, 10);
    char *text = malloc(length + 1);
    if (!text || fread(text, 1, length, stdin) != length) return 2;
    text[length] = '\0';

    int fd = open(header, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      char message[4400];
      snprintf(message, sizeof message, "osm-nft-batch: cannot enter %s: %s\n", header, strerror(errno));
      if (fd >= 0) close(fd);
      free(text);
      reply(1, "", message);
      continue;
    }
    close(fd);
    struct nft_ctx *ctx = ctx_new(0);
    if (!ctx) {
      free(text);
      if (setns(home, CLONE_NEWNET) != 0) return 4;
      reply(1, "", "osm-nft-batch: nft_ctx_new failed\n");
      continue;
    }
    buffer_output(ctx);
    buffer_error(ctx);
    set_flags(ctx, flags);
    int rc = run_buffer(ctx, text);
    const char *out = get_output(ctx), *err = get_error(ctx);
    int code = rc == 0 ? 0 : 1;
    char *out_copy = strdup(out ? out : ""), *err_copy = strdup(err ? err : "");
    ctx_free(ctx); /* closes its netlink socket, which holds the pod's namespace too */
    free(text);
    if (setns(home, CLONE_NEWNET) != 0) {
      perror("osm-nft-batch: returning to its own network namespace");
      return 4;
    }
    reply(code, out_copy ? out_copy : "", err_copy ? err_copy : "");
    free(out_copy);
    free(err_copy);
  }
  return 0;
}
