/*
 * bench_index_load.c - the listener's index load (m3b_index_load), the
 * way it is done now against the way it was, side by side in one run on a
 * real apiserver (bench/bench_index_load.sh fills it and says how to read
 * the numbers).
 *
 * Each measured run is a fresh process (fork) that makes a fresh kube
 * client and an empty index, as a starting listener or replay does, so
 * discovery and connection set-up are counted and the child's peak RSS
 * (getrusage) belongs to that run alone. Modes, alternated ROUNDS times
 * so both see the same load on a shared machine:
 *
 *   serial    m3b_index_load_kinds(DEFAULTS | SERIAL): one request at a
 *             time, JSON metadata pages of 500 (the old path)
 *   parallel  m3b_index_load_kinds(DEFAULTS): a few threads, protobuf
 *             metadata pages of 500 (the new path, what m3b_index_load
 *             does)
 *   list:F:P  m3b_kube_list_pages of one kind (--kind, default ConfigMap)
 *             in the first namespace, flags F (json | proto) and page
 *             size P, items counted and dropped: where the time goes
 *
 * Usage:
 *   bench_index_load --kubeconfig FILE --plane P --namespaces A,B,...
 *                    [--rounds R] [--expect N] [--json]
 *                    [--mode M]... (default: serial parallel)
 * Exit status 0; 1 when a load fails or loads other than --expect objects;
 * 2 on a usage error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <m3b/index.h>
#include <m3b/kube.h>
#include <m3b/log.h>

#include "bench_util.h"

#define MAX_MODES 16
#define MAX_NAMESPACES 64
#define MAX_ROUNDS 50

struct outcome {
  double ms;
  size_t objects;
  long rss_kb; /* the child's peak RSS */
  int failed;
};

struct opts {
  const char *kubeconfig, *plane, *kind;
  const char *namespaces[MAX_NAMESPACES];
  size_t namespace_count;
  const char *modes[MAX_MODES];
  size_t mode_count;
  int rounds, json;
  long expect;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static m3b_err_t count_page(json_t *items, void *opaque) {
  size_t *count = opaque;
  *count += json_array_size(items);
  json_decref(items); /* ConfigMaps: nothing secret to wipe */
  return M3B_OK;
}

/* The child: one run of mode. Returns its outcome. */
static struct outcome run_mode(const struct opts *o, const char *mode) {
  struct outcome out = {0, 0, 0, 1};
  struct m3b_kube_config cfg;
  struct m3b_kube_result result;
  char errstr[512];
  m3b_log_t *log = m3b_log_new(stderr, M3B_LOG_WARN);
  m3b_kube_t *kube = NULL;
  m3b_index_t *index = NULL;
  double t0 = now_ms();
  m3b_err_t err;

  m3b_kube_config_init(&cfg);
  if (m3b_kube_config_from_kubeconfig(&cfg, o->kubeconfig, NULL, errstr,
                                      sizeof(errstr)) != M3B_OK) {
    fprintf(stderr, "bench_index_load: %s\n", errstr);
    goto done;
  }
  kube = m3b_kube_new(&cfg, log, errstr, sizeof(errstr));
  index = m3b_index_new(errstr, sizeof(errstr));
  if (!kube || !index) {
    fprintf(stderr, "bench_index_load: %s\n", errstr);
    goto done;
  }
  memset(&result, 0, sizeof(result));
  if (strcmp(mode, "serial") == 0 || strcmp(mode, "parallel") == 0) {
    struct m3b_index_scope scope = {o->plane, o->namespaces, o->namespace_count,
                                    NULL, 0};
    unsigned flags = M3B_INDEX_LOAD_DEFAULTS;
    if (strcmp(mode, "serial") == 0)
      flags |= M3B_INDEX_LOAD_SERIAL;
    err = m3b_index_load_kinds(index, kube, &scope, flags, log, &out.objects,
                               &result);
  } else {
    struct m3b_kube_ref ref = {"v1", o->kind, o->namespaces[0], NULL};
    unsigned page = 0, flags = M3B_KUBE_LIST_METADATA;
    char format[16] = "";
    if (sscanf(mode, "list:%15[a-z]:%u", format, &page) != 2 ||
        (strcmp(format, "json") != 0 && strcmp(format, "proto") != 0)) {
      fprintf(stderr, "bench_index_load: unknown mode %s\n", mode);
      goto done;
    }
    if (strcmp(format, "proto") == 0)
      flags |= M3B_KUBE_LIST_COMPACT;
    err = m3b_kube_list_pages(
        kube, &ref, M3B_LABEL_MANAGED_BY "=" M3B_MANAGED_BY_VALUE, page, flags,
        count_page, &out.objects, NULL, 0, &result);
  }
  if (err) {
    fprintf(stderr, "bench_index_load: %s: %s: %s\n", mode, m3b_err_name(err),
            result.errstr);
    goto done;
  }
  out.failed = o->expect >= 0 && out.objects != (size_t)o->expect;
  if (out.failed)
    fprintf(stderr, "bench_index_load: %s loaded %zu objects, expected %ld\n",
            mode, out.objects, o->expect);
done:
  out.ms = now_ms() - t0;
  m3b_index_destroy(index);
  m3b_kube_destroy(kube);
  m3b_kube_config_cleanup(&cfg);
  m3b_log_destroy(log);
  return out;
}

/* Runs mode in a child; *rss_kb gets the child's peak RSS. */
static struct outcome fork_run(const struct opts *o, const char *mode,
                               long *rss_kb) {
  struct outcome out = {0, 0, 0, 1};
  struct rusage usage;
  int fds[2], status = 0;
  pid_t pid;

  *rss_kb = 0;
  if (pipe(fds) != 0)
    return out;
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return out;
  }
  if (pid == 0) {
    struct outcome child;
    close(fds[0]);
    child = run_mode(o, mode);
    if (getrusage(RUSAGE_SELF, &usage) == 0)
      child.rss_kb = usage.ru_maxrss;
    if (write(fds[1], &child, sizeof(child)) != (ssize_t)sizeof(child))
      _exit(1);
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], &out, sizeof(out)) != (ssize_t)sizeof(out))
    out.failed = 1;
  close(fds[0]);
  *rss_kb = out.rss_kb;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    out.failed = 1;
  return out;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench_index_load --kubeconfig FILE --plane P --namespaces "
          "A,B,... [--rounds R] [--expect N] [--kind K] [--json] "
          "[--mode serial|parallel|list:json:P|list:proto:P]...\n");
  return 2;
}

