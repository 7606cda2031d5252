/*
 * testbed_env.c - reads the test bed's env file for integration tests
 * (see testbed_env.h).
 */
#include "testbed_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define TB_MAX_VARS 128
#define TB_LINE_MAX 4096

struct tb_var {
  char *key;
  char *value;
};

static struct tb_var tb_vars[TB_MAX_VARS];
static size_t tb_nvars;
static int tb_loaded;

/* $M3B_TESTBED_DIR wins; ctest passes the build's default (the source
 * tree's .testbed) as $M3B_TESTBED_DIR_DEFAULT. */
static const char *tb_dir(void) {
  const char *dir = getenv("M3B_TESTBED_DIR");
  if (dir && *dir)
    return dir;
  dir = getenv("M3B_TESTBED_DIR_DEFAULT");
  return dir && *dir ? dir : ".testbed";
}

static void tb_load(void) {
  char path[1024];
  char line[TB_LINE_MAX];
  FILE *f;

  if (tb_loaded)
    return;
  tb_loaded = 1;
  snprintf(path, sizeof(path), "%s/env", tb_dir());
  f = fopen(path, "r");
  if (!f)
    fail_msg("the test bed is not up: %s is missing.\n"
             "Start it with `tests/testbed/testbed up` (or run the README's "
             "test command, which does).",
             path);
  while (fgets(line, sizeof(line), f) && tb_nvars < TB_MAX_VARS) {
    char *eq = strchr(line, '=');
    size_t n = strlen(line);
    if (line[0] == '#' || !eq)
      continue;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = 0;
    *eq = 0;
    tb_vars[tb_nvars].key = strdup(line);
    tb_vars[tb_nvars].value = strdup(eq + 1);
    tb_nvars++;
  }
  fclose(f);
}

const char *tb_require(const char *key) {
  const char *value = getenv(key);
  size_t i;
  if (value && *value)
    return value;
  tb_load();
  for (i = 0; i < tb_nvars; i++)
    if (strcmp(tb_vars[i].key, key) == 0)
      return tb_vars[i].value;
  fail_msg("the test bed's env (%s/env) has no %s; is the test bed up and "
           "of this version? Restart it: tests/testbed/testbed down && "
           "tests/testbed/testbed up",
           tb_dir(), key);
  return NULL;
}

/* Files read once are kept (reachable, so not leaks) for the process. */
#define TB_MAX_FILES 32
static struct tb_var tb_files[TB_MAX_FILES];
static size_t tb_nfiles;

const char *tb_read_file(const char *path) {
  char buf[8192];
  size_t n, i;
  FILE *f;

  for (i = 0; i < tb_nfiles; i++)
    if (strcmp(tb_files[i].key, path) == 0)
      return tb_files[i].value;
  if (tb_nfiles == TB_MAX_FILES)
    fail_msg("tb_read_file: more than %d distinct files", TB_MAX_FILES);
  f = fopen(path, "r");
  if (!f)
    fail_msg("cannot read %s (from the test bed's env); is the test bed up?",
             path);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = 0;
  tb_files[tb_nfiles].key = strdup(path);
  tb_files[tb_nfiles].value = strdup(buf);
  if (!tb_files[tb_nfiles].key || !tb_files[tb_nfiles].value)
    fail_msg("out of memory");
  return tb_files[tb_nfiles++].value;
}

void tb_require_reachable(const char *what, const char *host_port,
                          int timeout_ms) {
  char host[256];
  const char *colon = strrchr(host_port, ':');
  struct sockaddr_in addr;
  struct pollfd pfd;
  int fd, rc, soerr = 0;
  socklen_t len = sizeof(soerr);

  if (!colon || (size_t)(colon - host_port) >= sizeof(host))
    fail_msg("malformed address '%s' for %s", host_port, what);
  memcpy(host, host_port, (size_t)(colon - host_port));
  host[colon - host_port] = 0;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
  if (inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1",
                &addr.sin_addr) != 1)
    fail_msg("address '%s' for %s is not an IPv4 literal", host_port, what);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    fail_msg("socket() failed");
  fcntl(fd, F_SETFL, O_NONBLOCK);
  rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
  if (rc != 0) {
    pfd.fd = fd;
    pfd.events = POLLOUT;
    rc = poll(&pfd, 1, timeout_ms);
    if (rc == 1)
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    rc = (rc == 1 && soerr == 0) ? 0 : -1;
  }
  close(fd);
  if (rc != 0)
    fail_msg("%s at %s is not reachable. Is the test bed up? Check with "
             "`tests/testbed/testbed status`; start it with "
             "`tests/testbed/testbed up`.",
             what, host_port);
}

m3b_kube_t *tb_kube_client(const char *kubeconfig_var, m3b_log_t *log) {
  struct m3b_kube_config cfg;
  char errstr[512] = "";
  m3b_kube_t *kube;

  m3b_kube_config_init(&cfg);
  if (m3b_kube_config_from_kubeconfig(&cfg, tb_require(kubeconfig_var), NULL,
                                      errstr, sizeof(errstr)))
    fail_msg("%s: %s", kubeconfig_var, errstr);
  kube = m3b_kube_new(&cfg, log, errstr, sizeof(errstr));
  m3b_kube_config_cleanup(&cfg);
  if (!kube)
    fail_msg("m3b_kube_new: %s", errstr);
  return kube;
}
