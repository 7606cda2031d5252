/*
 * cmd_run.c - `m3bridge-listener run`: the Kafka-facing half of the
 * listener (DESIGN.md section 6), around m3b_applier_process().
 *
 * One thread (the main one) polls the group consumer, serves the
 * producer's delivery reports, handles rebalances and sends heartbeats. It
 * dispatches each record by a hash of its key to one of N worker threads,
 * so two events of one key never run at once and stay in order. Worker
 * queues are bounded; a record that finds its queue (or its partition's
 * in-flight window) full is held and its partition paused until there is
 * room. A worker runs the applier; a transient failure retries the same
 * record with capped exponential backoff and jitter while its partition is
 * paused; otherwise it produces the dlq copy and/or the status with one
 * idempotent producer. A record is finished when every record it produced
 * is acknowledged by the broker; then the partition's offset tracker
 * stores the end of the contiguous finished prefix (librdkafka auto-commits
 * stored offsets; revoke and shutdown commit synchronously).
 *
 * Shutdown (SIGTERM/SIGINT): stop fetching, let in-flight records finish
 * within shutdown.grace_ms, flush the producer, commit, leave the group.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <m3b/applier.h>
#include <m3b/cli.h>
#include <m3b/codec.h>
#include <m3b/config.h>
#include <m3b/event.h>
#include <m3b/http.h>
#include <m3b/index.h>
#include <m3b/kafka.h>
#include <m3b/kube.h>
#include <m3b/log.h>
#include <m3b/metrics.h>
#include <m3b/schema.h>
#include <m3b/seal.h>
#include <m3b/sign.h>
#include <m3b/version.h>

#include "commands.h"

#define MODULE "listener"
#define MAX_PARTITIONS 1024
#define MAX_WORKERS 64
#define MAX_SCOPE 256
#define MAX_STATUS_BYTES ((size_t)64 * 1024)
#define POLL_MS 100
#define PRODUCE_WAIT_MS 1000
#define MAX_HEADERS (M3B_KAFKA_MAX_HEADERS + M3B_DLQ_HEADER_COUNT)
#define MAX_LABELS 1024

/* Metric families (docs/OPERATIONS.md); the lag names are those of
 * kafka-lag-exporter so its dashboards work unchanged. */
#define METRIC_LAG "kafka_consumergroup_group_lag"
#define METRIC_LAG_SECONDS "kafka_consumergroup_group_lag_seconds"
#define METRIC_COMMITTED "m3bridge_committed_offset"
#define METRIC_HIGH_WATERMARK "m3bridge_high_watermark"
#define METRIC_EVENTS "m3bridge_events_total"
#define METRIC_APPLY_LATENCY "m3bridge_apply_latency_seconds"
#define METRIC_PUBLISH_TO_APPLIED "m3bridge_publish_to_applied_seconds"
#define METRIC_IN_FLIGHT "m3bridge_in_flight"
#define METRIC_PAUSED "m3bridge_paused_partitions"
#define METRIC_RETRIES "m3bridge_retries_total"
#define METRIC_RESYNC_RUNS "m3bridge_status_resync_runs_total"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  (void)sig;
  stop_signal = 1;
}

static int64_t now_ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One record of the desired topic, copied out of the consumer. */
struct job {
  struct job *next;                /* worker queue or held list */
  struct job *all_prev, *all_next; /* every live job, for cleanup */
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms;
  unsigned epoch; /* of the partition's assignment when dispatched */
  int registered; /* has a slot in the partition's in-flight window */
  int pending;    /* produced records not yet acknowledged */
  int failed;     /* a produced record was refused for good */
  void *key;
  size_t key_len;
  void *value; /* NULL: tombstone */
  size_t value_len;
  struct m3b_record_header headers[M3B_KAFKA_MAX_HEADERS];
  size_t header_count;
  char *header_bytes; /* names and values of headers */
};

/* The in-flight window of one partition: offsets in dispatch order. */
struct partition {
  int assigned;
  int revoking;
  unsigned epoch;
  int paused;
  int retrying; /* records of it waiting for a retry */
  struct job *held_head, *held_tail;
  int64_t *offsets;
  int64_t *timestamps; /* Kafka timestamps of the records in offsets */
  unsigned char *done;
  size_t head, count, cap;
  int64_t last_timestamp_ms; /* of the last finished record */
  int64_t stored;            /* last offset stored, -1 none */
};

struct worker {
  struct listener *listener;
  pthread_t thread;
  int started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct job *head, *tail;
  size_t depth;
  int stop;
  unsigned seed;
};

/* What the loop counts; logged with each heartbeat (the metrics registry
 * exports the same numbers). */
struct counters {
  uint64_t applied, deleted, stale, rejected, failed, retries, forgotten;
  uint64_t produce_failures;
  uint64_t reasons[M3B_ERR__COUNT]; /* rejected + failed by reason */
  int64_t in_flight;
};

struct listener {
  m3b_config_t *config;
  m3b_log_t *log;
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  m3b_keyring_t *ring;
  m3b_seal_key_t *seal_key;
  m3b_kube_t *kube;
  m3b_applier_t *applier;
  m3b_producer_t *producer;
  m3b_consumer_t *consumer;
  char plane[128];
  char listener_id[256];
  char desired_topic[256], status_topic[256], dlq_topic[256];
  char *namespaces[MAX_SCOPE];
  size_t namespace_count;
  char *cluster_kinds[MAX_SCOPE];
  size_t cluster_kind_count;
  long long initial_backoff_ms, max_backoff_ms, grace_ms, heartbeat_ms;
  size_t queue_depth, window;

  pthread_mutex_t lock; /* partitions, jobs list, counters, stopping */
  pthread_cond_t wake;  /* retry sleeps: stop or revoke */
  int stopping;
  int64_t drain_deadline_ms; /* monotonic; for revokes while stopping */
  struct partition partitions[MAX_PARTITIONS];
  struct job *jobs; /* every live job */
  struct counters counters;
  struct worker workers[MAX_WORKERS];
  size_t worker_count;
  struct m3b_partition_offsets offsets[MAX_PARTITIONS];
  struct m3b_partition_lag lags[MAX_PARTITIONS];
  int refresh_lag; /* main thread: a rebalance changed the assignment */

  m3b_metrics_t *metrics;
  char group[300];
  char partition_labels[MAX_LABELS]; /* group="..",topic="..",partition= */

  /* /readyz, read on the HTTP thread */
  pthread_mutex_t ready_lock;
  size_t assigned_count;
  int64_t kafka_ok_ms;  /* monotonic: last record or broker answer */
  int64_t kafka_err_ms; /* monotonic: last transport/auth error, 0 none */
  char kafka_err[M3B_HTTP_DETAIL_MAX];
  int kube_down; /* the last apiserver call failed with KUBE_TRANSPORT */
};

/* --- readiness and metrics -------------------------------------------------
 */

