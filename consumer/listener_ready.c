/*
 * listener_ready.c - what /readyz answers: whether Kafka and the apiserver
 * are reachable, from the outcomes the loop and the workers report.
 *
 * Kafka is up while partitions are assigned or the broker answered
 * recently, and no transport or authorization error came after its last
 * answer; the apiserver is up unless the last call that reached for it
 * failed in transport. Workloads are never touched because of either.
 */
#include <stdio.h>

#include "listener.h"

#define MODULE "listener"

/* Kafka answered: a record arrived or the broker returned offsets. */
void listener_note_kafka_ok(struct listener *listener) {
  pthread_mutex_lock(&listener->ready_lock);
  listener->kafka_ok_ms = listener_now_ms(CLOCK_MONOTONIC);
  pthread_mutex_unlock(&listener->ready_lock);
}

void listener_note_kafka_error(struct listener *listener, m3b_err_t err,
                               const char *errstr) {
  pthread_mutex_lock(&listener->ready_lock);
  listener->kafka_err_ms = listener_now_ms(CLOCK_MONOTONIC);
  /* the reason is one line of /readyz: the start of errstr is enough */
  snprintf(listener->kafka_err, sizeof(listener->kafka_err), "%.160s (%s)",
           errstr, m3b_err_name(err));
  pthread_mutex_unlock(&listener->ready_lock);
}

void listener_note_kafka_lost(struct listener *listener, m3b_err_t err,
                              const char *errstr) {
  listener_note_kafka_error(listener, err, errstr);
  pthread_mutex_lock(&listener->ready_lock);
  if (!listener->kafka_lost_ms) /* the outage began at its first error */
    listener->kafka_lost_ms = listener->kafka_err_ms;
  pthread_mutex_unlock(&listener->ready_lock);
}

int listener_kafka_recovered(struct listener *listener) {
  int recovered = 0;
  pthread_mutex_lock(&listener->ready_lock);
  if (listener->kafka_lost_ms &&
      listener->kafka_ok_ms > listener->kafka_lost_ms &&
      listener->kafka_ok_ms > listener->kafka_err_ms) {
    recovered = 1;
    listener->kafka_lost_ms = 0;
  }
  pthread_mutex_unlock(&listener->ready_lock);
  return recovered;
}

/* /readyz, on the HTTP thread: Kafka is up when partitions are assigned or
 * the broker answered recently, and no transport or authorization error
 * came after its last answer; the apiserver is up unless its last call
 * failed in transport. */
int listener_ready(void *opaque, char *detail, size_t detail_size) {
  struct listener *listener = opaque;
  int64_t now = listener_now_ms(CLOCK_MONOTONIC);
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

/* The apiserver is down for /readyz while the last call that reached for
 * it failed in transport; any answer from it clears that. */
void listener_note_kube(struct listener *listener, m3b_err_t err) {
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

/* Counts the assigned partitions for /readyz. */
void listener_note_assignment(struct listener *listener) {
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
