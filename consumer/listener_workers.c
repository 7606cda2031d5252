/*
 * listener_workers.c - the worker threads: each runs m3b_applier_process()
 * for the records of its keys, in order.
 *
 * A transient failure retries the same record with capped exponential
 * backoff and jitter while its partition is paused; otherwise the worker
 * produces the dlq copy and/or the status with the listener's idempotent
 * producer, and the last delivery report finishes the record.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"

#define MODULE "listener"

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
  /* a record waiting for a retry gives up at once when its partition is
   * being revoked: the revoke should not wait a backoff for it, and the
   * next owner retries it */
  pthread_mutex_lock(&listener->lock);
  while (listener_job_current(listener, job) && !listener->stopping &&
         !listener->partitions[job->partition].revoking) {
    if (pthread_cond_timedwait(&listener->wake, &listener->lock, &until) ==
        ETIMEDOUT)
      break;
  }
  go = listener_job_current(listener, job) && !listener->stopping &&
       !listener->partitions[job->partition].revoking;
  pthread_mutex_unlock(&listener->lock);
  return go;
}

/* Queues one record for job, retrying while the local queue is full.
 * Logs failures other than M3B_ERR_LIMIT (a record too large for Kafka),
 * which the caller handles. */
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
    err = listener_job_current(listener, job) ? M3B_OK : M3B_ERR_INTERRUPTED;
    pthread_mutex_unlock(&listener->lock);
    if (err)
      return err;
  }
  if (err && err != M3B_ERR_LIMIT)
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
  return err;
}

/* Queues the dlq copy: the original key, value and headers plus the error
 * headers (n of them, n < MAX_HEADERS). A copy too large for Kafka (the
 * original was near the limit) goes without its value, marked by
 * M3B_HDR_VALUE_OMITTED: a record that could never be written would keep
 * its partition's offset from moving, forever. */
static m3b_err_t produce_dlq(struct listener *listener, struct job *job,
                             const struct m3b_kafka_header *headers, size_t n) {
  struct m3b_kafka_header marked[MAX_HEADERS];
  char omitted[24];
  m3b_err_t err;

  err = produce(listener, job, listener->dlq_topic, job->key, job->key_len,
                job->value, job->value_len, headers, n);
  if (err != M3B_ERR_LIMIT)
    return err;
  memcpy(marked, headers, n * sizeof(*headers));
  snprintf(omitted, sizeof(omitted), "%zu", job->value_len);
  marked[n].name = M3B_HDR_VALUE_OMITTED;
  marked[n].value = omitted;
  marked[n].size = strlen(omitted);
  M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
          "partition %d offset %" PRId64 ": the dlq copy of this %zu-byte "
          "record is too large for Kafka; it goes without its value (%s)",
          (int)job->partition, job->offset, job->value_len,
          M3B_HDR_VALUE_OMITTED);
  err = produce(listener, job, listener->dlq_topic, job->key, job->key_len,
                NULL, 0, marked, n + 1);
  if (err == M3B_ERR_LIMIT)
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE,
            "partition %d offset %" PRId64 ": even without its value the dlq "
            "copy is too large for Kafka",
            (int)job->partition, job->offset);
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
    if (produce_dlq(listener, job, headers, n) == M3B_OK)
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
    listener_job_finish(listener, job, !failed);
}

static void process_job(struct listener *listener, struct worker *worker,
                        struct job *job) {
  struct m3b_record in;
  struct m3b_outcome out;
  unsigned attempt = 0;
  int retrying = 0, current;

  listener_job_record(job, listener->desired_topic, &in);

  for (;;) {
    long long delay;
    pthread_mutex_lock(&listener->lock);
    current = listener_job_current(listener, job);
    pthread_mutex_unlock(&listener->lock);
    if (!current)
      break;
    m3b_applier_process(listener->applier, &in, &out);
    listener_note_kube(listener, out.err);
    if (!out.retriable)
      break;
    if (!retrying) {
      pthread_mutex_lock(&listener->lock);
      listener->partitions[job->partition].retrying++;
      pthread_mutex_unlock(&listener->lock);
      retrying = 1;
    }
    /* the apiserver's Retry-After when it sent one, else capped
     * exponential backoff with jitter (m3b_outcome_retry_delay_ms) */
    delay = m3b_outcome_retry_delay_ms(
        &out, attempt, listener->initial_backoff_ms, listener->max_backoff_ms,
        (unsigned)rand_r(&worker->seed));
    attempt++;
    pthread_mutex_lock(&listener->lock);
    listener->counters.retries++;
    pthread_mutex_unlock(&listener->lock);
    (void)m3b_metrics_counter_add(listener->metrics, METRIC_RETRIES, NULL, 1);
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "partition %d offset %" PRId64 " key %s: %s (%s); retry %u in %lld "
            "ms%s, partition paused",
            (int)job->partition, job->offset, out.key, m3b_err_name(out.err),
            out.message, attempt, delay,
            out.retry_after_ms > 0 ? " (the apiserver's Retry-After)" : "");
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
    listener_job_finish(listener, job, 0);
    return;
  }
  listener_count_outcome(listener, job, &out);
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
    listener_job_finish(listener, job, 1);
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

m3b_err_t listener_start_workers(struct listener *listener) {
  size_t i;
  for (i = 0; i < listener->worker_count; i++) {
    struct worker *w = &listener->workers[i];
    w->listener = listener;
    w->seed = (unsigned)(listener_now_ms(CLOCK_REALTIME) ^ (int64_t)(i * 7919));
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
      return M3B_ERR_NOMEM;
    w->started = 1;
  }
  return M3B_OK;
}

void listener_stop_workers(struct listener *listener) {
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