int main(int argc, char **argv) {
  static char ns_buf[4096];
  static double ms[MAX_MODES][MAX_ROUNDS];
  static long rss[MAX_MODES][MAX_ROUNDS];
  struct opts o;
  size_t objects[MAX_MODES];
  double median[MAX_MODES];
  int i, r, failed = 0;
  size_t m;

  memset(&o, 0, sizeof(o));
  o.rounds = 5;
  o.expect = -1;
  o.kind = "ConfigMap";
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--json") == 0) {
      o.json = 1;
      continue;
    }
    if (!v)
      return usage();
    i++;
    if (strcmp(a, "--kubeconfig") == 0) {
      o.kubeconfig = v;
    } else if (strcmp(a, "--plane") == 0) {
      o.plane = v;
    } else if (strcmp(a, "--kind") == 0) {
      o.kind = v;
    } else if (strcmp(a, "--rounds") == 0) {
      o.rounds = (int)strtol(v, NULL, 10);
    } else if (strcmp(a, "--expect") == 0) {
      o.expect = strtol(v, NULL, 10);
    } else if (strcmp(a, "--mode") == 0 && o.mode_count < MAX_MODES) {
      o.modes[o.mode_count++] = v;
    } else if (strcmp(a, "--namespaces") == 0 && strlen(v) < sizeof(ns_buf)) {
      char *p = ns_buf;
      memcpy(ns_buf, v, strlen(v) + 1);
      while (p && *p && o.namespace_count < MAX_NAMESPACES) {
        char *comma = strchr(p, ',');
        if (comma)
          *comma++ = '\0';
        if (*p)
          o.namespaces[o.namespace_count++] = p;
        p = comma;
      }
    } else {
      return usage();
    }
  }
  if (!o.kubeconfig || !o.plane || !o.namespace_count || o.rounds < 1 ||
      o.rounds > MAX_ROUNDS)
    return usage();
  if (!o.mode_count) {
    o.modes[o.mode_count++] = "serial";
    o.modes[o.mode_count++] = "parallel";
  }

  if (!o.json)
    bench_print_machine(stdout);
  memset(objects, 0, sizeof(objects));
  for (r = 0; r < o.rounds; r++) {
    for (m = 0; m < o.mode_count; m++) {
      struct outcome out = fork_run(&o, o.modes[m], &rss[m][r]);
      ms[m][r] = out.ms;
      objects[m] = out.objects;
      failed |= out.failed;
    }
  }
  for (m = 0; m < o.mode_count; m++) {
    double sorted[MAX_ROUNDS];
    long max_rss = 0;
    memcpy(sorted, ms[m], sizeof(double) * (size_t)o.rounds);
    qsort(sorted, (size_t)o.rounds, sizeof(double), cmp_double);
    median[m] = sorted[o.rounds / 2];
    for (r = 0; r < o.rounds; r++)
      if (rss[m][r] > max_rss)
        max_rss = rss[m][r];
    if (o.json) {
      printf("{\"mode\":\"%s\",\"objects\":%zu,\"median_ms\":%.1f,"
             "\"min_ms\":%.1f,\"max_ms\":%.1f,\"peak_rss_kb\":%ld}\n",
             o.modes[m], objects[m], median[m], sorted[0], sorted[o.rounds - 1],
             max_rss);
    } else {
      printf("%-16s %7zu objects  median %8.1f ms  min %8.1f  max %8.1f  "
             "peak RSS %6ld KB  rounds:",
             o.modes[m], objects[m], median[m], sorted[0], sorted[o.rounds - 1],
             max_rss);
      for (r = 0; r < o.rounds; r++)
        printf(" %.0f", ms[m][r]);
      printf("\n");
    }
  }
  if (!o.json && o.mode_count >= 2)
    for (m = 1; m < o.mode_count; m++)
      printf("ratio %s / %s (median time): %.2f\n", o.modes[0], o.modes[m],
             median[0] / median[m]);
  return failed ? 1 : 0;
}
