/*
 * bench_kube_apply.c - the raw ceiling of server-side apply: a plain libcurl
 * loop that applies the objects of a JSON-lines file to the apiserver with
 * W threads, and nothing else (no Kafka, no signatures, no index).
 *
 * It is the baseline of bench/bench_listener.sh: the listener's apply
 * throughput is compared against this loop run with the same concurrency
 * (listener.workers), the same objects (the manifests plus the label and
 * annotations the listener adds), the same credentials (the listener's
 * service account token) and the same request: PATCH
 * ...?fieldManager=F&force=true, Content-Type application/apply-patch+yaml
 * with a JSON body, HTTP/2 offered by ALPN. It deliberately does not use
 * m3bridge's Kubernetes client: it is what that client is measured against.
 * Each thread keeps one easy handle, so its connection is reused.
 *
 * Only core/v1 namespaced kinds are handled (the path is built from the
 * kind's lowercase plural: ConfigMap -> configmaps), which is all the
 * benchmark applies. Bodies are serialised before the clock starts.
 *
 * Usage:
 *   bench_kube_apply --server URL --cacert FILE --token-file FILE
 *                    --objects FILE.jsonl --namespace NS [--workers W]
 *                    [--limit N] [--field-manager NAME] [--json]
 * Exit status: 0 when every object was applied (HTTP 200/201), 1 otherwise,
 * 2 on a usage error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "bench_util.h"

#define MAX_WORKERS 64
#define MAX_LINE (1u << 20)           /* one object per line, at most 1 MiB */
#define MAX_RESPONSE (8u << 20)       /* like the listener's client */
#define MAX_OBJECTS ((size_t)1 << 22) /* 4M */
#define ERROR_TEXT 300

struct request {
  char *url;
  char *body;
  size_t body_len;
  uint64_t latency_ns;
};

struct run {
  struct request *requests;
  size_t count;
  size_t next; /* guarded by lock */
  size_t failed;
  long first_error_status;
  char first_error[ERROR_TEXT];
  pthread_mutex_t lock;
  const char *cacert;
  const char *auth_header;
};

struct response {
  size_t len;
  int truncated;
  char head[ERROR_TEXT]; /* start of the body, for an error message */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
  struct response *response = opaque;
  size_t n = size * nmemb;
  if (response->len < sizeof(response->head) - 1) {
    size_t room = sizeof(response->head) - 1 - response->len;
    memcpy(response->head + response->len, data, n < room ? n : room);
    response->head[response->len + (n < room ? n : room)] = '\0';
  }
  response->len += n;
  if (response->len > MAX_RESPONSE) {
    response->truncated = 1;
    return 0; /* aborts the transfer */
  }
  return n;
}

static size_t take_next(struct run *run) {
  size_t i;
  pthread_mutex_lock(&run->lock);
  i = run->next < run->count ? run->next++ : run->count;
  pthread_mutex_unlock(&run->lock);
  return i;
}

static void note_failure(struct run *run, long status, const char *text) {
  pthread_mutex_lock(&run->lock);
  if (run->failed++ == 0) {
    run->first_error_status = status;
    snprintf(run->first_error, sizeof(run->first_error), "%s", text);
  }
  pthread_mutex_unlock(&run->lock);
}

static void *worker(void *opaque) {
  struct run *run = opaque;
  struct curl_slist *headers = NULL;
  CURL *curl = curl_easy_init();
  size_t i;

  headers = curl_slist_append(headers, "Accept: application/json");
  if (headers)
    headers = curl_slist_append(headers,
                                "Content-Type: application/apply-patch+yaml");
  if (headers)
    headers = curl_slist_append(headers, run->auth_header);
  if (!curl || !headers) {
    note_failure(run, 0, "out of memory");
    goto out;
  }
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PATCH");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(curl, CURLOPT_CAINFO, run->cacert);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  while ((i = take_next(run)) < run->count) {
    struct request *req = &run->requests[i];
    struct response response;
    uint64_t start;
    long status = 0;
    CURLcode rc;

    memset(&response, 0, sizeof(response));
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)req->body_len);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    start = bench_now_ns();
    rc = curl_easy_perform(curl);
    req->latency_ns = bench_now_ns() - start;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
      note_failure(run, status, curl_easy_strerror(rc));
    else if (status != 200 && status != 201)
      note_failure(run, status, response.head);
  }
out:
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return NULL;
}

