/*
 * listener_setup.c - a listener's life cycle: settings, opening the
 * contract, keys, apiserver, applier and Kafka clients, loading the index,
 * and tearing it all down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <m3b/cli.h>
#include <m3b/index.h>

#include "listener.h"

#define MODULE "listener"

struct scope_ctx {
  char **items;
  size_t *count;
};

static int add_scope_item(const char *item, void *opaque) {
  struct scope_ctx *ctx = opaque;
  if (!item[0])
    return 0;
  if (*ctx->count >= MAX_SCOPE)
    return 1;
  ctx->items[*ctx->count] = strdup(item);
  if (!ctx->items[*ctx->count])
    return 1;
  (*ctx->count)++;
  return 0;
}

static m3b_err_t load_settings(struct listener *listener, char *errstr,
                               size_t errstr_size) {
  const m3b_config_t *config = listener->config;
  struct scope_ctx ctx;
  const char *id = m3b_config_get(config, "listener.id");
  char host[256];

  snprintf(listener->plane, sizeof(listener->plane), "%s",
           m3b_config_get(config, "plane"));
  if (!id || !id[0]) {
    if (gethostname(host, sizeof(host) - 1) != 0)
      snprintf(host, sizeof(host), "listener");
    host[sizeof(host) - 1] = '\0';
    id = host;
  }
  snprintf(listener->listener_id, sizeof(listener->listener_id), "%s", id);
  snprintf(listener->group, sizeof(listener->group), "m3bridge-%s",
           listener->plane);
  if (m3b_kafka_topic_name(config, "desired", listener->desired_topic,
                           sizeof(listener->desired_topic)) ||
      m3b_kafka_topic_name(config, "status", listener->status_topic,
                           sizeof(listener->status_topic)) ||
      m3b_kafka_topic_name(config, "dlq", listener->dlq_topic,
                           sizeof(listener->dlq_topic))) {
    snprintf(errstr, errstr_size, "topic names too long");
    return M3B_ERR_CONFIG;
  }
  ctx.items = listener->namespaces;
  ctx.count = &listener->namespace_count;
  if (m3b_config_each_item(config, "listener.namespaces", add_scope_item,
                           &ctx)) {
    snprintf(errstr, errstr_size, "listener.namespaces: more than %d",
             MAX_SCOPE);
    return M3B_ERR_CONFIG;
  }
  ctx.items = listener->cluster_kinds;
  ctx.count = &listener->cluster_kind_count;
  if (m3b_config_each_item(config, "listener.cluster_kinds", add_scope_item,
                           &ctx)) {
    snprintf(errstr, errstr_size, "listener.cluster_kinds: more than %d",
             MAX_SCOPE);
    return M3B_ERR_CONFIG;
  }
  listener->worker_count = (size_t)m3b_cli_int(config, "listener.workers", 4);
  listener->queue_depth =
      (size_t)m3b_cli_int(config, "listener.queue_depth", 256);
  listener->initial_backoff_ms =
      m3b_cli_int(config, "retry.initial_backoff_ms", 200);
  listener->max_backoff_ms = m3b_cli_int(config, "retry.max_backoff_ms", 30000);
  if (listener->max_backoff_ms < listener->initial_backoff_ms)
    listener->max_backoff_ms = listener->initial_backoff_ms;
  listener->grace_ms = m3b_cli_int(config, "shutdown.grace_ms", 30000);
  listener->heartbeat_ms = m3b_cli_int(config, "heartbeat.interval_ms", 10000);
  listener->verdict_window_ms =
      m3b_cli_int(config, "lag.verdict_window_ms", 60000);
  if (listener->verdict_window_ms < 2 * listener->heartbeat_ms)
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "lag.verdict_window_ms (%lld) holds fewer than 3 heartbeats "
            "(heartbeat.interval_ms %lld): lag verdicts will stay OK",
            listener->verdict_window_ms, listener->heartbeat_ms);
  if (listener->worker_count < 1 || listener->worker_count > MAX_WORKERS)
    listener->worker_count = 4;
  /* a partition's window: everything its records can occupy at once */
  listener->window = listener->worker_count * (listener->queue_depth + 1) + 1;
  return M3B_OK;
}

static m3b_err_t open_kube(struct listener *listener, char *errstr,
                           size_t errstr_size) {
  struct m3b_kube_config cfg;
  const char *path = m3b_config_get(listener->config, "kube.kubeconfig");
  m3b_err_t err;

  m3b_kube_config_init(&cfg);
  if (path)
    err = m3b_kube_config_from_kubeconfig(
        &cfg, path, m3b_config_get(listener->config, "kube.context"), errstr,
        errstr_size);
  else
    err = m3b_kube_config_in_cluster(&cfg, NULL, errstr, errstr_size);
  if (!err) {
    listener->kube = m3b_kube_new(&cfg, listener->log, errstr, errstr_size);
    if (!listener->kube)
      err = M3B_ERR_CONFIG;
  }
  m3b_kube_config_cleanup(&cfg);
  return err;
}

