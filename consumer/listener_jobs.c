/*
 * listener_jobs.c - records in flight: a copy of each record of the desired
 * topic, the partition's window of dispatched offsets, and the contiguous
 * finished prefix that becomes the stored offset (DESIGN.md 6.1-6.2).
 *
 * A record is finished when every record it produced (status, dlq copy)
 * is acknowledged by the broker; then the partition's offset tracker
 * stores the end of the contiguous finished prefix (librdkafka
 * auto-commits stored offsets; revoke and shutdown commit synchronously).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"

#define MODULE "listener"

void listener_job_free(struct job *job) {
  if (!job)
    return;
  free(job->key);
  free(job->value);
  free(job->header_bytes);
  free(job);
}

/* Copies msg into a new job; NULL when memory is exhausted. */
struct job *listener_job_new(const struct m3b_kafka_message *msg,
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
  listener_job_free(job);
  return NULL;
}

/* Under listener->lock. */
void listener_job_link(struct listener *listener, struct job *job) {
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
void listener_job_unlink(struct listener *listener, struct job *job) {
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

/* Non-zero while the job's partition still belongs to this run and the
 * listener is not past its drain deadline. Under listener->lock. */
int listener_job_current(const struct listener *listener,
                         const struct job *job) {
  const struct partition *p = &listener->partitions[job->partition];
  return p->assigned && p->epoch == job->epoch &&
         !(listener->stopping &&
           listener_now_ms(CLOCK_MONOTONIC) >= listener->drain_deadline_ms);
}

/* Marks job finished (done != 0) or abandoned, stores the partition's new
 * contiguous prefix, and frees the job. Takes listener->lock. */
void listener_job_finish(struct listener *listener, struct job *job, int done) {
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
  listener_job_unlink(listener, job);
  if (store >= 0 && listener->consumer &&
      m3b_consumer_store_offset(listener->consumer, job->partition, store))
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "storing offset %" PRId64 " of partition %d failed (revoked?)",
            store, (int)job->partition);
  pthread_mutex_unlock(&listener->lock);
  listener_job_free(job);
}

/* The producer's delivery report, on the main thread. */
void listener_on_delivery(void *record_opaque, m3b_err_t err, void *opaque) {
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
    listener_job_finish(listener, job, !failed);
}

void listener_job_record(const struct job *job, const char *topic,
                         struct m3b_record *in) {
  memset(in, 0, sizeof(*in));
  in->topic = topic;
  in->partition = job->partition;
  in->offset = job->offset;
  in->timestamp_ms = job->timestamp_ms;
  in->key = job->key;
  in->key_len = job->key_len;
  in->value = job->value;
  in->value_len = job->value_len;
  in->headers = job->headers;
  in->header_count = job->header_count;
}