/* Kafka answered: a record arrived or the broker returned offsets. */
static void note_kafka_ok(struct listener *listener) {
  pthread_mutex_lock(&listener->ready_lock);
  listener->kafka_ok_ms = now_ms(CLOCK_MONOTONIC);
  pthread_mutex_unlock(&listener->ready_lock);
}

static void note_kafka_error(struct listener *listener, m3b_err_t err,
                             const char *errstr) {
  pthread_mutex_lock(&listener->ready_lock);
  listener->kafka_err_ms = now_ms(CLOCK_MONOTONIC);
  /* the reason is one line of /readyz: the start of errstr is enough */
  snprintf(listener->kafka_err, sizeof(listener->kafka_err), "%.160s (%s)",
           errstr, m3b_err_name(err));
  pthread_mutex_unlock(&listener->ready_lock);
}

/* /readyz, on the HTTP thread: Kafka is up when partitions are assigned or
 * the broker answered recently, and no transport or authorization error
 * came after its last answer; the apiserver is up unless its last call
 * failed in transport. */
static int ready(void *opaque, char *detail, size_t detail_size) {
  struct listener *listener = opaque;
  int64_t now = now_ms(CLOCK_MONOTONIC);
  int64_t recent = 3 * listener->heartbeat_ms;
  int kafka_up, stopping, ok = 0;

  pthread_mutex_lock(&listener->lock);
  stopping = listener->stopping;
  pthread_mutex_unlock(&listener->lock);
  if (recent < 30000)
    recent = 30000;
  pthread_mutex_lock(&listener->ready_lock);
  kafka_up =
      listener->assigned_count > 0 ||
      (listener->kafka_ok_ms > 0 && now - listener->kafka_ok_ms < recent);
  if (stopping)
    snprintf(detail, detail_size, "stopping");
  else if (listener->kafka_err_ms > 0 &&
           listener->kafka_err_ms >= listener->kafka_ok_ms)
    snprintf(detail, detail_size, "kafka unreachable: %s", listener->kafka_err);
  else if (!kafka_up)
    snprintf(detail, detail_size,
             "kafka unreachable: no partition assigned and no broker answer "
             "in the last %lld ms",
             (long long)recent);
  else if (listener->kube_down)
    snprintf(detail, detail_size, "kubernetes api unreachable");
  else
    ok = 1;
  pthread_mutex_unlock(&listener->ready_lock);
  return ok;
}

static m3b_err_t declare_metrics(struct listener *listener) {
  static const struct {
    const char *name;
    m3b_metric_type_t type;
    const char *help;
  } families[] = {
      {METRIC_LAG, M3B_METRIC_GAUGE,
       "Messages of the partition not yet committed by the group."},
      {METRIC_LAG_SECONDS, M3B_METRIC_GAUGE,
       "Seconds since the Kafka timestamp of the partition's oldest record "
       "not yet finished; 0 when caught up."},
      {METRIC_COMMITTED, M3B_METRIC_GAUGE,
       "The group's committed offset of the partition."},
      {METRIC_HIGH_WATERMARK, M3B_METRIC_GAUGE,
       "The partition's high watermark at the last fetch."},
      {METRIC_EVENTS, M3B_METRIC_COUNTER,
       "Records of the desired topic finished, by phase and reason."},
      {METRIC_APPLY_LATENCY, M3B_METRIC_HISTOGRAM,
       "Time spent in apiserver writes for one applied or deleted object."},
      {METRIC_PUBLISH_TO_APPLIED, M3B_METRIC_HISTOGRAM,
       "From the record's Kafka timestamp to the object being applied."},
      {METRIC_IN_FLIGHT, M3B_METRIC_GAUGE,
       "Records read and not yet finished."},
      {METRIC_PAUSED, M3B_METRIC_GAUGE,
       "Assigned partitions paused (queue full or a record retrying)."},
      {METRIC_RETRIES, M3B_METRIC_COUNTER,
       "Retries of records after transient failures."},
      {METRIC_RESYNC_RUNS, M3B_METRIC_COUNTER,
       "Status resyncs of every managed object (one per start)."},
  };
  char group[300], topic[600];
  size_t i;
  m3b_err_t err;

  for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
    err = m3b_metrics_declare(listener->metrics, families[i].name,
                              families[i].type, families[i].help, NULL, 0);
    if (err)
      return err;
  }
  err = m3b_metrics_escape(listener->group, group, sizeof(group));
  if (!err)
    err = m3b_metrics_escape(listener->desired_topic, topic, sizeof(topic));
  if (err)
    return err;
  snprintf(listener->partition_labels, sizeof(listener->partition_labels),
           "group=\"%s\",topic=\"%s\",partition=", group, topic);
  /* series that exist from the start, so dashboards show 0, not nothing */
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_IN_FLIGHT, NULL, 0);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_PAUSED, NULL, 0);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_RETRIES, NULL, 0);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_RESYNC_RUNS, NULL, 0);
  return M3B_OK;
}

/* --- jobs ------------------------------------------------------------------
 */

static void job_free(struct job *job) {
  if (!job)
    return;
  free(job->key);
  free(job->value);
  free(job->header_bytes);
  free(job);
}

/* Copies msg into a new job; NULL when memory is exhausted. */
static struct job *job_new(const struct m3b_kafka_message *msg,
                           unsigned epoch) {
  struct job *job = calloc(1, sizeof(*job));
  size_t i, total = 0, at = 0;

  if (!job)
    return NULL;
  job->partition = msg->partition;
  job->offset = msg->offset;
  job->timestamp_ms = msg->timestamp_ms;
  job->epoch = epoch;
  if (msg->key) {
    job->key = malloc(msg->key_len ? msg->key_len : 1);
    if (!job->key)
      goto fail;
    memcpy(job->key, msg->key, msg->key_len);
    job->key_len = msg->key_len;
  }
  if (msg->value) {
    job->value = malloc(msg->value_len ? msg->value_len : 1);
    if (!job->value)
      goto fail;
    memcpy(job->value, msg->value, msg->value_len);
    job->value_len = msg->value_len;
  }
  for (i = 0; i < msg->header_count; i++)
    total += strlen(msg->headers[i].name) + 1 + msg->headers[i].size;
  job->header_bytes = malloc(total ? total : 1);
  if (!job->header_bytes)
    goto fail;
  for (i = 0; i < msg->header_count; i++) {
    size_t n = strlen(msg->headers[i].name) + 1;
    memcpy(job->header_bytes + at, msg->headers[i].name, n);
    job->headers[i].name = job->header_bytes + at;
    at += n;
    if (msg->headers[i].value) {
      memcpy(job->header_bytes + at, msg->headers[i].value,
             msg->headers[i].size);
      job->headers[i].value = job->header_bytes + at;
      job->headers[i].len = msg->headers[i].size;
      at += msg->headers[i].size;
    }
  }
  job->header_count = msg->header_count;
  return job;

fail:
  job_free(job);
  return NULL;
}

/* Under listener->lock. */
static void job_link(struct listener *listener, struct job *job) {
  job->all_next = listener->jobs;
  job->all_prev = NULL;
  if (listener->jobs)
    listener->jobs->all_prev = job;
  listener->jobs = job;
  listener->counters.in_flight++;
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_IN_FLIGHT, NULL,
                              (double)listener->counters.in_flight);
}