/* "ConfigMap" -> "configmaps": enough for the core kinds the bench uses. */
static int plural(const char *kind, char *out, size_t size) {
  size_t n = strlen(kind), i;
  if (n + 2 > size)
    return -1;
  for (i = 0; i < n; i++)
    out[i] = (char)((kind[i] >= 'A' && kind[i] <= 'Z') ? kind[i] - 'A' + 'a'
                                                       : kind[i]);
  out[n] = 's';
  out[n + 1] = '\0';
  return 0;
}

/* Parses one line into a request with its namespace set to ns. */
static int prepare(const char *line, size_t lineno, const char *server,
                   const char *ns, const char *field_manager,
                   struct request *req) {
  json_error_t jerr;
  json_t *obj = json_loads(line, 0, &jerr);
  json_t *md = json_object_get(obj, "metadata");
  const char *api_version =
      json_string_value(json_object_get(obj, "apiVersion"));
  const char *kind = json_string_value(json_object_get(obj, "kind"));
  const char *name = json_string_value(json_object_get(md, "name"));
  char resource[80];
  size_t url_size;
  int rc = -1;

  if (!obj) {
    fprintf(stderr, "bench_kube_apply: line %zu: %s\n", lineno, jerr.text);
    return -1;
  }
  if (!api_version || strcmp(api_version, "v1") != 0 || !kind || !name ||
      !json_is_object(md) || plural(kind, resource, sizeof(resource)) != 0) {
    fprintf(stderr,
            "bench_kube_apply: line %zu: need a core v1 object with kind "
            "and metadata.name\n",
            lineno);
    goto out;
  }
  if (json_object_set_new(md, "namespace", json_string(ns)) != 0)
    goto out;
  url_size = strlen(server) + strlen(ns) + strlen(resource) + strlen(name) +
             strlen(field_manager) + 64;
  req->url = malloc(url_size);
  req->body = json_dumps(obj, JSON_COMPACT);
  if (!req->url || !req->body) {
    fprintf(stderr, "bench_kube_apply: out of memory\n");
    goto out;
  }
  snprintf(req->url, url_size,
           "%s/api/v1/namespaces/%s/%s/%s?fieldManager=%s&force=true", server,
           ns, resource, name, field_manager);
  req->body_len = strlen(req->body);
  rc = 0;
out:
  json_decref(obj);
  return rc;
}

static int read_objects(const char *path, size_t limit, const char *server,
                        const char *ns, const char *field_manager,
                        struct run *run) {
  FILE *file = fopen(path, "r");
  char *line = malloc(MAX_LINE);
  size_t cap = 1024, lineno = 0;
  int rc = -1;

  run->requests = calloc(cap, sizeof(*run->requests));
  if (!file || !line || !run->requests) {
    fprintf(stderr, "bench_kube_apply: %s: %s\n", path,
            file ? "out of memory" : strerror(errno));
    goto out;
  }
  while (run->count < limit && fgets(line, MAX_LINE, file)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(file)) {
      fprintf(stderr, "bench_kube_apply: %s:%zu: line over %u bytes\n", path,
              lineno, MAX_LINE);
      goto out;
    }
    if (line[0] == '\n')
      continue;
    if (run->count == cap) {
      struct request *grown;
      if (cap >= MAX_OBJECTS) {
        fprintf(stderr, "bench_kube_apply: more than %zu objects\n",
                (size_t)MAX_OBJECTS);
        goto out;
      }
      grown = realloc(run->requests, 2 * cap * sizeof(*grown));
      if (!grown)
        goto out;
      memset(grown + cap, 0, cap * sizeof(*grown));
      run->requests = grown;
      cap *= 2;
    }
    if (prepare(line, lineno, server, ns, field_manager,
                &run->requests[run->count]) != 0)
      goto out;
    run->count++;
  }
  rc = run->count ? 0 : -1;
  if (rc)
    fprintf(stderr, "bench_kube_apply: %s: no objects\n", path);
out:
  if (file)
    fclose(file);
  free(line);
  return rc;
}

