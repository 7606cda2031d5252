/*
 * listener_dispatch.c - records to workers, on the main thread.
 *
 * Each record goes by a hash of its key to one of N workers, so two events
 * of one key never run at once and stay in order. Worker queues are
 * bounded; a record that finds its queue (or its partition's in-flight
 * window) full is held, and its partition paused until there is room.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "listener.h"

#define MODULE "listener"

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
m3b_err_t listener_dispatch(struct listener *listener,
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
  job = listener_job_new(msg, epoch);
  if (!job) {
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE,
            "out of memory copying partition %d offset %" PRId64,
            (int)msg->partition, msg->offset);
    return M3B_ERR_NOMEM;
  }
  pthread_mutex_lock(&listener->lock);
  listener_job_link(listener, job);
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
void listener_drain_held(struct listener *listener) {
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