/* Under listener->lock. */
static void job_unlink(struct listener *listener, struct job *job) {
  if (job->all_prev)
    job->all_prev->all_next = job->all_next;
  else
    listener->jobs = job->all_next;
  if (job->all_next)
    job->all_next->all_prev = job->all_prev;
  listener->counters.in_flight--;
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_IN_FLIGHT, NULL,
                              (double)listener->counters.in_flight);
}

/* --- offsets ---------------------------------------------------------------
 */

/* Marks job finished (done != 0) or abandoned, stores the partition's new
 * contiguous prefix, and frees the job. Takes listener->lock. */
static void job_finish(struct listener *listener, struct job *job, int done) {
  struct partition *p = &listener->partitions[job->partition];
  int64_t store = -1;

  pthread_mutex_lock(&listener->lock);
  if (done && job->registered && p->assigned && p->epoch == job->epoch) {
    size_t lo = 0, hi = p->count;
    while (lo < hi) { /* offsets in the window are increasing */
      size_t mid = lo + (hi - lo) / 2;
      if (p->offsets[(p->head + mid) % p->cap] < job->offset)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo < p->count && p->offsets[(p->head + lo) % p->cap] == job->offset)
      p->done[(p->head + lo) % p->cap] = 1;
    while (p->count && p->done[p->head]) {
      store = p->offsets[p->head] + 1;
      p->head = (p->head + 1) % p->cap;
      p->count--;
    }
    if (store >= 0) {
      p->last_timestamp_ms = job->timestamp_ms;
      p->stored = store;
    }
  }
  job_unlink(listener, job);
  if (store >= 0 &&
      m3b_consumer_store_offset(listener->consumer, job->partition, store))
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "storing offset %" PRId64 " of partition %d failed (revoked?)",
            store, (int)job->partition);
  pthread_mutex_unlock(&listener->lock);
  job_free(job);
}

/* The producer's delivery report, on the main thread. */
static void on_delivery(void *record_opaque, m3b_err_t err, void *opaque) {
  struct listener *listener = opaque;
  struct job *job = record_opaque;
  int remaining, failed;

  if (!job)
    return; /* heartbeat or resync status */
  pthread_mutex_lock(&listener->lock);
  if (err) {
    job->failed = 1;
    listener->counters.produce_failures++;
  }
  remaining = --job->pending;
  failed = job->failed;
  pthread_mutex_unlock(&listener->lock);
  if (err)
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE,
            "status/dlq record of partition %d offset %" PRId64
            " was refused by Kafka (%s); its offset is not stored, the record "
            "is read again after a restart",
            (int)job->partition, job->offset, m3b_err_name(err));
  if (remaining == 0)
    job_finish(listener, job, !failed);
}

/* --- workers ---------------------------------------------------------------
 */

/* Non-zero while the job's partition still belongs to this run and the
 * listener is not past its drain deadline. Under listener->lock. */
static int job_current(const struct listener *listener, const struct job *job) {
  const struct partition *p = &listener->partitions[job->partition];
  return p->assigned && p->epoch == job->epoch &&
         !(listener->stopping &&
           now_ms(CLOCK_MONOTONIC) >= listener->drain_deadline_ms);
}

/* Waits delay_ms unless the job stops being current or the listener stops.
 * Returns non-zero when the retry should go ahead. */
static int backoff_wait(struct listener *listener, const struct job *job,
                        long long delay_ms) {
  struct timespec until;
  int go;

  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += delay_ms / 1000;
  until.tv_nsec += (delay_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&listener->lock);
  while (job_current(listener, job) && !listener->stopping) {
    if (pthread_cond_timedwait(&listener->wake, &listener->lock, &until) ==
        ETIMEDOUT)
      break;
  }
  go = job_current(listener, job) && !listener->stopping;
  pthread_mutex_unlock(&listener->lock);
  return go;
}

/* Exports one finished record: its phase and reason, and for records that
 * reached the apiserver the apply and the end-to-end latency. */
static void observe_outcome(struct listener *listener, const struct job *job,
                            const struct m3b_outcome *out) {
  char labels[MAX_LABELS];
  const char *phase = out->forget ? "FORGOTTEN" : m3b_phase_name(out->phase);
  const char *reason = out->err ? m3b_err_name(out->err) : "OK";

  /* phase and reason names are identifiers: nothing to escape */
  snprintf(labels, sizeof(labels), "phase=\"%s\",reason=\"%s\"", phase, reason);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_EVENTS, labels, 1);
  if (out->forget || out->noop ||
      (out->phase != M3B_PHASE_APPLIED && out->phase != M3B_PHASE_DELETED))
    return;
  (void)m3b_metrics_histogram_observe(listener->metrics, METRIC_APPLY_LATENCY,
                                      NULL,
                                      (double)out->apply_latency_ms / 1000.0);
  if (job->timestamp_ms > 0 && out->finished_at_ms >= job->timestamp_ms)
    (void)m3b_metrics_histogram_observe(
        listener->metrics, METRIC_PUBLISH_TO_APPLIED, NULL,
        (double)(out->finished_at_ms - job->timestamp_ms) / 1000.0);
}

/* The apiserver is down for /readyz while the last call that reached for
 * it failed in transport; any answer from it clears that. */
static void note_kube(struct listener *listener, m3b_err_t err) {
  int down;
  if (err == M3B_ERR_KUBE_TRANSPORT)
    down = 1;
  else if (err == M3B_OK ||
           (err >= M3B_ERR_KUBE_THROTTLED && err <= M3B_ERR_KUBE_GONE))
    down = 0;
  else
    return; /* refused before any apiserver call */
  pthread_mutex_lock(&listener->ready_lock);
  listener->kube_down = down;
  pthread_mutex_unlock(&listener->ready_lock);
}

static void count_outcome(struct listener *listener, const struct job *job,
                          const struct m3b_outcome *out) {
  struct counters *c = &listener->counters;
  pthread_mutex_lock(&listener->lock);
  if (out->forget)
    c->forgotten++;
  else if (out->phase == M3B_PHASE_APPLIED)
    c->applied++;
  else if (out->phase == M3B_PHASE_DELETED)
    c->deleted++;
  else if (out->phase == M3B_PHASE_STALE_SKIPPED)
    c->stale++;
  else if (out->phase == M3B_PHASE_REJECTED)
    c->rejected++;
  else
    c->failed++;
  if (out->err && (size_t)out->err < M3B_ERR__COUNT &&
      (out->phase == M3B_PHASE_REJECTED || out->phase == M3B_PHASE_FAILED))
    c->reasons[out->err]++;
  pthread_mutex_unlock(&listener->lock);
  observe_outcome(listener, job, out);
}