/* The token file's first line, as an Authorization header. */
static char *auth_header(const char *token_file) {
  FILE *file = fopen(token_file, "r");
  char token[8192];
  char *header = NULL;
  size_t n;

  if (!file) {
    fprintf(stderr, "bench_kube_apply: %s: %s\n", token_file, strerror(errno));
    return NULL;
  }
  if (fgets(token, sizeof(token), file)) {
    token[strcspn(token, "\r\n")] = '\0';
    n = strlen(token) + 32;
    header = malloc(n);
    if (header)
      snprintf(header, n, "Authorization: Bearer %s", token);
  }
  fclose(file);
  OPENSSL_cleanse(token, sizeof(token));
  if (!header)
    fprintf(stderr, "bench_kube_apply: %s: no token\n", token_file);
  return header;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static int parse_count(const char *text, long min, long max, long *out) {
  char *end;
  long value;
  errno = 0;
  value = strtol(text, &end, 10);
  if (errno || end == text || *end || value < min || value > max)
    return -1;
  *out = value;
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: bench_kube_apply --server URL --cacert FILE --token-file "
          "FILE --objects FILE.jsonl --namespace NS [--workers W] [--limit N] "
          "[--field-manager NAME] [--json]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *server = NULL, *cacert = NULL, *token_file = NULL;
  const char *objects = NULL, *ns = NULL, *field_manager = "m3bridge";
  long workers = 4, limit = (long)MAX_OBJECTS;
  int json = 0, i, rc = 1;
  pthread_t threads[MAX_WORKERS];
  long started = 0;
  struct run run;
  uint64_t *latencies = NULL;
  uint64_t t0, t1;
  char *auth = NULL;
  size_t k;

  memset(&run, 0, sizeof(run));
  pthread_mutex_init(&run.lock, NULL);
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--json") == 0) {
      json = 1;
      continue;
    }
    if (!value)
      return usage();
    i++;
    if (strcmp(arg, "--server") == 0)
      server = value;
    else if (strcmp(arg, "--cacert") == 0)
      cacert = value;
    else if (strcmp(arg, "--token-file") == 0)
      token_file = value;
    else if (strcmp(arg, "--objects") == 0)
      objects = value;
    else if (strcmp(arg, "--namespace") == 0)
      ns = value;
    else if (strcmp(arg, "--field-manager") == 0)
      field_manager = value;
    else if (strcmp(arg, "--workers") == 0) {
      if (parse_count(value, 1, MAX_WORKERS, &workers) != 0)
        return usage();
    } else if (strcmp(arg, "--limit") == 0) {
      if (parse_count(value, 1, (long)MAX_OBJECTS, &limit) != 0)
        return usage();
    } else
      return usage();
  }
  if (!server || !cacert || !token_file || !objects || !ns)
    return usage();
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 1;
  auth = auth_header(token_file);
  if (!auth)
    goto out;
  run.auth_header = auth;
  run.cacert = cacert;
  if (read_objects(objects, (size_t)limit, server, ns, field_manager, &run))
    goto out;

  t0 = bench_now_ns();
  for (started = 0; started < workers; started++)
    if (pthread_create(&threads[started], NULL, worker, &run) != 0)
      break;
  for (i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  t1 = bench_now_ns();
  if (started == 0) {
    fprintf(stderr, "bench_kube_apply: cannot start threads\n");
    goto out;
  }

  latencies = malloc(run.count * sizeof(*latencies));
  if (!latencies)
    goto out;
  for (k = 0; k < run.count; k++)
    latencies[k] = run.requests[k].latency_ns;
  qsort(latencies, run.count, sizeof(*latencies), cmp_u64);
  {
    size_t median = run.count / 2, high = run.count * 99 / 100;
    double seconds = (double)(t1 - t0) / 1e9;
    double p50 = (double)latencies[median] / 1e6;
    double p99 = (double)latencies[high] / 1e6;
    if (json)
      printf("{\"objects\":%zu,\"workers\":%ld,\"seconds\":%.3f,"
             "\"objects_per_s\":%.1f,\"failed\":%zu,\"p50_ms\":%.2f,"
             "\"p99_ms\":%.2f}\n",
             run.count, started, seconds, (double)run.count / seconds,
             run.failed, p50, p99);
    else
      printf("bench_kube_apply: %zu objects into %s, %ld workers: %.2f s, "
             "%.0f objects/s, request p50 %.2f ms p99 %.2f ms, %zu failed\n",
             run.count, ns, started, seconds, (double)run.count / seconds, p50,
             p99, run.failed);
  }
  if (run.failed)
    fprintf(stderr,
            "bench_kube_apply: %zu of %zu failed; first: HTTP %ld: %s\n",
            run.failed, run.count, run.first_error_status, run.first_error);
  rc = run.failed ? 1 : 0;
out:
  for (k = 0; k < run.count; k++) {
    free(run.requests[k].url);
    free(run.requests[k].body);
  }
  free(run.requests);
  free(latencies);
  if (auth) {
    OPENSSL_cleanse(auth, strlen(auth));
    free(auth);
  }
  pthread_mutex_destroy(&run.lock);
  curl_global_cleanup();
  return rc;
}