m3b_err_t listener_open_core(struct listener *listener, char *errstr,
                             size_t errstr_size) {
  struct m3b_applier_config acfg;
  const char *path;
  m3b_err_t err;

  err = load_settings(listener, errstr, errstr_size);
  if (err)
    return err;
  listener->registry = m3b_schema_registry_new_builtin(errstr, errstr_size);
  if (!listener->registry)
    return M3B_ERR_INTERNAL;
  listener->codec =
      m3b_codec_new(listener->registry, NULL, errstr, errstr_size);
  if (!listener->codec)
    return M3B_ERR_NOMEM;
  listener->ring = m3b_keyring_new(errstr, errstr_size);
  if (!listener->ring)
    return M3B_ERR_NOMEM;
  err = m3b_keyring_load_dir(
      listener->ring,
      m3b_config_get(listener->config, "listener.trusted_keys_dir"),
      &listener->trusted_key_count, errstr, errstr_size);
  if (err)
    return err;
  path = m3b_config_get(listener->config, "listener.sealing_key_file");
  if (path) {
    err =
        m3b_seal_key_load(path, NULL, &listener->seal_key, errstr, errstr_size);
    if (err)
      return err;
  }
  err = open_kube(listener, errstr, errstr_size);
  if (err)
    return err;
  memset(&acfg, 0, sizeof(acfg));
  acfg.plane = listener->plane;
  acfg.listener_id = listener->listener_id;
  acfg.namespaces = (const char *const *)listener->namespaces;
  acfg.namespace_count = listener->namespace_count;
  acfg.cluster_kinds = (const char *const *)listener->cluster_kinds;
  acfg.cluster_kind_count = listener->cluster_kind_count;
  acfg.max_manifest_bytes =
      (size_t)m3b_cli_int(listener->config, "publish.max_manifest_bytes",
                          (long long)M3B_APPLIER_MAX_MANIFEST_DEFAULT);
  acfg.codec = listener->codec;
  acfg.flags = listener->applier_flags;
  listener->applier =
      m3b_applier_new(&acfg, listener->kube, listener->ring, listener->seal_key,
                      listener->log, errstr, errstr_size);
  if (!listener->applier)
    return M3B_ERR_CONFIG;
  return M3B_OK;
}

m3b_err_t listener_open(struct listener *listener, char *errstr,
                        size_t errstr_size) {
  size_t i;
  m3b_err_t err;

  err = listener_open_core(listener, errstr, errstr_size);
  if (err)
    return err;
  listener->producer = m3b_producer_new_streaming(
      listener->config, listener_on_delivery, listener, 30000, listener->log,
      errstr, errstr_size);
  if (!listener->producer)
    return M3B_ERR_KAFKA;
  listener->consumer = m3b_consumer_new_group(
      listener->config, listener->group, listener->log, errstr, errstr_size);
  if (!listener->consumer)
    return M3B_ERR_KAFKA;
  for (i = 0; i < MAX_PARTITIONS; i++) {
    struct partition *p = &listener->partitions[i];
    p->cap = listener->window;
    p->offsets = NULL; /* allocated on first assignment */
  }
  M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
          "listener %s of plane %s: %zu trusted key(s), %zu bound "
          "namespace(s), sealing key %s, %zu worker(s), group %s",
          listener->listener_id, listener->plane, listener->trusted_key_count,
          listener->namespace_count, listener->seal_key ? "loaded" : "none",
          listener->worker_count, listener->group);
  return M3B_OK;
}

m3b_err_t listener_load_index(struct listener *listener) {
  return listener_load_index_kinds(listener, 0);
}

m3b_err_t listener_load_index_kinds(struct listener *listener, unsigned flags) {
  char errstr[512];
  long long delay = listener->initial_backoff_ms;
  size_t loaded = 0;
  m3b_err_t err;

  for (;;) {
    err = flags ? m3b_applier_load_index_kinds(listener->applier, flags,
                                               &loaded, errstr, sizeof(errstr))
                : m3b_applier_load_index(listener->applier, &loaded, errstr,
                                         sizeof(errstr));
    if (!err) {
      M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
              "index loaded: %zu managed object(s)", loaded);
      return M3B_OK;
    }
    if (!m3b_err_is_retriable(err)) {
      M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "loading the index: %s",
              errstr);
      return err;
    }
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "loading the index: %s; retrying in %lld ms", errstr, delay);
    for (long long waited = 0; waited < delay && !*listener->stop_requested;
         waited += POLL_MS)
      nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
    if (*listener->stop_requested)
      return M3B_ERR_INTERRUPTED;
    delay = delay * 2 > listener->max_backoff_ms ? listener->max_backoff_ms
                                                 : delay * 2;
  }
}