/* Queues one record for job, retrying while the local queue is full. */
static m3b_err_t produce(struct listener *listener, struct job *job,
                         const char *topic, const void *key, size_t key_len,
                         const void *value, size_t value_len,
                         const struct m3b_kafka_header *headers,
                         size_t header_count) {
  char errstr[512];
  m3b_err_t err;
  for (;;) {
    err = m3b_producer_produce(listener->producer, topic, key, key_len, value,
                               value_len, headers, header_count, job,
                               PRODUCE_WAIT_MS, errstr, sizeof(errstr));
    if (err != M3B_ERR_TIMEOUT)
      break;
    pthread_mutex_lock(&listener->lock);
    err = job_current(listener, job) ? M3B_OK : M3B_ERR_INTERRUPTED;
    pthread_mutex_unlock(&listener->lock);
    if (err)
      return err;
  }
  if (err)
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
  return err;
}

/* Produces the dlq copy and the status of a finished record; the job is
 * finished by the last delivery report (or here, when nothing was queued). */
static void publish_outcome(struct listener *listener, struct job *job,
                            const struct m3b_record *in,
                            const struct m3b_outcome *out) {
  struct m3b_kafka_header headers[MAX_HEADERS];
  struct m3b_dlq_headers dlq;
  struct m3b_status status;
  struct m3b_buf buf;
  char errstr[512];
  size_t i, n = 0;
  int attempts = out->dlq ? 1 : 0, queued = 0, remaining, failed = 0;
  int send_status = 0;
  m3b_err_t err;

  m3b_buf_init(&buf, MAX_STATUS_BYTES);
  if (out->status) {
    m3b_status_init(&status);
    err = m3b_outcome_status(listener->applier, out, in, &status);
    if (!err)
      err = m3b_status_encode(listener->codec, &status, &buf, errstr,
                              sizeof(errstr));
    if (err) {
      M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE,
              "status of %s cannot be encoded (%s); sending none", out->key,
              m3b_err_name(err));
    } else {
      send_status = 1;
      attempts++;
    }
  }
  pthread_mutex_lock(&listener->lock);
  job->pending = attempts + 1; /* +1: held until everything is queued */
  pthread_mutex_unlock(&listener->lock);
  if (out->dlq) {
    m3b_outcome_dlq_headers(listener->applier, out, in, &dlq);
    for (i = 0; i < job->header_count; i++) {
      headers[n].name = job->headers[i].name;
      headers[n].value = job->headers[i].value;
      headers[n++].size = job->headers[i].len;
    }
    for (i = 0; i < dlq.count; i++) {
      headers[n].name = dlq.headers[i].name;
      headers[n].value = dlq.headers[i].value;
      headers[n++].size = dlq.headers[i].len;
    }
    if (produce(listener, job, listener->dlq_topic, job->key, job->key_len,
                job->value, job->value_len, headers, n) == M3B_OK)
      queued++;
  }
  if (send_status &&
      produce(listener, job, listener->status_topic, out->key, strlen(out->key),
              buf.data, buf.len, NULL, 0) == M3B_OK)
    queued++;
  m3b_buf_cleanup(&buf);
  pthread_mutex_lock(&listener->lock);
  job->pending -= 1 + (attempts - queued);
  if (queued < attempts)
    job->failed = 1;
  remaining = job->pending;
  failed = job->failed;
  pthread_mutex_unlock(&listener->lock);
  if (remaining == 0)
    job_finish(listener, job, !failed);
}

static void process_job(struct listener *listener, struct worker *worker,
                        struct job *job) {
  struct m3b_record in;
  struct m3b_outcome out;
  unsigned attempt = 0;
  int retrying = 0, current;

  memset(&in, 0, sizeof(in));
  in.topic = listener->desired_topic;
  in.partition = job->partition;
  in.offset = job->offset;
  in.timestamp_ms = job->timestamp_ms;
  in.key = job->key;
  in.key_len = job->key_len;
  in.value = job->value;
  in.value_len = job->value_len;
  in.headers = job->headers;
  in.header_count = job->header_count;

  for (;;) {
    long long delay;
    pthread_mutex_lock(&listener->lock);
    current = job_current(listener, job);
    pthread_mutex_unlock(&listener->lock);
    if (!current)
      break;
    m3b_applier_process(listener->applier, &in, &out);
    note_kube(listener, out.err);
    if (!out.retriable)
      break;
    if (!retrying) {
      pthread_mutex_lock(&listener->lock);
      listener->partitions[job->partition].retrying++;
      pthread_mutex_unlock(&listener->lock);
      retrying = 1;
    }
    delay = listener->initial_backoff_ms << (attempt < 20 ? attempt : 20);
    if (delay > listener->max_backoff_ms || delay <= 0)
      delay = listener->max_backoff_ms;
    /* full jitter in [delay/2, delay] keeps replicas from retrying in step */
    delay = delay / 2 + (long long)(rand_r(&worker->seed) % (delay / 2 + 1));
    attempt++;
    pthread_mutex_lock(&listener->lock);
    listener->counters.retries++;
    pthread_mutex_unlock(&listener->lock);
    (void)m3b_metrics_counter_add(listener->metrics, METRIC_RETRIES, NULL, 1);
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "partition %d offset %" PRId64 " key %s: %s (%s); retry %u in %lld "
            "ms, partition paused",
            (int)job->partition, job->offset, out.key, m3b_err_name(out.err),
            out.message, attempt, delay);
    if (!backoff_wait(listener, job, delay)) {
      current = 0;
      break;
    }
  }
  if (retrying) {
    pthread_mutex_lock(&listener->lock);
    listener->partitions[job->partition].retrying--;
    pthread_mutex_unlock(&listener->lock);
  }
  if (!current) { /* revoked or shutting down: the next owner reads it */
    job_finish(listener, job, 0);
    return;
  }
  count_outcome(listener, job, &out);
  if (out.dlq || out.status) {
    /* the applier already logged refusals at warn */
    M3B_LOG(listener->log, M3B_LOG_DEBUG, MODULE,
            "partition %d offset %" PRId64 " key %s generation %" PRId64
            ": %s%s%s%s",
            (int)job->partition, job->offset, out.key, out.generation,
            m3b_phase_name(out.phase), out.reason ? " " : "",
            out.reason ? out.reason : "", out.noop ? " (no-op)" : "");
    publish_outcome(listener, job, &in, &out);
  } else {
    job_finish(listener, job, 1);
  }
}

static void *worker_main(void *arg) {
  struct worker *worker = arg;
  for (;;) {
    struct job *job;
    pthread_mutex_lock(&worker->lock);
    while (!worker->head && !worker->stop)
      pthread_cond_wait(&worker->cond, &worker->lock);
    if (worker->stop) {
      pthread_mutex_unlock(&worker->lock);
      break;
    }
    job = worker->head;
    worker->head = job->next;
    if (!worker->head)
      worker->tail = NULL;
    worker->depth--;
    pthread_mutex_unlock(&worker->lock);
    job->next = NULL;
    process_job(worker->listener, worker, job);
  }
  return NULL;
}

/* --- dispatch (main thread) ------------------------------------------------
 */

static uint64_t key_hash(const void *key, size_t len) {
  const unsigned char *s = key;
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
  size_t i;
  for (i = 0; i < len; i++)
    h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}

