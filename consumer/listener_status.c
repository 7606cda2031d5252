/*
 * listener_status.c - what the listener says on the status topic besides
 * per-event statuses: heartbeats (key _listener/<id>, with per-partition
 * lag) and the status resync of every managed object (DESIGN.md 6.7).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <m3b/cli.h>
#include <m3b/index.h>
#include <m3b/version.h>

#include "listener.h"

#define MODULE "listener"

void listener_send_heartbeat(struct listener *listener,
                             enum m3b_listener_state state) {
  struct m3b_heartbeat hb;
  struct m3b_buf buf;
  char errstr[512], key[300];
  size_t count;
  int64_t now = listener_now_ms(CLOCK_REALTIME);
  m3b_err_t err;

  count = listener_collect_lags(listener, now, &state);
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

/* Statuses queued before the resync waits for the broker to take them: the
 * main thread both queues them and serves their delivery reports, so
 * without a pause the producer's queue (and the process) would hold every
 * managed object's status at once - 33 MB for 100k objects - or refuse
 * them once kafka.queue.buffering.max.messages is reached. */
#define RESYNC_BATCH 1000
#define RESYNC_FLUSH_MS 30000

struct resync {
  struct listener *listener;
  size_t queued;
};

static int resync_one(const char *key, const struct m3b_index_entry *entry,
                      void *opaque) {
  struct resync *resync = opaque;
  struct listener *listener = resync->listener;
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
  status.applied_at_ms = listener_now_ms(CLOCK_REALTIME);
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
  if (++resync->queued % RESYNC_BATCH == 0 &&
      m3b_producer_flush(listener->producer, RESYNC_FLUSH_MS))
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
            "status resync: the broker took no statuses for %d ms; going on",
            RESYNC_FLUSH_MS);
  /* a SIGTERM during a long resync stops it: the next start resyncs */
  return *listener->stop_requested ? 1 : 0;
}

void listener_resync_statuses(struct listener *listener) {
  struct resync resync = {listener, 0};
  if (m3b_index_each(m3b_applier_index(listener->applier), resync_one, &resync))
    M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
            "status resync stopped after %zu status(es): stopping",
            resync.queued);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_RESYNC_RUNS, NULL, 1);
}
