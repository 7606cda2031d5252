/*
 * cmd_publish.c - `m3bridge-publisher publish` and `delete`: one release of
 * manifests (or of deletes) in one Kafka transaction, with a per-object
 * report and a non-zero exit naming what was not published.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <m3b/cli.h>
#include <m3b/config.h>
#include <m3b/log.h>
#include <m3b/manifest.h>
#include <m3b/publisher.h>

#include "commands.h"

#define MAX_DOCS 100000

static void print_results(const m3b_publisher_t *publisher, int json,
                          const char *verb) {
  size_t count, i, failed = 0;
  const char *release;
  const struct m3b_publish_result *results =
      m3b_publisher_results(publisher, &count, &release);

  for (i = 0; i < count; i++)
    failed += results[i].err != M3B_OK;
  if (json) {
    printf("{\"release\":\"%s\",\"objects\":[", release);
    for (i = 0; i < count; i++)
      printf("%s{\"key\":\"%s\",\"generation\":%lld,\"partition\":%d,"
             "\"offset\":%lld,\"result\":\"%s\"}",
             i ? "," : "", results[i].key, (long long)results[i].generation,
             (int)results[i].partition, (long long)results[i].offset,
             results[i].err ? m3b_err_name(results[i].err) : "OK");
    printf("]}\n");
    return;
  }
  printf("release %s: %zu object(s) %s, %zu not\n", release, count - failed,
         verb, failed);
  printf("%-60s %-18s %9s %10s  %s\n", "KEY", "GENERATION", "PARTITION",
         "OFFSET", "RESULT");
  for (i = 0; i < count; i++)
    printf("%-60s %-18lld %9d %10lld  %s\n", results[i].key,
           (long long)results[i].generation, (int)results[i].partition,
           (long long)results[i].offset,
           results[i].err ? m3b_err_str(results[i].err) : "published");
}

/* Common start: configuration, logger, publisher. */
static m3b_publisher_t *open_publisher(int *argc, char **argv,
                                       m3b_config_t **config_out,
                                       m3b_log_t **log_out) {
  char errstr[1024];
  m3b_config_t *config;
  m3b_publisher_t *publisher;

  *config_out = NULL;
  *log_out = NULL;
  config =
      m3b_cli_config(M3B_PROGRAM_PUBLISHER, argc, argv, errstr, sizeof(errstr));
  if (!config) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    return NULL;
  }
  *log_out = m3b_cli_logger(config);
  publisher = m3b_publisher_new(config, *log_out, errstr, sizeof(errstr));
  if (!publisher) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    m3b_log_destroy(*log_out);
    m3b_config_destroy(config);
    *log_out = NULL;
    return NULL;
  }
  *config_out = config;
  return publisher;
}

int m3b_cmd_publish(int argc, char **argv) {
  m3b_manifest_set_t *set = NULL;
  m3b_publisher_t *publisher = NULL;
  m3b_config_t *config = NULL;
  m3b_log_t *log = NULL;
  json_t **docs = NULL;
  const char *release = NULL;
  char errstr[1024];
  int json = 0, rc = M3B_EXIT_FAIL, i, sources = 0;
  size_t n, k;
  m3b_err_t err;

  /* options are checked before anything connects */
  for (i = 1; i < argc; i++)
    if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0)
      sources++;
  if (sources == 0) {
    fprintf(stderr, "m3bridge-publisher publish: give manifests with -f "
                    "FILE|DIR|- (see --help)\n");
    return M3B_EXIT_USAGE;
  }
  publisher = open_publisher(&argc, argv, &config, &log);
  if (!publisher)
    return M3B_EXIT_FAIL;
  set = m3b_manifest_set_new(
      (size_t)m3b_cli_int(config, "publish.max_manifest_bytes", 1 << 20),
      MAX_DOCS);
  if (!set) {
    fprintf(stderr, "m3bridge-publisher: out of memory\n");
    goto out;
  }
  for (i = 1; i < argc; i++) {
    if ((strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--file") == 0) &&
        i + 1 < argc) {
      const char *path = argv[++i];
      err = strcmp(path, "-") == 0
                ? m3b_manifest_read_stream(set, stdin, "-", errstr,
                                           sizeof(errstr))
                : m3b_manifest_read_path(set, path, errstr, sizeof(errstr));
      if (err) {
        fprintf(stderr, "m3bridge-publisher: %s%s\n", errstr,
                err == M3B_ERR_LIMIT ? " (limit: publish.max_manifest_bytes)"
                                     : "");
        goto out;
      }
    } else if (strcmp(argv[i], "--release") == 0 && i + 1 < argc) {
      release = argv[++i];
    } else if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else {
      fprintf(stderr,
              "m3bridge-publisher publish: unexpected '%s' (see "
              "--help)\n",
              argv[i]);
      rc = M3B_EXIT_USAGE;
      goto out;
    }
  }
  n = m3b_manifest_count(set);
  if (n == 0) {
    fprintf(stderr, "m3bridge-publisher: the input holds no manifest\n");
    goto out;
  }
  docs = calloc(n, sizeof(json_t *));
  if (!docs)
    goto out;
  for (k = 0; k < n; k++)
    m3b_manifest_get(set, k, &docs[k], NULL, NULL);
  err = m3b_publisher_publish(publisher, docs, n, release, errstr,
                              sizeof(errstr));
  if (err) {
    /* validation failures name the manifest index: give its file:line */
    size_t index = (size_t)-1;
    const char *p = strstr(errstr, "manifest ");
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    if (p && sscanf(p, "manifest %zu", &index) == 1 && index < n) {
      const char *path;
      size_t line;
      m3b_manifest_get(set, index, NULL, &path, &line);
      fprintf(stderr, "  (manifest %zu is at %s:%zu)\n", index, path, line);
    }
    if (m3b_publisher_results(publisher, &k, NULL) && k)
      print_results(publisher, json, "published");
    fprintf(stderr, "m3bridge-publisher: nothing of this release was "
                    "published\n");
    goto out;
  }
  print_results(publisher, json, "published");
  rc = M3B_EXIT_OK;

out:
  free(docs);
  m3b_manifest_set_destroy(set);
  m3b_publisher_destroy(publisher);
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}

int m3b_cmd_delete(int argc, char **argv) {
  m3b_publisher_t *publisher = NULL;
  m3b_config_t *config = NULL;
  m3b_log_t *log = NULL;
  const char **keys = NULL;
  const char *release = NULL;
  char errstr[1024];
  int json = 0, rc = M3B_EXIT_FAIL, i;
  size_t count = 0;

  publisher = open_publisher(&argc, argv, &config, &log);
  if (!publisher)
    return M3B_EXIT_FAIL;
  keys = calloc((size_t)argc, sizeof(*keys));
  if (!keys)
    goto out;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--release") == 0 && i + 1 < argc)
      release = argv[++i];
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "m3bridge-publisher delete: unknown option '%s'\n",
              argv[i]);
      rc = M3B_EXIT_USAGE;
      goto out;
    } else
      keys[count++] = argv[i];
  }
  if (count == 0) {
    fprintf(stderr, "m3bridge-publisher delete: name the object keys to "
                    "delete (see --help)\n");
    rc = M3B_EXIT_USAGE;
    goto out;
  }
  if (m3b_publisher_delete(publisher, keys, count, release, errstr,
                           sizeof(errstr))) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    fprintf(stderr, "m3bridge-publisher: nothing of this release was "
                    "published\n");
    goto out;
  }
  print_results(publisher, json, "marked for deletion");
  rc = M3B_EXIT_OK;

out:
  free(keys);
  m3b_publisher_destroy(publisher);
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}