/* Hands job to its worker if both the worker queue and the partition's
 * window have room. Returns non-zero when it did. */
static int try_enqueue(struct listener *listener, struct job *job) {
  struct worker *worker =
      &listener
           ->workers[key_hash(job->key, job->key_len) % listener->worker_count];
  struct partition *p = &listener->partitions[job->partition];
  int queued = 0;

  pthread_mutex_lock(&listener->lock);
  pthread_mutex_lock(&worker->lock);
  if (worker->depth < listener->queue_depth && p->count < p->cap) {
    p->offsets[(p->head + p->count) % p->cap] = job->offset;
    p->timestamps[(p->head + p->count) % p->cap] = job->timestamp_ms;
    p->done[(p->head + p->count) % p->cap] = 0;
    p->count++;
    job->registered = 1;
    job->next = NULL;
    if (worker->tail)
      worker->tail->next = job;
    else
      worker->head = job;
    worker->tail = job;
    worker->depth++;
    pthread_cond_signal(&worker->cond);
    queued = 1;
  }
  pthread_mutex_unlock(&worker->lock);
  pthread_mutex_unlock(&listener->lock);
  return queued;
}

/* Copies msg into a job and queues or holds it. M3B_ERR_NOMEM is fatal:
 * a record dropped here would let later offsets be stored past it. */
static m3b_err_t dispatch(struct listener *listener,
                          const struct m3b_kafka_message *msg) {
  struct partition *p;
  struct job *job;
  unsigned epoch;

  if (msg->partition < 0 || msg->partition >= MAX_PARTITIONS) {
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE,
            "partition %d is past the %d this listener handles; skipped",
            (int)msg->partition, MAX_PARTITIONS);
    return M3B_ERR_LIMIT;
  }
  p = &listener->partitions[msg->partition];
  pthread_mutex_lock(&listener->lock);
  epoch = p->epoch;
  pthread_mutex_unlock(&listener->lock);
  job = job_new(msg, epoch);
  if (!job) {
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE,
            "out of memory copying partition %d offset %" PRId64,
            (int)msg->partition, msg->offset);
    return M3B_ERR_NOMEM;
  }
  pthread_mutex_lock(&listener->lock);
  job_link(listener, job);
  pthread_mutex_unlock(&listener->lock);
  if (!p->held_head && try_enqueue(listener, job))
    return M3B_OK;
  /* hold it (after any held before it) and stop fetching the partition */
  pthread_mutex_lock(&listener->lock);
  job->next = NULL;
  if (p->held_tail)
    p->held_tail->next = job;
  else
    p->held_head = job;
  p->held_tail = job;
  pthread_mutex_unlock(&listener->lock);
  return M3B_OK;
}

/* Moves held records to their workers, in order, while there is room. */
static void drain_held_all(struct listener *listener) {
  size_t i;
  for (i = 0; i < MAX_PARTITIONS; i++) {
    struct partition *p = &listener->partitions[i];
    while (p->assigned && p->held_head) {
      struct job *job = p->held_head;
      struct job *next = job->next;
      if (!try_enqueue(listener, job))
        break;
      pthread_mutex_lock(&listener->lock);
      p->held_head = next;
      if (!next)
        p->held_tail = NULL;
      pthread_mutex_unlock(&listener->lock);
    }
  }
}

/* Stores the consumer position of partitions with nothing in flight, so
 * the committed offset moves past trailing transaction markers. */
static void store_idle_positions(struct listener *listener) {
  size_t i;
  for (i = 0; i < MAX_PARTITIONS; i++) {
    struct partition *p = &listener->partitions[i];
    int64_t position, stored;
    int idle;
    if (!p->assigned)
      continue;
    pthread_mutex_lock(&listener->lock);
    idle = p->count == 0 && !p->held_head && !p->retrying;
    stored = p->stored;
    pthread_mutex_unlock(&listener->lock);
    if (!idle)
      continue;
    position = m3b_consumer_position(listener->consumer, (int32_t)i);
    /* only the main thread dispatches, so every record before position
     * has been dispatched, and with an empty window also finished */
    if (position > stored &&
        m3b_consumer_store_offset(listener->consumer, (int32_t)i, position) ==
            M3B_OK) {
      pthread_mutex_lock(&listener->lock);
      p->stored = position;
      pthread_mutex_unlock(&listener->lock);
    }
  }
}

/* Pauses partitions with held records or a record waiting to be retried,
 * resumes the others. */
static void update_pauses(struct listener *listener) {
  size_t i, paused = 0;
  for (i = 0; i < MAX_PARTITIONS; i++) {
    struct partition *p = &listener->partitions[i];
    int want;
    if (!p->assigned)
      continue;
    pthread_mutex_lock(&listener->lock);
    want = p->held_head != NULL || p->retrying > 0;
    pthread_mutex_unlock(&listener->lock);
    if (want != p->paused && (want ? m3b_consumer_pause : m3b_consumer_resume)(
                                 listener->consumer, (int32_t)i) == M3B_OK)
      p->paused = want;
    if (p->paused)
      paused++;
  }
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_PAUSED, NULL,
                              (double)paused);
}

/* --- rebalance (main thread, inside poll or close) --------------------------
 */

/* Counts the assigned partitions for /readyz. */
static void note_assignment(struct listener *listener) {
  size_t i, assigned = 0;
  pthread_mutex_lock(&listener->lock);
  for (i = 0; i < MAX_PARTITIONS; i++)
    if (listener->partitions[i].assigned)
      assigned++;
  pthread_mutex_unlock(&listener->lock);
  pthread_mutex_lock(&listener->ready_lock);
  listener->assigned_count = assigned;
  pthread_mutex_unlock(&listener->ready_lock);
}

/* A revoked partition's series stop being exported: another replica
 * reports it now. */
static void remove_partition_series(struct listener *listener,
                                    int32_t partition) {
  static const char *const families[] = {
      METRIC_LAG, METRIC_LAG_SECONDS, METRIC_COMMITTED, METRIC_HIGH_WATERMARK};
  char match[64];
  size_t i;
  /* the closing quote keeps partition="1" from matching partition="10" */
  snprintf(match, sizeof(match), "partition=\"%d\"", (int)partition);
  for (i = 0; i < sizeof(families) / sizeof(families[0]); i++)
    m3b_metrics_remove_matching(listener->metrics, families[i], match);
}

