/*
 * listener_partitions.c - the partitions this listener owns: in-flight
 * windows, pauses, idle offsets and cooperative rebalances (DESIGN.md 6.8).
 *
 * A revoked partition drops its held records, lets in-flight ones finish
 * within shutdown.grace_ms, commits, and only then lets go; work of an
 * old assignment that finishes later is abandoned by its epoch.
 */
#include <stdlib.h>
#include <stdio.h>

#include "listener.h"

#define MODULE "listener"

/* Windows are allocated for every partition up front would cost
 * MAX_PARTITIONS * window; allocate on demand instead. */
m3b_err_t listener_ensure_windows(struct listener *listener) {
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

/* Stores the consumer position of partitions with nothing in flight, so
 * the committed offset moves past trailing transaction markers. */
void listener_store_idle_positions(struct listener *listener) {
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
 * resumes the others; exports the pauses and the retry backlog. */
void listener_update_pauses(struct listener *listener) {
  size_t i, paused = 0;
  long long backlog = 0;
  for (i = 0; i < MAX_PARTITIONS; i++) {
    struct partition *p = &listener->partitions[i];
    int want;
    if (!p->assigned)
      continue;
    pthread_mutex_lock(&listener->lock);
    want = p->held_head != NULL || p->retrying > 0;
    backlog += p->retrying;
    pthread_mutex_unlock(&listener->lock);
    if (want != p->paused && (want ? m3b_consumer_pause : m3b_consumer_resume)(
                                 listener->consumer, (int32_t)i) == M3B_OK)
      p->paused = want;
    if (p->paused)
      paused++;
  }
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_PAUSED, NULL,
                              (double)paused);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_RETRY_BACKLOG, NULL,
                              (double)backlog);
}

void listener_on_rebalance(m3b_consumer_t *consumer, enum m3b_rebalance event,
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
      if (p->lag_window) /* a new assignment: old history says nothing */
        m3b_lag_window_reset(p->lag_window);
    }
    listener->refresh_lag = 1;
    pthread_mutex_unlock(&listener->lock);
    listener_note_assignment(listener);
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
      listener_job_unlink(listener, job);
      listener_job_free(job);
    }
    p->held_tail = NULL;
  }
  deadline = listener->stopping
                 ? listener->drain_deadline_ms
                 : listener_now_ms(CLOCK_MONOTONIC) + listener->grace_ms;
  pthread_mutex_unlock(&listener->lock);
  pthread_cond_broadcast(&listener->wake); /* retry sleepers give up */
  for (;;) {
    size_t busy = 0;
    const struct job *job;
    /* records of these partitions still with a worker or the producer;
     * abandoned ones leave the live list but stay in the window */
    pthread_mutex_lock(&listener->lock);
    for (job = listener->jobs; job; job = job->all_next)
      if (job->registered && listener->partitions[job->partition].revoking)
        busy++;
    pthread_mutex_unlock(&listener->lock);
    if (!busy || listener_now_ms(CLOCK_MONOTONIC) >= deadline) {
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
    if (p->lag_window)
      m3b_lag_window_reset(p->lag_window);
  }
  listener->refresh_lag = 1;
  pthread_cond_broadcast(&listener->wake);
  pthread_mutex_unlock(&listener->lock);
  listener_note_assignment(listener);
  for (i = 0; i < count; i++)
    listener_remove_partition_series(listener, partitions[i]);
}