static void on_watch_result(m3b_err_t err, void *opaque) {
  listener_note_kube(opaque, err);
}

m3b_err_t listener_start_watcher(struct listener *listener) {
  struct m3b_index_watch_config cfg;
  char errstr[256];

  memset(&cfg, 0, sizeof(cfg));
  cfg.plane = listener->plane;
  cfg.initial_backoff_ms = listener->initial_backoff_ms;
  cfg.max_backoff_ms = listener->max_backoff_ms;
  cfg.on_result = on_watch_result;
  cfg.opaque = listener;
  listener->watcher = m3b_index_watcher_new(
      m3b_applier_index(listener->applier), listener->kube, &cfg, listener->log,
      errstr, sizeof(errstr));
  if (!listener->watcher) {
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
    return M3B_ERR_NOMEM;
  }
  return M3B_OK;
}

void listener_stop_watcher(struct listener *listener) {
  m3b_index_watcher_destroy(listener->watcher);
  listener->watcher = NULL;
}

struct listener *listener_new(m3b_config_t *config, m3b_log_t *log) {
  struct listener *listener = calloc(1, sizeof(*listener));
  size_t i;
  if (!listener)
    return NULL;
  listener->config = config;
  listener->log = log;
  listener->metrics = m3b_metrics_new();
  if (!listener->metrics) {
    free(listener);
    return NULL;
  }
  pthread_mutex_init(&listener->lock, NULL);
  pthread_mutex_init(&listener->ready_lock, NULL);
  pthread_cond_init(&listener->wake, NULL);
  for (i = 0; i < MAX_WORKERS; i++) {
    pthread_mutex_init(&listener->workers[i].lock, NULL);
    pthread_cond_init(&listener->workers[i].cond, NULL);
  }
  return listener;
}

void listener_destroy(struct listener *listener) {
  size_t i;
  if (!listener)
    return;
  listener_stop_watcher(listener);
  listener_stop_workers(listener);
  /* Closing the consumer runs the revoke callback, which polls the
   * producer: the consumer goes first, with the drain deadline passed so
   * the callback does not wait for records no worker will finish. Delivery
   * reports the producer serves while it closes store no offset then. */
  pthread_mutex_lock(&listener->lock);
  listener->stopping = 1;
  listener->drain_deadline_ms = 0;
  pthread_mutex_unlock(&listener->lock);
  m3b_consumer_destroy(listener->consumer);
  listener->consumer = NULL;
  m3b_producer_destroy(listener->producer);
  listener->producer = NULL;
  while (listener->jobs) { /* pop the head: its all_prev is NULL */
    struct job *job = listener->jobs;
    listener->jobs = job->all_next;
    if (listener->jobs)
      listener->jobs->all_prev = NULL;
    listener->counters.in_flight--;
    listener_job_free(job);
  }
  m3b_ui_destroy(listener->ui); /* the HTTP server is stopped by now */
  m3b_applier_destroy(listener->applier);
  m3b_kube_destroy(listener->kube);
  m3b_seal_key_destroy(listener->seal_key);
  m3b_keyring_destroy(listener->ring);
  m3b_codec_destroy(listener->codec);
  m3b_schema_registry_destroy(listener->registry);
  for (i = 0; i < listener->namespace_count; i++)
    free(listener->namespaces[i]);
  for (i = 0; i < listener->cluster_kind_count; i++)
    free(listener->cluster_kinds[i]);
  for (i = 0; i < MAX_PARTITIONS; i++) {
    free(listener->partitions[i].offsets);
    free(listener->partitions[i].timestamps);
    free(listener->partitions[i].done);
    m3b_lag_window_destroy(listener->partitions[i].lag_window);
  }
  for (i = 0; i < MAX_WORKERS; i++) {
    pthread_mutex_destroy(&listener->workers[i].lock);
    pthread_cond_destroy(&listener->workers[i].cond);
  }
  pthread_cond_destroy(&listener->wake);
  pthread_mutex_destroy(&listener->ready_lock);
  pthread_mutex_destroy(&listener->lock);
  m3b_metrics_destroy(
      listener->metrics); /* last: listener_job_unlink updates it */
  free(listener);
}