static void on_rebalance(m3b_consumer_t *consumer, enum m3b_rebalance event,
                         const int32_t *partitions, size_t count,
                         void *opaque) {
  struct listener *listener = opaque;
  char errstr[512];
  int64_t deadline;
  size_t i;

  if (event == M3B_REBALANCE_ASSIGNED) {
    pthread_mutex_lock(&listener->lock);
    for (i = 0; i < count; i++) {
      struct partition *p;
      if (partitions[i] < 0 || partitions[i] >= MAX_PARTITIONS)
        continue;
      p = &listener->partitions[partitions[i]];
      p->assigned = 1;
      p->revoking = 0;
      p->epoch++;
      p->paused = 0;
      p->head = p->count = 0;
      p->stored = -1;
    }
    listener->refresh_lag = 1;
    pthread_mutex_unlock(&listener->lock);
    note_assignment(listener);
    return;
  }

  /* revoked: drop held records, let in-flight ones finish (bounded) */
  pthread_mutex_lock(&listener->lock);
  for (i = 0; i < count; i++) {
    struct partition *p;
    struct job *job;
    if (partitions[i] < 0 || partitions[i] >= MAX_PARTITIONS)
      continue;
    p = &listener->partitions[partitions[i]];
    p->revoking = 1;
    while ((job = p->held_head) != NULL) {
      p->held_head = job->next;
      job_unlink(listener, job);
      job_free(job);
    }
    p->held_tail = NULL;
  }
  deadline = listener->stopping ? listener->drain_deadline_ms
                                : now_ms(CLOCK_MONOTONIC) + listener->grace_ms;
  pthread_mutex_unlock(&listener->lock);
  for (;;) {
    size_t busy = 0;
    pthread_mutex_lock(&listener->lock);
    for (i = 0; i < count; i++)
      if (partitions[i] >= 0 && partitions[i] < MAX_PARTITIONS)
        busy += listener->partitions[partitions[i]].count;
    pthread_mutex_unlock(&listener->lock);
    if (!busy || now_ms(CLOCK_MONOTONIC) >= deadline) {
      if (busy)
        M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
                "%zu record(s) of revoked partitions unfinished after the "
                "grace period; the next owner reads them again",
                busy);
      break;
    }
    m3b_producer_poll(listener->producer, 50);
  }
  if (m3b_consumer_commit(consumer, errstr, sizeof(errstr)))
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "commit on revoke: %s",
            errstr);
  pthread_mutex_lock(&listener->lock);
  for (i = 0; i < count; i++) {
    struct partition *p;
    if (partitions[i] < 0 || partitions[i] >= MAX_PARTITIONS)
      continue;
    p = &listener->partitions[partitions[i]];
    p->assigned = 0;
    p->revoking = 0;
    p->epoch++; /* stragglers of the old assignment are abandoned */
    p->paused = 0;
    p->head = p->count = 0;
  }
  listener->refresh_lag = 1;
  pthread_cond_broadcast(&listener->wake);
  pthread_mutex_unlock(&listener->lock);
  note_assignment(listener);
  for (i = 0; i < count; i++)
    remove_partition_series(listener, partitions[i]);
}

/* --- heartbeat and status resync --------------------------------------------
 */

/* Seconds since the Kafka timestamp of the partition's oldest record not
 * yet finished: the head of its in-flight window, else its first held
 * record, else (records not fetched yet) the last finished record's, which
 * overstates the age by at most the gap to the next record. Under
 * listener->lock, on the main thread. */
static double lag_seconds(struct listener *listener, int32_t partition,
                          int64_t lag_messages, int64_t high_watermark,
                          int64_t now) {
  const struct partition *p = &listener->partitions[partition];
  int64_t oldest = 0, position;

  if (lag_messages <= 0)
    return 0;
  if (p->count && p->timestamps)
    oldest = p->timestamps[p->head];
  else if (p->held_head)
    oldest = p->held_head->timestamp_ms;
  else {
    position = m3b_consumer_position(listener->consumer, partition);
    if (position >= 0 && position < high_watermark)
      oldest = p->last_timestamp_ms;
  }
  return oldest > 0 && now > oldest ? (double)(now - oldest) / 1000.0 : 0;
}

/* Exports one partition's offsets and lag. Under listener->lock. */
static void export_lag(struct listener *listener,
                       const struct m3b_partition_lag *lag, double seconds) {
  char labels[MAX_LABELS + 16]; /* partition_labels and the number */
  snprintf(labels, sizeof(labels), "%s\"%d\"", listener->partition_labels,
           (int)lag->partition);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_LAG, labels,
                              (double)lag->lag_messages);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_LAG_SECONDS, labels,
                              seconds);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_COMMITTED, labels,
                              (double)lag->committed_offset);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_HIGH_WATERMARK, labels,
                              (double)lag->high_watermark);
}

/* Fills listener->lags with the assigned partitions' offsets and lag,
 * exports them, and returns how many there are. A broker answer counts as
 * Kafka being reachable for /readyz. Main thread. */
static size_t collect_lags(struct listener *listener, int64_t now,
                           enum m3b_listener_state *state) {
  char errstr[512];
  size_t count = 0, i;
  m3b_err_t err;

  err = m3b_consumer_offsets(listener->consumer, listener->offsets,
                             MAX_PARTITIONS, &count, 2000, errstr,
                             sizeof(errstr));
  if (err) {
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "heartbeat: %s", errstr);
    count = 0;
  } else if (count > 0) {
    note_kafka_ok(listener);
  }
  pthread_mutex_lock(&listener->lock);
  listener->refresh_lag = 0;
  for (i = 0; i < count; i++) {
    const struct m3b_partition_offsets *o = &listener->offsets[i];
    struct m3b_partition_lag *lag = &listener->lags[i];
    int valid = o->partition >= 0 && o->partition < MAX_PARTITIONS;
    int64_t last_ts =
        valid ? listener->partitions[o->partition].last_timestamp_ms : 0;
    lag->topic = listener->desired_topic;
    lag->partition = o->partition;
    lag->committed_offset = o->committed;
    lag->high_watermark = o->high_watermark;
    lag->lag_messages = o->high_watermark >= 0 && o->committed >= 0
                            ? o->high_watermark - o->committed
                            : (o->high_watermark >= 0 ? o->high_watermark : 0);
    if (lag->lag_messages < 0)
      lag->lag_messages = 0;
    lag->lag_ms = lag->lag_messages > 0 && last_ts > 0 && now > last_ts
                      ? now - last_ts
                      : 0;
    if (!valid)
      continue;
    export_lag(listener, lag,
               lag_seconds(listener, o->partition, lag->lag_messages,
                           o->high_watermark, now));
    if (state && listener->partitions[o->partition].retrying)
      *state = M3B_LISTENER_DEGRADED;
  }
  pthread_mutex_unlock(&listener->lock);
  return count;
}

static void send_heartbeat(struct listener *listener,
                           enum m3b_listener_state state) {
  struct m3b_heartbeat hb;
  struct m3b_buf buf;
  char errstr[512], key[300];
  size_t count;
  int64_t now = now_ms(CLOCK_REALTIME);
  m3b_err_t err;

  count = collect_lags(listener, now, &state);
  pthread_mutex_lock(&listener->lock);
  M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
          "heartbeat: %zu partition(s); applied %" PRIu64 " deleted %" PRIu64
          " stale %" PRIu64 " rejected %" PRIu64 " failed %" PRIu64
          " retries %" PRIu64 " in flight %" PRId64,
          count, listener->counters.applied, listener->counters.deleted,
          listener->counters.stale, listener->counters.rejected,
          listener->counters.failed, listener->counters.retries,
          listener->counters.in_flight);
  pthread_mutex_unlock(&listener->lock);

  m3b_heartbeat_init(&hb);
  hb.plane = listener->plane;
  hb.listener_id = listener->listener_id;
  hb.version = (char *)M3B_VERSION;
  hb.state = state;
  hb.sent_at_ms = now;
  hb.partitions = listener->lags;
  hb.partition_count = count;
  m3b_buf_init(&buf, MAX_STATUS_BYTES);
  snprintf(key, sizeof(key), "_listener/%s", listener->listener_id);
  err =
      m3b_heartbeat_encode(listener->codec, &hb, &buf, errstr, sizeof(errstr));
  if (!err)
    err = m3b_producer_produce(listener->producer, listener->status_topic, key,
                               strlen(key), buf.data, buf.len, NULL, 0, NULL, 0,
                               errstr, sizeof(errstr));
  if (err)
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "heartbeat not sent: %s",
            errstr);
  m3b_buf_cleanup(&buf);
}

static int resync_one(const char *key, const struct m3b_index_entry *entry,
                      void *opaque) {
  struct listener *listener = opaque;
  struct m3b_status status;
  struct m3b_buf buf;
  char errstr[256];
  m3b_err_t err;

  m3b_status_init(&status);
  status.plane = listener->plane;
  status.key = (char *)key;
  status.generation = entry->generation;
  status.phase = entry->deleted ? M3B_PHASE_DELETED : M3B_PHASE_APPLIED;
  status.observed_uid = entry->uid[0] ? (char *)entry->uid : NULL;
  status.observed_resource_version =
      entry->resource_version[0] ? (char *)entry->resource_version : NULL;
  status.readiness = M3B_READINESS_UNKNOWN;
  status.source_partition = -1;
  status.source_offset = -1;
  status.listener_id = listener->listener_id;
  status.applied_at_ms = now_ms(CLOCK_REALTIME);
  m3b_buf_init(&buf, MAX_STATUS_BYTES);
  err =
      m3b_status_encode(listener->codec, &status, &buf, errstr, sizeof(errstr));
  if (!err)
    err = m3b_producer_produce(listener->producer, listener->status_topic, key,
                               strlen(key), buf.data, buf.len, NULL, 0, NULL,
                               PRODUCE_WAIT_MS, errstr, sizeof(errstr));
  if (err)
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "resync of %s: %s", key,
            errstr);
  m3b_buf_cleanup(&buf);
  return 0;
}

/* --- setup -----------------------------------------------------------------
 */

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

static m3b_err_t open_all(struct listener *listener, char *errstr,
                          size_t errstr_size) {
  struct m3b_applier_config acfg;
  const char *path;
  size_t i, keys = 0;
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
      m3b_config_get(listener->config, "listener.trusted_keys_dir"), &keys,
      errstr, errstr_size);
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
  listener->applier =
      m3b_applier_new(&acfg, listener->kube, listener->ring, listener->seal_key,
                      listener->log, errstr, errstr_size);
  if (!listener->applier)
    return M3B_ERR_CONFIG;
  listener->producer =
      m3b_producer_new_streaming(listener->config, on_delivery, listener, 30000,
                                 listener->log, errstr, errstr_size);
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
          listener->listener_id, listener->plane, keys,
          listener->namespace_count, listener->seal_key ? "loaded" : "none",
          listener->worker_count, listener->group);
  return M3B_OK;
}

/* Windows are allocated for every partition up front would cost
 * MAX_PARTITIONS * window; allocate on demand instead. */
static m3b_err_t ensure_windows(struct listener *listener) {
  size_t i;
  for (i = 0; i < MAX_PARTITIONS; i++) {
    struct partition *p = &listener->partitions[i];
    if (!p->assigned || p->offsets)
      continue;
    p->offsets = calloc(p->cap, sizeof(*p->offsets));
    p->timestamps = calloc(p->cap, sizeof(*p->timestamps));
    p->done = calloc(p->cap, 1);
    if (!p->offsets || !p->timestamps || !p->done)
      return M3B_ERR_NOMEM;
  }
  return M3B_OK;
}

static m3b_err_t load_index(struct listener *listener) {
  char errstr[512];
  long long delay = listener->initial_backoff_ms;
  size_t loaded = 0;
  m3b_err_t err;

  for (;;) {
    err = m3b_applier_load_index(listener->applier, &loaded, errstr,
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
    for (long long waited = 0; waited < delay && !stop_signal;
         waited += POLL_MS)
      nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
    if (stop_signal)
      return M3B_ERR_INTERRUPTED;
    delay = delay * 2 > listener->max_backoff_ms ? listener->max_backoff_ms
                                                 : delay * 2;
  }
}

static m3b_err_t start_workers(struct listener *listener) {
  size_t i;
  for (i = 0; i < listener->worker_count; i++) {
    struct worker *w = &listener->workers[i];
    w->listener = listener;
    w->seed = (unsigned)(now_ms(CLOCK_REALTIME) ^ (int64_t)(i * 7919));
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
      return M3B_ERR_NOMEM;
    w->started = 1;
  }
  return M3B_OK;
}

static void stop_workers(struct listener *listener) {
  size_t i;
  for (i = 0; i < listener->worker_count; i++) {
    struct worker *w = &listener->workers[i];
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
  }
  for (i = 0; i < listener->worker_count; i++)
    if (listener->workers[i].started) {
      pthread_join(listener->workers[i].thread, NULL);
      listener->workers[i].started = 0;
    }
}

static struct listener *listener_new(m3b_config_t *config, m3b_log_t *log) {
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

static void listener_destroy(struct listener *listener) {
  size_t i;
  if (!listener)
    return;
  stop_workers(listener);
  /* the producer first: its last delivery reports still store offsets */
  m3b_producer_destroy(listener->producer);
  listener->producer = NULL;
  m3b_consumer_destroy(listener->consumer);
  while (listener->jobs) { /* pop the head: its all_prev is NULL */
    struct job *job = listener->jobs;
    listener->jobs = job->all_next;
    if (listener->jobs)
      listener->jobs->all_prev = NULL;
    listener->counters.in_flight--;
    job_free(job);
  }
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
  }
  for (i = 0; i < MAX_WORKERS; i++) {
    pthread_mutex_destroy(&listener->workers[i].lock);
    pthread_cond_destroy(&listener->workers[i].cond);
  }
  pthread_cond_destroy(&listener->wake);
  pthread_mutex_destroy(&listener->ready_lock);
  pthread_mutex_destroy(&listener->lock);
  m3b_metrics_destroy(listener->metrics); /* last: job_unlink updates it */
  free(listener);
}

/* --- the loop --------------------------------------------------------------
 */

static int all_idle(struct listener *listener) {
  int idle;
  pthread_mutex_lock(&listener->lock);
  idle = listener->counters.in_flight == 0;
  pthread_mutex_unlock(&listener->lock);
  return idle;
}

static m3b_err_t run_loop(struct listener *listener) {
  const struct m3b_kafka_message *msg;
  char errstr[512];
  int64_t next_heartbeat = 0;
  m3b_err_t err;

  err = m3b_consumer_subscribe(listener->consumer, listener->desired_topic,
                               on_rebalance, listener, errstr, sizeof(errstr));
  if (err) {
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
    return err;
  }
  M3B_LOG(listener->log, M3B_LOG_INFO, MODULE, "consuming %s",
          listener->desired_topic);
  while (!stop_signal) {
    int64_t now = now_ms(CLOCK_MONOTONIC);
    m3b_producer_poll(listener->producer, 0);
    if (ensure_windows(listener))
      return M3B_ERR_NOMEM;
    drain_held_all(listener);
    update_pauses(listener);
    if (now >= next_heartbeat) {
      store_idle_positions(listener);
      send_heartbeat(listener, M3B_LISTENER_RUNNING);
      next_heartbeat = now + listener->heartbeat_ms;
    } else if (listener->refresh_lag) { /* only the main thread writes it */
      (void)collect_lags(listener, now_ms(CLOCK_REALTIME), NULL);
    }
    err = m3b_consumer_poll(listener->consumer, POLL_MS, &msg, errstr,
                            sizeof(errstr));
    if (err == M3B_ERR_TIMEOUT)
      continue;
    if (err == M3B_ERR_KAFKA_FATAL) {
      M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
      return err;
    }
    if (err) { /* transport, authorization: keep running, delete nothing */
      if (err == M3B_ERR_KAFKA_TRANSPORT || err == M3B_ERR_KAFKA_AUTH)
        note_kafka_error(listener, err, errstr);
      M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "%s (%s); still running",
              errstr, m3b_err_name(err));
      continue;
    }
    note_kafka_ok(listener);
    if (ensure_windows(listener))
      return M3B_ERR_NOMEM;
    err = dispatch(listener, msg);
    if (err)
      return err;
  }
  return M3B_OK;
}

/* Stops fetching, drains in-flight records within the grace period,
 * flushes the producer and commits. */
static void drain(struct listener *listener) {
  char errstr[512];
  int64_t deadline;

  pthread_mutex_lock(&listener->lock);
  listener->stopping = 1;
  listener->drain_deadline_ms = now_ms(CLOCK_MONOTONIC) + listener->grace_ms;
  deadline = listener->drain_deadline_ms;
  pthread_cond_broadcast(&listener->wake);
  pthread_mutex_unlock(&listener->lock);
  M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
          "stopping: draining in-flight records (up to %lld ms)",
          listener->grace_ms);
  while (!all_idle(listener) && now_ms(CLOCK_MONOTONIC) < deadline) {
    drain_held_all(listener);
    m3b_producer_poll(listener->producer, 50);
  }
  /* wake sleepers once more: past the deadline they abandon */
  pthread_mutex_lock(&listener->lock);
  pthread_cond_broadcast(&listener->wake);
  pthread_mutex_unlock(&listener->lock);
  send_heartbeat(listener, M3B_LISTENER_STOPPING);
  {
    int64_t left = deadline - now_ms(CLOCK_MONOTONIC);
    if (m3b_producer_flush(listener->producer, left > 2000 ? (int)left : 2000))
      M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
              "some status/dlq records were not acknowledged before exit; "
              "their records are read again next time");
  }
  m3b_producer_poll(listener->producer, 0);
  store_idle_positions(listener);
  if (m3b_consumer_commit(listener->consumer, errstr, sizeof(errstr)))
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "final commit: %s", errstr);
}

static const char usage_opts[] =
    "  --config FILE   YAML configuration (see docs/CONFIGURATION.md)\n"
    "  --set N=V       override one setting (repeatable)\n"
    "  --print-config  print the effective configuration and exit\n"
    "  --check         load keys, reach Kafka and the apiserver, exit 0/1\n";

int cmd_run(int argc, char **argv) {
  struct listener *listener = NULL;
  m3b_http_t *http = NULL;
  struct sigaction sa;
  m3b_config_t *config;
  m3b_log_t *log = NULL;
  char errstr[1024];
  int print_config = 0, check = 0, rc = M3B_EXIT_FAIL, i;
  m3b_err_t err;

  config =
      m3b_cli_config(M3B_PROGRAM_LISTENER, &argc, argv, errstr, sizeof(errstr));
  if (!config) {
    fprintf(stderr, "m3bridge-listener: %s\n", errstr);
    return M3B_EXIT_FAIL;
  }
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--print-config") == 0)
      print_config = 1;
    else if (strcmp(argv[i], "--check") == 0)
      check = 1;
    else {
      fprintf(stderr, "m3bridge-listener run: unexpected '%s'\n%s", argv[i],
              usage_opts);
      rc = M3B_EXIT_USAGE;
      goto out;
    }
  }
  if (print_config) {
    m3b_config_print(config, stdout);
    rc = M3B_EXIT_OK;
    goto out;
  }
  if (m3b_config_validate(config, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-listener: %s\n", errstr);
    goto out;
  }
  log = m3b_cli_logger(config);
  listener = listener_new(config, log);
  if (!log || !listener) {
    fprintf(stderr, "m3bridge-listener: out of memory\n");
    goto out;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  err = open_all(listener, errstr, sizeof(errstr));
  if (err) {
    M3B_LOG(log, M3B_LOG_ERROR, MODULE, "%s (%s)", errstr, m3b_err_name(err));
    goto out;
  }
  if (!check) {
    err = declare_metrics(listener);
    if (err) {
      M3B_LOG(log, M3B_LOG_ERROR, MODULE, "declaring metrics: %s",
              m3b_err_name(err));
      goto out;
    }
    /* before the index load, so /healthz answers while it runs */
    http = m3b_http_start(m3b_config_get(config, "http.address"),
                          listener->metrics, ready, listener, log, errstr,
                          sizeof(errstr));
    if (!http) {
      M3B_LOG(log, M3B_LOG_ERROR, MODULE, "http.address: %s", errstr);
      goto out;
    }
    M3B_LOG(log, M3B_LOG_INFO, MODULE,
            "serving /healthz, /readyz and /metrics on %s (port %d)",
            m3b_config_get(config, "http.address"), m3b_http_port(http));
  }
  err = load_index(listener);
  if (err)
    goto out;
  note_kube(listener, M3B_OK);
  if (check) {
    M3B_LOG(log, M3B_LOG_INFO, MODULE, "check passed");
    rc = M3B_EXIT_OK;
    goto out;
  }
  /* status resync: the control plane learns the state of every managed
   * object, also those it has not heard of since its last restart */
  m3b_index_each(m3b_applier_index(listener->applier), resync_one, listener);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_RESYNC_RUNS, NULL, 1);
  err = start_workers(listener);
  if (err)
    goto out;
  err = run_loop(listener);
  drain(listener);
  if (!err)
    rc = M3B_EXIT_OK;
  M3B_LOG(log, M3B_LOG_INFO, MODULE, "stopped (%s)", m3b_err_name(err));

out:
  m3b_http_stop(http); /* before the listener its callbacks read */
  listener_destroy(listener);
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}
